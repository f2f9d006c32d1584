//! Where a follower left off, so that a reconnect or a restart neither loses nor repeats a line.
//!
//! Vercel's `since` takes a millisecond timestamp, events carry no cursor, many events can share
//! one millisecond, and servers differ on whether `since` is inclusive. So a follower resumes
//! from one millisecond *before* the last event it emitted, and drops what it already has:
//! everything older than that event, and the events of that very millisecond it has seen (kept
//! by id). The same rule also copes with a server that ignores `since` altogether.

use serde::{Deserialize, Serialize};

use crate::vercel::VercelEvent;

/// Persisted per deployment under `vercel:resume:{deploymentId}` (24 h TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeState {
    pub last_event_id: Option<String>,
    /// `created` of the last emitted event (ms).
    pub last_timestamp: Option<i64>,
    /// Ids already emitted whose `created` equals `last_timestamp`.
    #[serde(default)]
    pub ids_at_last_timestamp: Vec<String>,
    #[serde(default)]
    pub events_emitted: u64,
    /// Events older than this are not wanted (`--since`).
    #[serde(default)]
    pub floor: Option<i64>,
}

impl ResumeState {
    pub fn from_floor(since: i64) -> Self {
        ResumeState {
            floor: Some(since),
            ..ResumeState::default()
        }
    }

    /// The `since` to ask the server for on the next connection.
    pub fn since_param(&self) -> Option<i64> {
        self.last_timestamp.map(|t| t - 1).or(self.floor)
    }

    /// Has this event not been emitted yet?
    pub fn is_new(&self, event: &VercelEvent) -> bool {
        if self.floor.is_some_and(|floor| event.created < floor) {
            return false;
        }
        match self.last_timestamp {
            Some(last) if event.created < last => false,
            Some(last) if event.created == last => !self.ids_at_last_timestamp.contains(&event.id),
            _ => true,
        }
    }

    /// Remember that the event `id` created at `created` was emitted.
    pub fn record(&mut self, created: i64, id: String) {
        if self.last_timestamp != Some(created) {
            self.last_timestamp = Some(created);
            self.ids_at_last_timestamp.clear();
        }
        self.ids_at_last_timestamp.push(id.clone());
        self.last_event_id = Some(id);
        self.events_emitted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(created: i64, id: &str) -> VercelEvent {
        VercelEvent {
            created,
            id: id.to_owned(),
            kind: "stdout".to_owned(),
            text: id.to_owned(),
            level: None,
            deployment_id: None,
            build_name: None,
        }
    }

    /// Replays what a server would send from `since` (inclusive or exclusive, or ignoring it).
    fn server(events: &[VercelEvent], since: Option<i64>, mode: u8) -> Vec<VercelEvent> {
        events
            .iter()
            .filter(|e| match (since, mode) {
                (None, _) | (_, 2) => true,
                (Some(s), 0) => e.created >= s,
                (Some(s), _) => e.created > s,
            })
            .cloned()
            .collect()
    }

    proptest! {
        /// Connections cut anywhere, any `since` semantics, bursts in one millisecond:
        /// every event comes out exactly once, in order.
        #[test]
        fn reconnecting_anywhere_loses_and_repeats_nothing(
            gaps in proptest::collection::vec(0i64..3, 1..60),
            cuts in proptest::collection::vec(0usize..40, 0..8),
            mode in 0u8..3,
        ) {
            let mut t = 1_700_000_000_000;
            let events: Vec<VercelEvent> = gaps
                .iter()
                .enumerate()
                .map(|(i, gap)| { t += gap; ev(t, &format!("e{i}")) })
                .collect();
            let mut state = ResumeState::default();
            let mut out = Vec::new();
            let mut cuts = cuts.into_iter();
            loop {
                let sent = server(&events, state.since_param(), mode);
                let cut = cuts.next();
                let mut delivered = 0;
                for e in sent.iter().take(cut.unwrap_or(usize::MAX)) {
                    delivered += 1;
                    if state.is_new(e) {
                        state.record(e.created, e.id.clone());
                        out.push(e.id.clone());
                    }
                }
                if cut.is_none() || delivered == sent.len() {
                    break;
                }
            }
            let all: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
            prop_assert_eq!(out, all);
        }
    }

    #[test]
    fn a_floor_drops_older_events() {
        let state = ResumeState::from_floor(100);
        assert_eq!(state.since_param(), Some(100));
        assert!(!state.is_new(&ev(99, "a")));
        assert!(state.is_new(&ev(100, "b")));
    }
}
