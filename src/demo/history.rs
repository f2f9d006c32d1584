//! The last few hours of a team's day, for the demo to open on: a dozen deployments across
//! projects, production and preview, ready, failed and canceled, each with its whole log, by
//! three people; the last hour's two failures alert when the dashboard opens. Live builds then
//! keep arriving (`demo_loop`).

use crate::demo::model::{DeploymentSpec, ReadyState};
use crate::demo::scenarios;
use crate::demo::SimulatorHandle;

/// One past deployment: how long ago (minutes), which built-in scenario, and what changes.
struct Past {
    minutes_ago: i64,
    scenario: &'static str,
    branch: &'static str,
    message: &'static str,
    production: bool,
    author: &'static str,
    outcome: Option<ReadyState>,
}

const fn past(
    minutes_ago: i64,
    scenario: &'static str,
    branch: &'static str,
    message: &'static str,
    production: bool,
    author: &'static str,
) -> Past {
    Past {
        minutes_ago,
        scenario,
        branch,
        message,
        production,
        author,
        outcome: None,
    }
}

/// Oldest first.
const DAY: [Past; 13] = [
    past(
        235,
        "nextjs-success",
        "main",
        "feat(search): instant results",
        true,
        "ana",
    ),
    past(
        214,
        "astro-docs",
        "main",
        "docs: rate limits and retries",
        true,
        "chidi",
    ),
    past(
        190,
        "failing-build",
        "feat/discount-codes",
        "feat(checkout): discount codes",
        false,
        "ben",
    ),
    past(
        171,
        "leaked-secret",
        "main",
        "feat(auth): rotate signing keys",
        true,
        "ana",
    ),
    past(
        150,
        "nextjs-success",
        "feat/wishlist",
        "feat(wishlist): save for later",
        false,
        "ben",
    ),
    past(
        128,
        "canceled",
        "chore/bump-deps",
        "chore: bump dependencies",
        false,
        "chidi",
    ),
    past(
        104,
        "nextjs-success",
        "main",
        "perf: lazy-load product images",
        true,
        "ana",
    ),
    past(
        86,
        "astro-docs",
        "docs/streaming-guide",
        "docs: the log streaming guide",
        false,
        "chidi",
    ),
    past(
        63,
        "failing-build",
        "main",
        "fix(checkout): round totals",
        true,
        "ben",
    ),
    past(
        52,
        "failing-build",
        "feat/gift-cards",
        "feat(checkout): gift cards",
        false,
        "ana",
    ),
    Past {
        outcome: Some(ReadyState::Ready),
        ..past(
            41,
            "failing-build",
            "main",
            "fix(checkout): use cart.total",
            true,
            "ben",
        )
    },
    past(
        22,
        "leaked-secret",
        "feat/rate-limits",
        "feat(gateway): per-key rate limits",
        false,
        "ana",
    ),
    past(
        9,
        "nextjs-success",
        "main",
        "fix(i18n): fall back to en",
        true,
        "chidi",
    ),
];

/// Adds the day's deployments to the simulator.
pub fn add_history(handle: &SimulatorHandle) {
    for day in &DAY {
        let Some(mut spec) = scenarios::by_name(day.scenario) else {
            continue;
        };
        spec.branch = Some(day.branch.to_owned());
        spec.commit_message = Some(day.message.to_owned());
        spec.target = day.production.then(|| "production".to_owned());
        if let Some(outcome) = day.outcome {
            spec = fixed(spec, outcome);
        }
        spec.meta
            .insert("githubCommitAuthorLogin".to_owned(), day.author.to_owned());
        spec.meta
            .insert("githubCommitAuthorName".to_owned(), day.author.to_owned());
        handle.add_finished(spec, day.minutes_ago * 60_000);
    }
}

/// The failing build, fixed: its error lines gone, ready in the end.
fn fixed(mut spec: DeploymentSpec, outcome: ReadyState) -> DeploymentSpec {
    spec.events.retain(|e| e.level.as_deref() != Some("error"));
    spec.outcome = outcome;
    spec
}
