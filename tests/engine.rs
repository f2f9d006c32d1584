//! Discovery: the streaming engine finds building deployments and follows each to its end.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shiplog::demo::{DeploymentSpec, SimEvent, SimulatorHandle, SimulatorOptions};
use shiplog::log::{Delivery, Logger, Tier};
use shiplog::metrics::Metrics;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use shiplog::stream::engine::{EngineOptions, StreamEngine};
use shiplog::stream::FollowOptions;
use shiplog::vercel::{ClientConfig, VercelClient};

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
    let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
    let (builder, mut rx) = Logger::builder().channel("test", 4096, Delivery::DropWhenFull);
    let client =
        VercelClient::new(ClientConfig::new(sim.base_url(), Secret::new("t"))).expect("client");
    let engine = StreamEngine::new(
        client,
        store,
        builder.build(),
        Arc::new(Metrics::new()),
        EngineOptions {
            poll_every: Duration::from_millis(100),
            project: None,
            follow: FollowOptions {
                status_poll: Duration::from_millis(100),
                drain_idle: Duration::from_millis(200),
                settle: Duration::ZERO,
                ..FollowOptions::default()
            },
        },
    );
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
