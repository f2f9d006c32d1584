//! The last few hours of a team's day, for the demo to open on: a dozen deployments across
//! projects, production and preview, ready, failed and canceled, each with its whole log, by
//! three people; the last hour's two failures alert when the dashboard opens. Live builds then
//! keep arriving (`demo_loop`).

use crate::demo::model::ReadyState;
use crate::demo::scenarios;
use crate::demo::SimulatorHandle;

/// One past deployment: minutes ago, built-in scenario, branch, commit message, production or
/// preview, author, and whether a failing scenario was fixed (it then ends READY).
type Past = (
    i64,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static str,
    bool,
);

/// Oldest first.
#[rustfmt::skip]
const DAY: [Past; 13] = [
    (235, "nextjs-success", "main", "feat(search): instant results", true, "ana", false),
    (214, "astro-docs", "main", "docs: rate limits and retries", true, "chidi", false),
    (190, "failing-build", "feat/discount-codes", "feat(checkout): discount codes", false, "ben", false),
    (171, "leaked-secret", "main", "feat(auth): rotate signing keys", true, "ana", false),
    (150, "nextjs-success", "feat/wishlist", "feat(wishlist): save for later", false, "ben", false),
    (128, "canceled", "chore/bump-deps", "chore: bump dependencies", false, "chidi", false),
    (104, "nextjs-success", "main", "perf: lazy-load product images", true, "ana", false),
    (86, "astro-docs", "docs/streaming-guide", "docs: the log streaming guide", false, "chidi", false),
    (63, "failing-build", "main", "fix(checkout): round totals", true, "ben", false),
    (52, "failing-build", "feat/gift-cards", "feat(checkout): gift cards", false, "ana", false),
    (41, "failing-build", "main", "fix(checkout): use cart.total", true, "ben", true),
    (22, "leaked-secret", "feat/rate-limits", "feat(gateway): per-key rate limits", false, "ana", false),
    (9, "nextjs-success", "main", "fix(i18n): fall back to en", true, "chidi", false),
];

/// Adds the day's deployments to the simulator.
pub fn add_history(handle: &SimulatorHandle) {
    for &(minutes_ago, scenario, branch, message, production, author, fixed) in &DAY {
        let Some(mut spec) = scenarios::by_name(scenario) else {
            continue;
        };
        spec.branch = Some(branch.to_owned());
        spec.commit_message = Some(message.to_owned());
        spec.target = production.then(|| "production".to_owned());
        if fixed {
            // Its error lines gone, ready in the end.
            spec.events.retain(|e| e.level.as_deref() != Some("error"));
            spec.outcome = ReadyState::Ready;
        }
        for key in ["githubCommitAuthorLogin", "githubCommitAuthorName"] {
            spec.meta.insert(key.to_owned(), author.to_owned());
        }
        handle.add_finished(spec, minutes_ago * 60_000);
    }
}
