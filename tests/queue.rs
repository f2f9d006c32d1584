//! The delivery queue `LOGQ:{env}`: exactly one delivery per alert with two instances on one
//! Redis, a killed worker's job taken over after the stall interval, retries with backoff then
//! the dead letters, the concurrency and the rate limit, a restart that loses nothing, and the
//! fall back to the process (and back) when Redis goes away.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use shiplog::alert::channels::webhook::Webhook;
use shiplog::alert::channels::{ChannelSettings, Switched};
use shiplog::alert::delivery::{Deliverer, DeliveryStatus};
use shiplog::alert::queue::worker::{Delivered, QueueSnapshot, Worker};
use shiplog::alert::queue::{
    DeliveryQueue, Enqueued, Job, LocalQueue, QueueCounts, QueueHealthChange, QueueSettings,
    SharedQueue,
};
use shiplog::alert::{Alert, AlertSeverity, Channel, Fingerprint};
use shiplog::log::{LogEntry, Severity, Tier};
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use support::wait::eventually;
use tokio::sync::{mpsc, watch};

/// How the fake webhook answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    /// Never answers the first request; answers the rest 200.
    HangFirst,
    ServerError,
    /// Holds every request until released.
    Hold,
}

#[derive(Clone)]
struct Hook {
    answer: Answer,
    /// Fingerprints of the requests answered 200, in order.
    delivered: Arc<Mutex<Vec<String>>>,
    /// Requests seen, answered or not.
    arrived: Arc<Mutex<usize>>,
    /// Lets held requests (and any that come later) through once true.
    release: Arc<watch::Sender<bool>>,
}

async fn receive(State(hook): State<Hook>, Json(body): Json<serde_json::Value>) -> StatusCode {
    let first = {
        let mut arrived = hook.arrived.lock().expect("lock");
        *arrived += 1;
        *arrived == 1
    };
    match hook.answer {
        Answer::HangFirst if first => std::future::pending().await,
        Answer::ServerError => return StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hold => {
            let _ = hook
                .release
                .subscribe()
                .wait_for(|released| *released)
                .await;
        }
        _ => {}
    }
    let fingerprint = body["fingerprint"].as_str().unwrap_or("").to_owned();
    hook.delivered.lock().expect("lock").push(fingerprint);
    StatusCode::OK
}

async fn webhook(answer: Answer) -> (String, Hook) {
    let hook = Hook {
        answer,
        delivered: Arc::default(),
        arrived: Arc::default(),
        release: Arc::new(watch::channel(false).0),
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(hook.clone());
    (format!("{}/hook", support::http::serve(app).await), hook)
}

fn deliverer(url: &str) -> Arc<Deliverer> {
    Arc::new(Deliverer::new(ChannelSettings {
        webhook: Switched::to(Webhook {
            url: Secret::new(url),
        }),
        ..Default::default()
    }))
}

fn alert(deployment: &str) -> Alert {
    let entry = LogEntry::at(
        1_795_684_800_000,
        Tier::Deploy,
        Severity::Error,
        "failed",
        format!("Deployment {deployment} of storefront is ERROR"),
    )
    .with_deployment(format!("vercel-{deployment}-1"));
    Alert {
        fingerprint: Fingerprint::of("deploy_failed", &entry),
        rule: "deploy_failed".to_owned(),
        severity: AlertSeverity::High,
        channels: vec![Channel::Webhook],
        entry: Arc::new(entry),
    }
}

fn job(deployment: &str) -> Job {
    Job::new(alert(deployment), Channel::Webhook, 1_795_684_800_000)
}

fn quick() -> QueueSettings {
    QueueSettings {
        backoff: Duration::from_millis(50),
        stall_interval: Duration::from_millis(600),
        ..QueueSettings::default()
    }
}

/// A worker over `queue`, running until the returned sender says stop.
struct Running {
    reports: mpsc::Receiver<Delivered>,
    snapshot: watch::Receiver<QueueSnapshot>,
    closing: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

fn work(queue: Arc<DeliveryQueue>, deliverer: Arc<Deliverer>) -> Running {
    let (reports_tx, reports) = mpsc::channel(1024);
    let (snapshot_tx, snapshot) = watch::channel(QueueSnapshot::default());
    let (closing, closed) = watch::channel(false);
    let worker = Arc::new(Worker::new(
        queue,
        deliverer,
        reports_tx,
        Arc::new(Metrics::new()),
        snapshot_tx,
    ));
    let done = tokio::spawn(worker.run(closed));
    Running {
        reports,
        snapshot,
        closing,
        done,
    }
}

async fn shared_queue(redis: &str, namespace: &str, settings: QueueSettings) -> DeliveryQueue {
    let shared = SharedQueue::open(redis, namespace, "test", settings.clone())
        .await
        .expect("queue on redis");
    DeliveryQueue::new(
        "LOGQ:test".to_owned(),
        Some(shared),
        LocalQueue::in_memory(settings.clone()),
        settings,
        Arc::new(|_| {}),
    )
}

/// A queue on Redis whose losses and recoveries of Redis are recorded.
async fn watched_queue(
    redis: &str,
    namespace: &str,
) -> (Arc<DeliveryQueue>, Arc<Mutex<Vec<QueueHealthChange>>>) {
    let changes = Arc::new(Mutex::new(Vec::new()));
    let heard = changes.clone();
    let settings = quick();
    let shared = SharedQueue::open(redis, namespace, "test", settings.clone())
        .await
        .expect("queue");
    let queue = Arc::new(DeliveryQueue::new(
        "LOGQ:test".to_owned(),
        Some(shared),
        LocalQueue::in_memory(settings.clone()),
        settings,
        Arc::new(move |change| heard.lock().expect("lock").push(change)),
    ));
    (queue, changes)
}

async fn next_report(running: &mut Running) -> Delivered {
    tokio::time::timeout(Duration::from_secs(20), running.reports.recv())
        .await
        .expect("a delivery report within 20 s")
        .expect("the worker is running")
}

/// Two engine instances on one Redis (two `shiplog serve` next to each other) follow the same
/// ten failing deployments, five failures each: every alert reaches the webhook exactly once.
#[tokio::test]
async fn two_instances_on_one_redis_deliver_each_alert_exactly_once() {
    use shiplog::alert::rule::{rules_in, RuleSet};
    use shiplog::alert::runner::{desk, Outward};
    use shiplog::alert::{RuleEvaluator, Suppressor};
    use shiplog::log::{Delivery, Logger};
    use shiplog::store::StateStore;

    let redis = support::redis::RedisServer::start();
    let namespace = support::redis::fresh_namespace();
    let dir = tempfile::tempdir().expect("dir");
    let (url, hook) = webhook(Answer::Ok).await;
    let to_the_webhook = rules_in(
        "[[alert_rules]]\nkey = \"deploy_failed\"\ntier = \"deploy\"\nevent = [\"failed\"]\nseverity = \"high\"\nchannels = [\"webhook\"]\nsuppression_minutes = 10\n",
        "test rules",
    )
    .expect("rules");
    let mut loggers = Vec::new();
    let mut desks = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..2 {
        let store = StateStore::redis(&redis.url, &namespace, dir.path(), Arc::new(|_| {}))
            .await
            .expect("store");
        let metrics = Arc::new(Metrics::new());
        let engine = RuleEvaluator::new(
            RuleSet::with_overrides(to_the_webhook.clone()).expect("rules"),
            Suppressor::shared(store),
            metrics.clone(),
        );
        let (builder, outlet) = Logger::builder().channel("alerts", 1024, Delivery::DropWhenFull);
        let logger = builder.build();
        let (runner, desk) = desk();
        let (stop, shutdown) = watch::channel(false);
        let outward = Outward {
            deliverer: deliverer(&url),
            queue: Arc::new(shared_queue(&redis.url, &namespace, quick()).await),
            metrics,
            user: "ops".to_owned(),
            sync: Some(
                shiplog::alert::sync::AlertSync::connect(&redis.url, &namespace)
                    .await
                    .expect("sync"),
            ),
            store: None,
            routing: Arc::new(shiplog::alert::routing::Routing::default().without_wait()),
        };
        tokio::spawn(runner.run(engine, outlet, logger.clone(), shutdown, outward));
        loggers.push(logger);
        desks.push(desk);
        stops.push(stop);
    }
    // A runner's worker reports only once the runner listens to the other instance's reports.
    for desk in &desks {
        eventually("both instances running", async || {
            desk.queue.borrow().backend == "redis"
        })
        .await;
    }
    for round in 0..5 {
        for deployment in 0..10 {
            let entry = (*alert(&format!("dpl_{deployment}")).entry).clone();
            let mut entry = entry;
            entry.ts += round;
            for logger in &loggers {
                logger.write(entry.clone());
            }
        }
    }
    eventually("every alert delivered", async || {
        hook.delivered.lock().expect("lock").len() >= 10
    })
    .await;
    eventually("the queue is empty", async || {
        desks[0].queue.borrow().counts.completed == 10
            && desks[0].queue.borrow().counts.depth() == 0
    })
    .await;
    let mut per_alert: HashMap<String, usize> = HashMap::new();
    for fingerprint in hook.delivered.lock().expect("lock").iter() {
        *per_alert.entry(fingerprint.clone()).or_default() += 1;
    }
    assert_eq!(per_alert.len(), 10);
    assert!(per_alert.values().all(|n| *n == 1), "{per_alert:?}");
    // Whichever instance sent it, both feeds say it was sent.
    for desk in &desks {
        eventually("both feeds show every alert sent", async || {
            let alerts = desk.alerts.borrow();
            alerts.len() == 10
                && alerts.iter().all(|a| {
                    matches!(
                        a.deliveries.get(&Channel::Webhook),
                        Some(DeliveryStatus::Sent { .. })
                    )
                })
        })
        .await;
    }
}

#[test]
fn a_killed_workers_job_is_delivered_by_another_after_the_stall_interval() {
    let redis = support::redis::RedisServer::start();
    let namespace = support::redis::fresh_namespace();
    let main = tokio::runtime::Runtime::new().expect("runtime");
    let (url, hook) = main.block_on(webhook(Answer::HangFirst));
    // Instance A runs in a runtime of its own, so that it can die with everything it runs.
    let doomed = tokio::runtime::Runtime::new().expect("runtime");
    let a = doomed.block_on(async {
        let a = Arc::new(shared_queue(&redis.url, &namespace, quick()).await);
        a.enqueue(job("dpl_killed")).await;
        a
    });
    let running_a = doomed.block_on(async { work(a.clone(), deliverer(&url)) });
    main.block_on(eventually("A is sending", async || {
        *hook.arrived.lock().expect("lock") == 1
    }));
    // A dies mid-delivery.
    drop(running_a);
    doomed.shutdown_background();
    main.block_on(async {
        let b = Arc::new(shared_queue(&redis.url, &namespace, quick()).await);
        let mut running_b = work(b.clone(), deliverer(&url));
        let report = next_report(&mut running_b).await;
        assert!(
            matches!(report.status, DeliveryStatus::Sent { .. }),
            "{report:?}"
        );
        assert_eq!(hook.delivered.lock().expect("lock").len(), 1);
        let counts = b.counts().await;
        assert_eq!(
            (counts.completed, counts.in_flight, counts.dead_lettered),
            (1, 0, 0)
        );
    });
}

#[tokio::test]
async fn failures_are_retried_with_backoff_then_dead_lettered() {
    let (url, hook) = webhook(Answer::ServerError).await;
    let queue = Arc::new(DeliveryQueue::in_memory(quick()));
    let mut running = work(queue.clone(), deliverer(&url));
    queue.enqueue(job("dpl_flaky")).await;
    let mut statuses = Vec::new();
    loop {
        let report = next_report(&mut running).await;
        let last = matches!(report.status, DeliveryStatus::Failed { .. });
        statuses.push(report.status);
        if last {
            break;
        }
    }
    assert!(
        matches!(
            statuses.as_slice(),
            [
                DeliveryStatus::Retrying { attempt: 1, .. },
                DeliveryStatus::Retrying { attempt: 2, .. },
                DeliveryStatus::Failed { reason },
            ] if reason.contains("answered 500") && reason.contains("after 3 attempts")
        ),
        "{statuses:?}"
    );
    assert_eq!(*hook.arrived.lock().expect("lock"), 3);
    let counts = queue.counts().await;
    assert_eq!((counts.dead_lettered, counts.depth()), (1, 0));
    let dead = queue.recent_dead(5).await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("after 3 attempts")));
}

#[tokio::test]
async fn a_job_is_queued_once_while_it_waits_on_both_backends() {
    let redis = support::redis::RedisServer::start();
    let shared = shared_queue(&redis.url, &support::redis::fresh_namespace(), quick()).await;
    let local = DeliveryQueue::in_memory(quick());
    for queue in [&shared, &local] {
        assert_eq!(queue.enqueue(job("dpl_once")).await, Enqueued::Added);
        assert_eq!(queue.enqueue(job("dpl_once")).await, Enqueued::Duplicate);
        let mut other_channel = job("dpl_once");
        other_channel.id.push_str("-other");
        assert_eq!(queue.enqueue(other_channel).await, Enqueued::Added);
        assert_eq!(queue.counts().await.waiting, 2);
    }
}

#[tokio::test]
async fn at_most_fifteen_are_sent_at_once() {
    let (url, hook) = webhook(Answer::Hold).await;
    let queue = Arc::new(DeliveryQueue::in_memory(quick()));
    let _running = work(queue.clone(), deliverer(&url));
    for i in 0..20 {
        queue.enqueue(job(&format!("dpl_{i}"))).await;
    }
    eventually("fifteen requests in flight", async || {
        *hook.arrived.lock().expect("lock") == 15
    })
    .await;
    let counts = queue.counts().await;
    assert_eq!((counts.in_flight, counts.waiting), (15, 5));
    hook.release.send_replace(true);
    // Released ones make room for the rest.
    eventually("the other five arrive", async || {
        hook.delivered.lock().expect("lock").len() == 20
    })
    .await;
}

#[tokio::test]
async fn the_rate_limit_holds_across_instances_and_in_process() {
    let redis = support::redis::RedisServer::start();
    let namespace = support::redis::fresh_namespace();
    let settings = QueueSettings::default();
    let a = SharedQueue::open(&redis.url, &namespace, "test", settings.clone())
        .await
        .expect("queue");
    let b = SharedQueue::open(&redis.url, &namespace, "test", settings.clone())
        .await
        .expect("queue");
    let second = 1_795_684_800_000;
    let mut started = 0;
    for i in 0..60 {
        let queue = if i % 2 == 0 { &a } else { &b };
        if queue.rate_slot(second + i).await.expect("redis").is_none() {
            started += 1;
        }
    }
    assert_eq!(started, 50, "50 a second across both instances");
    let wait = a.rate_slot(second + 400).await.expect("redis");
    assert_eq!(
        wait,
        Some(Duration::from_millis(600)),
        "until the next second"
    );
    assert_eq!(a.rate_slot(second + 1000).await.expect("redis"), None);

    let local = LocalQueue::in_memory(settings);
    let started = (0..60)
        .filter(|i| local.rate_slot(second + i).is_none())
        .count();
    assert_eq!(started, 50);
    assert_eq!(local.rate_slot(second + 1000), None);
}

/// PagerDuty takes about 120 events a minute per routing key: two instances together start no
/// more than that in any 60 s (a sliding window, not a minute on the clock), and say how long
/// until the next may go; two routing keys do not share a window.
#[tokio::test]
async fn pagerdutys_limit_per_routing_key_holds_across_instances() {
    use shiplog::alert::channels::pagerduty::PagerDuty;

    let limit_of = |key: &str| {
        ChannelSettings {
            pagerduty: Switched::to(PagerDuty {
                events_url: Secret::new("http://127.0.0.1:9/v2/enqueue"),
                routing_key: Secret::new(key),
            }),
            ..Default::default()
        }
        .rate_limit(Channel::Pagerduty)
        .expect("PagerDuty has a limit")
    };
    let limit = limit_of("0123456789abcdef0123456789abcdef");
    assert!(
        !limit.scope.contains("0123456789abcdef"),
        "the key is a secret: {}",
        limit.scope
    );
    let redis = support::redis::RedisServer::start();
    let namespace = support::redis::fresh_namespace();
    let settings = QueueSettings::default();
    let a = SharedQueue::open(&redis.url, &namespace, "test", settings.clone())
        .await
        .expect("queue");
    let b = SharedQueue::open(&redis.url, &namespace, "test", settings.clone())
        .await
        .expect("queue");
    let start = 1_795_684_800_000;
    let mut started = 0;
    // 200 tries, one every 150 ms, alternating instances: 30 s.
    for i in 0..200 {
        let queue = if i % 2 == 0 { &a } else { &b };
        if queue
            .window_slot(&limit, start + i * 150)
            .await
            .expect("redis")
            .is_none()
        {
            started += 1;
        }
    }
    assert_eq!(
        started, 120,
        "120 in the first minute across both instances"
    );
    // The first went at `start`: the next may go once it is 60 s old, not at the next minute.
    let wait = a.window_slot(&limit, start + 59_000).await.expect("redis");
    assert_eq!(wait, Some(Duration::from_millis(1_000)));
    assert_eq!(
        b.window_slot(&limit, start + 60_001).await.expect("redis"),
        None
    );
    let other = limit_of("fedcba9876543210fedcba9876543210");
    assert_eq!(
        a.window_slot(&other, start + 60_002).await.expect("redis"),
        None
    );

    let local = LocalQueue::in_memory(settings);
    let started = (0..200)
        .filter(|i| local.window_slot(&limit, start + i * 150).is_none())
        .count();
    assert_eq!(started, 120);
    assert_eq!(
        local.window_slot(&limit, start + 59_000),
        Some(Duration::from_millis(1_000))
    );
}

#[test]
fn a_restart_loses_nothing_and_a_job_stalled_twice_is_dead_lettered() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("queue.json");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let settings = quick();
    {
        let queue = LocalQueue::open(&path, settings.clone());
        queue.enqueue(job("dpl_waiting"));
        queue.enqueue(job("dpl_taken"));
        queue.enqueue(job("dpl_retry"));
        let waiting = runtime.block_on(queue.take(Duration::ZERO)).expect("a job");
        let retry = runtime.block_on(queue.take(Duration::ZERO)).expect("a job");
        // The first job is taken and never finished (the process dies); the second waits for
        // its retry.
        assert!(waiting
            .job
            .id
            .starts_with(job("dpl_waiting").alert.fingerprint.as_str()));
        queue.retry_at(&retry, retry.job.clone(), 0);
    }
    let counts = |queue: &LocalQueue| {
        let QueueCounts {
            waiting,
            retrying,
            dead_lettered,
            ..
        } = queue.counts();
        (waiting, retrying, dead_lettered)
    };
    let queue = LocalQueue::open(&path, settings.clone());
    assert_eq!(counts(&queue), (2, 1, 0), "the stalled job waits again");
    assert_eq!(queue.enqueue(job("dpl_taken")), Enqueued::Duplicate);
    let again = runtime.block_on(queue.take(Duration::ZERO)).expect("a job");
    assert_eq!(again.deliveries, 2, "taken over once");
    drop(queue);
    let queue = LocalQueue::open(&path, settings);
    assert_eq!(counts(&queue), (1, 1, 1), "stalled twice: dead-lettered");
    assert_eq!(
        queue.recent_dead(1)[0].reason.as_deref(),
        Some("stalled more than allowable limit")
    );
}

#[tokio::test]
async fn without_redis_notifications_queue_in_process_and_return_to_redis() {
    let mut redis = support::redis::RedisServer::start_private();
    let namespace = support::redis::fresh_namespace();
    let (url, hook) = webhook(Answer::Ok).await;
    let (queue, changes) = watched_queue(&redis.url, &namespace).await;
    let running = work(queue.clone(), deliverer(&url));
    redis.stop();
    queue.enqueue(job("dpl_during_outage")).await;
    queue.enqueue(job("dpl_also_during_outage")).await;
    assert!(queue.is_degraded());
    eventually("delivered from the process", async || {
        hook.delivered.lock().expect("lock").len() == 2
    })
    .await;
    assert!(
        matches!(
            changes.lock().expect("lock").as_slice(),
            [QueueHealthChange::Lost { .. }]
        ),
        "one alert_queue_failed for the outage"
    );
    eventually("the snapshot says so", async || {
        running
            .snapshot
            .borrow()
            .backend
            .contains("Redis unreachable")
    })
    .await;
    redis.restart();
    eventually("back on Redis", async || !queue.is_degraded()).await;
    queue.enqueue(job("dpl_after")).await;
    eventually("delivered through Redis", async || {
        hook.delivered.lock().expect("lock").len() == 3
    })
    .await;
    // The webhook answers before the worker records the job as completed.
    eventually("completed on Redis", async || {
        let shared = queue.shared().expect("shared");
        shared
            .counts()
            .await
            .is_ok_and(|counts| counts.completed >= 1)
    })
    .await;
    assert_eq!(changes.lock().expect("lock").len(), 2);
    assert_eq!(
        changes.lock().expect("lock")[1],
        QueueHealthChange::Recovered
    );
    let _ = running.closing.send(true);
    let _ = running.done.await;
}

/// A notification still queued when someone acknowledges its alert is not sent.
#[tokio::test]
async fn an_alert_acknowledged_while_its_notification_waits_is_not_sent() {
    use shiplog::alert::book::{AlertRecord, AlertState};

    let (url, hook) = webhook(Answer::Ok).await;
    let queued = job("dpl_acked");
    let record = AlertRecord {
        fingerprint: queued.alert.fingerprint.as_str().to_owned(),
        rule: "deploy_failed".to_owned(),
        severity: AlertSeverity::High,
        channels: vec![Channel::Webhook],
        summary: "Deployment dpl_acked of storefront is ERROR".to_owned(),
        deployment_id: None,
        build_id: None,
        entry_ts: 0,
        first_seen: 0,
        last_seen: 0,
        count: 1,
        state: AlertState::Acknowledged {
            by: "ana".to_owned(),
            at: 0,
            until: i64::MAX,
            note: None,
        },
        deliveries: Default::default(),
        rollback_to: None,
        labels: Default::default(),
        muted: None,
    };
    let (_book, book_rx) = watch::channel(vec![record]);
    let queue = Arc::new(DeliveryQueue::in_memory(quick()));
    let (reports_tx, mut reports) = mpsc::channel(16);
    let (snapshot_tx, _snapshot) = watch::channel(QueueSnapshot::default());
    let (_closing, closed) = watch::channel(false);
    let worker = Worker::new(
        queue.clone(),
        deliverer(&url),
        reports_tx,
        Arc::new(Metrics::new()),
        snapshot_tx,
    )
    .minding(book_rx);
    tokio::spawn(Arc::new(worker).run(closed));
    queue.enqueue(queued).await;
    let report = tokio::time::timeout(Duration::from_secs(20), reports.recv())
        .await
        .expect("a report")
        .expect("running");
    assert_eq!(
        report.status,
        DeliveryStatus::Off {
            why: "not sent: acknowledged by ana first".to_owned()
        }
    );
    assert_eq!(*hook.arrived.lock().expect("lock"), 0);
    let counts = queue.counts().await;
    assert_eq!(
        (counts.depth(), counts.completed),
        (0, 0),
        "finished, not counted as sent"
    );
}

/// Redis that answers but refuses (out of memory): notifications still go out from the process,
/// and it is not taken for an outage (no `alert_queue_failed`, no flapping).
#[tokio::test]
async fn a_redis_that_refuses_writes_is_not_an_outage_and_nothing_is_lost() {
    let redis = support::redis::RedisServer::start_private();
    let namespace = support::redis::fresh_namespace();
    let (url, hook) = webhook(Answer::Ok).await;
    let (queue, changes) = watched_queue(&redis.url, &namespace).await;
    let _running = work(queue.clone(), deliverer(&url));
    let client = redis::Client::open(redis.url.as_str()).expect("client");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let configure = |value: &'static str| {
        let mut command = redis::cmd("CONFIG");
        command.arg("SET").arg("maxmemory").arg(value);
        command
    };
    let _: () = configure("1")
        .query_async(&mut admin)
        .await
        .expect("CONFIG SET");
    queue.enqueue(job("dpl_refused")).await;
    eventually("delivered from the process", async || {
        hook.delivered.lock().expect("lock").len() == 1
    })
    .await;
    assert!(!queue.is_degraded());
    let _: () = configure("0")
        .query_async(&mut admin)
        .await
        .expect("CONFIG SET");
    queue.enqueue(job("dpl_accepted")).await;
    eventually("delivered through Redis", async || {
        hook.delivered.lock().expect("lock").len() == 2
    })
    .await;
    assert!(
        changes.lock().expect("lock").is_empty(),
        "no outage was declared"
    );
}
