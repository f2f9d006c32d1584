//! The real `shiplog` binary, as a user runs it, against the built-in simulator.

mod support;

use std::time::Duration;

use shiplog::demo::{scenarios, DeploymentSpec, SimEvent, SimulatorHandle, SimulatorOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;

use support::bin::{run, shiplog};

async fn simulator(speed: f64, token: Option<&str>) -> SimulatorHandle {
    SimulatorHandle::start(SimulatorOptions {
        speed,
        token: token.map(str::to_owned),
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator")
}

fn scenario(name: &str) -> DeploymentSpec {
    scenarios::by_name(name).expect("built-in scenario")
}

/// A build of the `storefront` project with these lines.
fn storefront(events: Vec<SimEvent>) -> DeploymentSpec {
    DeploymentSpec {
        project: "storefront".to_owned(),
        events,
        ..DeploymentSpec::default()
    }
}

fn produced_texts(sim: &SimulatorHandle, id: &str) -> Vec<String> {
    sim.produced_events(id)
        .iter()
        .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn help_lists_the_commands_and_exit_codes() {
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("follow").arg("--help");
        c
    })
    .await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("--json") && out.stdout.contains("--since"));
    let help = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("1 the build ended ERROR or CANCELED"),
        "{help}"
    );
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("--version");
        c
    })
    .await;
    assert_eq!(
        (out.code, out.stdout.trim()),
        (0, concat!("shiplog ", env!("CARGO_PKG_VERSION")))
    );
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("follow");
        c
    })
    .await;
    assert_eq!(out.code, 64, "a missing argument is a usage error");
}

#[tokio::test]
async fn follow_prints_a_ready_build_as_text_and_exits_0() {
    let sim = simulator(40.0, None).await;
    let id = sim.add_deployment(scenario("nextjs-success"));
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        c
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let texts = produced_texts(&sim, &id);
    let printed: Vec<&str> = out.stdout.lines().collect();
    // `HH:MM:SS.mmm stream  text`, every build line once, then the outcome.
    assert!(
        printed[0].len() > 21 && printed[0].as_bytes()[2] == b':',
        "{}",
        printed[0]
    );
    let compiled = texts
        .iter()
        .find(|t| t.contains("Compiled successfully"))
        .expect("line");
    // Colours are dropped when stdout is not a terminal.
    let compiled = shiplog::printable::display(compiled, false).into_owned();
    assert_eq!(
        out.stdout.matches(compiled.as_str()).count(),
        1,
        "{compiled}"
    );
    assert!(
        printed.last().is_some_and(|l| l.contains("is READY")),
        "{:?}",
        printed.last()
    );
    assert!(
        !out.stdout.contains('\u{1b}'),
        "no raw escapes when stdout is not a terminal"
    );
}

#[tokio::test]
async fn json_output_has_the_unified_fields_and_no_secrets() {
    let sim = simulator(40.0, None).await;
    let id = sim.add_deployment(scenario("leaked-secret"));
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id).arg("--json");
        c
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let entries: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let builds: Vec<&serde_json::Value> = entries.iter().filter(|e| e["tier"] == "build").collect();
    assert_eq!(builds.len(), sim.produced_events(&id).len());
    let first = builds[0];
    for field in [
        "id",
        "ts",
        "tier",
        "severity",
        "event",
        "message",
        "deployment_id",
        "build_id",
    ] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
    assert!(first["ts"]
        .as_str()
        .is_some_and(|ts| ts.ends_with('Z') && ts.len() == 24));
    assert_eq!(first["metadata"]["vercel_deployment_id"], id.as_str());
    for meta in ["vercel_event_id", "vercel_type", "created"] {
        assert!(first["metadata"].get(meta).is_some(), "{meta}");
    }
    // The scenario leaks a Vercel token and a bearer token; neither reaches the output.
    let leaked: Vec<String> = produced_texts(&sim, &id)
        .into_iter()
        .flat_map(|t| t.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|w| w.contains("vcp_") || w.starts_with("sk_live_"))
        .collect();
    assert!(!leaked.is_empty(), "the scenario leaks something");
    for secret in &leaked {
        let value = secret.split('=').next_back().unwrap_or(secret);
        assert!(!out.stdout.contains(value), "{value} leaked");
    }
    assert!(out.stdout.contains("[REDACTED]"));
}

#[tokio::test]
async fn a_failed_build_exits_1_and_an_unknown_one_2() {
    let sim = simulator(40.0, None).await;
    // Queued for 5 s first, so that `serve` finds it building however slowly it starts.
    let id = sim.add_deployment(DeploymentSpec {
        queued_ms: 200_000,
        ..scenario("failing-build")
    });
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        c
    })
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("is ERROR"));
    assert!(
        !out.stdout.contains("ALERT"),
        "alerting is off in development by default"
    );

    // With alerting on, the failed deployment raises one alert, shown after the line that fired it.
    let id = sim.add_deployment(scenario("failing-build"));
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow")
            .arg(&id)
            .env("LOG_ALERTS_ENABLED", "true")
            .env(
                "SLACK_WEBHOOK_URL",
                format!("{}/hooks/slack-secret", sim.base_url()),
            );
        c
    })
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    // The notification left before shiplog exited (the simulator refuses it, but received it).
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path == "/hooks/slack-secret"),
        "the alert was delivered before exit"
    );
    assert_eq!(
        out.stdout
            .matches("ALERT deploy_failed (high) for slack, discord, email")
            .count(),
        1,
        "{}",
        out.stdout
    );

    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg("dpl_nothere");
        c
    })
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("404") && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn bad_tokens_unreachable_apis_and_bad_settings_get_one_clear_message() {
    let sim = simulator(40.0, Some("the-right-token")).await;
    let id = sim.add_deployment(scenario("canceled"));
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow")
            .arg(&id)
            .env("VERCEL_TOKEN", "vcp_wrongwrongwrongwrongwrong1234");
        c
    })
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("403") && out.stderr.contains("VERCEL_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrongwrong"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let out = run({
        let mut c = shiplog(state.path(), &dead);
        c.arg("follow").arg(&id);
        c
    })
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("could not reach the Vercel API"),
        "{}",
        out.stderr
    );

    let no_token = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id).env_remove("VERCEL_TOKEN");
        c
    })
    .await;
    assert_eq!(no_token.code, 78);
    assert!(no_token.stderr.contains("VERCEL_TOKEN"));

    let config = state.path().join("bad.toml");
    std::fs::write(&config, "idle_timeout_secs = \"soon\"\n").expect("write");
    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id).arg("--config").arg(&config);
        c
    })
    .await;
    assert_eq!(out.code, 78);
    assert!(
        out.stderr.contains("bad.toml") && out.stderr.contains("line 1"),
        "{}",
        out.stderr
    );

    let out = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow")
            .arg(&id)
            .env("REDIS_URL", "redis://user:hunter2@127.0.0.1:1");
        c
    })
    .await;
    assert_eq!(out.code, 78);
    assert!(
        out.stderr.contains("Redis") && !out.stderr.contains("hunter2"),
        "{}",
        out.stderr
    );
    for out in [&no_token, &out] {
        assert!(!out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"));
    }
}

/// Reads a child's stdout line by line into a shared buffer.
fn collect_lines(child: &mut Child) -> tokio::sync::watch::Receiver<Vec<String>> {
    read_lines(child, None)
}

/// A reader that falls behind the build: after every 100 lines it waits for the build to make
/// 300 more, so the child's output backs up into its own buffers, as behind a slow terminal.
struct Lagging {
    sim: SimulatorHandle,
    id: String,
    total: usize,
}

/// Reads a child's stdout like `collect_lines`; with `lagging`, behind the build.
fn read_lines(
    child: &mut Child,
    lagging: Option<Lagging>,
) -> tokio::sync::watch::Receiver<Vec<String>> {
    let (tx, rx) = tokio::sync::watch::channel(Vec::new());
    let stdout = child.stdout.take().expect("stdout piped");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut count = 0;
        while let Ok(Some(line)) = lines.next_line().await {
            tx.send_modify(|all| all.push(line));
            count += 1;
            if let Some(lag) = lagging.as_ref().filter(|_| count % 100 == 0) {
                let ahead = lag.sim.produced_count(&lag.id) + 300;
                lag.sim.wait_produced(&lag.id, ahead.min(lag.total)).await;
            }
        }
    });
    rx
}

#[tokio::test]
async fn sigterm_saves_the_place_and_a_rerun_continues_without_repeats() {
    let sim = simulator(1.0, None).await;
    let events = (0..120)
        .map(|i| SimEvent::stdout(20, format!("step {i} of the build")))
        .collect();
    let id = sim.add_deployment(storefront(events));
    let state = tempfile::tempdir().expect("dir");
    let mut first = shiplog(state.path(), &sim.base_url())
        .arg("follow")
        .arg(&id)
        .spawn()
        .expect("spawn");
    let mut lines = collect_lines(&mut first);
    tokio::time::timeout(Duration::from_secs(30), lines.wait_for(|l| l.len() >= 20))
        .await
        .expect("20 lines within 30 s")
        .expect("reader alive");
    support::bin::terminate(first.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(10), first.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("status");
    assert_eq!(status.code(), Some(130));
    let mut stderr = String::new();
    if let Some(mut err) = first.stderr.take() {
        let _ = err.read_to_string(&mut stderr).await;
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The reader may still be taking in what the child wrote before exiting; it ends at EOF.
    tokio::time::timeout(Duration::from_secs(10), async {
        while lines.changed().await.is_ok() {}
    })
    .await
    .expect("stdout read to its end");
    let before = lines.borrow().clone();
    assert!(before.len() < 120, "stopped before the end");

    let second = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        c
    })
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let printed: Vec<String> = before
        .iter()
        .chain(
            second
                .stdout
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .iter(),
        )
        .filter_map(|l| l.split_once("stdout  ").map(|(_, text)| text.to_owned()))
        .collect();
    assert_eq!(printed, produced_texts(&sim, &id));
}

/// `follow` killed with SIGKILL at random points of a build (as the OOM killer would), then run
/// again: together the runs print every line, in order, and repeat at most one checkpoint's
/// worth of lines per kill.
#[tokio::test]
async fn sigkill_anywhere_loses_no_line_and_a_rerun_repeats_a_bounded_few() {
    use rand::Rng;
    let sim = simulator(1.0, None).await;
    // Long lines in bursts, faster than the reader takes them, as a bundler's output is.
    let padding = "x".repeat(400);
    let events = (0..3_000)
        .map(|i| {
            let pause = if i % 300 == 0 { 60 } else { 0 };
            SimEvent::stdout(pause, format!("step {i} of the build {padding}"))
        })
        .collect();
    let id = sim.add_deployment(storefront(events));
    let state = tempfile::tempdir().expect("dir");
    let mut printed = Vec::new();
    let kills = 4;
    for _ in 0..kills {
        let mut child = shiplog(state.path(), &sim.base_url())
            .arg("follow")
            .arg(&id)
            .spawn()
            .expect("spawn");
        let lagging = Lagging {
            sim: sim.clone(),
            id: id.clone(),
            total: 3_000,
        };
        let mut lines = read_lines(&mut child, Some(lagging));
        let kill_after = rand::rng().random_range(1..=800);
        let waited = tokio::time::timeout(
            Duration::from_secs(30),
            lines.wait_for(|l| l.len() >= kill_after),
        )
        .await
        .map(|_| ());
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        // What the child wrote before it died is still in the pipe: read it to its end.
        tokio::time::timeout(Duration::from_secs(10), async {
            while lines.changed().await.is_ok() {}
        })
        .await
        .expect("stdout read to its end");
        let mut run = lines.borrow().clone();
        // A kill in the middle of a write leaves half a line; the next run prints it whole.
        if run.last().is_some_and(|l| !l.ends_with(&padding)) {
            run.pop();
        }
        printed.extend(run);
        if waited.is_err() {
            break; // the build ended before this run got that far
        }
    }
    let last = run({
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        c
    })
    .await;
    assert_eq!(last.code, 0, "{}", last.stderr);
    printed.extend(last.stdout.lines().map(str::to_owned));

    let expected = produced_texts(&sim, &id);
    let mut next = 0;
    let mut repeats = 0;
    for text in printed
        .iter()
        .filter_map(|l| l.split_once("stdout  ").map(|(_, text)| text))
    {
        let step = text.split(' ').nth(1).unwrap_or_default();
        if next < expected.len() && text == expected[next] {
            next += 1;
        } else {
            let seen = expected[..next].iter().any(|e| e == text);
            assert!(seen, "step {step} came before step {next}: a line was lost");
            repeats += 1;
        }
    }
    assert_eq!(next, expected.len(), "every line was printed");
    let bound = kills * shiplog::stream::options::CHECKPOINT_LINES as usize;
    assert!(
        repeats <= bound,
        "{repeats} lines repeated (at most {bound})"
    );
}

#[tokio::test]
async fn alerts_check_replays_recorded_entries_through_the_rules() {
    let state = tempfile::tempdir().expect("dir");
    let file = state.path().join("entries.ndjson");
    let mut lines = Vec::new();
    for i in 0..50i64 {
        let entry = shiplog::log::LogEntry::at(
            1_795_684_800_000 + i * 1_000,
            shiplog::log::Tier::Build,
            shiplog::log::Severity::Error,
            "failed",
            format!(
                "Command \"npm run build\" exited with 1 after {} ms",
                30_000 + i
            ),
        )
        .with_deployment("vercel-dpl_a-1");
        lines.push(serde_json::to_string(&entry).expect("json"));
    }
    lines.push("not json at all".to_owned());
    // A valid entry over the 1 MiB line limit is skipped as `follow` skips it, not read whole.
    let giant = shiplog::log::LogEntry::at(
        1_795_684_900_000,
        shiplog::log::Tier::Build,
        shiplog::log::Severity::Error,
        "failed",
        "x".repeat(3 << 20),
    );
    lines.insert(25, serde_json::to_string(&giant).expect("json"));
    std::fs::write(&file, lines.join("\n")).expect("write");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("alerts").arg("check").arg(&file);
        c
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout
            .matches(" FIRE build_failed (medium) -> slack")
            .count(),
        1,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("1 alerts would fire, 49 repeats would be suppressed (50 entries read, 2 lines skipped)"),
        "{}",
        out.stdout
    );

    // A bad rule in the config file stops with the file, line and rule.
    let config = state.path().join("config.toml");
    std::fs::write(
        &config,
        "[[alert_rules]]\nkey = \"mine\"\nmessage = \"(\"\n",
    )
    .expect("write");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("--config")
            .arg(&config)
            .arg("alerts")
            .arg("check")
            .arg(&file);
        c
    })
    .await;
    assert_eq!(out.code, 78);
    assert!(
        out.stderr
            .contains("config.toml, line 1: alert rule \"mine\": bad regular expression"),
        "{}",
        out.stderr
    );

    // A rule that would stall alerting on long lines is refused before anything runs.
    std::fs::write(
        &config,
        "[[alert_rules]]\nkey = \"slow\"\nmessage = '[a-z]{3000}[0-9]'\n",
    )
    .expect("write");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("--config")
            .arg(&config)
            .args(["alerts", "check"])
            .arg(&file);
        c
    })
    .await;
    assert_eq!(out.code, 78);
    assert!(out.stderr.contains("repeats 3000 times"), "{}", out.stderr);

    let missing = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("alerts")
            .arg("check")
            .arg(state.path().join("nope.ndjson"));
        c
    })
    .await;
    assert_eq!(missing.code, 65);
}

#[tokio::test]
async fn alerts_test_says_how_a_channel_is_doing() {
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.args(["alerts", "test", "slack"]);
        c
    })
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("slack: off: no destination (SLACK_WEBHOOK_URL)"),
        "{}",
        out.stderr
    );

    // A receiver that refuses: the reason is shown, the secret URL is not.
    let sim = simulator(1.0, None).await;
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.args(["alerts", "test", "webhook"]).env(
            "ALERT_WEBHOOK_URL",
            format!("{}/hooks/t0psecret", sim.base_url()),
        );
        c
    })
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("webhook: failed: answered 403"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("t0psecret"));

    // The same destination from the config file's [alert_channels].
    let config = state.path().join("channels.toml");
    std::fs::write(
        &config,
        format!(
            "[alert_channels]\nwebhook_url = \"{}/hooks/f1lesecret\"\n",
            sim.base_url()
        ),
    )
    .expect("write");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.arg("--config")
            .arg(&config)
            .args(["alerts", "test", "webhook"]);
        c
    })
    .await;
    assert!(
        out.stderr.contains("webhook: failed: answered 403"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("f1lesecret"));
}

#[tokio::test]
async fn serve_follows_building_deployments_and_prints_outcomes_and_alerts_only() {
    let sim = simulator(40.0, None).await;
    // Queued for 5 s first, so that `serve` finds it building however slowly it starts.
    let id = sim.add_deployment(DeploymentSpec {
        queued_ms: 200_000,
        ..scenario("failing-build")
    });
    let state = tempfile::tempdir().expect("dir");
    let mut child = shiplog(state.path(), &sim.base_url())
        .arg("serve")
        .spawn()
        .expect("spawn");
    let mut lines = collect_lines(&mut child);
    tokio::time::timeout(
        Duration::from_secs(30),
        lines.wait_for(|l| l.iter().any(|line| line.contains("ALERT deploy_failed"))),
    )
    .await
    .expect("an alert within 30 s")
    .expect("reader alive");
    let printed = lines.borrow().clone();
    assert!(printed
        .iter()
        .any(|l| l.contains(&format!("Deployment {id}")) && l.contains("is ERROR")));
    assert!(
        !printed.iter().any(|l| l.contains("Running build in")),
        "no build lines: {printed:?}"
    );
    support::bin::terminate(child.id().expect("pid"));
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops on SIGTERM")
        .expect("status");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn follow_stops_when_its_reader_goes_away() {
    let sim = simulator(1.0, None).await;
    let events = (0..400)
        .map(|n| SimEvent::stdout(100, format!("step {n} of a long build")))
        .collect();
    let id = sim.add_deployment(storefront(events));
    let state = tempfile::tempdir().expect("dir");
    let mut child = {
        let mut c = shiplog(state.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        c.spawn().expect("spawns")
    };
    // A reader that takes two lines and goes, as `| head -2` does.
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..2 {
        lines.next_line().await.expect("reads").expect("a line");
    }
    drop(lines);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("follow stopped once nobody read it")
        .expect("waits");
    assert_eq!(status.code(), Some(130));
    assert!(
        sim.produced_events(&id).len() < 400,
        "it stopped before the build ended"
    );
}
