//! `serve --listen` through the real binary: Vercel's signed webhooks (the fixtures, forged ones,
//! repeats and late ones), the answers to bad requests, `/metrics`, `/healthz` and `/readyz`.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shiplog::demo::{DeploymentSpec, SimEvent, SimulatorHandle, SimulatorOptions, WebhookFaults};
use shiplog::vercel::signature::sign;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

use support::bin::{run, shiplog, terminate};
use support::redis::RedisServer;
use support::wait::eventually;

const SECRET: &str = "shiplog-test-webhook-secret";
const DRAIN_SECRET: &str = "shiplog-test-drain-secret";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

/// The signature `signatures.json` gives for a fixture (computed outside shiplog).
fn recorded_signature(name: &str) -> String {
    let signatures: serde_json::Value =
        serde_json::from_slice(&fixture("signatures.json")).expect("JSON");
    let kind = if name.starts_with("drain") {
        "drains"
    } else {
        "webhooks"
    };
    signatures[kind]["files"][name]
        .as_str()
        .expect("a signature for the fixture")
        .to_owned()
}

/// A running `serve --listen`, its output gathered as it comes.
struct Worker {
    child: Child,
    url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    _state: tempfile::TempDir,
}

impl Worker {
    async fn start(
        sim: &SimulatorHandle,
        setup: impl FnOnce(&mut tokio::process::Command),
    ) -> Self {
        Worker::start_at(sim, "127.0.0.1:0", setup).await
    }

    async fn start_at(
        sim: &SimulatorHandle,
        listen: &str,
        setup: impl FnOnce(&mut tokio::process::Command),
    ) -> Self {
        let state = tempfile::tempdir().expect("dir");
        let mut cmd = shiplog(state.path(), &sim.base_url());
        cmd.env("VERCEL_WEBHOOK_SECRET", format!("old-secret,{SECRET}"))
            .env("VERCEL_DRAIN_SECRET", DRAIN_SECRET)
            .env("VERCEL_DRAIN_VERIFY", "verify-code-1")
            .args(["serve", "--json", "--listen", listen]);
        setup(&mut cmd);
        let mut child = cmd.spawn().expect("serve runs");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
                .await
                .expect("serve says where it listens")
                .expect("read")
                .expect("serve is still running");
            if let Some(rest) = line.strip_prefix("shiplog: listening on ") {
                break rest.split(' ').next().expect("an address").to_owned();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let gathered = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                gathered.lock().expect("lock").push(line);
            }
        });
        Worker {
            child,
            url,
            stdout,
            _state: state,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stdout.lock().expect("lock").clone()
    }

    /// The messages of the entries webhooks wrote.
    fn webhook_news(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|entry| entry["event"] == "webhook" && entry["tier"] == "deploy")
            .filter_map(|entry| entry["message"].as_str().map(str::to_owned))
            .collect()
    }

    async fn wait_for_news(&self, what: &str) {
        eventually(&format!("serve prints {what:?}"), async || {
            self.webhook_news().iter().any(|news| news.contains(what))
        })
        .await;
    }

    async fn deliver(&self, body: &[u8], signature: Option<&str>) -> reqwest::StatusCode {
        let mut request = reqwest::Client::new()
            .post(format!("{}/vercel/webhook", self.url))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-vercel-signature", signature);
        }
        request.send().await.expect("an answer").status()
    }

    async fn deliver_fixture(&self, name: &str) -> reqwest::StatusCode {
        self.deliver(&fixture(name), Some(&recorded_signature(name)))
            .await
    }

    async fn drain(&self, body: &[u8], signature: &str, gzip: bool) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}/vercel/drain", self.url))
            .header("x-vercel-signature", signature)
            .body(body.to_vec());
        if gzip {
            request = request.header("content-encoding", "gzip");
        }
        request.send().await.expect("an answer")
    }

    /// A counter's value in `/metrics` (0 when absent).
    async fn counter(&self, series: &str) -> u64 {
        let (_, metrics) = self.get("/metrics").await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    }

    async fn get(&self, path: &str) -> (reqwest::StatusCode, String) {
        let response = reqwest::get(format!("{}{path}", self.url))
            .await
            .expect("an answer");
        let status = response.status();
        (status, response.text().await.expect("a body"))
    }

    async fn stop(mut self) {
        terminate(self.child.id().expect("pid"));
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops on SIGTERM")
            .expect("status");
        assert_eq!(status.code(), Some(0));
    }
}

/// Writes `text` as the config file of the command about to run.
fn configure(cmd: &mut tokio::process::Command, text: &str) {
    let config = cmd
        .as_std()
        .get_envs()
        .find(|(key, _)| *key == "XDG_CONFIG_HOME")
        .and_then(|(_, value)| value)
        .map(std::path::PathBuf::from)
        .expect("a config directory");
    std::fs::create_dir_all(config.join("shiplog")).expect("dir");
    std::fs::write(config.join("shiplog/config.toml"), text).expect("config");
}

async fn simulator() -> SimulatorHandle {
    SimulatorHandle::start(SimulatorOptions {
        speed: 50.0,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator")
}

#[tokio::test]
async fn every_signed_fixture_is_taken_and_late_or_repeated_news_changes_nothing() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    let ok = reqwest::StatusCode::OK;
    // Out of order: the build's end first, its creation after it.
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-succeeded.json")
            .await,
        ok
    );
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-created.json")
            .await,
        ok
    );
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-promoted.json")
            .await,
        ok
    );
    // Vercel retrying a delivery it thinks failed.
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-succeeded.json")
            .await,
        ok
    );
    for name in [
        "webhook-deployment-error.json",
        "webhook-deployment-canceled.json",
        "webhook-deployment-rollback.json",
        "webhook-deployment-succeeded-triggerdev-example.json",
    ] {
        assert_eq!(worker.deliver_fixture(name).await, ok, "{name}");
    }
    // An error for the deployment that succeeded, signed, new id, earlier than the success.
    let late_error = br#"{"id":"late-1","type":"deployment.error","createdAt":1767712871000,"payload":{"deployment":{"id":"dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e","name":"storefront"},"project":{"id":"prj_Qm4vT8xKz2LwR9bN6cYs1HdPgE3a"}}}"#;
    assert_eq!(
        worker
            .deliver(late_error, Some(&sign(SECRET, late_error)))
            .await,
        ok
    );
    worker
        .wait_for_news("late deployment.error for dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e")
        .await;
    let news = worker.webhook_news();
    let said = |text: &str| news.iter().filter(|n| n.contains(text)).count();
    assert_eq!(
        said("dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e is READY"),
        1,
        "{news:#?}"
    );
    assert_eq!(
        said("dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e is ERROR"),
        0,
        "{news:#?}"
    );
    assert_eq!(
        said("Ignored a late deployment.created for dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e: it is already READY"),
        1,
        "{news:#?}"
    );
    assert_eq!(
        said("production is now dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e (promoted)"),
        1
    );
    assert_eq!(said("dpl_4HnW7pLx2QcR8vT5mYb9KsZ3dF1g is ERROR"), 1);
    assert_eq!(said("dpl_2JtY6vNc9RbL4xW8qM3sH7kP5zD0 is CANCELED"), 1);
    assert_eq!(
        said("production rolled back to dpl_6RkM3wQz8TnB2vX9cL5yH4sJ7pG1 from dpl_8fKc2RzQ9mTxW4vLbN7sY3pHdJ6e"),
        1
    );
    assert_eq!(
        said("accordion-component dpl_12yAAMp54JKe1XxonMYqW4oWtK5K is READY"),
        1
    );
    let (_, metrics) = worker.get("/metrics").await;
    assert!(
        metrics.contains("shiplog_listener_duplicates_total{route=\"/vercel/webhook\"} 1"),
        "{metrics}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_flood_of_forged_deliveries_is_refused_and_alerts_once() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    let body = fixture("webhook-deployment-created.json");
    let forged = sign("a-guess", &body);
    for signature in [None, Some("nonsense"), Some(forged.as_str())]
        .into_iter()
        .cycle()
        .take(30)
    {
        assert_eq!(
            worker.deliver(&body, signature).await,
            reqwest::StatusCode::FORBIDDEN
        );
    }
    let alerts = || {
        worker
            .lines()
            .iter()
            .filter(|line| {
                line.contains("\"event\":\"alert_fired\"") && line.contains("security_hmac_failed")
            })
            .count()
    };
    eventually("the security alert fires", async || alerts() > 0).await;
    // A real delivery after the flood: once it is through, so is everything the flood caused.
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-created.json")
            .await,
        reqwest::StatusCode::OK
    );
    worker.wait_for_news("was created (production)").await;
    assert_eq!(alerts(), 1, "{:#?}", worker.lines());
    let refused = worker
        .lines()
        .iter()
        .filter(|line| {
            line.contains("HMAC signature validation failed")
                && line.contains("\"tier\":\"system\"")
        })
        .count();
    assert_eq!(refused, 1, "one entry for the source in a minute");
    let (_, metrics) = worker.get("/metrics").await;
    assert!(
        metrics.contains("shiplog_listener_signature_failures_total{route=\"/vercel/webhook\"} 30")
    );
    assert!(!worker.lines().concat().contains(SECRET));
    worker.stop().await;
}

#[tokio::test]
async fn a_created_deployment_is_followed_at_once_while_the_list_waits_a_minute() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |cmd| configure(cmd, "poll_interval_secs = 60\n")).await;
    let lists = || {
        sim.requests()
            .iter()
            .filter(|r| r.path == "/v6/deployments")
            .count()
    };
    eventually("the worker lists the team once", async || lists() == 1).await;
    let id = sim.add_deployment(DeploymentSpec {
        project: "checkout-web".into(),
        events: vec![SimEvent::stdout(600_000_000, "still building")],
        ..DeploymentSpec::default()
    });
    let created = format!(
        r#"{{"id":"c-1","type":"deployment.created","createdAt":{},"payload":{{"deployment":{{"id":"{id}","name":"checkout-web"}},"target":null}}}}"#,
        shiplog::clock::now_ms()
    );
    assert_eq!(
        worker
            .deliver(created.as_bytes(), Some(&sign(SECRET, created.as_bytes())))
            .await,
        reqwest::StatusCode::OK
    );
    eventually("the worker follows the new build", async || {
        sim.requests()
            .iter()
            .any(|r| r.path.contains(&id) && r.path.ends_with("/events"))
    })
    .await;
    assert_eq!(lists(), 1, "followed on the webhook, not on a list");
    worker.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_clear_answer_and_change_nothing() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    let client = reqwest::Client::new();
    let webhook = format!("{}/vercel/webhook", worker.url);
    let status = |r: reqwest::Response| r.status().as_u16();
    // Over the limit, said up front or not: refused before the body is read, so raw requests
    // (a client library may fail on the closed connection before it reads the answer).
    let address = worker.url.trim_start_matches("http://").to_owned();
    let head = "POST /vercel/webhook HTTP/1.1\r\nhost: x\r\n";
    for framing in ["content-length: 2097152", "transfer-encoding: chunked"] {
        let mut big = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        big.write_all(format!("{head}{framing}\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        let body = if framing.starts_with("transfer") {
            chunk.repeat(32)
        } else {
            " ".repeat(2 << 20)
        };
        // The server may close before all of it is written.
        let _ = big.write_all(body.as_bytes()).await;
        let mut answer = String::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(20), big.read_to_string(&mut answer)).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{framing}: {answer}");
    }
    assert_eq!(
        status(client.get(&webhook).send().await.expect("answer")),
        405
    );
    assert_eq!(worker.get("/nothing/here").await.0.as_u16(), 404);
    let not_json = b"{\"type\": deployment.created";
    assert_eq!(
        worker
            .deliver(not_json, Some(&sign(SECRET, not_json)))
            .await
            .as_u16(),
        400
    );
    // A body that stops half-way is answered, not waited for forever.
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(
        b"POST /vercel/webhook HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"id\":",
    )
    .await
    .expect("write");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), slow.read_to_string(&mut answer))
        .await
        .expect("answered within the body timeout")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(worker.webhook_news().is_empty(), "nothing was taken");
    let (code, health) = worker.get("/healthz").await;
    assert_eq!((code.as_u16(), health.contains("alive")), (200, true));
    worker.stop().await;
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-error.json")
            .await,
        reqwest::StatusCode::OK
    );
    worker.wait_for_news("is ERROR").await;
    let response = reqwest::get(format!("{}/metrics", worker.url))
        .await
        .expect("answer");
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("text")
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.expect("body");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text");
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| s.value.clone())
    };
    assert!(matches!(
        value("shiplog_listener_requests_total"),
        Some(prometheus_parse::Value::Counter(n)) if n >= 1.0
    ));
    for name in [
        "logs_vercel_events_received_total",
        "logs_active_vercel_streams",
        "logs_alerts_enqueued_total",
        "logs_alert_queue_depth",
    ] {
        assert!(value(name).is_some(), "{name} in {text}");
    }
    worker.stop().await;
}

#[tokio::test]
async fn readyz_tells_when_redis_is_down_and_healthz_stays_alive() {
    let mut redis = RedisServer::start_private();
    let sim = simulator().await;
    let redis_url = redis.url.clone();
    let worker = Worker::start(&sim, |cmd| {
        cmd.env("REDIS_URL", &redis_url);
    })
    .await;
    let (code, ready) = worker.get("/readyz").await;
    assert_eq!(code.as_u16(), 200, "{ready}");
    redis.stop();
    eventually("readyz says the store is down", async || {
        worker.get("/readyz").await.0.as_u16() == 503
    })
    .await;
    let (_, ready) = worker.get("/readyz").await;
    assert!(ready.contains("Redis is unreachable"), "{ready}");
    assert_eq!(worker.get("/healthz").await.0.as_u16(), 200);
    // Webhooks still work on the local fallback.
    assert_eq!(
        worker
            .deliver_fixture("webhook-deployment-canceled.json")
            .await,
        reqwest::StatusCode::OK
    );
    worker.wait_for_news("is CANCELED").await;
    worker.stop().await;
}

#[tokio::test]
async fn two_workers_sharing_redis_take_a_delivery_once() {
    let redis = RedisServer::start();
    let sim = simulator().await;
    let config = format!("namespace = {:?}\n", support::redis::fresh_namespace());
    let start = || {
        Worker::start(&sim, |cmd| {
            cmd.env("REDIS_URL", &redis.url);
            configure(cmd, &config);
        })
    };
    let (one, two) = (start().await, start().await);
    let name = "webhook-deployment-error.json";
    // Vercel retrying, its first try having reached the other worker.
    assert_eq!(one.deliver_fixture(name).await, reqwest::StatusCode::OK);
    one.wait_for_news("dpl_4HnW7pLx2QcR8vT5mYb9KsZ3dF1g is ERROR")
        .await;
    assert_eq!(two.deliver_fixture(name).await, reqwest::StatusCode::OK);
    // A later final state for the same build reaches the second one: the first still stands.
    let canceled = br#"{"id":"x-2","type":"deployment.canceled","createdAt":1767716402999,"payload":{"deployment":{"id":"dpl_4HnW7pLx2QcR8vT5mYb9KsZ3dF1g"}}}"#;
    assert_eq!(
        two.deliver(canceled, Some(&sign(SECRET, canceled))).await,
        reqwest::StatusCode::OK
    );
    two.wait_for_news(
        "late deployment.canceled for dpl_4HnW7pLx2QcR8vT5mYb9KsZ3dF1g: it is already ERROR",
    )
    .await;
    assert!(
        two.webhook_news()
            .iter()
            .all(|news| !news.contains("is ERROR")),
        "{:#?}",
        two.webhook_news()
    );
    let (_, metrics) = two.get("/metrics").await;
    assert!(metrics.contains("shiplog_listener_duplicates_total{route=\"/vercel/webhook\"} 1"));
    one.stop().await;
    two.stop().await;
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

const BUILD_RECORDS: &str = "shiplog_listener_drain_records_total{kind=\"build\"}";
const RUNTIME_RECORDS: &str = "shiplog_listener_drain_records_total{kind=\"runtime\"}";
const REPEATED_RECORDS: &str = "shiplog_listener_drain_records_total{kind=\"repeated\"}";

#[tokio::test]
async fn drained_batches_in_both_encodings_and_gzipped_are_taken_once() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    // Vercel's ownership check: answered with the code, nothing taken.
    let check = reqwest::Client::new()
        .post(format!("{}/vercel/drain", worker.url))
        .body("{}")
        .send()
        .await
        .expect("answer");
    assert_eq!(check.status().as_u16(), 200);
    assert_eq!(check.headers()["x-vercel-verify"], "verify-code-1");
    for name in [
        "drain-build-batch.json",
        "drain-lambda-batch.ndjson",
        "drain-docs-example.ndjson",
    ] {
        let answer = worker
            .drain(&fixture(name), &recorded_signature(name), false)
            .await;
        assert_eq!(answer.status().as_u16(), 200, "{name}");
        assert_eq!(answer.headers()["x-vercel-verify"], "verify-code-1");
    }
    eventually("every record is taken", async || {
        worker.counter(BUILD_RECORDS).await == 6 && worker.counter(RUNTIME_RECORDS).await == 5
    })
    .await;
    // The same batch again: a duplicate batch; gzipped (signed either way): repeated records.
    let name = "drain-lambda-batch.ndjson";
    let again = worker
        .drain(&fixture(name), &recorded_signature(name), false)
        .await;
    assert_eq!(again.status().as_u16(), 200);
    let packed = gzipped(&fixture(name));
    let by_packed = worker
        .drain(&packed, &sign(DRAIN_SECRET, &packed), true)
        .await;
    assert_eq!(by_packed.status().as_u16(), 200);
    let build = fixture("drain-build-batch.json");
    let by_plain = worker
        .drain(
            &gzipped(&build),
            &recorded_signature("drain-build-batch.json"),
            true,
        )
        .await;
    assert_eq!(by_plain.status().as_u16(), 200, "signed before compression");
    eventually("the repeats are recognised", async || {
        worker.counter(REPEATED_RECORDS).await == 9
    })
    .await;
    assert_eq!(worker.counter(BUILD_RECORDS).await, 6);
    assert_eq!(worker.counter(RUNTIME_RECORDS).await, 5);
    assert_eq!(
        worker
            .counter("shiplog_listener_duplicates_total{route=\"/vercel/drain\"}")
            .await,
        1
    );
    worker.stop().await;
}

#[tokio::test]
async fn drained_runtime_errors_alert_like_runtime_logs() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    let now = shiplog::clock::now_ms();
    let batch: String = (0..12)
        .map(|i| {
            format!(
                "{{\"id\":\"r{i}\",\"deploymentId\":\"dpl_live\",\"source\":\"lambda\",\"host\":\"shop.example\",\"timestamp\":{},\"projectId\":\"prj_1\",\"projectName\":\"shop\",\"level\":\"error\",\"message\":\"TypeError: x is undefined\",\"statusCode\":500,\"path\":\"/api/cart\",\"environment\":\"production\"}}\n",
                now + i
            )
        })
        .collect();
    let answer = worker
        .drain(
            batch.as_bytes(),
            &sign(DRAIN_SECRET, batch.as_bytes()),
            false,
        )
        .await;
    assert_eq!(answer.status().as_u16(), 200);
    eventually("the burst alert fires", async || {
        worker.lines().iter().any(|line| {
            line.contains("\"event\":\"alert_fired\"") && line.contains("runtime_error_burst")
        })
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn a_drained_build_the_events_api_follows_is_not_taken_twice() {
    let sim = simulator().await;
    let id = sim.add_deployment(DeploymentSpec {
        project: "checkout-web".into(),
        events: vec![SimEvent::stdout(600_000_000, "still building")],
        ..DeploymentSpec::default()
    });
    let worker = Worker::start(&sim, |_| {}).await;
    eventually("the worker follows the build", async || {
        worker.counter("logs_active_vercel_streams").await == 1
    })
    .await;
    let batch = format!(
        "{{\"id\":\"b1\",\"deploymentId\":\"{id}\",\"source\":\"build\",\"timestamp\":1,\"level\":\"info\",\"message\":\"still building\",\"type\":\"stdout\"}}\n"
    );
    let answer = worker
        .drain(
            batch.as_bytes(),
            &sign(DRAIN_SECRET, batch.as_bytes()),
            false,
        )
        .await;
    assert_eq!(answer.status().as_u16(), 200);
    eventually(
        "the record is known to come from the events API",
        async || {
            worker
                .counter("shiplog_listener_drain_records_total{kind=\"covered\"}")
                .await
                == 1
        },
    )
    .await;
    assert_eq!(worker.counter(BUILD_RECORDS).await, 0);
    worker.stop().await;
}

#[tokio::test]
async fn bad_drained_batches_are_refused_whole() {
    let sim = simulator().await;
    let worker = Worker::start(&sim, |_| {}).await;
    let status = |r: reqwest::Response| r.status().as_u16();
    let batch = fixture("drain-lambda-batch.ndjson");
    assert_eq!(
        status(worker.drain(&batch, &sign("guess", &batch), false).await),
        403
    );
    eventually("the refusal is reported", async || {
        worker
            .lines()
            .iter()
            .any(|l| l.contains("HMAC signature validation failed for a request to /vercel/drain"))
    })
    .await;
    // A good record, then a bad one: neither is taken.
    let half = b"{\"id\":\"a\",\"deploymentId\":\"dpl_1\",\"source\":\"lambda\"}\n{\"id\":\"b\"}\n";
    let answer = worker.drain(half, &sign(DRAIN_SECRET, half), false).await;
    assert_eq!(answer.status().as_u16(), 400);
    assert!(answer.text().await.expect("body").contains("record 1"));
    // A small body that unpacks into more than the limit.
    let bomb = gzipped(&vec![b' '; 65 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024);
    assert_eq!(
        status(worker.drain(&bomb, &sign(DRAIN_SECRET, &bomb), true).await),
        413
    );
    let good = worker
        .drain(
            &batch,
            &recorded_signature("drain-lambda-batch.ndjson"),
            false,
        )
        .await;
    assert_eq!(status(good), 200);
    eventually("the good batch is taken", async || {
        worker.counter(RUNTIME_RECORDS).await == 4
    })
    .await;
    assert_eq!(
        worker.counter(BUILD_RECORDS).await,
        0,
        "nothing of the refused ones"
    );
    worker.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `shiplog webhooks register` for a listener on `port`: the webhook's id and secret.
async fn register_webhook(sim: &SimulatorHandle, port: u16) -> (String, String) {
    let url = format!("http://127.0.0.1:{port}/vercel/webhook");
    let made = cli(sim, "operator", &["webhooks", "register", "--url", &url]).await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    let secret = made
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Its secret, shown this once: "))
        .expect("the secret, once")
        .to_owned();
    let id = made.stdout.split_whitespace().nth(2).expect("an id");
    (id.to_owned(), secret)
}

/// `shiplog ARGS` against the simulator, as `role`.
async fn cli(sim: &SimulatorHandle, role: &str, args: &[&str]) -> support::bin::Output {
    let state = tempfile::tempdir().expect("dir");
    let mut cmd = shiplog(state.path(), &sim.base_url());
    cmd.env("SHIPLOG_ROLE", role).args(args);
    run(cmd).await
}

#[tokio::test]
async fn a_webhook_registered_here_brings_vercels_deliveries_faults_and_all() {
    let sim = simulator().await;
    sim.set_webhook_faults(WebhookFaults {
        duplicate: true,
        reorder: true,
    });
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/vercel/webhook");
    let refused = cli(&sim, "viewer", &["webhooks", "register", "--url", &url]).await;
    assert_eq!(refused.code, 77, "{}", refused.stderr);
    assert!(refused.stderr.contains("operator"), "{}", refused.stderr);
    let (hook_id, secret) = register_webhook(&sim, port).await;
    let worker = Worker::start_at(&sim, &format!("127.0.0.1:{port}"), |cmd| {
        cmd.env("VERCEL_WEBHOOK_SECRET", &secret);
        configure(cmd, "poll_interval_secs = 60\n");
    })
    .await;
    let id = sim.add_deployment(DeploymentSpec {
        project: "checkout-web".into(),
        events: vec![SimEvent::stdout(10, "Build completed")],
        ..DeploymentSpec::default()
    });
    worker
        .wait_for_news(&format!(
            "late deployment.created for {id}: it is already READY"
        ))
        .await;
    // Its start came after its end, the list waits a minute: the end still has it followed.
    eventually("the worker reads the build's log", async || {
        sim.requests()
            .iter()
            .any(|r| r.path.contains(&id) && r.path.ends_with("/events"))
    })
    .await;
    let news = worker.webhook_news();
    let ready = format!("{id} is READY");
    assert_eq!(
        news.iter().filter(|n| n.contains(&ready)).count(),
        1,
        "{news:#?}"
    );
    assert!(
        worker
            .counter("shiplog_listener_duplicates_total{route=\"/vercel/webhook\"}")
            .await
            >= 1
    );
    let listed = cli(&sim, "viewer", &["webhooks", "list", "--json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let hooks: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    assert_eq!(hooks[0]["id"], hook_id.as_str());
    assert!(!listed.stdout.contains(&secret), "the secret is shown once");
    let gone = cli(&sim, "operator", &["webhooks", "delete", &hook_id, "--yes"]).await;
    assert_eq!(gone.code, 0, "{}", gone.stderr);
    let listed = cli(&sim, "viewer", &["webhooks", "list", "--json"]).await;
    assert_eq!(listed.stdout.trim(), "[]");
    worker.stop().await;
}

#[tokio::test]
async fn a_drain_registered_here_is_signed_with_a_secret_made_here() {
    let sim = simulator().await;
    sim.add_deployment(DeploymentSpec {
        project: "storefront".into(),
        ..DeploymentSpec::default()
    });
    let args = [
        "drains",
        "register",
        "--url",
        "https://logs.example/vercel/drain",
        "--gzip",
        "--projects",
        "prj_1",
        "--project",
        "storefront",
    ];
    let made = cli(&sim, "operator", &args).await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    let secret = made
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Its secret, shown this once: "))
        .expect("the secret, once");
    assert_eq!(secret.len(), 64);
    let listed = cli(&sim, "viewer", &["drains", "list", "--json"]).await;
    let drains: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    assert_eq!(drains[0]["url"], "https://logs.example/vercel/drain");
    assert_eq!(drains[0]["projectIds"][0], "prj_1");
    let second = drains[0]["projectIds"][1].as_str().unwrap_or_default();
    assert!(
        second.starts_with("prj_"),
        "--project storefront by its id: {listed:?}",
        listed = listed.stdout
    );
    assert!(!listed.stdout.contains(secret));
    let id = drains[0]["id"].as_str().expect("an id");
    let kept = cli(&sim, "operator", &["drains", "delete", id]).await;
    assert_eq!(
        kept.code, 77,
        "not confirmed without a terminal: {}",
        kept.stderr
    );
    let gone = cli(&sim, "operator", &["drains", "delete", id, "--yes"]).await;
    assert_eq!(gone.code, 0, "{}", gone.stderr);
}

#[tokio::test]
async fn a_promote_webhook_moves_the_runtime_follower_before_its_next_look() {
    let sim = simulator().await;
    let production = || DeploymentSpec {
        project: "storefront".into(),
        target: Some("production".into()),
        events: vec![SimEvent::stdout(10, "Build completed")],
        ..DeploymentSpec::default()
    };
    let older = sim.add_deployment(production());
    sim.wait_finished(&older).await;
    let newer = sim.add_deployment(production());
    sim.wait_finished(&newer).await;
    let port = free_port();
    let (_, secret) = register_webhook(&sim, port).await;
    let worker = Worker::start_at(&sim, &format!("127.0.0.1:{port}"), |cmd| {
        cmd.env("VERCEL_WEBHOOK_SECRET", &secret)
            .env("SHIPLOG_RUNTIME_LOGS", "true");
    })
    .await;
    let looks = || {
        sim.requests()
            .iter()
            .filter(|r| r.path.starts_with("/v9/projects/"))
            .count()
    };
    eventually("the runtime follower follows production", async || {
        sim.requests()
            .iter()
            .any(|r| r.path.contains(&newer) && r.path.ends_with("/runtime-logs"))
    })
    .await;
    // Right after one of the follower's looks at the project, the next some seconds away.
    let seen = looks();
    eventually("the follower looks at production", async || looks() > seen).await;
    let looked = looks();
    let project = sim
        .requests()
        .iter()
        .find(|r| r.path.starts_with("/v9/projects/"))
        .map(|r| r.path.trim_start_matches("/v9/projects/").to_owned())
        .expect("the project");
    let promoted = reqwest::Client::new()
        .post(format!(
            "{}/v10/projects/{project}/promote/{older}",
            sim.base_url()
        ))
        .bearer_auth("test-token")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("promote");
    assert!(promoted.status().is_success());
    eventually(
        "the runtime follower moves to the promoted deployment",
        async || {
            worker.lines().iter().any(|line| {
                line.contains("\"event\":\"production_moved\"") && line.contains(&older)
            })
        },
    )
    .await;
    assert_eq!(looks(), looked, "moved on the webhook, not on a look");
    worker.stop().await;
}

#[tokio::test]
async fn the_simulator_retries_a_delivery_until_it_is_taken() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sim = simulator().await;
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = tries.clone();
    let receiver = axum::Router::new().route(
        "/vercel/webhook",
        axum::routing::post(move || {
            let tries = counted.clone();
            async move {
                // Busy twice, as a listener with a full queue answers.
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let base = support::http::serve(receiver).await;
    let url = format!("{base}/vercel/webhook");
    let made = cli(&sim, "operator", &["webhooks", "register", "--url", &url]).await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    sim.add_deployment(DeploymentSpec {
        project: "checkout-web".into(),
        events: vec![SimEvent::stdout(600_000_000, "still building")],
        ..DeploymentSpec::default()
    });
    eventually(
        "the created delivery is taken on its third try",
        async || tries.load(Ordering::SeqCst) == 3,
    )
    .await;
}

#[tokio::test]
async fn a_taken_port_stops_serve_before_anything_starts() {
    let sim = simulator().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let state = tempfile::tempdir().expect("dir");
    let mut cmd = shiplog(state.path(), &sim.base_url());
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    let out = run(cmd).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("could not listen on"), "{}", out.stderr);
    assert!(!out.stderr.contains("serving:"), "{}", out.stderr);
    assert!(
        sim.requests().is_empty(),
        "nothing started: {:?}",
        sim.requests()
    );
}
