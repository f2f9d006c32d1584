//! The unified entries a followed deployment produces.

use crate::log::{LogEntry, Severity, Tier};
use crate::vercel::{ReadyState, VercelEvent};

/// Everything an entry of this deployment carries.
#[derive(Debug, Clone)]
pub struct EntryContext {
    /// The stable id, `vercel-{buildId}-{shortULID}`.
    pub deployment_id: String,
    /// Vercel's deployment id (`dpl_...`), also the entry's `build_id`.
    pub vercel_id: String,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
}

/// The `deploy` entry that closes a followed build.
pub fn outcome_entry(ctx: &EntryContext, end: ReadyState) -> LogEntry {
    let (severity, event) = match end {
        ReadyState::Ready => (Severity::Info, "completed"),
        ReadyState::Canceled => (Severity::Warn, "canceled"),
        _ => (Severity::Error, "failed"),
    };
    let name = ctx.project_name.as_deref().unwrap_or(&ctx.vercel_id);
    let mut entry = LogEntry::deploy(
        &ctx.deployment_id,
        severity,
        event,
        format!("Deployment {} of {name} is {end}", ctx.vercel_id),
    )
    .with_build(&ctx.vercel_id)
    .with_meta("vercel_deployment_id", ctx.vercel_id.as_str())
    .with_meta("ready_state", end.as_str());
    entry.project_id = ctx.project_id.clone();
    entry
}

/// The unified entry for one build event.
pub fn build_entry(event: &VercelEvent, ctx: &EntryContext) -> LogEntry {
    let severity = match (event.level.as_deref(), event.kind.as_str()) {
        (Some("error"), _) | (_, "fatal") => Severity::Error,
        (Some("warning"), _) | (_, "stderr") => Severity::Warn,
        _ => Severity::Info,
    };
    let tier = match event.kind.as_str() {
        "deployment-state" | "alias-assigned" => Tier::Deploy,
        _ => Tier::Build,
    };
    let mut entry = LogEntry::new(tier, severity, event.kind.as_str(), event.text.as_str())
        .with_ts(event.created)
        .with_deployment(&ctx.deployment_id)
        .with_build(&ctx.vercel_id)
        .with_meta("vercel_event_id", event.id.as_str())
        .with_meta("vercel_deployment_id", ctx.vercel_id.as_str())
        .with_meta("vercel_type", event.kind.as_str())
        .with_meta("created", event.created);
    if let Some(level) = &event.level {
        entry = entry.with_meta("level", level.as_str());
    }
    if let Some(name) = &ctx.project_name {
        entry = entry.with_meta("project", name.as_str());
    }
    entry.project_id = ctx.project_id.clone();
    entry
}
