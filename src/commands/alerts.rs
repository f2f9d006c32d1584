//! `shiplog alerts check <file.ndjson>`: a dry run of the alert rules over recorded entries.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use shiplog::alert::channels::{ChannelSettings, Notification};
use shiplog::alert::delivery::{Deliverer, DeliveryStatus};
use shiplog::alert::{
    Alert, AlertEvent, AlertSeverity, Channel, Fingerprint, RuleEvaluator, Suppressor,
};
use shiplog::exit;
use shiplog::log::entry::clock;
use shiplog::log::LogEntry;
use shiplog::log::{Severity, Tier};
use shiplog::metrics::Metrics;
use shiplog::vercel::{Line, LineSplitter};

use super::error::{CommandError, Exit};
use crate::cli::Cli;

/// One line for an alert that would fire: when, rule, severity, channels, first line, where.
fn say_fired(alert: &Alert) {
    let message = alert.entry.message.lines().next().unwrap_or("");
    say!(
        "{} FIRE {} ({}) -> {}: {} [{}{}]",
        clock(alert.entry.ts),
        alert.rule,
        alert.severity.as_str(),
        alert.channel_list(),
        shiplog::printable::display(message, false),
        alert
            .entry
            .deployment_id
            .as_deref()
            .map(|d| format!("{d}, "))
            .unwrap_or_default(),
        &alert.fingerprint.as_str()[..8],
    );
}

pub async fn check(cli: &Cli, file: &Path) -> Exit {
    let settings = super::settings(cli)?;
    let rules = settings.alert_rules;
    let mut input = std::fs::File::open(file).map_err(|err| {
        CommandError::new(exit::DATA, format!("cannot read {}: {err}", file.display()))
            .hint("give a file of entries as `shiplog follow --json` writes them")
    })?;
    // Windows are measured on the entries' own timestamps, as if they happened now.
    let engine = RuleEvaluator::new(rules, Suppressor::replay(), Arc::new(Metrics::new()));
    let (mut read, mut skipped) = (0u64, 0u64);
    let mut tally: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    // Lines are cut as `follow` cuts them: one over 1 MiB is skipped without being held whole.
    let mut splitter = LineSplitter::default();
    let mut chunk = vec![0; 64 * 1024];
    let mut entries: Vec<Option<LogEntry>> = Vec::new();
    loop {
        let parse = |line: Line<'_>| {
            entries.push(match line {
                Line::Complete(bytes) => serde_json::from_slice::<LogEntry>(bytes).ok(),
                Line::Oversized { .. } => None,
            })
        };
        let ended = match input.read(&mut chunk) {
            Ok(0) => {
                splitter.finish(parse);
                true
            }
            Ok(n) => {
                splitter.push(&chunk[..n], parse);
                false
            }
            Err(_) => {
                skipped += 1;
                true
            }
        };
        for entry in entries.drain(..) {
            let Some(entry) = entry else {
                skipped += 1;
                continue;
            };
            read += 1;
            for event in engine.evaluate(Arc::new(entry)).await {
                match event {
                    AlertEvent::Fired(alert) => {
                        tally.entry(alert.rule.clone()).or_default().0 += 1;
                        say_fired(&alert);
                    }
                    AlertEvent::Repeated { alert, .. } => {
                        tally.entry(alert.rule).or_default().1 += 1
                    }
                }
            }
        }
        if ended {
            break;
        }
    }
    let fired: u64 = tally.values().map(|t| t.0).sum();
    let repeats: u64 = tally.values().map(|t| t.1).sum();
    say!();
    say!(
        "{fired} alerts would fire, {repeats} repeats would be suppressed ({read} entries read, {skipped} lines skipped)"
    );
    if !tally.is_empty() {
        say!("{:<24} {:>6} {:>11}", "rule", "fired", "suppressed");
        for (rule, (fired, suppressed)) in &tally {
            say!("{rule:<24} {fired:>6} {suppressed:>11}");
        }
    }
    Ok(exit::OK)
}

/// `shiplog alerts test <channel>`: one test notification, with the real settings.
pub async fn test(cli: &Cli, channel: &str) -> Exit {
    let settings = super::settings(cli)?;
    let asked = channel.to_ascii_lowercase();
    let Some(channel) = Channel::ALL.into_iter().find(|c| c.as_str() == asked) else {
        return Err(CommandError::new(
            exit::USAGE,
            format!("there is no channel {asked:?} to test"),
        )
        .hint(format!("use {}", Channel::named(&Channel::ALL))));
    };
    let entry = LogEntry::new(
        Tier::System,
        Severity::Info,
        "alert_test",
        "This is a test notification from shiplog: the channel works.",
    );
    let alert = Alert {
        fingerprint: Fingerprint::of("alert_test", &entry),
        rule: "alert_test".to_owned(),
        severity: AlertSeverity::Low,
        channels: vec![channel],
        entry: Arc::new(entry),
    };
    let deliverer = Deliverer::new(ChannelSettings::from_env_and(&settings.alert_channels));
    let name = channel.as_str();
    let progress = |progress: DeliveryStatus| eprintln!("shiplog: {name}: {}", progress.label());
    let status = deliverer
        .deliver(channel, &Notification::firing(&alert), progress)
        .await;
    match status {
        // A test must not leave someone paged: the incident it opened is resolved at once.
        DeliveryStatus::Sent { .. } if channel == Channel::Pagerduty => {
            let mut resolve = Notification::firing(&alert);
            resolve.state = shiplog::alert::channels::text::RESOLVED;
            match deliverer.deliver(channel, &resolve, progress).await {
                DeliveryStatus::Sent { .. } => {
                    say!("{name}: sent (the test incident was triggered, then resolved)");
                    Ok(exit::OK)
                }
                other => Err(CommandError::new(
                    exit::FOLLOW_FAILED,
                    format!(
                        "{name}: the test incident was triggered but not resolved: {}",
                        other.label()
                    ),
                )
                .hint("resolve it in PagerDuty")),
            }
        }
        DeliveryStatus::Sent { .. } => {
            say!("{name}: sent");
            Ok(exit::OK)
        }
        other => Err(CommandError::new(
            exit::FOLLOW_FAILED,
            format!("{name}: {}", other.label()),
        )),
    }
}
