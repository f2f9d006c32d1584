//! Integration tests of the Vercel simulator (`shiplog::demo`), with reqwest as the client.

mod support;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use shiplog::demo::{
    run_demo_loop, scenarios, DeploymentSpec, Fault, ReadyState, SimEvent, SimulatorHandle,
    SimulatorOptions, SinceMode, KEEPALIVE_LINE, STREAM_CONTENT_TYPE,
};
use support::wait::eventually;

const TOKEN: &str = "test-token";
/// Upper bound for anything the tests wait for; never reached when things work.
const DEADLINE: Duration = Duration::from_secs(20);

async fn start(speed: f64, since_mode: SinceMode) -> SimulatorHandle {
    SimulatorHandle::start(SimulatorOptions {
        port: 0,
        token: Some(TOKEN.to_string()),
        since_mode,
        speed,
    })
    .await
    .expect("simulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client builds")
}

async fn get(sim: &SimulatorHandle, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}", sim.base_url(), path_and_query))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request sent")
}

async fn get_json(sim: &SimulatorHandle, path_and_query: &str) -> (u16, Value) {
    let resp = get(sim, path_and_query).await;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.expect("JSON body");
    (status, body)
}

/// Awaits `fut` but fails the test instead of hanging forever.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A body read to its end: the bytes, and whether it ended cleanly.
struct Body {
    bytes: Vec<u8>,
    clean_end: bool,
}

impl Body {
    async fn read(mut resp: reqwest::Response) -> Body {
        let mut bytes = Vec::new();
        let clean_end = within("the body to end", async {
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
        })
        .await;
        Body { bytes, clean_end }
    }

    /// Complete lines (terminated by `\n`), without the `\n`.
    fn lines(&self) -> Vec<&[u8]> {
        let end = self
            .bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        self.bytes[..end]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Bytes after the last `\n`.
    fn tail(&self) -> &[u8] {
        let start = self
            .bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        &self.bytes[start..]
    }

    /// Parsed complete lines that are events (objects with `created`).
    fn events(&self) -> Vec<Value> {
        events_of_lines(&self.lines())
    }
}

fn events_of_lines(lines: &[&[u8]]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(|v| v.get("created").is_some())
        .collect()
}

/// Reads a live stream until `n` events arrived; returns them (keepalives dropped) and the
/// still-open response.
async fn read_events_until(resp: &mut reqwest::Response, n: usize) -> Vec<Value> {
    let mut buf = Vec::new();
    within("events to arrive", async {
        loop {
            let events = events_of_lines(&complete_lines(&buf));
            if events.len() >= n {
                return events;
            }
            match resp.chunk().await {
                Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
                other => panic!("stream ended early: {other:?}"),
            }
        }
    })
    .await
}

fn complete_lines(buf: &[u8]) -> Vec<&[u8]> {
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    buf[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// Merges event lists keeping the first occurrence of every id, in order.
fn dedup_by_id(lists: &[Vec<Value>]) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for list in lists {
        for e in list {
            let id = event_id(e);
            if seen.insert(id) {
                out.push(e.clone());
            }
        }
    }
    out
}

fn event_id(e: &Value) -> String {
    e.get("id")
        .or_else(|| e.pointer("/payload/id"))
        .and_then(Value::as_str)
        .expect("event has an id")
        .to_string()
}

fn created(e: &Value) -> i64 {
    e["created"].as_i64().expect("created is a number")
}

/// `n` stdout events with zero delay, the 4th carrying multi-byte characters.
fn quick_spec(n: usize, faults: Vec<Fault>) -> DeploymentSpec {
    DeploymentSpec {
        project: "quick".to_string(),
        events: (0..n)
            .map(|i| {
                if i == 3 {
                    SimEvent::stdout(0, format!("line {i}: ✓ compiled — ready 🚀"))
                } else {
                    SimEvent::stdout(0, format!("line {i}"))
                }
            })
            .collect(),
        faults,
        ..DeploymentSpec::default()
    }
}

fn events_path(id: &str, query: &str) -> String {
    format!("/v3/deployments/{id}/events?{query}")
}

// ---------------------------------------------------------------------------------------------
// Shapes of the REST endpoints

const LIST_ITEM_REQUIRED: [&str; 8] = [
    "uid",
    "name",
    "projectId",
    "url",
    "created",
    "type",
    "creator",
    "inspectorUrl",
];

const GET_REQUIRED: [&str; 27] = [
    "build",
    "env",
    "inspectorUrl",
    "isInConcurrentBuildsQueue",
    "isInSystemBuildsQueue",
    "projectSettings",
    "aliasAssigned",
    "bootedAt",
    "buildingAt",
    "buildSkipped",
    "creator",
    "public",
    "status",
    "id",
    "createdAt",
    "readyState",
    "name",
    "type",
    "meta",
    "regions",
    "url",
    "version",
    "projectId",
    "plan",
    "createdIn",
    "ownerId",
    "routes",
];

#[tokio::test]
async fn user_list_and_get_have_the_openapi_fields() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let first = sim.add_deployment(scenarios::by_name("nextjs-success").unwrap());
    let second = sim.add_deployment(DeploymentSpec {
        project: "other-project".to_string(),
        branch: Some("feat/x".to_string()),
        target: None,
        queued_ms: 600_000_000,
        ..quick_spec(3, vec![])
    });
    within("first build", sim.wait_finished(&first)).await;

    let (status, user) = get_json(&sim, "/v2/user").await;
    assert_eq!(status, 200);
    for key in ["id", "email", "name", "username"] {
        assert!(user["user"][key].is_string(), "user.{key}: {user}");
    }

    let (status, list) = get_json(&sim, "/v6/deployments").await;
    assert_eq!(status, 200);
    let items = list["deployments"].as_array().expect("deployments array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["uid"], second.as_str(), "newest first");
    assert_eq!(items[1]["uid"], first.as_str());
    for item in items {
        for key in LIST_ITEM_REQUIRED {
            assert!(item.get(key).is_some(), "list item lacks {key}: {item}");
        }
        assert_eq!(item["type"], "LAMBDAS");
        assert!(item["creator"]["uid"].is_string());
        assert!(
            item["created"].is_i64() && item["createdAt"].is_i64() && item["buildingAt"].is_i64()
        );
        assert!(item["meta"]["githubCommitRef"].is_string());
        assert!(item["meta"]["githubCommitMessage"].is_string());
        assert_eq!(item["meta"]["githubCommitSha"].as_str().unwrap().len(), 40);
        assert!(item["inspectorUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://vercel.com/"));
        assert!(item["projectId"].as_str().unwrap().starts_with("prj_"));
        assert_eq!(item["state"], item["readyState"]);
    }
    assert_eq!(items[1]["readyState"], "READY");
    assert!(items[1]["ready"].is_i64());
    assert_eq!(items[1]["target"], "production");
    assert_eq!(items[0]["readyState"], "QUEUED");
    assert!(items[0]["target"].is_null());
    let pagination = &list["pagination"];
    assert_eq!(pagination["count"], 2);
    assert!(pagination["next"].is_null());
    assert!(pagination.get("prev").is_some());

    // limit + pagination.next as `until`
    let (_, page1) = get_json(&sim, "/v6/deployments?limit=1").await;
    assert_eq!(page1["pagination"]["count"], 1);
    assert_eq!(page1["deployments"][0]["uid"], second.as_str());
    let next = page1["pagination"]["next"].as_i64().expect("next page");
    let (_, page2) = get_json(&sim, &format!("/v6/deployments?limit=1&until={next}")).await;
    assert_eq!(page2["deployments"][0]["uid"], first.as_str());
    assert!(page2["pagination"]["next"].is_null());

    // filters
    let (_, ready) = get_json(&sim, "/v6/deployments?state=READY,ERROR").await;
    assert_eq!(ready["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(ready["deployments"][0]["uid"], first.as_str());
    let project_id = sim.project_id(&second).unwrap();
    let (_, by_project) = get_json(
        &sim,
        &format!("/v6/deployments?projectId={project_id}&teamId=team_x"),
    )
    .await;
    assert_eq!(by_project["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(by_project["deployments"][0]["uid"], second.as_str());
    let since = items[1]["created"].as_i64().unwrap();
    let (_, newer) = get_json(&sim, &format!("/v6/deployments?since={since}")).await;
    assert_eq!(newer["deployments"].as_array().unwrap().len(), 1);

    // get by id and by URL
    let (status, dep) = get_json(&sim, &format!("/v13/deployments/{first}")).await;
    assert_eq!(status, 200);
    for key in GET_REQUIRED {
        assert!(dep.get(key).is_some(), "v13 lacks {key}: {dep}");
    }
    assert_eq!(dep["id"], first.as_str());
    assert_eq!(dep["readyState"], "READY");
    assert_eq!(dep["status"], "READY");
    assert!(dep["ready"].is_i64());
    let url = sim.deployment_url(&first).unwrap();
    assert_eq!(dep["url"], url.as_str());
    let (status, by_url) = get_json(&sim, &format!("/v13/deployments/{url}")).await;
    assert_eq!(status, 200);
    assert_eq!(by_url["id"], first.as_str());
    // events by URL too
    let body = Body::read(get(&sim, &events_path(&url, "follow=1")).await).await;
    assert_eq!(body.events(), sim.produced_events(&first));
}

#[tokio::test]
async fn error_envelopes_404_403() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let (status, body) = get_json(&sim, "/v13/deployments/dpl_doesNotExist").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": "not_found", "message": "Deployment not found", "id": "dpl_doesNotExist"}})
    );
    let (status, body) = get_json(&sim, &events_path("dpl_doesNotExist", "follow=1")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let forbidden =
        serde_json::json!({"error": {"code": "forbidden", "message": "Not authorized"}});
    let url = format!("{}/v6/deployments", sim.base_url());
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap(), forbidden);
    let resp = client()
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap(), forbidden);

    // token None: any bearer token, but not a missing one
    let open = SimulatorHandle::start(SimulatorOptions::default())
        .await
        .unwrap();
    let url = format!("{}/v2/user", open.base_url());
    let resp = client()
        .get(&url)
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap(), forbidden);
}

#[tokio::test]
async fn requests_are_recorded_with_the_token_redacted() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(3, vec![]));
    let resp = client()
        .get(format!(
            "{}{}",
            sim.base_url(),
            events_path(&id, "follow=1&since=123&teamId=team_abc")
        ))
        .bearer_auth(TOKEN)
        .header("X-Correlation-ID", "corr-42")
        .send()
        .await
        .unwrap();
    Body::read(resp).await;
    client()
        .get(format!("{}/v2/user", sim.base_url()))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();

    let reqs = sim.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, format!("/v3/deployments/{id}/events"));
    assert_eq!(r.query_param("teamId").as_deref(), Some("team_abc"));
    assert_eq!(r.query_param("since").as_deref(), Some("123"));
    assert_eq!(r.header("x-correlation-id"), Some("corr-42"));
    assert_eq!(r.header("authorization"), Some("[REDACTED]"));
    assert!(r.authorized);
    assert!(r.headers.iter().all(|(n, _)| n == &n.to_ascii_lowercase()));
    assert!(!reqs[1].authorized);
    assert_eq!(reqs[1].header("authorization"), Some("[REDACTED]"));
    assert!(!format!("{reqs:?}").contains(TOKEN));
}

// ---------------------------------------------------------------------------------------------
// Event streams

#[tokio::test]
async fn follow_stream_yields_exactly_the_produced_events_then_ends() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(scenarios::by_name("nextjs-success").unwrap());
    let resp = get(
        &sim,
        &events_path(&id, "follow=1&direction=forward&format=lines&limit=-1"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        STREAM_CONTENT_TYPE
    );
    let body = Body::read(resp).await;
    assert!(body.clean_end, "stream ends cleanly");
    assert!(body.tail().is_empty());
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Ready));
    let produced = sim.produced_events(&id);
    assert_eq!(produced.len(), 95);
    assert_eq!(body.events(), produced);
    // every non-event line is a keepalive
    for line in body.lines() {
        let v: Value = serde_json::from_slice(line).unwrap();
        if v.get("created").is_none() {
            assert_eq!(line, KEEPALIVE_LINE.trim_end().as_bytes());
        }
    }
}

#[tokio::test]
async fn event_shapes_ids_and_the_legacy_path() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let flat = sim.add_deployment(scenarios::by_name("failing-build").unwrap());
    let wrapped = sim.add_deployment(scenarios::by_name("astro-docs").unwrap());
    within("builds", async {
        sim.wait_finished(&flat).await;
        sim.wait_finished(&wrapped).await;
    })
    .await;
    assert_eq!(sim.ready_state(&flat), Some(ReadyState::Error));

    let events = sim.produced_events(&flat);
    let mut prev_serial = String::new();
    for e in &events {
        for key in [
            "created",
            "date",
            "deploymentId",
            "id",
            "info",
            "serial",
            "type",
            "text",
        ] {
            assert!(e.get(key).is_some(), "flat event lacks {key}: {e}");
        }
        assert_eq!(e["created"], e["date"]);
        assert_eq!(e["id"], e["serial"]);
        assert_eq!(e["deploymentId"], flat.as_str());
        assert_eq!(e["info"]["type"], "build");
        assert!(e["info"]["name"].as_str().unwrap().starts_with("bld_"));
        let serial = e["serial"].as_str().unwrap();
        assert_eq!(serial.len(), 28);
        assert!(serial.bytes().all(|b| b.is_ascii_digit()));
        assert!(serial.starts_with(&created(e).to_string()));
        assert!(serial > prev_serial.as_str(), "serials sort as strings");
        prev_serial = serial.to_string();
    }
    let last = events.last().unwrap();
    assert_eq!(
        last["text"],
        "Error: Command \"npm run build\" exited with 1"
    );
    assert_eq!(last["level"], "error");
    assert_eq!(last["type"], "stderr");

    let body = Body::read(
        get(
            &sim,
            &format!("/v3/now/deployments/{wrapped}/events?follow=1"),
        )
        .await,
    )
    .await;
    assert!(body.clean_end);
    let got = body.events();
    assert_eq!(got, sim.produced_events(&wrapped));
    for e in &got {
        assert!(e["payload"]["text"].is_string());
        assert_eq!(e["payload"]["id"], e["payload"]["serial"]);
        assert_eq!(e["payload"]["date"], e["created"]);
        assert_eq!(e["payload"]["deploymentId"], wrapped.as_str());
        assert!(e.get("text").is_none());
    }
}

#[tokio::test]
async fn non_follow_json_array_lines_backward_and_limit() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(6, vec![]));
    within("build", sim.wait_finished(&id)).await;
    let produced = sim.produced_events(&id);

    let (status, array) = get_json(&sim, &events_path(&id, "follow=0")).await;
    assert_eq!(status, 200);
    assert_eq!(array, Value::Array(produced.clone()));
    let (_, array) = get_json(&sim, &events_path(&id, "follow=")).await;
    assert_eq!(array, Value::Array(produced.clone()));

    let resp = get(&sim, &events_path(&id, "follow=&format=lines")).await;
    assert_eq!(resp.headers()["content-type"], STREAM_CONTENT_TYPE);
    let body = Body::read(resp).await;
    assert!(body.clean_end);
    assert_eq!(body.events(), produced);

    let resp = client()
        .get(format!("{}{}", sim.base_url(), events_path(&id, "")))
        .bearer_auth(TOKEN)
        .header("accept", "application/stream+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], STREAM_CONTENT_TYPE);
    assert_eq!(Body::read(resp).await.events(), produced);
    // the SDK's default Accept gets an array
    let resp = client()
        .get(format!("{}{}", sim.base_url(), events_path(&id, "")))
        .bearer_auth(TOKEN)
        .header(
            "accept",
            "application/json;q=1, application/stream+json;q=0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        Value::Array(produced.clone())
    );

    let (_, backward) = get_json(&sim, &events_path(&id, "direction=backward&limit=2")).await;
    assert_eq!(backward, serde_json::json!([produced[5], produced[4]]));
    let (_, limited) = get_json(&sim, &events_path(&id, "limit=2")).await;
    assert_eq!(limited, serde_json::json!([produced[0], produced[1]]));
    let (status, bad) = get_json(&sim, &events_path(&id, "follow=1&direction=backward")).await;
    assert_eq!(status, 400);
    assert_eq!(bad["error"]["code"], "bad_request");
}

/// e0 @ t, e1 @ t+5, e2 and e3 stamped like e1 (same-ms burst), e4 @ t+10.
fn burst_spec() -> DeploymentSpec {
    DeploymentSpec {
        project: "burst".to_string(),
        events: vec![
            SimEvent::stdout(0, "before"),
            SimEvent::stdout(5_000, "burst 1"),
            SimEvent::stdout(0, "burst 2").same_ms(),
            SimEvent::stdout(0, "burst 3").same_ms(),
            SimEvent::stdout(5_000, "after"),
        ],
        ..DeploymentSpec::default()
    }
}

#[tokio::test]
async fn since_inclusive_exclusive_ignored_on_a_same_ms_burst() {
    for (mode, expected) in [
        (
            SinceMode::Inclusive,
            vec!["burst 1", "burst 2", "burst 3", "after"],
        ),
        (SinceMode::Exclusive, vec!["after"]),
        (
            SinceMode::Ignored,
            vec!["before", "burst 1", "burst 2", "burst 3", "after"],
        ),
    ] {
        let sim = start(1000.0, mode).await;
        let id = sim.add_deployment(burst_spec());
        within("build", sim.wait_finished(&id)).await;
        let produced = sim.produced_events(&id);
        assert_eq!(created(&produced[1]), created(&produced[2]));
        assert_eq!(created(&produced[1]), created(&produced[3]));
        assert!(created(&produced[0]) < created(&produced[1]));
        assert!(created(&produced[3]) < created(&produced[4]));
        let since = created(&produced[1]);
        for follow in ["1", "0"] {
            let body = Body::read(
                get(
                    &sim,
                    &events_path(&id, &format!("follow={follow}&format=lines&since={since}")),
                )
                .await,
            )
            .await;
            let texts: Vec<String> = body
                .events()
                .iter()
                .map(|e| e["text"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(texts, expected, "{mode:?} follow={follow}");
        }
        // `until` is inclusive
        let (_, upto) = get_json(&sim, &events_path(&id, &format!("until={since}"))).await;
        let n = upto.as_array().unwrap().len();
        assert_eq!(n, 4, "{mode:?}");
    }
}

#[tokio::test]
async fn idle_follow_stream_sends_keepalives() {
    // speed 100: keepalive every 50 ms; the second event is due in 100 minutes of real time.
    let sim = start(100.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(DeploymentSpec {
        events: vec![
            SimEvent::stdout(0, "first"),
            SimEvent::stdout(600_000_000, "never"),
        ],
        ..DeploymentSpec::default()
    });
    let mut resp = get(&sim, &events_path(&id, "follow=1")).await;
    let mut buf = Vec::new();
    within("a keepalive", async {
        loop {
            if complete_lines(&buf)
                .iter()
                .any(|l| *l == KEEPALIVE_LINE.trim_end().as_bytes())
            {
                return;
            }
            buf.extend_from_slice(&resp.chunk().await.unwrap().expect("stream open"));
        }
    })
    .await;
    assert_eq!(
        events_of_lines(&complete_lines(&buf)),
        sim.produced_events(&id)
    );
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Building));
    // canceling ends the stream cleanly
    assert!(sim.cancel(&id));
    let rest = Body::read(resp).await;
    assert!(rest.clean_end);
    assert!(rest.events().is_empty());
}

#[tokio::test]
async fn cancel_endpoint() {
    let sim = start(1.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(DeploymentSpec {
        events: vec![
            SimEvent::stdout(0, "first"),
            SimEvent::stdout(600_000_000, "never"),
        ],
        ..DeploymentSpec::default()
    });
    let mut stream = get(&sim, &events_path(&id, "follow=1")).await;
    read_events_until(&mut stream, 1).await;
    let url = format!("{}/v12/deployments/{id}/cancel", sim.base_url());
    let resp = client()
        .patch(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["readyState"], "CANCELED");
    assert!(body["canceledAt"].is_i64());
    within("canceled", sim.wait_finished(&id)).await;
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Canceled));
    let rest = Body::read(stream).await;
    assert!(rest.clean_end);
    assert_eq!(sim.produced_events(&id).len(), 1);
    let resp = client()
        .patch(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client()
        .patch(format!(
            "{}/v12/deployments/dpl_nope/cancel",
            sim.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn queued_then_building_then_outcome() {
    let sim = start(1.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(DeploymentSpec {
        queued_ms: 600_000_000,
        ..quick_spec(2, vec![])
    });
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Queued));
    let (_, dep) = get_json(&sim, &format!("/v13/deployments/{id}")).await;
    assert_eq!(dep["readyState"], "QUEUED");
    let (_, list) = get_json(&sim, "/v6/deployments?state=QUEUED").await;
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1);
    // a queued deployment has no events yet
    let (_, events) = get_json(&sim, &events_path(&id, "")).await;
    assert_eq!(events, serde_json::json!([]));

    let building = sim.add_deployment(DeploymentSpec {
        events: vec![SimEvent::stdout(0, "a"), SimEvent::stdout(600_000_000, "b")],
        ..DeploymentSpec::default()
    });
    within("first event", sim.wait_produced(&building, 1)).await;
    assert_eq!(sim.ready_state(&building), Some(ReadyState::Building));
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn drop_before_aborts_then_since_resumes() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(10, vec![Fault::DropBefore { event: 4 }]));
    within("build", sim.wait_finished(&id)).await;
    let produced = sim.produced_events(&id);

    let first = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(!first.clean_end, "the body read must fail");
    assert_eq!(first.events(), produced[..4].to_vec());
    assert!(first.tail().is_empty());
    assert!(sim.unfired_faults(&id).is_empty());

    let since = created(first.events().last().unwrap());
    let second =
        Body::read(get(&sim, &events_path(&id, &format!("follow=1&since={since}"))).await).await;
    assert!(second.clean_end, "the fault fires once");
    assert_eq!(dedup_by_id(&[first.events(), second.events()]), produced);
}

#[tokio::test]
async fn drop_mid_line_cuts_inside_a_multibyte_character() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(6, vec![Fault::DropMidLine { event: 3 }]));
    within("build", sim.wait_finished(&id)).await;
    let produced = sim.produced_events(&id);

    let first = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(!first.clean_end);
    assert_eq!(first.events(), produced[..3].to_vec());
    let tail = first.tail();
    assert!(tail.starts_with(b"{\"created\":"));
    let err = std::str::from_utf8(tail).expect_err("cut inside a multi-byte character");
    assert_eq!(err.error_len(), None, "an incomplete character at the end");
    assert!(serde_json::from_slice::<Value>(tail).is_err());

    let second = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(second.clean_end);
    assert_eq!(second.events(), produced);
}

#[tokio::test]
async fn clean_end_before_ends_early_while_building_and_since_continues() {
    let sim = start(1.0, SinceMode::Inclusive).await;
    let mut spec = quick_spec(3, vec![Fault::CleanEndBefore { event: 2 }]);
    spec.events
        .push(SimEvent::stdout(600_000_000, "much later"));
    let id = sim.add_deployment(spec);
    within("three events", sim.wait_produced(&id, 3)).await;

    let first = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(first.clean_end, "a valid chunked end");
    let produced = sim.produced_events(&id);
    assert_eq!(first.events(), produced[..2].to_vec());
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Building));

    let since = created(first.events().last().unwrap());
    let mut second = get(&sim, &events_path(&id, &format!("follow=1&since={since}"))).await;
    let got = read_events_until(&mut second, 2).await;
    assert_eq!(dedup_by_id(&[first.events(), got]), produced);
    assert!(sim.unfired_faults(&id).is_empty());
    drop(second);
    sim.shutdown();
}

#[tokio::test]
async fn stall_before_sends_nothing_more() {
    let sim = start(1.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(5, vec![Fault::StallBefore { event: 2 }]));
    within("build", sim.wait_finished(&id)).await;
    let mut resp = get(&sim, &events_path(&id, "follow=1")).await;
    let got = read_events_until(&mut resp, 2).await;
    assert_eq!(got, sim.produced_events(&id)[..2].to_vec());
    // nothing else arrives (a client idle timeout would fire)
    let more = tokio::time::timeout(Duration::from_secs(1), resp.chunk()).await;
    assert!(more.is_err(), "expected silence, got {more:?}");
    assert_eq!(sim.open_streams(), 1);
    drop(resp);
    // the server notices the client went away
    within("the stalled stream to be dropped", sim.streams_closed()).await;
    assert!(sim.unfired_faults(&id).is_empty());

    let second = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(second.clean_end);
    assert_eq!(second.events(), sim.produced_events(&id));

    // a stall at the very first event: headers arrive, no body bytes
    let id = sim.add_deployment(quick_spec(2, vec![Fault::StallBefore { event: 0 }]));
    within("build", sim.wait_finished(&id)).await;
    let mut resp = get(&sim, &events_path(&id, "follow=1")).await;
    assert_eq!(resp.status(), 200);
    let more = tokio::time::timeout(Duration::from_secs(1), resp.chunk()).await;
    assert!(more.is_err(), "expected silence, got {more:?}");
}

#[tokio::test]
async fn oversized_line_is_written_once_and_is_not_an_event() {
    let bytes = 5 * 1024 * 1024;
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(
        4,
        vec![Fault::OversizedLineBefore { event: 1, bytes }],
    ));
    within("build", sim.wait_finished(&id)).await;
    let produced = sim.produced_events(&id);

    let body = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(body.clean_end);
    let lines = body.lines();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1].len(), bytes);
    let huge: Value = serde_json::from_slice(lines[1]).expect("valid JSON");
    assert_eq!(huge["created"], produced[1]["created"]);
    assert!(!produced.iter().any(|e| e["id"] == huge["id"]));
    let events: Vec<Value> = body
        .events()
        .into_iter()
        .filter(|e| e["id"] != huge["id"])
        .collect();
    assert_eq!(events, produced);

    let again = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert_eq!(again.lines().len(), 4);
}

#[tokio::test]
async fn malformed_lines_are_written_once() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(3, vec![Fault::MalformedLineBefore { event: 2 }]));
    within("build", sim.wait_finished(&id)).await;
    let produced = sim.produced_events(&id);

    let body = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(body.clean_end);
    let lines = body.lines();
    assert_eq!(lines.len(), 5);
    assert!(serde_json::from_slice::<Value>(lines[2]).is_err());
    assert!(
        std::str::from_utf8(lines[2]).is_ok(),
        "first bad line is valid UTF-8"
    );
    assert!(
        std::str::from_utf8(lines[3]).is_err(),
        "second bad line is invalid UTF-8"
    );
    assert_eq!(body.events(), produced);

    let again = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert_eq!(again.lines().len(), 3);
}

#[tokio::test]
async fn rate_limit_then_server_errors_then_success() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(quick_spec(
        3,
        vec![
            Fault::RateLimitNextRequest {
                retry_after_secs: 3,
            },
            Fault::ServerErrorNextRequests { count: 2 },
        ],
    ));
    within("build", sim.wait_finished(&id)).await;
    // other endpoints are not affected
    let (status, _) = get_json(&sim, &format!("/v13/deployments/{id}")).await;
    assert_eq!(status, 200);

    let resp = get(&sim, &events_path(&id, "follow=1")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert!(resp.headers().contains_key("x-ratelimit-reset"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["limit"]["remaining"], 0);

    for n in 0..2 {
        let resp = get(&sim, &events_path(&id, "follow=1")).await;
        assert_eq!(resp.status(), 500, "server error #{n}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal_server_error");
        if n == 0 {
            assert_eq!(
                sim.unfired_faults(&id),
                vec![Fault::ServerErrorNextRequests { count: 1 }]
            );
        }
    }
    assert!(sim.unfired_faults(&id).is_empty());
    let body = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(body.clean_end);
    assert_eq!(body.events(), sim.produced_events(&id));
}

#[tokio::test]
async fn injected_fault_at_runtime_fires_on_a_live_stream() {
    let sim = start(1.0, SinceMode::Exclusive).await;
    let mut spec = quick_spec(2, vec![]);
    spec.events
        .push(SimEvent::stdout(600_000_000, "much later"));
    let id = sim.add_deployment(spec);
    within("two events", sim.wait_produced(&id, 2)).await;
    let mut resp = get(&sim, &events_path(&id, "follow=1")).await;
    let got = read_events_until(&mut resp, 2).await;
    assert_eq!(got, sim.produced_events(&id));
    assert!(sim.inject_fault(&id, Fault::DropBefore { event: 2 }));
    assert!(!sim.inject_fault("dpl_nope", Fault::DropBefore { event: 2 }));
    assert_eq!(
        sim.unfired_faults(&id),
        vec![Fault::DropBefore { event: 2 }]
    );
    sim.shutdown();
    // shutdown aborts open streams
    let rest = Body::read(resp).await;
    assert!(!rest.clean_end);
}

// ---------------------------------------------------------------------------------------------
// Lifetime, scenarios, demo loop

#[tokio::test]
async fn dropping_the_last_handle_stops_the_server() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let clone = sim.clone();
    let url = format!("{}/v2/user", sim.base_url());
    drop(sim);
    let resp = client().get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200, "a clone keeps it alive");
    let stopped = clone.stopped();
    drop(clone);
    within("the server to stop", stopped).await;
    let fresh = reqwest::Client::new();
    assert!(fresh.get(&url).bearer_auth(TOKEN).send().await.is_err());
}

#[test]
fn builtin_scenarios_are_realistic() {
    let all = scenarios::builtin();
    assert_eq!(all.len(), scenarios::NAMES.len());
    for name in [
        "nextjs-success",
        "failing-build",
        "canceled",
        "leaked-secret",
    ] {
        assert!(scenarios::by_name(name).is_some(), "{name}");
    }

    let next = scenarios::by_name("nextjs-success").unwrap();
    assert!((60..=120).contains(&next.events.len()));
    let total_ms: u64 = next.events.iter().map(|e| e.after_ms).sum();
    assert!((30_000..=60_000).contains(&total_ms), "{total_ms}");
    let text: Vec<&str> = next.events.iter().map(|e| e.text.as_str()).collect();
    for needle in [
        "Cloning",
        "Installing dependencies",
        "▲ Next.js",
        "Route (app)",
        "Build Completed",
        "Deploying outputs",
    ] {
        assert!(text.iter().any(|t| t.contains(needle)), "{needle}");
    }
    assert!(text.iter().any(|t| t.contains('\u{1b}')), "ANSI escapes");
    assert!(
        next.events.iter().any(|e| e.same_ms_as_previous),
        "same-ms bursts"
    );
    assert_eq!(next.outcome, ReadyState::Ready);

    let failing = scenarios::by_name("failing-build").unwrap();
    assert_eq!(failing.outcome, ReadyState::Error);
    let last = failing.events.last().unwrap();
    assert_eq!(last.text, "Error: Command \"npm run build\" exited with 1");
    assert_eq!(last.level.as_deref(), Some("error"));
    assert!(failing.events.iter().any(|e| e.text.contains("Type error")));

    assert_eq!(
        scenarios::by_name("canceled").unwrap().outcome,
        ReadyState::Canceled
    );

    let leaked = scenarios::by_name("leaked-secret").unwrap();
    assert_eq!(leaked.outcome, ReadyState::Ready);
    let token_line = leaked
        .events
        .iter()
        .find_map(|e| e.text.strip_prefix("VERCEL_TOKEN=vcp_"))
        .expect("a VERCEL_TOKEN line");
    assert!((20..=60).contains(&token_line.len()));
    assert!(token_line.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(leaked
        .events
        .iter()
        .any(|e| e.text.contains("Authorization: Bearer ")));

    assert!(scenarios::by_name("astro-docs").unwrap().wrapped_shape);
    assert!(
        scenarios::parse("{\"project\":\"x\",\"events\":[{\"ms\":1,\"txt\":\"typo\"}]}").is_err()
    );
}

#[tokio::test]
async fn synthetic_build_streams_every_event() {
    let spec = scenarios::synthetic(20_000);
    assert_eq!(spec.events.len(), 20_000);
    let sim = start(1.0, SinceMode::Inclusive).await;
    let id = sim.add_deployment(spec);
    within("build", sim.wait_finished(&id)).await;
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Ready));
    let body = Body::read(get(&sim, &events_path(&id, "follow=1")).await).await;
    assert!(body.clean_end);
    let events = body.events();
    assert_eq!(events.len(), 20_000);
    let produced = sim.produced_events(&id);
    assert_eq!(events.first(), produced.first());
    assert_eq!(events.last(), produced.last());
}

#[tokio::test]
async fn demo_loop_keeps_adding_deployments_until_shutdown() {
    let sim = start(1000.0, SinceMode::Inclusive).await;
    let task = tokio::spawn(run_demo_loop(sim.clone()));
    eventually("several demo deployments", async || {
        let ids = sim.deployment_ids();
        ids.len() >= 6
            && ids
                .iter()
                .filter(|id| sim.ready_state(id).is_some_and(|s| s.is_terminal()))
                .count()
                >= 3
    })
    .await;
    let (_, list) = get_json(&sim, "/v6/deployments?limit=100").await;
    let states: HashSet<String> = list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["readyState"].as_str().unwrap().to_string())
        .collect();
    assert!(states.contains("READY"), "{states:?}");
    sim.shutdown();
    within("the demo loop to stop", task).await.unwrap();
}
