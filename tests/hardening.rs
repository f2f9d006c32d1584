//! The process keeps its keys to itself: no core dump, private state files. The release binary,
//! as a user runs it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use shiplog::demo::{scenarios, SimulatorHandle, SimulatorOptions};
use tokio::io::{AsyncBufReadExt, BufReader};

use support::bin::{run, shiplog, BIN};

/// Starts `program args` from a shell that allows unlimited core files, in `dir`; returns it
/// once it has printed its first line, with the rest of its output (kept open, so that it
/// keeps running).
async fn started_with_cores_allowed(
    dir: &Path,
    program: &str,
    args: &str,
) -> (tokio::process::Child, Lines) {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -c unlimited 2>/dev/null; exec \"$0\" {args}"
        ))
        .arg(program)
        .current_dir(dir)
        .env("SHIPLOG_STATE_DIR", dir.join("state"))
        .env("HOME", dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("started within 30 s")
        .expect("reads")
        .expect("a first line");
    (child, lines)
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

fn abort(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-ABRT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// SIGABRT's number on Linux.
fn libc_sigabrt() -> i32 {
    6
}

fn core_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("core"))
        .collect()
}

#[tokio::test]
async fn an_aborted_shiplog_writes_no_core_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, _output) =
        started_with_cores_allowed(dir.path(), BIN, "demo --serve-only --port 0").await;
    let pid = child.id().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    abort(&child);
    let status = child.wait().await.expect("waits");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc_sigabrt()),
        "{status:?}"
    );
    assert!(core_files(dir.path()).is_empty(), "a core file was written");

    // The same shell and signal make a core file of a program that does not refuse, when the
    // system writes core files to the working directory at all.
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let cores_allowed = std::process::Command::new("sh")
        .args(["-c", "ulimit -c unlimited"])
        .status()
        .is_ok_and(|status| status.success());
    if pattern.trim() == "core" && cores_allowed {
        let control = tempfile::tempdir().expect("dir");
        let script = "echo up; exec sleep 60";
        let mut sleeper = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -c unlimited && sh -c '{script}'"))
            .current_dir(control.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawns");
        let stdout = sleeper.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        lines.next_line().await.expect("reads");
        abort(&sleeper);
        let _ = sleeper.wait().await;
        assert!(
            !core_files(control.path()).is_empty(),
            "the control wrote no core"
        );
    }
}

#[tokio::test]
async fn state_files_are_the_owners_only() {
    let sim = SimulatorHandle::start(SimulatorOptions {
        speed: 40.0,
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let id = sim.add_deployment(scenarios::by_name("nextjs-success").expect("scenario"));
    let home = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(home.path(), &sim.base_url());
        c.arg("follow").arg(&id);
        c
    })
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let state = home.path().join("state");
    let mut stack = vec![state.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir)
            .expect("reads")
            .filter_map(|e| e.ok())
        {
            let meta = entry.metadata().expect("meta");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", entry.path().display());
            }
        }
    }
    assert!(files >= 2, "shiplog.log and the resume state at least");
}

#[tokio::test]
async fn a_channel_that_echoes_its_secret_url_does_not_get_it_printed() {
    // A receiver whose error names the path it was called on, as Slack's and Discord's do.
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        (
            axum::http::StatusCode::NOT_FOUND,
            format!(
                "no_service: no hook at {} (token {})",
                uri.path(),
                uri.path().rsplit('/').next().unwrap_or("")
            ),
        )
    });
    let base = support::http::serve(app).await;
    let state = tempfile::tempdir().expect("dir");
    let out = run({
        let mut c = shiplog(state.path(), "http://127.0.0.1:9");
        c.args(["alerts", "test", "webhook"]).env(
            "ALERT_WEBHOOK_URL",
            format!("{base}/hooks/T0DCUJB1Q/eCh0edS3cretT0ken"),
        );
        c
    })
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("answered 404"), "{}", out.stderr);
    assert!(
        out.stderr.contains("no_service"),
        "the reason is kept: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("eCh0edS3cretT0ken"), "{}", out.stderr);
    assert!(!out.stderr.contains("T0DCUJB1Q/"), "{}", out.stderr);
}

#[tokio::test]
async fn a_config_error_names_the_line_and_never_quotes_it() {
    let state = tempfile::tempdir().expect("dir");
    let config = state.path().join("config.toml");
    std::fs::write(
        &config,
        "[alert_channels]\nsms_enabled = \"ACfa11en/tw1l10T0kenS3cret\"\n",
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
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("sms_enabled"), "{}", out.stderr);
    assert!(!out.stderr.contains("tw1l10T0kenS3cret"), "{}", out.stderr);
}
