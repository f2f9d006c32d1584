//! `shiplog watch`: every deployment of the team, headless, to stdout. Without a token, the demo.

use shiplog::log::sinks::Printer;

use super::team::run_headless;
use crate::cli::Cli;

pub async fn run(cli: &Cli) -> super::error::Exit {
    // Only a signal ends it, like a `follow` stopped before its build ended.
    run_headless(cli, shiplog::exit::INTERRUPTED, false, |settings| {
        // Build logs only: runtime logs are `serve`'s and `shiplog logs`'s.
        settings.runtime_logs = false;
        // Possibly the demo, which shows alerting at work: `start_alerting` knows for sure.
        let alerts = settings.alerts_enabled || settings.is_demo();
        super::stdout_logger(
            Box::new(Printer::stdout(super::text_format(true))),
            None,
            alerts,
            false,
        )
    })
    .await
}
