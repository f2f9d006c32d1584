//! The rule evaluator: every entry through the rules; a match is fingerprinted and either
//! fires or is counted as a repeat. (The task around it, which keeps the alert book and queues
//! the notifications, is [`super::runner::Runner`].)

use std::sync::Arc;

use tokio::sync::mpsc;

use super::burst::{burst_entry, Bursts};
use super::channels::Channel;
use super::fingerprint::Fingerprint;
use super::rule::{AlertSeverity, RuleSet};
use super::suppression::{Decision, Suppressor};
use crate::log::{EntryReceiver, LogEntry};
use crate::metrics::Metrics;
use crate::shutdown::{stopped, Shutdown};

/// A notification-worthy match.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub fingerprint: Fingerprint,
    pub rule: String,
    pub severity: AlertSeverity,
    pub channels: Vec<Channel>,
    /// The entry that fired it (already redacted by the logger).
    pub entry: Arc<LogEntry>,
}

impl Alert {
    /// "slack, discord", or "no channel".
    pub fn channel_list(&self) -> String {
        if self.channels.is_empty() {
            return "no channel".to_owned();
        }
        let names: Vec<&str> = self.channels.iter().map(|c| c.as_str()).collect();
        names.join(", ")
    }
}

/// What the evaluator decided about one rule match.
#[derive(Debug, Clone)]
pub enum AlertEvent {
    Fired(Alert),
    /// A repeat inside the window: counted, not sent. (Another instance may have fired it.)
    Repeated {
        alert: Alert,
        count: u64,
    },
}

/// Decides, for each entry, which rules fire and which only repeat.
pub struct RuleEvaluator {
    rules: RuleSet,
    suppressor: Suppressor,
    metrics: Arc<Metrics>,
    bursts: Bursts,
}

impl RuleEvaluator {
    pub fn new(rules: RuleSet, suppressor: Suppressor, metrics: Arc<Metrics>) -> Self {
        RuleEvaluator {
            rules,
            suppressor,
            metrics,
            bursts: Bursts::default(),
        }
    }

    /// Runs one entry through every rule.
    pub async fn evaluate(&self, entry: Arc<LogEntry>) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        if entry.event == super::runner::ALERT_FIRED || entry.metadata.replayed {
            // An alert about an alert would never end; history is no news.
            return events;
        }
        for rule in self.rules.matching(&entry) {
            let (entry, fingerprint) = match rule.burst {
                None => (entry.clone(), Fingerprint::of(&rule.key, &entry)),
                Some(burst) if self.bursts.complete(&rule.key, &entry, burst) => {
                    let (entry, fingerprint) = burst_entry(&rule.key, &entry, burst);
                    (Arc::new(entry), fingerprint)
                }
                Some(_) => continue,
            };
            let alert = Alert {
                fingerprint,
                rule: rule.key.clone(),
                severity: rule.severity,
                channels: rule.channels.clone(),
                entry: entry.clone(),
            };
            match self
                .suppressor
                .check(&alert.fingerprint, rule.suppression, entry.ts)
                .await
            {
                Decision::Fire => {
                    for channel in &rule.channels {
                        self.metrics.alert_triggered(&rule.key, channel.as_str());
                    }
                    events.push(AlertEvent::Fired(alert));
                }
                Decision::Repeat { count } => {
                    self.metrics.alert_suppressed(&rule.key);
                    events.push(AlertEvent::Repeated { alert, count });
                }
            }
        }
        events
    }

    /// Takes entries from the logger's alerting outlet until shutdown; sends what it decides.
    pub async fn run(
        &self,
        mut entries: EntryReceiver,
        decisions: mpsc::Sender<AlertEvent>,
        mut shutdown: Shutdown,
    ) {
        loop {
            let entry = tokio::select! {
                entry = entries.recv() => entry,
                _ = stopped(&mut shutdown) => {
                    // What was written before the stop still counts (a build's last line).
                    while let Ok(entry) = entries.try_recv() {
                        for event in self.evaluate(entry).await {
                            let _ = decisions.send(event).await;
                        }
                    }
                    return;
                }
            };
            let Some(entry) = entry else { return };
            for event in self.evaluate(entry).await {
                if decisions.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}
