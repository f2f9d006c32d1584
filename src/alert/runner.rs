//! The alerting task of an app ([`Runner`]): entries in through the rule evaluator, decisions
//! through the alert book (firing, acknowledged, resolved), snapshots out to the dashboard,
//! commands (acknowledge, resolve) in from it.
//!
//! A notification is queued for each of the alert's channels (see `queue`), and is also written back into
//! the log as an `action` entry (`alert_fired`) next to the line that fired it: the dashboard
//! shows it in that build's log and the headless commands print it (the demo's channel).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::book::{
    AlertBook, AlertRecord, AlertState, Announcement, Muted, DEFAULT_ACK, QUIET_PERIOD,
};
use super::book_store;
use super::channels::Channel;
use super::delivery::{Deliverer, DeliveryStatus};
use super::evaluator::{Alert, AlertEvent, RuleEvaluator};
use super::incident::IncidentKeys;
use super::labels::Labels;
use super::queue::worker::{Delivered, QueueSnapshot, Worker};
use super::queue::{DeliveryQueue, Enqueued, FollowUp, Job};
use super::silence::{self, Silence, Silences};
use super::sync::{AlertSync, SharedAction, SyncMessage};
use crate::clock::now_ms;
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
    if let Some(muted) = muted {
        entry = entry.with_meta("silence", muted.silence.as_str());
    }
    entry.deployment_id = alert.entry.deployment_id.clone();
    entry.build_id = alert.entry.build_id.clone();
    entry.project_id = alert.entry.project_id.clone();
    entry.metadata.project = alert.entry.metadata.project.clone();
    entry
}

/// How long the word that a silence ended is kept, so no instance says it again.
const SILENCE_ENDED_KEPT: Duration = Duration::from_secs(48 * 60 * 60);

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

/// A runner and the handle that talks to it; the runner starts with [`Runner::run`].
pub fn desk() -> (Runner, AlertingHandle) {
    let (alerts, alerts_rx) = watch::channel(Vec::new());
    let (commands_tx, commands) = mpsc::channel(64);
    let (queue, queue_rx) = watch::channel(QueueSnapshot::default());
    let (mirrored_tx, mirrored) = mpsc::channel(256);
    (
        Runner {
            alerts,
            commands,
            mirrored,
            queue,
        },
        AlertingHandle {
            alerts: alerts_rx,
            commands: commands_tx,
            queue: queue_rx,
            mirrored: mirrored_tx,
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
        let mut keeper = Keeper::new(alerts, logger, outward);
        let keeping = async {
            keeper.adopt().await;
            let mut sweep = every(Duration::from_secs(60));
            let mut keep = every(KEEP_BOOK_EVERY);
            loop {
                tokio::select! {
                    event = decided.recv() => {
                        let Some(event) = event else { break };
                        keeper.decided(event, &mut decided).await;
                    }
                    Some(command) = commands.recv() => keeper.command(command).await,
                    Some(change) = mirrored.recv() => keeper.mirrored(change).await,
                    Some(message) = next_remote(&mut remote) => keeper.remote(message),
                    Some(report) = delivered.recv() => keeper.delivered(report).await,
                    _ = sweep.tick() => keeper.sweep().await,
                    _ = keep.tick(), if keeper.store.is_some() => keeper.keep().await,
                }
                keeper.show();
            }
        };
        tokio::join!(evaluator.run(entries, decisions, shutdown), keeping);
        // Nothing more will be queued: what was (a `follow` that ends on a failed build must
        // still tell someone) is sent before the runner returns, and the book says how it went.
        let _ = closing_tx.send(true);
        let _ = working.await;
        keeper.finish(delivered).await;
    }
}

/// The alert book during a run, and what each kind of news does to it.
struct Keeper {
    book: AlertBook,
    /// The book as the desk sees it.
    alerts: watch::Sender<Vec<AlertRecord>>,
    logger: Logger,
    queue: Arc<DeliveryQueue>,
    deliverer: Arc<Deliverer>,
    metrics: Arc<Metrics>,
    user: String,
    sync: Option<AlertSync>,
    store: Option<StateStore>,
    /// The silences every instance shares (in the store).
    silences: Option<Silences>,
    /// Each alert's key in PagerDuty (in the store).
    incidents: Option<IncidentKeys>,
    /// The book changed since it was last saved.
    unsaved: bool,
}

impl Keeper {
    fn new(alerts: watch::Sender<Vec<AlertRecord>>, logger: Logger, outward: Outward) -> Self {
        Keeper {
            book: AlertBook::default(),
            alerts,
            logger,
            queue: outward.queue,
            deliverer: outward.deliverer,
            metrics: outward.metrics,
            user: outward.user,
            sync: outward.sync,
            silences: outward.store.clone().map(Silences::new),
            incidents: outward.store.clone().map(IncidentKeys::new),
            store: outward.store,
            unsaved: false,
        }
    }

    /// What the store's book holds (this instance's last run, the other instances).
    async fn adopt(&mut self) {
        if let Some(store) = &self.store {
            book_store::adopt(store, &mut self.book).await;
        }
    }

    /// Everything already decided goes in before the feed is rebuilt once (a flood of repeats
    /// would otherwise rebuild it for each).
    async fn decided(&mut self, first: AlertEvent, more: &mut mpsc::Receiver<AlertEvent>) {
        let mut next = Some(first);
        while let Some(event) = next {
            if self.book.apply(&event, now_ms()) == Announcement::Notify {
                if let AlertEvent::Fired(alert) = &event {
                    self.announce(alert).await;
                }
            }
            next = more.try_recv().ok();
        }
    }

    /// The notice in the log, and a notification queued for each channel, unless a silence
    /// mutes the alert: then it is recorded as muted and its notifications counted as
    /// suppressed.
    async fn announce(&mut self, alert: &Alert) {
        let fingerprint = alert.fingerprint.as_str();
        if let Some(silence) = self.muting(&Labels::of(alert)).await {
            let muted = Muted::by(&silence);
            self.logger.write(notice_entry(alert, Some(&muted)));
            for &channel in &alert.channels {
                self.metrics.alert_suppressed(&alert.rule);
                let why = muted.describe();
                self.book
                    .set_delivery(fingerprint, channel, DeliveryStatus::Off { why });
            }
            self.book.set_muted(fingerprint, Some(muted));
            return;
        }
        self.logger.write(notice_entry(alert, None));
        self.queue_all(alert).await;
    }

    async fn queue_all(&mut self, alert: &Alert) {
        let incident_key = self.incident_key(alert).await;
        for &channel in &alert.channels {
            let job =
                Job::new(alert.clone(), channel, now_ms()).with_incident_key(incident_key.clone());
            let status = enqueue(&self.queue, &self.deliverer, &self.metrics, job).await;
            self.book
                .set_delivery(alert.fingerprint.as_str(), channel, status);
        }
    }

    /// The alert's key in PagerDuty, when it pages (made with its first page).
    async fn incident_key(&self, alert: &Alert) -> Option<String> {
        if !alert.channels.contains(&Channel::Pagerduty) {
            return None;
        }
        match self.incidents.as_ref()?.open(alert).await {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::warn!(error = %err, "could not keep the alert's incident key");
                None
            }
        }
    }

    /// Tells PagerDuty that an alert it was paged for was acknowledged or resolved here (by a
    /// person, or resolved after its quiet period); a resolve ends the incident key, once among
    /// every instance.
    async fn follow_up(&mut self, fingerprint: &str, follow_up: FollowUp) {
        let (Some(incidents), Some(record)) = (&self.incidents, self.book.get(fingerprint)) else {
            return;
        };
        if !record.channels.contains(&Channel::Pagerduty) {
            return;
        }
        let Ok(Some(key)) = incidents.current(fingerprint).await else {
            // Never paged (muted, or PagerDuty off), or ended already.
            return;
        };
        if follow_up == FollowUp::Resolve
            && !matches!(incidents.close(fingerprint, &key).await, Ok(true))
        {
            return;
        }
        let alert = record.reminder(follow_up.as_str());
        let job = Job::follow_up(alert, Channel::Pagerduty, follow_up, key, now_ms());
        let status = enqueue(&self.queue, &self.deliverer, &self.metrics, job).await;
        self.book
            .set_delivery(fingerprint, Channel::Pagerduty, status);
    }

    /// A change made in PagerDuty: applied here and shared with the other instances, never
    /// sent back; the same change twice is nothing.
    async fn mirrored(&mut self, change: Mirrored) {
        let now = now_ms();
        let fingerprint = change.command.fingerprint().to_owned();
        let unchanged = matches!(
            (
                &change.command,
                self.book.get(&fingerprint).map(|r| &r.state),
            ),
            (_, None)
                | (
                    AlertCommand::Acknowledge { .. },
                    Some(AlertState::Acknowledged { .. })
                )
                | (
                    AlertCommand::Resolve { .. },
                    Some(AlertState::Resolved { .. })
                )
                | (AlertCommand::Reopen { .. }, Some(AlertState::Firing))
        );
        if unchanged || !apply(&mut self.book, &change.command, &change.by, now) {
            return;
        }
        tracing::info!(command = ?change.command, by = %change.by, "alert changed in PagerDuty");
        if let (Some(incidents), Some(key)) = (&self.incidents, &change.incident_key) {
            let kept = match change.command {
                // The incident is over there: the next page opens a new one.
                AlertCommand::Resolve { .. } => {
                    incidents.close(&fingerprint, key).await.map(|_| ())
                }
                _ => incidents.remember_key(&fingerprint, key).await,
            };
            if let Err(err) = kept {
                tracing::warn!(error = %err, "could not keep the alert's incident key");
            }
        }
        if let Some(sync) = &self.sync {
            let action = SharedAction {
                command: change.command,
                by: change.by,
                at_ms: now,
            };
            sync.publish(SyncMessage::Action(action)).await;
        }
    }

    /// A person's acknowledgement or resolution here, shared with the other instances and told
    /// to PagerDuty.
    async fn command(&mut self, command: AlertCommand) {
        let now = now_ms();
        if apply(&mut self.book, &command, &self.user, now) {
            tracing::info!(?command, user = %self.user, "alert action");
            let follow_up = match &command {
                AlertCommand::Acknowledge { .. } => Some(FollowUp::Acknowledge),
                AlertCommand::Resolve { .. } => Some(FollowUp::Resolve),
                AlertCommand::Reopen { .. } => None,
            };
            if let Some(follow_up) = follow_up {
                self.follow_up(command.fingerprint(), follow_up).await;
            }
            if let Some(sync) = &self.sync {
                let action = SharedAction {
                    command,
                    by: self.user.clone(),
                    at_ms: now,
                };
                sync.publish(SyncMessage::Action(action)).await;
            }
        }
    }

    /// What another instance did or delivered.
    fn remote(&mut self, message: SyncMessage) {
        match message {
            SyncMessage::Action(action) => {
                apply(&mut self.book, &action.command, &action.by, action.at_ms);
            }
            SyncMessage::Delivery(report) => {
                self.book
                    .set_delivery(&report.fingerprint, report.channel, report.status);
            }
        }
    }

    /// How a notification of this instance went, told to the other instances too.
    async fn delivered(&mut self, report: Delivered) {
        self.book
            .set_delivery(&report.fingerprint, report.channel, report.status.clone());
        if let Some(sync) = &self.sync {
            sync.publish(SyncMessage::Delivery(report)).await;
        }
    }

    /// The active silence muting an alert with `labels`, read from the store now (a silence
    /// added a moment ago on another instance counts). None when it cannot be read: better a
    /// notification too many than a page missed.
    async fn muting(&self, labels: &Labels) -> Option<Silence> {
        let list = match self.silences.as_ref()?.all().await {
            Ok(list) => list,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the silences; not muting");
                return None;
            }
        };
        silence::muting(&list, labels, now_ms()).cloned()
    }

    /// Marks the open alerts muted, or not, as the silences now say. An alert still firing
    /// whose silence ended is announced again, once among every instance, so that nothing
    /// comes back silently.
    async fn review_silences(&mut self) {
        let Some(silences) = &self.silences else {
            return;
        };
        let Ok(list) = silences.all().await else {
            return;
        };
        let now = now_ms();
        let mut ended = Vec::new();
        let changes: Vec<(String, Option<Muted>)> = self
            .book
            .open()
            .filter_map(|record| {
                let muted = silence::muting(&list, &record.labels, now).map(Muted::by);
                if muted == record.muted {
                    return None;
                }
                if let (Some(was), None, AlertState::Firing) =
                    (&record.muted, &muted, &record.state)
                {
                    ended.push((record.clone(), was.clone()));
                }
                Some((record.fingerprint.clone(), muted))
            })
            .collect();
        for (fingerprint, muted) in changes {
            self.book.set_muted(&fingerprint, muted);
        }
        for (record, was) in ended {
            self.silence_ended(&record, &was).await;
        }
    }

    /// Tells the alert's channels that its silence ended while it still fires, unless another
    /// instance already did.
    async fn silence_ended(&mut self, record: &AlertRecord, was: &Muted) {
        let Some(store) = &self.store else {
            return;
        };
        let key = format!("silence_ended:{}:{}", was.silence, record.fingerprint);
        let ours = ulid::Ulid::new().to_string();
        match store.put_if_absent(&key, &ours, SILENCE_ENDED_KEPT).await {
            Ok(stored) if stored != ours => return,
            Ok(_) => {}
            // Better told twice than not at all.
            Err(err) => tracing::warn!(error = %err, "could not share a silence's end"),
        }
        let id = was.silence.get(..10).unwrap_or(&was.silence);
        let alert = record.reminder(&format!("silence {id} ended and it still fires"));
        self.logger.write(notice_entry(&alert, None));
        self.queue_all(&alert).await;
    }

    async fn sweep(&mut self) {
        for fingerprint in self.book.resolve_quiet(now_ms(), QUIET_PERIOD) {
            self.follow_up(&fingerprint, FollowUp::Resolve).await;
        }
    }

    /// Reads what the other instances added, and saves this book when it changed.
    async fn keep(&mut self) {
        if let Some(store) = &self.store {
            book_store::adopt(store, &mut self.book).await;
            if self.unsaved {
                book_store::save(store, &self.book).await;
                self.unsaved = false;
            }
        }
        self.review_silences().await;
    }

    /// Shows the book on the desk, when it changed.
    fn show(&mut self) {
        let records = self.book.newest_first();
        self.unsaved |= self.alerts.send_if_modified(|shown| {
            let changed = *shown != records;
            *shown = records;
            changed
        });
    }

    /// Takes in the last reports of the stopped worker, shows and saves the final book.
    async fn finish(mut self, mut delivered: mpsc::Receiver<Delivered>) {
        while let Ok(report) = delivered.try_recv() {
            self.book
                .set_delivery(&report.fingerprint, report.channel, report.status);
            self.unsaved = true;
        }
        self.alerts.send_replace(self.book.newest_first());
        if let (Some(store), true) = (&self.store, self.unsaved) {
            book_store::save(store, &self.book).await;
        }
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

/// Queues one notification, unless its channel is off (then counted as suppressed); the
/// status the feed shows until the worker reports.
async fn enqueue(
    queue: &DeliveryQueue,
    deliverer: &Deliverer,
    metrics: &Metrics,
    job: Job,
) -> DeliveryStatus {
    if let Some(off) = deliverer.skipped(job.channel) {
        metrics.alert_suppressed(&job.alert.rule);
        return off;
    }
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
        AlertCommand::Reopen { fingerprint } => book.reopen(fingerprint),
    }
}

impl AlertCommand {
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
