//! From a written entry to the notification arriving at a local webhook, through the whole
//! alerting path: logger, rules, suppression, alert book, the delivery queue (on a private
//! `redis-server`, and in process), the worker, HTTP. The baseline, measured in the same run,
//! is the same notification POSTed directly, so the ratio shows what the queue costs.
//!
//! Entries are written 25 ms apart, inside the queue's 50/s rate limit, each one a new alert.
//! Prints median, p95 and p99 per path.
//!
//! `cargo bench --bench alert_latency`

#[path = "../tests/support/http.rs"]
mod http_server;
#[path = "../tests/support/redis.rs"]
#[allow(dead_code)]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use shiplog::alert::channels::webhook::Webhook;
use shiplog::alert::channels::{ChannelSettings, Notification, Switched};
use shiplog::alert::delivery::Deliverer;
use shiplog::alert::queue::{DeliveryQueue, LocalQueue, QueueSettings, SharedQueue};
use shiplog::alert::rule::{rules_in, RuleSet};
use shiplog::alert::runner::{desk, Outward};
use shiplog::alert::{RuleEvaluator, Suppressor};
use shiplog::log::{Delivery, LogEntry, Logger, Severity, Tier};
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use tokio::sync::mpsc;

const ROUNDS: usize = 400;
const PACE: Duration = Duration::from_millis(25);

const RULES: &str = r#"
[[alert_rules]]
key = "deploy_failed"
tier = "deploy"
event = ["failed"]
severity = "high"
channels = ["webhook"]
suppression_minutes = 10
"#;

/// A webhook that tells when each notification arrives.
async fn webhook() -> (String, mpsc::UnboundedReceiver<Instant>) {
    let (arrived_tx, arrived) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/hook",
        post(move || {
            let arrived_tx = arrived_tx.clone();
            async move {
                let _ = arrived_tx.send(Instant::now());
                "ok"
            }
        }),
    );
    (format!("{}/hook", http_server::serve(app).await), arrived)
}

fn failure(i: usize) -> LogEntry {
    LogEntry::new(
        Tier::Deploy,
        Severity::Error,
        "failed",
        format!("Deployment dpl_{i:06} of storefront is ERROR"),
    )
    .with_deployment(format!("vercel-dpl_{i:06}-01"))
}

/// Grouping by every label (each alert alone), without a wait.
fn each_alone() -> shiplog::alert::routing::Routing {
    let config = shiplog::alert::routing::RoutingConfig {
        grouping: shiplog::alert::routing::GroupingConfig {
            group_by: Some(vec!["...".to_owned()]),
            group_wait_secs: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    shiplog::alert::routing::Routing::from_config(&config).expect("a valid routing")
}

fn percentiles(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{name:<34} median {:>8.2?}  p95 {:>8.2?}  p99 {:>8.2?}  ({} notifications)",
        at(0.50),
        at(0.95),
        at(0.99),
        samples.len()
    );
    at(0.99)
}

/// Entry written to notification received, through a runner over `queue`.
async fn through(
    queue: DeliveryQueue,
    store: StateStore,
    url: &str,
    mut arrived: mpsc::UnboundedReceiver<Instant>,
) -> Vec<Duration> {
    let metrics = Arc::new(Metrics::new());
    let engine = RuleEvaluator::new(
        RuleSet::with_overrides(rules_in(RULES, "bench").expect("rules")).expect("rules"),
        Suppressor::shared(store),
        metrics.clone(),
    );
    let (builder, outlet) = Logger::builder().channel("alerts", 4096, Delivery::DropWhenFull);
    let logger = builder.build();
    let (runner, _desk) = desk();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let deliverer = Arc::new(Deliverer::new(ChannelSettings {
        webhook: Switched::to(Webhook {
            url: Secret::new(url),
        }),
        ..Default::default()
    }));
    let outward = Outward {
        deliverer,
        queue: Arc::new(queue),
        metrics,
        user: "bench".to_owned(),
        sync: None,
        store: None,
        // The time from a match to its notification: each alert its own group, told at once
        // (the default groups these alike failures into one notification, after 30 s).
        routing: Arc::new(each_alone()),
    };
    tokio::spawn(runner.run(engine, outlet, logger.clone(), shutdown, outward));
    let mut samples = Vec::with_capacity(ROUNDS);
    let mut pace = tokio::time::interval(PACE);
    for i in 0..ROUNDS {
        pace.tick().await;
        let started = Instant::now();
        logger.write(failure(i));
        let received = arrived.recv().await.expect("webhook running");
        samples.push(received - started);
    }
    samples
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let redis = redis_server::RedisServer::start();
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("dir");
        let settings = QueueSettings::default();

        // Baseline: the same notification POSTed directly.
        let (url, mut arrived) = webhook().await;
        let deliverer = Deliverer::new(ChannelSettings {
            webhook: Switched::to(Webhook {
                url: Secret::new(url.as_str()),
            }),
            ..Default::default()
        });
        let mut direct = Vec::with_capacity(ROUNDS);
        let mut pace = tokio::time::interval(PACE);
        for i in 0..ROUNDS {
            pace.tick().await;
            let entry = Arc::new(failure(i));
            let alert = shiplog::alert::Alert {
                fingerprint: shiplog::alert::Fingerprint::of("deploy_failed", &entry),
                rule: "deploy_failed".to_owned(),
                severity: shiplog::alert::AlertSeverity::High,
                channels: vec![shiplog::alert::Channel::Webhook],
                entry,
            };
            let started = Instant::now();
            let _ = deliverer
                .attempt(
                    shiplog::alert::Channel::Webhook,
                    &Notification::firing(&alert),
                )
                .await;
            let received = arrived.recv().await.expect("webhook running");
            direct.push(received - started);
        }
        let baseline = percentiles("direct POST (baseline)", direct);

        let namespace = format!("shiplog:bench:{}:", std::process::id());
        let store = StateStore::redis(
            &redis.url,
            &namespace,
            dir.path().join("r"),
            Arc::new(|_| {}),
        )
        .await
        .expect("redis store");
        let shared = SharedQueue::open(&redis.url, &namespace, "bench", settings.clone())
            .await
            .expect("queue");
        let queue = DeliveryQueue::new(
            "LOGQ:bench".to_owned(),
            Some(shared),
            LocalQueue::in_memory(settings.clone()),
            settings.clone(),
            Arc::new(|_| {}),
        );
        let (url, arrived) = webhook().await;
        let redis_p99 = percentiles(
            "entry -> webhook, queue on Redis",
            through(queue, store, &url, arrived).await,
        );

        let store = StateStore::embedded(dir.path().join("e"), "shiplog:bench:").expect("store");
        let queue = DeliveryQueue::new(
            "LOGQ:bench".to_owned(),
            None,
            LocalQueue::open(&dir.path().join("queue.json"), settings.clone()),
            settings,
            Arc::new(|_| {}),
        );
        let (url, arrived) = webhook().await;
        let embedded_p99 = percentiles(
            "entry -> webhook, embedded queue",
            through(queue, store, &url, arrived).await,
        );
        println!(
            "p99 over the direct POST's p99: Redis {:.1}x, embedded {:.1}x",
            redis_p99.as_secs_f64() / baseline.as_secs_f64(),
            embedded_p99.as_secs_f64() / baseline.as_secs_f64()
        );
    });
}
