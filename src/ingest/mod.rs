//! The ingest engine: `serve --listen`'s HTTP listener and what it takes in. Vercel's webhooks
//! arrive signed, are acknowledged at once and taken behind a bounded queue: each is checked
//! against the ledger (a repeat is ignored) and against what came before it (late news never
//! moves a deployment back), then starts a follower or moves production through the streaming
//! engine. `/metrics`, `/healthz` and `/readyz` serve Prometheus and the service manager.

pub mod alarm;
pub mod desk;
pub mod drain;
pub mod drain_desk;
pub mod drain_route;
pub mod ledger;
pub mod listener;
pub mod order;
pub mod pagerduty;
pub mod pagerduty_desk;
pub mod routes;
pub mod webhook;

use tokio::sync::mpsc;

use crate::shutdown::{stopped, Shutdown};

/// The next item a desk is to take from `queue`: waited for while running; once `shutdown`
/// comes (`stopping` then turns true), only what is already queued, for it was acknowledged.
async fn next_queued<T>(
    queue: &mut mpsc::Receiver<T>,
    shutdown: &mut Shutdown,
    stopping: &mut bool,
) -> Option<T> {
    if !*stopping {
        tokio::select! {
            item = queue.recv() => return item,
            _ = stopped(shutdown) => *stopping = true,
        }
    }
    queue.try_recv().ok()
}
