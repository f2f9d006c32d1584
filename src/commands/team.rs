//! What `shiplog` (dashboard) and `shiplog watch` (headless) share: the team to watch, or the
//! demo simulator when there is no token, and the streaming engine over it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use shiplog::alert::runner::AlertingHandle;
use shiplog::config::Settings;
use shiplog::demo::SimulatorHandle;
use shiplog::exit;
use shiplog::log::Logger;
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use shiplog::shutdown::Shutdown;
use shiplog::store::StateStore;
use shiplog::stream::engine::{EngineOptions, StreamEngine};
use shiplog::stream::runtime::{follow_productions, RuntimeFollower};
use shiplog::stream::FollowOptions;

use super::error::{CommandError, Exit};
use super::{report_drops, AlertOutlet};
use crate::cli::Cli;

/// The demo follows its history of this long ago as if it were live, so that it opens with
/// alerts about its recent failures.
const DEMO_RECENT: Duration = Duration::from_secs(75 * 60);

/// Who the session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Dashboard,
    /// `watch` and `serve`: output on stdout, notices on stderr.
    Headless,
}

/// The streaming engine over the team (or the demo), ready to run.
pub struct TeamSession {
    pub engine: StreamEngine,
    /// The client the engine uses, for the actions engine.
    pub client: shiplog::vercel::VercelClient,
    pub store: StateStore,
    /// The demo simulator, when there is no token.
    pub simulator: Option<SimulatorHandle>,
    /// The process's one metrics registry, shared with the alerting engine.
    pub metrics: Arc<Metrics>,
}

impl TeamSession {
    /// The alerting engine over the team's store (when `outlet` is given and alerting is on),
    /// and the metrics reports, until `shutdown`.
    pub fn start_alerting(
        &self,
        settings: &Settings,
        logger: &Logger,
        outlet: AlertOutlet,
        shutdown: Shutdown,
    ) -> Option<(JoinHandle<()>, AlertingHandle)> {
        super::report_metrics(settings, &self.metrics, shutdown.clone());
        super::start_alerting(
            settings,
            &self.store,
            logger,
            &self.metrics,
            outlet,
            shutdown,
        )
    }

    /// Connects to the team, or starts the demo (said on stderr when `face` is headless).
    pub async fn open(
        settings: &mut Settings,
        logger: &Logger,
        face: Face,
    ) -> Result<TeamSession, CommandError> {
        let mut simulator = None;
        // The store the stored login was found in serves the session too.
        let mut store = None;
        if settings.token.is_none() {
            let opened = super::open_state(settings, logger).await?;
            settings.token = super::login::stored_token(settings, &opened).await?;
            store = settings.token.is_some().then_some(opened);
        }
        let token = match settings.token.clone() {
            Some(token) => token,
            None => {
                let handle = super::demo::start_demo(0, 1.0).await.map_err(|err| {
                    CommandError::new(
                        exit::FOLLOW_FAILED,
                        format!("could not start the demo simulator: {err}"),
                    )
                })?;
                if face == Face::Headless {
                    eprintln!(
                        "shiplog: demo mode: no VERCEL_TOKEN set, so a built-in Vercel simulator at {} plays sample deployments.\n  To watch your own team: VERCEL_TOKEN=... VERCEL_TEAM_ID=team_... shiplog",
                        handle.base_url()
                    );
                }
                settings.api_url = handle.base_url();
                settings.team_id = None;
                // The demo's state must not mix with a real team's.
                settings.namespace = format!("{}demo:", settings.namespace);
                // The demo shows alerting at work.
                settings.alerts_enabled = true;
                simulator = Some(handle);
                Secret::new("demo")
            }
        };
        let store = match store {
            Some(store) => store,
            // The demo's state lives under its own namespace.
            None => super::open_state(settings, logger).await?,
        };
        let client = super::client_for(settings, token, &store)?;
        let poll_every = if simulator.is_some() {
            Duration::from_secs(1)
        } else {
            settings.poll_interval
        };
        let options = EngineOptions {
            poll_every,
            // The dashboard marks where production points; headless commands need not know.
            production_every: (face == Face::Dashboard).then_some(poll_every * 6),
            // The demo opens with its last hour's failures alerting.
            ended_within: simulator.is_some().then_some(DEMO_RECENT),
            project: settings.project.clone(),
            follow: FollowOptions {
                idle_timeout: settings.idle_timeout,
                settle: settings.settle,
                ..FollowOptions::default()
            },
        };
        let metrics = Arc::new(Metrics::new());
        let engine = StreamEngine::new(
            client.clone(),
            store.clone(),
            logger.clone(),
            metrics.clone(),
            options,
        );
        Ok(TeamSession {
            engine,
            client,
            store,
            simulator,
            metrics,
        })
    }
}

/// How often a worker or a dashboard following production runtime logs looks for new
/// production projects.
pub(super) const PRODUCTIONS_LOOKED_FOR: Duration = Duration::from_secs(60);

/// A headless command over the team (`watch`, `serve`): the streaming engine, alerting when
/// `logger_for` gave it an outlet, and the HTTP listener when `listens` and the settings name
/// an address, until Ctrl-C or SIGTERM; then exits with `stopped`.
pub async fn run_headless(
    cli: &Cli,
    stopped: i32,
    listens: bool,
    logger_for: impl FnOnce(&mut Settings) -> Result<(Logger, AlertOutlet), CommandError>,
) -> Exit {
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let listener = if listens {
        super::listen::bind(&settings).await?
    } else {
        None
    };
    let shutdown = super::shutdown_on_signals();
    let (logger, alert_outlet) = logger_for(&mut settings)?;
    let team = TeamSession::open(&mut settings, &logger, Face::Headless).await?;
    let alerting = team.start_alerting(&settings, &logger, alert_outlet, shutdown.clone());
    super::follow_actions(&settings, &logger, shutdown.clone()).await;
    let stream = team.engine.start(shutdown.clone());
    if settings.runtime_logs {
        let options = shiplog::stream::runtime::RuntimeOptions {
            // A webhook's production move reaches the followers at once.
            pushed: Some(stream.snapshot.clone()),
            ..super::runtime_options(&settings)
        };
        let follower = RuntimeFollower::new(
            team.client.clone(),
            team.store.clone(),
            logger.clone(),
            options,
        );
        tokio::spawn(follow_productions(
            Arc::new(follower),
            PRODUCTIONS_LOOKED_FOR,
            shutdown.clone(),
        ));
    }
    if team.simulator.is_none() {
        if let Ok(breakglass) = super::breakglass::open(&settings, None).await {
            tokio::spawn(shiplog::breakglass::desk::sweep_every(
                Arc::new(breakglass),
                Duration::from_secs(60),
                shutdown.clone(),
            ));
        }
    }
    let listening = listener.map(|listener| {
        super::listen::start(
            listener,
            &settings,
            &team.store,
            &logger,
            &team.metrics,
            super::listen::Engines {
                stream: &stream,
                alerts: alerting.as_ref().map(|(_, handle)| handle.mirrored.clone()),
            },
            shutdown,
        )
    });
    let _ = stream.task.await;
    if let Some(listening) = listening {
        let _ = listening.await;
    }
    if let Some((alerting, _handle)) = alerting {
        let _ = alerting.await;
    }
    logger.flush().await;
    report_drops(&logger);
    if let Some(handle) = &team.simulator {
        handle.shutdown();
    }
    Ok(stopped)
}
