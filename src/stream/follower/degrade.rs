//! When the events stream cannot be followed: the stream reported degraded, once, and the CLI
//! fallback run in its place when one is configured.

use super::{FollowError, Follower, Track};
use crate::clock::now_ms;
use crate::log::{Severity, Tier};
use crate::shutdown::stopped;

impl Follower {
    /// Reports the stream as degraded (once), then runs the CLI fallback when configured.
    pub(super) async fn degrade(
        &self,
        track: &mut Track<'_>,
        attempts: u32,
        last_error: String,
    ) -> FollowError {
        let ctx = track.ctx;
        let fallback_note = match &self.options.cli_fallback {
            Some(fallback) => format!("; falling back to `{}`", fallback.describe(&ctx.vercel_id)),
            None => String::new(),
        };
        self.logger.write(self.system_entry(
            ctx,
            Severity::Error,
            "degraded",
            format!(
                "Lost the build log stream of {} after {attempts} failed connections ({last_error}){fallback_note}",
                ctx.vercel_id
            ),
        ));
        let mut fallback_used = false;
        if let Some(fallback) = &self.options.cli_fallback {
            let run = fallback.run(&ctx.vercel_id, |text| {
                let mut entry = ctx.entry(now_ms(), Tier::Build, Severity::Info, "stdout", text);
                entry.metadata.vercel_type = Some("cli-fallback".to_owned());
                self.logger.write_waiting(entry)
            });
            tokio::select! {
                result = run => match result {
                    Ok(()) => fallback_used = true,
                    Err(err) => self.logger.write(self.system_entry(
                        ctx,
                        Severity::Error,
                        "fallback_failed",
                        format!("The CLI fallback failed: {err}"),
                    )),
                },
                _ = stopped(track.shutdown) => {}
            }
        }
        FollowError::Degraded {
            deployment: ctx.vercel_id.to_string(),
            attempts,
            last_error,
            fallback_used,
        }
    }
}
