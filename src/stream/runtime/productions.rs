//! Every project's production runtime logs, for `serve` (`SHIPLOG_RUNTIME_LOGS=true`): the
//! projects are found among recent production deployments, looked for again every few
//! minutes, and each gets a runtime follower of its production, so that the runtime rules run
//! without a screen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{RuntimeError, RuntimeFollower, RuntimeTarget};
use crate::log::{LogEntry, Severity};
use crate::shutdown::{stopped, Shutdown};
use crate::vercel::client::ListQuery;

/// How many recent production deployments are looked through for projects.
const LOOKED_THROUGH: u32 = 100;

/// Follows every project's production until `shutdown`; looks for new projects (and restarts
/// followers that gave up) every `every`.
pub async fn follow_productions(
    follower: Arc<RuntimeFollower>,
    every: Duration,
    mut shutdown: Shutdown,
) {
    // Each project followed, by the id of the task that follows it.
    let mut followed: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut tasks: JoinSet<String> = JoinSet::new();
    loop {
        let query = ListQuery {
            limit: Some(LOOKED_THROUGH),
            target: Some("production".to_owned()),
            ..ListQuery::default()
        };
        match follower.client.list_deployments(&query).await {
            Ok(list) => {
                for project in list.deployments.iter().filter_map(|d| d.project_id.clone()) {
                    if followed.values().any(|p| *p == project) {
                        continue;
                    }
                    let (follower, shutdown) = (follower.clone(), shutdown.clone());
                    let target = RuntimeTarget::Production(project.clone());
                    let task = tasks.spawn(async move {
                        match follower.follow(&target, shutdown).await {
                            Ok(()) | Err(RuntimeError::Interrupted) => String::new(),
                            Err(err) => err.to_string(),
                        }
                    });
                    followed.insert(task.id(), project);
                }
            }
            Err(err) => tracing::warn!(%err, "could not list production deployments"),
        }
        let wait = tokio::time::sleep(every);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                _ = stopped(&mut shutdown) => {
                    while tasks.join_next().await.is_some() {}
                    return;
                }
                Some(ended) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    // Ended, failed or (a bug) panicked: looked for again at the next round.
                    let (id, error) = match ended {
                        Ok((id, error)) => (id, error),
                        Err(err) => (err.id(), "it stopped unexpectedly".to_owned()),
                    };
                    let project = followed.remove(&id).unwrap_or_default();
                    if !error.is_empty() {
                        follower.logger.write(LogEntry::system(
                            Severity::Warn,
                            "runtime_stopped",
                            format!(
                                "Stopped following the runtime logs of project {project} ({error}); \
                                 trying again in {} s",
                                every.as_secs()
                            ),
                        ));
                    }
                }
            }
        }
    }
}
