//! `shiplog alerts list|ack|resolve`: the alert book from the command line. An acknowledgement
//! or resolution goes through the alerting engine, run here for the moment it takes: the book
//! is read from the state store, the change is shared with every instance on the same Redis,
//! told to PagerDuty through the delivery queue (sent before the command returns), and the book
//! written back.

use shiplog::alert::book::{AlertRecord, AlertState};
use shiplog::alert::book_store;
use shiplog::alert::runner::AlertCommand;
use shiplog::alert::Fingerprint;
use shiplog::clock::{now_ms, short_duration};
use shiplog::exit;
use shiplog::log::Logger;

use super::error::{CommandError, Exit};
use crate::cli::{AlertsCommand, Cli};

pub async fn run(cli: &Cli, command: AlertsCommand) -> Exit {
    let mut settings = super::settings(cli)?;
    super::init_diagnostics(&settings);
    let store = super::open_state(&settings, &Logger::builder().build()).await?;
    let records = book_store::load(&store).await;
    let (asked, command) = match command {
        AlertsCommand::List { json } => return list(&records, json),
        AlertsCommand::Ack { fingerprint, note } => (fingerprint, Ask::Ack(note)),
        AlertsCommand::Resolve { fingerprint } => (fingerprint, Ask::Resolve),
        AlertsCommand::Check { .. } | AlertsCommand::Test { .. } => return Ok(exit::OK),
    };
    let record = find(&records, &asked)?;
    let fingerprint = record.fingerprint.clone();
    let command = match command {
        Ask::Ack(note) => AlertCommand::Acknowledge {
            fingerprint: fingerprint.clone(),
            note,
        },
        Ask::Resolve => AlertCommand::Resolve {
            fingerprint: fingerprint.clone(),
        },
    };
    if matches!(record.state, AlertState::Resolved { .. }) {
        return Err(CommandError::new(
            exit::USAGE,
            format!(
                "alert {} is resolved already",
                Fingerprint::short(&fingerprint)
            ),
        ));
    }
    let applied = through_engine(&mut settings, &store, &command).await?;
    if !applied {
        return Err(CommandError::new(
            exit::FOLLOW_FAILED,
            format!("alert {} did not change", Fingerprint::short(&fingerprint)),
        ));
    }
    let what = match command {
        AlertCommand::Acknowledge { .. } => "Acknowledged",
        _ => "Resolved",
    };
    say!(
        "{what} {} ({}) as {}",
        record.rule,
        Fingerprint::short(&fingerprint),
        settings.user
    );
    Ok(exit::OK)
}

/// Runs the alerting engine for this one change: it reads the book, acts as this user, shares
/// the change and tells PagerDuty (sent before it stops), and writes the book back. Whether the
/// alert took the change.
async fn through_engine(
    settings: &mut shiplog::config::Settings,
    store: &shiplog::store::StateStore,
    command: &AlertCommand,
) -> Result<bool, CommandError> {
    settings.alerts_enabled = true;
    let (builder, outlet) = super::with_alerts(Logger::builder(), true);
    let logger = builder.build();
    let metrics = std::sync::Arc::new(shiplog::metrics::Metrics::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let Some((task, handle)) =
        super::start_alerting(settings, store, &logger, &metrics, outlet, stopped)
    else {
        return Err(CommandError::new(
            exit::FOLLOW_FAILED,
            "alerting could not start",
        ));
    };
    let fingerprint = command.fingerprint().to_owned();
    let done = |records: &[AlertRecord]| {
        records.iter().any(|r| {
            r.fingerprint == fingerprint
                && match command {
                    AlertCommand::Acknowledge { .. } => {
                        matches!(r.state, AlertState::Acknowledged { .. })
                    }
                    _ => matches!(r.state, AlertState::Resolved { .. }),
                }
        })
    };
    let mut alerts = handle.alerts.clone();
    let _ = handle.commands.send(command.clone()).await;
    let applied = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !done(&alerts.borrow_and_update()) {
            if alerts.changed().await.is_err() {
                return;
            }
        }
    })
    .await
    .is_ok();
    let _ = stop.send(true);
    let _ = task.await;
    Ok(applied)
}

enum Ask {
    Ack(Option<String>),
    Resolve,
}

/// The alert whose fingerprint starts with `asked`, if exactly one does.
fn find<'a>(records: &'a [AlertRecord], asked: &str) -> Result<&'a AlertRecord, CommandError> {
    let asked = asked.trim().to_ascii_lowercase();
    let mut found = records
        .iter()
        .filter(|r| !asked.is_empty() && r.fingerprint.starts_with(&asked));
    match (found.next(), found.next()) {
        (Some(record), None) => Ok(record),
        (None, _) => Err(CommandError::new(
            exit::USAGE,
            format!("no alert has a fingerprint starting with {asked:?}"),
        )
        .hint("`shiplog alerts list` shows them")),
        (Some(_), Some(_)) => Err(CommandError::new(
            exit::USAGE,
            format!("{asked:?} starts more than one fingerprint; give more of it"),
        )),
    }
}

fn list(records: &[AlertRecord], json: bool) -> Exit {
    if json {
        let text = serde_json::to_string_pretty(records)
            .map_err(|err| CommandError::new(exit::DATA, format!("could not write JSON: {err}")))?;
        say!("{text}");
        return Ok(exit::OK);
    }
    if records.is_empty() {
        say!("No alerts.");
    }
    let now = now_ms();
    for r in records {
        let state = match (&r.state, &r.muted) {
            (AlertState::Firing, Some(muted)) => format!("muted: {}", muted.describe()),
            (state, _) => state.label().to_owned(),
        };
        say!(
            "{}  {:<8} {:<22} x{:<4} {:>8} ago  {}  [{}]",
            Fingerprint::short(&r.fingerprint),
            r.severity.as_str(),
            r.rule,
            r.count,
            short_duration(now - r.first_seen),
            shiplog::printable::display(&r.summary, false),
            state
        );
    }
    Ok(exit::OK)
}
