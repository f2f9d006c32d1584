//! Fired alerts into their groups, and the groups' notifications out to the queue when due
//! (see `alert::grouping`): checked every second, and at once after an alert joins (a route
//! without `group_wait` tells at once). A stopping run tells what its groups hold first.

use super::muting::inhibited;
use super::Keeper;
use crate::alert::book::{AlertBook, AlertRecord, AlertState};
use crate::alert::channels::Channel;
use crate::alert::delivery::DeliveryStatus;
use crate::alert::evaluator::Alert;
use crate::alert::grouping::{Flush, Standing};
use crate::alert::inhibit::InhibitRule;
use crate::alert::queue::Job;
use crate::clock::now_ms;

impl Keeper {
    /// Puts a fired alert in its group on each of its channels that sends (one that does not
    /// says why on the alert, counted as suppressed), then sends what is due.
    pub(super) async fn group(&mut self, alert: &Alert) {
        let fingerprint = alert.fingerprint.as_str();
        let mut channels = Vec::new();
        for &channel in &alert.channels {
            match self.deliverer.skipped(channel) {
                Some(off) => {
                    self.metrics.alert_suppressed(&alert.rule);
                    self.book.set_delivery(fingerprint, channel, off);
                }
                None => {
                    self.book
                        .set_delivery(fingerprint, channel, DeliveryStatus::Queued);
                    channels.push(channel);
                }
            }
        }
        if channels.is_empty() {
            return;
        }
        let now = now_ms();
        let routing = self.routing.clone();
        let book = &self.book;
        let open: Vec<&AlertRecord> = book.open().collect();
        let standing = |fingerprint: &str| standing_of(book, &open, &routing.inhibit, fingerprint);
        // One change of the shared groups: the alert joins, and what is due now (a route
        // without `group_wait`) is taken in the same turn of the lock.
        let flushes = self
            .groups
            .change(|groups| {
                for channel in channels {
                    groups.add(channel, routing.route(channel), alert, now);
                }
                groups.due(now, |c| routing.route(c).clone(), standing)
            })
            .await;
        self.send(flushes).await;
    }

    /// Sends the notifications of the groups that are due (on any instance's word: the groups
    /// are read from the store first).
    pub(in crate::alert) async fn flush_due(&mut self) {
        let now = now_ms();
        let routing = self.routing.clone();
        if !self.groups.refresh().await {
            return;
        }
        let next = self
            .groups
            .book
            .next_due(|channel| routing.route(channel).clone());
        if next.is_none_or(|due| due > now) {
            return;
        }
        let book = &self.book;
        let open: Vec<&AlertRecord> = book.open().collect();
        let standing = |fingerprint: &str| standing_of(book, &open, &routing.inhibit, fingerprint);
        let flushes = self
            .groups
            .change(|groups| groups.due(now, |c| routing.route(c).clone(), standing))
            .await;
        self.send(flushes).await;
    }

    /// Sends every group's waiting notification now (a stopping run).
    pub(in crate::alert) async fn flush_all(&mut self) {
        let book = &self.book;
        let rules = &self.routing.inhibit;
        let open: Vec<&AlertRecord> = book.open().collect();
        let standing = |fingerprint: &str| standing_of(book, &open, rules, fingerprint);
        let now = now_ms();
        let flushes = self
            .groups
            .change(|groups| groups.due_all(now, standing))
            .await;
        self.send(flushes).await;
    }

    async fn send(&mut self, flushes: Vec<Flush>) {
        for flush in flushes {
            let incident_key = match flush.channel {
                Channel::Pagerduty => self.incident_key(&flush.alert).await,
                _ => None,
            };
            let now = now_ms();
            let mut job = Job::new(flush.alert, flush.channel, now)
                .with_incident_key(incident_key)
                .telling(flush.members.clone());
            // One job per flush: an update is not taken for the one before it still queued
            // (a flush happens once among every instance, under the groups' lock).
            job.id = format!("{}.{now}", job.id);
            let status = self.enqueue(job).await;
            for fingerprint in &flush.members {
                self.book
                    .set_delivery(fingerprint, flush.channel, status.clone());
            }
        }
    }
}

/// How an alert stands for its groups now (looked up for a group's members only, when it is
/// due). An alert this instance does not know yet (fired elsewhere a moment ago) is told.
fn standing_of(
    book: &AlertBook,
    open: &[&AlertRecord],
    rules: &[InhibitRule],
    fingerprint: &str,
) -> Standing {
    let Some(record) = book.get(fingerprint) else {
        return Standing::Notify;
    };
    match record.state {
        AlertState::Resolved { by: Some(_), .. } => Standing::Gone,
        AlertState::Resolved { by: None, .. } => Standing::Quiet,
        AlertState::Acknowledged { .. } => Standing::Hold,
        AlertState::Firing if record.muted.is_some() => Standing::Hold,
        AlertState::Firing if inhibited(open, rules, record).is_some() => Standing::Hold,
        AlertState::Firing => Standing::Notify,
    }
}
