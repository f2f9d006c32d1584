//! Until delivery channels exist, fired alerts are written back into the log as `action`
//! entries (`alert_fired`) next to the line that fired them: the dashboard shows them in that
//! build's log and the headless commands print them. The demo's channel works the same way.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::engine::{channel_name, Alert, AlertEngine, AlertEvent};
use super::rule::AlertSeverity;
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::stream::follower::Shutdown;

/// The event of the entries this module writes; the engine never evaluates them.
pub const ALERT_FIRED: &str = "alert_fired";

/// The entry announcing a fired alert.
pub fn notice_entry(alert: &Alert) -> LogEntry {
    let severity = match alert.severity {
        AlertSeverity::Critical => Severity::Critical,
        AlertSeverity::High => Severity::Error,
        AlertSeverity::Medium => Severity::Warn,
        AlertSeverity::Low => Severity::Info,
    };
    let channels: Vec<&str> = alert.channels.iter().map(|c| channel_name(*c)).collect();
    let message = format!(
        "ALERT {} ({}) for {}: {}",
        alert.rule,
        alert.severity.as_str(),
        if channels.is_empty() {
            "no channel".to_owned()
        } else {
            channels.join(", ")
        },
        alert.entry.message.lines().next().unwrap_or("")
    );
    let mut entry = LogEntry::new(Tier::Action, severity, ALERT_FIRED, message)
        .with_meta("fingerprint", alert.fingerprint.as_str())
        .with_meta("rule", alert.rule.as_str());
    entry.deployment_id = alert.entry.deployment_id.clone();
    entry.build_id = alert.entry.build_id.clone();
    entry.project_id = alert.entry.project_id.clone();
    entry.metadata.project = alert.entry.metadata.project.clone();
    entry
}

/// Runs the engine over the logger's `alerts` outlet and writes a notice for every alert fired.
pub async fn run(
    engine: AlertEngine,
    entries: mpsc::Receiver<Arc<LogEntry>>,
    logger: Logger,
    shutdown: Shutdown,
) {
    let (decisions, mut fired) = mpsc::channel(1024);
    let engine = async move { engine.run(entries, decisions, shutdown).await };
    let announce = async move {
        while let Some(event) = fired.recv().await {
            if let AlertEvent::Fired(alert) = event {
                logger.write(notice_entry(&alert));
            }
        }
    };
    tokio::join!(engine, announce);
}
