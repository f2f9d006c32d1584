//! `shiplog`: the dashboard. The engines run as tasks; the UI reads their snapshots and entries.

use std::io::IsTerminal;

use shiplog::exit;
use shiplog::log::{Delivery, Logger};
use shiplog::stream::runtime::{follow_productions, RuntimeFollower};
use shiplog::tui::app::{App, Source};
use shiplog::tui::theme::Theme;
use shiplog::tui::{self, Feeds};

use shiplog::actions::desk::ActionsHandle;
use shiplog::actions::{Actions, Actor};
use shiplog::alert::book::{AlertRecord, AlertState};
use shiplog::alert::runner::{AlertCommand, AlertingHandle};
use shiplog::breakglass::desk::BreakglassHandle;
use shiplog::config::Settings;
use shiplog::shutdown::Shutdown;
use shiplog::stream::engine::StreamHandle;

use super::error::{CommandError, Exit};
use super::team::{Face, TeamSession};
use crate::cli::Cli;

/// Entries buffered between the engines and the UI; past this the UI shows lag, never blocks them.
const UI_BUFFER: usize = 65_536;

pub async fn run(cli: &Cli) -> Exit {
    if !std::io::stdout().is_terminal() {
        return super::watch::run(cli).await;
    }
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let user_themes = shiplog::config::config_dir().map(|d| d.join("themes"));
    let (theme, theme_warnings) =
        Theme::load(settings.theme.as_deref(), user_themes.as_deref(), no_color);
    shiplog::tui::terminal::install_panic_hook(settings.state_dir.join("shiplog.log"));
    let (builder, entries) = Logger::builder().channel("ui", UI_BUFFER, Delivery::DropWhenFull);
    // Possibly the demo, which shows alerting at work: `start_alerting` knows for sure.
    let alerts = settings.alerts_enabled || settings.is_demo();
    let (builder, alert_outlet) = super::with_alerts(builder, alerts);
    let logger = builder.build();
    let team = TeamSession::open(&mut settings, &logger, Face::Dashboard).await?;
    let source = match team.simulator {
        Some(_) => Source::Demo,
        None => Source::Team(settings.team_id.clone()),
    };
    let mut app = App::new(
        source,
        team.store.backend().to_string(),
        settings.buffer_lines,
    );
    for warning in theme_warnings {
        app.warn(warning.to_string());
    }
    let shutdown = super::shutdown_on_signals();
    let (stop_engine, engine_shutdown) = tokio::sync::watch::channel(false);
    let alerting = team.start_alerting(&settings, &logger, alert_outlet, engine_shutdown.clone());
    let breakglass = start_breakglass(&settings, &logger, &team, engine_shutdown.clone()).await;
    let actions = start_actions(&settings, &logger, &team, engine_shutdown.clone()).await;
    let (alerting, alert_handle) = alerting.unzip();
    if let (Some(handle), Some(_)) = (&alert_handle, &team.simulator) {
        tokio::spawn(demo_acknowledges_one(
            handle.alerts.clone(),
            handle.commands.clone(),
        ));
    }
    let runtime_follower = std::sync::Arc::new(RuntimeFollower::new(
        team.client.clone(),
        team.store.clone(),
        logger.clone(),
        super::runtime_options(&settings),
    ));
    // Production's runtime logs, for the runtime rules and the charts (the demo always: its
    // story ends in a regression).
    if settings.runtime_logs || team.simulator.is_some() {
        tokio::spawn(follow_productions(
            runtime_follower.clone(),
            super::team::PRODUCTIONS_LOOKED_FOR,
            engine_shutdown.clone(),
        ));
    }
    let runtime = shiplog::stream::runtime::desk::start(runtime_follower, engine_shutdown.clone());
    app.deployments.runtime.connect(runtime.commands);
    let stream = team.engine.start(engine_shutdown);
    let mut feeds = connect(&mut app, &stream, entries, alert_handle, breakglass);
    if let Some(handle) = actions {
        feeds.actions = Some(handle.snapshot);
        feeds.action_answers = Some(handle.answers);
        app.actions.connect(handle.commands);
    }
    let result = tui::run(app, theme, feeds, shutdown, settings.mouse).await;
    // Followers save where they were before the process ends.
    let _ = stop_engine.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), stream.task).await;
    if let Some(alerting) = alerting {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), alerting).await;
    }
    if let Some(handle) = &team.simulator {
        handle.shutdown();
    }
    result.map_err(|err| {
        CommandError::new(exit::FOLLOW_FAILED, format!("the terminal failed: {err}"))
    })?;
    Ok(exit::OK)
}

/// The breakglass engine of this dashboard, when breakglass can open here.
async fn start_breakglass(
    settings: &Settings,
    logger: &Logger,
    team: &TeamSession,
    shutdown: Shutdown,
) -> Option<BreakglassHandle> {
    let service = super::breakglass::for_screen(settings, logger, team.simulator.is_some()).await?;
    let requester = shiplog::breakglass::Requester {
        user: settings.user.clone(),
        role: settings.role,
    };
    Some(shiplog::breakglass::desk::start(
        service, requester, shutdown,
    ))
}

/// The demo opens with one alert firing and one acknowledged: the older of its first two
/// failures is acknowledged, with a note, as a teammate would have.
async fn demo_acknowledges_one(
    mut alerts: tokio::sync::watch::Receiver<Vec<AlertRecord>>,
    commands: tokio::sync::mpsc::Sender<AlertCommand>,
) {
    let firing = |records: &Vec<AlertRecord>| {
        let mut failures: Vec<&AlertRecord> = records
            .iter()
            .filter(|r| r.rule == "deploy_failed" && r.state == AlertState::Firing)
            .collect();
        failures.sort_by_key(|r| r.entry_ts);
        (failures.len() >= 2).then(|| failures[0].fingerprint.clone())
    };
    let fingerprint = match alerts.wait_for(|records| firing(records).is_some()).await {
        Ok(seen) => firing(&seen),
        Err(_) => None,
    };
    let Some(fingerprint) = fingerprint else {
        return;
    };
    let note = Some("Known: the gift-card branch is being fixed".to_owned());
    let _ = commands
        .send(AlertCommand::Acknowledge { fingerprint, note })
        .await;
}

/// The actions engine of this dashboard, or `None` (said in the diagnostics) when its audit
/// trail cannot open: an action that cannot be audited is not offered. In the demo the visitor
/// is an operator of the simulated team, so every action can be tried.
async fn start_actions(
    settings: &Settings,
    logger: &Logger,
    team: &TeamSession,
    shutdown: Shutdown,
) -> Option<ActionsHandle> {
    let trail = super::action_trail(settings)
        .await
        .map_err(|err| tracing::warn!(error = %err, "actions are not available on this dashboard"))
        .ok()?;
    let actor = Actor {
        user: settings.user.clone(),
        role: match team.simulator {
            Some(_) => shiplog::role::Role::Operator,
            None => settings.role,
        },
    };
    let actions = Actions::new(team.client.clone(), team.store.clone(), trail, actor);
    Some(shiplog::actions::desk::start(
        std::sync::Arc::new(actions),
        logger.clone(),
        shutdown,
    ))
}

/// Connects the screens to the engines: what they read, and where their commands go.
fn connect(
    app: &mut App,
    stream: &StreamHandle,
    entries: shiplog::log::EntryReceiver,
    alerting: Option<AlertingHandle>,
    breakglass: Option<BreakglassHandle>,
) -> Feeds {
    let mut feeds = Feeds::new(stream.snapshot.clone(), entries);
    app.deployments.connect(stream.commands.clone());
    if let Some(handle) = alerting {
        feeds.alerts = Some(handle.alerts);
        feeds.queue = Some(handle.queue);
        feeds.silences = Some(handle.silences);
        app.alerts.connect(handle.commands, handle.silence);
    }
    if let Some(handle) = breakglass {
        feeds.breakglass = Some(handle.snapshot);
        feeds.breakglass_answers = Some(handle.answers);
        app.breakglass.connect(handle.commands);
    }
    feeds
}
