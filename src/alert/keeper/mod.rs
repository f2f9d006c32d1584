//! The alert book during a run ([`Keeper`]), and what each kind of news does to it: a fired
//! alert is recorded, checked against the silences and inhibition rules (`muting`), and put in
//! its group on each channel (`groups`), whose notifications the queue sends; a person's
//! acknowledgement or resolution is shared with the other instances and told to PagerDuty, and
//! PagerDuty's own come back without echo (`paging`).

mod groups;
mod muting;
mod paging;

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::book::{AlertBook, AlertRecord, Announcement, DEFAULT_ACK, QUIET_PERIOD};
use super::book_store;
use super::delivery::{Deliverer, DeliveryStatus};
use super::evaluator::AlertEvent;
use super::grouping::Groups;
use super::incident::IncidentKeys;
use super::queue::worker::Delivered;
use super::queue::{DeliveryQueue, Enqueued, FollowUp, Job};
use super::routing::Routing;
use super::runner::{AlertCommand, Outward};
use super::silence::{Silence, Silences};
use super::sync::{AlertSync, SharedAction, SyncMessage};
use crate::clock::now_ms;
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::store::StateStore;

pub(super) struct Keeper {
    book: AlertBook,
    /// The book as the desk sees it.
    alerts: watch::Sender<Vec<AlertRecord>>,
    logger: Logger,
    queue: Arc<DeliveryQueue>,
    deliverer: Arc<Deliverer>,
    metrics: Arc<Metrics>,
    user: String,
    sync: Option<AlertSync>,
    pub(super) store: Option<StateStore>,
    /// The silences every instance shares (in the store).
    silences: Option<Silences>,
    /// The silences as the dashboard sees them.
    shown_silences: watch::Sender<Vec<Silence>>,
    /// Each alert's (each group's) key in PagerDuty (in the store).
    incidents: Option<IncidentKeys>,
    /// Grouping and inhibition.
    routing: Arc<Routing>,
    /// Each channel's groups of alerts waiting to be told (in the store when there is one).
    groups: Groups,
    /// The alerts whose matches this instance saw (fired or repeated here): only their quiet
    /// hour is this instance's to judge.
    seen_here: HashSet<String>,
    /// The book changed since it was last saved.
    unsaved: bool,
}

impl Keeper {
    pub(super) fn new(
        alerts: watch::Sender<Vec<AlertRecord>>,
        shown_silences: watch::Sender<Vec<Silence>>,
        logger: Logger,
        outward: Outward,
    ) -> Self {
        Keeper {
            book: AlertBook::default(),
            alerts,
            shown_silences,
            logger,
            queue: outward.queue,
            deliverer: outward.deliverer,
            metrics: outward.metrics,
            user: outward.user,
            sync: outward.sync,
            silences: outward.store.clone().map(Silences::new),
            incidents: outward.store.clone().map(IncidentKeys::new),
            groups: Groups::new(outward.store.clone()),
            routing: outward.routing,
            store: outward.store,
            seen_here: HashSet::new(),
            unsaved: false,
        }
    }

    /// What the store's book holds (this instance's last run, the other instances).
    pub(super) async fn adopt(&mut self) {
        if let Some(store) = &self.store {
            book_store::adopt(store, &mut self.book).await;
        }
    }

    /// Everything already decided goes in before the feed is rebuilt once (a flood of repeats
    /// would otherwise rebuild it for each).
    pub(super) async fn decided(
        &mut self,
        first: AlertEvent,
        more: &mut mpsc::Receiver<AlertEvent>,
    ) {
        let mut next = Some(first);
        while let Some(event) = next {
            let alert = match &event {
                AlertEvent::Fired(alert) | AlertEvent::Repeated { alert, .. } => alert,
            };
            self.seen_here.insert(alert.fingerprint.as_str().to_owned());
            if self.book.apply(&event, now_ms()) == Announcement::Notify {
                if let AlertEvent::Fired(alert) = &event {
                    self.announce(alert).await;
                }
            }
            next = more.try_recv().ok();
        }
    }

    /// A person's acknowledgement or resolution here, shared with the other instances and told
    /// to PagerDuty.
    pub(super) async fn command(&mut self, command: AlertCommand) {
        let now = now_ms();
        if !apply(&mut self.book, &command, &self.user, now) {
            return;
        }
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

    /// What another instance did or delivered.
    pub(super) fn remote(&mut self, message: SyncMessage) {
        match message {
            SyncMessage::Action(action) => {
                apply(&mut self.book, &action.command, &action.by, action.at_ms);
            }
            SyncMessage::Delivery(report) => self.record_delivery(&report),
        }
    }

    /// How a notification of this instance went, told to the other instances too.
    pub(super) async fn delivered(&mut self, report: Delivered) {
        self.record_delivery(&report);
        if let Some(sync) = &self.sync {
            sync.publish(SyncMessage::Delivery(report)).await;
        }
    }

    /// A group's notification went for each alert it told.
    fn record_delivery(&mut self, report: &Delivered) {
        for fingerprint in report.alerts() {
            self.book
                .set_delivery(fingerprint, report.channel, report.status.clone());
        }
    }

    /// Resolves the alerts quiet for an hour, and the PagerDuty incidents of those whose
    /// matches came here (another instance may still see an adopted one fire).
    pub(super) async fn sweep(&mut self) {
        for fingerprint in self.book.resolve_quiet(now_ms(), QUIET_PERIOD) {
            if self.seen_here.remove(&fingerprint) {
                self.follow_up(&fingerprint, FollowUp::Resolve).await;
            }
        }
    }

    /// Reads what the other instances added, saves this book when it changed, and looks at the
    /// silences and inhibitions again.
    pub(super) async fn keep(&mut self) {
        if let Some(store) = &self.store {
            book_store::adopt(store, &mut self.book).await;
            if self.unsaved {
                book_store::save(store, &self.book).await;
                self.unsaved = false;
            }
        }
        self.review().await;
    }

    /// Shows the book on the desk, when it changed.
    pub(super) fn show(&mut self) {
        let records = self.book.newest_first();
        self.unsaved |= self.alerts.send_if_modified(|shown| {
            let changed = *shown != records;
            *shown = records;
            changed
        });
    }

    /// Takes in the last reports of the stopped worker, shows and saves the final book.
    pub(super) async fn finish(mut self, mut delivered: mpsc::Receiver<Delivered>) {
        while let Ok(report) = delivered.try_recv() {
            self.record_delivery(&report);
            self.unsaved = true;
        }
        self.alerts.send_replace(self.book.newest_first());
        if let (Some(store), true) = (&self.store, self.unsaved) {
            book_store::save(store, &self.book).await;
        }
    }

    /// Queues one notification, unless its channel is off (then counted as suppressed); the
    /// status the feed shows until the worker reports.
    async fn enqueue(&self, job: Job) -> DeliveryStatus {
        if let Some(off) = self.deliverer.skipped(job.channel) {
            self.metrics.alert_suppressed(&job.alert.rule);
            return off;
        }
        if self.queue.enqueue(job).await == Enqueued::Added {
            self.metrics.alert_enqueued();
        }
        DeliveryStatus::Queued
    }
}

/// Acknowledges, resolves or reopens in the book; false when there was nothing to act on.
fn apply(book: &mut AlertBook, command: &AlertCommand, by: &str, at_ms: i64) -> bool {
    match command {
        AlertCommand::Acknowledge { fingerprint, note } => {
            book.acknowledge(fingerprint, by, note.clone(), at_ms, DEFAULT_ACK)
        }
        AlertCommand::Resolve { fingerprint } => book.resolve(fingerprint, by, at_ms),
        AlertCommand::Reopen { fingerprint } => book.reopen(fingerprint),
    }
}
