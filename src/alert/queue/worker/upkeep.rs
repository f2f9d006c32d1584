//! The worker's upkeep, once a second: due retries back, stalled jobs taken over, Redis watched
//! while away, and what the queue screen shows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::{Source, Worker};
use crate::alert::channels::{Channel, Readiness};
use crate::alert::queue::{FinishedJob, QueueCounts, QueueError};
use crate::clock::now_ms;
use crate::shutdown::{stopped, Shutdown};

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
    pub dead: Vec<FinishedJob>,
}

/// Seconds of depth the sparkline keeps.
const HISTORY: usize = 120;

impl Worker {
    /// Once a second: due retries back, stalled jobs taken over, Redis checked while away,
    /// the snapshot and the depth gauge refreshed. Ends when `closing` turns true.
    pub(super) async fn upkeep(self: Arc<Self>, mut closing: Shutdown) {
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
    ) -> Result<(), QueueError> {
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
