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
    let logger = match super::stdout_logger(super::text_format(true), None) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let team = match Team::open(&mut settings, &logger, true).await {
        Ok(team) => team,
        Err(code) => return code,
    };
    let engine = team.engine;
    engine.run(shutdown).await;
    logger.flush().await;
    report_drops(&logger);
    if let Some(handle) = &team.simulator {
        handle.shutdown();
    }
    exit::OK
}
