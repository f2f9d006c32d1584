//! PagerDuty both ways: each group paged on PagerDuty has an incident key (`alert::incident`);
//! an acknowledgement here acknowledges its incident, and the incident is resolved once every
//! alert in it is (here, or after its quiet hour). What PagerDuty's webhooks say comes back as
//! [`Mirrored`] changes, applied to every alert of the incident and never sent back.

use super::{apply, Keeper};
use crate::alert::book::AlertState;
use crate::alert::channels::Channel;
use crate::alert::evaluator::Alert;
use crate::alert::queue::{FollowUp, Job};
use crate::alert::runner::{AlertCommand, Mirrored};
use crate::alert::sync::{SharedAction, SyncMessage};
use crate::clock::now_ms;

impl Keeper {
    /// The key of the incident a notification to PagerDuty opens or adds to (made with its
    /// first page, then the same until it is resolved).
    pub(super) async fn incident_key(&self, alert: &Alert) -> Option<String> {
        match self.incidents.as_ref()?.open(alert).await {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::warn!(error = %err, "could not keep the alert's incident key");
                None
            }
        }
    }

    /// Tells PagerDuty that an alert it was paged for was acknowledged or resolved here; a
    /// resolve waits until every alert of the incident's group is resolved, and ends the
    /// incident key (once among every instance).
    pub(super) async fn follow_up(&mut self, fingerprint: &str, follow_up: FollowUp) {
        let (Some(incidents), Some(record)) = (&self.incidents, self.book.get(fingerprint)) else {
            return;
        };
        // An instance that does not page (no routing key, switched off) leaves the incident to
        // the one that does: it must not end the key without telling PagerDuty.
        if !record.channels.contains(&Channel::Pagerduty)
            || self.deliverer.skipped(Channel::Pagerduty).is_some()
        {
            return;
        }
        // The groups as they stand now (another instance, or a moment ago, may have paged).
        self.groups.refresh().await;
        let Some(record) = self.book.get(fingerprint) else {
            return;
        };
        let (incident, members) = match self.groups.book.group_of(Channel::Pagerduty, fingerprint) {
            Some(group) => (group.id.clone(), self.groups.book.members_of(&group.id)),
            None => (fingerprint.to_owned(), vec![fingerprint.to_owned()]),
        };
        let Ok(Some(key)) = incidents.current(&incident).await else {
            // Never paged (muted, or PagerDuty off), or ended already.
            return;
        };
        if follow_up == FollowUp::Resolve {
            // An alert this instance does not know (fired elsewhere) counts as still open.
            let open = |m: &String| {
                self.book
                    .get(m)
                    .is_none_or(|r| !matches!(r.state, AlertState::Resolved { .. }))
            };
            if members.iter().any(open) {
                return;
            }
            if !matches!(incidents.close(&incident, &key).await, Ok(true)) {
                return;
            }
        }
        let mut alert = record.reminder(follow_up.as_str());
        alert.fingerprint = crate::alert::Fingerprint::known(&incident);
        let job = Job::follow_up(alert, Channel::Pagerduty, follow_up, key, now_ms())
            .telling(members.clone());
        let status = self.enqueue(job).await;
        for member in &members {
            self.book
                .set_delivery(member, Channel::Pagerduty, status.clone());
        }
    }

    /// A change made in PagerDuty to the incident of one alert or group: applied here to each
    /// of its alerts and shared with the other instances, never sent back; the same change
    /// twice is nothing.
    pub(in crate::alert) async fn mirrored(&mut self, change: Mirrored) {
        let now = now_ms();
        let incident = change.command.fingerprint().to_owned();
        // News of an older incident of the same alert or group (resolved here, and paged anew
        // since) is not news of the current one.
        if let (Some(incidents), Some(key)) = (&self.incidents, &change.incident_key) {
            if let Ok(Some(current)) = incidents.current(&incident).await {
                if &current != key {
                    tracing::info!(%key, "a PagerDuty webhook about an earlier incident; ignored");
                    return;
                }
            }
        }
        let mut changed = Vec::new();
        self.groups.refresh().await;
        for fingerprint in self.groups.book.members_of(&incident) {
            let command = change.command.about(&fingerprint);
            let state = self.book.get(&fingerprint).map(|r| &r.state);
            let already = matches!(
                (&command, state),
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
            if !already && apply(&mut self.book, &command, &change.by, now) {
                changed.push(command);
            }
        }
        if changed.is_empty() {
            return;
        }
        tracing::info!(command = ?change.command, by = %change.by, "alert changed in PagerDuty");
        if let (Some(incidents), Some(key)) = (&self.incidents, &change.incident_key) {
            let kept = match change.command {
                // The incident is over there: the next page opens a new one.
                AlertCommand::Resolve { .. } => incidents.close(&incident, key).await.map(|_| ()),
                _ => incidents.remember_key(&incident, key).await,
            };
            if let Err(err) = kept {
                tracing::warn!(error = %err, "could not keep the alert's incident key");
            }
        }
        if let Some(sync) = &self.sync {
            for command in changed {
                let action = SharedAction {
                    command,
                    by: change.by.clone(),
                    at_ms: now,
                };
                sync.publish(SyncMessage::Action(action)).await;
            }
        }
    }
}
