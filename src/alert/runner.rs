//! Runs the alerting engine inside an app: entries in, decisions through the alert book
//! (firing, acknowledged, resolved), snapshots out to the dashboard, commands (acknowledge,
//! resolve) in from it.
//!
//! A notification goes to the alert's channels (see `delivery`), and is also written back into
//! the log as an `action` entry (`alert_fired`) next to the line that fired it: the dashboard
//! shows it in that build's log and the headless commands print it (the demo's channel).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::book::{AlertBook, AlertRecord, Outcome, DEFAULT_ACK, QUIET_PERIOD};
use super::channels::Notification;
use super::delivery::{Deliverer, DeliveryStatus};
use super::engine::{channel_name, Alert, AlertEngine, AlertEvent};
use super::rule::AlertSeverity;
use super::rule::Channel;
use super::sync::{AlertSync, SharedAction};
use crate::log::entry::now_ms;
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::stream::follower::Shutdown;

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

/// At most this many notifications are in flight at once (the plan's worker concurrency).
const CONCURRENT_DELIVERIES: usize = 15;
/// How long a stopping runner waits for notifications in flight.
const DRAIN_DELIVERIES: Duration = Duration::from_secs(30);

/// The runner's ends for the app that starts it.
pub struct Runner {
    alerts: watch::Sender<Vec<AlertRecord>>,
    commands: mpsc::Receiver<AlertCommand>,
}

/// How a delivery went, reported back to the book.
struct Delivered {
    fingerprint: String,
    channel: Channel,
    status: DeliveryStatus,
}

/// How a runner reaches people: the channels, who acts from here, and the other instances.
pub struct Outward {
    pub deliverer: Arc<Deliverer>,
    /// Who acknowledges or resolves from this instance.
    pub user: String,
    /// Shares acknowledgements with every instance on the same Redis.
    pub sync: Option<AlertSync>,
}

/// A runner and the desk that talks to it.
pub fn desk() -> (Runner, AlertDesk) {
    let (alerts, alerts_rx) = watch::channel(Vec::new());
    let (commands_tx, commands) = mpsc::channel(64);
    (
        Runner { alerts, commands },
        AlertDesk {
            alerts: alerts_rx,
            commands: commands_tx,
        },
    )
}

impl Runner {
    /// Runs the engine over the logger's `alerts` outlet until `shutdown`, keeping the alert
    /// book, announcing what needs announcing, and acting on the desk's commands as `user`.
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
            user,
            sync,
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
        let slots = Arc::new(Semaphore::new(CONCURRENT_DELIVERIES));
        let mut in_flight = JoinSet::new();
        let engine = async move { engine.run(entries, decisions, shutdown).await };
        let book = async move {
            let mut book = AlertBook::default();
            let mut sweep = tokio::time::interval(Duration::from_secs(60));
            sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    event = decided.recv() => {
                        let Some(event) = event else { break };
                        if book.apply(&event, now_ms()) == Outcome::Notify {
                            if let AlertEvent::Fired(alert) = &event {
                                logger.write(notice_entry(alert));
                                let count = book.get(alert.fingerprint.as_str()).map_or(1, |r| r.count);
                                for &channel in &alert.channels {
                                    in_flight.spawn(deliver(
                                        deliverer.clone(),
                                        slots.clone(),
                                        alert.clone(),
                                        count,
                                        channel,
                                        delivered_tx.clone(),
                                    ));
                                }
                            }
                        }
                    }
                    Some(command) = self.commands.recv() => {
                        let now = now_ms();
                        if apply(&mut book, &command, &user, now) {
                            tracing::info!(?command, %user, "alert action");
                            if let Some(sync) = &sync {
                                sync.publish(command, &user, now).await;
                            }
                        }
                    }
                    Some(action) = next_remote(&mut remote) => {
                        apply(&mut book, &action.command, &action.by, action.at_ms);
                    }
                    Some(report) = delivered.recv() => {
                        book.set_delivery(&report.fingerprint, report.channel, report.status);
                    }
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                    _ = sweep.tick() => {
                        book.resolve_quiet(now_ms(), QUIET_PERIOD);
                    }
                }
                let records = book.newest_first();
                self.alerts.send_if_modified(|shown| {
                    let changed = *shown != records;
                    *shown = records;
                    changed
                });
            }
            // Notifications already on their way finish (a `follow` that ends on a failed
            // build must still tell someone), within a bound.
            let finishing = async { while in_flight.join_next().await.is_some() {} };
            if tokio::time::timeout(DRAIN_DELIVERIES, finishing)
                .await
                .is_err()
            {
                tracing::warn!("gave up waiting for notifications still being delivered");
            }
        };
        tokio::join!(engine, book);
    }
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

/// The next action from another instance; never resolves when actions are not shared.
async fn next_remote(remote: &mut Option<mpsc::Receiver<SharedAction>>) -> Option<SharedAction> {
    match remote {
        Some(remote) => remote.recv().await,
        None => std::future::pending().await,
    }
}

/// Delivers one alert to one channel, reporting every change of its status.
async fn deliver(
    deliverer: Arc<Deliverer>,
    slots: Arc<Semaphore>,
    alert: Alert,
    count: u64,
    channel: Channel,
    report: mpsc::Sender<Delivered>,
) {
    let Ok(_slot) = slots.acquire_owned().await else {
        return;
    };
    let fingerprint = alert.fingerprint.as_str().to_owned();
    let notification = Notification {
        alert: &alert,
        count,
        state: "firing",
        link: None,
    };
    let tell = |status: DeliveryStatus| {
        let _ = report.try_send(Delivered {
            fingerprint: fingerprint.clone(),
            channel,
            status,
        });
    };
    let status = deliverer.deliver(channel, &notification, tell).await;
    if let DeliveryStatus::Failed { reason } = &status {
        tracing::warn!(rule = %alert.rule, channel = channel_name(channel), %reason, "notification failed");
    }
    let _ = report
        .send(Delivered {
            fingerprint: fingerprint.clone(),
            channel,
            status,
        })
        .await;
}

/// Who acts on alerts from this machine: `SHIPLOG_USER`, else the login name.
pub fn current_user() -> String {
    ["SHIPLOG_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}
