//! The alerting engine on both state backends: one notification per fingerprint per window,
//! however many matches and however many instances race.

mod support;

use std::sync::Arc;

use std::time::Duration;

use shiplog::alert::book::AlertState;
use shiplog::alert::{AlertEvent, RuleEvaluator, RuleSet, Suppressor};
use shiplog::log::{LogEntry, Severity, Tier};
use shiplog::metrics::Metrics;
use shiplog::store::{DegradedHook, StateStore};

fn failed_build(deployment: &str, minute_offset_ms: i64) -> Arc<LogEntry> {
    Arc::new(
        LogEntry::at(
            1_795_684_800_000 + minute_offset_ms,
            Tier::Build,
            Severity::Error,
            "failed",
            format!(
                "Command \"npm run build\" exited with 1 after {} ms",
                40_000 + minute_offset_ms
            ),
        )
        .with_deployment(deployment.to_owned()),
    )
}

fn engine(store: StateStore) -> (RuleEvaluator, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let engine = RuleEvaluator::new(
        RuleSet::builtin(),
        Suppressor::shared(store),
        metrics.clone(),
    );
    (engine, metrics)
}

async fn redis_store(redis: &support::redis::RedisServer, dir: &std::path::Path) -> StateStore {
    let hook: DegradedHook = Arc::new(|_| {});
    StateStore::redis(&redis.url, &support::redis::fresh_namespace(), dir, hook)
        .await
        .expect("redis store")
}

fn fired(events: &[AlertEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, AlertEvent::Fired(_)))
        .count()
}

async fn fifty_failures_notify_once(store: StateStore) {
    let (engine, metrics) = engine(store);
    let mut events = Vec::new();
    for i in 0..50 {
        events.extend(
            engine
                .evaluate(failed_build("vercel-dpl_a-1", i * 1_000))
                .await,
        );
    }
    assert_eq!(fired(&events), 1, "one notification for one fingerprint");
    match events.last() {
        Some(AlertEvent::Repeated { count, alert }) => {
            assert_eq!(
                (*count, alert.rule.as_str()),
                (50, "build_failed"),
                "the repeats are counted"
            );
        }
        other => panic!("expected a repeat, got {other:?}"),
    }
    assert_eq!(metrics.alerts_suppressed("build_failed"), 49);
    let exposition = metrics.render_prometheus();
    assert!(exposition
        .contains("logs_alerts_triggered_total{rule=\"build_failed\",channel=\"slack\"} 1"));
    // Another deployment's failure is another alert.
    let other = engine.evaluate(failed_build("vercel-dpl_b-2", 0)).await;
    assert_eq!(fired(&other), 1);
}

async fn racing_instances_fire_once(stores: [StateStore; 2]) {
    let engines: Vec<Arc<RuleEvaluator>> = stores
        .into_iter()
        .map(|store| Arc::new(engine(store).0))
        .collect();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let engine = engines[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            engine.evaluate(failed_build("vercel-dpl_race-1", 0)).await
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += fired(&task.await.expect("task"));
    }
    assert_eq!(
        total, 1,
        "two instances racing on one fingerprint fire once"
    );
}

#[tokio::test]
async fn embedded_fifty_failing_builds_in_a_minute_notify_once() {
    let dir = tempfile::tempdir().expect("dir");
    fifty_failures_notify_once(StateStore::embedded(dir.path(), "shiplog:test:").expect("store"))
        .await;
}

#[tokio::test]
async fn redis_fifty_failing_builds_in_a_minute_notify_once() {
    let redis = support::redis::RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    fifty_failures_notify_once(redis_store(&redis, dir.path()).await).await;
}

#[tokio::test]
async fn embedded_instances_sharing_a_state_directory_fire_once() {
    let dir = tempfile::tempdir().expect("dir");
    let a = StateStore::embedded(dir.path(), "shiplog:test:").expect("store a");
    let b = StateStore::embedded(dir.path(), "shiplog:test:").expect("store b");
    racing_instances_fire_once([a, b]).await;
}

#[tokio::test]
async fn redis_instances_fire_once() {
    let redis = support::redis::RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let a = redis_store(&redis, dir.path()).await;
    let hook: DegradedHook = Arc::new(|_| {});
    let b = StateStore::redis(&redis.url, a.namespace(), dir.path(), hook)
        .await
        .expect("store b");
    racing_instances_fire_once([a, b]).await;
}

#[tokio::test]
async fn a_replay_measures_windows_on_the_entries_clock() {
    let engine = RuleEvaluator::new(
        RuleSet::builtin(),
        Suppressor::replay(),
        Arc::new(Metrics::new()),
    );
    // build_failed has a 15 minute window: 0 and 10 minutes group, 20 minutes fires again.
    let mut events = Vec::new();
    for minutes in [0, 10, 20] {
        events.extend(
            engine
                .evaluate(failed_build("vercel-dpl_a-1", minutes * 60_000))
                .await,
        );
    }
    assert_eq!(fired(&events), 2);
}

/// Polls a desk's alerts (woken by changes) until `test` holds, for at most 10 s.
async fn wait_until(
    desk: &shiplog::alert::runner::AlertingHandle,
    what: &str,
    test: impl Fn(&[shiplog::alert::book::AlertRecord]) -> bool,
) {
    let mut alerts = desk.alerts.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if test(&alerts.borrow()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            alerts.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), alerts.changed()).await;
    }
}

/// A dashboard's alerting, acting as `user`: sharing actions through `sync`, and keeping its
/// book in `store` when `keeps_book`.
struct Instance {
    desk: shiplog::alert::runner::AlertingHandle,
    logger: shiplog::log::Logger,
    /// Kept until the end of the test: a dropped sender would stop the runner.
    stop: tokio::sync::watch::Sender<bool>,
    running: tokio::task::JoinHandle<()>,
}

fn start_instance(
    store: StateStore,
    user: &str,
    sync: Option<shiplog::alert::sync::AlertSync>,
    keeps_book: bool,
) -> Instance {
    use shiplog::alert::channels::ChannelSettings;
    use shiplog::alert::delivery::Deliverer;
    use shiplog::log::{Delivery, Logger};

    let (builder, outlet) = Logger::builder().channel("alerts", 64, Delivery::DropWhenFull);
    let logger = builder.build();
    let (runner, desk) = shiplog::alert::runner::desk();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let outward = shiplog::alert::runner::Outward {
        deliverer: Arc::new(Deliverer::new(ChannelSettings::default())),
        queue: Arc::new(shiplog::alert::queue::DeliveryQueue::in_memory(
            Default::default(),
        )),
        metrics: Arc::new(Metrics::new()),
        user: user.to_owned(),
        sync,
        store: keeps_book.then(|| store.clone()),
        routing: Arc::new(shiplog::alert::routing::Routing::default().without_wait()),
    };
    let running =
        tokio::spawn(runner.run(engine(store).0, outlet, logger.clone(), shutdown, outward));
    Instance {
        desk,
        logger,
        stop,
        running,
    }
}

/// An instance on a shared Redis.
async fn instance(redis_url: &str, namespace: &str, dir: &std::path::Path, user: &str) -> Instance {
    let hook: DegradedHook = Arc::new(|_| {});
    let store = StateStore::redis(redis_url, namespace, dir, hook)
        .await
        .expect("store");
    let sync = shiplog::alert::sync::AlertSync::connect(redis_url, namespace)
        .await
        .expect("sync");
    start_instance(store, user, Some(sync), false)
}

/// Both instances show the same failure's alert; its fingerprint.
async fn shared_alert(instances: &[Instance]) -> String {
    for instance in instances {
        instance
            .logger
            .write((*failed_build("vercel-dpl_shared-1", 0)).clone());
    }
    for instance in instances {
        wait_until(&instance.desk, "both instances show the alert", |a| {
            a.len() == 1
        })
        .await;
    }
    let fingerprint = instances[0].desk.alerts.borrow()[0].fingerprint.clone();
    fingerprint
}

/// Two dashboards on one Redis: the alert fires once between them, both show it, and an
/// acknowledgement on one shows on the other with who acted.
#[tokio::test]
async fn an_ack_on_one_instance_shows_on_every_instance() {
    use shiplog::alert::runner::AlertCommand;

    let redis = support::redis::RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let namespace = support::redis::fresh_namespace();
    let instances = [
        instance(&redis.url, &namespace, dir.path(), "ana").await,
        instance(&redis.url, &namespace, dir.path(), "bo").await,
    ];
    let fingerprint = shared_alert(&instances).await;
    instances[0]
        .desk
        .commands
        .send(AlertCommand::Acknowledge {
            fingerprint,
            note: Some("rolling back".to_owned()),
        })
        .await
        .expect("command");
    wait_until(&instances[1].desk, "the ack reaches the other instance", |a| {
        matches!(&a[0].state, AlertState::Acknowledged { by, note, .. } if by == "ana" && note.as_deref() == Some("rolling back"))
    })
    .await;
}

/// Redis restarts (an upgrade, a failover): once it is back, actions on one instance reach the
/// others again.
#[tokio::test]
async fn actions_reach_every_instance_again_after_redis_restarts() {
    use shiplog::alert::runner::AlertCommand;

    let mut redis = support::redis::RedisServer::start_private();
    let dir = tempfile::tempdir().expect("dir");
    let namespace = support::redis::fresh_namespace();
    let instances = [
        instance(&redis.url, &namespace, dir.path(), "ana").await,
        instance(&redis.url, &namespace, dir.path(), "bo").await,
    ];
    let fingerprint = shared_alert(&instances).await;
    redis.restart();
    // Pub/sub keeps nothing for a subscriber that is not there: wait for both to be back.
    let channel = format!("{namespace}alert_actions");
    let subscribers = async || -> Option<i64> {
        let client = redis::Client::open(redis.url.as_str()).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut connection)
            .await
            .ok()?;
        counts.first().map(|(_, n)| *n)
    };
    support::wait::eventually("both instances subscribe again", async || {
        subscribers().await == Some(2)
    })
    .await;
    instances[0]
        .desk
        .commands
        .send(AlertCommand::Resolve { fingerprint })
        .await
        .expect("command");
    wait_until(
        &instances[1].desk,
        "the resolve reaches the other instance",
        |a| matches!(&a[0].state, AlertState::Resolved { by: Some(by), .. } if by == "ana"),
    )
    .await;
}

/// The alert book outlives the process: a restarted instance shows the alert and who
/// acknowledged it.
#[tokio::test]
async fn a_restarted_instance_shows_the_alerts_and_acks_it_had() {
    use shiplog::alert::runner::AlertCommand;

    let dir = tempfile::tempdir().expect("dir");
    let start = || {
        let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
        start_instance(store, "ana", None, true)
    };
    let Instance {
        desk,
        logger,
        stop,
        running,
    } = start();
    logger.write((*failed_build("vercel-dpl_kept-1", 0)).clone());
    wait_until(&desk, "the alert fires", |a| a.len() == 1).await;
    let fingerprint = desk.alerts.borrow()[0].fingerprint.clone();
    desk.commands
        .send(AlertCommand::Acknowledge {
            fingerprint,
            note: Some("on it".to_owned()),
        })
        .await
        .expect("command");
    wait_until(&desk, "acknowledged", |a| {
        matches!(a[0].state, AlertState::Acknowledged { .. })
    })
    .await;
    let _ = stop.send(true);
    drop(logger);
    running.await.expect("runner stops");

    let restarted = start();
    let desk = &restarted.desk;
    wait_until(desk, "the restarted instance shows the acknowledged alert", |a| {
        a.len() == 1
            && matches!(&a[0].state, AlertState::Acknowledged { by, note, .. } if by == "ana" && note.as_deref() == Some("on it"))
    })
    .await;
}

#[tokio::test]
async fn a_replayed_failure_is_history_and_fires_nothing() {
    let engine = RuleEvaluator::new(
        RuleSet::builtin(),
        Suppressor::replay(),
        Arc::new(Metrics::new()),
    );
    let mut replayed = (*failed_build("vercel-dpl_old-1", 0)).clone();
    replayed.metadata.replayed = true;
    assert!(engine.evaluate(Arc::new(replayed)).await.is_empty());
    assert!(!engine
        .evaluate(failed_build("vercel-dpl_new-1", 0))
        .await
        .is_empty());
}
