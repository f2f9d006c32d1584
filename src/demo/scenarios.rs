//! Built-in demo scenarios (embedded JSON under `assets/scenarios/`) and synthetic builds.
//!
//! # Scenario file format
//!
//! ```json
//! {
//!   "project": "storefront",            // required: project (and deployment) name
//!   "branch": "main",                   // optional, default "main"
//!   "commit_message": "feat: ...",      // optional
//!   "target": "production",             // optional: "production" | "staging" | null (preview)
//!   "outcome": "READY",                 // optional: "READY" (default) | "ERROR" | "CANCELED"
//!   "queued_ms": 1800,                  // optional, default 0: time spent QUEUED
//!   "wrapped_shape": false,             // optional, default false: emit the `payload` shape
//!   "events": [
//!     {"ms": 120, "text": "Installing dependencies..."},
//!     {"ms": 0, "same_ms": true, "type": "stderr", "level": "error", "text": "..."}
//!   ]
//! }
//! ```
//!
//! Event fields: `ms` = delay after the previous event (default 0), `same_ms` = stamp like the
//! previous event (default false), `type` = Vercel event type (default `"stdout"`), `level` =
//! `"error"` | `"warning"` (optional), `text` (default empty). The top-level `_format` key is a
//! free-text comment; any other unknown key is rejected so that typos do not go unnoticed.

use serde::Deserialize;

use crate::demo::model::{DeploymentSpec, ReadyState, SimEvent};

/// Names of the built-in scenarios, in the order [`builtin`] returns them.
pub const NAMES: [&str; 5] = [
    "nextjs-success",
    "failing-build",
    "leaked-secret",
    "astro-docs",
    "canceled",
];

const SOURCES: [&str; 5] = [
    include_str!("../../assets/scenarios/nextjs-success.json"),
    include_str!("../../assets/scenarios/failing-build.json"),
    include_str!("../../assets/scenarios/leaked-secret.json"),
    include_str!("../../assets/scenarios/astro-docs.json"),
    include_str!("../../assets/scenarios/canceled.json"),
];

/// A scenario file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid scenario: {0}")]
pub struct ScenarioError(#[from] serde_json::Error);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    project: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    commit_message: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default = "ready")]
    outcome: ReadyState,
    #[serde(default)]
    queued_ms: u64,
    #[serde(default)]
    wrapped_shape: bool,
    events: Vec<ScenarioEvent>,
    #[serde(rename = "_format", default)]
    _format: Option<String>,
}

fn ready() -> ReadyState {
    ReadyState::Ready
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioEvent {
    #[serde(default)]
    ms: u64,
    #[serde(default)]
    same_ms: bool,
    #[serde(rename = "type", default = "stdout")]
    kind: String,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    text: String,
}

fn stdout() -> String {
    "stdout".to_string()
}

/// Parses a scenario file (format above).
pub fn parse(json: &str) -> Result<DeploymentSpec, ScenarioError> {
    let file: ScenarioFile = serde_json::from_str(json)?;
    Ok(DeploymentSpec {
        project: file.project,
        branch: file.branch,
        commit_message: file.commit_message,
        target: file.target,
        outcome: file.outcome,
        events: file
            .events
            .into_iter()
            .map(|e| SimEvent {
                after_ms: e.ms,
                same_ms_as_previous: e.same_ms,
                kind: e.kind,
                text: e.text,
                level: e.level,
            })
            .collect(),
        wrapped_shape: file.wrapped_shape,
        queued_ms: file.queued_ms,
        ..DeploymentSpec::default()
    })
}

/// The built-in scenario called `name` (see [`NAMES`]).
pub fn by_name(name: &str) -> Option<DeploymentSpec> {
    NAMES
        .iter()
        .position(|n| *n == name)
        .map(|i| parse(SOURCES[i]).unwrap_or_else(|e| panic!("built-in scenario {name}: {e}")))
}

/// All built-in scenarios, in [`NAMES`] order: a Next.js success, a failing TypeScript build, a
/// build that leaks (fake) secrets, an Astro docs build in the older wrapped shape, and a build
/// canceled part-way.
pub fn builtin() -> Vec<DeploymentSpec> {
    NAMES.iter().filter_map(|n| by_name(n)).collect()
}

/// A build of `events` stdout lines with zero delay (all stamped in the build's first
/// millisecond), outcome READY: for benchmarks of 10k..1M events. Every 10th line carries ANSI
/// colour and a multi-byte character, as real builds do.
pub fn synthetic(events: usize) -> DeploymentSpec {
    synthetic_over(events, 0)
}

/// Like [`synthetic`], the events spread evenly over `span_ms` of build time.
pub fn synthetic_over(count: usize, span_ms: u64) -> DeploymentSpec {
    // Cumulative offsets rounded down, so that the whole span is used whatever the count.
    let offset = |i: usize| span_ms.saturating_mul(i as u64) / count.max(1) as u64;
    let events = (0..count)
        .map(|i| {
            let text = if i % 10 == 9 {
                format!(
                    "\u{1b}[32m✓\u{1b}[39m Compiled chunk {i} (./src/routes/page-{}.tsx) in {}ms",
                    i % 997,
                    i % 17
                )
            } else {
                format!(
                    "[build] transformed module {i:07} ./src/lib/module-{}.ts ({} kB)",
                    i % 997,
                    (i % 89) + 1
                )
            };
            SimEvent {
                after_ms: offset(i + 1) - offset(i),
                same_ms_as_previous: false,
                kind: "stdout".to_string(),
                text,
                level: None,
            }
        })
        .collect();
    DeploymentSpec {
        project: "synthetic".to_string(),
        branch: Some("main".to_string()),
        commit_message: Some("synthetic benchmark build".to_string()),
        target: None,
        outcome: ReadyState::Ready,
        events,
        ..DeploymentSpec::default()
    }
}
