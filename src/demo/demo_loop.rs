//! Demo mode: keep the simulator busy with the built-in scenarios.

use std::time::Duration;

use crate::demo::model::Fault;
use crate::demo::scenarios;
use crate::demo::state::scaled;
use crate::demo::SimulatorHandle;

/// A new deployment is considered every this long (real time at speed 1.0).
const EVERY_MS: f64 = 6_000.0;
/// At most this many deployments queued or building at once.
const MAX_ACTIVE: usize = 3;
/// Finished deployments kept (older ones are forgotten so a long demo stays small).
const KEEP_FINISHED: usize = 40;

const COMMIT_MESSAGES: [&str; 6] = [
    "feat(cart): persist cart across sessions",
    "fix(search): debounce the query input",
    "perf: lazy-load product images",
    "feat(checkout): show delivery estimate",
    "chore: upgrade to Next.js 15.3",
    "fix(i18n): fall back to en for missing keys",
];

/// How long after it goes live the demo's regressing deployment starts failing.
const REGRESSION_AFTER_MS: f64 = 60_000.0;
/// How many of its requests then fail (per mille).
const REGRESSED_ERRORS_PER_MILLE: u32 = 350;

/// The demo's story: the first production deployment it adds goes live, and a minute later a
/// third of its requests fail, so a visitor sees `deploy_regression` fire and can roll back
/// from the alert. (Later builds of that project are previews, so production stays with it.)
async fn regress_after_promotion(handle: SimulatorHandle, id: String) {
    handle.wait_finished(&id).await;
    let after = scaled(REGRESSION_AFTER_MS, handle.speed());
    handle.set_error_rate_after(&id, after, REGRESSED_ERRORS_PER_MILLE);
}

/// Demo mode: adds the built-in scenarios in a loop (one every ~6 s / speed, at most 3 queued or
/// building at once) until the simulator shuts down. The first deployment is added immediately,
/// the second after ~1.5 s / speed.
/// Every fourth deployment ends its stream early once, part-way through the build (a
/// `CleanEndBefore` fault), so the demo also shows a follower resuming. The first production
/// deployment regresses a minute after it goes live (see `regress_after_promotion`). Holds `handle` (and so
/// keeps the server alive) until `shutdown()` is called.
pub async fn run_demo_loop(handle: SimulatorHandle) {
    let every = scaled(EVERY_MS, handle.speed()).max(Duration::from_millis(10));
    let builtin = scenarios::builtin();
    if builtin.is_empty() {
        return;
    }
    let mut shutdown = handle.shutdown_receiver();
    let mut added = 0usize;
    // The project whose production regresses (see `regress_after_promotion`).
    let mut regressed: Option<String> = None;
    loop {
        if handle.is_shut_down() {
            return;
        }
        let active = handle
            .deployment_ids()
            .iter()
            .filter(|id| handle.ready_state(id).is_some_and(|s| !s.is_terminal()))
            .count();
        if active < MAX_ACTIVE {
            let mut spec = builtin[added % builtin.len()].clone();
            let round = added / builtin.len();
            if spec.project == "storefront" {
                spec.commit_message =
                    Some(COMMIT_MESSAGES[round % COMMIT_MESSAGES.len()].to_string());
            }
            if added % 4 == 3 && spec.events.len() > 4 {
                spec.faults.push(Fault::CleanEndBefore {
                    event: spec.events.len() / 2,
                });
            }
            let production = spec.target.as_deref() == Some("production");
            if production && regressed.as_deref() == Some(spec.project.as_str()) {
                // The regressed deployment stays production until someone rolls it back.
                spec.target = None;
            }
            let first_production = production && regressed.is_none();
            let project = spec.project.clone();
            let id = handle.add_deployment(spec);
            tracing::debug!(%id, "demo deployment added");
            if first_production {
                regressed = Some(project);
                tokio::spawn(regress_after_promotion(handle.clone(), id.clone()));
            }
            added += 1;
            handle.prune_finished(KEEP_FINISHED);
        }
        // The first two arrive close together so that a newcomer sees more than one at once.
        let pause = if added < 2 { every / 4 } else { every };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}
