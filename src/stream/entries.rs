//! The unified entries a followed deployment produces.

use std::sync::Arc;

use crate::log::{LogEntry, Severity, Tier};
use crate::vercel::{ReadyState, VercelEvent};

/// Everything an entry of this deployment carries.
#[derive(Debug, Clone)]
pub struct EntryContext {
    /// The stable id, `vercel-{buildId}-{shortULID}`.
    pub deployment_id: Arc<str>,
    /// Vercel's deployment id (`dpl_...`), also the entry's `build_id`.
    pub vercel_id: Arc<str>,
    pub project_id: Option<Arc<str>>,
    pub project_name: Option<Arc<str>>,
}

impl EntryContext {
    /// An entry of this deployment, with its ids set.
    pub fn entry(
        &self,
        ts_ms: i64,
        tier: Tier,
        severity: Severity,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> LogEntry {
        let mut entry = LogEntry::at(ts_ms, tier, severity, event, message)
            .with_deployment(self.deployment_id.clone())
            .with_build(self.vercel_id.clone())
            .with_project(self.project_id.clone());
        entry.metadata.vercel_deployment_id = Some(self.vercel_id.clone());
        entry.metadata.project = self.project_name.clone();
        entry
    }
}

/// The `deploy` entry that closes a followed build.
pub fn outcome_entry(ctx: &EntryContext, end: ReadyState) -> LogEntry {
    let (severity, event) = match end {
        ReadyState::Ready => (Severity::Info, "completed"),
        ReadyState::Canceled => (Severity::Warn, "canceled"),
        _ => (Severity::Error, "failed"),
    };
    let name = ctx.project_name.as_deref().unwrap_or(&ctx.vercel_id);
    let message = format!("Deployment {} of {name} is {end}", ctx.vercel_id);
    ctx.entry(
        crate::clock::now_ms(),
        Tier::Deploy,
        severity,
        event,
        message,
    )
    .with_meta("ready_state", end.as_str())
}

/// The unified entry for one build event (taking its strings rather than copying them).
pub fn build_entry(event: VercelEvent, ctx: &EntryContext) -> LogEntry {
    let severity = match (event.level.as_deref(), event.kind.as_str()) {
        (Some("error"), _) | (_, "fatal") => Severity::Error,
        (Some("warning"), _) | (_, "stderr") => Severity::Warn,
        _ => Severity::Info,
    };
    let tier = match event.kind.as_str() {
        "deployment-state" | "alias-assigned" => Tier::Deploy,
        _ => Tier::Build,
    };
    let mut entry = ctx.entry(
        event.created,
        tier,
        severity,
        event.kind.clone(),
        event.text,
    );
    let meta = &mut entry.metadata;
    meta.vercel_event_id = Some(event.id);
    meta.vercel_type = Some(event.kind);
    meta.created = Some(event.created);
    meta.level = event.level;
    entry
}
