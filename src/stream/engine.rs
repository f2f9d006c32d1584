//! Discovery: polls the team's deployments and follows every build while it runs, one
//! follower task per deployment.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::follower::{FollowOptions, Follower, StreamHealth};
use crate::log::{LogEntry, Logger, Severity};
use crate::metrics::Metrics;
use crate::shutdown::{stopped, Shutdown};
use crate::store::StateStore;
use crate::vercel::client::ListQuery;
use crate::vercel::{DeploymentSummary, VercelClient};

/// What the engine knows, for the dashboard: the latest list and how each stream is doing.
#[derive(Debug, Clone, Default)]
pub struct EngineSnapshot {
    /// The team's recent deployments, newest first.
    pub deployments: Vec<DeploymentSummary>,
    /// Per Vercel deployment id, for those followed in this run.
    pub health: HashMap<String, StreamHealth>,
    /// Why the last list failed, while it keeps failing.
    pub list_error: Option<String>,
    /// At least one list has been received.
    pub loaded: bool,
}

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
    snapshot: Arc<watch::Sender<EngineSnapshot>>,
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
            snapshot: Arc::new(watch::Sender::new(EngineSnapshot::default())),
        }
    }

    /// The latest snapshot, updated as deployments and streams change.
    pub fn subscribe(&self) -> watch::Receiver<EngineSnapshot> {
        self.snapshot.subscribe()
    }

    /// Runs until `shutdown`; followers stop with it and save where they were.
    pub async fn run(self, mut shutdown: Shutdown) {
        // Every deployment followed in this run, finished ones included, so that a list taken
        // just before a build ended does not start it again.
        let mut followed: HashSet<String> = HashSet::new();
        let mut followers = JoinSet::new();
        let mut list_failing = false;
        let query = ListQuery {
            limit: Some(50),
            project_id: self.options.project.clone(),
            state: None,
            since: None,
        };
        let snapshot = self.snapshot.clone();
        let health: super::follower::HealthHook = Arc::new(move |id: &str, health| {
            snapshot.send_if_modified(|s| {
                let old = s.health.insert(id.to_owned(), health);
                old != Some(health)
            });
        });
        let mut follow_options = self.options.follow.clone();
        follow_options.on_health = Some(health);
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
                    // Only a real change wakes the dashboard.
                    self.snapshot.send_if_modified(|s| {
                        let changed = !s.loaded
                            || s.list_error.is_some()
                            || s.deployments != list.deployments;
                        if changed {
                            s.deployments = list.deployments.clone();
                            s.list_error = None;
                            s.loaded = true;
                        }
                        changed
                    });
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
                                follow_options.clone(),
                            );
                            let shutdown = shutdown.clone();
                            followers.spawn(async move {
                                // Lets the tests prove that a panic in an engine restores the
                                // terminal (debug builds only).
                                #[cfg(debug_assertions)]
                                if std::env::var_os("SHIPLOG_DEBUG_PANIC_IN_ENGINE").is_some() {
                                    panic!("a deliberate panic in the streaming engine");
                                }
                                let uid = deployment.uid;
                                if let Err(err) = follower.follow(&uid, shutdown).await {
                                    tracing::warn!(deployment = %uid, %err, "stopped following");
                                }
                            });
                        }
                    }
                }
                Err(err) => {
                    let message = err.to_string();
                    self.snapshot.send_if_modified(|s| {
                        let changed = s.list_error.as_ref() != Some(&message);
                        s.list_error = Some(message);
                        changed
                    });
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
