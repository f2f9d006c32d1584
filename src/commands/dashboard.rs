//! `shiplog`: the dashboard. The engines run as tasks; the UI reads their snapshots and entries.

use std::io::IsTerminal;

use shiplog::exit;
use shiplog::log::{Delivery, Logger};
use shiplog::tui::app::{App, Source};
use shiplog::tui::theme::Theme;
use shiplog::tui::{self, Feeds};

use super::report;
use super::team::Team;
use crate::cli::Cli;

/// Entries buffered between the engines and the UI; past this the UI shows lag, never blocks them.
const UI_BUFFER: usize = 65_536;

pub async fn run(cli: &Cli) -> i32 {
    if !std::io::stdout().is_terminal() {
        return super::watch::run(cli).await;
    }
    let mut settings = match super::settings(cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
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
    let team = match Team::open(&mut settings, &logger, false).await {
        Ok(team) => team,
        Err(code) => return code,
    };
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
    let (alerting, desk) = match super::start_alerting(
        &settings,
        &team.store,
        &logger,
        &team.metrics,
        alert_outlet,
        engine_shutdown.clone(),
    ) {
        Some((task, desk)) => (Some(task), Some(desk)),
        None => (None, None),
    };
    let breakglass = super::breakglass::for_screen(&settings, &logger, team.simulator.is_some())
        .await
        .map(|service| {
            let requester = shiplog::breakglass::Requester {
                user: settings.user.clone(),
                role: settings.role,
            };
            shiplog::breakglass::desk::start(service, requester, engine_shutdown.clone())
        });
    let (breakglass_view, breakglass_results, breakglass_requests) = match breakglass {
        Some(desk) => (Some(desk.view), Some(desk.results), Some(desk.requests)),
        None => (None, None, None),
    };
    if let Some(requests) = breakglass_requests {
        app.breakglass.connect(requests);
    }
    let feeds = Feeds {
        breakglass: breakglass_view,
        breakglass_results,
        snapshots: team.engine.subscribe(),
        entries,
        alerts: desk.as_ref().map(|d| d.alerts.clone()),
        queue: desk.as_ref().map(|d| d.queue.clone()),
    };
    if let Some(desk) = desk {
        app.alerts.connect(desk.commands);
    }
    super::report_metrics(&settings, &team.metrics, engine_shutdown.clone());
    let engine = tokio::spawn(team.engine.run(engine_shutdown));
    let result = tui::run(app, theme, feeds, shutdown, settings.mouse).await;
    // Followers save where they were before the process ends.
    let _ = stop_engine.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), engine).await;
    if let Some(alerting) = alerting {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), alerting).await;
    }
    if let Some(handle) = &team.simulator {
        handle.shutdown();
    }
    match result {
        Ok(()) => exit::OK,
        Err(err) => {
            report(format!("the terminal failed: {err}"), None);
            exit::FOLLOW_FAILED
        }
    }
}
