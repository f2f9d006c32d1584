//! What one state file holds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::ttl_millis;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredEntry {
    /// The full (namespaced) key; checked on read so a hash collision can't serve another key.
    pub key: String,
    /// The value as stored (JSON text for `put_json`).
    pub value: String,
    /// Milliseconds since the Unix epoch; `None` keeps the entry until it is deleted.
    pub expires_at: Option<u64>,
    /// Written by `put_if_absent`: copied back to Redis only if Redis has no value of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub claimed: bool,
}

impl StoredEntry {
    pub(crate) fn new(key: &str, value: &str, ttl: Duration, claimed: bool) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_owned(),
            expires_at: ttl_millis(ttl).map(|ttl| now_millis().saturating_add(ttl)),
            claimed,
        }
    }

    pub(crate) fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= now_millis())
    }

    /// Time left before expiry, with `Duration::ZERO` for "never" (the store's convention).
    pub(crate) fn ttl_left(&self) -> Duration {
        match self.expires_at {
            None => Duration::ZERO,
            Some(at) => Duration::from_millis(at.saturating_sub(now_millis()).max(1)),
        }
    }
}

/// The wall clock, as the unsigned milliseconds the file holds.
fn now_millis() -> u64 {
    u64::try_from(crate::clock::now_ms()).unwrap_or(0)
}
