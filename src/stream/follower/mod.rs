//! Follows one deployment's build log to the end, whatever the network does.
//!
//! One connection at a time to the events stream (`follow=1`). When it ends, breaks or stalls,
//! the follower asks for the deployment's state and reconnects from where it left off (see
//! [`ResumeState`]). Once the build reached READY, ERROR or CANCELED, a live connection is read
//! until it ends or goes quiet, and then a request without `follow` fetches whatever is left: a
//! server may keep a live stream open after the build, but a request without `follow` ends when
//! it has sent everything, so its clean end proves the log complete as far as the API knows.
//! Vercel may still add lines after that, so the follower then settles (`settle.rs`). After too
//! many failed connections in a row the stream is reported degraded, once, and the CLI fallback
//! takes over when one is configured (`degrade.rs`).
//!
//! The resume state never runs ahead of the output: it is saved only once the logger has written
//! out every line it covers ([`Follower::checkpoint`]), at least every
//! [`FollowOptions::checkpoint_lines`] lines (or, when lines come faster, every
//! [`CHECKPOINT_GAP`](super::options::CHECKPOINT_GAP)). After a crash a restart prints at most
//! that many lines again, and loses none.

mod degrade;
mod reading;
mod settle;
mod status;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use super::entries::{outcome_entry, with_deployment_facts, EntryContext, FirstError};
use super::identity::{resume_key, STATE_TTL};
use super::options::{FollowOptions, StreamHealth};
use super::resume::ResumeState;
use crate::clock::now_ms;
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::metrics::{Metrics, RestartReason};
use crate::shutdown::{stopped, Shutdown};
use crate::store::StateStore;
use crate::vercel::{LineSplitter, ReadyState, VercelClient, VercelError};
use reading::Connection;
use status::{poll_status, BuildStatus};

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{0}")]
    Vercel(#[from] VercelError),
    #[error("lost the build log stream of {deployment} after {attempts} failed connections: {last_error}")]
    Degraded {
        deployment: String,
        attempts: u32,
        last_error: String,
        fallback_used: bool,
    },
    #[error("stopped before the build finished")]
    Interrupted,
}

pub struct Follower {
    client: VercelClient,
    store: StateStore,
    logger: Logger,
    metrics: Arc<Metrics>,
    options: FollowOptions,
}

/// What one follow works with, from the first connection to the last.
struct Track<'a> {
    ctx: &'a EntryContext,
    cursor: &'a mut ResumeState,
    splitter: LineSplitter,
    status: watch::Receiver<BuildStatus>,
    shutdown: &'a mut Shutdown,
    /// Lines emitted since the resume state was last saved, or could not be.
    unsaved: u64,
    /// The output could not be confirmed at the last checkpoint (said once, not per attempt).
    held: bool,
    /// When the last checkpoint was tried.
    checkpointed: Instant,
    /// The line that says why the build failed, for its outcome.
    first_error: FirstError,
}

impl Follower {
    pub fn new(
        client: VercelClient,
        store: StateStore,
        logger: Logger,
        metrics: Arc<Metrics>,
        options: FollowOptions,
    ) -> Self {
        Follower {
            client,
            store,
            logger,
            metrics,
            options,
        }
    }

    /// Follows the deployment until its build is over; returns its final state.
    pub async fn follow(
        &self,
        id_or_url: &str,
        mut shutdown: Shutdown,
    ) -> Result<ReadyState, FollowError> {
        let deployment = tokio::select! {
            found = self.client.get_deployment(id_or_url) => found?,
            _ = stopped(&mut shutdown) => return Err(FollowError::Interrupted),
        };
        let ctx = EntryContext::of(&self.store, &deployment, self.options.replay).await;
        let mut cursor = match self.options.since {
            Some(since) => ResumeState::from_floor(since),
            None => self
                .store
                .get_json::<ResumeState>(&resume_key(&ctx.vercel_id))
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        };

        // The state, as last seen; a background task keeps it fresh while the build runs.
        let status = Arc::new(watch::Sender::new(BuildStatus::of(&deployment)));
        let poller = tokio::spawn(poll_status(
            self.client.clone(),
            ctx.vercel_id.to_string(),
            self.options.status_poll,
            status.clone(),
        ));
        self.metrics.stream_opened();
        let mut track = Track {
            ctx: &ctx,
            cursor: &mut cursor,
            splitter: LineSplitter::default(),
            status: status.subscribe(),
            shutdown: &mut shutdown,
            unsaved: 0,
            held: false,
            checkpointed: Instant::now(),
            first_error: FirstError::default(),
        };
        let result = self.run(&mut track, &status).await;
        self.metrics.stream_closed();
        match &result {
            Ok(_) => self.report(&ctx, StreamHealth::Finished),
            Err(FollowError::Degraded { .. }) => self.report(&ctx, StreamHealth::Degraded),
            Err(_) => {}
        }
        poller.abort();
        self.checkpoint(&mut track).await;
        if let Ok(end) = &result {
            let first_error = track.first_error.line();
            self.logger
                .write_waiting(with_deployment_facts(
                    outcome_entry(&ctx, *end, first_error),
                    &deployment,
                ))
                .await;
        }
        result
    }

    async fn run(
        &self,
        track: &mut Track<'_>,
        status_tx: &watch::Sender<BuildStatus>,
    ) -> Result<ReadyState, FollowError> {
        let mut failures: u32 = 0;
        let mut last_error = String::new();
        loop {
            let Some(attempt) = self.connect(track).await? else {
                continue;
            };
            self.checkpoint(track).await;
            if let Some(error) = attempt.error {
                last_error = error;
            }
            let (delivered, reason) = match attempt.connection {
                Connection::Interrupted => return Err(FollowError::Interrupted),
                // The request without `follow`, made after the build ended, got everything the
                // API had; what comes later, the settle window catches.
                Connection::Ended { .. } if attempt.over_before_connect.is_terminal() => {
                    return self.settle(track, attempt.over_before_connect).await;
                }
                Connection::Ended { delivered } => (delivered, RestartReason::CleanEnd),
                Connection::Broken { delivered, reason } => {
                    if reason == RestartReason::Stall {
                        last_error = format!("no data for {:?}", self.options.idle_timeout);
                    } else if delivered > 0 || last_error.is_empty() {
                        last_error = "the connection broke".to_owned();
                    }
                    (delivered, reason)
                }
            };
            self.metrics.stream_restarted(reason);
            self.report(track.ctx, StreamHealth::Reconnecting);
            failures = if delivered > 0 { 0 } else { failures + 1 };
            if failures >= self.options.reconnect.max_attempts {
                return Err(self.degrade(track, failures, last_error).await);
            }
            self.refresh_status(track.ctx, status_tx, &mut last_error)
                .await?;
            if failures > 0 {
                let wait = self
                    .options
                    .reconnect
                    .delay(failures - 1, attempt.retry_after);
                tracing::debug!(deployment = %track.ctx.vercel_id, ?wait, reason = reason.as_str(), "reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped(track.shutdown) => return Err(FollowError::Interrupted),
                }
            }
        }
    }

    fn system_entry(
        &self,
        ctx: &EntryContext,
        severity: Severity,
        event: &str,
        message: String,
    ) -> LogEntry {
        ctx.entry(now_ms(), Tier::System, severity, event, message)
    }

    fn report(&self, ctx: &EntryContext, health: StreamHealth) {
        if let Some(hook) = &self.options.on_health {
            hook(&ctx.vercel_id, health);
        }
    }

    /// Saves the resume state once every line it covers has been written out. When the output
    /// cannot be confirmed (a consumer is stuck), the state is not saved: a restart then repeats
    /// lines rather than skip some.
    async fn checkpoint(&self, track: &mut Track<'_>) {
        // Whatever happens, the next attempt waits for the next batch of lines.
        track.unsaved = 0;
        track.checkpointed = Instant::now();
        if !self.logger.flush().await {
            if !std::mem::replace(&mut track.held, true) {
                tracing::warn!(deployment = %track.ctx.vercel_id, "the output is not known to be written out (a stuck consumer, or a closed pipe): the resume state stays where it was");
            }
            return;
        }
        track.held = false;
        if let Err(err) = self
            .store
            .put_json(&resume_key(&track.ctx.vercel_id), &*track.cursor, STATE_TTL)
            .await
        {
            tracing::warn!(error = %err, "could not save the resume state");
        }
    }
}
