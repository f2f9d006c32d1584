//! `shiplog serve`: the streaming and alerting engines without a UI, for an operator to run
//! next to the dashboards. Alerting is always on here.

use shiplog::exit;
use shiplog::log::sinks::{Only, PrintFormat, Printer};
use shiplog::log::{Delivery, LogEntry, Logger, Tier};

use super::report_drops;
use super::team::Team;
use crate::cli::Cli;

/// A worker's output: everything but the build lines themselves.
fn worth_printing(entry: &LogEntry) -> bool {
    entry.tier != Tier::Build
}

pub async fn run(cli: &Cli, json: bool) -> i32 {
    let mut settings = match super::settings(cli) {
        Ok(s) => s,
        Err(code) => return code,
    };
    super::init_diagnostics(&settings);
    let shutdown = super::shutdown_on_signals();
    let format = if json {
        PrintFormat::Json
    } else {
        super::text_format(true)
    };
    let printer = Only::new(Printer::stdout(format), worth_printing);
    let builder = Logger::builder().sink("stdout", Box::new(printer), 1024, Delivery::DropWhenFull);
    let (builder, alert_outlet) = super::with_alerts(builder, true);
    let logger = builder.build();
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
    eprintln!("shiplog: serving: following building deployments and running the alert rules (Ctrl-C stops)");
    team.engine.run(shutdown).await;
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
