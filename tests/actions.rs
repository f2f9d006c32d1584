//! Acting on deployments from the command line, against the simulator: every action, every
//! guard, and idempotency (a lost answer, two instances at once), as a user would run them.

mod support;

use std::path::Path;
use std::time::Duration;

use shiplog::demo::{DeploymentSpec, ReadyState, SimEvent, SimulatorHandle, SimulatorOptions};

use support::bin::{run, shiplog, Output};
use support::pty::PtySession;
use support::redis::RedisServer;
use support::wait::eventually;

async fn simulator() -> SimulatorHandle {
    SimulatorHandle::start(SimulatorOptions {
        speed: 50.0,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator")
}

fn build(project: &str, target: Option<&str>) -> DeploymentSpec {
    DeploymentSpec {
        project: project.to_owned(),
        target: target.map(str::to_owned),
        events: vec![
            SimEvent::stdout(10, "Installing dependencies"),
            SimEvent::stdout(10, "Build completed"),
        ],
        ..DeploymentSpec::default()
    }
}

/// A build that runs for minutes.
fn long_build(project: &str) -> DeploymentSpec {
    DeploymentSpec {
        events: vec![SimEvent::stdout(600_000_000, "still building")],
        ..build(project, None)
    }
}

/// Two ready production deployments of `storefront`, older first; production serves the newer.
async fn two_productions(sim: &SimulatorHandle) -> (String, String) {
    let older = sim.add_deployment(build("storefront", Some("production")));
    sim.wait_finished(&older).await;
    let newer = sim.add_deployment(build("storefront", Some("production")));
    sim.wait_finished(&newer).await;
    assert_eq!(
        sim.production("storefront").as_deref(),
        Some(newer.as_str())
    );
    (older, newer)
}

/// `shiplog deployments ARGS` as `role`.
async fn deployments(state: &Path, sim: &SimulatorHandle, role: &str, args: &[&str]) -> Output {
    run({
        let mut c = shiplog(state, &sim.base_url());
        c.env("SHIPLOG_ROLE", role)
            .env("SHIPLOG_USER", "alice")
            .arg("deployments")
            .args(args);
        c
    })
    .await
}

/// `shiplog deployments ARGS` as `role`, which must succeed.
async fn succeed(state: &Path, sim: &SimulatorHandle, role: &str, args: &[&str]) -> Output {
    expect(0, deployments(state, sim, role, args).await)
}

/// `out`, after checking it exited with `code` (stderr says why when it did not).
fn expect(code: i32, out: Output) -> Output {
    assert_eq!(out.code, code, "{}", out.stderr);
    out
}

/// Requests that change something (anything but GET).
fn changes(sim: &SimulatorHandle) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn audit(state: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(state.join("state/actions/audit.ndjson")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is a record"))
        .collect()
}

fn outcomes(records: &[serde_json::Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_operator_cancels_a_build_and_the_trail_holds_every_step() {
    let sim = simulator().await;
    let id = sim.add_deployment(long_build("checkout-web"));
    let state = tempfile::tempdir().expect("dir");
    let out = succeed(
        state.path(),
        &sim,
        "operator",
        &["cancel", &id, "--yes", "--reason", "wrong branch"],
    )
    .await;
    assert_eq!(out.stdout.trim(), format!("{id} canceled"));
    assert_eq!(sim.ready_state(&id), Some(ReadyState::Canceled));
    let records = audit(state.path());
    assert_eq!(outcomes(&records), ["requested", "confirmed", "succeeded"]);
    let done = &records[2];
    assert_eq!(
        (
            done["user"].as_str(),
            done["role"].as_str(),
            done["action"].as_str()
        ),
        (Some("alice"), Some("operator"), Some("cancel"))
    );
    assert_eq!(done["project"], "checkout-web");
    assert_eq!(done["reason"], "wrong branch");

    // Again: the deployment's state says it is over, and nothing is sent.
    let again = deployments(state.path(), &sim, "operator", &["cancel", &id, "--yes"]).await;
    assert_eq!(again.code, 77);
    assert!(
        again.stderr.contains("is already canceled"),
        "{}",
        again.stderr
    );
    assert_eq!(
        changes(&sim),
        [format!("PATCH /v12/deployments/{id}/cancel")]
    );

    let shown = deployments(state.path(), &sim, "viewer", &["audit"]).await;
    assert_eq!(shown.code, 0);
    assert!(
        shown
            .stdout
            .contains("alice (operator)  cancel succeeded  checkout-web"),
        "{}",
        shown.stdout
    );
}

#[tokio::test]
async fn a_redeploy_builds_the_same_source_again_carrying_its_action_id() {
    let sim = simulator().await;
    let source = sim.add_deployment(build("docs", None));
    sim.wait_finished(&source).await;
    let state = tempfile::tempdir().expect("dir");
    let out = succeed(
        state.path(),
        &sim,
        "operator",
        &["redeploy", &source, "--yes", "--json"],
    )
    .await;
    let result: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let created = result["created"]
        .as_str()
        .expect("the new deployment")
        .to_owned();
    assert_ne!(created, source);
    assert_eq!(result["outcome"], "succeeded");
    let meta = sim.deployment_meta(&created);
    assert_eq!(
        meta.get("shiplogActionId").map(String::as_str),
        result["action_id"].as_str()
    );
    sim.wait_finished(&created).await;
    assert_eq!(sim.ready_state(&created), Some(ReadyState::Ready));
}

#[tokio::test]
async fn a_rollback_moves_production_back_and_a_promote_undoes_it() {
    let sim = simulator().await;
    let (older, newer) = two_productions(&sim).await;
    let state = tempfile::tempdir().expect("dir");
    succeed(
        state.path(),
        &sim,
        "operator",
        &[
            "rollback",
            "storefront",
            "--yes",
            "--reason",
            "checkout 500s",
        ],
    )
    .await;
    assert_eq!(
        sim.production("storefront").as_deref(),
        Some(older.as_str())
    );
    let rollback = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the rollback request");
    assert!(
        rollback.path.ends_with(&format!("/rollback/{older}")),
        "{}",
        rollback.path
    );
    assert_eq!(
        rollback.query_param("description").as_deref(),
        Some("checkout 500s")
    );
    let done = audit(state.path()).pop().expect("a result");
    assert_eq!(
        (done["outcome"].as_str(), done["from"].as_str()),
        (Some("succeeded"), Some(newer.as_str()))
    );

    // Undo: promote the newer one again.
    succeed(
        state.path(),
        &sim,
        "super_admin",
        &["promote", &newer, "--yes"],
    )
    .await;
    assert_eq!(
        sim.production("storefront").as_deref(),
        Some(newer.as_str())
    );
    // A promote of what production already serves is refused before anything is sent.
    let again = deployments(
        state.path(),
        &sim,
        "operator",
        &["promote", &newer, "--yes"],
    )
    .await;
    assert_eq!(again.code, 77);
    assert!(
        again
            .stderr
            .contains("already serves production of storefront"),
        "{}",
        again.stderr
    );
    assert_eq!(changes(&sim).len(), 2);
}

#[tokio::test]
async fn viewers_and_breakglass_admins_are_refused_before_any_request() {
    let sim = simulator().await;
    let id = sim.add_deployment(long_build("checkout-web"));
    let state = tempfile::tempdir().expect("dir");
    let before = sim.requests().len();
    for role in ["viewer", "breakglass_admin"] {
        let out = deployments(state.path(), &sim, role, &["cancel", &id, "--yes"]).await;
        assert_eq!(out.code, 77, "{role}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("the {role} role may not cancel deployments")),
            "{}",
            out.stderr
        );
    }
    // Without a token too: the role is said first.
    let tokenless = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.env_remove("VERCEL_TOKEN")
            .env("SHIPLOG_ROLE", "viewer")
            .args(["deployments", "rollback", "storefront", "--yes"]);
        c
    })
    .await;
    assert_eq!(tokenless.code, 77, "{}", tokenless.stderr);
    assert_eq!(sim.requests().len(), before, "nothing reached Vercel");
    assert_eq!(
        outcomes(&audit(state.path())),
        ["refused", "refused", "refused"]
    );
}

#[tokio::test]
async fn off_a_terminal_an_action_needs_yes() {
    let sim = simulator().await;
    let id = sim.add_deployment(long_build("checkout-web"));
    let state = tempfile::tempdir().expect("dir");
    let out = deployments(state.path(), &sim, "operator", &["cancel", &id]).await;
    assert_eq!(out.code, 77);
    assert!(
        out.stderr.contains("not confirmed") && out.stderr.contains("--yes"),
        "{}",
        out.stderr
    );
    assert!(changes(&sim).is_empty());
    assert_eq!(outcomes(&audit(state.path())), ["requested", "declined"]);
}

#[tokio::test]
async fn an_action_that_cannot_be_audited_is_not_sent() {
    let sim = simulator().await;
    let id = sim.add_deployment(long_build("checkout-web"));
    let state = tempfile::tempdir().expect("dir");
    // The trail's file cannot be appended to: a directory stands where it goes.
    std::fs::create_dir_all(state.path().join("state/actions/audit.ndjson")).expect("dir");
    let out = expect(
        77,
        deployments(state.path(), &sim, "operator", &["cancel", &id, "--yes"]).await,
    );
    assert!(
        out.stderr
            .contains("an action that cannot be audited is not sent"),
        "{}",
        out.stderr
    );
    assert!(changes(&sim).is_empty());
    assert_ne!(sim.ready_state(&id), Some(ReadyState::Canceled));
}

// The pty is waited on by blocking: the simulator needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_production_changes_ask_for_the_project_name() {
    let sim = simulator().await;
    let (_, newer) = two_productions(&sim).await;
    let state = tempfile::tempdir().expect("dir");
    let url = sim.base_url();
    let state_dir = state.path().join("state");
    let home = state.path().to_string_lossy().into_owned();
    let state_dir = state_dir.to_string_lossy().into_owned();
    let env = [
        ("VERCEL_API_URL", url.as_str()),
        ("VERCEL_TOKEN", "test-token"),
        ("SHIPLOG_STATE_DIR", state_dir.as_str()),
        ("HOME", home.as_str()),
        ("SHIPLOG_ROLE", "operator"),
        ("SHIPLOG_USER", "alice"),
    ];
    let bin = Path::new(support::bin::BIN);
    let wait = Duration::from_secs(20);

    // A wrong name: nothing is sent.
    let mut session = PtySession::spawn(
        bin,
        &["deployments", "rollback", "storefront"],
        &env,
        120,
        30,
    )
    .expect("pty");
    session
        .wait_for_text("Type the project's name (storefront) to confirm:", wait)
        .expect("asked");
    session.send(b"storefrnt\r");
    assert_eq!(session.wait_exit(wait), Some(77), "{}", session.contents());
    assert!(session
        .contents()
        .contains("the name typed is not the project's (storefront)"));
    assert!(changes(&sim).is_empty());

    // The right name and a reason.
    let mut session = PtySession::spawn(
        bin,
        &["deployments", "rollback", "storefront"],
        &env,
        120,
        30,
    )
    .expect("pty");
    session.wait_for_text("to confirm:", wait).expect("asked");
    session.send(b"storefront\r");
    session
        .wait_for_text("Reason (optional):", wait)
        .expect("asked for a reason");
    session.send(b"errors after the deploy\r");
    assert_eq!(session.wait_exit(wait), Some(0), "{}", session.contents());
    assert_ne!(
        sim.production("storefront").as_deref(),
        Some(newer.as_str())
    );
    let done = audit(state.path()).pop().expect("a result");
    assert_eq!(done["reason"], "errors after the deploy");
}

#[tokio::test]
async fn a_redeploy_whose_answer_is_lost_is_not_sent_twice() {
    let sim = simulator().await;
    let source = sim.add_deployment(build("docs", None));
    sim.wait_finished(&source).await;
    sim.lose_next_action_answers(1);
    let state = tempfile::tempdir().expect("dir");
    let out = succeed(
        state.path(),
        &sim,
        "operator",
        &["redeploy", &source, "--yes"],
    )
    .await;
    assert!(
        out.stdout
            .contains("its answer was lost; Vercel shows it done"),
        "{}",
        out.stdout
    );
    assert_eq!(changes(&sim), ["POST /v13/deployments"], "sent once");
    let redeploys = sim
        .deployment_ids()
        .into_iter()
        .filter(|id| sim.deployment_meta(id).contains_key("shiplogActionId"))
        .count();
    assert_eq!(redeploys, 1);
}

#[tokio::test]
async fn a_promote_whose_answer_is_lost_is_found_done() {
    let sim = simulator().await;
    let (older, newer) = two_productions(&sim).await;
    let state = tempfile::tempdir().expect("dir");
    succeed(
        state.path(),
        &sim,
        "operator",
        &["rollback", "storefront", "--to", &older, "--yes"],
    )
    .await;
    sim.lose_next_action_answers(1);
    succeed(
        state.path(),
        &sim,
        "operator",
        &["promote", &newer, "--yes"],
    )
    .await;
    assert_eq!(
        sim.production("storefront").as_deref(),
        Some(newer.as_str())
    );
    assert_eq!(
        changes(&sim)
            .iter()
            .filter(|c| c.contains("/promote/"))
            .count(),
        1
    );
}

/// Two `shiplog` processes on one store asked to cancel the same build at the same moment.
async fn two_at_once(
    sim: &SimulatorHandle,
    state: &Path,
    configure: impl Fn(&mut tokio::process::Command),
) {
    let id = sim.add_deployment(long_build("checkout-web"));
    let start = |user: &str| {
        let mut c = shiplog(state, &sim.base_url());
        c.env("SHIPLOG_ROLE", "operator")
            .env("SHIPLOG_USER", user)
            .args(["deployments", "cancel", &id, "--yes"]);
        configure(&mut c);
        run(c)
    };
    let (first, second) = tokio::join!(start("alice"), start("bob"));
    let mut codes = [first.code, second.code];
    codes.sort();
    assert_eq!(codes, [0, 77], "{}\n{}", first.stderr, second.stderr);
    let cancels = changes(sim)
        .iter()
        .filter(|c| c.ends_with(&format!("{id}/cancel")))
        .count();
    assert_eq!(cancels, 1, "sent once");
}

#[tokio::test]
async fn two_instances_on_one_machine_send_the_same_action_once() {
    let sim = simulator().await;
    let state = tempfile::tempdir().expect("dir");
    two_at_once(&sim, state.path(), |_| {}).await;
}

#[tokio::test]
async fn two_instances_sharing_redis_send_it_once_and_a_serve_there_sees_it() {
    let redis = RedisServer::start();
    let sim = simulator().await;
    let namespace = format!("shiplog:test-{}:", ulid::Ulid::new());
    let config = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(config.path().join("shiplog")).expect("dir");
    std::fs::write(
        config.path().join("shiplog/config.toml"),
        format!("namespace = {namespace:?}\n"),
    )
    .expect("config");
    let with_redis = |c: &mut tokio::process::Command| {
        c.env("REDIS_URL", &redis.url)
            .env("XDG_CONFIG_HOME", config.path());
    };
    let id = sim.add_deployment(long_build("checkout-web"));
    // A worker elsewhere, on the same Redis.
    let serve_state = tempfile::tempdir().expect("dir");
    let mut serve = shiplog(serve_state.path(), &sim.base_url());
    with_redis(&mut serve);
    serve.args(["serve", "--json"]);
    let mut serve = serve.spawn().expect("serve");
    let mut lines = tokio::io::BufReader::new(serve.stdout.take().expect("stdout"));
    let mut seen = String::new();
    let mut read_until = async |what: &str, wanted: &dyn Fn(&str) -> bool| {
        eventually(what, async || {
            use tokio::io::AsyncBufReadExt;
            let mut line = String::new();
            match tokio::time::timeout(Duration::from_millis(200), lines.read_line(&mut line)).await
            {
                Ok(Ok(n)) if n > 0 => {
                    seen.push_str(&line);
                    wanted(&line)
                }
                _ => false,
            }
        })
        .await;
    };
    eventually("the worker is watching the team", async || {
        sim.requests().iter().any(|r| r.path == "/v6/deployments")
    })
    .await;

    // Each instance with its own state directory: only Redis is shared.
    let one = tempfile::tempdir().expect("dir");
    let two = tempfile::tempdir().expect("dir");
    let (a, b) = (one.path().to_owned(), two.path().to_owned());
    let start = |state: &Path, user: &str| {
        let mut c = shiplog(state, &sim.base_url());
        with_redis(&mut c);
        c.env("SHIPLOG_ROLE", "operator")
            .env("SHIPLOG_USER", user)
            .args(["deployments", "cancel", &id, "--yes"]);
        run(c)
    };
    let (first, second) = tokio::join!(start(&a, "alice"), start(&b, "bob"));
    let mut codes = [first.code, second.code];
    codes.sort();
    assert_eq!(codes, [0, 77], "{}\n{}", first.stderr, second.stderr);
    assert_eq!(changes(&sim).len(), 1, "sent once");

    // The worker writes the cancel as an action entry.
    read_until("the worker shows the cancel", &|line| {
        line.contains("\"tier\":\"action\"") && line.contains("\"event\":\"canceled\"")
    })
    .await;
    let _ = serve.kill().await;
}

#[tokio::test]
async fn a_cancel_whose_answer_is_lost_is_found_done() {
    let sim = simulator().await;
    let id = sim.add_deployment(long_build("checkout-web"));
    sim.lose_next_action_answers(1);
    let state = tempfile::tempdir().expect("dir");
    succeed(state.path(), &sim, "operator", &["cancel", &id, "--yes"]).await;
    assert_eq!(changes(&sim).len(), 1, "sent once");
    assert_eq!(
        outcomes(&audit(state.path())),
        ["requested", "confirmed", "succeeded"]
    );
}

#[tokio::test]
async fn an_old_promote_of_the_same_deployment_is_not_taken_for_this_one() {
    let sim = simulator().await;
    let (older, newer) = two_productions(&sim).await;
    let state = tempfile::tempdir().expect("dir");
    // Someone promoted the older one earlier (in Vercel's dashboard), then a new production
    // build went live: Vercel still shows that promote as the last request.
    let project = sim.project_id(&older).expect("project");
    let promoted = reqwest::Client::new()
        .post(format!(
            "{}/v10/projects/{project}/promote/{older}",
            sim.base_url()
        ))
        .bearer_auth("test-token")
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("promote");
    assert_eq!(promoted.status(), 201);
    let newest = sim.add_deployment(build("storefront", Some("production")));
    sim.wait_finished(&newest).await;
    assert_eq!(
        sim.production("storefront").as_deref(),
        Some(newest.as_str())
    );
    assert_ne!(newest, newer);

    let out = succeed(
        state.path(),
        &sim,
        "operator",
        &["promote", &older, "--yes"],
    )
    .await;
    assert!(!out.stdout.contains("already happened"), "{}", out.stdout);
    assert_eq!(
        sim.production("storefront").as_deref(),
        Some(older.as_str())
    );
    assert_eq!(changes(&sim).len(), 2, "the old promote, and this one");
}

#[tokio::test]
async fn secrets_in_a_reason_reach_neither_the_trail_nor_vercel() {
    let sim = simulator().await;
    let (older, _) = two_productions(&sim).await;
    let state = tempfile::tempdir().expect("dir");
    let secret = "ghp_1234567890abcdefghijklmnopqrstuvwxyz";
    let reason = format!("leaked token {secret} in the build");
    succeed(
        state.path(),
        &sim,
        "operator",
        &[
            "rollback",
            "storefront",
            "--to",
            &older,
            "--yes",
            "--reason",
            &reason,
        ],
    )
    .await;
    let trail =
        std::fs::read_to_string(state.path().join("state/actions/audit.ndjson")).expect("trail");
    assert!(
        !trail.contains(secret) && trail.contains("[REDACTED]"),
        "{trail}"
    );
    let sent = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("rollback");
    let description = sent.query_param("description").unwrap_or_default();
    assert!(
        !description.contains(secret) && description.starts_with("leaked token"),
        "{description}"
    );
}

#[tokio::test]
async fn a_rollback_to_another_projects_deployment_is_refused() {
    let sim = simulator().await;
    two_productions(&sim).await;
    let other = sim.add_deployment(build("docs", Some("production")));
    sim.wait_finished(&other).await;
    let state = tempfile::tempdir().expect("dir");
    let out = expect(
        77,
        deployments(
            state.path(),
            &sim,
            "operator",
            &["rollback", "storefront", "--to", &other, "--yes"],
        )
        .await,
    );
    assert!(
        out.stderr.contains("is not a deployment of storefront"),
        "{}",
        out.stderr
    );
    assert!(changes(&sim).is_empty());
}

#[tokio::test]
async fn a_token_vercel_refuses_exits_2_and_is_recorded() {
    let sim = SimulatorHandle::start(SimulatorOptions {
        speed: 50.0,
        token: Some("the-right-token".to_owned()),
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let id = sim.add_deployment(long_build("checkout-web"));
    let state = tempfile::tempdir().expect("dir");
    let out = expect(
        2,
        deployments(state.path(), &sim, "operator", &["cancel", &id, "--yes"]).await,
    );
    assert!(
        out.stderr.contains("Vercel refused the cancel"),
        "{}",
        out.stderr
    );
    assert_eq!(outcomes(&audit(state.path())), ["failed"]);
}
