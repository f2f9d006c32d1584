//! Plays one deployment: QUEUED → BUILDING → events at their scheduled moments → outcome (and,
//! with a `LateTail` fault, the last events some time after the outcome).

use std::sync::Arc;

use tokio::time::Instant;

use crate::clock::now_ms;
use crate::demo::model::ReadyState;
use crate::demo::state::{scaled, SimDeployment, Simulation};

/// Spawns the timeline task of `dep`. It ends when the outcome is reached, the deployment is
/// canceled, or the simulator shuts down.
pub(crate) fn spawn(shared: &Arc<Simulation>, dep: Arc<SimDeployment>) {
    super::hooks::announce(shared, &dep);
    let speed = shared.speed;
    let queued = dep.queued_for;
    let mut shutdown = shared.shutdown.subscribe();
    shared.runtime.spawn(async move {
        let start = Instant::now() + queued;
        let mut progress = dep.progress.subscribe();
        let total = dep.events.len();
        // Events produced before the outcome; a late tail follows it.
        let late_tail = dep.take_late_tail();
        let shown = total - late_tail.map_or(0, |(events, _)| events.min(total));
        // Wait out the queue.
        if queued > std::time::Duration::ZERO {
            tokio::select! {
                _ = tokio::time::sleep_until(start) => {}
                _ = progress.wait_for(|p| p.state.is_terminal()) => return,
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
        let moved = dep.progress.send_if_modified(|p| {
            if p.state.is_terminal() {
                return false;
            }
            p.state = ReadyState::Building;
            if shown == 0 {
                p.state = dep.outcome;
                p.finished_at = Some(now_ms());
            }
            true
        });
        if !moved {
            return;
        }
        let mut next = 0usize;
        while next < shown {
            // Everything due by now is produced in one update.
            let elapsed = Instant::now().saturating_duration_since(start);
            let mut due = next;
            while due < shown && scaled(dep.events.offsets_ms[due] as f64, speed) <= elapsed {
                due += 1;
            }
            if due > next {
                let finished = due == shown;
                let applied = dep.progress.send_if_modified(|p| {
                    if p.state.is_terminal() {
                        return false;
                    }
                    p.produced = due;
                    if finished {
                        p.state = dep.outcome;
                        p.finished_at = Some(now_ms());
                    }
                    true
                });
                if !applied {
                    return; // canceled
                }
                next = due;
                continue;
            }
            let at = start + scaled(dep.events.offsets_ms[next] as f64, speed);
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = progress.wait_for(|p| p.state.is_terminal()) => return,
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
        if let Some((_, delay_ms)) = late_tail {
            tokio::select! {
                _ = tokio::time::sleep(scaled(delay_ms as f64, speed)) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            dep.progress.send_modify(|p| p.produced = total);
        }
    });
}
