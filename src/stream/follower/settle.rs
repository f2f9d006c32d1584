//! The settle window. Vercel can report a build READY (or ERROR) before the last lines of its
//! log can be read from the events API, and says nothing when they arrive. So once the log is
//! complete as far as the API knows, the follower keeps asking for events after the last one it
//! has, every `settle_poll`, until none has come for `settle`; a late line starts the window
//! again. The window runs from when the build ended (Vercel's own time, when it gives one) and is
//! part of the resume state, so a follower stopped during it and started again waits only for
//! what is left of it.

use super::reading::Connection;
use super::{FollowError, Follower, Track};
use crate::clock::now_ms;
use crate::log::Severity;
use crate::shutdown::stopped;
use crate::vercel::ReadyState;

impl Follower {
    /// Asks for late lines until the log has been quiet for the settle window; returns `end`.
    pub(super) async fn settle(
        &self,
        track: &mut Track<'_>,
        end: ReadyState,
    ) -> Result<ReadyState, FollowError> {
        let window = i64::try_from(self.options.settle.as_millis()).unwrap_or(i64::MAX);
        // Never later than now: a clock that ran ahead, or a tampered state file, must not
        // keep a follower waiting for ever.
        let ended_at = track.status.borrow().ended_at;
        let mut from = track
            .cursor
            .settle_from
            .or(ended_at)
            .unwrap_or_else(now_ms)
            .min(now_ms());
        track.cursor.settle_from = Some(from);
        self.checkpoint(track).await;
        // Failed asks in a row; none at first: the request that brought us here got through.
        let mut failures = 0;
        loop {
            let deadline = from.saturating_add(window);
            let now = now_ms();
            if now >= deadline && failures == 0 {
                return Ok(end);
            }
            let wait = if now >= deadline {
                self.options.reconnect.delay(failures, None)
            } else {
                self.options
                    .settle_poll
                    .min(std::time::Duration::from_millis((deadline - now) as u64))
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(track.shutdown) => return Err(FollowError::Interrupted),
            }
            let emitted = track.cursor.events_emitted;
            let answered = match self.connect(track).await? {
                Some(attempt) => match attempt.connection {
                    Connection::Ended { .. } => true,
                    Connection::Broken { .. } => false,
                    Connection::Interrupted => return Err(FollowError::Interrupted),
                },
                None => false,
            };
            if track.cursor.events_emitted > emitted {
                from = now_ms();
                track.cursor.settle_from = Some(from);
            }
            self.checkpoint(track).await;
            failures = if answered { 0 } else { failures + 1 };
            if failures >= self.options.reconnect.max_attempts {
                self.logger.write(self.system_entry(
                    track.ctx,
                    Severity::Warn,
                    "settle_failed",
                    format!(
                        "Could not check {} for build log lines that arrive after the build ended",
                        track.ctx.vercel_id
                    ),
                ));
                return Ok(end);
            }
        }
    }
}
