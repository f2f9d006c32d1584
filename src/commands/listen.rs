//! `serve --listen`: binds the address before anything starts (a taken port is a clear error,
//! not a worker that half runs), then serves the ingest routes beside the engines.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc::Sender;

use shiplog::alert::runner::Mirrored;
use shiplog::config::Settings;
use shiplog::exit;
use shiplog::ingest::listener::{self, ListenerParts};
use shiplog::log::Logger;
use shiplog::metrics::Metrics;
use shiplog::shutdown::Shutdown;
use shiplog::store::StateStore;
use shiplog::stream::engine::StreamHandle;

use super::error::CommandError;

/// The bound listener, when the settings ask for one.
pub async fn bind(settings: &Settings) -> Result<Option<TcpListener>, CommandError> {
    let Some(addr) = settings.listen else {
        return Ok(None);
    };
    match listener::bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(err) => Err(CommandError::new(
            exit::CONFIG,
            format!("could not listen on {addr}: {err}"),
        )
        .hint("pick a free address with --listen (SHIPLOG_LISTEN), for example 127.0.0.1:8787")),
    }
}

/// The engines the listener hands what it takes to.
pub struct Engines<'a> {
    /// Webhooks start followers and move production.
    pub stream: &'a StreamHandle,
    /// PagerDuty's changes go to the alerting engine, when it runs.
    pub alerts: Option<Sender<Mirrored>>,
}

/// Serves the routes until `shutdown`; says where on stderr. The task ends once what was
/// acknowledged is taken.
pub fn start(
    listener: TcpListener,
    settings: &Settings,
    store: &StateStore,
    logger: &Logger,
    metrics: &Arc<Metrics>,
    engines: Engines<'_>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    let stream = engines.stream;
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |addr| addr.to_string());
    eprintln!(
        "shiplog: listening on http://{addr} (POST /vercel/webhook, /vercel/drain, /pagerduty/webhook, GET /metrics, /healthz, /readyz)"
    );
    for (secrets, what, variable) in [
        (
            &settings.webhook_secrets,
            "webhooks",
            "VERCEL_WEBHOOK_SECRET",
        ),
        (&settings.drain_secrets, "drains", "VERCEL_DRAIN_SECRET"),
    ] {
        if secrets.is_empty() {
            eprintln!("shiplog: {what} are answered 503 until {variable} is set (the secret Vercel shows when the {} is created)", what.trim_end_matches('s'));
        }
    }
    let parts = ListenerParts {
        webhook_secrets: settings.webhook_secrets.clone(),
        store: store.clone(),
        logger: logger.clone(),
        metrics: metrics.clone(),
        stream: stream.commands.clone(),
        drain_secrets: settings.drain_secrets.clone(),
        drain_verify: settings.drain_verify.clone(),
        engine: stream.snapshot.clone(),
        project: settings.project.clone(),
        pagerduty_secrets: settings.pagerduty_webhook_secrets.clone(),
        alerts: engines.alerts,
        pagerduty_api: settings.pagerduty_api.clone(),
    };
    tokio::spawn(listener::serve(listener, parts, shutdown))
}
