//! The unified entries a followed deployment produces.

use std::sync::Arc;

use super::identity::stable_deployment_id;
use crate::log::{LogEntry, Severity, Tier};
use crate::store::StateStore;
use crate::vercel::{Deployment, GitMeta, ReadyState, VercelEvent};

/// Everything an entry of this deployment carries.
#[derive(Debug, Clone)]
pub struct EntryContext {
    /// The stable id, `vercel-{buildId}-{shortULID}`.
    pub deployment_id: Arc<str>,
    /// Vercel's deployment id (`dpl_...`), also the entry's `build_id`.
    pub vercel_id: Arc<str>,
    pub project_id: Option<Arc<str>>,
    pub project_name: Option<Arc<str>>,
    /// Branch and short commit (`main 3f2a1c9`), from the deployment's git metadata.
    pub git: Option<Arc<str>>,
    /// A finished build read again to be shown (see `Metadata::replayed`).
    pub replayed: bool,
}

/// `main 3f2a1c9`: a deployment's branch and short commit, on one line.
pub fn git_of(git: GitMeta<'_>) -> Option<String> {
    let parts: Vec<_> = [git.branch, git.short_sha()]
        .into_iter()
        .flatten()
        .map(crate::printable::one_line)
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

impl EntryContext {
    /// The context of `deployment`'s entries, its stable id taken from (or made in) `store`.
    pub async fn of(store: &StateStore, deployment: &Deployment, replayed: bool) -> Self {
        EntryContext {
            deployment_id: stable_deployment_id(store, &deployment.id).await.into(),
            vercel_id: deployment.id.as_str().into(),
            project_id: deployment.project_id.as_deref().map(Arc::from),
            project_name: deployment.name.as_deref().map(Arc::from),
            git: git_of(deployment.git()).map(Arc::from),
            replayed,
        }
    }

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
        entry.metadata.replayed = self.replayed;
        entry
    }
}

/// The line that says why a build failed: the first error line, or a later one of the first
/// few that names the error (`Type error: ...` after a bare `Failed to compile.`).
#[derive(Debug, Default)]
pub struct FirstError {
    line: Option<String>,
    names_it: bool,
    seen: u8,
}

/// Error lines looked at for one that names the error.
const ERROR_LINES_LOOKED_AT: u8 = 20;
/// How much of that line is kept.
const FIRST_ERROR_CHARS: usize = 160;

impl FirstError {
    /// An error line of the build.
    pub fn offer(&mut self, text: &str) {
        if self.names_it || self.seen >= ERROR_LINES_LOOKED_AT {
            return;
        }
        let plain = crate::printable::for_matching(text);
        let plain = plain.trim();
        if plain.is_empty() {
            return;
        }
        self.seen += 1;
        let lower = plain.to_ascii_lowercase();
        let names_it = ["error:", "err!", "not found", "cannot find", "exception"]
            .iter()
            .any(|word| lower.contains(word));
        if self.line.is_none() || names_it {
            self.line = Some(plain.chars().take(FIRST_ERROR_CHARS).collect());
            self.names_it = names_it;
        }
    }

    pub fn line(&self) -> Option<&str> {
        self.line.as_deref()
    }
}

/// The `deploy` entry that closes a followed build. A failure names what an engineer needs at
/// a glance, first: `checkout-web main 3f2a1c9: Type error: ... · Deployment dpl_... is ERROR`.
pub fn outcome_entry(ctx: &EntryContext, end: ReadyState, first_error: Option<&str>) -> LogEntry {
    let (severity, event) = match end {
        ReadyState::Ready => (Severity::Info, "completed"),
        ReadyState::Canceled => (Severity::Warn, "canceled"),
        _ => (Severity::Error, "failed"),
    };
    let name = ctx.project_name.as_deref().unwrap_or(&ctx.vercel_id);
    let message = match (end, first_error) {
        (ReadyState::Error, Some(error)) => {
            let place = match &ctx.git {
                Some(git) => format!("{name} {git}"),
                None => name.to_owned(),
            };
            format!("{place}: {error} · Deployment {} is {end}", ctx.vercel_id)
        }
        _ => format!("Deployment {} of {name} is {end}", ctx.vercel_id),
    };
    let entry = ctx
        .entry(
            crate::clock::now_ms(),
            Tier::Deploy,
            severity,
            event,
            message,
        )
        .with_meta("ready_state", end.as_str());
    match first_error {
        Some(error) => entry.with_meta("first_error", error),
        None => entry,
    }
}

/// The facts about a deployment an alert on its outcome names (target, branch, commit, its
/// address and its page in Vercel), added to the outcome's entry: what silences match and
/// PagerDuty shows.
pub fn with_deployment_facts(mut entry: LogEntry, deployment: &Deployment) -> LogEntry {
    let git = deployment.git();
    let https = |url: &str| {
        if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("https://{url}")
        }
    };
    let facts = [
        (
            "target",
            Some(deployment.target.as_deref().unwrap_or("preview").to_owned()),
        ),
        ("branch", git.branch.map(str::to_owned)),
        ("commit", git.short_sha().map(str::to_owned)),
        ("url", deployment.url.as_deref().map(str::to_owned)),
        (
            "inspector_url",
            deployment.inspector_url.as_deref().map(https),
        ),
    ];
    for (key, value) in facts {
        if let Some(value) = value {
            entry = entry.with_meta(key, value);
        }
    }
    entry
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_project_branch_commit_and_the_error_first() {
        let mut first = FirstError::default();
        for line in [
            "\u{1b}[31mFailed to compile.\u{1b}[39m",
            "",
            "./app/checkout/page.tsx:42:27",
            "Type error: Property 'id' does not exist on type 'Cart'.",
            "Error: Command \"npm run build\" exited with 1",
        ] {
            first.offer(line);
        }
        let meta = serde_json::json!({
            "githubCommitRef": "main",
            "githubCommitSha": "3f2a1c9d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49"
        });
        let ctx = EntryContext {
            deployment_id: "vercel-dpl_x-01J".into(),
            vercel_id: "dpl_x".into(),
            project_id: None,
            project_name: Some("checkout-web".into()),
            git: meta
                .as_object()
                .map(GitMeta::of)
                .and_then(git_of)
                .map(Arc::from),
            replayed: false,
        };
        let failed = outcome_entry(&ctx, ReadyState::Error, first.line());
        assert_eq!(
            failed.message,
            "checkout-web main 3f2a1c9: Type error: Property 'id' does not exist on type 'Cart'. · Deployment dpl_x is ERROR"
        );
        let ready = outcome_entry(&ctx, ReadyState::Ready, None);
        assert_eq!(ready.message, "Deployment dpl_x of checkout-web is READY");
        let mut bare = FirstError::default();
        bare.offer("\u{1b}[31mFailed to compile.\u{1b}[39m");
        assert_eq!(bare.line(), Some("Failed to compile."));
    }
}
