//! The commands, and what they share: settings, diagnostics, the state store, signals.

/// `println!` for command output that does not panic when the reader has gone (`| head`): the
/// rest of the output is then of no use to anyone, and the command carries on or ends as usual.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod alert_actions;
pub mod alerts;
pub mod breakglass;
pub mod dashboard;
pub mod demo;
pub mod deployments;
pub mod error;
pub mod follow;
pub mod hooks;
pub mod listen;
pub mod login;
pub mod logs;
pub mod serve;
pub mod silences;
pub mod team;
pub mod vault;
pub mod watch;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use shiplog::alert::queue::{DeliveryQueue, QueueHealthChange, QueueHealthHook, QueueSettings};
use shiplog::config::{FileConfig, Settings};
use shiplog::exit;
use shiplog::log::sinks::{NdjsonFile, PrintFormat, Printer, Sink};
use shiplog::log::{Delivery, EntryReceiver, LogEntry, Logger, LoggerBuilder, Severity, Tier};
use shiplog::secret::Secret;
use shiplog::shutdown::Shutdown;
use shiplog::store::{DegradedHook, StateStore, StoreError};
use shiplog::vercel::{ClientConfig, VercelClient};

use crate::cli::Cli;
use error::CommandError;

/// Prints one clear sentence and a hint, the way every error reaches a person.
pub fn report(message: impl std::fmt::Display, hint: Option<&str>) {
    // Messages can quote what a server or a file said: no escape reaches the terminal.
    eprintln!(
        "shiplog: {}",
        shiplog::printable::one_line(&message.to_string())
    );
    if let Some(hint) = hint {
        eprintln!("  hint: {hint}");
    }
}

/// Settings from flags, environment and config file.
pub fn settings(cli: &Cli) -> Result<Settings, CommandError> {
    let file = FileConfig::load(cli.global.config.as_deref()).map_err(|err| {
        CommandError::config(err)
            .hint("fix or remove the file; `shiplog --help` lists the settings")
    })?;
    let mut overrides = cli.global.overrides();
    if let Some(crate::cli::Command::Serve { listen, .. }) = &cli.command {
        overrides.listen.clone_from(listen);
    }
    Settings::resolve(overrides, file).map_err(CommandError::config)
}

/// Diagnostics go to `shiplog.log` in the state directory, never to the terminal.
pub fn init_diagnostics(settings: &Settings) {
    if shiplog::fsutil::private_dir(&settings.state_dir).is_err() {
        return;
    }
    let path = settings.state_dir.join("shiplog.log");
    let Ok(file) = shiplog::fsutil::private_file()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SHIPLOG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init();
}

/// Text colours only on a terminal, and never with `NO_COLOR`.
pub fn text_format(show_project: bool) -> PrintFormat {
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    PrintFormat::Text {
        color,
        show_project,
    }
}

/// Entries waiting for the alerting engine; when it falls behind, more are dropped and counted.
const ALERT_BUFFER: usize = 4096;

/// Every entry is offered to the alerting engine through this outlet, when alerts are on.
pub type AlertOutlet = Option<EntryReceiver>;

/// Adds the alerting outlet to a logger when alerts are on.
pub fn with_alerts(builder: LoggerBuilder, enabled: bool) -> (LoggerBuilder, AlertOutlet) {
    if !enabled {
        return (builder, None);
    }
    let (builder, entries) = builder.channel("alerts", ALERT_BUFFER, Delivery::DropWhenFull);
    (builder, Some(entries))
}

/// Starts the alerting engine over the outlet; stop it with `stop` and await the handle to
/// have every alert of the entries written so far announced. The handle is the dashboard's end.
pub fn start_alerting(
    settings: &Settings,
    store: &StateStore,
    logger: &Logger,
    metrics: &Arc<shiplog::metrics::Metrics>,
    outlet: AlertOutlet,
    stop: Shutdown,
) -> Option<(
    tokio::task::JoinHandle<()>,
    shiplog::alert::runner::AlertingHandle,
)> {
    // An outlet made for what might have been the demo, when it was not (a stored login).
    let entries = outlet.filter(|_| settings.alerts_enabled)?;
    let engine = shiplog::alert::RuleEvaluator::new(
        settings.alert_rules.clone(),
        shiplog::alert::Suppressor::shared(store.clone()),
        metrics.clone(),
    );
    let (runner, handle) = shiplog::alert::runner::desk();
    let redis = settings.redis_url.clone();
    let namespace = settings.namespace.clone();
    let mut channels =
        shiplog::alert::channels::ChannelSettings::from_env_and(&settings.alert_channels);
    // Without a token the API is the demo simulator: deliver to the demo channel.
    channels.demo = settings.is_demo();
    let deliverer =
        Arc::new(shiplog::alert::delivery::Deliverer::new(channels).sharing_pauses(store.clone()));
    let logger = logger.clone();
    let metrics = metrics.clone();
    let store = store.clone();
    let user = settings.user.clone();
    let routing = settings.alert_routing.clone();
    let env = settings.env.as_str();
    // Beside the state store's directory, not in it: the store takes every `.json` file there
    // for one of its own.
    let queue_dir = settings.state_dir.join("queue");
    let task = tokio::spawn(async move {
        let queue = Arc::new(
            DeliveryQueue::open(
                redis.as_ref().map(Secret::expose),
                &namespace,
                env,
                &queue_dir,
                QueueSettings::default(),
                queue_health_entries(logger.clone()),
            )
            .await,
        );
        // With Redis, acknowledgements reach every instance.
        let sync = match redis {
            Some(url) => shiplog::alert::sync::AlertSync::connect(url.expose(), &namespace)
                .await
                .map_err(|err| tracing::warn!(%err, "alert actions are not shared"))
                .ok(),
            None => None,
        };
        let outward = shiplog::alert::runner::Outward {
            deliverer,
            queue,
            metrics,
            store: Some(store),
            user,
            sync,
            routing,
        };
        runner.run(engine, entries, logger, stop, outward).await
    });
    Some((task, handle))
}

/// Writes the alert queue's losses of Redis (`alert_queue_failed`, which the built-in rule of
/// that name alerts on) and its recoveries into the log.
fn queue_health_entries(logger: Logger) -> QueueHealthHook {
    Arc::new(move |change| {
        let entry = match change {
            QueueHealthChange::Lost { reason } => LogEntry::new(
                Tier::System,
                Severity::Error,
                "alert_queue_failed",
                format!("The alert queue on Redis is unreachable ({reason}); notifications queue in this process until it returns"),
            ),
            QueueHealthChange::Recovered => LogEntry::new(
                Tier::System,
                Severity::Info,
                "alert_queue_recovered",
                "The alert queue is back on Redis",
            ),
        };
        logger.write(entry);
    })
}

/// Reports the metrics to `$STATE/metrics.prom` every `LOG_METRICS_INTERVAL_MS`, starting
/// 0-30 s in, until `shutdown`.
pub fn report_metrics(
    settings: &Settings,
    metrics: &Arc<shiplog::metrics::Metrics>,
    shutdown: Shutdown,
) {
    tokio::spawn(shiplog::metrics::report_periodically(
        metrics.clone(),
        settings.state_dir.join("metrics.prom"),
        settings.metrics_interval,
        std::time::Duration::from_secs(30),
        shutdown,
    ));
}

/// The state store, the token (given, or from a stored login) and a Vercel client with it:
/// what a command that reads the API needs first.
pub async fn vercel_access(
    settings: &mut Settings,
    logger: &Logger,
) -> Result<(StateStore, Secret, VercelClient), CommandError> {
    let store = open_state(settings, logger).await?;
    if settings.token.is_none() {
        settings.token = login::stored_token(settings, &store).await?;
    }
    let token = settings.token.clone().ok_or_else(|| {
        CommandError::config("no Vercel token").hint(
            "set VERCEL_TOKEN, pass --token, or `shiplog login` (create a token at vercel.com/account/tokens)",
        )
    })?;
    let client = client_for(settings, token.clone(), &store)?;
    Ok((store, token, client))
}

/// The alert rules over a one-stream command's entries (`follow`, `logs`), until it ends.
pub struct CommandAlerting {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub metrics: Arc<shiplog::metrics::Metrics>,
}

impl CommandAlerting {
    pub fn start(
        settings: &Settings,
        store: &StateStore,
        logger: &Logger,
        outlet: AlertOutlet,
    ) -> Self {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let metrics = Arc::new(shiplog::metrics::Metrics::new());
        report_metrics(settings, &metrics, stopping.clone());
        let task = start_alerting(settings, store, logger, &metrics, outlet, stopping)
            .map(|(task, _handle)| task);
        CommandAlerting {
            stop,
            task,
            metrics,
        }
    }

    /// The last entries may still raise an alert: the engine finishes them, then the logger
    /// writes out what it holds and says what it had to drop.
    pub async fn finish(self, logger: &Logger) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task {
            let _ = task.await;
        }
        logger.flush().await;
        report_drops(logger);
    }
}

/// How runtime logs are followed, as the settings say.
pub fn runtime_options(settings: &Settings) -> shiplog::stream::runtime::RuntimeOptions {
    shiplog::stream::runtime::RuntimeOptions {
        regression: settings.regression.clone(),
        ..Default::default()
    }
}

/// The logger of a headless command: stdout (lossless), an optional NDJSON file, and the
/// alerting outlet when alerts are on. With `one_stream` (`follow`), stdout is written by the
/// follower itself: a thread hand-off per batch would cost more than the write.
pub fn stdout_logger(
    stdout: Box<dyn Sink>,
    ndjson: Option<&std::path::Path>,
    alerts: bool,
    one_stream: bool,
) -> Result<(Logger, AlertOutlet), CommandError> {
    let mut builder: LoggerBuilder = if one_stream {
        Logger::builder().inline_sink(STDOUT, stdout)
    } else {
        Logger::builder().sink(STDOUT, stdout, 1024, Delivery::WaitWhenFull)
    };
    if let Some(path) = ndjson {
        let file = NdjsonFile::open(path).map_err(|err| {
            CommandError::config(format!("cannot open {} for writing: {err}", path.display()))
        })?;
        builder = builder.sink("ndjson", Box::new(file), 8192, Delivery::DropWhenFull);
    }
    let (builder, outlet) = with_alerts(builder, alerts);
    Ok((builder.build(), outlet))
}

/// The logger of a command whose stdout is its answer (a token): entries go to stderr, and
/// to the alert rules when alerting is on.
pub fn stderr_logger(alerts: bool) -> (Logger, AlertOutlet) {
    let builder = Logger::builder().sink(
        "stderr",
        Box::new(Printer::new(std::io::stderr(), text_format(false))),
        256,
        Delivery::WaitWhenFull,
    );
    let (builder, outlet) = with_alerts(builder, alerts);
    (builder.build(), outlet)
}

/// Runs the alert rules over what `logger` has written and waits until what they fired is
/// delivered (a short-lived command's alerts must not die with it).
pub async fn alert_on(settings: &Settings, logger: &Logger, outlet: AlertOutlet) {
    if outlet.is_none() {
        logger.flush().await;
        return;
    }
    let Ok(store) = open_store(settings, logger).await else {
        return;
    };
    let metrics = Arc::new(shiplog::metrics::Metrics::new());
    let (stop, stopped) = tokio::sync::watch::channel(true);
    if let Some((alerting, _handle)) =
        start_alerting(settings, &store, logger, &metrics, outlet, stopped)
    {
        let _ = alerting.await;
    }
    drop(stop);
    logger.flush().await;
}

/// The state store and the Vercel client every following command needs.
pub async fn open_session(
    settings: &Settings,
    token: Secret,
    logger: &Logger,
) -> Result<(StateStore, VercelClient), CommandError> {
    let store = open_state(settings, logger).await?;
    let client = client_for(settings, token, &store)?;
    Ok((store, client))
}

/// The state store.
pub async fn open_state(settings: &Settings, logger: &Logger) -> Result<StateStore, CommandError> {
    open_store(settings, logger).await.map_err(|err| {
        CommandError::config(err).hint("check REDIS_URL, or unset it to keep state in local files")
    })
}

/// The action audit trail: on Redis when `REDIS_URL` is set (shared by every instance), else
/// in files under the state directory.
pub async fn action_trail(
    settings: &Settings,
) -> Result<shiplog::actions::ActionTrail, shiplog::actions::audit::TrailError> {
    use shiplog::actions::ActionTrail;
    match &settings.redis_url {
        Some(url) => ActionTrail::redis(url.expose(), &settings.namespace).await,
        None => ActionTrail::files(&settings.state_dir),
    }
}

/// Turns every action taken anywhere (the trail) into an entry of `logger`, until `shutdown`.
pub async fn follow_actions(settings: &Settings, logger: &Logger, shutdown: Shutdown) {
    match action_trail(settings).await {
        Ok(trail) => {
            tokio::spawn(shiplog::actions::desk::follow_trail(
                trail,
                logger.clone(),
                None,
                shutdown,
            ));
        }
        Err(err) => tracing::warn!(error = %err, "actions taken elsewhere are not shown here"),
    }
}

/// The Vercel client for `token`, sharing `store`.
pub fn client_for(
    settings: &Settings,
    token: Secret,
    store: &StateStore,
) -> Result<VercelClient, CommandError> {
    let mut config = ClientConfig::new(settings.api_url.clone(), token);
    config.team_id = settings.team_id.clone();
    if settings.redis_url.is_some() {
        config.shared_state = Some(store.clone());
    }
    VercelClient::new(config).map_err(|err| CommandError::new(exit::FOLLOW_FAILED, err))
}

/// Embedded files, or Redis when `REDIS_URL` is set (falling back to files while it is away).
pub async fn open_store(settings: &Settings, logger: &Logger) -> Result<StateStore, StoreError> {
    let dir = settings.state_dir.join("state");
    match &settings.redis_url {
        None => StateStore::embedded(&dir, &settings.namespace),
        Some(url) => {
            let logger = logger.clone();
            let hook: DegradedHook = Arc::new(move |reason: &str| {
                logger.write(LogEntry::system(
                    Severity::Error,
                    "store_degraded",
                    format!("{reason}; keeping state in local files until Redis is back"),
                ));
            });
            StateStore::redis(url.expose(), &settings.namespace, dir, hook).await
        }
    }
}

/// Turns true on Ctrl-C or SIGTERM. The handlers are in place when this returns, so a signal
/// that comes right after start-up is not taken with the default action (killed, terminal left
/// raw).
pub fn shutdown_on_signals() -> Shutdown {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signalled = signals();
    tokio::spawn(async move {
        signalled.await;
        let _ = tx.send(true);
    });
    rx
}

#[cfg(unix)]
fn signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn signals() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The name of the logger's sink that prints to stdout.
pub const STDOUT: &str = "stdout";

/// Tells the user on stderr when a sink could not keep up, or was closed.
pub fn report_drops(logger: &Logger) {
    for (sink, dropped) in logger.dropped() {
        if dropped > 0 {
            eprintln!("shiplog: {dropped} entries were not written to {sink}: it could not keep up or was closed");
        }
    }
}
