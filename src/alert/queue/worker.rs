//! The worker: takes jobs from the queue (Redis and this process), sends each within the
//! concurrency and the global rate limit, and finishes it: completed, retried later with
//! exponential backoff, or dead-lettered. A job is kept alive while it is being sent (a
//! heartbeat), so only a job whose worker died is taken over. It also moves due retries back,
//! recovers stalled jobs, watches for Redis to return, and publishes what the queue screen
//! shows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};

use super::shared::SharedQueue;
use super::{DeliveryQueue, Ending, QueueCounts, QueueError, Taken};
use crate::alert::book::{AlertRecord, AlertState};
use crate::alert::channels::Notification;
use crate::alert::channels::{Channel, Readiness};
use crate::alert::delivery::{Deliverer, DeliveryStatus, Failure};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::shutdown::{stopped, Shutdown};

/// How a delivery went, for the alert book.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    pub fingerprint: String,
    pub channel: Channel,
    pub status: DeliveryStatus,
}

/// One channel as the queue screen shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelHealth {
    /// Why it does not send (switched off, no destination), if it does not.
    pub off: Option<String>,
    /// Paused after a 429 until then (ms).
    pub paused_until_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_sent_ms: Option<i64>,
    /// The demo: without a destination it delivers to the built-in demo channel.
    pub demo: bool,
}

/// What the queue screen shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSnapshot {
    /// `LOGQ:{env}`
    pub name: String,
    /// "redis", "embedded", or "in process (Redis unreachable)".
    pub backend: String,
    pub degraded: bool,
    pub counts: QueueCounts,
    /// Depth once a second, oldest first.
    pub depth_history: Vec<u64>,
    /// Notifications completed in the last minute (every instance, on Redis).
    pub sent_last_minute: u64,
    pub concurrency: usize,
    pub rate_per_second: u32,
    pub channels: BTreeMap<Channel, ChannelHealth>,
    /// The latest dead-lettered jobs, newest first.
    pub dead: Vec<super::FinishedJob>,
}

/// Seconds of depth the sparkline keeps.
const HISTORY: usize = 120;
/// How long a stopping worker keeps sending what is queued.
const DRAIN: Duration = Duration::from_secs(30);

/// Where a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Shared,
    Local,
}

/// Logs when an action on a job held on Redis found it taken over by another worker, or failed.
fn still_held(taken: &Taken, action: &str, held: Result<bool, QueueError>) {
    match held {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            job = %taken.job.id,
            "could not {action} an alert job here: another worker had taken it over"
        ),
        Err(err) => {
            tracing::warn!(error = %err, job = %taken.job.id, "could not {action} an alert job")
        }
    }
}

pub struct Worker {
    queue: Arc<DeliveryQueue>,
    deliverer: Arc<Deliverer>,
    reports: mpsc::Sender<Delivered>,
    metrics: Arc<Metrics>,
    /// This worker's name in the consumer group.
    consumer: String,
    slots: Arc<Semaphore>,
    health: Mutex<BTreeMap<Channel, ChannelHealth>>,
    snapshot: watch::Sender<QueueSnapshot>,
    /// The alert book, to drop a notification whose alert was acknowledged or resolved
    /// while it waited.
    book: Option<watch::Receiver<Vec<AlertRecord>>>,
}

impl Worker {
    pub fn new(
        queue: Arc<DeliveryQueue>,
        deliverer: Arc<Deliverer>,
        reports: mpsc::Sender<Delivered>,
        metrics: Arc<Metrics>,
        snapshot: watch::Sender<QueueSnapshot>,
    ) -> Worker {
        Worker {
            consumer: format!("{}-{}", std::process::id(), ulid::Ulid::new()),
            slots: Arc::new(Semaphore::new(queue.settings().concurrency)),
            queue,
            deliverer,
            reports,
            metrics,
            health: Mutex::default(),
            snapshot,
            book: None,
        }
    }

    /// Checks the alert book before each send (see [`Worker::book`]).
    pub fn minding(self, book: watch::Receiver<Vec<AlertRecord>>) -> Worker {
        Worker {
            book: Some(book),
            ..self
        }
    }

    /// Who settled the alert of `fingerprint` (acknowledged or resolved), if someone did.
    fn settled(&self, fingerprint: &str) -> Option<String> {
        let book = self.book.as_ref()?.borrow();
        let record = book.iter().find(|r| r.fingerprint == fingerprint)?;
        match &record.state {
            AlertState::Firing => None,
            AlertState::Acknowledged { by, .. } => Some(format!("acknowledged by {by}")),
            AlertState::Resolved { by, .. } => Some(match by {
                Some(by) => format!("resolved by {by}"),
                None => "resolved".to_owned(),
            }),
        }
    }

    /// Works until `closing` turns true, then sends what is still queued (up to 30 s) and
    /// waits for the notifications in flight.
    pub async fn run(self: Arc<Self>, closing: Shutdown) {
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(self.clone().take_loop(Source::Local, closing.clone()));
        if self.queue.uses_redis() {
            loops.spawn(self.clone().take_loop(Source::Shared, closing.clone()));
        }
        loops.spawn(self.clone().upkeep(closing));
        while loops.join_next().await.is_some() {}
        let concurrency = self.queue.settings().concurrency as u32;
        if tokio::time::timeout(DRAIN, self.slots.acquire_many(concurrency))
            .await
            .is_err()
        {
            tracing::warn!("gave up waiting for notifications still being sent");
        }
    }

    /// Takes jobs one at a time as slots free up; after `closing`, until nothing is left or
    /// the drain's time is up.
    async fn take_loop(self: Arc<Self>, source: Source, mut closing: Shutdown) {
        let mut drain_until = None;
        loop {
            if drain_until.is_none() && *closing.borrow() {
                drain_until = Some(tokio::time::Instant::now() + DRAIN);
            }
            let slot = match drain_until {
                Some(until) => {
                    if source == Source::Local {
                        // `upkeep` has stopped: retries that fall due while draining go now.
                        self.queue.local().promote_due(now_ms());
                    }
                    match tokio::time::timeout_at(until, self.slots.clone().acquire_owned()).await {
                        Ok(slot) => slot,
                        Err(_) => return,
                    }
                }
                None => self.slots.clone().acquire_owned().await,
            };
            let Ok(slot) = slot else {
                return;
            };
            let block = if drain_until.is_some() {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(1)
            };
            let taken = match source {
                Source::Local => self.queue.local().take(block).await,
                Source::Shared => self.take_shared(&mut closing).await,
            };
            match taken {
                Some(taken) => {
                    let worker = self.clone();
                    tokio::spawn(async move {
                        worker.process(source, taken).await;
                        drop(slot);
                    });
                }
                None if drain_until.is_some() && self.nothing_left(source).await => return,
                None => {}
            }
        }
    }

    async fn take_shared(&self, closing: &mut Shutdown) -> Option<Taken> {
        let shared = self.queue.shared().filter(|_| !self.queue.is_degraded());
        let Some(shared) = shared else {
            // `upkeep` finds out when Redis is back.
            pause(closing).await;
            return None;
        };
        match shared.take(&self.consumer).await {
            Ok(taken) => taken,
            Err(err) => {
                self.queue.failed(&err);
                // Not straight back at a Redis that just refused.
                pause(closing).await;
                None
            }
        }
    }

    /// Whether a draining worker is done with `source`.
    async fn nothing_left(&self, source: Source) -> bool {
        match source {
            Source::Local => {
                let counts = self.queue.local().counts();
                counts.waiting + counts.retrying == 0
            }
            // Retries on Redis wait for whichever instance runs next; a stopping one only
            // helps with what is waiting now.
            Source::Shared => match self.queue.shared() {
                Some(shared) if !self.queue.is_degraded() => shared
                    .counts()
                    .await
                    .map_or(true, |counts| counts.waiting == 0),
                _ => true,
            },
        }
    }

    /// Sends one job and finishes it.
    async fn process(&self, source: Source, taken: Taken) {
        let job = &taken.job;
        // A channel paused by a 429 (anywhere): back in the queue until the pause ends,
        // without counting an attempt.
        if let Some(wait) = self.deliverer.paused_for(job.channel).await {
            let due = now_ms() + wait.as_millis() as i64;
            self.retry_at(source, &taken, job.clone(), due).await;
            return;
        }
        if let Some(why) = self.settled(job.alert.fingerprint.as_str()) {
            let why = format!("not sent: {why} first");
            self.finish(source, &taken, Ending::Skipped(&why), now_ms())
                .await;
            self.report(job, DeliveryStatus::Off { why }).await;
            return;
        }
        self.wait_for_rate_slot(source).await;
        let status = match self.attempt(source, &taken).await {
            Ok(status) => self.ended(source, &taken, status).await,
            Err(Failure::RateLimited(wait)) => self.rate_limited(source, &taken, wait).await,
            Err(Failure::Temporary(reason)) => self.try_again(source, &taken, reason).await,
            Err(Failure::Permanent(reason)) => self.give_up(source, &taken, reason).await,
        };
        if let DeliveryStatus::Failed { reason } = &status {
            tracing::warn!(rule = %job.alert.rule, channel = job.channel.as_str(), %reason, "notification failed");
        }
        self.report(job, status).await;
    }

    /// One try at sending the job, keeping it alive meanwhile.
    async fn attempt(&self, source: Source, taken: &Taken) -> Result<DeliveryStatus, Failure> {
        let notification = Notification::firing(&taken.job.alert);
        let attempt = self.deliverer.attempt(taken.job.channel, &notification);
        tokio::pin!(attempt);
        let mut heartbeat = tokio::time::interval(self.queue.settings().stall_interval / 3);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                outcome = &mut attempt => break outcome,
                _ = heartbeat.tick() => self.heartbeat(source, taken).await,
            }
        }
    }

    /// Finishes a job that was sent, or not sent on purpose (switched off).
    async fn ended(&self, source: Source, taken: &Taken, status: DeliveryStatus) -> DeliveryStatus {
        let now = now_ms();
        let ending = match &status {
            DeliveryStatus::Off { why } => Ending::Skipped(why),
            _ => Ending::Sent,
        };
        self.finish(source, taken, ending, now).await;
        if matches!(status, DeliveryStatus::Sent { .. } | DeliveryStatus::Demo) {
            self.note(taken.job.channel, |h| {
                h.last_sent_ms = Some(now);
                h.last_error = None;
            });
        }
        status
    }

    /// A 429: the job waits out the pause, and the try does not count.
    async fn rate_limited(&self, source: Source, taken: &Taken, wait: Duration) -> DeliveryStatus {
        let job = &taken.job;
        let due = now_ms() + wait.as_millis() as i64;
        self.retry_at(source, taken, job.clone(), due).await;
        self.note(job.channel, |h| {
            h.last_error = Some("rate limited (429)".to_owned())
        });
        DeliveryStatus::Retrying {
            attempt: job.attempts_made + 1,
            reason: "rate limited".to_owned(),
        }
    }

    /// A temporary failure: retried after a backoff, dead once the attempts are used up.
    async fn try_again(&self, source: Source, taken: &Taken, reason: String) -> DeliveryStatus {
        self.note(taken.job.channel, |h| h.last_error = Some(reason.clone()));
        let now = now_ms();
        let mut retried = taken.job.clone();
        retried.attempts_made += 1;
        let attempts = retried.attempts_made;
        if attempts >= self.queue.settings().attempts {
            let reason = format!("{reason} (after {attempts} attempts)");
            self.finish(source, taken, Ending::Dead(&reason), now).await;
            return DeliveryStatus::Failed { reason };
        }
        let due = now + self.queue.settings().backoff_after(attempts).as_millis() as i64;
        self.retry_at(source, taken, retried, due).await;
        DeliveryStatus::Retrying {
            attempt: attempts,
            reason,
        }
    }

    /// A permanent failure: dead-lettered at once.
    async fn give_up(&self, source: Source, taken: &Taken, reason: String) -> DeliveryStatus {
        self.note(taken.job.channel, |h| h.last_error = Some(reason.clone()));
        self.finish(source, taken, Ending::Dead(&reason), now_ms())
            .await;
        DeliveryStatus::Failed { reason }
    }

    async fn report(&self, job: &super::Job, status: DeliveryStatus) {
        let _ = self
            .reports
            .send(Delivered {
                fingerprint: job.alert.fingerprint.as_str().to_owned(),
                channel: job.channel,
                status,
            })
            .await;
    }

    /// Waits until the global rate limit lets one more notification start.
    async fn wait_for_rate_slot(&self, source: Source) {
        loop {
            let now = now_ms();
            let wait = match self.shared_for(source) {
                Some(shared) => shared.rate_slot(now).await.unwrap_or(None),
                None => self.queue.local().rate_slot(now),
            };
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return,
            }
        }
    }

    /// The shared queue, when the job came from it (it is finished there even while Redis is
    /// away; a failure leaves it to be taken over).
    fn shared_for(&self, source: Source) -> Option<&SharedQueue> {
        match source {
            Source::Shared => self.queue.shared(),
            Source::Local => None,
        }
    }

    async fn heartbeat(&self, source: Source, taken: &Taken) {
        match self.shared_for(source) {
            Some(shared) => {
                let held = shared.heartbeat(&self.consumer, &taken.receipt).await;
                still_held(taken, "keep alive", held);
            }
            None => self.queue.local().heartbeat(&taken.receipt),
        }
    }

    /// Takes the job out of the queue it came from, as `ending` says. A job that cannot be
    /// finished on Redis is left pending: another worker takes it over after the stall
    /// interval and sends it again (at least once, never lost).
    async fn finish(&self, source: Source, taken: &Taken, ending: Ending<'_>, at_ms: i64) {
        match self.shared_for(source) {
            Some(shared) => {
                let held = shared.finish(&self.consumer, taken, ending, at_ms).await;
                still_held(taken, "finish", held);
            }
            None => self.queue.local().finish(taken, ending, at_ms),
        }
    }

    async fn retry_at(&self, source: Source, taken: &Taken, job: super::Job, due_ms: i64) {
        match self.shared_for(source) {
            Some(shared) => {
                let held = shared.retry_at(&self.consumer, taken, &job, due_ms).await;
                still_held(taken, "retry", held);
            }
            None => self.queue.local().retry_at(taken, job, due_ms),
        }
    }

    fn note(&self, channel: Channel, change: impl FnOnce(&mut ChannelHealth)) {
        if let Ok(mut health) = self.health.lock() {
            change(health.entry(channel).or_default());
        }
    }

    /// Once a second: due retries back, stalled jobs taken over, Redis checked while away,
    /// the snapshot and the depth gauge refreshed. Ends when `closing` turns true.
    async fn upkeep(self: Arc<Self>, mut closing: Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let stall_every = self.queue.settings().stall_interval / 2;
        let mut last_stall_check = tokio::time::Instant::now();
        let mut history = VecDeque::with_capacity(HISTORY);
        let mut completed = VecDeque::with_capacity(61);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped(&mut closing) => return,
            }
            let now = now_ms();
            self.queue.local().promote_due(now);
            let check_stalls = last_stall_check.elapsed() >= stall_every;
            if check_stalls {
                last_stall_check = tokio::time::Instant::now();
                self.queue.local().recover_stalled(now);
            }
            self.queue.reconnect().await;
            if let Some(shared) = self.queue.shared() {
                if self.queue.is_degraded() {
                    if shared.ping().await.is_ok() {
                        self.queue.recovered();
                    }
                } else if let Err(err) = self.shared_upkeep(check_stalls, now).await {
                    self.queue.failed(&err);
                }
            }
            let counts = self.queue.counts().await;
            self.metrics.set_alert_queue_depth(counts.depth());
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(counts.depth());
            if completed.len() == 61 {
                completed.pop_front();
            }
            completed.push_back(counts.completed);
            let snapshot = self.snapshot(counts, &history, &completed).await;
            self.snapshot.send_if_modified(|shown| {
                let changed = *shown != snapshot;
                *shown = snapshot;
                changed
            });
        }
    }

    async fn shared_upkeep(
        self: &Arc<Self>,
        check_stalls: bool,
        now: i64,
    ) -> Result<(), super::QueueError> {
        let Some(shared) = self.queue.shared() else {
            return Ok(());
        };
        shared.promote_due(now).await?;
        if check_stalls {
            // Only as many as can be sent now: a job taken over must not wait unheard.
            let room = self.slots.available_permits();
            for taken in shared.recover_stalled(&self.consumer, room, now).await? {
                let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                    tracing::warn!(job = %taken.job.id, "no room for a job taken over; it will stall again");
                    continue;
                };
                let worker = self.clone();
                tokio::spawn(async move {
                    worker.process(Source::Shared, taken).await;
                    drop(slot);
                });
            }
        }
        Ok(())
    }

    async fn snapshot(
        &self,
        counts: QueueCounts,
        history: &VecDeque<u64>,
        completed: &VecDeque<u64>,
    ) -> QueueSnapshot {
        let backend = match (self.queue.shared(), self.queue.is_degraded()) {
            (Some(_), false) => "redis",
            (Some(_), true) => "in process (Redis unreachable)",
            (None, _) => "embedded",
        };
        let mut channels = self.health.lock().map(|h| h.clone()).unwrap_or_default();
        for channel in Channel::ALL {
            let paused = self.deliverer.paused_for(channel).await;
            let health = channels.entry(channel).or_default();
            let readiness = self.deliverer.readiness(channel);
            health.demo = readiness == Readiness::Demo;
            health.off = match readiness {
                Readiness::Off(why) => Some(why),
                Readiness::Ready | Readiness::Demo => None,
            };
            health.paused_until_ms = paused.map(|wait| now_ms() + wait.as_millis() as i64);
        }
        let settings = self.queue.settings();
        QueueSnapshot {
            name: self.queue.name().to_owned(),
            backend: backend.to_owned(),
            degraded: self.queue.is_degraded(),
            counts,
            depth_history: history.iter().copied().collect(),
            sent_last_minute: completed
                .back()
                .zip(completed.front())
                .map_or(0, |(last, first)| last.saturating_sub(*first)),
            concurrency: settings.concurrency,
            rate_per_second: settings.rate_per_second,
            channels,
            dead: self.queue.recent_dead(5).await,
        }
    }
}

/// A second's wait, cut short by `closing`.
async fn pause(closing: &mut Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        _ = stopped(closing) => {}
    }
}
