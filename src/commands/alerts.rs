//! `shiplog alerts check <file.ndjson>`: a dry run of the alert rules over recorded entries.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use shiplog::alert::book::QUIET_PERIOD;
use shiplog::alert::channels::{ChannelSettings, Notification};
use shiplog::alert::delivery::{Deliverer, DeliveryStatus};
use shiplog::alert::grouping::{Flush, GroupBook, Standing};
use shiplog::alert::inhibit;
use shiplog::alert::labels::Labels;
use shiplog::alert::matcher;
use shiplog::alert::routing::Routing;
use shiplog::alert::silence::{Silence, SilenceState, Silences};
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
fn fired_line(alert: &Alert) -> String {
    let message = alert.entry.message.lines().next().unwrap_or("");
    format!(
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
    )
}

pub async fn check(cli: &Cli, file: &Path) -> Exit {
    let settings = super::settings(cli)?;
    let rules = settings.alert_rules.clone();
    let mut input = std::fs::File::open(file).map_err(|err| {
        CommandError::new(exit::DATA, format!("cannot read {}: {err}", file.display()))
            .hint("give a file of entries as `shiplog follow --json` writes them")
    })?;
    // Windows are measured on the entries' own timestamps, as if they happened now.
    let engine = RuleEvaluator::new(rules, Suppressor::replay(), Arc::new(Metrics::new()));
    let (mut read, mut skipped) = (0u64, 0u64);
    let mut tally: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut fired = Vec::new();
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
                        fired.push(alert);
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
    let outcome = delivery_outcome(
        &fired,
        &silences_now(&settings).await,
        &settings.alert_routing,
    );
    let repeats: u64 = tally.values().map(|t| t.1).sum();
    say!();
    say!(
        "{} alerts would fire, {repeats} repeats would be suppressed ({read} entries read, {skipped} lines skipped)",
        fired.len()
    );
    outcome.say();
    if !tally.is_empty() {
        say!("{:<24} {:>6} {:>11}", "rule", "fired", "suppressed");
        for (rule, (fired, suppressed)) in &tally {
            say!("{rule:<24} {fired:>6} {suppressed:>11}");
        }
    }
    Ok(exit::OK)
}

/// The silences that are pending or active now, as every instance reads them.
async fn silences_now(settings: &shiplog::config::Settings) -> Vec<Silence> {
    let store = match super::open_store(settings, &shiplog::log::Logger::builder().build()).await {
        Ok(store) => store,
        Err(err) => {
            eprintln!("shiplog: the silences were not read ({err}); none is applied");
            return Vec::new();
        }
    };
    let now = shiplog::clock::now_ms();
    let mut silences = Silences::new(store).all().await.unwrap_or_default();
    silences.retain(|s| s.state(now) != SilenceState::Expired);
    silences
}

/// What the notifications of a dry run would be: which alerts the silences (pending or active
/// now) and the inhibition rules mute, and how the rest group on each channel.
#[derive(Default)]
struct Outcome {
    muted: u64,
    inhibited: u64,
    /// Per channel: notifications, and the alerts they tell of.
    notifications: BTreeMap<Channel, (u64, u64)>,
}

fn delivery_outcome(fired: &[Alert], silences: &[Silence], routing: &Routing) -> Outcome {
    let mut outcome = Outcome::default();
    let mut groups = GroupBook::default();
    let route = |channel: Channel| routing.route(channel).clone();
    let labels: Vec<Labels> = fired.iter().map(Labels::of).collect();
    for (i, alert) in fired.iter().enumerate() {
        let ts = alert.entry.ts;
        let silence = silences
            .iter()
            .filter(|s| matcher::all_match(&s.matchers, &labels[i]))
            .max_by_key(|s| s.ends_at);
        // Inhibited by another alert of the replay open at the same time (within the hour an
        // alert stays open without news).
        let sources = fired
            .iter()
            .zip(&labels)
            .enumerate()
            .filter(move |(j, (source, _))| {
                *j != i && (source.entry.ts - ts).abs() < QUIET_PERIOD.as_millis() as i64
            })
            .map(|(_, pair)| pair);
        let inhibitor = inhibit::inhibiting(&routing.inhibit, &labels[i], sources);
        let line = fired_line(alert);
        if let Some(silence) = silence {
            outcome.muted += 1;
            say!(
                "{line} MUTED by silence {} ({}: {})",
                silence.short_id(),
                silence.created_by,
                silence.comment
            );
        } else if let Some((rule, source)) = inhibitor {
            outcome.inhibited += 1;
            say!("{line} INHIBITED by {} ({})", source.rule, rule.name);
        } else {
            say!("{line}");
            for flush in groups.due(ts, route, |_| Standing::Notify) {
                outcome.told(&flush);
            }
            for &channel in &alert.channels {
                groups.add(channel, routing.route(channel), alert, ts);
            }
        }
    }
    for flush in groups.due_all(i64::MAX, |_| Standing::Notify) {
        outcome.told(&flush);
    }
    outcome
}

impl Outcome {
    fn told(&mut self, flush: &Flush) {
        let counts = self.notifications.entry(flush.channel).or_default();
        counts.0 += 1;
        counts.1 += flush.members.len() as u64;
    }

    fn say(&self) {
        if self.muted + self.inhibited > 0 {
            say!(
                "{} muted by silences, {} inhibited (recorded, not sent)",
                self.muted,
                self.inhibited
            );
        }
        if !self.notifications.is_empty() {
            let per_channel: Vec<String> = self
                .notifications
                .iter()
                .map(|(channel, (sent, alerts))| {
                    format!("{} {sent} for {alerts} alerts", channel.as_str())
                })
                .collect();
            say!("notifications, grouped: {}", per_channel.join(", "));
        }
    }
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
