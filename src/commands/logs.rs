//! `shiplog logs <deployment|project>`: runtime logs to stdout, until stopped.

use std::sync::Arc;

use shiplog::exit;
use shiplog::log::runtime::RowFilter;
use shiplog::log::sinks::{Only, PrintFormat, Printer};
use shiplog::metrics::Metrics;
use shiplog::stream::runtime::{RuntimeError, RuntimeFollower};

use super::error::{CommandError, Exit};
use super::report_drops;
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
    let store = super::open_state(&settings, &logger).await?;
    if settings.token.is_none() {
        settings.token = super::login::stored_token(&mut settings, &store).await?;
    }
    let token = settings.token.clone().ok_or_else(|| {
        CommandError::config("no Vercel token").hint(
            "set VERCEL_TOKEN, pass --token, or `shiplog login` (create a token at vercel.com/account/tokens)",
        )
    })?;
    let client = super::client_for(&settings, token, &store)?;
    let (stop_alerting, alerting_stop) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    let alerting = super::start_alerting(
        &settings,
        &store,
        &logger,
        &metrics,
        alert_outlet,
        alerting_stop,
    );
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
    let _ = stop_alerting.send(true);
    if let Some((alerting, _handle)) = alerting {
        let _ = alerting.await;
    }
    logger.flush().await;
    report_drops(&logger);
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
