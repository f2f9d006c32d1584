//! Runtime logs against the simulator and a fixture server: every row once across the server's
//! limits and broken responses, an honest marker where rows may be missing, production followed
//! as it moves, secrets redacted, and the CLI's filters.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use shiplog::alert::evaluator::{AlertEvent, RuleEvaluator};
use shiplog::alert::rule::RuleSet;
use shiplog::alert::suppression::Suppressor;
use shiplog::demo::{DeploymentSpec, RuntimeTraffic, SimEvent, SimulatorHandle, SimulatorOptions};
use shiplog::log::runtime::{DEPLOY_REGRESSION, POSSIBLE_GAP, PRODUCTION_MOVED};
use shiplog::log::{Delivery, EntryReceiver, LogEntry, Logger, Tier};
use shiplog::metrics::Metrics;
use shiplog::retry::RetryPolicy;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use shiplog::stream::runtime::{RuntimeError, RuntimeFollower, RuntimeOptions, RuntimeTarget};
use shiplog::vercel::{ClientConfig, VercelClient};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

async fn simulator(traffic: RuntimeTraffic) -> SimulatorHandle {
    let sim = SimulatorHandle::start(SimulatorOptions {
        speed: 50.0,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    sim.set_runtime_traffic(traffic);
    sim
}

/// A ready production deployment of `project`.
async fn production(sim: &SimulatorHandle, project: &str) -> String {
    let id = sim.add_deployment(DeploymentSpec {
        project: project.to_owned(),
        target: Some("production".to_owned()),
        events: vec![SimEvent::stdout(10, "Build completed")],
        ..DeploymentSpec::default()
    });
    sim.wait_finished(&id).await;
    id
}

fn client(base_url: String) -> VercelClient {
    let mut config = ClientConfig::new(base_url, Secret::new("test-token"));
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    VercelClient::new(config).expect("client")
}

fn quick() -> RuntimeOptions {
    RuntimeOptions {
        production_poll: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
        ..RuntimeOptions::default()
    }
}

/// A follower of `target` whose entries arrive on the receiver; stop it with the sender.
fn start(
    base_url: String,
    target: RuntimeTarget,
    options: RuntimeOptions,
) -> (
    watch::Sender<bool>,
    EntryReceiver,
    tokio::task::JoinHandle<Result<(), RuntimeError>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
    let (builder, rx) = Logger::builder().channel("test", 10_000, Delivery::WaitWhenFull);
    let follower = RuntimeFollower::new(client(base_url), store, builder.build(), options);
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(async move { follower.follow(&target, shutdown).await });
    (stop, rx, task, dir)
}

/// Entries until `done` says enough (or fails after 30 s of silence).
async fn collect(
    rx: &mut EntryReceiver,
    mut done: impl FnMut(&[Arc<LogEntry>]) -> bool,
) -> Vec<Arc<LogEntry>> {
    let mut entries = Vec::new();
    while !done(&entries) {
        let entry = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the runtime follower went silent for 30 s")
            .expect("the runtime follower stopped");
        entries.push(entry);
    }
    entries
}

fn rows(entries: &[Arc<LogEntry>]) -> Vec<&Arc<LogEntry>> {
    entries
        .iter()
        .filter(|e| e.tier == Tier::Runtime && e.metadata.get_str("row_id").is_some())
        .collect()
}

fn row_ids(entries: &[Arc<LogEntry>]) -> Vec<String> {
    rows(entries)
        .iter()
        .filter_map(|e| e.metadata.get_str("row_id").map(str::to_owned))
        .collect()
}

/// The simulator's row index, the last part of its `rowId`.
fn index_of(row_id: &str) -> u64 {
    row_id
        .rsplit('-')
        .next()
        .and_then(|i| i.parse().ok())
        .expect("a simulator row id")
}

fn runtime_requests(sim: &SimulatorHandle) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/runtime-logs"))
        .count()
}

fn assert_unique(ids: &[String]) {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "a row was shown twice: {ids:?}");
}

#[tokio::test]
async fn rows_flow_on_across_the_limit_with_replays_dropped_and_no_false_gap() {
    // Each response stops after 20 rows; a new one starts 200 ms (10 rows) back, so it repeats
    // the last rows of the one before: the follower must drop them, and knows nothing was
    // skipped.
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 50.0,
        limit: 20,
        replay_ms: 200,
        abort_after: None,
    })
    .await;
    let id = production(&sim, "storefront").await;
    let (stop, mut rx, task, _dir) = start(
        sim.base_url(),
        RuntimeTarget::Deployment(id.clone()),
        quick(),
    );
    let entries = collect(&mut rx, |e| rows(e).len() >= 100).await;
    let _ = stop.send(true);
    assert!(matches!(
        task.await.expect("task"),
        Err(RuntimeError::Interrupted)
    ));

    assert_unique(&row_ids(&entries));
    // A row that does not follow the one before may only come right after a possible-gap
    // marker (a reconnect slower than the replay, on a busy machine).
    let mut last: Option<u64> = None;
    let mut marked = false;
    for entry in &entries {
        if entry.event == POSSIBLE_GAP {
            marked = true;
        } else if let Some(row_id) = entry.metadata.get_str("row_id") {
            let index = index_of(row_id);
            if let Some(last) = last {
                assert!(
                    index == last + 1 || marked,
                    "rows {last}..{index} missing without a marker"
                );
            }
            last = Some(index);
            marked = false;
        }
    }
    let responses = runtime_requests(&sim);
    let gaps = entries.iter().filter(|e| e.event == POSSIBLE_GAP).count();
    assert!(
        responses >= 5,
        "the limit ended responses and the follower reconnected"
    );
    assert!(
        gaps < responses - 1,
        "overlapping responses prove the log continuous: {gaps} gaps in {responses} responses"
    );
    assert!(rows(&entries)
        .iter()
        .all(|e| e.build_id.as_deref() == Some(id.as_str())));
}

#[tokio::test]
async fn broken_responses_are_reopened_at_once_and_a_possible_gap_is_said_with_its_span() {
    // No replay, and every response breaks off after 7 rows: rows written while the follower
    // reconnects are lost for good, and it says so.
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 100.0,
        limit: 256,
        replay_ms: 0,
        abort_after: Some(7),
    })
    .await;
    let id = production(&sim, "storefront").await;
    let (stop, mut rx, _task, _dir) = start(sim.base_url(), RuntimeTarget::Deployment(id), quick());
    let entries = collect(&mut rx, |e| rows(e).len() >= 30).await;
    let _ = stop.send(true);

    assert_unique(&row_ids(&entries));
    let gaps: Vec<_> = entries.iter().filter(|e| e.event == POSSIBLE_GAP).collect();
    assert!(
        gaps.len() >= 3,
        "every reopened response follows a possible gap: {}",
        gaps.len()
    );
    for gap in &gaps {
        let from = gap.metadata.extra["gap_from"].as_i64().expect("from");
        let to = gap.metadata.extra["gap_to"].as_i64().expect("to");
        assert!(from <= to);
        assert!(
            gap.message.contains("may be missing") && gap.message.contains("connection broke"),
            "{}",
            gap.message
        );
    }
    // Each marker sits between the last row before it and the first row after it.
    let position = |e: &Arc<LogEntry>| entries.iter().position(|x| Arc::ptr_eq(x, e)).expect("in");
    let first_gap = position(gaps[0]);
    assert!(first_gap >= 7, "the first response's 7 rows come first");
}

#[tokio::test]
async fn a_project_is_followed_through_its_production_and_switches_when_production_moves() {
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 50.0,
        ..RuntimeTraffic::default()
    })
    .await;
    let older = production(&sim, "storefront").await;
    let newer = production(&sim, "storefront").await;
    let (stop, mut rx, _task, _dir) = start(
        sim.base_url(),
        RuntimeTarget::Production("storefront".into()),
        quick(),
    );
    let before = collect(&mut rx, |e| rows(e).len() >= 5).await;
    assert!(rows(&before)
        .iter()
        .all(|e| e.build_id.as_deref() == Some(newer.as_str())));

    // Roll production back to the older deployment, as an on-call engineer would.
    let project = sim.project_id(&older).expect("project");
    client(sim.base_url())
        .rollback(&project, &older, Some("checkout broke"))
        .await
        .expect("rollback");
    let after = collect(&mut rx, |e| {
        rows(e)
            .iter()
            .filter(|r| r.build_id.as_deref() == Some(older.as_str()))
            .count()
            >= 5
    })
    .await;
    let _ = stop.send(true);
    let moved: Vec<_> = after
        .iter()
        .filter(|e| e.event == PRODUCTION_MOVED)
        .collect();
    assert_eq!(moved.len(), 1, "one note that production moved");
    assert!(
        moved[0].message.contains(&newer) && moved[0].message.contains(&older),
        "{}",
        moved[0].message
    );
    let moved_at = after
        .iter()
        .position(|e| e.event == PRODUCTION_MOVED)
        .expect("moved");
    assert!(
        rows(&after[moved_at..])
            .iter()
            .all(|e| e.build_id.as_deref() == Some(older.as_str())),
        "after the note, only the new production's rows"
    );
}

const SECRET_ROW: &str = r#"{"level":"error","message":"upstream said 401 for Authorization: Bearer vcp_9aZ3kLmN0pQrStUvWxYz1234567890abcdef","rowId":"s3cr3-1767713112000-0001","source":"serverless","timestampInMs":1767713112000,"domain":"storefront.acme.dev","messageTruncated":false,"requestMethod":"GET","requestPath":"/api/pay","responseStatusCode":502}"#;

/// A Vercel stand-in whose runtime logs answer the documented fixture rows (limit row
/// included) plus one with a token, the same rows on every response; counts the responses.
async fn fixture_server(responses: Arc<AtomicUsize>) -> String {
    let body = format!(
        "{SECRET_ROW}\n{}",
        include_str!("fixtures/runtime-logs.ndjson")
    );
    let app = axum::Router::new()
        .route(
            "/v13/deployments/{id}",
            get(|| async {
                axum::Json(serde_json::json!({
                    "id": "dpl_fixture", "name": "storefront", "projectId": "prj_fixture",
                    "readyState": "READY", "target": "production", "meta": {}
                }))
            }),
        )
        .route(
            "/v1/projects/{project}/deployments/{id}/runtime-logs",
            get(move || {
                let body = body.clone();
                responses.fetch_add(1, Ordering::SeqCst);
                async move { ([("content-type", "application/stream+json")], body) }
            }),
        );
    support::http::serve(app).await
}

#[tokio::test]
async fn documented_rows_become_redacted_runtime_entries_once_however_often_they_are_sent() {
    let responses = Arc::new(AtomicUsize::new(0));
    let url = fixture_server(responses.clone()).await;
    let (stop, mut rx, _task, _dir) = start(
        url,
        RuntimeTarget::Deployment("dpl_fixture".into()),
        quick(),
    );
    let mut entries = collect(&mut rx, |e| rows(e).len() >= 6).await;
    // The server sends the same rows again and again. Once it has been asked a fourth time,
    // the follower has read three responses: still nothing new may have come.
    support::wait::eventually("three more responses", async || {
        responses.load(Ordering::SeqCst) >= 4
    })
    .await;
    while let Ok(entry) = rx.try_recv() {
        entries.push(entry);
    }
    let _ = stop.send(true);

    let shown = rows(&entries);
    assert_eq!(shown.len(), 6);
    let secret = &shown[0];
    assert!(!secret.message.contains("vcp_9aZ3"), "{}", secret.message);
    assert!(secret.message.contains("[REDACTED]"));
    assert_eq!(secret.metadata.get_str("status_class"), Some("5xx"));
    let truncated = shown
        .iter()
        .find(|e| e.event == "edge-function")
        .expect("edge row");
    assert_eq!(
        truncated.metadata.extra.get("message_truncated"),
        Some(&serde_json::Value::Bool(true))
    );
    assert!(
        entries.iter().all(|e| e.event != POSSIBLE_GAP),
        "responses overlap: no gap"
    );
}

#[tokio::test]
async fn the_cli_follows_a_projects_production_with_its_filters() {
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 100.0,
        ..RuntimeTraffic::default()
    })
    .await;
    let id = production(&sim, "storefront").await;
    sim.set_error_rate(&id, 300);
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = support::bin::shiplog(dir.path(), &sim.base_url());
    cmd.args([
        "logs",
        "storefront",
        "--json",
        "--status",
        "5xx",
        "--path",
        "^/(api|cart)",
    ]);
    let mut child = cmd.spawn().expect("shiplog runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a 5xx row within 30 s")
            .expect("read")
            .expect("a line");
        seen.push(serde_json::from_str::<serde_json::Value>(&line).expect("JSON"));
    }
    for row in &seen {
        assert_eq!(row["tier"], "runtime");
        assert_eq!(row["metadata"]["status_class"], "5xx", "{row}");
        let path = row["metadata"]["request_path"].as_str().expect("path");
        assert!(
            path.starts_with("/api") || path.starts_with("/cart"),
            "{path}"
        );
        assert_eq!(row["build_id"], id.as_str());
    }
    support::bin::terminate(child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops on SIGTERM")
        .expect("status");
    assert_eq!(
        status.code(),
        Some(0),
        "stopping runtime logs is their normal end"
    );
}

#[tokio::test]
async fn the_cli_says_what_is_wrong_with_a_filter_or_a_name() {
    let sim = simulator(RuntimeTraffic::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = support::bin::shiplog(dir.path(), &sim.base_url());
    cmd.args(["logs", "storefront", "--status", "6xx"]);
    let out = support::bin::run(cmd).await;
    assert_eq!(out.code, 64);
    assert!(
        out.stderr.contains("not a status") && out.stderr.contains("5xx"),
        "{}",
        out.stderr
    );

    let mut cmd = support::bin::shiplog(dir.path(), &sim.base_url());
    cmd.args(["logs", "no-such-project"]);
    let out = support::bin::run(cmd).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("not found") && out.stderr.contains("hint"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("test-token"));
}

/// The alert rules over `entries`: the keys of the rules that fired.
async fn fired_rules(entries: &[Arc<LogEntry>], store: StateStore) -> Vec<(String, Arc<LogEntry>)> {
    let evaluator = RuleEvaluator::new(
        RuleSet::builtin(),
        Suppressor::shared(store),
        Arc::new(Metrics::new()),
    );
    let mut fired = Vec::new();
    for entry in entries {
        for event in evaluator.evaluate(entry.clone()).await {
            if let AlertEvent::Fired(alert) = event {
                fired.push((alert.rule, alert.entry));
            }
        }
    }
    fired
}

fn store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
    (dir, store)
}

#[tokio::test]
async fn a_burst_of_production_errors_alerts_and_a_previews_does_not() {
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 200.0,
        ..RuntimeTraffic::default()
    })
    .await;
    let live = production(&sim, "storefront").await;
    let preview = sim.add_deployment(DeploymentSpec {
        project: "storefront".to_owned(),
        events: vec![SimEvent::stdout(10, "Build completed")],
        ..DeploymentSpec::default()
    });
    sim.wait_finished(&preview).await;
    for id in [&live, &preview] {
        sim.set_error_rate(id, 500);
    }
    for (id, bursts) in [(&live, true), (&preview, false)] {
        let (stop, mut rx, _task, _dir) = start(
            sim.base_url(),
            RuntimeTarget::Deployment(id.clone()),
            quick(),
        );
        // 60 rows at half errors: some 30 errors, three bursts' worth, within a second.
        let entries = collect(&mut rx, |e| rows(e).len() >= 60).await;
        let _ = stop.send(true);
        let (_dir, store) = store();
        let fired = fired_rules(&entries, store).await;
        let burst: Vec<_> = fired
            .iter()
            .filter(|(rule, _)| rule == "runtime_error_burst")
            .collect();
        if bursts {
            assert_eq!(burst.len(), 1, "one alert: the repeats are suppressed");
            let entry = &burst[0].1;
            assert!(
                entry
                    .message
                    .starts_with("10 runtime entries within 60 s on storefront"),
                "{}",
                entry.message
            );
        } else {
            assert!(burst.is_empty(), "a preview's errors page nobody");
        }
    }
}

/// Follows `storefront`'s production, sees `rows_before` rows of the current one, then rolls
/// production back to `to` and reads until `rows_after` of its rows came.
async fn move_production(
    sim: &SimulatorHandle,
    to: &str,
    rows_before: usize,
    rows_after: usize,
) -> Vec<Arc<LogEntry>> {
    let (stop, mut rx, _task, _dir) = start(
        sim.base_url(),
        RuntimeTarget::Production("storefront".into()),
        quick(),
    );
    let mut entries = collect(&mut rx, |e| rows(e).len() >= rows_before).await;
    let project = sim.project_id(to).expect("project");
    client(sim.base_url())
        .rollback(&project, to, None)
        .await
        .expect("rollback");
    entries.extend(
        collect(&mut rx, |e| {
            rows(e)
                .iter()
                .filter(|r| r.build_id.as_deref() == Some(to))
                .count()
                >= rows_after
        })
        .await,
    );
    let _ = stop.send(true);
    entries
}

#[tokio::test]
async fn a_new_production_that_fails_more_than_the_last_raises_a_critical_regression() {
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 200.0,
        ..RuntimeTraffic::default()
    })
    .await;
    let broken = production(&sim, "storefront").await;
    let _healthy = production(&sim, "storefront").await;
    sim.set_error_rate(&broken, 300);
    let entries = move_production(&sim, &broken, 100, 150).await;

    let notes: Vec<_> = entries
        .iter()
        .filter(|e| e.event == DEPLOY_REGRESSION)
        .collect();
    assert_eq!(notes.len(), 1, "said once");
    let (_dir, store) = store();
    let fired = fired_rules(&entries, store).await;
    let regression: Vec<_> = fired
        .iter()
        .filter(|(rule, _)| rule == "deploy_regression")
        .collect();
    assert_eq!(regression.len(), 1);
    let alert = &regression[0].1;
    assert_eq!(
        alert.build_id.as_deref(),
        Some(broken.as_str()),
        "names the new production"
    );
    assert!(
        alert.message.contains("5xx rate") && alert.message.contains("rollback storefront --to"),
        "{}",
        alert.message
    );
    assert!(alert.metadata.get_str("previous_deployment").is_some());
}

#[tokio::test]
async fn a_healthy_move_of_production_raises_nothing() {
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 200.0,
        ..RuntimeTraffic::default()
    })
    .await;
    let older = production(&sim, "storefront").await;
    let _newer = production(&sim, "storefront").await;
    let entries = move_production(&sim, &older, 100, 300).await;
    assert!(entries.iter().any(|e| e.event == PRODUCTION_MOVED));
    assert!(entries.iter().all(|e| e.event != DEPLOY_REGRESSION));
    let (_dir, store) = store();
    assert!(fired_rules(&entries, store)
        .await
        .iter()
        .all(|(rule, _)| rule != "deploy_regression"));
}

#[tokio::test]
async fn serve_follows_production_runtime_logs_when_asked_and_alerts_on_a_burst() {
    let sim = simulator(RuntimeTraffic {
        rows_per_sec: 100.0,
        ..RuntimeTraffic::default()
    })
    .await;
    let live = production(&sim, "storefront").await;
    sim.set_error_rate(&live, 500);
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = support::bin::shiplog(dir.path(), &sim.base_url());
    cmd.env("SHIPLOG_RUNTIME_LOGS", "true")
        .args(["serve", "--json"]);
    let mut child = cmd.spawn().expect("shiplog runs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let alert = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("an alert within 30 s")
            .expect("read")
            .expect("a line");
        let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert!(
            entry["metadata"]["row_id"].is_null(),
            "a worker prints alerts and notes, not every row: {line}"
        );
        if line.contains("runtime_error_burst") {
            break entry;
        }
    };
    assert!(alert.to_string().contains(&live), "{alert}");
    support::bin::terminate(child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops on SIGTERM")
        .expect("status");
    assert_eq!(status.code(), Some(0));
}
