//! The actions engine inside a running shiplog. It reads the action audit trail, every
//! instance's, about twice a second: each new result becomes an `action` entry in the log (the
//! dashboards show it, the rules can tell the team), and the latest record of each recent
//! action is published for the activity panel. On the dashboard it also takes the screen's
//! requests; the UI never waits on it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::audit::{ActionRecord, ActionTrail, Outcome, TrailPosition};
use super::run::{Actions, Consent, Finished};
use super::{ActionError, ActionKind, ActionRequest, Plan};
use crate::log::{LogEntry, Logger, Severity, Tier};
use crate::role::Role;
use crate::shutdown::{stopped, Shutdown};

/// How often the trail is read again.
const POLL: Duration = Duration::from_millis(500);

/// How many actions the activity panel keeps.
const RECENT: usize = 50;

/// What the activity panel shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityView {
    pub user: String,
    pub role: Role,
    /// The latest record of each recent action, newest first.
    pub actions: Vec<ActionRecord>,
    /// Why the trail cannot be read right now.
    pub error: Option<String>,
}

/// A request from the screen.
#[derive(Debug, Clone)]
pub enum ActionCommand {
    /// Look the action up and check it (the answer is the plan to confirm).
    Plan(ActionRequest),
    /// Send a confirmed plan.
    Run(Plan, Consent),
}

/// The answer to a command, one per command.
#[derive(Debug, Clone)]
pub enum ActionAnswer {
    Planned(Result<Plan, ActionError>),
    Ran(Result<Finished, ActionError>),
}

/// The running engine, as the dashboard sees it.
pub struct ActionsHandle {
    pub snapshot: watch::Receiver<ActivityView>,
    pub commands: mpsc::Sender<ActionCommand>,
    pub answers: mpsc::Receiver<ActionAnswer>,
}

/// Starts the engine for the dashboard; it stops with `shutdown`.
pub fn start(actions: Arc<Actions>, logger: Logger, shutdown: Shutdown) -> ActionsHandle {
    let (view_tx, view) = watch::channel(ActivityView {
        user: actions.actor().user.clone(),
        role: actions.actor().role,
        actions: Vec::new(),
        error: None,
    });
    tokio::spawn(follow_trail(
        actions.trail().clone(),
        logger,
        Some(view_tx),
        shutdown.clone(),
    ));
    let (commands, mut commands_rx) = mpsc::channel::<ActionCommand>(8);
    let (answers_tx, answers) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut shutdown = shutdown;
        loop {
            let command = tokio::select! {
                command = commands_rx.recv() => command,
                _ = stopped(&mut shutdown) => return,
            };
            let Some(command) = command else { return };
            // An action with retries takes seconds: the next command need not wait for it.
            let (actions, answers) = (actions.clone(), answers_tx.clone());
            tokio::spawn(async move {
                let answer = match command {
                    ActionCommand::Plan(request) => {
                        ActionAnswer::Planned(actions.plan(&request).await)
                    }
                    ActionCommand::Run(plan, consent) => {
                        ActionAnswer::Ran(actions.run(&plan, consent).await)
                    }
                };
                let _ = answers.send(answer).await;
            });
        }
    });
    ActionsHandle {
        snapshot: view,
        commands,
        answers,
    }
}

/// Reads the trail until `shutdown`: every record written after this call becomes an entry
/// (see [`entry_for`]); with `view`, the recent actions are published too. `serve` runs it
/// without a view, so the rules see actions taken anywhere.
pub fn follow_trail(
    trail: ActionTrail,
    logger: Logger,
    view: Option<watch::Sender<ActivityView>>,
    shutdown: Shutdown,
) -> impl std::future::Future<Output = ()> + Send {
    // Taken now, not when the task first runs: an action right after the start is news.
    let started = crate::clock::now_ms();
    read_trail(trail, logger, view, shutdown, started)
}

async fn read_trail(
    trail: ActionTrail,
    logger: Logger,
    view: Option<watch::Sender<ActivityView>>,
    mut shutdown: Shutdown,
    started: i64,
) {
    let mut recent: Vec<ActionRecord> = Vec::new();
    let mut position: Option<TrailPosition> = None;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        let read = trail.read_after(position.as_ref()).await;
        let error = match read {
            Ok((records, next)) => {
                // What was written before this reader started is history, not news.
                let news = records
                    .iter()
                    .filter(|r| position.is_some() || r.at >= started);
                for entry in news.filter_map(entry_for) {
                    logger.write(entry);
                }
                position = Some(next);
                for record in records {
                    remember(&mut recent, record);
                }
                None
            }
            Err(err) => Some(err.to_string()),
        };
        if let Some(view) = &view {
            view.send_if_modified(|shown| {
                let changed = shown.actions != recent || shown.error != error;
                shown.actions.clone_from(&recent);
                shown.error = error;
                changed
            });
        }
    }
}

/// Keeps the latest record of each action, newest first, at most [`RECENT`].
fn remember(recent: &mut Vec<ActionRecord>, record: ActionRecord) {
    recent.retain(|r| r.action_id != record.action_id);
    recent.insert(0, record);
    recent.truncate(RECENT);
}

/// The entry an action's record makes: results and refusals, not the steps before them. A
/// production change that happened has the event `promoted` or `rolled_back` (the built-in
/// rule `production_changed` tells the team).
pub fn entry_for(record: &ActionRecord) -> Option<LogEntry> {
    let kind = record.action;
    let who = format!("{} ({})", record.user, record.role.as_str());
    let object = object(record);
    let (severity, event, message) = match record.outcome {
        Outcome::Requested | Outcome::Confirmed | Outcome::Resent => return None,
        Outcome::Unknown => (
            Severity::Warn,
            format!("{}_unknown", kind.as_str()),
            format!(
                "{who} may have {} {object} (its answer was lost)",
                kind.done()
            ),
        ),
        Outcome::Succeeded | Outcome::AlreadyDone => {
            let severity = match kind {
                ActionKind::Promote | ActionKind::Rollback => Severity::Warn,
                _ => Severity::Info,
            };
            let mut message = format!("{who} {} {object}", kind.done());
            if let Some(created) = &record.created {
                message.push_str(&format!(" as {created}"));
            }
            if let Some(from) = &record.from {
                message.push_str(&format!(" (was {from})"));
            }
            (severity, kind.event().to_owned(), message)
        }
        Outcome::Failed => (
            Severity::Error,
            format!("{}_failed", kind.as_str()),
            format!("{who} could not {} {object}", kind.verb()),
        ),
        Outcome::Refused | Outcome::Declined => (
            Severity::Info,
            format!("{}_refused", kind.as_str()),
            format!("{who} did not {} {object}", kind.verb()),
        ),
    };
    let mut message = message;
    if let Some(answer) = record
        .answer
        .as_deref()
        .filter(|_| !matches!(record.outcome, Outcome::Succeeded | Outcome::AlreadyDone))
    {
        message.push_str(&format!(": {answer}"));
    }
    if let Some(reason) = &record.reason {
        message.push_str(&format!(" (reason: {reason})"));
    }
    let mut entry = LogEntry::at(record.at, Tier::Action, severity, event, message)
        .with_meta("action_id", record.action_id.clone())
        .with_meta("action", kind.as_str())
        .with_meta("outcome", record.outcome.as_str())
        .with_meta("user", record.user.clone())
        .with_meta("role", record.role.as_str());
    entry.metadata.project = (!record.project.is_empty()).then(|| record.project.as_str().into());
    entry.metadata.vercel_deployment_id =
        (!record.deployment.is_empty()).then(|| record.deployment.as_str().into());
    if let Some(from) = &record.from {
        entry = entry.with_meta("from", from.clone());
    }
    if let Some(created) = &record.created {
        entry = entry.with_meta("created", created.clone());
    }
    Some(entry)
}

/// What the action is done to: "dpl_x of checkout-web", "dpl_x to production of
/// checkout-web", "production of checkout-web to dpl_x".
fn object(record: &ActionRecord) -> String {
    let project = if record.project.is_empty() {
        "its project"
    } else {
        record.project.as_str()
    };
    let deployment = &record.deployment;
    match record.action {
        ActionKind::Promote => format!("{deployment} to production of {project}"),
        ActionKind::Rollback => format!("production of {project} to {deployment}"),
        ActionKind::Redeploy | ActionKind::Cancel => format!("{deployment} of {project}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(action: ActionKind, outcome: Outcome) -> ActionRecord {
        ActionRecord {
            at: 1_700_000_000_000,
            action_id: "01JACTION".into(),
            action,
            outcome,
            user: "alice".into(),
            role: Role::Operator,
            project: "checkout-web".into(),
            deployment: "dpl_old".into(),
            from: Some("dpl_new".into()),
            created: None,
            reason: Some("bad deploy".into()),
            answer: Some("Vercel refused the rollback: conflict".into()),
            instance: "host-1".into(),
        }
    }

    #[test]
    fn a_rollback_that_happened_is_an_action_entry_the_built_in_rule_matches() {
        let entry = entry_for(&record(ActionKind::Rollback, Outcome::Succeeded)).expect("entry");
        assert_eq!(entry.tier, Tier::Action);
        assert_eq!(entry.event, "rolled_back");
        assert_eq!(
            entry.message,
            "alice (operator) rolled back production of checkout-web to dpl_old (was dpl_new) (reason: bad deploy)"
        );
        assert_eq!(entry.metadata.get_str("outcome"), Some("succeeded"));
        assert_eq!(entry.metadata.get_str("project"), Some("checkout-web"));
    }

    #[tokio::test]
    async fn an_action_written_to_the_trail_after_the_start_is_shown_and_logged() {
        let dir = tempfile::tempdir().expect("dir");
        let trail = ActionTrail::files(dir.path()).expect("trail");
        let (builder, mut entries) =
            Logger::builder().channel("test", 8, crate::log::Delivery::DropWhenFull);
        let (view_tx, mut view) = watch::channel(ActivityView {
            user: "alice".into(),
            role: Role::Operator,
            actions: Vec::new(),
            error: None,
        });
        let (_stop, shutdown) = watch::channel(false);
        tokio::spawn(follow_trail(
            trail.clone(),
            builder.build(),
            Some(view_tx),
            shutdown,
        ));
        let mut done = record(ActionKind::Cancel, Outcome::Succeeded);
        done.at = crate::clock::now_ms();
        trail.append(&done).await.expect("append");
        let shown = view
            .wait_for(|v| !v.actions.is_empty())
            .await
            .expect("published")
            .clone();
        assert_eq!(shown.actions, [done]);
        let entry = entries.recv().await.expect("an entry");
        assert_eq!(
            (entry.tier, entry.event.as_str()),
            (Tier::Action, "canceled")
        );
    }

    #[test]
    fn failures_say_why_and_steps_before_a_result_make_no_entry() {
        let failed = entry_for(&record(ActionKind::Rollback, Outcome::Failed)).expect("entry");
        assert_eq!(failed.event, "rollback_failed");
        assert_eq!(
            failed.message,
            "alice (operator) could not roll back production of checkout-web to dpl_old: Vercel refused the rollback: conflict (reason: bad deploy)"
        );
        assert!(entry_for(&record(ActionKind::Cancel, Outcome::Requested)).is_none());
        assert!(entry_for(&record(ActionKind::Cancel, Outcome::Confirmed)).is_none());
    }
}
