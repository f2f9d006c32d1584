//! Suppression windows: the first match of a fingerprint fires; repeats inside the rule's
//! window are only counted. The check-and-set is atomic in the state store (`SET NX PX` on
//! Redis, an exclusively created file when embedded), so instances racing on one fingerprint
//! fire once between them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::fingerprint::Fingerprint;
use crate::store::StateStore;

/// What to do with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// First in its window: notify.
    Fire,
    /// Seen before in this window; `count` matches so far, the first included ("x37").
    Repeat { count: u64 },
}

/// Decides per fingerprint, in the shared store or, for a replay, on the entries' own clock.
pub enum Suppressor {
    /// Live: windows in the state store, shared by every instance on it.
    Shared {
        store: StateStore,
        counts: Mutex<HashMap<Fingerprint, u64>>,
    },
    /// A dry run over recorded entries: windows measured in the entries' timestamps.
    Replay {
        open: Mutex<HashMap<Fingerprint, (i64, u64)>>,
    },
}

impl Suppressor {
    pub fn shared(store: StateStore) -> Self {
        Suppressor::Shared {
            store,
            counts: Mutex::default(),
        }
    }

    pub fn replay() -> Self {
        Suppressor::Replay {
            open: Mutex::default(),
        }
    }

    /// Fire or count a match of `fingerprint` at `at_ms` (used by replays) with this window.
    pub async fn check(&self, fingerprint: &Fingerprint, window: Duration, at_ms: i64) -> Decision {
        if window.is_zero() {
            return Decision::Fire;
        }
        match self {
            Suppressor::Shared { store, counts } => {
                let key = format!("alert_suppress:{fingerprint}");
                let won = match store.first_claim(&key, window).await {
                    Ok(won) => won,
                    Err(err) => {
                        // Better a second notification than a missed one.
                        tracing::warn!(error = %err, "suppression check failed; firing");
                        true
                    }
                };
                let Ok(mut counts) = counts.lock() else {
                    return Decision::Fire;
                };
                if won {
                    counts.insert(fingerprint.clone(), 1);
                    Decision::Fire
                } else {
                    let count = counts.entry(fingerprint.clone()).or_insert(1);
                    *count += 1;
                    Decision::Repeat { count: *count }
                }
            }
            Suppressor::Replay { open } => {
                let Ok(mut open) = open.lock() else {
                    return Decision::Fire;
                };
                let until = at_ms + window.as_millis() as i64;
                match open.get_mut(fingerprint) {
                    Some((open_until, count)) if at_ms < *open_until => {
                        *count += 1;
                        Decision::Repeat { count: *count }
                    }
                    _ => {
                        open.insert(fingerprint.clone(), (until, 1));
                        Decision::Fire
                    }
                }
            }
        }
    }
}
