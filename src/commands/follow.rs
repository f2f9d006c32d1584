//! `shiplog follow <deployment>`: one build's log to stdout, headless.

use std::time::Duration;

use shiplog::clock::now_ms;
use shiplog::exit;
use shiplog::log::sinks::{PrintFormat, Printer};
use shiplog::log::Logger;
use shiplog::shutdown::Shutdown;
use shiplog::stream::fallback::CliFallback;
use shiplog::stream::{FollowError, FollowOptions, Follower};
use shiplog::vercel::ReadyState;

use super::error::{CommandError, Exit};
use crate::cli::{Cli, FollowArgs};

pub async fn run(cli: &Cli, args: FollowArgs) -> Exit {
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let since = args
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(|message| {
            CommandError::new(exit::USAGE, message)
                .hint("use RFC 3339 (2026-11-26T09:00:00Z), epoch ms, or an age like 15m")
        })?;
    let format = if args.json {
        PrintFormat::Json
    } else {
        super::text_format(false)
    };
    let (logger, alert_outlet) = super::stdout_logger(
        Box::new(Printer::stdout(format)),
        args.ndjson.as_deref(),
        settings.alerts_enabled,
        true,
    )?;
    let (store, token, client) = super::vercel_access(&mut settings, &logger).await?;
    let options = FollowOptions {
        idle_timeout: settings.idle_timeout,
        settle: settings.settle,
        since,
        cli_fallback: settings
            .cli_fallback
            .as_deref()
            .and_then(|cmd| CliFallback::new(cmd, Some(token), settings.team_id.clone())),
        ..FollowOptions::default()
    };
    let alerting = super::CommandAlerting::start(&settings, &store, &logger, alert_outlet);
    let follower = Follower::new(
        client,
        store,
        logger.clone(),
        alerting.metrics.clone(),
        options,
    );
    let shutdown = stop_when_output_closes(super::shutdown_on_signals(), logger.clone());
    let result = follower.follow(&args.deployment, shutdown).await;
    // The build's last lines may still raise an alert.
    alerting.finish(&logger).await;
    exit_status(result)
}

/// How often `follow` looks whether its output still reaches anyone.
const OUTPUT_CHECK: Duration = Duration::from_millis(200);

/// `signalled`, or the moment stdout stops taking lines (the reader went away, as with
/// `| head`): following on would only spend the API's and the machine's time. The follower
/// then stops as it does on a signal, and saves no place past what was written.
pub(super) fn stop_when_output_closes(mut signalled: Shutdown, logger: Logger) -> Shutdown {
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut check = tokio::time::interval(OUTPUT_CHECK);
        loop {
            tokio::select! {
                _ = shiplog::shutdown::stopped(&mut signalled) => break,
                _ = check.tick() => {
                    let lost = logger.dropped().iter().any(|(sink, n)| sink == super::STDOUT && *n > 0);
                    if lost {
                        break;
                    }
                }
            }
        }
        let _ = stop.send(true);
    });
    shutdown
}

/// The exit status of a followed build: how it ended, or why it could not be followed.
fn exit_status(result: Result<ReadyState, FollowError>) -> Exit {
    match result {
        Ok(ReadyState::Ready) => Ok(exit::OK),
        Ok(_) => Ok(exit::BUILD_FAILED),
        Err(FollowError::Interrupted) => Ok(exit::INTERRUPTED),
        Err(FollowError::Vercel(err)) => {
            let hint = err.hint();
            Err(CommandError::new(exit::FOLLOW_FAILED, err).hint_if(hint))
        }
        Err(err) => Err(CommandError::new(exit::FOLLOW_FAILED, err)
            .hint("the resume state is saved: run the same command again to continue")),
    }
}

/// `--since`: RFC 3339, epoch milliseconds, or an age (`90s`, `15m`, `2h`, `1d`).
fn parse_since(value: &str) -> Result<i64, String> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
    {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let age = shiplog::clock::parse_duration(value)
        .ok_or_else(|| format!("--since {value:?} is not a time"))?;
    Ok(now_ms().saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_three_forms() {
        assert_eq!(parse_since("1783471638756"), Ok(1_783_471_638_756));
        assert_eq!(
            parse_since("2026-07-08T00:47:18.756Z"),
            Ok(1_783_471_638_756)
        );
        let ago = now_ms() - parse_since("15m").expect("age");
        assert!((15 * 60_000..15 * 60_000 + 5_000).contains(&ago));
        assert!(parse_since("yesterday").is_err());
    }
}
