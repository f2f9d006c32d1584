//! Discovery: polls the team's deployments and follows every build while it runs, one
//! follower task per deployment.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::follower::Follower;
use super::options::{FollowOptions, HealthHook, StreamHealth};
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

    /// Starts the engine as a task that runs until `shutdown`.
    pub fn start(self, shutdown: Shutdown) -> StreamHandle {
        StreamHandle {
            snapshot: self.snapshot.subscribe(),
            task: tokio::spawn(self.run(shutdown)),
        }
    }

    /// Runs until `shutdown`; followers stop with it and save where they were.
    async fn run(self, mut shutdown: Shutdown) {
        let mut round = Round {
            followed: HashSet::new(),
            followers: JoinSet::new(),
            list_failing: false,
            follow_options: self.follow_options(),
        };
        let query = ListQuery {
            limit: Some(50),
            project_id: self.options.project.clone(),
            ..ListQuery::default()
        };
        loop {
            match self.client.list_deployments(&query).await {
                Ok(list) => self.listed(list.deployments, &mut round, &shutdown),
                Err(err) => self.list_failed(&err.to_string(), &mut round),
            }
            // Reap finished followers without waiting for the rest.
            while round.followers.try_join_next().is_some() {}
            tokio::select! {
                _ = tokio::time::sleep(self.options.poll_every) => {}
                _ = stopped(&mut shutdown) => break,
            }
        }
        while round.followers.join_next().await.is_some() {}
    }

    /// The followers' options, reporting each stream's health into the snapshot.
    fn follow_options(&self) -> FollowOptions {
        let snapshot = self.snapshot.clone();
        let health: HealthHook = Arc::new(move |id: &str, health| {
            snapshot.send_if_modified(|s| {
                let old = s.health.insert(id.to_owned(), health);
                old != Some(health)
            });
        });
        let mut options = self.options.follow.clone();
        options.on_health = Some(health);
        options
    }

    /// A fresh list: published when it changed, and every running build in it followed.
    fn listed(&self, deployments: Vec<DeploymentSummary>, round: &mut Round, shutdown: &Shutdown) {
        if round.list_failing {
            round.list_failing = false;
            self.logger.write(LogEntry::system(
                Severity::Info,
                "recovered",
                "Listing deployments works again",
            ));
        }
        // Only a real change wakes the dashboard.
        self.snapshot.send_if_modified(|s| {
            let changed = !s.loaded || s.list_error.is_some() || s.deployments != deployments;
            if changed {
                s.deployments = deployments.clone();
                s.list_error = None;
                s.loaded = true;
            }
            changed
        });
        for deployment in deployments.into_iter().rev() {
            if !deployment.state().is_terminal() && round.followed.insert(deployment.uid.clone()) {
                self.start_following(deployment.uid, round, shutdown.clone());
            }
        }
    }

    fn start_following(&self, uid: String, round: &mut Round, shutdown: Shutdown) {
        let follower = Follower::new(
            self.client.clone(),
            self.store.clone(),
            self.logger.clone(),
            self.metrics.clone(),
            round.follow_options.clone(),
        );
        round.followers.spawn(async move {
            // Lets the tests prove that a panic in an engine restores the terminal (debug
            // builds only).
            #[cfg(debug_assertions)]
            if std::env::var_os("SHIPLOG_DEBUG_PANIC_IN_ENGINE").is_some() {
                panic!("a deliberate panic in the streaming engine");
            }
            if let Err(err) = follower.follow(&uid, shutdown).await {
                tracing::warn!(deployment = %uid, %err, "stopped following");
            }
        });
    }

    /// The list failed: shown on the dashboard, and written once until it works again.
    fn list_failed(&self, message: &str, round: &mut Round) {
        self.snapshot.send_if_modified(|s| {
            let changed = s.list_error.as_deref() != Some(message);
            s.list_error = Some(message.to_owned());
            changed
        });
        if !round.list_failing {
            round.list_failing = true;
            self.logger.write(LogEntry::system(
                Severity::Error,
                "degraded",
                format!("Could not list deployments: {message}"),
            ));
        }
    }
}

/// The running engine, as the rest of the program sees it.
pub struct StreamHandle {
    /// The latest snapshot, updated as deployments and streams change.
    pub snapshot: watch::Receiver<EngineSnapshot>,
    /// Ends after `shutdown`, once every follower has saved where it was.
    pub task: JoinHandle<()>,
}

/// What the engine keeps from one listing to the next.
struct Round {
    /// Every deployment followed in this run, finished ones included, so that a list taken
    /// just before a build ended does not start it again.
    followed: HashSet<String>,
    followers: JoinSet<()>,
    list_failing: bool,
    follow_options: FollowOptions,
}
