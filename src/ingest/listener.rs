//! The HTTP listener: accepts connections (a bounded number at once), gives each request's
//! headers a deadline (a client that sends them a byte at a time is cut off), and serves the
//! routes until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::alarm::SignatureAlarm;
use super::desk::WebhookDesk;
use super::drain_desk::DrainDesk;
use super::drain_route::{DRAIN_DECODED_LIMIT, DRAIN_QUEUE_KIB, DRAIN_READS};
use super::pagerduty_desk::{PagerDutyApi, PagerDutyDesk};
use super::routes::{router, Ingest, Peer};
use crate::alert::runner::Mirrored;
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::shutdown::{stopped, Shutdown};
use crate::store::StateStore;
use crate::stream::engine::{EngineSnapshot, StreamCommand};
use crate::vercel::signature::SigningSecrets;

/// Connections served at once; more wait in the kernel's backlog.
const CONNECTIONS: usize = 256;
/// A request's headers must arrive within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries (and drained batches) acknowledged and not yet taken; past it, senders are asked
/// to retry.
pub const QUEUE: usize = 1024;

/// What the listener needs.
pub struct ListenerParts {
    pub webhook_secrets: SigningSecrets,
    pub drain_secrets: SigningSecrets,
    /// `VERCEL_DRAIN_VERIFY`: answered in `x-vercel-verify`.
    pub drain_verify: Option<Secret>,
    pub store: StateStore,
    pub logger: Logger,
    pub metrics: Arc<Metrics>,
    /// The streaming engine's commands: webhooks start followers and move production.
    pub stream: mpsc::Sender<StreamCommand>,
    /// What the streaming engine follows (a drained build whose log it reads is not taken
    /// twice), and the project it watches.
    pub engine: watch::Receiver<EngineSnapshot>,
    pub project: Option<String>,
    /// `PAGERDUTY_WEBHOOK_SECRET`, and where PagerDuty's changes go (the alerting engine).
    pub pagerduty_secrets: Vec<Secret>,
    pub alerts: Option<mpsc::Sender<Mirrored>>,
    /// PagerDuty's REST API, for incidents whose webhooks carry no key.
    pub pagerduty_api: Option<PagerDutyApi>,
}

/// Binds `addr` (so that a wrong or taken address fails before anything starts).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves on `listener` until `shutdown`, with the webhook and drain desks behind it; ends
/// once the desks have taken what was acknowledged.
pub async fn serve(listener: TcpListener, parts: ListenerParts, shutdown: Shutdown) {
    let (queue, deliveries) = mpsc::channel(QUEUE);
    let (drain_queue, batches) = mpsc::channel(QUEUE);
    let drains = DrainDesk::new(
        parts.store.clone(),
        parts.logger.clone(),
        parts.metrics.clone(),
        parts.engine,
        parts.project,
        DRAIN_DECODED_LIMIT,
    );
    let drains = tokio::spawn(drains.run(batches, shutdown.clone()));
    let desk = WebhookDesk::new(
        parts.store.clone(),
        parts.logger.clone(),
        parts.metrics.clone(),
        parts.stream,
    );
    let webhooks = tokio::spawn(desk.run(deliveries, shutdown.clone()));
    let (pagerduty_queue, incidents) = mpsc::channel(QUEUE);
    let pagerduty = PagerDutyDesk::new(
        parts.store.clone(),
        parts.logger.clone(),
        parts.metrics.clone(),
        parts.alerts,
        parts.pagerduty_api,
    );
    let pagerduty = tokio::spawn(pagerduty.run(incidents, shutdown.clone()));
    let ingest = Arc::new(Ingest {
        webhook_secrets: parts.webhook_secrets,
        queue,
        drain_secrets: parts.drain_secrets,
        drain_verify: parts.drain_verify,
        drain_queue,
        drain_room: Arc::new(Semaphore::new(DRAIN_QUEUE_KIB)),
        drain_reads: Arc::new(Semaphore::new(DRAIN_READS)),
        pagerduty_secrets: parts.pagerduty_secrets,
        pagerduty_queue,
        store: parts.store,
        metrics: parts.metrics,
        alarm: SignatureAlarm::new(parts.logger),
    });
    tokio::spawn(sweep_ledgers(ingest.store.clone(), shutdown.clone()));
    accept(listener, router(ingest), shutdown).await;
    // What was acknowledged is taken before the listener counts as stopped.
    let _ = tokio::join!(webhooks, drains, pagerduty);
}

async fn accept(listener: TcpListener, app: Router, mut shutdown: Shutdown) {
    let connections = Arc::new(Semaphore::new(CONNECTIONS));
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit,
            _ = stopped(&mut shutdown) => return,
        };
        let Ok(permit) = permit else { return };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut shutdown) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(%err, "the listener could not accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone().layer(Extension(Peer(peer))));
        tokio::spawn(async move {
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(%err, %peer, "a listener connection ended badly");
            }
            drop(permit);
        });
    }
}

/// How often expired ledger entries kept in files are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(15 * 60);

/// Every delivery and batch leaves a ledger entry for 48 hours: kept in files (the embedded
/// store, or Redis's fallback), they are dropped on a timer rather than piling up until a
/// restart.
async fn sweep_ledgers(store: StateStore, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => store.sweep_expired().await,
            _ = stopped(&mut shutdown) => return,
        }
    }
}
