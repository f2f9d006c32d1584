//! `shiplog watch`: every deployment of the team, headless, to stdout. Without a token, the demo.

use shiplog::exit;

use super::report_drops;
use super::team::Team;
use crate::cli::Cli;

pub async fn run(cli: &Cli) -> i32 {
    let mut settings = match super::settings(cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    super::init_diagnostics(&settings);
    let shutdown = super::shutdown_on_signals();
    // The demo shows alerting at work.
    let alerts = settings.alerts_enabled || settings.token.is_none();
    let (logger, alert_outlet) = match super::stdout_logger(super::text_format(true), None, alerts)
    {
        Ok(l) => l,
        Err(code) => return code,
    };
    let team = match Team::open(&mut settings, &logger, true).await {
        Ok(team) => team,
        Err(code) => return code,
    };
    let alerting = super::start_alerting(
        &settings,
        &team.store,
        &logger,
        alert_outlet,
        shutdown.clone(),
    );
    let engine = team.engine;
    engine.run(shutdown).await;
    if let Some((alerting, _desk)) = alerting {
        let _ = alerting.await;
    }
    logger.flush().await;
    report_drops(&logger);
    if let Some(handle) = &team.simulator {
        handle.shutdown();
    }
    exit::OK
}
