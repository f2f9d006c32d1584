//! Sending one job and finishing it as it went: completed, retried later (with exponential
//! backoff, or after a 429's pause), or dead-lettered; kept alive meanwhile (the heartbeat).

use std::time::Duration;

use super::{ChannelHealth, Delivered, Source, Worker};
use crate::alert::channels::{Channel, Notification};
use crate::alert::delivery::{DeliveryStatus, Failure};
use crate::alert::queue::shared::SharedQueue;
use crate::alert::queue::{Ending, Job, QueueError, Taken};
use crate::clock::now_ms;

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

impl Worker {
    /// Sends one job and finishes it.
    pub(super) async fn process(&self, source: Source, taken: Taken) {
        let job = &taken.job;
        // A channel paused by a 429 (anywhere): back in the queue until the pause ends,
        // without counting an attempt.
        if let Some(wait) = self.deliverer.paused_for(job.channel).await {
            let due = now_ms() + wait.as_millis() as i64;
            self.retry_at(source, &taken, job.clone(), due).await;
            return;
        }
        if let Some(wait) = self.window_slot(source, job.channel).await {
            let due = now_ms() + wait.as_millis() as i64;
            self.retry_at(source, &taken, job.clone(), due).await;
            return;
        }
        let settled = match job.follow_up {
            // A follow-up is news of the settling itself.
            Some(_) => None,
            // A group's notification goes unless every alert it tells of was settled.
            None if !job.alerts.is_empty() => {
                let reasons: Option<Vec<String>> =
                    job.alerts.iter().map(|fp| self.settled(fp)).collect();
                reasons.and_then(|r| r.into_iter().next())
            }
            None => self.settled(job.alert.fingerprint.as_str()),
        };
        if let Some(why) = settled {
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
        let job = &taken.job;
        let mut notification = Notification::firing(&job.alert);
        notification.incident_key = job.incident_key.as_deref();
        notification.link = job.alert.entry.metadata.get_str("inspector_url");
        if let Some(follow_up) = job.follow_up {
            notification.state = follow_up.state();
        }
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
        let allowed = self
            .deliverer
            .attempts(taken.job.channel)
            .unwrap_or(self.queue.settings().attempts);
        if attempts >= allowed {
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

    async fn report(&self, job: &Job, status: DeliveryStatus) {
        let _ = self
            .reports
            .send(Delivered {
                fingerprint: job.alert.fingerprint.as_str().to_owned(),
                channel: job.channel,
                status,
                alerts: job.alerts.clone(),
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

    /// How long a notification to `channel` waits for its destination's own rate limit (none
    /// when it may go now, or has no such limit).
    async fn window_slot(&self, source: Source, channel: Channel) -> Option<Duration> {
        let limit = self.deliverer.rate_limit(channel)?;
        let now = now_ms();
        match self.shared_for(source) {
            Some(shared) => match shared.window_slot(&limit, now).await {
                Ok(wait) => wait,
                Err(err) => {
                    self.queue.failed(&err);
                    self.queue.local().window_slot(&limit, now)
                }
            },
            None => self.queue.local().window_slot(&limit, now),
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

    async fn retry_at(&self, source: Source, taken: &Taken, job: Job, due_ms: i64) {
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
}
