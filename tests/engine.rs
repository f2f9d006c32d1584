//! Discovery: the streaming engine finds building deployments and follows each to its end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shiplog::demo::{DeploymentSpec, SimEvent, SimulatorHandle, SimulatorOptions};
use shiplog::log::{Delivery, EntryReceiver, Logger, Tier};
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use shiplog::stream::engine::{EngineOptions, StreamEngine};
use shiplog::stream::FollowOptions;
use shiplog::vercel::{ClientConfig, VercelClient};

/// An engine over the simulator that looks often, with its state under `dir`, and the
/// entries it writes.
fn engine(sim: &SimulatorHandle, dir: &std::path::Path) -> (StreamEngine, EntryReceiver) {
    let store = StateStore::embedded(dir, "shiplog:test:").expect("store");
    let (builder, rx) = Logger::builder().channel("test", 4096, Delivery::DropWhenFull);
    let client =
        VercelClient::new(ClientConfig::new(sim.base_url(), Secret::new("t"))).expect("client");
    let options = EngineOptions {
        poll_every: Duration::from_millis(100),
        production_every: Some(Duration::from_millis(100)),
        follow: FollowOptions {
            status_poll: Duration::from_millis(100),
            drain_idle: Duration::from_millis(200),
            settle: Duration::ZERO,
            ..FollowOptions::default()
        },
        ..EngineOptions::default()
    };
    let engine = StreamEngine::new(
        client,
        store,
        builder.build(),
        Arc::new(Metrics::new()),
        options,
    );
    (engine, rx)
}

#[tokio::test]
async fn every_building_deployment_is_followed_to_its_end() {
    let sim = SimulatorHandle::start(SimulatorOptions::default())
        .await
        .expect("simulator");
    let build = |project: &str| DeploymentSpec {
        project: project.to_owned(),
        events: (0..30)
            .map(|i| SimEvent::stdout(20, format!("{project} line {i}")))
            .collect(),
        // Long enough for the engine to find it building however slowly the test starts.
        queued_ms: 3_000,
        ..DeploymentSpec::default()
    };
    let ids = [
        sim.add_deployment(build("storefront")),
        sim.add_deployment(build("docs")),
    ];
    let dir = tempfile::tempdir().expect("dir");
    let (engine, mut rx) = engine(&sim, dir.path());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let running = engine.start(shutdown).task;

    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    let mut completed = 0;
    while completed < 2 {
        let entry = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("entries keep coming")
            .expect("engine alive");
        let vercel_id = entry.build_id.as_deref().unwrap_or_default().to_owned();
        match (entry.tier, entry.event.as_str()) {
            (Tier::Build, _) => lines
                .entry(vercel_id)
                .or_default()
                .push(entry.message.clone()),
            (Tier::Deploy, "completed") => completed += 1,
            _ => {}
        }
    }
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("engine stops on shutdown")
        .expect("engine task");
    for id in &ids {
        let expected: Vec<String> = sim
            .produced_events(id)
            .iter()
            .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(lines.get(id), Some(&expected), "{id}");
    }
}

/// The dashboard's history: where production points is marked, and a finished deployment's
/// whole log is read when asked for, marked replayed (history is no news to the alert rules).
#[tokio::test]
async fn production_is_marked_and_a_finished_log_is_read_when_asked() {
    let sim = SimulatorHandle::start(SimulatorOptions::default())
        .await
        .expect("simulator");
    let spec = DeploymentSpec {
        project: "storefront".to_owned(),
        target: Some("production".to_owned()),
        events: (0..5)
            .map(|i| SimEvent::stdout(20, format!("old line {i}")))
            .collect(),
        ..DeploymentSpec::default()
    };
    let old = sim.add_finished(spec, 3_600_000);
    let dir = tempfile::tempdir().expect("dir");
    let (engine, mut rx) = engine(&sim, dir.path());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let handle = engine.start(shutdown);
    let mut snapshot = handle.snapshot.clone();
    let project = sim.project_id(&old).expect("project");
    snapshot
        .wait_for(|s| s.production.get(&project) == Some(&old))
        .await
        .expect("production marked");
    handle
        .commands
        .send(shiplog::stream::engine::StreamCommand::Load(old.clone()))
        .await
        .expect("asked");
    let mut lines = Vec::new();
    while lines.len() < 5 {
        let entry = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("the old log comes")
            .expect("engine alive");
        if entry.tier == Tier::Build {
            assert!(entry.metadata.replayed, "history is marked");
            lines.push(entry.message.clone());
        }
    }
    assert_eq!(
        lines,
        (0..5).map(|i| format!("old line {i}")).collect::<Vec<_>>()
    );
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), handle.task).await;
}
