//! Discovery: polls the team's deployments and follows every build while it runs, one
//! follower task per deployment.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
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
    /// Where each listed project's production points: project id -> deployment id (when
    /// the engine looks, see [`EngineOptions::production_every`]).
    pub production: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How often to list deployments.
    pub poll_every: Duration,
    /// Only this project (id or name).
    pub project: Option<String>,
    pub follow: FollowOptions,
    /// How often to look where each listed project's production points (the dashboard marks
    /// it); `None`: never (headless commands have no use for it).
    pub production_every: Option<Duration>,
    /// Also follow, once, deployments that ended less than this long before the engine
    /// started, as if they were live: their failures alert. Only the demo sets it (a real
    /// team's dashboard would otherwise alert again on every start).
    pub ended_within: Option<Duration>,
}

/// The most projects whose production is looked up in one round.
const PRODUCTION_PROJECTS: usize = 20;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            poll_every: Duration::from_secs(5),
            project: None,
            follow: FollowOptions::default(),
            production_every: None,
            ended_within: None,
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
        let (commands, commands_rx) = mpsc::channel(16);
        StreamHandle {
            snapshot: self.snapshot.subscribe(),
            commands,
            task: tokio::spawn(self.run(shutdown, commands_rx)),
        }
    }

    /// Runs until `shutdown`; followers stop with it and save where they were.
    async fn run(self, mut shutdown: Shutdown, mut commands: mpsc::Receiver<StreamCommand>) {
        let mut round = Round {
            followed: HashSet::new(),
            followers: JoinSet::new(),
            list_failing: false,
            follow_options: self.follow_options(),
            recent_since: self.options.ended_within.map(|within| {
                crate::clock::now_ms() - i64::try_from(within.as_millis()).unwrap_or(i64::MAX)
            }),
            pushed: None,
        };
        let query = ListQuery {
            limit: Some(50),
            project_id: self.options.project.clone(),
            ..ListQuery::default()
        };
        let mut production_seen: Option<tokio::time::Instant> = None;
        'running: loop {
            match self.client.list_deployments(&query).await {
                Ok(list) => {
                    let due = self.options.production_every.is_some_and(|every| {
                        production_seen.is_none_or(|seen| seen.elapsed() >= every)
                    });
                    // The list (and its followers) first: production's look-ups take a call
                    // per project, and the first list should not wait for them.
                    let looked = due.then(|| list.deployments.clone());
                    self.listed(list.deployments, &mut round, &shutdown);
                    if let Some(deployments) = looked {
                        production_seen = Some(tokio::time::Instant::now());
                        self.look_at_production(&deployments).await;
                    }
                }
                Err(err) => self.list_failed(&err.to_string(), &mut round),
            }
            // Reap finished followers without waiting for the rest.
            while round.followers.try_join_next().is_some() {}
            let next_list = tokio::time::sleep(self.poll_every(&round));
            tokio::pin!(next_list);
            loop {
                tokio::select! {
                    _ = &mut next_list => break,
                    Some(command) = commands.recv() => self.obey(command, &mut round, &shutdown),
                    _ = stopped(&mut shutdown) => break 'running,
                }
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
            let wanted = !deployment.state().is_terminal() || round.recent(&deployment);
            if wanted && round.followed.insert(deployment.uid.clone()) {
                let options = round.follow_options.clone();
                self.start_following(deployment.uid, options, round, shutdown.clone());
            }
        }
    }

    fn obey(&self, command: StreamCommand, round: &mut Round, shutdown: &Shutdown) {
        match command {
            StreamCommand::Load(uid) => self.load(uid, round, shutdown),
            StreamCommand::Follow {
                deployment: uid,
                project,
            } => {
                let watched = self.options.project.as_ref().is_none_or(|watched| {
                    project.iter().all(Option::is_none)
                        || project.iter().flatten().any(|p| p == watched)
                });
                if !watched {
                    return;
                }
                round.pushed = Some(tokio::time::Instant::now());
                if round.followed.insert(uid.clone()) {
                    let options = round.follow_options.clone();
                    self.start_following(uid, options, round, shutdown.clone());
                }
            }
            StreamCommand::Production {
                project,
                deployment,
            } => {
                self.snapshot.send_if_modified(|s| {
                    s.production.insert(project, deployment.clone()) != Some(deployment)
                });
            }
        }
    }

    /// The wait before the next list: longer while webhooks announce deployments.
    fn poll_every(&self, round: &Round) -> Duration {
        match round.pushed {
            Some(at) if at.elapsed() < PUSHES_FLOWING => {
                self.options.poll_every.max(PUSHED_POLL_EVERY)
            }
            _ => self.options.poll_every,
        }
    }

    /// A finished deployment's whole log, read once, its entries marked replayed.
    fn load(&self, uid: String, round: &mut Round, shutdown: &Shutdown) {
        if round.followed.insert(uid.clone()) {
            let replay = FollowOptions {
                replay: true,
                since: Some(0),
                ..round.follow_options.clone()
            };
            self.start_following(uid, replay, round, shutdown.clone());
        }
    }

    /// Where the listed projects' production points; a project that cannot be read keeps
    /// what was known.
    async fn look_at_production(&self, deployments: &[DeploymentSummary]) {
        let mut projects: Vec<&str> = Vec::new();
        for id in deployments.iter().filter_map(|d| d.project_id.as_deref()) {
            if !projects.contains(&id) && projects.len() < PRODUCTION_PROJECTS {
                projects.push(id);
            }
        }
        let mut production = self.snapshot.borrow().production.clone();
        for id in projects {
            if let Ok(project) = self.client.get_project(id).await {
                match project.production_id() {
                    Some(serving) => production.insert(id.to_owned(), serving.to_owned()),
                    None => production.remove(id),
                };
            }
        }
        self.snapshot.send_if_modified(|s| {
            let changed = s.production != production;
            s.production = production;
            changed
        });
    }

    fn start_following(
        &self,
        uid: String,
        options: FollowOptions,
        round: &mut Round,
        shutdown: Shutdown,
    ) {
        let follower = Follower::new(
            self.client.clone(),
            self.store.clone(),
            self.logger.clone(),
            self.metrics.clone(),
            options,
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

/// What the dashboard asks of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamCommand {
    /// Read a finished deployment's whole log, to show it (once per run).
    Load(String),
    /// A deployment a webhook announced: follow its build now, not at the next list (unless
    /// the engine watches another project). While these arrive, the list is taken less often
    /// ([`PUSHED_POLL_EVERY`]).
    Follow {
        deployment: String,
        /// Its project's id and name, as far as the webhook said.
        project: [Option<String>; 2],
    },
    /// A webhook said where a project's production points now.
    Production { project: String, deployment: String },
}

/// How often deployments are listed while webhooks announce them: the list is then only the
/// safety net for a delivery that never came.
pub const PUSHED_POLL_EVERY: Duration = Duration::from_secs(30);

/// Webhooks count as flowing for this long after the last `deployment.created`.
const PUSHES_FLOWING: Duration = Duration::from_secs(15 * 60);

/// The running engine, as the rest of the program sees it.
pub struct StreamHandle {
    /// The latest snapshot, updated as deployments and streams change.
    pub snapshot: watch::Receiver<EngineSnapshot>,
    pub commands: mpsc::Sender<StreamCommand>,
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
    /// Deployments created after this (ms) are followed even when finished (the demo's).
    recent_since: Option<i64>,
    /// When the last webhook announced a deployment.
    pushed: Option<tokio::time::Instant>,
}

impl Round {
    fn recent(&self, deployment: &DeploymentSummary) -> bool {
        self.recent_since
            .is_some_and(|since| deployment.created.is_some_and(|created| created >= since))
    }
}
