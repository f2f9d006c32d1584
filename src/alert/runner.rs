//! Runs the alerting engine inside an app: entries in, decisions through the alert book
//! (firing, acknowledged, resolved), snapshots out to the dashboard, commands (acknowledge,
//! resolve) in from it.
//!
//! A notification is queued for each of the alert's channels (see `queue`), and is also written back into
//! the log as an `action` entry (`alert_fired`) next to the line that fired it: the dashboard
//! shows it in that build's log and the headless commands print it (the demo's channel).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::book::{AlertBook, AlertRecord, Outcome, DEFAULT_ACK, QUIET_PERIOD};
use super::book_store;
use super::delivery::{Deliverer, DeliveryStatus};
use super::engine::{Alert, AlertEngine, AlertEvent};
use super::queue::worker::{Delivered, QueueSnapshot, Worker};
use super::queue::{DeliveryQueue, Enqueued, Job};
use super::rule::{AlertSeverity, Channel};
use super::sync::{AlertSync, Shared, SharedAction};
use crate::clock::now_ms;
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::StateStore;

/// What a person asks of an alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum AlertCommand {
    Acknowledge {
        fingerprint: String,
        note: Option<String>,
    },
    Resolve {
        fingerprint: String,
    },
}

/// The dashboard's end: the alerts as they stand, and a way to act on them.
pub struct AlertDesk {
    pub alerts: watch::Receiver<Vec<AlertRecord>>,
    pub commands: mpsc::Sender<AlertCommand>,
    /// The delivery queue as the queue screen shows it.
    pub queue: watch::Receiver<QueueSnapshot>,
}

/// The event of the entries this module writes; the engine never evaluates them.
pub const ALERT_FIRED: &str = "alert_fired";

/// The entry announcing a fired alert.
pub fn notice_entry(alert: &Alert) -> LogEntry {
    let severity = match alert.severity {
        AlertSeverity::Critical => Severity::Critical,
        AlertSeverity::High => Severity::Error,
        AlertSeverity::Medium => Severity::Warn,
        AlertSeverity::Low => Severity::Info,
    };
    let message = format!(
        "ALERT {} ({}) for {}: {}",
        alert.rule,
        alert.severity.as_str(),
        alert.channel_list(),
        alert.entry.message.lines().next().unwrap_or("")
    );
    let mut entry = LogEntry::new(Tier::Action, severity, ALERT_FIRED, message)
        .with_meta("fingerprint", alert.fingerprint.as_str())
        .with_meta("rule", alert.rule.as_str());
    entry.deployment_id = alert.entry.deployment_id.clone();
    entry.build_id = alert.entry.build_id.clone();
    entry.project_id = alert.entry.project_id.clone();
    entry.metadata.project = alert.entry.metadata.project.clone();
    entry
}

/// How often the alert book is written to the store (when it changed) and read back for
/// what other instances added.
const KEEP_BOOK_EVERY: Duration = Duration::from_secs(2);

/// The runner's ends for the app that starts it.
pub struct Runner {
    alerts: watch::Sender<Vec<AlertRecord>>,
    commands: mpsc::Receiver<AlertCommand>,
    queue: watch::Sender<QueueSnapshot>,
}

/// How a runner reaches people: the queue and its channels, who acts from here, and the other
/// instances.
pub struct Outward {
    pub deliverer: Arc<Deliverer>,
    pub queue: Arc<DeliveryQueue>,
    pub metrics: Arc<Metrics>,
    /// Who acknowledges or resolves from this instance.
    pub user: String,
    /// Shares acknowledgements with every instance on the same Redis.
    pub sync: Option<AlertSync>,
    /// Where the alert book is kept between runs and shared between instances.
    pub store: Option<StateStore>,
}

/// A runner and the desk that talks to it.
pub fn desk() -> (Runner, AlertDesk) {
    let (alerts, alerts_rx) = watch::channel(Vec::new());
    let (commands_tx, commands) = mpsc::channel(64);
    let (queue, queue_rx) = watch::channel(QueueSnapshot::default());
    (
        Runner {
            alerts,
            commands,
            queue,
        },
        AlertDesk {
            alerts: alerts_rx,
            commands: commands_tx,
            queue: queue_rx,
        },
    )
}

impl Runner {
    /// Runs the engine over the logger's `alerts` outlet until `shutdown`, keeping the alert
    /// book, queueing what needs announcing, and acting on the desk's commands as `user`.
    /// Returns when the queue worker has sent what this run queued (within a bound).
    pub async fn run(
        mut self,
        engine: AlertEngine,
        entries: mpsc::Receiver<Arc<LogEntry>>,
        logger: Logger,
        shutdown: Shutdown,
        outward: Outward,
    ) {
        let Outward {
            deliverer,
            queue,
            metrics,
            user,
            sync,
            store,
        } = outward;
        // Other instances' acknowledgements and resolutions (Redis pub/sub), when shared.
        let mut remote = match &sync {
            Some(sync) => match sync.subscribe().await {
                Ok(remote) => Some(remote),
                Err(err) => {
                    tracing::warn!(%err, "alert actions are not shared");
                    None
                }
            },
            None => None,
        };
        let (decisions, mut decided) = mpsc::channel(1024);
        let (delivered_tx, mut delivered) = mpsc::channel::<Delivered>(1024);
        let (closing_tx, closing) = watch::channel(false);
        let worker = Arc::new(
            Worker::new(
                queue.clone(),
                deliverer.clone(),
                delivered_tx,
                metrics.clone(),
                self.queue.clone(),
            )
            .minding(self.alerts.subscribe()),
        );
        let working = tokio::spawn(worker.run(closing));
        let alerts = self.alerts.clone();
        let engine = async move { engine.run(entries, decisions, shutdown).await };
        let book = async move {
            let mut book = AlertBook::default();
            if let Some(store) = &store {
                book_store::adopt(store, &mut book).await;
            }
            let mut sweep = tokio::time::interval(Duration::from_secs(60));
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut keep = tokio::time::interval(KEEP_BOOK_EVERY);
            keep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut unsaved = false;
            loop {
                tokio::select! {
                    event = decided.recv() => {
                        let Some(event) = event else { break };
                        // Everything already decided goes in before the feed is rebuilt once
                        // (a flood of repeats would otherwise rebuild it for each).
                        let mut next = Some(event);
                        while let Some(event) = next {
                            if book.apply(&event, now_ms()) == Outcome::Notify {
                                if let AlertEvent::Fired(alert) = &event {
                                    logger.write(notice_entry(alert));
                                    for &channel in &alert.channels {
                                        let status = enqueue(&queue, &deliverer, &metrics, alert, channel).await;
                                        book.set_delivery(alert.fingerprint.as_str(), channel, status);
                                    }
                                }
                            }
                            next = decided.try_recv().ok();
                        }
                    }
                    Some(command) = self.commands.recv() => {
                        let now = now_ms();
                        if apply(&mut book, &command, &user, now) {
                            tracing::info!(?command, %user, "alert action");
                            if let Some(sync) = &sync {
                                let action = SharedAction { command, by: user.clone(), at_ms: now };
                                sync.publish(Shared::Action(action)).await;
                            }
                        }
                    }
                    Some(message) = next_remote(&mut remote) => match message {
                        Shared::Action(action) => {
                            apply(&mut book, &action.command, &action.by, action.at_ms);
                        }
                        Shared::Delivery(report) => {
                            book.set_delivery(&report.fingerprint, report.channel, report.status);
                        }
                    },
                    Some(report) = delivered.recv() => {
                        book.set_delivery(&report.fingerprint, report.channel, report.status.clone());
                        if let Some(sync) = &sync {
                            sync.publish(Shared::Delivery(report)).await;
                        }
                    }
                    _ = sweep.tick() => {
                        book.resolve_quiet(now_ms(), QUIET_PERIOD);
                    }
                    _ = keep.tick(), if store.is_some() => {
                        if let Some(store) = &store {
                            book_store::adopt(store, &mut book).await;
                            if unsaved {
                                book_store::save(store, &book).await;
                                unsaved = false;
                            }
                        }
                    }
                }
                let records = book.newest_first();
                unsaved |= self.alerts.send_if_modified(|shown| {
                    let changed = *shown != records;
                    *shown = records;
                    changed
                });
            }
            (book, delivered, store, unsaved)
        };
        let ((), (mut book, mut delivered, store, unsaved)) = tokio::join!(engine, book);
        // Nothing more will be queued: what was (a `follow` that ends on a failed build must
        // still tell someone) is sent before the runner returns, and the book says how it went.
        let _ = closing_tx.send(true);
        let _ = working.await;
        let mut changed = unsaved;
        while let Ok(report) = delivered.try_recv() {
            book.set_delivery(&report.fingerprint, report.channel, report.status);
            changed = true;
        }
        alerts.send_replace(book.newest_first());
        if let (Some(store), true) = (&store, changed) {
            book_store::save(store, &book).await;
        }
    }
}

/// Queues one notification, unless its channel is off (then counted as suppressed); the
/// status the feed shows until the worker reports.
async fn enqueue(
    queue: &DeliveryQueue,
    deliverer: &Deliverer,
    metrics: &Metrics,
    alert: &Alert,
    channel: Channel,
) -> DeliveryStatus {
    if let Some(off) = deliverer.skipped(channel) {
        metrics.alert_suppressed(&alert.rule);
        return off;
    }
    let job = Job::new(alert.clone(), channel, now_ms());
    if queue.enqueue(job).await == Enqueued::Added {
        metrics.alert_enqueued();
    }
    DeliveryStatus::Queued
}

/// Acknowledges or resolves in the book; false when there was nothing to act on.
fn apply(book: &mut AlertBook, command: &AlertCommand, by: &str, at_ms: i64) -> bool {
    match command {
        AlertCommand::Acknowledge { fingerprint, note } => {
            book.acknowledge(fingerprint, by, note.clone(), at_ms, DEFAULT_ACK)
        }
        AlertCommand::Resolve { fingerprint } => book.resolve(fingerprint, by, at_ms),
    }
}

/// The next message from another instance; never resolves when nothing is shared.
async fn next_remote(remote: &mut Option<mpsc::Receiver<Shared>>) -> Option<Shared> {
    match remote {
        Some(remote) => remote.recv().await,
        None => std::future::pending().await,
    }
}
