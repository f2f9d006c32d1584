//! The alerting engine as an app runs it (rules, book, queue, worker), with its channels
//! pointed at local receivers, and a receiver that records what reaches it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use shiplog::alert::book::AlertRecord;
use shiplog::alert::channels::ChannelSettings;
use shiplog::alert::delivery::Deliverer;
use shiplog::alert::queue::{DeliveryQueue, QueueSettings};
use shiplog::alert::routing::Routing;
use shiplog::alert::runner::{desk, AlertingHandle, Outward};
use shiplog::alert::sync::AlertSync;
use shiplog::alert::{RuleEvaluator, RuleSet, Suppressor};
use shiplog::log::{Delivery, LogEntry, Logger, Severity, Tier};
use shiplog::metrics::Metrics;
use shiplog::retry::RetryPolicy;
use shiplog::store::StateStore;

/// One app's alerting.
pub struct Instance {
    pub desk: AlertingHandle,
    pub logger: Logger,
    pub metrics: Arc<Metrics>,
    /// Kept until the end of the test: a dropped sender would stop the runner.
    pub stop: tokio::sync::watch::Sender<bool>,
    pub running: tokio::task::JoinHandle<()>,
}

/// How a test's instance alerts: its channels, rules, queue, user, and link to the others.
pub struct Alerting {
    pub channels: ChannelSettings,
    pub rules: RuleSet,
    pub queue: QueueSettings,
    pub user: String,
    pub sync: Option<AlertSync>,
    /// Grouping and inhibition: Alertmanager's, but each new group told at once.
    pub routing: Routing,
}

impl Alerting {
    /// The built-in rules, the queue's defaults, as `ana`, alone.
    pub fn new(channels: ChannelSettings) -> Self {
        Alerting {
            channels,
            rules: RuleSet::builtin(),
            queue: QueueSettings::default(),
            user: "ana".to_owned(),
            sync: None,
            routing: Routing::default().without_wait(),
        }
    }

    /// The built-in rules with these (TOML `[[alert_rules]]`) laid over them.
    pub fn rules(mut self, toml: &str) -> Self {
        let rules = shiplog::alert::rule::rules_in(toml, "the test").expect("rules");
        self.rules = RuleSet::with_overrides(rules).expect("a rule set");
        self
    }

    /// Starts it, keeping its book (and reading silences, incident keys) in `store`.
    pub fn start(self, store: StateStore) -> Instance {
        let (builder, outlet) = Logger::builder().channel("alerts", 256, Delivery::DropWhenFull);
        let logger = builder.build();
        let (runner, desk) = desk();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let metrics = Arc::new(Metrics::new());
        let deliverer = Deliverer::with_retry(
            self.channels,
            RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(40),
            },
        );
        let outward = Outward {
            deliverer: Arc::new(deliverer.sharing_pauses(store.clone())),
            queue: Arc::new(DeliveryQueue::in_memory(self.queue)),
            metrics: metrics.clone(),
            user: self.user,
            sync: self.sync,
            store: Some(store.clone()),
            routing: Arc::new(self.routing),
        };
        let engine = RuleEvaluator::new(self.rules, Suppressor::shared(store), metrics.clone());
        let running = tokio::spawn(runner.run(engine, outlet, logger.clone(), shutdown, outward));
        Instance {
            desk,
            logger,
            metrics,
            stop,
            running,
        }
    }
}

impl Instance {
    /// What a person asks of an alert on this instance's dashboard.
    pub async fn ask(&self, command: shiplog::alert::runner::AlertCommand) {
        self.desk
            .commands
            .send(command)
            .await
            .expect("alerting runs");
    }
}

/// Polls the desk's alerts (woken by changes) until `test` holds, for at most 20 s.
pub async fn wait_until(
    desk: &AlertingHandle,
    what: &str,
    test: impl Fn(&[AlertRecord]) -> bool,
) -> Vec<AlertRecord> {
    let mut alerts = desk.alerts.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if test(&alerts.borrow()) {
            return alerts.borrow().clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:#?}",
            alerts.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), alerts.changed()).await;
    }
}

/// The build entry of a failed build of `deployment` in `project`.
pub fn failed_build(deployment: &str, project: &str, message: &str) -> LogEntry {
    let mut entry = LogEntry::new(Tier::Build, Severity::Error, "failed", message)
        .with_deployment(format!("vercel-{deployment}-01JD"))
        .with_build(deployment.to_owned());
    entry.metadata.project = Some(project.into());
    entry
}

/// One request a receiver took.
#[derive(Debug, Clone)]
pub struct Taken {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Taken {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Records every POST; answers with the scripted statuses in order (the last one repeats).
#[derive(Clone)]
pub struct Recorder {
    pub url: String,
    taken: Arc<Mutex<Vec<Taken>>>,
    answers: Arc<Mutex<Vec<(u16, String)>>>,
}

impl Recorder {
    /// Answers 200 to everything.
    pub async fn start() -> Recorder {
        Recorder::answering(vec![(200, "ok".to_owned())]).await
    }

    pub async fn answering(answers: Vec<(u16, String)>) -> Recorder {
        let taken: Arc<Mutex<Vec<Taken>>> = Arc::default();
        let answers = Arc::new(Mutex::new(answers));
        let state = (taken.clone(), answers.clone());
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(state);
        let url = super::http::serve(app).await;
        Recorder {
            url,
            taken,
            answers,
        }
    }

    pub fn taken(&self) -> Vec<Taken> {
        self.taken.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests came, for at most 20 s.
    pub async fn wait_for(&self, n: usize, what: &str) -> Vec<Taken> {
        super::wait::eventually(what, async || self.taken().len() >= n).await;
        self.taken()
    }

    /// What the next requests are answered.
    pub fn answer(&self, answers: Vec<(u16, String)>) {
        *self.answers.lock().expect("lock") = answers;
    }
}

type RecorderState = (Arc<Mutex<Vec<Taken>>>, Arc<Mutex<Vec<(u16, String)>>>);

async fn record(
    State((taken, answers)): State<RecorderState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    taken.lock().expect("lock").push(Taken {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let mut answers = answers.lock().expect("lock");
    let (status, text) = if answers.len() > 1 {
        answers.remove(0)
    } else {
        answers[0].clone()
    };
    (StatusCode::from_u16(status).expect("a status"), text)
}
