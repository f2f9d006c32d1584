//! The lifecycle of alerts: each fingerprint is one alert, firing, acknowledged (who, when,
//! optional note, until when) or resolved (by someone, or automatically after a quiet period).
//! While acknowledged it notifies no more; an expired acknowledgement fires again; a resolved
//! alert that matches again opens anew.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channels::Channel;
use super::delivery::DeliveryStatus;
use super::evaluator::{Alert, AlertEvent};
use super::fingerprint::Fingerprint;
use super::labels::Labels;
use super::rule::AlertSeverity;
use super::silence::Silence;
use crate::clock::now_ms;
use crate::log::runtime::DEPLOY_REGRESSION;
use crate::log::{LogEntry, Tier};

/// How long an acknowledgement holds unless said otherwise (PagerDuty's default is 30 min to
/// hours; an on-call shift needs a few hours).
pub const DEFAULT_ACK: Duration = Duration::from_secs(4 * 60 * 60);
/// An alert with no new match for this long resolves itself.
pub const QUIET_PERIOD: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Acknowledged {
        by: String,
        at: i64,
        until: i64,
        note: Option<String>,
    },
    Resolved {
        by: Option<String>,
        at: i64,
    },
}

impl AlertState {
    pub fn label(&self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Acknowledged { .. } => "acked",
            AlertState::Resolved { .. } => "resolved",
        }
    }
}

/// One alert as the feed shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub fingerprint: String,
    pub rule: String,
    pub severity: AlertSeverity,
    pub channels: Vec<Channel>,
    /// The first line of the message that fired it.
    pub summary: String,
    pub deployment_id: Option<String>,
    /// Vercel's deployment id, to jump to its log.
    pub build_id: Option<String>,
    /// `ts` of the entry that fired it, to find the line.
    pub entry_ts: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Matches in the current episode, the first included.
    pub count: u64,
    pub state: AlertState,
    /// How the latest notification went, per channel.
    #[serde(default)]
    pub deliveries: BTreeMap<Channel, DeliveryStatus>,
    /// The deployment to roll production back to, when the alert says production got worse
    /// (`deploy_regression`): acting on the alert offers that rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// What silences, inhibition and grouping match on.
    #[serde(default)]
    pub labels: Labels,
    /// The silence muting its notifications, while one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<Muted>,
}

/// Why an alert's notifications are muted, as the feed shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "lowercase")]
pub enum Muted {
    /// A silence matches it.
    Silence {
        silence: String,
        author: String,
        comment: String,
        until: i64,
    },
    /// An open alert inhibits it (`deploy_failed` mutes its deployment's `build_failed`).
    Inhibited { rule: String, fingerprint: String },
}

impl Muted {
    pub fn by(silence: &Silence) -> Muted {
        Muted::Silence {
            silence: silence.id.clone(),
            author: silence.created_by.clone(),
            comment: silence.comment.clone(),
            until: silence.ends_at,
        }
    }

    /// The silence, when one mutes it.
    pub fn silence(&self) -> Option<&str> {
        match self {
            Muted::Silence { silence, .. } => Some(silence),
            Muted::Inhibited { .. } => None,
        }
    }

    /// `muted by silence 01JD4X2K9Q (ana: known flaky test)`, or `inhibited by deploy_failed
    /// (7c1e9a42d0b3)`.
    pub fn describe(&self) -> String {
        match self {
            Muted::Silence {
                silence,
                author,
                comment,
                ..
            } => {
                let id = super::silence::short_id(silence);
                format!("muted by silence {id} ({author}: {comment})")
            }
            Muted::Inhibited { rule, fingerprint } => {
                let fingerprint = Fingerprint::short(fingerprint);
                format!("inhibited by {rule} ({fingerprint})")
            }
        }
    }
}

impl AlertRecord {
    fn new(alert: &Alert, now: i64) -> Self {
        AlertRecord {
            fingerprint: alert.fingerprint.as_str().to_owned(),
            rule: alert.rule.clone(),
            severity: alert.severity,
            channels: alert.channels.clone(),
            summary: first_line(&alert.entry.message),
            deployment_id: alert.entry.deployment_id.as_deref().map(str::to_owned),
            build_id: alert.entry.build_id.as_deref().map(str::to_owned),
            rollback_to: (alert.entry.event == DEPLOY_REGRESSION)
                .then(|| alert.entry.metadata.get_str("previous_deployment"))
                .flatten()
                .map(str::to_owned),
            labels: Labels::of(alert),
            muted: None,
            entry_ts: alert.entry.ts,
            first_seen: now,
            last_seen: now,
            count: 1,
            state: AlertState::Firing,
            deliveries: BTreeMap::new(),
        }
    }
}

impl AlertRecord {
    /// The alert again, for a notification sent long after it fired (its silence ended while
    /// it still fires): the entry that fired it is gone, so its first line says `why`.
    pub fn reminder(&self, why: &str) -> Alert {
        let mut entry = LogEntry::at(
            now_ms(),
            Tier::System,
            self.severity.entry_severity(),
            "alert_reminder",
            format!("{why}: {}", self.summary),
        );
        entry.deployment_id = self.deployment_id.as_deref().map(Arc::from);
        entry.build_id = self.build_id.as_deref().map(Arc::from);
        let project = self.labels.get("project");
        entry.metadata.project = (!project.is_empty()).then(|| Arc::from(project));
        Alert {
            fingerprint: Fingerprint::known(&self.fingerprint),
            rule: self.rule.clone(),
            severity: self.severity,
            channels: self.channels.clone(),
            entry: Arc::new(entry),
        }
    }
}

/// What a change means for notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// Tell people (a new alert, a reopened one, or one whose acknowledgement ran out).
    Notify,
    /// Counted only.
    Quiet,
}

/// The most alerts a book holds. Past it, the resolved alerts that began longest ago go first
/// (an open alert is never dropped), so a worker that runs for months stays small.
pub const KEEP: usize = 500;

/// Every alert of this run, by fingerprint.
#[derive(Debug, Default, Clone)]
pub struct AlertBook {
    alerts: HashMap<String, AlertRecord>,
}

impl AlertBook {
    /// Applies a decision of the rule evaluator at `now` (ms).
    pub fn apply(&mut self, event: &AlertEvent, now: i64) -> Announcement {
        match event {
            AlertEvent::Fired(alert) => self.fired(alert, now),
            AlertEvent::Repeated { alert, count } => {
                let record = self
                    .alerts
                    .entry(alert.fingerprint.as_str().to_owned())
                    // Fired by another instance sharing the state: shown here too.
                    .or_insert_with(|| AlertRecord::new(alert, now));
                record.count = record.count.max(*count);
                record.last_seen = now;
                self.make_room();
                Announcement::Quiet
            }
        }
    }

    fn fired(&mut self, alert: &Alert, now: i64) -> Announcement {
        let key = alert.fingerprint.as_str().to_owned();
        match self.alerts.get_mut(&key) {
            Some(record) => {
                record.last_seen = now;
                match &record.state {
                    AlertState::Acknowledged { until, .. } if now < *until => {
                        record.count += 1;
                        Announcement::Quiet
                    }
                    _ => {
                        // Resolved, firing again after its window, or an expired ack: a new episode.
                        if matches!(record.state, AlertState::Resolved { .. }) {
                            record.first_seen = now;
                        }
                        record.count = 1;
                        record.state = AlertState::Firing;
                        record.summary = first_line(&alert.entry.message);
                        record.entry_ts = alert.entry.ts;
                        Announcement::Notify
                    }
                }
            }
            None => {
                self.alerts.insert(key, AlertRecord::new(alert, now));
                self.make_room();
                Announcement::Notify
            }
        }
    }

    /// Acknowledges an alert until `now + hold`; false if there is no such open alert.
    pub fn acknowledge(
        &mut self,
        fingerprint: &str,
        by: &str,
        note: Option<String>,
        now: i64,
        hold: Duration,
    ) -> bool {
        match self.alerts.get_mut(fingerprint) {
            Some(record) if !matches!(record.state, AlertState::Resolved { .. }) => {
                record.state = AlertState::Acknowledged {
                    by: by.to_owned(),
                    at: now,
                    until: now + hold.as_millis() as i64,
                    note: note.filter(|n| !n.trim().is_empty()),
                };
                true
            }
            _ => false,
        }
    }

    pub fn resolve(&mut self, fingerprint: &str, by: &str, now: i64) -> bool {
        match self.alerts.get_mut(fingerprint) {
            Some(record) if !matches!(record.state, AlertState::Resolved { .. }) => {
                record.state = AlertState::Resolved {
                    by: Some(by.to_owned()),
                    at: now,
                };
                true
            }
            _ => false,
        }
    }

    /// Resolves alerts quiet for `quiet`; returns their fingerprints.
    pub fn resolve_quiet(&mut self, now: i64, quiet: Duration) -> Vec<String> {
        let mut resolved = Vec::new();
        for record in self.alerts.values_mut() {
            let is_open = !matches!(record.state, AlertState::Resolved { .. });
            if is_open && now - record.last_seen >= quiet.as_millis() as i64 {
                record.state = AlertState::Resolved { by: None, at: now };
                resolved.push(record.fingerprint.clone());
            }
        }
        resolved
    }

    /// Makes an acknowledged or resolved alert fire again (its acknowledgement was withdrawn,
    /// or its incident reopened, elsewhere); false when it already fires or is unknown.
    pub fn reopen(&mut self, fingerprint: &str) -> bool {
        match self.alerts.get_mut(fingerprint) {
            Some(record) if record.state != AlertState::Firing => {
                record.state = AlertState::Firing;
                true
            }
            _ => false,
        }
    }

    pub fn get(&self, fingerprint: &str) -> Option<&AlertRecord> {
        self.alerts.get(fingerprint)
    }

    /// Records how a notification to `channel` went.
    pub fn set_delivery(&mut self, fingerprint: &str, channel: Channel, status: DeliveryStatus) {
        if let Some(record) = self.alerts.get_mut(fingerprint) {
            record.deliveries.insert(channel, status);
        }
    }

    /// Marks an alert muted by a silence, or no longer; true when that changed.
    pub fn set_muted(&mut self, fingerprint: &str, muted: Option<Muted>) -> bool {
        match self.alerts.get_mut(fingerprint) {
            Some(record) if record.muted != muted => {
                record.muted = muted;
                true
            }
            _ => false,
        }
    }

    /// The alerts not resolved.
    pub fn open(&self) -> impl Iterator<Item = &AlertRecord> {
        self.alerts
            .values()
            .filter(|r| !matches!(r.state, AlertState::Resolved { .. }))
    }

    /// Adds the alerts it does not know yet (stored by this or another instance); true if
    /// there were any.
    pub fn adopt(&mut self, records: impl IntoIterator<Item = AlertRecord>) -> bool {
        let mut added = false;
        for record in records {
            if !self.alerts.contains_key(&record.fingerprint) {
                self.alerts.insert(record.fingerprint.clone(), record);
                added = true;
            }
        }
        self.make_room();
        added
    }

    /// Drops resolved alerts, those that began longest ago first, until at most [`KEEP`] are
    /// left (or only open ones).
    fn make_room(&mut self) {
        let Some(excess) = self.alerts.len().checked_sub(KEEP).filter(|n| *n > 0) else {
            return;
        };
        let mut resolved: Vec<(i64, String)> = self
            .alerts
            .values()
            .filter(|r| matches!(r.state, AlertState::Resolved { .. }))
            .map(|r| (r.first_seen, r.fingerprint.clone()))
            .collect();
        resolved.sort_unstable();
        for (_, fingerprint) in resolved.into_iter().take(excess) {
            self.alerts.remove(&fingerprint);
        }
    }

    /// Every alert, newest first.
    pub fn newest_first(&self) -> Vec<AlertRecord> {
        let mut all: Vec<AlertRecord> = self.alerts.values().cloned().collect();
        all.sort_by(|a, b| {
            b.first_seen
                .cmp(&a.first_seen)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        all
    }
}

fn first_line(text: &str) -> String {
    crate::printable::one_line(text.lines().next().unwrap_or("")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Severity;

    fn fired(message: &str) -> AlertEvent {
        fired_for("vercel-dpl_a-1", message)
    }

    fn fired_for(deployment: &str, message: &str) -> AlertEvent {
        let entry = LogEntry::at(1, Tier::Deploy, Severity::Error, "failed", message)
            .with_deployment(deployment);
        AlertEvent::Fired(Alert {
            fingerprint: Fingerprint::of("deploy_failed", &entry),
            rule: "deploy_failed".to_owned(),
            severity: AlertSeverity::High,
            channels: vec![Channel::Slack],
            entry: Arc::new(entry),
        })
    }

    fn fp(event: &AlertEvent) -> String {
        match event {
            AlertEvent::Fired(a) => a.fingerprint.as_str().to_owned(),
            AlertEvent::Repeated { alert, .. } => alert.fingerprint.as_str().to_owned(),
        }
    }

    const MIN: i64 = 60_000;

    #[test]
    fn a_long_running_book_drops_the_oldest_resolved_alerts_and_never_an_open_one() {
        let mut book = AlertBook::default();
        let failure = |i: usize| fired_for(&format!("vercel-dpl_{i}-1"), "Deployment is ERROR");
        for i in 0..KEEP + 100 {
            book.apply(&failure(i), i as i64 * MIN);
        }
        assert_eq!(
            book.newest_first().len(),
            KEEP + 100,
            "open alerts all stay"
        );
        book.resolve_quiet(10_000 * MIN, Duration::from_secs(60));
        book.apply(&failure(KEEP + 100), 10_001 * MIN);
        let left = book.newest_first();
        assert_eq!(left.len(), KEEP);
        assert_eq!(
            left[0].fingerprint,
            fp(&failure(KEEP + 100)),
            "the new one is there"
        );
        assert!(
            !left.iter().any(|r| r.fingerprint == fp(&failure(0))),
            "the oldest is gone"
        );
        assert!(left
            .iter()
            .any(|r| r.fingerprint == fp(&failure(KEEP + 99))));
    }

    #[test]
    fn an_acknowledged_alert_stays_quiet_until_the_ack_expires() {
        let mut book = AlertBook::default();
        let event = fired("Deployment is ERROR");
        assert_eq!(book.apply(&event, 0), Announcement::Notify);
        assert!(book.acknowledge(
            &fp(&event),
            "ana",
            Some("looking".into()),
            MIN,
            Duration::from_secs(30 * 60)
        ));
        assert_eq!(
            book.apply(&event, 20 * MIN),
            Announcement::Quiet,
            "acknowledged: nothing more is sent"
        );
        let record = &book.newest_first()[0];
        assert_eq!((record.count, record.state.label()), (2, "acked"));
        assert_eq!(
            book.apply(&event, 40 * MIN),
            Announcement::Notify,
            "the ack ran out: it fires again"
        );
        assert_eq!(book.newest_first()[0].state, AlertState::Firing);
    }

    #[test]
    fn resolved_alerts_reopen_and_quiet_ones_resolve_themselves() {
        let mut book = AlertBook::default();
        let event = fired("Deployment is ERROR");
        book.apply(&event, 0);
        assert!(book.resolve(&fp(&event), "ana", MIN));
        assert!(
            !book.acknowledge(&fp(&event), "bo", None, MIN, DEFAULT_ACK),
            "nothing to ack"
        );
        assert_eq!(
            book.apply(&event, 2 * MIN),
            Announcement::Notify,
            "a resolved alert opens anew"
        );
        assert_eq!(book.newest_first()[0].first_seen, 2 * MIN);
        assert_eq!(
            book.resolve_quiet(2 * MIN + QUIET_PERIOD.as_millis() as i64, QUIET_PERIOD),
            [fp(&event)]
        );
        assert!(matches!(
            book.newest_first()[0].state,
            AlertState::Resolved { by: None, .. }
        ));
    }
}
