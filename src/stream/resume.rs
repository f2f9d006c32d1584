//! Where a follower left off, so that a reconnect or a restart neither loses nor repeats a line.
//!
//! Vercel's `since` takes a millisecond timestamp, events carry no cursor, many events can share
//! one millisecond, and servers differ on whether `since` is inclusive. So a follower resumes
//! from one millisecond *before* the last event it emitted, and drops what it already has:
//! everything older than that event, and as many events of that very millisecond as it already
//! emitted (a server sends the events of one millisecond in the same order every time). The same
//! rule also copes with a server that ignores `since` altogether. The state stays a few bytes
//! however many events share a millisecond.

use serde::{Deserialize, Serialize};

/// Persisted per deployment under `vercel:resume:{deploymentId}` (24 h TTL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeState {
    pub last_event_id: Option<String>,
    /// `created` of the last emitted event (ms).
    pub last_timestamp: Option<i64>,
    /// How many emitted events have `created == last_timestamp`.
    #[serde(default)]
    pub emitted_at_last_timestamp: u64,
    #[serde(default)]
    pub events_emitted: u64,
    /// Events older than this are not wanted (`--since`).
    #[serde(default)]
    pub floor: Option<i64>,
    /// When the build was seen over, or the latest late line arrived after that (wall-clock ms):
    /// the settle window runs from here, across restarts.
    #[serde(default)]
    pub settle_from: Option<i64>,
    /// Events of `last_timestamp` seen on the current connection.
    #[serde(skip)]
    seen_at_last_timestamp: u64,
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

    /// A new connection replays from `since_param`: count its events afresh.
    pub fn start_connection(&mut self) {
        self.seen_at_last_timestamp = 0;
    }

    /// Has the next event of this connection, created at `created`, not been emitted yet?
    /// Call it once per event, in the order the connection delivers them.
    pub fn is_new(&mut self, created: i64) -> bool {
        if self.floor.is_some_and(|floor| created < floor) {
            return false;
        }
        match self.last_timestamp {
            Some(last) if created < last => false,
            Some(last) if created == last => {
                self.seen_at_last_timestamp += 1;
                self.seen_at_last_timestamp > self.emitted_at_last_timestamp
            }
            _ => true,
        }
    }

    /// Remember that the event `id` created at `created` was emitted.
    pub fn record(&mut self, created: i64, id: &str) {
        if self.last_timestamp != Some(created) {
            self.last_timestamp = Some(created);
            self.emitted_at_last_timestamp = 0;
            self.seen_at_last_timestamp = 1;
        }
        self.emitted_at_last_timestamp += 1;
        // Every event passes here: the id's buffer is reused, not allocated anew.
        match &mut self.last_event_id {
            Some(last) => id.clone_into(last),
            None => self.last_event_id = Some(id.to_owned()),
        }
        self.events_emitted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone)]
    struct Ev {
        created: i64,
        id: String,
    }

    fn ev(created: i64, id: &str) -> Ev {
        Ev {
            created,
            id: id.to_owned(),
        }
    }

    /// Replays what a server would send from `since` (inclusive or exclusive, or ignoring it).
    fn server(events: &[Ev], since: Option<i64>, mode: u8) -> Vec<Ev> {
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
            let events: Vec<Ev> = gaps
                .iter()
                .enumerate()
                .map(|(i, gap)| { t += gap; ev(t, &format!("e{i}")) })
                .collect();
            let mut state = ResumeState::default();
            let mut out = Vec::new();
            let mut cuts = cuts.into_iter();
            loop {
                // A restart between connections keeps only what is persisted.
                let saved = serde_json::to_string(&state).expect("serialises");
                state = serde_json::from_str(&saved).expect("reads back");
                state.start_connection();
                let sent = server(&events, state.since_param(), mode);
                let cut = cuts.next();
                let mut delivered = 0;
                for e in sent.iter().take(cut.unwrap_or(usize::MAX)) {
                    delivered += 1;
                    if state.is_new(e.created) {
                        state.record(e.created, &e.id);
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
        let mut state = ResumeState::from_floor(100);
        assert_eq!(state.since_param(), Some(100));
        assert!(!state.is_new(99));
        assert!(state.is_new(100));
    }

    #[test]
    fn a_million_events_in_one_millisecond_keep_the_state_small() {
        let mut state = ResumeState::default();
        for i in 0..1_000_000 {
            assert!(state.is_new(7));
            state.record(7, &format!("e{i}"));
        }
        let saved = serde_json::to_string(&state).expect("serialises");
        assert!(saved.len() < 200, "{saved}");
        state.start_connection();
        assert!((0..1_000_000).all(|_| !state.is_new(7)));
        assert!(state.is_new(7), "the next one is new");
    }
}
