//! The worker: takes jobs from the queue (Redis and this process), sends each within the
//! concurrency and the global rate limit, and finishes it: completed, retried later with
//! exponential backoff, or dead-lettered. A job is kept alive while it is being sent (a
//! heartbeat), so only a job whose worker died is taken over. It also moves due retries back,
//! recovers stalled jobs, watches for Redis to return, and publishes what the queue screen
//! shows.

mod sending;
mod upkeep;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};

use super::{DeliveryQueue, Taken};
use crate::alert::book::{AlertRecord, AlertState};
use crate::alert::channels::Channel;
use crate::alert::delivery::{Deliverer, DeliveryStatus};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::shutdown::{stopped, Shutdown};

pub use upkeep::{ChannelHealth, QueueSnapshot};

/// How a delivery went, for the alert book.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    pub fingerprint: String,
    pub channel: Channel,
    pub status: DeliveryStatus,
    /// The alerts it told of, when a group's (see `Job::alerts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
}

impl Delivered {
    /// The alerts whose feed shows how it went.
    pub fn alerts(&self) -> Vec<&str> {
        match self.alerts.is_empty() {
            true => vec![self.fingerprint.as_str()],
            false => self.alerts.iter().map(String::as_str).collect(),
        }
    }
}

/// How long a stopping worker keeps sending what is queued.
const DRAIN: Duration = Duration::from_secs(30);

/// Where a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Shared,
    Local,
}

/// Takes jobs from the delivery queue and sends them, one task per job within the concurrency.
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

    /// Checks the alert book before each send: a notification whose alert was settled meanwhile
    /// is dropped.
    pub fn minding(self, book: watch::Receiver<Vec<AlertRecord>>) -> Worker {
        Worker {
            book: Some(book),
            ..self
        }
    }

    /// Who settled the alert of `fingerprint` (acknowledged or resolved, or a silence muting
    /// it), if someone did.
    fn settled(&self, fingerprint: &str) -> Option<String> {
        let book = self.book.as_ref()?.borrow();
        let record = book.iter().find(|r| r.fingerprint == fingerprint)?;
        if let Some(muted) = &record.muted {
            return Some(muted.describe());
        }
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
}

/// A second's wait, cut short by `closing`.
async fn pause(closing: &mut Shutdown) {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        _ = stopped(closing) => {}
    }
}
