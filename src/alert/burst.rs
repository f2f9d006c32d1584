//! Rules that fire on many matches rather than one (`at_least` within `within_seconds`): per
//! rule and deployment, the times of its latest matches, by the entries' own clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::fingerprint::Fingerprint;
use super::rule::Burst;
use crate::log::LogEntry;

/// Windows kept before the stale ones are swept (deployments come and go).
const SWEEP_ABOVE: usize = 4096;

/// A rule's key and a deployment's id.
type Scope = (String, Arc<str>);

#[derive(Default)]
pub struct Bursts {
    /// Per scope, the times of its latest matches (at most a burst's count).
    windows: Mutex<HashMap<Scope, VecDeque<i64>>>,
}

impl Bursts {
    /// Counts a match of `rule`; true when it completes a burst (the window then starts
    /// afresh, so the next alert needs a burst of its own).
    pub fn complete(&self, rule: &str, entry: &LogEntry, burst: Burst) -> bool {
        let within = i64::try_from(burst.within.as_millis()).unwrap_or(i64::MAX);
        let scope: Arc<str> = entry.deployment_id.clone().unwrap_or_else(|| Arc::from(""));
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, times| times.back().is_some_and(|&t| t > entry.ts - within));
        }
        let times = windows.entry((rule.to_owned(), scope)).or_default();
        // Entries may come out of order: every time outside the window goes.
        times.retain(|&t| t > entry.ts - within);
        times.push_back(entry.ts);
        if times.len() < burst.count as usize {
            return false;
        }
        times.clear();
        true
    }
}

/// The entry a burst alert carries, and its fingerprint: the last match, its message saying
/// how many came, how fast and where, then the last match's message; its event the rule's key.
/// The fingerprint leaves the last message out, so that bursts of one deployment are one
/// problem whatever line happened to complete them.
pub fn burst_entry(rule: &str, last: &LogEntry, burst: Burst) -> (LogEntry, Fingerprint) {
    let mut entry = last.clone();
    entry.id = ulid::Ulid::from_parts(last.ts.max(0) as u64, rand::random());
    entry.event = rule.to_owned();
    let place = [last.metadata.project.as_deref(), last.build_id.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    entry.message = format!(
        "{} {} entries within {} s on {}",
        burst.count,
        last.tier.as_str(),
        burst.within.as_secs(),
        if place.is_empty() {
            "one deployment"
        } else {
            &place
        },
    );
    let fingerprint = Fingerprint::of(rule, &entry);
    entry.message = format!("{}; the last: {}", entry.message, last.message);
    (entry, fingerprint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Severity, Tier};
    use std::time::Duration;

    fn at(ts: i64, deployment: &str) -> LogEntry {
        let mut entry = LogEntry::at(ts, Tier::Runtime, Severity::Error, "request", "GET / 502");
        entry.deployment_id = Some(Arc::from(deployment));
        entry
    }

    #[test]
    fn a_burst_needs_its_count_within_its_window_per_deployment() {
        let bursts = Bursts::default();
        let burst = Burst {
            count: 3,
            within: Duration::from_secs(60),
        };
        assert!(!bursts.complete("r", &at(0, "a"), burst));
        assert!(!bursts.complete("r", &at(1_000, "a"), burst));
        // Another deployment's matches do not add up with these.
        assert!(!bursts.complete("r", &at(2_000, "b"), burst));
        // The first match has left the window by now.
        assert!(!bursts.complete("r", &at(60_000, "a"), burst));
        assert!(bursts.complete("r", &at(60_500, "a"), burst));
        // The window starts afresh after a burst.
        assert!(!bursts.complete("r", &at(61_000, "a"), burst));
    }

    #[test]
    fn the_burst_entry_says_how_many_how_fast_and_where() {
        let mut last = at(5, "a");
        last.build_id = Some(Arc::from("dpl_x"));
        last.metadata.project = Some(Arc::from("storefront"));
        let burst = Burst {
            count: 10,
            within: Duration::from_secs(60),
        };
        let (entry, fingerprint) = burst_entry("runtime_error_burst", &last, burst);
        assert_eq!(entry.event, "runtime_error_burst");
        assert_eq!(
            entry.message,
            "10 runtime entries within 60 s on storefront dpl_x; the last: GET / 502"
        );
        assert_ne!(entry.id, last.id);
        last.message = "Task timed out after 10.00 seconds (GET /api/og)".to_owned();
        let (_, same) = burst_entry("runtime_error_burst", &last, burst);
        assert_eq!(
            same, fingerprint,
            "one problem, whatever line completed the burst"
        );
    }
}
