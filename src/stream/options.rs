//! How a follower is set up (timeouts, backoff, where to start, a fallback), and how it reports
//! the health of its stream.

use std::sync::Arc;
use std::time::Duration;

use super::fallback::CliFallback;
use crate::retry::RetryPolicy;

/// After a crash, at most this many lines are printed again (and none is lost): the resume state
/// is saved, after the output it covers has been written out, at least this often.
pub const CHECKPOINT_LINES: u64 = 1000;

/// Two saves of the resume state are at least this far apart: a build printing more than 5,000
/// lines a second (a log replayed whole) would otherwise spend a tenth of its CPU replacing
/// state files. After a crash it may then repeat what it printed in this time.
pub const CHECKPOINT_GAP: Duration = Duration::from_millis(200);

/// How long a finished build's log must stay quiet before it counts as complete: Vercel can
/// report a build over some seconds before the last lines of its log can be read.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

/// How a follower follows.
#[derive(Clone)]
pub struct FollowOptions {
    /// A connection that sends no byte for this long is treated as broken.
    pub idle_timeout: Duration,
    /// Backoff between failed connections; `max_attempts` failures in a row make the stream degraded.
    pub reconnect: RetryPolicy,
    /// How often to ask for the deployment's state while its stream is open.
    pub status_poll: Duration,
    /// Once the build is over, a live connection quiet for this long has nothing more to say.
    pub drain_idle: Duration,
    /// Start from this time (ms) instead of the saved resume state.
    pub since: Option<i64>,
    /// Read a finished build again to show it: its entries are marked replayed (the alert
    /// rules pass them by).
    pub replay: bool,
    /// Run this when the stream is degraded.
    pub cli_fallback: Option<CliFallback>,
    /// At most this often the resume state is written while events flow.
    pub persist_every: Duration,
    /// At most this many lines are emitted between two saves of the resume state, so a restart
    /// after a crash repeats at most this many.
    pub checkpoint_lines: u64,
    /// Once the build is over, keep asking for late lines until none has come for this long
    /// (Vercel can report a build over before the last lines of its log can be read).
    pub settle: Duration,
    /// How often to ask for late lines during the settle window.
    pub settle_poll: Duration,
    /// Told how the stream is doing (the dashboard's "live / reconnecting / degraded").
    pub on_health: Option<HealthHook>,
}

/// How a deployment's stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamHealth {
    /// Connected and reading.
    Live,
    /// Between connections: the last one ended, broke or stalled.
    Reconnecting,
    /// Every retry failed.
    Degraded,
    /// The build is over and its log complete.
    Finished,
}

/// Receives `(vercel deployment id, health)` on every change.
pub type HealthHook = Arc<dyn Fn(&str, StreamHealth) + Send + Sync>;

impl std::fmt::Debug for FollowOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowOptions")
            .field("idle_timeout", &self.idle_timeout)
            .field("reconnect", &self.reconnect)
            .field("since", &self.since)
            .field("settle", &self.settle)
            .finish_non_exhaustive()
    }
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            idle_timeout: Duration::from_secs(30),
            reconnect: RetryPolicy {
                max_attempts: 10,
                base_delay: Duration::from_millis(200),
                // Short on purpose: a stream resumes within 2 s of the server being back.
                max_delay: Duration::from_millis(1500),
            },
            status_poll: Duration::from_secs(5),
            drain_idle: Duration::from_secs(2),
            since: None,
            replay: false,
            cli_fallback: None,
            persist_every: Duration::from_secs(5),
            checkpoint_lines: CHECKPOINT_LINES,
            settle: DEFAULT_SETTLE,
            settle_poll: Duration::from_secs(2),
            on_health: None,
        }
    }
}
