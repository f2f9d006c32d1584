//! `shiplog serve`: the streaming and alerting engines without a UI, for an operator to run
//! next to the dashboards. Alerting is always on here.

use shiplog::log::sinks::{Only, PrintFormat, Printer};
use shiplog::log::{runtime, Delivery, LogEntry, Logger, Tier};

use super::team::run_headless;
use crate::cli::Cli;

/// A worker's output: everything but the build lines and runtime rows themselves (their
/// alerts, gaps and outcomes are shown).
fn worth_printing(entry: &LogEntry) -> bool {
    entry.tier != Tier::Build && !runtime::is_row(entry)
}

pub async fn run(cli: &Cli, json: bool) -> super::error::Exit {
    // A service manager stops a worker with SIGTERM: a clean stop is a success (0), not the
    // 130 of an interrupted command, so systemd and Kubernetes do not count it as a failure.
    run_headless(cli, shiplog::exit::OK, true, |settings| {
        // Said once the settings hold and the listener (if any) is bound.
        eprintln!("shiplog: serving: following building deployments and running the alert rules (Ctrl-C stops)");
        settings.alerts_enabled = true;
        let format = if json {
            PrintFormat::Json
        } else {
            super::text_format(true)
        };
        let printer = Only::new(Printer::stdout(format), worth_printing);
        let builder = Logger::builder().sink(
            super::STDOUT,
            Box::new(printer),
            1024,
            Delivery::DropWhenFull,
        );
        let (builder, outlet) = super::with_alerts(builder, settings.alerts_enabled);
        Ok((builder.build(), outlet))
    })
    .await
}
