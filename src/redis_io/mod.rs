//! Talking to Redis, once for every user (the state store, the breakglass store, the alert
//! queue and the alert sync): a target opened from a URL whose password is never shown
//! (`target`), and one command path (`link`) that bounds every command by a timeout and sorts
//! its failure into an outage or a refusal, the password scrubbed from every message.

mod link;
mod target;

use std::time::Duration;

pub(crate) use link::{within, RedisLink, Request};
pub(crate) use target::{fail_fast, ConnectFailure, RedisTarget};

/// How long one command may take before Redis counts as gone. Two seconds is what the state
/// store has always allowed: a healthy Redis answers in milliseconds, and every user has
/// somewhere to go when it does not (local files, the in-process queue, a denial), so waiting
/// longer only keeps the dashboard waiting.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long connecting (and authenticating) may take: a little longer than a command, as a
/// new connection makes more than one round trip.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why talking to Redis failed. No message holds the password: URLs are redacted and Redis'
/// own texts are scrubbed before they get here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisIoError {
    #[error("REDIS_URL {url} is not a usable Redis URL: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// Redis is gone or unusable for now (connection, loading, failover, read-only replica):
    /// the caller may fall back. `reason` is short, such as "connection refused".
    #[error("Redis at {address}: {reason}")]
    Outage { address: String, reason: String },

    /// Nothing came back within `within`: an outage too.
    #[error("Redis at {address}: {}", self.reason())]
    NoAnswer { address: String, within: Duration },

    /// Redis answered and said no (NOPERM, WRONGTYPE, OOM, ...): a real error for the caller.
    /// `code` is Redis' error code, such as `NOPERM`, and `detail` what follows it.
    #[error("Redis at {address}: {reason}")]
    Refused {
        address: String,
        code: Option<String>,
        detail: Option<String>,
        reason: String,
    },
}

impl RedisIoError {
    /// True when Redis is gone or unusable rather than saying no.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            RedisIoError::Outage { .. } | RedisIoError::NoAnswer { .. }
        )
    }

    /// What went wrong, without where: "connection refused", "no answer within 2 s".
    pub fn reason(&self) -> String {
        match self {
            RedisIoError::NoAnswer { within, .. } => {
                format!("no answer within {} s", within.as_secs_f64())
            }
            RedisIoError::InvalidUrl { reason, .. }
            | RedisIoError::Outage { reason, .. }
            | RedisIoError::Refused { reason, .. } => reason.clone(),
        }
    }
}
