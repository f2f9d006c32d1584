//! The breakglass engine inside the dashboard: it publishes what the breakglass screen shows
//! (the kill switch, who is asking, the entries, the audit trail) and answers access requests.
//! The UI never waits on it: requests go in through a channel, answers come back through one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::access::{Breakglass, Denial, Grant, Requester};
use super::audit::AuditRecord;
use super::entry::{BreakglassEntry, Storage};
use super::store::Boundary;
use crate::role::Role;
use crate::shutdown::{stopped, Shutdown};

/// What the breakglass screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakglassView {
    pub enabled: bool,
    pub user: String,
    pub role: Role,
    pub storage: Storage,
    /// What enforces access, said on the screen.
    pub boundary: Boundary,
    /// Without their tokens.
    pub entries: Vec<BreakglassEntry>,
    pub audit: Vec<AuditRecord>,
    /// Why the audit trail is not shown (on Redis it takes the auditor's user).
    pub audit_error: Option<String>,
    /// Why the entries are not shown.
    pub error: Option<String>,
}

/// An access request from the screen.
#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub connection_id: String,
    pub justification: String,
}

/// The answer to a request.
pub type AccessResult = Result<Grant, Denial>;

/// The running engine, as the dashboard sees it: what to show, where requests go, and the
/// answers (one per request, each read once: a granted token is not kept in the snapshot).
pub struct BreakglassHandle {
    pub snapshot: watch::Receiver<BreakglassView>,
    pub commands: mpsc::Sender<AccessRequest>,
    pub answers: mpsc::Receiver<AccessResult>,
}

/// How often entries (time left) and the audit trail are read again.
const REFRESH: Duration = Duration::from_secs(5);

/// Starts the engine for `requester`; it stops with `shutdown`.
pub fn start(
    breakglass: Arc<Breakglass>,
    requester: Requester,
    shutdown: Shutdown,
) -> BreakglassHandle {
    let (view_tx, view) = watch::channel(BreakglassView {
        enabled: breakglass.enabled,
        user: requester.user.clone(),
        role: requester.role,
        storage: breakglass.storage,
        boundary: breakglass.boundary(),
        entries: Vec::new(),
        audit: Vec::new(),
        audit_error: None,
        error: None,
    });
    let (requests, mut requests_rx) = mpsc::channel::<AccessRequest>(8);
    let (results_tx, results) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut shutdown = shutdown;
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = refresh.tick() => {}
                request = requests_rx.recv() => {
                    let Some(request) = request else { return };
                    let result = breakglass
                        .request_access(&request.connection_id, &requester, &request.justification)
                        .await;
                    if results_tx.send(result).await.is_err() {
                        return;
                    }
                }
                _ = stopped(&mut shutdown) => return,
            }
            let (entries, error) = match breakglass.entries().await {
                Ok(entries) => (entries, None),
                Err(err) => (Vec::new(), Some(err.to_string())),
            };
            let (audit, audit_error) = match breakglass.audit(50).await {
                Ok(audit) => (audit, None),
                Err(err) => (Vec::new(), Some(err.to_string())),
            };
            view_tx.send_modify(|view| {
                view.entries = entries;
                view.error = error;
                view.audit = audit;
                view.audit_error = audit_error;
            });
        }
    });
    BreakglassHandle {
        snapshot: view,
        commands: requests,
        answers: results,
    }
}

/// Marks expired entries inactive every `every` until `shutdown` (the always-on worker's job;
/// on Redis the entries' TTLs remove them a week later).
pub async fn sweep_every(breakglass: Arc<Breakglass>, every: Duration, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        match breakglass.sweep(crate::clock::now_ms()).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "expired breakglass entries made inactive"),
            Err(err) => tracing::warn!(error = %err, "could not sweep breakglass entries"),
        }
    }
}
