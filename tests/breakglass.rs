//! Breakglass: every denial reason, the use limit under concurrency, expiry, recovery after the
//! token key is replaced, tampering, the audit trail failing closed, and the Redis ACL layout
//! in which the ordinary dashboard's user cannot touch breakglass keys and the audit stream is
//! append-only for the engine.

mod support;

use std::sync::Arc;
use std::time::Duration;

use shiplog::breakglass::access::{Denial, Requester};
use shiplog::breakglass::audit::Outcome;
use shiplog::breakglass::connection::Connection;
use shiplog::breakglass::entry::Storage;
use shiplog::breakglass::store::BreakglassStore;
use shiplog::breakglass::{vault, Breakglass, Keyring, VaultError};
use shiplog::role::Role;
use shiplog::secret::Secret;
use support::keys::{BREAKGLASS_KEY, NEW_TOKEN_KEY, TOKEN_KEY};

const JUSTIFICATION: &str =
    "TOKEN_ENCRYPTION_KEY was rotated wrongly and production deploys are blocked";

fn ring(key: &str, var: &'static str) -> Keyring {
    Keyring::parse(key, None, var, "OLD_KEYS").expect("key")
}

fn admin() -> Requester {
    Requester {
        user: "ana".to_owned(),
        role: Role::BreakglassAdmin,
    }
}

/// A logged-in connection whose access token is `token`, sealed with the token key.
fn connection(token: &str) -> Connection {
    let id = Connection::new_id();
    let keys = ring(TOKEN_KEY, "TOKEN_ENCRYPTION_KEY");
    let (sealed, _) =
        vault::seal_tokens(&keys, vault::TOKEN, &id, &Secret::new(token), None).expect("seal");
    Connection {
        connection_id: id,
        user_id: "user_ana".to_owned(),
        team_id: Some("team_acme".to_owned()),
        team_name: Some("Acme".to_owned()),
        project_ids: vec!["prj_storefront".to_owned()],
        access_token: sealed,
        refresh_token: None,
        scopes: Vec::new(),
        created_at: 1_795_684_800_000,
        updated_at: 1_795_684_800_000,
        api_origin: None,
    }
}

fn breakglass(store: BreakglassStore) -> Breakglass {
    Breakglass::new(
        true,
        Storage::Sealed,
        Some(ring(BREAKGLASS_KEY, "BREAKGLASS_KEY")),
        store,
        None,
    )
}

async fn with_entry(bg: &Breakglass, token: &str) -> Connection {
    let connection = connection(token);
    bg.create_entry(
        &connection,
        &Secret::new(token),
        None,
        "automatic_on_oauth_success",
        None,
    )
    .await
    .expect("entry");
    connection
}

fn files() -> (tempfile::TempDir, BreakglassStore) {
    let dir = tempfile::tempdir().expect("dir");
    let store = BreakglassStore::files(dir.path().join("breakglass"), None).expect("store");
    (dir, store)
}

#[tokio::test]
async fn every_denial_says_exactly_why() {
    let (_dir, store) = files();
    let mut bg = breakglass(store);
    let connection = with_entry(&bg, "vca_live_1").await;
    let id = connection.connection_id.as_str();

    bg.enabled = false;
    let denied = bg
        .request_access(id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert_eq!(denied, Denial::SwitchedOff);
    assert!(denied.to_string().contains("VERCEL_BREAKGLASS_ENABLED"));
    bg.enabled = true;

    let viewer = Requester {
        user: "bo".to_owned(),
        role: Role::Viewer,
    };
    let denied = bg
        .request_access(id, &viewer, JUSTIFICATION)
        .await
        .unwrap_err();
    assert_eq!(denied, Denial::Role { role: "viewer" });

    let denied = bg
        .request_access(id, &admin(), "need it")
        .await
        .unwrap_err();
    assert!(matches!(&denied, Denial::Justification { problem } if problem.contains("too short")));
    let denied = bg
        .request_access(id, &admin(), "test test test test test test")
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, Denial::Justification { problem } if problem.contains("placeholder"))
    );

    let denied = bg
        .request_access("conn_nothere", &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert_eq!(
        denied,
        Denial::NoEntry {
            connection: "conn_nothere".to_owned()
        }
    );

    // Restricted, then inactive, then expired: written as an operator would.
    let mut entry = bg.store().entry(id).await.expect("read").expect("entry");
    entry.access_restricted_until = Some(entry.expires_at - 1000);
    assert!(bg.store().update_entry(&entry).await.expect("write"));
    let denied = bg
        .request_access(id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(matches!(denied, Denial::Restricted { .. }), "{denied}");
    entry.access_restricted_until = None;
    entry.is_active = false;
    assert!(bg.store().update_entry(&entry).await.expect("write"));
    let denied = bg
        .request_access(id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert_eq!(denied, Denial::Inactive);

    bg.ttl = Duration::ZERO;
    let expired = with_entry(&bg, "vca_live_2").await;
    let denied = bg
        .request_access(&expired.connection_id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(matches!(denied, Denial::Expired { .. }), "{denied}");
    let listed = bg.entries().await.expect("entries");
    assert!(
        listed
            .iter()
            .any(|e| e.connection_id == expired.connection_id && !e.is_active),
        "the sweeper made the expired entry inactive"
    );

    // Every attempt is in the audit trail, newest first, all denied.
    let audit = bg.audit(100).await.expect("audit");
    assert_eq!(audit.len(), 8);
    assert!(audit.iter().all(|r| r.outcome == Outcome::Denied));
    assert!(audit[0].reason.contains("expired"));
    assert!(!serde_json::to_string(&listed)
        .expect("json")
        .contains("vca_live"));
}

async fn the_limit_holds_under_concurrency(store: BreakglassStore) {
    let bg = Arc::new(breakglass(store));
    let connection = with_entry(&bg, "vca_live_limit").await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let bg = bg.clone();
        let id = connection.connection_id.clone();
        requests.spawn(async move { bg.request_access(&id, &admin(), JUSTIFICATION).await });
    }
    let mut granted = 0;
    let mut limited = 0;
    while let Some(result) = requests.join_next().await {
        match result.expect("task") {
            Ok(grant) => {
                assert_eq!(grant.access_token.expose(), "vca_live_limit");
                granted += 1;
            }
            Err(Denial::LimitReached { max: 10 }) => limited += 1,
            Err(other) => panic!("unexpected denial: {other}"),
        }
    }
    assert_eq!((granted, limited), (10, 10));
    let entry = bg
        .entries()
        .await
        .expect("entries")
        .into_iter()
        .find(|e| e.connection_id == connection.connection_id)
        .expect("entry");
    assert_eq!((entry.access_count, entry.uses_left()), (10, 0));
    assert!(entry.accessed_at.is_some());
}

#[tokio::test]
async fn twenty_parallel_requests_with_a_limit_of_ten_grant_exactly_ten_on_files() {
    let (_dir, store) = files();
    the_limit_holds_under_concurrency(store).await;
}

#[tokio::test]
async fn twenty_parallel_requests_with_a_limit_of_ten_grant_exactly_ten_on_redis() {
    let redis = support::redis::RedisServer::start();
    let prefix = format!("breakglass:{}", support::redis::fresh_namespace());
    let store = BreakglassStore::redis(&redis.url, &prefix)
        .await
        .expect("store");
    the_limit_holds_under_concurrency(store).await;
}

#[tokio::test]
async fn recovery_works_after_the_token_key_is_replaced() {
    let (_dir, store) = files();
    let bg = breakglass(store);
    let connection = with_entry(&bg, "vca_live_recover").await;
    // The token key is replaced by one that never sealed anything.
    let replaced = ring(NEW_TOKEN_KEY, "TOKEN_ENCRYPTION_KEY");
    let err = connection.access_token(&replaced).unwrap_err();
    assert!(matches!(err, VaultError::UnknownKey { .. }), "{err}");
    assert!(!err.to_string().contains("vca_live"));
    // The emergency copy, sealed with the independent breakglass key, still opens.
    let grant = bg
        .request_access(&connection.connection_id, &admin(), JUSTIFICATION)
        .await
        .expect("granted");
    assert_eq!(grant.access_token.expose(), "vca_live_recover");
    assert_eq!(grant.uses_left, 9);
    assert!(!format!("{grant:?}").contains("vca_live"));
    let audit = bg.audit(1).await.expect("audit");
    assert_eq!(audit[0].outcome, Outcome::Granted);
    assert_eq!(audit[0].justification, JUSTIFICATION);
    assert_eq!(audit[0].reason, "use 1 of 10");
}

#[tokio::test]
async fn a_tampered_copy_or_a_wrong_breakglass_key_reveals_nothing() {
    let (_dir, store) = files();
    let bg = breakglass(store);
    let connection = with_entry(&bg, "vca_live_tamper").await;
    let id = connection.connection_id.as_str();
    // Someone swaps in the copy of another connection.
    let other = with_entry(&bg, "vca_live_other").await;
    let mut entry = bg.store().entry(id).await.expect("read").expect("entry");
    let theirs = bg
        .store()
        .entry(&other.connection_id)
        .await
        .expect("read")
        .expect("entry");
    entry.access_token = theirs.access_token;
    assert!(bg.store().update_entry(&entry).await.expect("write"));
    let denied = bg
        .request_access(id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, Denial::CopyUnavailable { reason } if reason.contains("does not open")),
        "{denied}"
    );
    // The wrong breakglass key.
    let (dir2, store) = files();
    let sealed_with_one = breakglass(store);
    let kept = with_entry(&sealed_with_one, "vca_live_key").await;
    let wrong = Breakglass::new(
        true,
        Storage::Sealed,
        Some(ring(NEW_TOKEN_KEY, "BREAKGLASS_KEY")),
        BreakglassStore::files(dir2.path().join("breakglass"), None).expect("store"),
        None,
    );
    let denied = wrong
        .request_access(&kept.connection_id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, Denial::CopyUnavailable { reason } if reason.contains("BREAKGLASS_KEY")),
        "{denied}"
    );
    // Neither attempt used up an access.
    let entry = sealed_with_one
        .entries()
        .await
        .expect("entries")
        .into_iter()
        .find(|e| e.connection_id == kept.connection_id)
        .expect("entry");
    assert_eq!(entry.access_count, 0);
}

#[tokio::test]
async fn an_access_that_cannot_be_audited_is_denied_and_reveals_nothing() {
    let (dir, store) = files();
    let bg = breakglass(store);
    let connection = with_entry(&bg, "vca_live_audit").await;
    // The audit trail cannot be written: a directory stands where the file should be.
    let trail = dir.path().join("breakglass").join("audit.ndjson");
    std::fs::create_dir_all(&trail).expect("block the trail");
    let denied = bg
        .request_access(&connection.connection_id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(
        matches!(denied, Denial::AuditUnavailable { .. }),
        "{denied}"
    );
    assert!(denied.to_string().contains("nothing is revealed"));
    std::fs::remove_dir(&trail).expect("unblock");
    let grant = bg
        .request_access(&connection.connection_id, &admin(), JUSTIFICATION)
        .await
        .expect("granted once the trail works");
    assert_eq!(grant.uses_left, 9, "the failed attempt used no access");
}

/// The ACL layout of the README on a private Redis: the dashboard's user gets NOPERM on every
/// breakglass key; the engine's user may use grants and only append to the audit stream; the
/// auditor's user may only read the audit stream.
#[tokio::test]
async fn redis_acl_keeps_the_dashboard_out_and_the_audit_append_only() {
    let redis = support::redis::RedisServer::start_private();
    let admin_url = redis.url.clone();
    let client = redis::Client::open(admin_url.as_str()).expect("client");
    let mut admin_connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let env = format!("acl{}", std::process::id());
    let ordinary = format!("shiplog:{env}:");
    let guarded = format!("breakglass:{env}:");
    let layout = [
        format!("ACL SETUSER dashboard on >dash-pass resetkeys ~{ordinary}* resetchannels &{ordinary}* -@all +@read +@write +@scripting +@connection +@transaction +@pubsub -@dangerous"),
        format!("ACL SETUSER engine on >engine-pass resetkeys ~{guarded}entry:* ~{guarded}uses:* resetchannels -@all +@read +@write +@scripting +@connection +@transaction -@dangerous +scan (%W~{guarded}audit +xadd)"),
        format!("ACL SETUSER auditor on >audit-pass resetkeys %R~{guarded}audit -@all +@read +@connection -@dangerous"),
    ];
    for rule in &layout {
        let parts: Vec<&str> = rule.split_whitespace().collect();
        let mut command = redis::cmd(parts[0]);
        for part in &parts[1..] {
            command.arg(*part);
        }
        let _: () = command
            .query_async(&mut admin_connection)
            .await
            .expect("ACL SETUSER");
    }
    let port = redis.port();
    let url = |user: &str, pass: &str| format!("redis://{user}:{pass}@127.0.0.1:{port}/");

    // The engine creates an entry and grants access, writing the audit stream.
    let engine = breakglass(
        BreakglassStore::redis(&url("engine", "engine-pass"), &guarded)
            .await
            .expect("engine store"),
    );
    let connection = with_entry(&engine, "vca_live_acl").await;
    let grant = engine
        .request_access(&connection.connection_id, &admin(), JUSTIFICATION)
        .await
        .expect("the engine may grant");
    assert_eq!(grant.access_token.expose(), "vca_live_acl");

    // The dashboard's user: refused on every breakglass key, whatever the UI does.
    let dashboard = breakglass(
        BreakglassStore::redis(&url("dashboard", "dash-pass"), &guarded)
            .await
            .expect("dashboard store"),
    );
    let denied = dashboard
        .request_access(&connection.connection_id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, Denial::StoreUnavailable { reason } if reason.contains("may not touch breakglass keys")),
        "{denied}"
    );
    let dashboard_client = redis::Client::open(url("dashboard", "dash-pass")).expect("client");
    let mut dash = dashboard_client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    for command in [
        redis::cmd("GET")
            .arg(format!("{guarded}entry:{}", connection.connection_id))
            .clone(),
        redis::cmd("XRANGE")
            .arg(format!("{guarded}audit"))
            .arg("-")
            .arg("+")
            .clone(),
        redis::cmd("SET")
            .arg(format!("{guarded}uses:{}", connection.connection_id))
            .arg("0")
            .clone(),
    ] {
        let err = command
            .query_async::<redis::Value>(&mut dash)
            .await
            .expect_err("NOPERM");
        assert_eq!(err.code(), Some("NOPERM"), "{err}");
    }
    // The ordinary state still works for the dashboard.
    let _: () = redis::cmd("SET")
        .arg(format!("{ordinary}vercel:resume:dpl_1"))
        .arg("{}")
        .query_async(&mut dash)
        .await
        .expect("ordinary keys are the dashboard's");

    // The engine may only append to the audit stream: no reading, trimming or deleting it.
    let engine_client = redis::Client::open(url("engine", "engine-pass")).expect("client");
    let mut eng = engine_client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let audit_key = format!("{guarded}audit");
    for command in [
        redis::cmd("XRANGE")
            .arg(&audit_key)
            .arg("-")
            .arg("+")
            .clone(),
        redis::cmd("DEL").arg(&audit_key).clone(),
        redis::cmd("XTRIM")
            .arg(&audit_key)
            .arg("MAXLEN")
            .arg("0")
            .clone(),
        redis::cmd("EXPIRE").arg(&audit_key).arg("1").clone(),
    ] {
        let err = command
            .query_async::<redis::Value>(&mut eng)
            .await
            .expect_err("NOPERM");
        assert_eq!(err.code(), Some("NOPERM"), "{err}");
    }

    // The auditor reads the trail, and nothing else.
    let auditor = breakglass(
        BreakglassStore::redis(&url("auditor", "audit-pass"), &guarded)
            .await
            .expect("auditor store"),
    );
    let trail = auditor
        .audit(10)
        .await
        .expect("the auditor reads the trail");
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].outcome, Outcome::Granted);
    let denied = auditor
        .request_access(&connection.connection_id, &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(
        matches!(denied, Denial::StoreUnavailable { .. }),
        "{denied}"
    );
}

/// A login replaces an entry between a request's check and its use: the old entry's request
/// neither spends the new entry's uses nor writes the old entry back.
async fn a_replaced_entry_is_neither_spent_nor_written_back(store: BreakglassStore) {
    use shiplog::breakglass::store::Reservation;

    let bg = breakglass(store);
    let connection = with_entry(&bg, "vca_live_old").await;
    let id = connection.connection_id.as_str();
    let old = bg.store().entry(id).await.expect("read").expect("entry");
    bg.create_entry(
        &connection,
        &Secret::new("vca_live_new"),
        None,
        "automatic_on_oauth_success",
        None,
    )
    .await
    .expect("a new login");
    let reservation = bg
        .store()
        .reserve_use(id, &old.id, 10, old.expires_at)
        .await
        .expect("store");
    assert_eq!(reservation, Reservation::Replaced);
    let mut stale = old.clone();
    stale.is_active = false;
    assert!(
        !bg.store().update_entry(&stale).await.expect("store"),
        "not written back"
    );
    let grant = bg
        .request_access(id, &admin(), JUSTIFICATION)
        .await
        .expect("the new entry is whole");
    assert_eq!(grant.access_token.expose(), "vca_live_new");
    assert_eq!(grant.uses_left, 9);
}

#[tokio::test]
async fn a_replaced_entry_is_neither_spent_nor_written_back_on_files() {
    let (_dir, store) = files();
    a_replaced_entry_is_neither_spent_nor_written_back(store).await;
}

#[tokio::test]
async fn a_replaced_entry_is_neither_spent_nor_written_back_on_redis() {
    let redis = support::redis::RedisServer::start();
    let prefix = format!("breakglass:{}", support::redis::fresh_namespace());
    let store = BreakglassStore::redis(&redis.url, &prefix)
        .await
        .expect("store");
    a_replaced_entry_is_neither_spent_nor_written_back(store).await;
}

#[tokio::test]
async fn files_are_private_ids_are_checked_and_the_trail_has_no_control_characters() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, store) = files();
    let bg = breakglass(store);
    let connection = with_entry(&bg, "vca_live_files").await;
    let denied = bg
        .request_access("conn_../../etc", &admin(), JUSTIFICATION)
        .await
        .unwrap_err();
    assert!(matches!(denied, Denial::NoEntry { .. }), "{denied}");
    let sneaky = "Deploys are blocked\u{1b}[2J\nforged: granted to nobody at all";
    bg.request_access(&connection.connection_id, &admin(), sneaky)
        .await
        .expect("granted");
    let trail = bg.audit(1).await.expect("audit");
    assert!(!trail[0].justification.contains('\u{1b}'));
    assert!(!trail[0].justification.contains('\n'));
    let root = dir.path().join("breakglass");
    let mode = |path: std::path::PathBuf| {
        std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(root.clone()), 0o700);
    assert_eq!(
        mode(root.join(format!("entry-{}.json", connection.connection_id))),
        0o600
    );
    assert_eq!(mode(root.join("audit.ndjson")), 0o600);
    let debug = format!(
        "{:?}",
        bg.store()
            .entry(&connection.connection_id)
            .await
            .expect("read")
    );
    assert!(
        debug.contains("[REDACTED]") && !debug.contains("v1:"),
        "{debug}"
    );
}
