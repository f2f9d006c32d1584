//! The delivery queue `LOGQ:{env}`, with the plan's BullMQ-like semantics: idempotent enqueue
//! (one live job per alert and channel), 3 attempts with exponential backoff from 2 s,
//! stalled-job recovery (a job whose worker died is taken over after the stall interval, at
//! most `max_stalled` times), a concurrency of 15 per worker, a global rate limit of 50
//! notifications a second, bounded retention of completed and dead-lettered jobs.
//!
//! On Redis the queue is a stream with a consumer group (`shared`); without Redis, or while
//! Redis is unreachable, the same semantics run in process (`local`), persisted to a file so a
//! restart loses nothing. The worker (`worker`) takes from both.

mod local;
mod shared;
pub mod worker;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channels::Channel;
use super::evaluator::Alert;
pub use local::LocalQueue;
pub use shared::SharedQueue;

/// The queue's behaviour; the defaults are the plan's.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Tries per notification before it is dead-lettered.
    pub attempts: u32,
    /// The first retry's delay; each later one doubles it.
    pub backoff: Duration,
    /// A job whose worker has not been heard of for this long is taken over.
    pub stall_interval: Duration,
    /// How often a job may be taken over before it is dead-lettered.
    pub max_stalled: u32,
    /// Notifications one worker sends at once.
    pub concurrency: usize,
    /// Notifications a second, across every worker of the queue.
    pub rate_per_second: u32,
    /// Completed jobs kept for inspection.
    pub keep_completed: usize,
    /// Dead-lettered jobs kept.
    pub keep_dead: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        QueueSettings {
            attempts: 3,
            backoff: Duration::from_secs(2),
            stall_interval: Duration::from_secs(30),
            max_stalled: 1,
            concurrency: 15,
            rate_per_second: 50,
            keep_completed: 100,
            keep_dead: 1000,
        }
    }
}

impl QueueSettings {
    /// The delay before retry number `attempts_made` (1 after the first failure).
    pub fn backoff_after(&self, attempts_made: u32) -> Duration {
        self.backoff
            .saturating_mul(1 << attempts_made.saturating_sub(1).min(16))
    }
}

/// Why a job taken over too often is dead-lettered (BullMQ's words).
pub const STALLED: &str = "stalled more than allowable limit";

/// One notification of one alert to one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// `{fingerprint}.{channel}` (`.acknowledge`, `.resolve` for a follow-up): while a job with
    /// this id is queued, another is not added.
    pub id: String,
    pub channel: Channel,
    pub alert: Alert,
    /// Failed attempts so far; a rate limit does not count.
    #[serde(default)]
    pub attempts_made: u32,
    pub enqueued_ms: i64,
    /// The alert's key in an incident tool (see `alert::incident`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_key: Option<String>,
    /// Set for news of an alert already told: someone acknowledged or resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
    /// The alerts the notification tells of (a group's); empty: its own alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
}

/// What a follow-up notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FollowUp {
    Acknowledge,
    Resolve,
}

impl FollowUp {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUp::Acknowledge => "acknowledge",
            FollowUp::Resolve => "resolve",
        }
    }

    /// The state a notification of it says.
    pub fn state(self) -> &'static str {
        match self {
            FollowUp::Acknowledge => crate::alert::channels::text::ACKNOWLEDGED,
            FollowUp::Resolve => crate::alert::channels::text::RESOLVED,
        }
    }
}

impl Job {
    pub fn new(alert: Alert, channel: Channel, now_ms: i64) -> Job {
        Job {
            id: format!("{}.{}", alert.fingerprint.as_str(), channel.as_str()),
            channel,
            alert,
            attempts_made: 0,
            enqueued_ms: now_ms,
            incident_key: None,
            follow_up: None,
            alerts: Vec::new(),
        }
    }

    /// The notification of a group, telling of these alerts.
    pub fn telling(mut self, alerts: Vec<String>) -> Job {
        self.alerts = alerts;
        self
    }

    /// The notification of an alert, known in incident tools by `incident_key`.
    pub fn with_incident_key(mut self, incident_key: Option<String>) -> Job {
        self.incident_key = incident_key;
        self
    }

    /// Tells `channel` that the alert (known there by `incident_key`) was acknowledged or
    /// resolved.
    pub fn follow_up(
        alert: Alert,
        channel: Channel,
        follow_up: FollowUp,
        incident_key: String,
        now_ms: i64,
    ) -> Job {
        let mut job = Job::new(alert, channel, now_ms).with_incident_key(Some(incident_key));
        job.id = format!("{}.{}", job.id, follow_up.as_str());
        job.follow_up = Some(follow_up);
        job
    }
}

/// How a taken job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// Delivered (counted as sent).
    Sent,
    /// Not sent on purpose (its alert was settled meanwhile; the channel is off): kept with the
    /// completed jobs, not counted as sent.
    Skipped(&'a str),
    /// Dead-lettered, for this reason.
    Dead(&'a str),
}

impl Ending<'_> {
    fn record(&self, job: &Job, at_ms: i64) -> FinishedJob {
        let reason = match self {
            Ending::Sent => None,
            Ending::Skipped(why) | Ending::Dead(why) => Some((*why).to_owned()),
        };
        FinishedJob::of(job, at_ms, reason)
    }
}

/// A job a worker holds, with what the backend needs to finish it.
#[derive(Debug, Clone)]
pub struct Taken {
    pub job: Job,
    /// The stream entry id (Redis) or the local queue's ticket.
    pub receipt: String,
    /// How many times the job has been taken, this time included.
    pub deliveries: u32,
}

/// A job that left the queue, as the queue screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedJob {
    pub id: String,
    pub channel: Channel,
    pub rule: String,
    pub at_ms: i64,
    pub attempts: u32,
    /// Why it was dead-lettered; none for a completed job.
    pub reason: Option<String>,
}

impl FinishedJob {
    pub fn of(job: &Job, at_ms: i64, reason: Option<String>) -> FinishedJob {
        FinishedJob {
            id: job.id.clone(),
            channel: job.channel,
            rule: job.alert.rule.clone(),
            at_ms,
            attempts: job.attempts_made,
            reason,
        }
    }
}

/// How many jobs are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Queued, not yet taken.
    pub waiting: u64,
    /// Taken by a worker, not yet finished.
    pub in_flight: u64,
    /// Waiting for their backoff (or a channel's pause) before another attempt.
    pub retrying: u64,
    pub dead_lettered: u64,
    /// Notifications delivered since the queue was created.
    pub completed: u64,
}

impl QueueCounts {
    /// `logs_alert_queue_depth`: every job not yet finished.
    pub fn depth(&self) -> u64 {
        self.waiting + self.in_flight + self.retrying
    }

    fn add(self, other: QueueCounts) -> QueueCounts {
        QueueCounts {
            waiting: self.waiting + other.waiting,
            in_flight: self.in_flight + other.in_flight,
            retrying: self.retrying + other.retrying,
            dead_lettered: self.dead_lettered + other.dead_lettered,
            completed: self.completed + other.completed,
        }
    }
}

/// Whether an enqueue added a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Added,
    /// A job with the same id is still queued; nothing was added.
    Duplicate,
}

/// How the shared queue failed: Redis is unreachable (an outage: the local queue takes over
/// until it answers), or it answered with an error (out of memory, read-only, ...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the alert queue on Redis failed: {reason}")]
pub struct QueueError {
    pub reason: String,
    pub outage: bool,
    /// Redis's error code when it said no, such as `NOGROUP`.
    pub code: Option<String>,
}

impl QueueError {
    pub fn outage(reason: impl Into<String>) -> Self {
        QueueError {
            reason: reason.into(),
            outage: true,
            code: None,
        }
    }

    pub fn refused(reason: impl Into<String>) -> Self {
        QueueError {
            reason: reason.into(),
            outage: false,
            code: None,
        }
    }

    /// Did Redis answer with this error code, such as `NOGROUP`?
    pub fn says(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Told when the shared queue is lost and when it is back.
pub type QueueHealthHook = Arc<dyn Fn(QueueHealthChange) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueHealthChange {
    /// Redis is unreachable; notifications queue in this process until it returns.
    Lost {
        reason: String,
    },
    Recovered,
}

/// The queue of a process: on Redis when shared, in process otherwise or while Redis is away.
pub struct DeliveryQueue {
    shared: tokio::sync::OnceCell<SharedQueue>,
    /// Where the shared queue is, while it could not be opened yet: URL, namespace, env.
    pending: Option<(crate::secret::Secret, String, String)>,
    local: LocalQueue,
    settings: QueueSettings,
    degraded: AtomicBool,
    on_health: QueueHealthHook,
    /// `LOGQ:{env}`
    name: String,
}

impl DeliveryQueue {
    /// `shared` is the Redis queue when there is one; `local` the in-process one.
    pub fn new(
        name: String,
        shared: Option<SharedQueue>,
        local: LocalQueue,
        settings: QueueSettings,
        on_health: QueueHealthHook,
    ) -> Self {
        DeliveryQueue {
            shared: tokio::sync::OnceCell::new_with(shared),
            pending: None,
            local,
            settings,
            degraded: AtomicBool::new(false),
            on_health,
            name,
        }
    }

    /// The queue of an instance: on Redis (`redis`: URL) with the in-process queue persisted
    /// under `dir` for when Redis is away, or only in process. A Redis that cannot be
    /// reached now counts as lost (the hook hears it) and is tried again by the worker.
    pub async fn open(
        redis: Option<&str>,
        namespace: &str,
        env: &str,
        dir: &Path,
        settings: QueueSettings,
        on_health: QueueHealthHook,
    ) -> DeliveryQueue {
        let name = format!("LOGQ:{env}");
        let file: String = format!("{namespace}{name}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let local = LocalQueue::open(&dir.join(format!("{file}.json")), settings.clone());
        let Some(url) = redis else {
            return DeliveryQueue::new(name, None, local, settings, on_health);
        };
        match SharedQueue::open(url, namespace, env, settings.clone()).await {
            Ok(shared) => DeliveryQueue::new(name, Some(shared), local, settings, on_health),
            Err(err) => {
                // Queued here until the worker reaches Redis (see `reconnect`).
                let mut queue = DeliveryQueue::new(name, None, local, settings, on_health);
                queue.pending = Some((
                    crate::secret::Secret::new(url),
                    namespace.to_owned(),
                    env.to_owned(),
                ));
                queue.lost(&err);
                queue
            }
        }
    }

    /// A queue in this process only, not persisted (tests, dry runs).
    pub fn in_memory(settings: QueueSettings) -> DeliveryQueue {
        let local = LocalQueue::in_memory(settings.clone());
        DeliveryQueue::new(
            "LOGQ:memory".to_owned(),
            None,
            local,
            settings,
            Arc::new(|_| {}),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    pub fn shared(&self) -> Option<&SharedQueue> {
        self.shared.get()
    }

    /// Whether this queue belongs on Redis (reached or not).
    pub fn uses_redis(&self) -> bool {
        self.shared.initialized() || self.pending.is_some()
    }

    /// Opens the shared queue if Redis could not be reached when this queue was made.
    pub async fn reconnect(&self) {
        let Some((url, namespace, env)) = &self.pending else {
            return;
        };
        if self.shared.initialized() {
            return;
        }
        let opened = SharedQueue::open(url.expose(), namespace, env, self.settings.clone()).await;
        if let Ok(shared) = opened {
            if self.shared.set(shared).is_ok() {
                self.recovered();
            }
        }
    }

    pub fn local(&self) -> &LocalQueue {
        &self.local
    }

    /// True while Redis is configured but unreachable.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    /// Adds a job unless one with its id is queued: on Redis when it answers, else locally.
    pub async fn enqueue(&self, job: Job) -> Enqueued {
        if let Some(shared) = self.shared().filter(|_| !self.is_degraded()) {
            match shared.enqueue(&job).await {
                Ok(enqueued) => return enqueued,
                Err(err) => self.failed(&err),
            }
        }
        self.local.enqueue(job)
    }

    /// A command on Redis failed: an outage switches to the local queue (said once); any other
    /// error is logged, and the next command tries Redis again.
    pub fn failed(&self, err: &QueueError) {
        if err.outage {
            self.lost(err);
        } else {
            tracing::warn!(error = %err, "the alert queue's Redis refused a command");
        }
    }

    /// Redis is unreachable: say so once per outage.
    pub fn lost(&self, err: &QueueError) {
        if !self.degraded.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %err, "alert queue lost Redis; queueing in this process");
            (self.on_health)(QueueHealthChange::Lost {
                reason: err.reason.clone(),
            });
        }
    }

    /// Redis answered again.
    pub fn recovered(&self) {
        if self.degraded.swap(false, Ordering::SeqCst) {
            tracing::info!("alert queue back on Redis");
            (self.on_health)(QueueHealthChange::Recovered);
        }
    }

    /// Jobs everywhere: Redis (when it answers) and this process.
    pub async fn counts(&self) -> QueueCounts {
        let local = self.local.counts();
        match self.shared().filter(|_| !self.is_degraded()) {
            Some(shared) => match shared.counts().await {
                Ok(counts) => counts.add(local),
                Err(err) => {
                    self.failed(&err);
                    local
                }
            },
            None => local,
        }
    }

    /// The latest dead-lettered jobs, newest first.
    pub async fn recent_dead(&self, limit: usize) -> Vec<FinishedJob> {
        let mut dead = self.local.recent_dead(limit);
        if let Some(shared) = self.shared().filter(|_| !self.is_degraded()) {
            if let Ok(more) = shared.recent_dead(limit).await {
                dead.extend(more);
            }
        }
        dead.sort_by_key(|job| std::cmp::Reverse(job.at_ms));
        dead.truncate(limit);
        dead
    }
}
