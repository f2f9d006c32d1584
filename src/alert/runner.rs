//! The alerting task of an app ([`Runner`]): entries in through the rule evaluator, decisions
//! through the alert book (firing, acknowledged, resolved), snapshots out to the dashboard,
//! commands (acknowledge, resolve) in from it.
//!
//! A fired alert joins its group on each of its channels, whose notification is queued when due
//! (see `keeper` and `grouping`), and is also written back into the log as an `action` entry
//! (`alert_fired`) next to the line that fired it: the dashboard shows it in that build's log
//! and the headless commands print it (the demo's channel).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::book::{AlertRecord, Muted};
use super::delivery::Deliverer;
use super::evaluator::{Alert, RuleEvaluator};
use super::keeper::Keeper;
use super::queue::worker::{Delivered, QueueSnapshot, Worker};
use super::queue::DeliveryQueue;
use super::routing::Routing;
use super::silence::{NewSilence, Silence};
use super::sync::{AlertSync, SyncMessage};
use crate::log::{EntryReceiver, LogEntry, Logger, Tier};
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
    /// Firing again: the acknowledgement was withdrawn or the incident reopened (in
    /// PagerDuty).
    Reopen {
        fingerprint: String,
    },
}

/// What the dashboard asks of the silences.
#[derive(Debug, Clone)]
pub enum SilenceCommand {
    /// A new silence; its author is the user of this instance.
    Add(NewSilence),
    /// End it now (the id, or enough of its start).
    Expire { id: String },
}

/// A change made in an incident tool (PagerDuty), to apply here without telling it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrored {
    pub command: AlertCommand,
    /// Who acted there: `Dana Example (PagerDuty)`.
    pub by: String,
    /// The incident's key, when it came with one.
    pub incident_key: Option<String>,
}

/// The alerting task as the dashboard sees it: its snapshots (the alert book as it stands, the
/// delivery queue) and its commands (acknowledge, resolve).
pub struct AlertingHandle {
    pub alerts: watch::Receiver<Vec<AlertRecord>>,
    pub commands: mpsc::Sender<AlertCommand>,
    /// The delivery queue as the queue screen shows it.
    pub queue: watch::Receiver<QueueSnapshot>,
    /// Changes made in PagerDuty (its webhooks), applied without echo.
    pub mirrored: mpsc::Sender<Mirrored>,
    /// The silences every instance shares, as last read.
    pub silences: watch::Receiver<Vec<Silence>>,
    /// Silences added and expired from the dashboard.
    pub silence: mpsc::Sender<SilenceCommand>,
}

/// The event of the entries this module writes; the rule evaluator never evaluates them.
pub const ALERT_FIRED: &str = "alert_fired";

/// The entry announcing a fired alert, and the silence muting it if one does.
pub fn notice_entry(alert: &Alert, muted: Option<&Muted>) -> LogEntry {
    let first_line = alert.entry.message.lines().next().unwrap_or("");
    let message = match muted {
        None => format!(
            "ALERT {} ({}) for {}: {first_line}",
            alert.rule,
            alert.severity.as_str(),
            alert.channel_list(),
        ),
        Some(muted) => format!(
            "ALERT {} ({}), {}, not sent: {first_line}",
            alert.rule,
            alert.severity.as_str(),
            muted.describe(),
        ),
    };
    let mut entry = LogEntry::new(
        Tier::Action,
        alert.severity.entry_severity(),
        ALERT_FIRED,
        message,
    )
    .with_meta("fingerprint", alert.fingerprint.as_str())
    .with_meta("rule", alert.rule.as_str());
    if let Some(silence) = muted.and_then(Muted::silence) {
        entry = entry.with_meta("silence", silence);
    }
    entry.deployment_id = alert.entry.deployment_id.clone();
    entry.build_id = alert.entry.build_id.clone();
    entry.project_id = alert.entry.project_id.clone();
    entry.metadata.project = alert.entry.metadata.project.clone();
    entry
}

/// How often the groups are looked at for notifications due.
const FLUSH_GROUPS_EVERY: Duration = Duration::from_secs(1);

/// How often the alert book is written to the store (when it changed) and read back for
/// what other instances added.
const KEEP_BOOK_EVERY: Duration = Duration::from_secs(2);

/// The alerting task, to be started by an app with [`Runner::run`]; its desk is the
/// dashboard's end.
pub struct Runner {
    alerts: watch::Sender<Vec<AlertRecord>>,
    commands: mpsc::Receiver<AlertCommand>,
    mirrored: mpsc::Receiver<Mirrored>,
    queue: watch::Sender<QueueSnapshot>,
    silences: watch::Sender<Vec<Silence>>,
    silence: mpsc::Receiver<SilenceCommand>,
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
    /// Grouping and inhibition.
    pub routing: Arc<Routing>,
}

/// A runner and the handle that talks to it; the runner starts with [`Runner::run`].
pub fn desk() -> (Runner, AlertingHandle) {
    let (alerts, alerts_rx) = watch::channel(Vec::new());
    let (commands_tx, commands) = mpsc::channel(64);
    let (queue, queue_rx) = watch::channel(QueueSnapshot::default());
    let (mirrored_tx, mirrored) = mpsc::channel(256);
    let (silences, silences_rx) = watch::channel(Vec::new());
    let (silence_tx, silence) = mpsc::channel(16);
    (
        Runner {
            alerts,
            commands,
            mirrored,
            queue,
            silences,
            silence,
        },
        AlertingHandle {
            alerts: alerts_rx,
            commands: commands_tx,
            queue: queue_rx,
            mirrored: mirrored_tx,
            silences: silences_rx,
            silence: silence_tx,
        },
    )
}

impl Runner {
    /// Runs the rule evaluator over the logger's `alerts` outlet until `shutdown`, keeping the
    /// alert book, queueing what needs announcing, and acting on the desk's commands as `user`.
    /// Returns when the queue worker has sent what this run queued (within a bound).
    pub async fn run(
        self,
        evaluator: RuleEvaluator,
        entries: EntryReceiver,
        logger: Logger,
        shutdown: Shutdown,
        outward: Outward,
    ) {
        let Runner {
            alerts,
            mut commands,
            mut mirrored,
            queue: snapshot,
            silences,
            mut silence,
        } = self;
        let (decisions, mut decided) = mpsc::channel(1024);
        let (delivered_tx, mut delivered) = mpsc::channel::<Delivered>(1024);
        let (closing_tx, closing) = watch::channel(false);
        let worker = Worker::new(
            outward.queue.clone(),
            outward.deliverer.clone(),
            delivered_tx,
            outward.metrics.clone(),
            snapshot,
        )
        .minding(alerts.subscribe());
        let working = tokio::spawn(Arc::new(worker).run(closing));
        let mut remote = subscribe(outward.sync.as_ref()).await;
        let mut keeper = Keeper::new(alerts, silences, logger, outward);
        let keeping = async {
            keeper.adopt().await;
            let mut sweep = every(Duration::from_secs(60));
            let mut keep = every(KEEP_BOOK_EVERY);
            let mut groups = every(FLUSH_GROUPS_EVERY);
            loop {
                tokio::select! {
                    event = decided.recv() => {
                        let Some(event) = event else { break };
                        keeper.decided(event, &mut decided).await;
                    }
                    Some(command) = commands.recv() => keeper.command(command).await,
                    Some(change) = mirrored.recv() => keeper.mirrored(change).await,
                    Some(command) = silence.recv() => keeper.silence(command).await,
                    Some(message) = next_remote(&mut remote) => keeper.remote(message),
                    Some(report) = delivered.recv() => keeper.delivered(report).await,
                    _ = sweep.tick() => keeper.sweep().await,
                    _ = keep.tick() => keeper.keep().await,
                    _ = groups.tick() => keeper.flush_due().await,
                }
                keeper.show();
            }
            // What the groups hold is told before the run ends (a `follow` that ends on a
            // failed build must still tell someone).
            keeper.flush_all().await;
            keeper.show();
        };
        tokio::join!(evaluator.run(entries, decisions, shutdown), keeping);
        // Nothing more will be queued: what was (a `follow` that ends on a failed build must
        // still tell someone) is sent before the runner returns, and the book says how it went.
        let _ = closing_tx.send(true);
        let _ = working.await;
        keeper.finish(delivered).await;
    }
}

/// An interval that skips the ticks it missed.
fn every(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    interval
}

/// Other instances' acknowledgements and resolutions (Redis pub/sub), when shared.
async fn subscribe(sync: Option<&AlertSync>) -> Option<mpsc::Receiver<SyncMessage>> {
    match sync?.subscribe().await {
        Ok(remote) => Some(remote),
        Err(err) => {
            tracing::warn!(%err, "alert actions are not shared");
            None
        }
    }
}

impl AlertCommand {
    /// The same command about another alert.
    pub fn about(&self, fingerprint: &str) -> AlertCommand {
        let fingerprint = fingerprint.to_owned();
        match self {
            AlertCommand::Acknowledge { note, .. } => AlertCommand::Acknowledge {
                fingerprint,
                note: note.clone(),
            },
            AlertCommand::Resolve { .. } => AlertCommand::Resolve { fingerprint },
            AlertCommand::Reopen { .. } => AlertCommand::Reopen { fingerprint },
        }
    }

    /// The alert it is about.
    pub fn fingerprint(&self) -> &str {
        match self {
            AlertCommand::Acknowledge { fingerprint, .. }
            | AlertCommand::Resolve { fingerprint }
            | AlertCommand::Reopen { fingerprint } => fingerprint,
        }
    }
}

/// The next message from another instance; never resolves when nothing is shared.
async fn next_remote(remote: &mut Option<mpsc::Receiver<SyncMessage>>) -> Option<SyncMessage> {
    match remote {
        Some(remote) => remote.recv().await,
        None => std::future::pending().await,
    }
}
