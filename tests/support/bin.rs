//! The real `shiplog` binary, run as a user runs it, with a clean environment.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_shiplog");

/// `shiplog` with a clean environment: no token, no team, private state and config, and no
/// settle window after a build ends (the tests of the window set their own).
pub fn shiplog(state: &Path, api_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", state)
        .env("XDG_CONFIG_HOME", state.join("config"))
        .env("SHIPLOG_STATE_DIR", state.join("state"))
        .env("VERCEL_API_URL", api_url)
        .env("VERCEL_TOKEN", "test-token")
        .env("SHIPLOG_SETTLE_SECS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub async fn run(mut cmd: Command) -> Output {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("shiplog finished within 60 s")
        .expect("shiplog runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Sends SIGTERM to a process, as a service manager stopping it would.
pub fn terminate(pid: u32) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "SIGTERM to {pid}");
}
