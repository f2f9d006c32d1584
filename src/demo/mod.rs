//! The demo simulator: a Vercel-compatible HTTP server on 127.0.0.1 that plays realistic
//! deployments in real time (or faster) and can inject faults into the build-log stream.
//!
//! It serves, with the formats of Vercel's REST API:
//! - `GET /v2/user` (with `defaultTeamId`), `GET /v2/teams`, `GET /v2/teams/{id}`, and the
//!   unversioned `GET /teams/{id}` the official CLI 58 asks for
//! - `GET /v6/deployments` (`limit`, `state`, `projectId`, `app`, `target`, `branch`, `sha`,
//!   `since`/`until` on `createdAt`, exclusive; `pagination.next` is the `until` of the next page)
//! - `GET /v13/deployments/{idOrUrl}` (by id or URL hostname)
//! - `PATCH /v12/deployments/{id}/cancel`
//! - `POST /v13/deployments` (a redeploy: `deploymentId`, `name`, `target`, `meta`),
//!   `POST /v10/projects/{id}/promote/{deploymentId}`, `POST /v1/projects/{id}/rollback/{deploymentId}`
//!   and `GET /v9/projects/{idOrName}` (see `actions.rs`); `GET /v6/deployments` also filters on
//!   `meta-KEY=value`
//! - `GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs`: made-up traffic of
//!   ready deployments, with the per-response limit and its delimiter row (see `runtime.rs`)
//! - `GET /v3/deployments/{idOrUrl}/events` and `GET /v3/now/deployments/{idOrUrl}/events` (also the
//!   historical `/v2/...` spellings): `follow`, `since`, `until`, `direction`, `limit`, `format`,
//!   `teamId`/`slug`/`name`/`builds`/`delimiter` accepted and ignored.
//!
//! Unknown paths get `404 not_found`, a wrong method `405 method_unknown`; every response carries
//! `X-RateLimit-Limit/Remaining/Reset`. Every request is recorded ([`SimulatorHandle::requests`]) and authorized per
//! [`SimulatorOptions::token`]; a failed check gets `403 {"error":{"code":"forbidden",...}}`.
//!
//! Events responses: with `follow=1` (or `true`) the body is NDJSON (`application/stream+json`):
//! every produced event matching `since` (per [`SinceMode`]) and `until` (`created <= until`),
//! then the live events as the build produces them, a keepalive line [`KEEPALIVE_LINE`] (an
//! object without `created`) after every idle 5 s / speed (at least 50 ms), and a clean end once
//! the build reached its outcome and everything was sent. Without follow it is a snapshot of the
//! events produced so far: NDJSON when `format=lines` or the Accept header prefers
//! `application/stream+json`, else a JSON array. `direction=backward` (non-follow only) returns the
//! newest first; `limit` caps the count (`-1` or absent: all). `since`/`until` are milliseconds.
//!
//! Events carry `created == date` = the build start + the cumulative `after_ms / speed` (or the
//! previous event's stamp for `same_ms_as_previous`), non-decreasing; `id == serial` = 13-digit
//! ms + 8-digit per-deployment salt + 7-digit index: equal-length decimal strings that sort like
//! the events.
//!
//! Lifetime: the server stops when [`SimulatorHandle::shutdown`] is called on any clone, or when
//! the last clone of the handle is dropped. Open follow streams are then aborted. Note that
//! [`run_demo_loop`] holds a clone, so a server running the demo loop stops only via `shutdown()`.

mod actions;
mod demo_loop;
mod events;
mod history;
mod hooks;
mod model;
mod query;
mod render;
mod runtime;
pub mod scenarios;
pub(crate) mod server;
mod state;
mod stream;
mod timeline;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

pub use demo_loop::run_demo_loop;
pub use history::add_history;
pub use hooks::WebhookFaults;
pub use model::{
    DeploymentSpec, Fault, ReadyState, RecordedRequest, RuntimeTraffic, SimEvent, SimulatorOptions,
    SinceMode,
};
pub use server::STREAM_CONTENT_TYPE;
pub use stream::KEEPALIVE_LINE;

use state::Simulation;

/// Control handle of a running simulator. Cheap to clone; see the module docs for its lifetime.
#[derive(Clone)]
pub struct SimulatorHandle {
    inner: Arc<HandleInner>,
}

struct HandleInner {
    shared: Arc<Simulation>,
    addr: SocketAddr,
    stopped: watch::Receiver<bool>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl SimulatorHandle {
    /// Binds `127.0.0.1:options.port` (0 = a free port) and starts serving. Must be called
    /// within a Tokio runtime; the server and the timelines run on that runtime.
    pub async fn start(options: SimulatorOptions) -> std::io::Result<SimulatorHandle> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Simulation::new(options, tokio::runtime::Handle::current()));
        let app = server::router(shared.clone());
        let (stopped_tx, stopped) = watch::channel(false);
        let mut shutdown = shared.shutdown.subscribe();
        tokio::spawn(async move {
            let signal = async move {
                let _ = shutdown.wait_for(|s| *s).await;
            };
            let serve = axum::serve(listener, app).with_graceful_shutdown(signal);
            if let Err(err) = serve.await {
                tracing::warn!(%err, "simulator server stopped with an error");
            }
            stopped_tx.send_replace(true);
        });
        tracing::info!(%addr, "Vercel simulator listening");
        Ok(SimulatorHandle {
            inner: Arc::new(HandleInner {
                shared,
                addr,
                stopped,
            }),
        })
    }

    fn shared(&self) -> &Arc<Simulation> {
        &self.inner.shared
    }

    /// `"http://127.0.0.1:PORT"`, to use as the Vercel API base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The speed the simulator was started with (sanitized: always finite and positive).
    pub fn speed(&self) -> f64 {
        self.shared().speed
    }

    /// Registers a deployment and starts playing it (QUEUED for `queued_ms` / speed first).
    /// Returns its id (`dpl_...`).
    pub fn add_deployment(&self, spec: DeploymentSpec) -> String {
        let shared = self.shared();
        let dep = shared.insert(&spec);
        let id = dep.id.clone();
        timeline::spawn(shared, dep);
        id
    }

    /// Registers a deployment created `ago_ms` ago that has long reached its outcome, its
    /// whole log there (history for the demo). Returns its id.
    pub fn add_finished(&self, spec: DeploymentSpec, ago_ms: i64) -> String {
        self.shared().insert_finished(&spec, ago_ms).id.clone()
    }

    /// Ids of the known deployments, oldest first.
    pub fn deployment_ids(&self) -> Vec<String> {
        self.shared().all().iter().map(|d| d.id.clone()).collect()
    }

    /// The deployment's URL hostname (`project-xxxxxxxxx-shiplog-demo.vercel.app`).
    pub fn deployment_url(&self, id: &str) -> Option<String> {
        self.shared().get(id).map(|d| d.url.clone())
    }

    /// The deployment's `projectId`.
    pub fn project_id(&self, id: &str) -> Option<String> {
        self.shared().get(id).map(|d| d.project_id.clone())
    }

    pub fn ready_state(&self, id: &str) -> Option<ReadyState> {
        self.shared().get(id).map(|d| d.progress().state)
    }

    /// Every event the deployment has produced so far, exactly as served (flat or wrapped), in
    /// order. Keepalives and fault lines are not events and never appear here.
    pub fn produced_events(&self, id: &str) -> Vec<serde_json::Value> {
        let Some(dep) = self.shared().get(id) else {
            return Vec::new();
        };
        let produced = dep.progress().produced;
        (0..produced)
            .map(|i| {
                let line = render::event_line(&dep, i);
                serde_json::from_slice(&line).unwrap_or(serde_json::Value::Null)
            })
            .collect()
    }

    /// Number of events produced so far (cheaper than `produced_events().len()`).
    pub fn produced_count(&self, id: &str) -> usize {
        self.shared().get(id).map_or(0, |d| d.progress().produced)
    }

    /// Resolves when the deployment reached its outcome (READY, ERROR or CANCELED). Also resolves
    /// for an unknown id, and when the simulator shuts down (the build then never finishes).
    pub async fn wait_finished(&self, id: &str) {
        self.wait_progress(id, |p| p.state.is_terminal()).await;
    }

    /// Resolves when the deployment has produced at least `count` events (or, like
    /// [`SimulatorHandle::wait_finished`], for an unknown id or at shutdown).
    pub async fn wait_produced(&self, id: &str, count: usize) {
        self.wait_progress(id, |p| p.produced >= count).await;
    }

    async fn wait_progress(&self, id: &str, reached: impl FnMut(&state::Progress) -> bool) {
        let Some(dep) = self.shared().get(id) else {
            return;
        };
        let mut progress = dep.progress.subscribe();
        let mut shutdown = self.shared().shutdown.subscribe();
        tokio::select! {
            _ = progress.wait_for(reached) => {}
            _ = shutdown.wait_for(|s| *s) => {}
        }
    }

    /// Cancels a QUEUED/BUILDING deployment, like `PATCH /v12/deployments/{id}/cancel`. Returns
    /// false for an unknown or already finished deployment.
    pub fn cancel(&self, id: &str) -> bool {
        self.shared().get(id).is_some_and(|d| d.cancel())
    }

    /// The next `count` actions (cancel, redeploy, promote, rollback) take effect but their answers
    /// break off, as a timeout would lose them.
    pub fn lose_next_action_answers(&self, count: usize) {
        self.shared()
            .lost_answers
            .store(count, std::sync::atomic::Ordering::SeqCst);
    }

    /// How runtime logs are served from now on (responses already open keep theirs).
    pub fn set_runtime_traffic(&self, mut traffic: RuntimeTraffic) {
        if !(traffic.rows_per_sec.is_finite() && traffic.rows_per_sec > 0.0) {
            traffic.rows_per_sec = RuntimeTraffic::default().rows_per_sec;
        }
        *state::lock(&self.shared().traffic) = traffic;
    }

    /// How webhook deliveries go wrong from now on.
    pub fn set_webhook_faults(&self, faults: WebhookFaults) {
        *state::lock(&self.shared().hooks.faults) = faults;
    }

    /// From now on, `per_mille` of the deployment's runtime rows are failed requests.
    pub fn set_error_rate(&self, id: &str, per_mille: u32) {
        self.set_error_rate_after(id, std::time::Duration::ZERO, per_mille);
    }

    /// From `after` on, `per_mille` of the deployment's runtime rows are failed requests.
    pub fn set_error_rate_after(&self, id: &str, after: std::time::Duration, per_mille: u32) {
        let from = crate::clock::now_ms() + after.as_millis() as i64;
        self.shared().set_error_rate(id, from, per_mille);
    }

    /// The deployment the project's production points at (project id or name).
    pub fn production(&self, project: &str) -> Option<String> {
        let (_, id) = self.shared().project(project)?;
        self.shared().production_of(&id).map(|d| d.id.clone())
    }

    /// The deployment's `meta` entries beyond the git ones (a redeploy's).
    pub fn deployment_meta(&self, id: &str) -> std::collections::BTreeMap<String, String> {
        self.shared()
            .get(id)
            .map(|d| d.meta.clone())
            .unwrap_or_default()
    }

    /// Adds a fault to a deployment at runtime. Returns false for an unknown id.
    pub fn inject_fault(&self, id: &str, fault: Fault) -> bool {
        match self.shared().get(id) {
            Some(dep) => {
                dep.add_fault(fault);
                true
            }
            None => false,
        }
    }

    /// Faults of the deployment that have not fired yet (a partly used `ServerErrorNextRequests`
    /// shows its remaining count). Tests use it to prove a fault really happened.
    pub fn unfired_faults(&self, id: &str) -> Vec<Fault> {
        self.shared()
            .get(id)
            .map(|d| d.unfired_faults())
            .unwrap_or_default()
    }

    /// NDJSON event responses being served right now. A stream counts until the server is done
    /// with it: after it ended, was aborted, or its client went away. Tests use it to prove a
    /// client closed a stalled connection.
    pub fn open_streams(&self) -> usize {
        *self.shared().open_streams.borrow()
    }

    /// Resolves once no events response is being served.
    pub async fn streams_closed(&self) {
        let mut open = self.shared().open_streams.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().requests()
    }

    /// Stops the server: no new connections, open streams are aborted, timelines stop.
    pub fn shutdown(&self) {
        self.shared().shutdown.send_replace(true);
    }

    /// True once `shutdown()` was called (or the last handle dropped).
    pub fn is_shut_down(&self) -> bool {
        self.shared().is_shut_down()
    }

    /// A future that resolves when the server task has finished after a shutdown (the port is
    /// released). It does not hold the handle, so it can be awaited after dropping the last clone.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopped = self.inner.stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    }

    pub(crate) fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shared().shutdown.subscribe()
    }

    /// Forgets the oldest finished deployments beyond `keep` (used by the demo loop).
    pub(crate) fn prune_finished(&self, keep: usize) {
        self.shared().prune_finished(keep);
    }
}
