//! Runtime logs of ready deployments, served as Vercel serves them
//! (`GET /v1/projects/{projectId}/deployments/{deploymentId}/runtime-logs`): live rows of
//! steady, made-up traffic (paths, methods, status codes, durations, occasional errors), a
//! limit per response that ends with a `delimiter` row whose `rowId` is empty, and, as faults,
//! responses that break off.
//!
//! Row `i` of a deployment happens at `ready + i / rows_per_sec` and is made from a hash of the
//! deployment's id and `i`, so a row is the same (id, content) on every connection. A new
//! response starts at the next row to come, or `replay_ms` earlier (whether Vercel replays
//! recent rows is not documented; both can be played).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::model::RuntimeTraffic;
use super::server::{deployment_not_found, AppState, STREAM_CONTENT_TYPE};
use super::state::{lock, SimDeployment, Simulation};
use crate::clock::now_ms;
use crate::vercel::ReadyState;

/// Error rate of a deployment nobody set one for: one request in two hundred.
const DEFAULT_ERRORS_PER_MILLE: u32 = 5;

pub(super) async fn runtime_logs(
    State(shared): State<AppState>,
    Path((project_id, deployment_id)): Path<(String, String)>,
) -> Response {
    let Some(dep) = shared
        .get(&deployment_id)
        .filter(|d| d.project_id == project_id)
    else {
        return deployment_not_found(&deployment_id);
    };
    let traffic = lock(&shared.traffic).clone();
    let body = futures_util::stream::unfold(
        Rows::new(shared.clone(), dep, traffic),
        |mut rows| async move { rows.next_chunk().await.map(|chunk| (chunk, rows)) },
    );
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(STREAM_CONTENT_TYPE),
    );
    response.into_response()
}

/// One response's rows.
struct Rows {
    shared: Arc<Simulation>,
    dep: Arc<SimDeployment>,
    traffic: RuntimeTraffic,
    /// The next row's index; `None` until the deployment is ready.
    next: Option<u64>,
    sent: usize,
    done: bool,
}

impl Rows {
    fn new(shared: Arc<Simulation>, dep: Arc<SimDeployment>, traffic: RuntimeTraffic) -> Self {
        Rows {
            shared,
            dep,
            traffic,
            next: None,
            sent: 0,
            done: false,
        }
    }

    fn gap_ms(&self) -> f64 {
        1000.0 / self.traffic.rows_per_sec.clamp(0.01, 100_000.0)
    }

    fn time_of(&self, ready_at: i64, index: u64) -> i64 {
        ready_at + (index as f64 * self.gap_ms()) as i64
    }

    /// The rows due now (waiting for the next one when none is), the limit row, or the end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, io::Error>> {
        if self.done {
            return None;
        }
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            if *shutdown.borrow_and_update() {
                return None;
            }
            let progress = self.dep.progress();
            let ready_at = match (progress.state, progress.finished_at) {
                (ReadyState::Ready, Some(at)) => at,
                _ => {
                    // Not serving yet: wait for the build.
                    let mut watch = self.dep.progress.subscribe();
                    tokio::select! {
                        _ = watch.changed() => {}
                        _ = shutdown.changed() => return None,
                    }
                    continue;
                }
            };
            let now = now_ms();
            let gap = self.gap_ms();
            let replay_ms = self.traffic.replay_ms as f64;
            let next = *self.next.get_or_insert_with(|| {
                let live = ((now - ready_at).max(0) as f64 / gap).ceil() as u64;
                live.saturating_sub((replay_ms / gap) as u64)
            });
            let due = self.time_of(ready_at, next);
            if due > now {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis((due - now) as u64)) => {}
                    _ = shutdown.changed() => return None,
                }
                continue;
            }
            let mut chunk = String::new();
            let mut index = next;
            while self.time_of(ready_at, index) <= now {
                if self.sent == self.traffic.limit {
                    chunk.push_str(&limit_row(self.traffic.limit, now));
                    self.done = true;
                    break;
                }
                if self.traffic.abort_after == Some(self.sent) {
                    return Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "runtime logs response broken off",
                    )));
                }
                chunk.push_str(&self.row(index, self.time_of(ready_at, index)));
                self.sent += 1;
                index += 1;
            }
            self.next = Some(index);
            return Some(Ok(Bytes::from(chunk)));
        }
    }

    fn row(&self, index: u64, at: i64) -> String {
        let per_mille = self.shared.errors_per_mille(&self.dep.id, at);
        let line = traffic_row(&self.dep, index, at, per_mille);
        let mut text = line.to_string();
        text.push('\n');
        text
    }
}

fn limit_row(limit: usize, at: i64) -> String {
    let row = json!({
        "level": "error", "message": format!("Exceeded runtime logs limit {limit} log lines"),
        "rowId": "", "source": "delimiter", "timestampInMs": at, "domain": "",
        "messageTruncated": false, "requestMethod": "", "requestPath": "", "responseStatusCode": 0,
    });
    format!("{row}\n")
}

/// Row `index` of the deployment's traffic, made up from a hash of the two.
fn traffic_row(
    dep: &SimDeployment,
    index: u64,
    at: i64,
    errors_per_mille: u32,
) -> serde_json::Value {
    const PAGES: [(&str, &str); 8] = [
        ("GET", "/"),
        ("GET", "/products"),
        ("GET", "/products/espresso-grinder"),
        ("GET", "/cart"),
        ("POST", "/api/checkout"),
        ("GET", "/api/search"),
        ("GET", "/api/og"),
        ("GET", "/_next/data/home.json"),
    ];
    let mut hasher = DefaultHasher::new();
    (&dep.id, index).hash(&mut hasher);
    let roll = hasher.finish();
    let (method, path) = PAGES[(roll % PAGES.len() as u64) as usize];
    let failed = ((roll >> 8) % 1000) < u64::from(errors_per_mille);
    let duration = 12 + (roll >> 20) % 380;
    let (source, level, status, message) = if failed {
        let status = [500, 502, 504][((roll >> 32) % 3) as usize];
        let message = match status {
            504 => format!("Task timed out after 10.00 seconds ({method} {path})"),
            502 => "Error: upstream connect error or disconnect/reset before headers".to_owned(),
            _ => format!(
                "TypeError: Cannot read properties of undefined (reading 'total')\n    at handler (/var/task{path}.js:41:22)"
            ),
        };
        ("serverless", "error", status, message)
    } else {
        match (roll >> 40) % 10 {
            0 => ("request", "warning", 404, String::new()),
            1..=3 if path.starts_with("/api") => (
                "serverless",
                "info",
                200,
                format!("{path} handled in {duration}ms"),
            ),
            4 => (
                "edge-middleware",
                "info",
                307,
                "geo header missing, defaulting to US".to_owned(),
            ),
            _ => (
                "request",
                "info",
                if method == "GET" { 200 } else { 201 },
                String::new(),
            ),
        }
    };
    let salt: String = dep
        .id
        .chars()
        .rev()
        .take(5)
        .collect::<String>()
        .to_ascii_lowercase();
    json!({
        "level": level, "message": message, "rowId": format!("{salt}-{at}-{index:06}"),
        "source": source, "timestampInMs": at, "domain": format!("{}.vercel.app", dep.project),
        "messageTruncated": false, "requestMethod": method, "requestPath": path,
        "responseStatusCode": status,
    })
}

impl Simulation {
    /// The deployment's error rate at `at` (per mille of rows).
    pub fn errors_per_mille(&self, deployment: &str, at: i64) -> u32 {
        lock(&self.error_rates)
            .get(deployment)
            .and_then(|changes| changes.iter().rev().find(|(from, _)| *from <= at))
            .map_or(DEFAULT_ERRORS_PER_MILLE, |(_, rate)| *rate)
    }

    /// From `from` on, `per_mille` of the deployment's rows are failed requests.
    pub fn set_error_rate(&self, deployment: &str, from: i64, per_mille: u32) {
        let mut rates = lock(&self.error_rates);
        let changes = rates.entry(deployment.to_owned()).or_default();
        changes.push((from, per_mille.min(1000)));
        changes.sort_by_key(|(from, _)| *from);
    }
}
