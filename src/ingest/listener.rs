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
use tokio::sync::{mpsc, Semaphore};

use super::alarm::SignatureAlarm;
use super::desk::WebhookDesk;
use super::routes::{router, Ingest, Peer};
use crate::ingest::signature::SigningSecrets;
use crate::log::Logger;
use crate::metrics::Metrics;
use crate::shutdown::{stopped, Shutdown};
use crate::store::StateStore;
use crate::stream::engine::StreamCommand;

/// Connections served at once; more wait in the kernel's backlog.
const CONNECTIONS: usize = 256;
/// A request's headers must arrive within this long.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries acknowledged and not yet taken; past it, senders are asked to retry.
pub const QUEUE: usize = 1024;

/// What the listener needs.
pub struct ListenerParts {
    pub webhook_secrets: SigningSecrets,
    pub store: StateStore,
    pub logger: Logger,
    pub metrics: Arc<Metrics>,
    /// The streaming engine's commands: webhooks start followers and move production.
    pub stream: mpsc::Sender<StreamCommand>,
}

/// Binds `addr` (so that a wrong or taken address fails before anything starts).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves on `listener` until `shutdown`, with the webhook desk behind it.
pub async fn serve(listener: TcpListener, parts: ListenerParts, shutdown: Shutdown) {
    let (queue, deliveries) = mpsc::channel(QUEUE);
    let desk = WebhookDesk::new(
        parts.store.clone(),
        parts.logger.clone(),
        parts.metrics.clone(),
        parts.stream,
    );
    tokio::spawn(desk.run(deliveries, shutdown.clone()));
    let ingest = Arc::new(Ingest {
        webhook_secrets: parts.webhook_secrets,
        queue,
        store: parts.store,
        metrics: parts.metrics,
        alarm: SignatureAlarm::new(parts.logger),
    });
    accept(listener, router(ingest), shutdown).await;
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
