//! `shiplog login`, `breakglass` and `vault` as a user runs them, against the simulator: the
//! stored login is used when no token is given; when its key is lost, only an admin with
//! breakglass on gets through (audited); rotation reseals with the new key.

mod support;

use std::path::Path;

use shiplog::demo::{scenarios, SimulatorHandle, SimulatorOptions};
use support::bin::{run, shiplog};
use support::keys::{BREAKGLASS_KEY, NEW_TOKEN_KEY, TOKEN_KEY};
use tokio::process::Command;

const TOKEN: &str = "vcp_demo_personal_token_1234567890";
const WHY: &str = "TOKEN_ENCRYPTION_KEY was lost in the migration; deploys are blocked";

/// `shiplog` with the keys set and no token (the stored login is used).
fn with_keys(state: &Path, api: &str, token_key: &str) -> Command {
    let mut cmd = shiplog(state, api);
    cmd.env_remove("VERCEL_TOKEN")
        .env("TOKEN_ENCRYPTION_KEY", token_key)
        .env("BREAKGLASS_KEY", BREAKGLASS_KEY);
    cmd
}

fn admin(mut cmd: Command) -> Command {
    cmd.env("SHIPLOG_ROLE", "breakglass_admin")
        .env("SHIPLOG_USER", "ana")
        .env("VERCEL_BREAKGLASS_ENABLED", "true");
    cmd
}

#[tokio::test]
async fn a_stored_login_is_used_and_recovered_through_breakglass_when_its_key_is_lost() {
    let sim = SimulatorHandle::start(SimulatorOptions {
        speed: 50.0,
        token: Some(TOKEN.to_owned()),
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let id = sim.add_deployment(scenarios::by_name("nextjs-success").expect("scenario"));
    sim.wait_finished(&id).await;
    let api = sim.base_url();
    let state = tempfile::tempdir().expect("dir");
    let state = state.path();

    // Login without a key is refused with a clear sentence.
    let mut cmd = shiplog(state, &api);
    cmd.env("VERCEL_TOKEN", TOKEN).arg("login");
    let out = run(cmd).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr.contains("TOKEN_ENCRYPTION_KEY is not set"),
        "{}",
        out.stderr
    );

    let mut cmd = with_keys(state, &api, TOKEN_KEY);
    cmd.env("VERCEL_TOKEN", TOKEN).arg("login");
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Logged in as"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("Breakglass entry made (automatic_on_token_login)"),
        "{}",
        out.stdout
    );
    let stored = support::files::all_text(state);
    assert!(
        !stored.contains(TOKEN),
        "the token is never stored in the clear"
    );

    // No token given: the stored login follows the build.
    let mut cmd = with_keys(state, &api, TOKEN_KEY);
    cmd.arg("follow").arg(&id);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Build Completed"), "{}", out.stdout);

    // The stored token goes to no other API: not to another server, not over plain http to
    // another machine, and not after the record's origin is edited to the other server's.
    let other = SimulatorHandle::start(SimulatorOptions::default())
        .await
        .expect("simulator");
    let mut cmd = with_keys(state, &other.base_url(), TOKEN_KEY);
    cmd.arg("follow").arg(&id);
    let out = run(cmd).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("made for {}", api.trim_end_matches('/'))),
        "{}",
        out.stderr
    );
    let mut cmd = with_keys(state, "http://collector.example", TOKEN_KEY);
    cmd.arg("follow").arg(&id);
    let out = run(cmd).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("https://"), "{}", out.stderr);
    let (here, there) = (api.trim_end_matches('/'), other.base_url());
    let there = there.trim_end_matches('/');
    let mut edited = 0;
    for path in support::files::all_files(state) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.contains("api_origin") && text.contains(here) {
            std::fs::write(&path, text.replace(here, there)).expect("edits");
            edited += 1;
        }
    }
    assert_eq!(edited, 1, "one connection record names the origin");
    let mut cmd = with_keys(state, there, TOKEN_KEY);
    cmd.arg("follow").arg(&id);
    let out = run(cmd).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be opened"), "{}", out.stderr);
    assert!(
        other.requests().is_empty(),
        "a request reached the other server"
    );
    for path in support::files::all_files(state) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.contains("api_origin") && text.contains(there) {
            std::fs::write(&path, text.replace(there, here)).expect("restores");
        }
    }

    // The list, as JSON with the plan's names and without any token.
    let mut cmd = with_keys(state, &api, TOKEN_KEY);
    cmd.args(["breakglass", "list", "--json"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let entries: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let entry = &entries[0];
    for field in [
        "connection_id",
        "expires_at",
        "access_count",
        "max_access_count",
        "is_active",
        "reason",
    ] {
        assert!(entry.get(field).is_some(), "{field} in {entry}");
    }
    assert_eq!(entry["access_count"], 0);
    assert!(!out.stdout.contains(TOKEN));
    let connection = entry["connection_id"].as_str().expect("id").to_owned();

    // The token key is replaced: a viewer is told what happened and what to do.
    let mut cmd = with_keys(state, &api, NEW_TOKEN_KEY);
    cmd.arg("follow").arg(&id);
    let out = run(cmd).await;
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(out.stderr.contains("cannot be opened"), "{}", out.stderr);
    assert!(out.stderr.contains("shiplog login"), "{}", out.stderr);
    assert!(!out.stderr.contains(TOKEN));

    // An admin with breakglass on gets through, audited.
    let mut cmd = admin(with_keys(state, &api, NEW_TOKEN_KEY));
    // From the start again: the first run left its place saved.
    cmd.arg("follow").arg(&id).args(["--since", "0"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("BREAKGLASS"), "{}", out.stderr);
    assert!(out.stdout.contains("Build Completed"));

    // Explicit access: denied for a viewer, granted for the admin (the token on stdout).
    let mut cmd = with_keys(state, &api, NEW_TOKEN_KEY);
    cmd.args(["breakglass", "access", &connection, "--justification", WHY]);
    let out = run(cmd).await;
    assert_eq!(out.code, 77);
    assert!(out.stderr.contains("switched off"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let mut cmd = admin(with_keys(state, &api, NEW_TOKEN_KEY));
    cmd.args(["breakglass", "access", &connection, "--justification", WHY]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), TOKEN);
    assert!(out.stderr.contains("8 uses left"), "{}", out.stderr);
    assert!(
        out.stderr.contains("VERCEL_BREAKGLASS_ACCESS"),
        "{}",
        out.stderr
    );

    // The audit trail: every attempt, newest first.
    let mut cmd = with_keys(state, &api, NEW_TOKEN_KEY);
    cmd.args(["breakglass", "audit", "--json"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let trail: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let outcomes: Vec<&str> = trail
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(outcomes, ["granted", "denied", "granted"]);
    assert_eq!(trail[0]["admin_id"], "ana");
    assert_eq!(trail[0]["justification"], WHY);

    // Rotation: the lost key is found again and listed as old; everything is resealed.
    let mut cmd = with_keys(state, &api, NEW_TOKEN_KEY);
    cmd.env("TOKEN_ENCRYPTION_OLD_KEYS", TOKEN_KEY)
        .args(["vault", "rotate"]);
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("Resealed 1 of 1 stored tokens"),
        "{}",
        out.stdout
    );
    let mut cmd = with_keys(state, &api, NEW_TOKEN_KEY);
    cmd.arg("follow").arg(&id);
    let out = run(cmd).await;
    assert_eq!(
        out.code, 0,
        "the new key alone opens it now: {}",
        out.stderr
    );
}

/// `shiplog login` without a token: Sign in with Vercel through a local authorization server
/// that checks the PKCE verifier; the login and its breakglass entry are stored.
#[tokio::test]
async fn signing_in_with_vercel_stores_the_login_and_its_breakglass_entry() {
    use support::oauth_server::{self, Behaviour};
    use tokio::io::{AsyncBufReadExt, BufReader};

    let sim = SimulatorHandle::start(SimulatorOptions::default())
        .await
        .expect("simulator");
    let auth = oauth_server::start(Behaviour::Approve).await;
    let state = tempfile::tempdir().expect("dir");
    let mut cmd = with_keys(state.path(), &sim.base_url(), TOKEN_KEY);
    cmd.env("VERCEL_OAUTH_CLIENT_SECRET", "oauth-client-secret-123")
        .args(["login", "--no-browser", "--client-id", "cl_shiplog_test"])
        .args(["--authorize-url", &auth.authorize_url()])
        .args(["--token-url", &auth.token_url()]);
    let mut child = cmd.spawn().expect("shiplog starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if let Some(url) = line.trim().strip_prefix("http") {
                return format!("http{url}");
            }
        }
        panic!("no sign-in URL on stderr");
    })
    .await
    .expect("the sign-in URL within 30 s");
    // The "browser": follows the authorization server's redirect to the loopback callback.
    let page = reqwest::get(&url)
        .await
        .expect("the browser reaches the loopback");
    assert!(page.status().is_success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("login finishes")
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Breakglass entry made (automatic_on_oauth_success)"),
        "{stdout}"
    );
    assert_eq!(auth.verifier_matched(), Some(true));
    assert_eq!(auth.client_secrets_seen(), ["oauth-client-secret-123"]);
    let at_rest = support::files::all_text(state.path());
    assert!(
        !at_rest.contains("vca_"),
        "the OAuth tokens are sealed at rest"
    );
}

/// A stored login is a real team, not the demo: in development alerting stays off unless it is
/// switched on (only the demo turns it on by itself).
#[tokio::test]
async fn a_stored_login_in_development_does_not_alert_unless_switched_on() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    let sim = SimulatorHandle::start(SimulatorOptions {
        speed: 40.0,
        token: Some(TOKEN.to_owned()),
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let api = sim.base_url();
    let state = tempfile::tempdir().expect("dir");
    let state = state.path();
    let mut cmd = with_keys(state, &api, TOKEN_KEY);
    cmd.env("VERCEL_TOKEN", TOKEN).arg("login");
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Queued for 5 s first, so that `watch` finds it building however slowly it starts.
    let id = sim.add_deployment(shiplog::demo::DeploymentSpec {
        queued_ms: 200_000,
        ..scenarios::by_name("failing-build").expect("scenario")
    });
    let mut child = with_keys(state, &api, TOKEN_KEY)
        .arg("watch")
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while !printed.contains(&format!("Deployment {id}")) || !printed.contains("is ERROR") {
            let read = stdout.read_line(&mut printed).await.expect("read");
            assert!(read > 0, "watch ended early: {printed}");
        }
    })
    .await
    .expect("the failure within 30 s");
    support::bin::terminate(child.id().expect("pid"));
    // What alerting there is has its say before `watch` exits.
    stdout.read_to_string(&mut printed).await.expect("read");
    let status = child.wait().await.expect("status");
    assert_eq!(status.code(), Some(130), "stopped by SIGTERM: {printed}");
    assert!(!printed.contains("ALERT"), "{printed}");
}

/// The breakglass files, found by name under the state directory.
fn breakglass_file(state: &Path, prefix: &str) -> std::path::PathBuf {
    support::files::all_files(state)
        .into_iter()
        .find(|p| {
            p.parent().is_some_and(|d| d.ends_with("breakglass"))
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no breakglass file {prefix}*"))
}

#[tokio::test]
async fn tampered_breakglass_files_are_refused_and_reported() {
    let sim = SimulatorHandle::start(SimulatorOptions {
        token: Some(TOKEN.to_owned()),
        ..SimulatorOptions::default()
    })
    .await
    .expect("simulator");
    let api = sim.base_url();
    let home = tempfile::tempdir().expect("dir");
    let state = home.path();
    let mut cmd = with_keys(state, &api, TOKEN_KEY);
    cmd.env("VERCEL_TOKEN", TOKEN).arg("login");
    assert_eq!(run(cmd).await.code, 0);
    let access = |state: &Path| {
        let mut cmd = admin(with_keys(state, &api, TOKEN_KEY));
        let connection = breakglass_file(state, "entry-")
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches("entry-")
                    .trim_end_matches(".json")
                    .to_owned()
            })
            .expect("name");
        cmd.args(["breakglass", "access", &connection, "--justification", WHY]);
        cmd
    };
    let audit = |state: &Path| {
        let mut cmd = with_keys(state, &api, TOKEN_KEY);
        cmd.args(["breakglass", "audit"]);
        cmd
    };
    let out = run(access(state)).await;
    assert_eq!(out.code, 0, "the untouched store grants: {}", out.stderr);
    assert_eq!(run(audit(state)).await.code, 0);

    // Each tampering, then the file put back.
    let entry = breakglass_file(state, "entry-");
    let original = std::fs::read_to_string(&entry).expect("entry");
    std::fs::write(
        &entry,
        original.replace("\"max_access_count\": 10", "\"max_access_count\": 1000"),
    )
    .expect("edit");
    let out = run(access(state)).await;
    assert_eq!(out.code, 77, "{}", out.stderr);
    assert!(out.stderr.contains("tampered with"), "{}", out.stderr);
    assert!(
        out.stderr.contains("VERCEL_BREAKGLASS_ACCESS"),
        "the alarm is raised: {}",
        out.stderr
    );
    std::fs::write(&entry, &original).expect("restore");

    let counter = breakglass_file(state, "uses-");
    let count = std::fs::read(&counter).expect("counter");
    std::fs::remove_file(&counter).expect("delete");
    let out = run(access(state)).await;
    assert_eq!(
        out.code, 77,
        "a deleted counter is not a reset: {}",
        out.stderr
    );
    assert!(out.stderr.contains("is missing"), "{}", out.stderr);
    std::fs::write(&counter, &count).expect("restore");

    let trail = breakglass_file(state, "audit.ndjson");
    let records = std::fs::read_to_string(&trail).expect("trail");
    std::fs::write(&trail, records.replacen("granted", "denied", 1)).expect("edit");
    let out = run(audit(state)).await;
    assert_eq!(out.code, 65, "{}", out.stderr);
    assert!(out.stderr.contains("broken at record 1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("VERCEL_BREAKGLASS_ACCESS"),
        "{}",
        out.stderr
    );
    std::fs::write(&trail, "").expect("truncate");
    let out = run(audit(state)).await;
    assert_eq!(
        out.code, 65,
        "a cut trail is not an empty one: {}",
        out.stderr
    );
    let out = run(access(state)).await;
    assert_eq!(
        out.code, 77,
        "nothing is granted on a broken trail: {}",
        out.stderr
    );
    std::fs::write(&trail, &records).expect("restore");
    let out = run(access(state)).await;
    assert_eq!(out.code, 0, "restored, it grants again: {}", out.stderr);
}
