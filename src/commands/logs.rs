//! `shiplog logs <deployment|project>`: runtime logs to stdout, until stopped.

use shiplog::exit;
use shiplog::log::runtime::RowFilter;
use shiplog::log::sinks::{Only, PrintFormat, Printer};
use shiplog::stream::runtime::{RuntimeError, RuntimeFollower};

use super::error::{CommandError, Exit};
use crate::cli::{Cli, LogsArgs};

pub async fn run(cli: &Cli, args: LogsArgs) -> Exit {
    let filter = row_filter(&args)?;
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let format = if args.json {
        PrintFormat::Json
    } else {
        super::text_format(false)
    };
    let printer = Only::new(Printer::stdout(format), move |entry| filter.matches(entry));
    let (logger, alert_outlet) = super::stdout_logger(
        Box::new(printer),
        args.ndjson.as_deref(),
        settings.alerts_enabled,
        true,
    )?;
    let (store, _token, client) = super::vercel_access(&mut settings, &logger).await?;
    let alerting = super::CommandAlerting::start(&settings, &store, &logger, alert_outlet);
    let follower = RuntimeFollower::new(
        client,
        store,
        logger.clone(),
        super::runtime_options(&settings),
    );
    let shutdown =
        super::follow::stop_when_output_closes(super::shutdown_on_signals(), logger.clone());
    let mut asked_to_stop = shutdown.clone();
    let resolved = tokio::select! {
        resolved = follower.resolve(&args.target) => resolved,
        _ = shiplog::shutdown::stopped(&mut asked_to_stop) => Err(RuntimeError::Interrupted),
    };
    let result = match resolved {
        Ok(target) => follower.follow(&target, shutdown).await,
        Err(err) => Err(err),
    };
    alerting.finish(&logger).await;
    match result {
        // Following runtime logs ends when someone stops it: that is success.
        Ok(()) | Err(RuntimeError::Interrupted) => Ok(exit::OK),
        Err(RuntimeError::Vercel(err)) => {
            let hint = match err.status() {
                Some(404) => Some("check the deployment id or URL, or the project's name, and the team it belongs to (--team)"),
                _ => err.hint(),
            };
            Err(CommandError::new(exit::FOLLOW_FAILED, err).hint_if(hint))
        }
        Err(err @ RuntimeError::NoProduction(_)) => {
            Err(CommandError::new(exit::FOLLOW_FAILED, err)
                .hint("promote a deployment to production, or name a deployment instead"))
        }
        Err(err) => Err(CommandError::new(exit::FOLLOW_FAILED, err)),
    }
}

/// The output filter the flags describe; a bad flag is a usage error that says what to write.
fn row_filter(args: &LogsArgs) -> Result<RowFilter, CommandError> {
    RowFilter::of(
        args.level.as_deref(),
        &args.status,
        args.path.as_deref(),
        &args.source,
    )
    .map_err(|message| CommandError::new(exit::USAGE, message))
}
