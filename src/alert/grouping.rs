//! Grouping, as Alertmanager has it: per channel, alerts with equal values of the route's
//! `group_by` labels share one notification. A new group waits `group_wait` for more members
//! before its first notification; a member that joins after it waits for `group_interval` since
//! that notification (not sent at once); a group still firing is told again every
//! `repeat_interval`. A group's notification lists its members; its fingerprint is the group's
//! (so PagerDuty keeps one incident per group).
//!
//! The groups live in the state store (`alert_groups`), changed under its lock, so every instance
//! sharing it adds to the same groups and each notification is sent by one of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::channels::Channel;
use super::evaluator::Alert;
use super::fingerprint::Fingerprint;
use super::labels::Labels;
use super::routing::GroupRoute;
use crate::store::{StateStore, StoreError};

/// The most members a group keeps (past it, a new member is counted in the notification's
/// "and N more" only when it replaces a resolved one).
pub const MEMBERS_MAX: usize = 200;
/// The most members a notification lists by name.
const LISTED: usize = 20;
/// How much of a member's message is kept (its first lines are what is shown).
const MESSAGE_KEPT: usize = 4 * 1024;

/// One alert of a group, as it fired.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub alert: Alert,
    pub added_at: i64,
}

impl Member {
    fn fingerprint(&self) -> &str {
        self.alert.fingerprint.as_str()
    }
}

/// One group of one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// 40 hex characters, like a fingerprint: the notification's fingerprint.
    pub id: String,
    pub channel: Channel,
    /// The `group_by` labels' values.
    pub labels: Labels,
    pub members: Vec<Member>,
    /// When its next notification is due; none when nothing new waits.
    pub due_at: Option<i64>,
    pub last_sent_at: Option<i64>,
}

/// What a member of a group is to the alert book now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Firing, not muted: notified.
    Notify,
    /// Acknowledged or muted: kept in the group, not notified.
    Hold,
    /// Resolved by someone: leaves the group.
    Gone,
    /// Resolved for want of news (by the instance's own count): leaves the group only once it
    /// has not joined it again for [`QUIET`] either, as another instance may see it still firing.
    Quiet,
}

/// How long an alert resolved for want of news stays in its group.
const QUIET: Duration = crate::alert::book::QUIET_PERIOD;

/// A notification due for a group.
#[derive(Debug, Clone)]
pub struct Flush {
    pub group: String,
    pub channel: Channel,
    /// What the notification says: the member's alert, or for several, one that lists them.
    pub alert: Alert,
    /// The members it tells.
    pub members: Vec<String>,
}

/// Every group of every channel.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupBook {
    groups: BTreeMap<String, Group>,
}

/// The id of the group `labels` fall in on `channel` under `route`.
pub fn group_id(
    channel: Channel,
    route: &GroupRoute,
    labels: &Labels,
    fingerprint: &str,
) -> String {
    let mut hasher = Sha1::new();
    hasher.update(b"group|");
    hasher.update(channel.as_str().as_bytes());
    if route.group_by.is_empty() {
        // Every label: each alert is its own group.
        hasher.update(b"|alert|");
        hasher.update(fingerprint.as_bytes());
    }
    for name in &route.group_by {
        hasher.update(b"|");
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        hasher.update(labels.get(name).as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

impl GroupBook {
    /// Adds a fired alert to its group on `channel`, and says when that group is due: a new
    /// group after `group_wait`; one told before, `group_interval` after it was (or now, if
    /// that is past). The group's id.
    pub fn add(&mut self, channel: Channel, route: &GroupRoute, alert: &Alert, now: i64) -> String {
        let labels = Labels::of(alert);
        let id = group_id(channel, route, &labels, alert.fingerprint.as_str());
        let group = self.groups.entry(id.clone()).or_insert_with(|| Group {
            id: id.clone(),
            channel,
            labels: Labels::from_pairs(
                route
                    .group_by
                    .iter()
                    .map(|name| (name.as_str(), Some(labels.get(name)))),
            ),
            members: Vec::new(),
            due_at: None,
            last_sent_at: None,
        });
        let member = Member {
            alert: kept(alert),
            added_at: now,
        };
        let known = group
            .members
            .iter()
            .position(|m| m.fingerprint() == alert.fingerprint.as_str());
        match known {
            // It fired again (a new episode): news again.
            Some(index) => group.members[index] = member,
            None if group.members.len() < MEMBERS_MAX => group.members.push(member),
            None => {}
        }
        let due = match group.last_sent_at {
            None => now.saturating_add(millis(route.wait)),
            Some(sent) => sent.saturating_add(millis(route.interval)).max(now),
        };
        group.due_at = Some(group.due_at.map_or(due, |d| d.min(due)));
        id
    }

    /// The notifications due at `now`, each group's members standing as `standing` says:
    /// resolved ones leave (an empty group goes), the others are told when their group is due,
    /// or again after `repeat_interval` while they still fire.
    pub fn due(
        &mut self,
        now: i64,
        route: impl Fn(Channel) -> GroupRoute,
        standing: impl Fn(&str) -> Standing,
    ) -> Vec<Flush> {
        self.take(
            |group| {
                let repeat = millis(route(group.channel).repeat);
                group.due_at.is_some_and(|due| due <= now)
                    || group.last_sent_at.is_some_and(|sent| sent + repeat <= now)
            },
            now,
            standing,
        )
    }

    /// Every notification waiting, due or not: a stopping run tells what it has.
    pub fn due_all(&mut self, now: i64, standing: impl Fn(&str) -> Standing) -> Vec<Flush> {
        self.take(|group| group.due_at.is_some(), now, standing)
    }

    fn take(
        &mut self,
        is_due: impl Fn(&Group) -> bool,
        now: i64,
        standing: impl Fn(&str) -> Standing,
    ) -> Vec<Flush> {
        let mut flushes = Vec::new();
        self.groups.retain(|_, group| {
            group.members.retain(|m| match standing(m.fingerprint()) {
                Standing::Gone => false,
                Standing::Quiet => now.saturating_sub(m.added_at) < millis(QUIET),
                Standing::Notify | Standing::Hold => true,
            });
            if group.members.is_empty() {
                return false;
            }
            if !is_due(group) {
                return true;
            }
            group.due_at = None;
            let told: Vec<&Member> = group
                .members
                .iter()
                .filter(|m| standing(m.fingerprint()) == Standing::Notify)
                .collect();
            if told.is_empty() {
                // Nothing to say (all acknowledged or muted): not a repeat either.
                group.last_sent_at = group.last_sent_at.map(|_| now);
                return true;
            }
            flushes.push(Flush {
                group: group.id.clone(),
                channel: group.channel,
                alert: notification(&group.id, &told),
                members: told.iter().map(|m| m.fingerprint().to_owned()).collect(),
            });
            group.last_sent_at = Some(now);
            true
        });
        flushes
    }

    /// When the next notification of any group is due (a first one, an update, or a repeat).
    pub fn next_due(&self, route: impl Fn(Channel) -> GroupRoute) -> Option<i64> {
        self.groups
            .values()
            .filter_map(|group| {
                let repeat = group
                    .last_sent_at
                    .map(|sent| sent.saturating_add(millis(route(group.channel).repeat)));
                [group.due_at, repeat].into_iter().flatten().min()
            })
            .min()
    }

    /// The alerts an incident's fingerprint stands for: a group's members, or the alert itself.
    pub fn members_of(&self, fingerprint: &str) -> Vec<String> {
        match self.groups.get(fingerprint) {
            Some(group) => group
                .members
                .iter()
                .map(|m| m.fingerprint().to_owned())
                .collect(),
            None => vec![fingerprint.to_owned()],
        }
    }

    /// The group `id`, if there is one.
    pub fn get(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// The group on `channel` that holds the alert `fingerprint`.
    pub fn group_of(&self, channel: Channel, fingerprint: &str) -> Option<&Group> {
        self.groups.values().find(|g| {
            g.channel == channel && g.members.iter().any(|m| m.fingerprint() == fingerprint)
        })
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The alert as a group keeps it: its message cut to its first 4 KiB.
fn kept(alert: &Alert) -> Alert {
    let mut alert = alert.clone();
    if alert.entry.message.len() > MESSAGE_KEPT {
        let mut entry = (*alert.entry).clone();
        let mut end = MESSAGE_KEPT;
        while !entry.message.is_char_boundary(end) {
            end -= 1;
        }
        entry.message.truncate(end);
        alert.entry = Arc::new(entry);
    }
    alert
}

/// The notification of a group: one member's own alert, or for several, the first one's with
/// a message listing them all (`… (3 alerts)`, then one line each).
fn notification(group: &str, told: &[&Member]) -> Alert {
    let first = &told[0].alert;
    let mut alert = first.clone();
    alert.fingerprint = Fingerprint::known(group);
    if told.len() == 1 {
        return alert;
    }
    alert.severity = told
        .iter()
        .map(|m| m.alert.severity)
        .max()
        .unwrap_or(first.severity);
    let mut entry = (*first.entry).clone();
    let first_line = |e: &crate::log::LogEntry| {
        e.message
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&e.event)
            .to_owned()
    };
    // What they share: the build's error when they name one, else the first one's line.
    let headline = entry
        .metadata
        .get_str("first_error")
        .map_or_else(|| first_line(&entry), str::to_owned);
    let mut message = format!("{headline} ({} alerts)\n", told.len());
    for member in told.iter().take(LISTED) {
        let e = &member.alert.entry;
        let about = [
            e.metadata.project.as_deref(),
            e.build_id.as_deref().or(e.deployment_id.as_deref()),
            e.metadata.get_str("branch"),
        ];
        let about: Vec<&str> = about.into_iter().flatten().collect();
        match e.metadata.get_str("first_error") {
            Some(_) => message.push_str(&format!("- {}\n", about.join(" "))),
            None => message.push_str(&format!("- {}: {}\n", about.join(" "), first_line(e))),
        }
    }
    if told.len() > LISTED {
        message.push_str(&format!("- and {} more\n", told.len() - LISTED));
    }
    entry.message = message;
    // Each member has its own deployment; what they share stays.
    let shared = |get: &dyn Fn(&Alert) -> Option<String>| {
        let first = get(&told[0].alert);
        told.iter()
            .all(|m| get(&m.alert) == first)
            .then_some(first)
            .flatten()
    };
    if shared(&|a| a.entry.deployment_id.as_deref().map(str::to_owned)).is_none() {
        entry.deployment_id = None;
        entry.build_id = None;
        entry.metadata.vercel_deployment_id = None;
        for key in ["inspector_url", "url", "commit", "first_error"] {
            entry.metadata.extra.remove(key);
        }
    }
    if shared(&|a| a.entry.metadata.project.as_deref().map(str::to_owned)).is_none() {
        entry.metadata.project = None;
        entry.project_id = None;
    }
    alert.entry = Arc::new(entry);
    alert
}

const KEY: &str = "alert_groups";
const LOCK: &str = "alert_groups:lock";
/// Groups nobody touched for a week are gone.
const KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);
const LOCK_TTL: Duration = Duration::from_secs(10);
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The groups, in the state store when there is one (shared), else in this process.
pub struct Groups {
    store: Option<StateStore>,
    /// The book as last read or written.
    pub book: GroupBook,
}

impl Groups {
    pub fn new(store: Option<StateStore>) -> Self {
        Groups {
            store,
            book: GroupBook::default(),
        }
    }

    /// Reads the shared book again (what other instances added).
    /// Reads the shared book again; false (the book as it was kept) when it could not be read.
    pub async fn refresh(&mut self) -> bool {
        let Some(store) = &self.store else {
            return true;
        };
        match store.get_json::<GroupBook>(KEY).await {
            Ok(book) => {
                self.book = book.unwrap_or_default();
                true
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not read the alert groups");
                false
            }
        }
    }

    /// Changes the book: read, `edit`, written back, under the store's lock. A lock that stays
    /// taken (its holder died: it lapses in seconds) does not lose the change: it is made and
    /// written anyway. A book that could not be read is changed here and not written, so that
    /// it never overwrites what the others keep.
    pub async fn change<T>(&mut self, edit: impl FnOnce(&mut GroupBook) -> T) -> T {
        let Some(store) = self.store.clone() else {
            return edit(&mut self.book);
        };
        let lock = match store.lock(LOCK, LOCK_TTL, LOCK_WAIT).await {
            Ok(lock) => lock,
            Err(err) => {
                tracing::warn!(error = %err, "could not lock the alert groups");
                None
            }
        };
        if lock.is_none() {
            tracing::warn!("the alert groups stayed locked; changing them without the lock");
        }
        let read = self.refresh().await;
        let result = edit(&mut self.book);
        if read {
            if let Err(err) = self.save(&store).await {
                tracing::warn!(error = %err, "could not store the alert groups");
            }
        }
        if let Some(lock) = lock {
            lock.release().await;
        }
        result
    }

    async fn save(&self, store: &StateStore) -> Result<(), StoreError> {
        store.put_json(KEY, &self.book, KEPT).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertSeverity;
    use crate::log::{LogEntry, Severity, Tier};

    const SEC: i64 = 1000;

    fn failure(deployment: &str, message: &str) -> Alert {
        let mut entry = LogEntry::at(0, Tier::Deploy, Severity::Error, "failed", message)
            .with_deployment(format!("vercel-{deployment}-01"))
            .with_build(deployment.to_owned());
        entry.metadata.project = Some("storefront".into());
        Alert {
            fingerprint: Fingerprint::of("deploy_failed", &entry),
            rule: "deploy_failed".to_owned(),
            severity: AlertSeverity::High,
            channels: vec![Channel::Slack],
            entry: Arc::new(entry),
        }
    }

    fn route() -> GroupRoute {
        GroupRoute::default()
    }

    fn firing(_: &str) -> Standing {
        Standing::Notify
    }

    #[test]
    fn ten_deployments_failing_alike_are_one_notification_listing_them() {
        let mut book = GroupBook::default();
        // As outcome entries say it: the branch and commit differ, the error does not.
        let error = "Type error: Property 'id' does not exist on type 'Cart'.";
        for i in 0..10 {
            let mut alert = failure(
                &format!("dpl_{i}"),
                &format!("storefront feat/{i} {i}f2a1c9: {error} · Deployment dpl_{i} is ERROR"),
            );
            let mut entry = (*alert.entry).clone();
            entry = entry.with_meta("first_error", error);
            alert.entry = Arc::new(entry);
            book.add(Channel::Slack, &route(), &alert, i * SEC);
        }
        let other = failure("dpl_x", "Module not found: Can't resolve 'react'");
        book.add(Channel::Slack, &route(), &other, 5 * SEC);
        assert!(
            book.due(29 * SEC, |_| route(), firing).is_empty(),
            "group_wait holds"
        );
        let flushes = book.due(30 * SEC, |_| route(), firing);
        assert_eq!(
            flushes.len(),
            1,
            "the first group is due; the other 5 s later"
        );
        let first = &flushes[0];
        assert_eq!(first.members.len(), 10);
        let message = &first.alert.entry.message;
        assert!(
            message.starts_with(&format!("{error} (10 alerts)\n")),
            "{message}"
        );
        assert!(message.contains("\n- storefront dpl_9\n"), "{message}");
        assert_eq!(first.alert.fingerprint.as_str(), first.group);
        assert!(
            first.alert.entry.build_id.is_none(),
            "ten deployments, not one"
        );
        assert_eq!(
            first.alert.entry.metadata.project.as_deref(),
            Some("storefront")
        );
        let later = book.due(35 * SEC, |_| route(), firing);
        assert_eq!(later.len(), 1);
        assert_eq!(
            later[0].alert.entry.message, "Module not found: Can't resolve 'react'",
            "one member: its own alert"
        );
    }

    #[test]
    fn a_late_member_waits_for_the_group_interval_then_a_still_firing_group_repeats() {
        let mut book = GroupBook::default();
        book.add(
            Channel::Slack,
            &route(),
            &failure("dpl_a", "Deployment is ERROR"),
            0,
        );
        assert_eq!(book.due(30 * SEC, |_| route(), firing).len(), 1);
        // A minute later the same error on another deployment: not at once.
        book.add(
            Channel::Slack,
            &route(),
            &failure("dpl_b", "Deployment is ERROR"),
            90 * SEC,
        );
        assert!(book.due(91 * SEC, |_| route(), firing).is_empty());
        assert!(book.due(329 * SEC, |_| route(), firing).is_empty());
        let update = book.due(330 * SEC, |_| route(), firing);
        assert_eq!(
            update.len(),
            1,
            "group_interval after the first notification"
        );
        assert_eq!(update[0].members.len(), 2);
        // Nothing new: quiet until repeat_interval, then told again.
        assert!(book
            .due(330 * SEC + 4 * 3600 * SEC - 1, |_| route(), firing)
            .is_empty());
        assert_eq!(
            book.due(330 * SEC + 4 * 3600 * SEC, |_| route(), firing)
                .len(),
            1
        );
    }

    #[test]
    fn resolved_members_leave_and_acknowledged_ones_are_not_told() {
        let mut book = GroupBook::default();
        let a = failure("dpl_a", "Deployment is ERROR");
        let b = failure("dpl_b", "Deployment is ERROR");
        book.add(Channel::Slack, &route(), &a, 0);
        book.add(Channel::Slack, &route(), &b, 0);
        let acked = a.fingerprint.as_str().to_owned();
        let flushes = book.due(
            30 * SEC,
            |_| route(),
            |fp| {
                if fp == acked {
                    Standing::Hold
                } else {
                    Standing::Notify
                }
            },
        );
        assert_eq!(flushes[0].members, [b.fingerprint.as_str()]);
        // Resolved within group_wait: never sent, and the group goes.
        let c = failure("dpl_c", "Build canceled");
        book.add(Channel::Slack, &route(), &c, 40 * SEC);
        assert!(book
            .due(70 * SEC, |_| route(), |_| Standing::Gone)
            .is_empty());
        assert_eq!(book.groups().count(), 0);
    }

    #[test]
    fn channels_group_apart_and_every_label_means_each_alert_alone() {
        let mut book = GroupBook::default();
        let alone = GroupRoute {
            group_by: Vec::new(),
            ..route()
        };
        for deployment in ["dpl_a", "dpl_b"] {
            let alert = failure(deployment, "Deployment is ERROR");
            book.add(Channel::Slack, &route(), &alert, 0);
            book.add(Channel::Pagerduty, &alone, &alert, 0);
        }
        let flushes = book.due(30 * SEC, |_| route(), firing);
        let per_channel = |c: Channel| flushes.iter().filter(|f| f.channel == c).count();
        assert_eq!(
            (per_channel(Channel::Slack), per_channel(Channel::Pagerduty)),
            (1, 2)
        );
    }
}
