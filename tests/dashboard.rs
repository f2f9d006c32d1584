//! The real binary in a real pseudo-terminal, against the demo: what a person sees and does.

mod support;

use std::path::Path;
use std::time::Duration;

use support::bin::BIN;
use support::pty::{Key, OrPanic, PtySession};

const WAIT: Duration = Duration::from_secs(30);

fn dashboard(home: &Path, cols: u16, rows: u16) -> PtySession {
    dashboard_with(home, &[], &[], cols, rows)
}

/// The dashboard with a private home, state and config, plus `args` and `env`.
fn dashboard_with(
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    cols: u16,
    rows: u16,
) -> PtySession {
    let home_str = home.display().to_string();
    let state = home.join("state").display().to_string();
    let config = home.join("config").display().to_string();
    let mut all_env = vec![
        ("HOME", home_str.as_str()),
        ("SHIPLOG_STATE_DIR", state.as_str()),
        ("XDG_CONFIG_HOME", config.as_str()),
    ];
    all_env.extend_from_slice(env);
    PtySession::spawn(Path::new(BIN), args, &all_env, cols, rows).expect("shiplog starts in a pty")
}

/// Whether the screen shows `text` anywhere.
fn screen_has(session: &PtySession, text: &str) -> bool {
    session.contents().contains(text)
}

#[test]
fn the_demo_dashboard_shows_live_builds_filters_helps_and_quits_cleanly() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard(home.path(), 100, 30);
    session.wait_for_text("Deployments", WAIT).or_panic();
    session.wait_for_text("DEMO", WAIT).or_panic();
    // The first sample build appears and its lines stream in.
    session.wait_for_text("storefront", WAIT).or_panic();
    session.wait_for_text("Running build in", WAIT).or_panic();
    session.wait_for_text("Cloning completed", WAIT).or_panic();
    assert!(
        session.alternate_screen(),
        "the dashboard owns the alternate screen"
    );

    // A filter narrows the log to matching lines.
    session.send_key(Key::Char('f'));
    session
        .wait_for_text("filter (!pattern hides)", WAIT)
        .or_panic();
    session.send(b"Cloning");
    session.send_key(Key::Enter);
    session.wait_for_text("[filter Cloning]", WAIT).or_panic();
    session
        .wait_for("only matching lines", WAIT, |screen| {
            let text = screen.contents();
            text.contains("Cloning github.com") && !text.contains("Running build in")
        })
        .or_panic();

    // The help overlay lists the keys; any key closes it.
    session.send_key(Key::Char('?'));
    session
        .wait_for_text("next / previous error or warning", WAIT)
        .or_panic();
    session.send_key(Key::Char('x'));
    session
        .wait_for("help closed", WAIT, |screen| {
            !screen.contents().contains("this help")
        })
        .or_panic();

    // Resizing redraws the layout: side by side when wide.
    session.resize(160, 40);
    session
        .wait_for("side-by-side layout", WAIT, |screen| {
            screen
                .contents()
                .lines()
                .next()
                .is_some_and(|row| row.contains("┐┌"))
        })
        .or_panic();
    session.resize(80, 24);
    session
        .wait_for("stacked layout", WAIT, |screen| {
            screen
                .contents()
                .lines()
                .next()
                .is_some_and(|row| !row.contains("┐┌"))
        })
        .or_panic();

    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
    let raw = session.raw_output();
    let ends_with = |seq: &[u8]| raw.windows(seq.len()).any(|w| w == seq);
    assert!(ends_with(b"\x1b[?1049l"), "left the alternate screen");
    assert!(!session.alternate_screen());
    assert!(!session.cursor_hidden(), "the cursor is visible again");
    assert!(!screen_has(&session, "panicked"));
}

#[test]
fn a_panic_in_an_engine_restores_the_terminal_and_says_one_sentence() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard_with(
        home.path(),
        &[],
        &[("SHIPLOG_DEBUG_PANIC_IN_ENGINE", "1")],
        100,
        30,
    );
    assert_eq!(session.wait_exit(WAIT), Some(101));
    assert!(!session.alternate_screen());
    assert!(!session.cursor_hidden());
    let screen = session.contents();
    assert!(screen.contains("shiplog: internal error"), "{screen}");
    assert!(
        !screen.contains("panicked at") && !screen.contains("backtrace"),
        "{screen}"
    );
    let log = std::fs::read_to_string(home.path().join("state/shiplog.log")).unwrap_or_default();
    assert!(
        log.contains("a deliberate panic"),
        "the details are in the log file"
    );
}

#[test]
fn a_broken_theme_file_is_reported_and_the_default_theme_used() {
    let home = tempfile::tempdir().expect("home");
    let theme = home.path().join("mine.toml");
    std::fs::write(&theme, "[styles]\nstate_eror = { fg = \"red\" }\n").expect("theme");
    let theme_str = theme.display().to_string();
    let mut session = dashboard_with(home.path(), &["--theme", theme_str.as_str()], &[], 160, 30);
    session.wait_for_text("mine.toml, line 2", WAIT).or_panic();
    session.wait_for_text("state_eror", WAIT).or_panic();
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
}

#[test]
fn ctrl_c_and_sigterm_restore_the_terminal() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard(home.path(), 100, 30);
    session.wait_for_text("Deployments", WAIT).or_panic();
    session.send_key(Key::CtrlC);
    assert_eq!(session.wait_exit(WAIT), Some(0));
    assert!(!session.alternate_screen());
    assert!(!session.cursor_hidden());

    let mut session = dashboard(home.path(), 100, 30);
    session.wait_for_text("Deployments", WAIT).or_panic();
    support::bin::terminate(session.pid().expect("pid"));
    assert_eq!(session.wait_exit(WAIT), Some(0));
    assert!(!session.alternate_screen());
    assert!(!session.cursor_hidden());
}

#[test]
fn an_alert_is_queued_retried_dead_lettered_and_acknowledged_on_screen() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sim = runtime.block_on(async {
        shiplog::demo::SimulatorHandle::start(shiplog::demo::SimulatorOptions {
            speed: 20.0,
            ..Default::default()
        })
        .await
        .expect("simulator")
    });
    let id = {
        let _inside = runtime.enter();
        // Queued for 5 s first, so that the dashboard finds it building however slowly it
        // starts.
        sim.add_deployment(shiplog::demo::DeploymentSpec {
            queued_ms: 100_000,
            ..shiplog::demo::scenarios::by_name("failing-build").expect("scenario")
        })
    };
    // Slack is down: every notification is answered 500.
    let slack = runtime.block_on(async {
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::post(|| async {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom")
            }),
        );
        format!("{}/services/T0/B0/x", support::http::serve(app).await)
    });
    let home = tempfile::tempdir().expect("home");
    let url = sim.base_url();
    let mut session = dashboard_with(
        home.path(),
        &[],
        &[
            ("VERCEL_API_URL", url.as_str()),
            ("VERCEL_TOKEN", "test"),
            ("LOG_ALERTS_ENABLED", "true"),
            ("SHIPLOG_USER", "ana"),
            ("SLACK_WEBHOOK_URL", slack.as_str()),
            // Told at once rather than after Alertmanager's 30 s group_wait.
            ("SHIPLOG_GROUP_WAIT_SECS", "0"),
        ],
        120,
        30,
    );
    session.wait_for_text(&id, WAIT).or_panic();
    // The queue screen: Slack's failures are retried, then dead-lettered, and said so.
    session.send_key(Key::Char('3'));
    session
        .wait_for_text("Delivery queue LOGQ:development on embedded", WAIT)
        .or_panic();
    session.wait_for_text("answered 500: boom", WAIT).or_panic();
    session.wait_for_text("dead-lettered 1", WAIT).or_panic();
    session.wait_for_text("(after 3 attempts)", WAIT).or_panic();
    session.send_key(Key::Char('2'));
    session.wait_for_text("deploy_failed", WAIT).or_panic();
    session.wait_for_text("firing", WAIT).or_panic();
    session.send_key(Key::Char('a'));
    session.wait_for_text("note (optional)", WAIT).or_panic();
    session.send(b"rolling back");
    session.send_key(Key::Enter);
    session
        .wait_for_text("acknowledged by ana: rolling back", WAIT)
        .or_panic();
    session.wait_for_text("acked", WAIT).or_panic();
    // A silence for alerts like it: the matchers come filled in from the alert, then how long,
    // then why; the list shows it active, made by ana.
    session.send_key(Key::Char('s'));
    session
        .wait_for_text(r#"rule="deploy_failed""#, WAIT)
        .or_panic();
    session.send_key(Key::Enter);
    session.wait_for_text("silence for:", WAIT).or_panic();
    session.send_key(Key::Enter);
    session.wait_for_text("because (required)", WAIT).or_panic();
    session.send(b"known bad migration");
    session.send_key(Key::Enter);
    session.send_key(Key::Char('S'));
    session.wait_for_text("Silences (e expire", WAIT).or_panic();
    session
        .wait_for_text("ana: known bad migration", WAIT)
        .or_panic();
    session.wait_for_text("active", WAIT).or_panic();
    session.send_key(Key::Char('e'));
    session.wait_for_text("expired", WAIT).or_panic();
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
}

/// The demo's breakglass screen: a placeholder justification is denied, a real one granted;
/// the token is masked until revealed, and it reaches no file.
#[test]
fn breakglass_in_the_demo_denies_then_grants_and_writes_the_token_nowhere() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard_with(
        home.path(),
        &[],
        &[
            ("SHIPLOG_ROLE", "breakglass_admin"),
            ("SHIPLOG_USER", "ana"),
            ("VERCEL_BREAKGLASS_ENABLED", "true"),
        ],
        120,
        34,
    );
    session.wait_for_text("Deployments", WAIT).or_panic();
    session.send_key(Key::Char('4'));
    session
        .wait_for_text("BREAKGLASS: emergency access", WAIT)
        .or_panic();
    session.wait_for_text("kill switch: ON", WAIT).or_panic();
    session
        .wait_for_text("ana (breakglass_admin)", WAIT)
        .or_panic();
    session.wait_for_text("conn_demo", WAIT).or_panic();

    let request = |session: &mut PtySession, justification: &str| {
        session.send_key(Key::Enter);
        session
            .wait_for_text("BREAKGLASS justification", WAIT)
            .or_panic();
        session.send(justification.as_bytes());
        session.send_key(Key::Enter);
        session
            .wait_for_text("type the connection id to confirm", WAIT)
            .or_panic();
        session.send(b"conn_demo");
        session.send_key(Key::Enter);
    };
    request(&mut session, "test test test test test");
    session
        .wait_for_text("Denied: the justification looks like a placeholder", WAIT)
        .or_panic();
    request(
        &mut session,
        "The demo's token key was lost; checking that recovery works",
    );
    session
        .wait_for_text("granted and audited", WAIT)
        .or_panic();
    session.wait_for_text("vcp_••••", WAIT).or_panic();
    assert!(!screen_has(&session, "vcp_demo_"), "masked until revealed");
    session.send_key(Key::Char('v'));
    session.wait_for_text("vcp_demo_", WAIT).or_panic();
    session.wait_for_text("use 1 of 10", WAIT).or_panic();
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
    let written = support::files::all_text(home.path());
    assert!(written.contains("VERCEL_BREAKGLASS_ACCESS") || written.contains("granted"));
    assert!(!written.contains("vcp_demo_"), "the token is in no file");
}

/// In the demo the visitor is an operator: `x` on the building deployment, cancel, yes; the
/// list shows it canceled at once, the activity panel shows who did it, and the trail has it.
#[test]
fn a_build_is_canceled_from_the_dashboard_and_audited() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard_with(home.path(), &[], &[("SHIPLOG_USER", "ana")], 140, 36);
    session.wait_for_text("Deployments", WAIT).or_panic();
    session.wait_for_text("BUILD", WAIT).or_panic();
    session.send_key(Key::Char('x'));
    session
        .wait_for_text("Act on this deployment", WAIT)
        .or_panic();
    session.wait_for_text("Cancel this build", WAIT).or_panic();
    session.send_key(Key::Char('c'));
    session.wait_for_text("(BUILDING)?", WAIT).or_panic();
    session.send_key(Key::Char('y'));
    session.wait_for_text("canceled", WAIT).or_panic();
    session.wait_for_text("CANCEL", WAIT).or_panic();
    session
        .wait_for("the activity panel", WAIT, |screen| {
            let text = screen.contents();
            text.contains("Activity") && text.contains("ana") && text.contains("succeeded")
        })
        .or_panic();
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
    let trail = std::fs::read_to_string(home.path().join("state/actions/audit.ndjson"))
        .expect("the action audit trail");
    let outcomes: Vec<String> = trail
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|r| format!("{} {} {}", r["user"], r["action"], r["outcome"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            r#""ana" "cancel" "requested""#,
            r#""ana" "cancel" "confirmed""#,
            r#""ana" "cancel" "succeeded""#
        ]
    );
}

/// The demo opens on a team's day: the last hours' deployments, production and preview, ready,
/// failed and canceled, what production serves marked, and a finished build's log when chosen.
#[test]
fn the_demo_opens_on_a_teams_day() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard_with(home.path(), &[], &[], 160, 48);
    session
        .wait_for("the day's deployments", WAIT, |screen| {
            let text = screen.contents();
            [
                "READY",
                "ERROR",
                "CANCEL",
                "prod",
                "prev",
                "★",
                "3h55m",
                "chidi",
                "fix(checkout): use",
            ]
            .iter()
            .all(|seen| text.contains(seen))
        })
        .or_panic();
    // Down to the oldest, of hours ago: its whole log is read and shown.
    for _ in 0..30 {
        session.send_key(Key::Down);
    }
    session
        .wait_for_text("Build log storefront", WAIT)
        .or_panic();
    session
        .wait_for("a finished build's log", WAIT, |screen| {
            let text = screen.contents();
            text.contains("Build Completed")
                || text.contains("Deployment completed")
                || text.contains("Build completed")
        })
        .or_panic();
    // The last hour's two failures: one alert firing, one acknowledged by a teammate, each
    // naming project, branch, commit and the error.
    session.send_key(Key::Char('2'));
    session
        .wait_for("one firing, one acknowledged", WAIT, |screen| {
            let text = screen.contents();
            text.contains("firing")
                && text.contains("acked")
                && text.contains("checkout-web feat/gift-cards")
                && text.contains("Type error: Property 'totl'")
        })
        .or_panic();
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
}

/// Production changes from the dashboard ask for the project's name and a reason: the oldest
/// storefront deployment is rolled back to (the mark moves at once), a promote of what
/// production already serves is refused, and a production redeploy starts a new build.
#[test]
fn production_is_rolled_back_and_redeployed_from_the_dashboard() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard_with(home.path(), &[], &[("SHIPLOG_USER", "ana")], 160, 48);
    session.wait_for_text("★", WAIT).or_panic();
    for _ in 0..30 {
        session.send_key(Key::Down);
    }
    session
        .wait_for_text("Build log storefront", WAIT)
        .or_panic();
    let confirm = |session: &mut PtySession, key: char, reason: &str| {
        session.send_key(Key::Char('x'));
        session
            .wait_for_text("Act on this deployment", WAIT)
            .or_panic();
        session.send_key(Key::Char(key));
        session
            .wait_for_text("Type the project's name (storefront) below", WAIT)
            .or_panic();
        session.send(b"storefront");
        session.send_key(Key::Enter);
        session
            .wait_for_text("reason (optional, audited)", WAIT)
            .or_panic();
        session.send(reason.as_bytes());
        session.send_key(Key::Enter);
    };
    confirm(&mut session, 'b', "checkout errors after the deploy");
    session
        .wait_for_text("production of storefront now points at", WAIT)
        .or_panic();
    session
        .wait_for("the mark on the oldest", WAIT, |screen| {
            let rows = screen.contents();
            // The list's rows, without the log beside them.
            rows.lines()
                .filter_map(|l| l.split("││").next())
                .rev()
                .find(|l| l.contains("READY") && l.contains("storefront"))
                .is_some_and(|l| l.contains("★"))
        })
        .or_panic();

    session.send_key(Key::Char('x'));
    session
        .wait_for_text("Promote to production", WAIT)
        .or_panic();
    session.send_key(Key::Char('p'));
    session
        .wait_for_text("already serves production of storefront", WAIT)
        .or_panic();

    confirm(&mut session, 'r', "rebuild with fresh env");
    session
        .wait_for_text("storefront is building dpl_", WAIT)
        .or_panic();

    // Six rows up from the oldest: storefront's production build of 1h44m ago, promoted.
    for _ in 0..6 {
        session.send_key(Key::Up);
    }
    confirm(&mut session, 'p', "undo the rollback");
    session
        .wait_for("the promote in the activity panel", WAIT, |screen| {
            screen
                .contents()
                .lines()
                .any(|l| l.contains("succeeded") && l.contains("ana promote dpl_"))
        })
        .or_panic();
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
    let trail = std::fs::read_to_string(home.path().join("state/actions/audit.ndjson"))
        .expect("the action audit trail");
    let done: Vec<&str> = trail
        .lines()
        .filter(|l| l.contains("\"outcome\":\"succeeded\""))
        .map(|l| {
            ["rollback", "redeploy", "promote"]
                .into_iter()
                .find(|kind| l.contains(&format!("\"action\":\"{kind}\"")))
                .unwrap_or("?")
        })
        .collect();
    assert_eq!(done, ["rollback", "redeploy", "promote"], "{trail}");
    assert!(
        trail.contains("checkout errors after the deploy"),
        "{trail}"
    );
}

/// The runtime log of a ready deployment, its chart, and the quick filter on status.
#[test]
fn a_ready_deployments_runtime_log_is_followed_charted_and_narrowed() {
    let home = tempfile::tempdir().expect("home");
    let mut session = dashboard_with(home.path(), &[], &[], 160, 48);
    session.wait_for_text("READY", WAIT).or_panic();
    session.send_key(Key::Char('r'));
    session.wait_for_text("Runtime log", WAIT).or_panic();
    // Down the list until a ready deployment's requests come in.
    let mut found = false;
    for _ in 0..20 {
        if session
            .wait_for_text("in the last minute", Duration::from_secs(3))
            .is_ok()
        {
            found = true;
            break;
        }
        session.send_key(Key::Down);
    }
    assert!(
        found,
        "no ready deployment's runtime log came in:\n{}",
        session.contents()
    );
    session.wait_for_text("Responses a minute", WAIT).or_panic();

    session.send_key(Key::Char('o'));
    session.wait_for_text("only (status=5xx", WAIT).or_panic();
    session.send(b"status=4xx\r");
    session.wait_for_text("[only status=4xx]", WAIT).or_panic();
    session
        .wait_for("a 404 row", WAIT, |screen| {
            screen.contents().contains(" 404")
        })
        .or_panic();
    // Every request line left in the log is a 4xx.
    let text = session.contents();
    for line in text.lines() {
        // The log pane's part of the row: from the request on.
        let Some(at) = line.find("GET /").or_else(|| line.find("POST /")) else {
            continue;
        };
        let status = line[at..]
            .split_whitespace()
            .nth(2)
            .and_then(|word| word.parse::<u16>().ok());
        assert!(status.is_some_and(|s| (400..500).contains(&s)), "{line}");
    }
    session.send_key(Key::Char('q'));
    assert_eq!(session.wait_exit(WAIT), Some(0));
}
