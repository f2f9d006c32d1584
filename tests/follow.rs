//! The follower against the simulator: every line exactly once, whatever the server does.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shiplog::demo::{
    DeploymentSpec, Fault, SimEvent, SimulatorHandle, SimulatorOptions, SinceMode,
};
use shiplog::log::{Delivery, EntryReceiver, LogEntry, Logger, Severity, Tier};
use shiplog::metrics::{Metrics, RestartReason};
use shiplog::retry::RetryPolicy;
use shiplog::secret::Secret;
use shiplog::store::StateStore;
use shiplog::stream::fallback::CliFallback;
use shiplog::stream::identity::resume_key;
use shiplog::stream::{FollowError, FollowOptions, Follower, ResumeState};
use shiplog::vercel::{ClientConfig, ReadyState, VercelClient};
use tokio::sync::watch;

/// Options that keep tests quick: short idle and drain windows, fast reconnects, no settle
/// window (but in the tests of late lines).
fn quick_options() -> FollowOptions {
    FollowOptions {
        idle_timeout: Duration::from_millis(700),
        reconnect: RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        status_poll: Duration::from_millis(100),
        drain_idle: Duration::from_millis(300),
        persist_every: Duration::ZERO,
        settle: Duration::ZERO,
        ..FollowOptions::default()
    }
}

/// A build of `n` lines a few ms apart, with bursts of events sharing one millisecond and
/// multi-byte text, so that cuts land everywhere.
fn build_of(n: usize) -> Vec<SimEvent> {
    (0..n)
        .map(|i| {
            let event =
                SimEvent::stdout(if i % 5 == 0 { 3 } else { 0 }, format!("line {i} ▲ ✓ café"));
            if i % 5 == 0 {
                event
            } else {
                event.same_ms()
            }
        })
        .collect()
}

struct Run {
    entries: Vec<Arc<LogEntry>>,
    result: Result<ReadyState, FollowError>,
    metrics: Arc<Metrics>,
}

impl Run {
    fn build_lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.tier == Tier::Build)
            .filter_map(|e| e.metadata.vercel_event_id.clone())
            .collect()
    }

    fn system(&self, event: &str) -> Vec<&Arc<LogEntry>> {
        self.entries
            .iter()
            .filter(|e| e.tier == Tier::System && e.event == event)
            .collect()
    }
}

fn produced_ids(sim: &SimulatorHandle, id: &str) -> Vec<String> {
    sim.produced_events(id)
        .iter()
        .map(|e| {
            let id = e.get("id").or_else(|| e.pointer("/payload/id"));
            id.and_then(|v| v.as_str()).unwrap_or_default().to_owned()
        })
        .collect()
}

fn client_for(sim: &SimulatorHandle, token: &str, team: Option<&str>) -> VercelClient {
    let mut config = ClientConfig::new(sim.base_url(), Secret::new(token));
    config.team_id = team.map(str::to_owned);
    config.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    VercelClient::new(config).expect("client")
}

async fn follow(
    sim: &SimulatorHandle,
    store: &StateStore,
    id: &str,
    options: FollowOptions,
    stop_after: Option<usize>,
) -> Run {
    let (stop, shutdown) = watch::channel(false);
    follow_until(sim, store, id, options, shutdown, |builds| {
        if Some(builds) == stop_after {
            let _ = stop.send(true);
        }
    })
    .await
}

/// Follows until the build is over or `shutdown`; `on_build_line` hears how many build lines
/// came so far.
async fn follow_until(
    sim: &SimulatorHandle,
    store: &StateStore,
    id: &str,
    options: FollowOptions,
    shutdown: watch::Receiver<bool>,
    mut on_build_line: impl FnMut(usize),
) -> Run {
    let (builder, mut rx) = Logger::builder().channel("test", 64, Delivery::WaitWhenFull);
    let logger = builder.build();
    let metrics = Arc::new(Metrics::new());
    let follower = Follower::new(
        client_for(sim, "test-token", Some("team_test")),
        store.clone(),
        logger,
        metrics.clone(),
        options,
    );
    let id = id.to_owned();
    let task = tokio::spawn(async move { follower.follow(&id, shutdown).await });
    let mut entries = Vec::new();
    let mut builds = 0;
    // The follower owns the only logger: the channel closes when it is done.
    while let Some(entry) = recv(&mut rx).await {
        let build_line = entry.tier == Tier::Build;
        entries.push(entry);
        if build_line {
            builds += 1;
            on_build_line(builds);
        }
    }
    let result = task.await.expect("follower task");
    Run {
        entries,
        result,
        metrics,
    }
}

async fn recv(rx: &mut EntryReceiver) -> Option<Arc<LogEntry>> {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the follower went silent for 30 s")
}

async fn simulator(since_mode: SinceMode) -> SimulatorHandle {
    SimulatorHandle::start(SimulatorOptions {
        since_mode,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator starts")
}

fn embedded_store() -> (tempfile::TempDir, StateStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StateStore::embedded(dir.path(), "shiplog:test:").expect("store");
    (dir, store)
}

fn spec(events: Vec<SimEvent>, faults: Vec<Fault>) -> DeploymentSpec {
    DeploymentSpec {
        project: "storefront".to_owned(),
        events,
        faults,
        ..DeploymentSpec::default()
    }
}

#[tokio::test]
async fn a_clean_build_prints_every_line_once_then_finishes() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let id = sim.add_deployment(spec(build_of(60), vec![]));
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    assert_eq!(*run.result.as_ref().expect("follows"), ReadyState::Ready);
    assert_eq!(run.build_lines(), produced_ids(&sim, &id));
    let last = run.entries.last().expect("entries");
    assert_eq!(
        (last.tier, last.event.as_str()),
        (Tier::Deploy, "completed")
    );
    let first = run
        .entries
        .iter()
        .find(|e| e.tier == Tier::Build)
        .expect("a build line");
    assert!(first.message.starts_with("line 0 ▲"));
    let stable = first.deployment_id.as_deref().expect("deployment id");
    assert!(stable.starts_with(&format!("vercel-{id}-")));
    assert!(run
        .entries
        .iter()
        .all(|e| e.deployment_id.as_deref() == Some(stable)));
}

/// Every cut the simulator can make, against every `since` semantics, on a build that is
/// over before the follower gets far (`live == false`) and on one that is still running.
#[tokio::test]
async fn no_line_is_lost_or_repeated_under_any_fault() {
    for live in [false, true] {
        faults_in_every_since_mode(live).await;
    }
}

async fn faults_in_every_since_mode(live: bool) {
    let build = |n: usize| {
        let mut events = build_of(n);
        if live {
            // About 40 ms between bursts: the faults strike while the build runs.
            for e in events.iter_mut().filter(|e| e.after_ms > 0) {
                e.after_ms = 40;
            }
        }
        events
    };
    let faults = [
        Fault::DropBefore { event: 13 },
        Fault::DropMidLine { event: 27 },
        Fault::CleanEndBefore { event: 8 },
        Fault::StallBefore { event: 31 },
    ];
    for mode in [
        SinceMode::Inclusive,
        SinceMode::Exclusive,
        SinceMode::Ignored,
    ] {
        let sim = simulator(mode).await;
        for fault in &faults {
            let (_dir, store) = embedded_store();
            let id = sim.add_deployment(spec(build(40), vec![fault.clone()]));
            let run = follow(&sim, &store, &id, quick_options(), None).await;
            assert!(
                run.result.is_ok(),
                "{live} {mode:?} {fault:?}: {:?}",
                run.result
            );
            let lines = run.build_lines();
            assert_eq!(
                lines,
                produced_ids(&sim, &id),
                "live {live} {mode:?} {fault:?}"
            );
            assert!(sim.unfired_faults(&id).is_empty(), "{fault:?} never fired");
        }
        // All faults on one build, in the older `payload`-wrapped shape.
        let (_dir, store) = embedded_store();
        let mut all = spec(build(40), faults.to_vec());
        all.wrapped_shape = true;
        let id = sim.add_deployment(all);
        let run = follow(&sim, &store, &id, quick_options(), None).await;
        assert!(
            run.result.is_ok(),
            "{live} {mode:?} all faults: {:?}",
            run.result
        );
        let lines = run.build_lines();
        assert_eq!(
            lines,
            produced_ids(&sim, &id),
            "live {live} {mode:?} all faults"
        );
        assert!(sim.unfired_faults(&id).is_empty());
    }
}

#[tokio::test]
async fn a_stream_silent_for_the_idle_timeout_is_reopened_while_the_build_runs() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    // Runs for about 2 s; the stream stalls early, the idle timeout is 0.7 s.
    let events = (0..50)
        .map(|i| SimEvent::stdout(40, format!("step {i}")))
        .collect();
    let id = sim.add_deployment(spec(events, vec![Fault::StallBefore { event: 3 }]));
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    assert_eq!(*run.result.as_ref().expect("follows"), ReadyState::Ready);
    assert_eq!(run.metrics.restarts(RestartReason::Stall), 1);
    assert_eq!(run.build_lines(), produced_ids(&sim, &id));
    let closed = tokio::time::timeout(Duration::from_secs(5), sim.streams_closed()).await;
    assert!(closed.is_ok(), "the stalled connection was closed");
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_waited_out() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let faults = vec![
        Fault::RateLimitNextRequest {
            retry_after_secs: 1,
        },
        Fault::ServerErrorNextRequests { count: 2 },
    ];
    let id = sim.add_deployment(spec(build_of(20), faults));
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    assert_eq!(*run.result.as_ref().expect("recovers"), ReadyState::Ready);
    assert_eq!(run.build_lines(), produced_ids(&sim, &id));
    assert_eq!(run.metrics.restarts(RestartReason::RateLimited), 1);
    assert_eq!(run.metrics.restarts(RestartReason::ServerError), 2);
    assert!(run.system("degraded").is_empty());
}

#[tokio::test]
async fn oversized_and_malformed_lines_are_skipped_and_counted() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let faults = vec![
        Fault::OversizedLineBefore {
            event: 5,
            bytes: 3 * 1024 * 1024,
        },
        Fault::MalformedLineBefore { event: 9 },
    ];
    let id = sim.add_deployment(spec(build_of(20), faults));
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    // The line with invalid UTF-8 is kept, its bad bytes shown as U+FFFD; the cut one is skipped.
    let recovered: Vec<&Arc<LogEntry>> = run
        .entries
        .iter()
        .filter(|e| e.message.starts_with("bad \u{fffd}"))
        .collect();
    assert_eq!(recovered.len(), 1);
    let mut expected = produced_ids(&sim, &id);
    let recovered_id = recovered[0]
        .metadata
        .vercel_event_id
        .clone()
        .unwrap_or_default();
    expected.insert(9, recovered_id);
    assert_eq!(run.build_lines(), expected);
    let skipped = run.system("line_skipped");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].severity, Severity::Warn);
    assert!(
        skipped[0].message.contains("3145728 bytes"),
        "{}",
        skipped[0].message
    );
    assert_eq!(run.metrics.lines_skipped(), 2);
}

#[tokio::test]
async fn failed_and_canceled_builds_end_with_their_state() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let mut failing = spec(build_of(10), vec![]);
    failing.events.push(SimEvent::stderr_error(
        2,
        "Error: Command \"npm run build\" exited with 1",
    ));
    failing.outcome = shiplog::demo::ReadyState::Error;
    let id = sim.add_deployment(failing);
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    assert_eq!(*run.result.as_ref().expect("follows"), ReadyState::Error);
    let error_line = run
        .entries
        .iter()
        .find(|e| e.message.contains("exited with 1"))
        .expect("line");
    assert_eq!(error_line.severity, Severity::Error);
    assert_eq!(run.entries.last().map(|e| e.event.as_str()), Some("failed"));

    let mut long = spec(build_of(400), vec![]);
    for e in &mut long.events {
        e.after_ms = 5;
    }
    let id = sim.add_deployment(long);
    let canceller = {
        let sim = sim.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let produced =
                tokio::time::timeout(Duration::from_secs(10), sim.wait_produced(&id, 20));
            assert!(produced.await.is_ok(), "20 lines within 10 s");
            sim.cancel(&id)
        })
    };
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    assert!(canceller.await.expect("cancel task"));
    assert_eq!(*run.result.as_ref().expect("follows"), ReadyState::Canceled);
    assert_eq!(run.build_lines(), produced_ids(&sim, &id));
}

#[tokio::test]
async fn a_restarted_follower_continues_where_it_stopped() {
    let sim = simulator(SinceMode::Exclusive).await;
    let (_dir, store) = embedded_store();
    let mut events = build_of(80);
    for e in events.iter_mut().skip(1) {
        e.after_ms = e.after_ms.max(1);
    }
    let id = sim.add_deployment(spec(events, vec![]));
    let first = follow(&sim, &store, &id, quick_options(), Some(25)).await;
    assert!(
        matches!(first.result, Err(FollowError::Interrupted)),
        "{:?}",
        first.result
    );
    let second = follow(&sim, &store, &id, quick_options(), None).await;
    assert_eq!(
        *second.result.as_ref().expect("finishes"),
        ReadyState::Ready
    );
    let mut all = first.build_lines();
    all.extend(second.build_lines());
    assert_eq!(all, produced_ids(&sim, &id));
    assert_eq!(
        first.entries[0].deployment_id, second.entries[0].deployment_id,
        "the stable deployment id survives a restart"
    );
}

/// Options with a settle window: Vercel's late lines are waited for.
fn settling_options(settle: Duration) -> FollowOptions {
    FollowOptions {
        settle,
        settle_poll: Duration::from_millis(200),
        ..quick_options()
    }
}

fn late_tail(events: usize, delay_ms: u64) -> Vec<Fault> {
    vec![Fault::LateTail { events, delay_ms }]
}

/// Vercel can report a build READY before the last lines of its log can be read. Without a
/// settle window they are lost; with one they are printed, in order, once, before the outcome.
#[tokio::test]
async fn lines_that_arrive_after_the_build_ended_are_caught_by_the_settle_window() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let hasty = sim.add_deployment(spec(build_of(40), late_tail(5, 2_000)));
    let run = follow(&sim, &store, &hasty, quick_options(), None).await;
    assert_eq!(*run.result.as_ref().expect("follows"), ReadyState::Ready);
    assert_eq!(
        run.build_lines().len(),
        35,
        "without a window the tail is lost"
    );

    let patient = sim.add_deployment(spec(build_of(40), late_tail(5, 2_000)));
    let run = follow(
        &sim,
        &store,
        &patient,
        settling_options(Duration::from_secs(4)),
        None,
    )
    .await;
    assert_eq!(*run.result.as_ref().expect("follows"), ReadyState::Ready);
    assert_eq!(run.build_lines().len(), 40);
    assert_eq!(run.build_lines(), produced_ids(&sim, &patient));
    let last = run.entries.last().expect("entries");
    assert_eq!(
        (last.tier, last.event.as_str()),
        (Tier::Deploy, "completed")
    );
}

/// A saved settle window that starts in the future (a clock that ran ahead, a tampered file)
/// does not keep the follower waiting for ever: the window starts now at the latest.
#[tokio::test]
async fn a_settle_window_saved_in_the_future_still_ends() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let id = sim.add_deployment(spec(build_of(10), vec![]));
    let mut future = ResumeState::default();
    future.settle_from = Some(i64::MAX / 2);
    store
        .put_json(&resume_key(&id), &future, Duration::from_secs(60))
        .await
        .expect("saved");
    let run = follow(
        &sim,
        &store,
        &id,
        settling_options(Duration::from_secs(1)),
        None,
    )
    .await;
    assert_eq!(*run.result.as_ref().expect("ends"), ReadyState::Ready);
    assert_eq!(run.build_lines(), produced_ids(&sim, &id));
}

/// A follower stopped while it waits for late lines, then started again, prints them once.
#[tokio::test]
async fn a_follower_stopped_while_it_settles_prints_the_late_lines_once_when_restarted() {
    let sim = simulator(SinceMode::Exclusive).await;
    let (_dir, store) = embedded_store();
    let id = sim.add_deployment(spec(build_of(40), late_tail(5, 2_000)));
    let options = settling_options(Duration::from_secs(4));
    let (stop, shutdown) = watch::channel(false);
    let settling = async {
        until_settling(&store, &id).await;
        let _ = stop.send(true);
    };
    let (first, ()) = tokio::join!(
        follow_until(&sim, &store, &id, options.clone(), shutdown, |_| {}),
        settling
    );
    assert!(
        matches!(first.result, Err(FollowError::Interrupted)),
        "{:?}",
        first.result
    );
    assert_eq!(
        first.build_lines().len(),
        35,
        "stopped before the tail came"
    );
    let second = follow(&sim, &store, &id, options, None).await;
    assert_eq!(
        *second.result.as_ref().expect("finishes"),
        ReadyState::Ready
    );
    let mut all = first.build_lines();
    all.extend(second.build_lines());
    assert_eq!(all, produced_ids(&sim, &id));
    assert_eq!(all.len(), 40);
}

/// Returns once the follower of `id` waits for late lines: its saved state says since when.
async fn until_settling(store: &StateStore, id: &str) {
    let key = resume_key(id);
    support::wait::eventually("the follower settles", async || {
        let state: Option<ResumeState> = store.get_json(&key).await.ok().flatten();
        state.is_some_and(|s| s.settle_from.is_some())
    })
    .await;
}

/// When every request of the settle window fails, the follower says so once and ends with the
/// build's state rather than waiting for ever.
#[tokio::test]
async fn a_settle_window_that_cannot_be_checked_ends_with_a_warning() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let id = sim.add_deployment(spec(build_of(20), vec![]));
    let (_stop, shutdown) = watch::channel(false);
    let failing = async {
        until_settling(&store, &id).await;
        sim.inject_fault(&id, Fault::ServerErrorNextRequests { count: 1_000 });
    };
    let options = settling_options(Duration::from_secs(60));
    let (run, ()) = tokio::join!(
        follow_until(&sim, &store, &id, options, shutdown, |_| {}),
        failing
    );
    assert_eq!(*run.result.as_ref().expect("ends"), ReadyState::Ready);
    assert_eq!(run.system("settle_failed").len(), 1);
    assert_eq!(run.build_lines(), produced_ids(&sim, &id));
}

/// The same restart, with the resume state and the stable id kept in Redis.
#[tokio::test]
async fn a_restarted_follower_continues_from_redis_state() {
    let redis = support::redis::RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let hook: shiplog::store::DegradedHook = Arc::new(|_| {});
    let store = StateStore::redis(
        &redis.url,
        &support::redis::fresh_namespace(),
        dir.path(),
        hook,
    )
    .await
    .expect("redis store");
    let sim = simulator(SinceMode::Inclusive).await;
    let events = (0..60)
        .map(|i| SimEvent::stdout(3, format!("line {i}")))
        .collect();
    let id = sim.add_deployment(spec(events, vec![]));
    let first = follow(&sim, &store, &id, quick_options(), Some(20)).await;
    let second = follow(&sim, &store, &id, quick_options(), None).await;
    assert!(matches!(first.result, Err(FollowError::Interrupted)));
    let mut all = first.build_lines();
    all.extend(second.build_lines());
    assert_eq!(all, produced_ids(&sim, &id));
    assert_eq!(
        first.entries[0].deployment_id,
        second.entries[0].deployment_id
    );
    let dirs_used = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(dirs_used, 0, "nothing went to the local fallback");
}

#[tokio::test]
async fn every_request_carries_auth_team_and_a_correlation_id() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let id = sim.add_deployment(spec(build_of(10), vec![Fault::DropBefore { event: 4 }]));
    let run = follow(&sim, &store, &id, quick_options(), None).await;
    assert!(run.result.is_ok());
    let requests = sim.requests();
    assert!(requests.len() >= 3);
    for request in &requests {
        assert!(request.authorized, "{request:?}");
        assert!(request.query.contains("teamId=team_test"), "{request:?}");
        let correlation = request
            .headers
            .iter()
            .find(|(name, _)| name == "x-correlation-id");
        assert!(
            correlation.is_some_and(|(_, v)| v.len() == 26),
            "{request:?}"
        );
    }
    let streams: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/events"))
        .collect();
    assert!(streams.len() >= 2);
    assert!(
        streams[1].query.contains("since="),
        "a reconnect resumes: {:?}",
        streams[1]
    );
}

#[tokio::test]
async fn unknown_deployments_and_bad_tokens_fail_clearly() {
    let sim = SimulatorHandle::start(SimulatorOptions {
        token: Some("right-token".to_owned()),
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let (_dir, store) = embedded_store();
    let (builder, _rx) = Logger::builder().channel("test", 8, Delivery::DropWhenFull);
    let logger = builder.build();
    let (_stop, shutdown) = watch::channel(false);
    let follower = |token: &str| {
        Follower::new(
            client_for(&sim, token, None),
            store.clone(),
            logger.clone(),
            Arc::new(Metrics::new()),
            quick_options(),
        )
    };
    let err = follower("right-token")
        .follow("dpl_doesnotexist", shutdown.clone())
        .await
        .expect_err("404");
    assert!(err.to_string().contains("404"), "{err}");
    let id = sim.add_deployment(spec(build_of(3), vec![]));
    let err = follower("wrong-token")
        .follow(&id, shutdown.clone())
        .await
        .expect_err("403");
    let text = err.to_string();
    assert!(
        text.contains("403") && !text.contains("wrong-token"),
        "{text}"
    );
}

#[tokio::test]
async fn a_lost_stream_is_reported_once_then_the_cli_fallback_takes_over() {
    let sim = simulator(SinceMode::Inclusive).await;
    let (_dir, store) = embedded_store();
    let bin = tempfile::tempdir().expect("dir");
    let script = bin.path().join("fake-vercel");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"fallback for $2 ($3)\"\necho \"token set: ${VERCEL_TOKEN:+yes}\"\n",
    )
    .expect("script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let id = sim.add_deployment(spec(
        build_of(10),
        vec![Fault::ServerErrorNextRequests { count: 50 }],
    ));
    let options = FollowOptions {
        cli_fallback: CliFallback::new(
            &script.display().to_string(),
            Some(Secret::new("tok")),
            None,
        ),
        ..quick_options()
    };
    let run = follow(&sim, &store, &id, options, None).await;
    match &run.result {
        Err(FollowError::Degraded {
            attempts,
            fallback_used,
            ..
        }) => {
            assert_eq!(*attempts, 6);
            assert!(*fallback_used);
        }
        other => panic!("expected degraded, got {other:?}"),
    }
    assert_eq!(
        run.system("degraded").len(),
        1,
        "exactly one degraded entry"
    );
    let fallback: Vec<&str> = run
        .entries
        .iter()
        .filter(|e| e.metadata.vercel_type.as_deref() == Some("cli-fallback"))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        fallback,
        vec![
            format!("fallback for {id} (--logs)").as_str(),
            "token set: yes"
        ]
    );
}
