//! Discovery: polls the team's deployments and follows every build while it runs, one
//! follower task per deployment.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::follower::{stopped, FollowOptions, Follower, Shutdown};
use crate::log::{LogEntry, Logger, Severity};
use crate::metrics::Metrics;
use crate::store::StateStore;
use crate::vercel::client::ListQuery;
use crate::vercel::VercelClient;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How often to list deployments.
    pub poll_every: Duration,
    /// Only this project (id or name).
    pub project: Option<String>,
    pub follow: FollowOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            poll_every: Duration::from_secs(5),
            project: None,
            follow: FollowOptions::default(),
        }
    }
}

pub struct StreamEngine {
    client: VercelClient,
    store: StateStore,
    logger: Logger,
    metrics: Arc<Metrics>,
    options: EngineOptions,
}

impl StreamEngine {
    pub fn new(
        client: VercelClient,
        store: StateStore,
        logger: Logger,
        metrics: Arc<Metrics>,
        options: EngineOptions,
    ) -> Self {
        StreamEngine {
            client,
            store,
            logger,
            metrics,
            options,
        }
    }

    /// Runs until `shutdown`; followers stop with it and save where they were.
    pub async fn run(self, mut shutdown: Shutdown) {
        // Every deployment followed in this run, finished ones included, so that a list taken
        // just before a build ended does not start it again.
        let mut followed: HashSet<String> = HashSet::new();
        let mut followers = JoinSet::new();
        let mut list_failing = false;
        let query = ListQuery {
            limit: Some(20),
            project_id: self.options.project.clone(),
            state: Some("QUEUED,INITIALIZING,BUILDING".to_owned()),
            since: None,
        };
        loop {
            match self.client.list_deployments(&query).await {
                Ok(list) => {
                    if list_failing {
                        list_failing = false;
                        self.logger.write(LogEntry::system(
                            Severity::Info,
                            "recovered",
                            "Listing deployments works again",
                        ));
                    }
                    for deployment in list.deployments.into_iter().rev() {
                        if deployment.state().is_terminal() {
                            continue;
                        }
                        if followed.insert(deployment.uid.clone()) {
                            let follower = Follower::new(
                                self.client.clone(),
                                self.store.clone(),
                                self.logger.clone(),
                                self.metrics.clone(),
                                self.options.follow.clone(),
                            );
                            let shutdown = shutdown.clone();
                            followers.spawn(async move {
                                let uid = deployment.uid;
                                if let Err(err) = follower.follow(&uid, shutdown).await {
                                    tracing::warn!(deployment = %uid, %err, "stopped following");
                                }
                            });
                        }
                    }
                }
                Err(err) => {
                    if !list_failing {
                        list_failing = true;
                        self.logger.write(LogEntry::system(
                            Severity::Error,
                            "degraded",
                            format!("Could not list deployments: {err}"),
                        ));
                    }
                }
            }
            // Reap finished followers without waiting for the rest.
            while followers.try_join_next().is_some() {}
            tokio::select! {
                _ = tokio::time::sleep(self.options.poll_every) => {}
                _ = stopped(&mut shutdown) => break,
            }
        }
        while followers.join_next().await.is_some() {}
    }
}
