//! The deployment's state as the follower knows it: from the first lookup, a background poll
//! while the build runs, and a fresh look after every connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{FollowError, Follower};
use crate::stream::entries::EntryContext;
use crate::vercel::{Deployment, ReadyState, VercelClient};

/// The deployment's state, and when its build ended (Vercel's clock, ms) once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BuildStatus {
    pub state: ReadyState,
    pub ended_at: Option<i64>,
}

impl BuildStatus {
    pub fn of(deployment: &Deployment) -> Self {
        BuildStatus {
            state: deployment.ready_state,
            ended_at: deployment.ended_at(),
        }
    }
}

impl Follower {
    /// Is the build still running? Asks now rather than wait for the poller.
    pub(super) async fn refresh_status(
        &self,
        ctx: &EntryContext,
        status: &watch::Sender<BuildStatus>,
        last_error: &mut String,
    ) -> Result<(), FollowError> {
        if status.borrow().state.is_terminal() {
            return Ok(());
        }
        match self.client.get_deployment(&ctx.vercel_id).await {
            Ok(d) => set_status(status, BuildStatus::of(&d)),
            Err(err) if !err.is_retryable() => return Err(err.into()),
            Err(err) => *last_error = err.to_string(),
        }
        Ok(())
    }
}

fn set_status(status: &watch::Sender<BuildStatus>, new: BuildStatus) {
    status.send_if_modified(|s| {
        let changed = *s != new;
        *s = new;
        changed
    });
}

/// Keeps the deployment's state fresh while its build runs.
pub(super) async fn poll_status(
    client: VercelClient,
    vercel_id: String,
    every: Duration,
    status: Arc<watch::Sender<BuildStatus>>,
) {
    loop {
        if status.borrow().state.is_terminal() {
            return;
        }
        tokio::time::sleep(every).await;
        match client.get_deployment(&vercel_id).await {
            Ok(d) => set_status(&status, BuildStatus::of(&d)),
            Err(err) => tracing::debug!(%err, "state poll failed"),
        }
    }
}
