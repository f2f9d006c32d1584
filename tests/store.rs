//! The state store against both backends: the same cases on embedded files and on a real
//! Redis, then what only one backend has (files on disk; URLs, ACLs and outages).

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shiplog::store::{Backend, DegradedHook, RedisOptions, StateStore, StoreError};
use tempfile::TempDir;

use support::redis::{fresh_namespace, RedisServer};
use support::wait::eventually;

const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ResumeState {
    since: u64,
    seen_event_ids: Vec<String>,
}

fn resume_state(since: u64) -> ResumeState {
    ResumeState {
        since,
        seen_event_ids: vec!["evt_1".into(), "evt_2".into()],
    }
}

/// A store on one backend, plus what it needs to stay alive.
struct Fixture {
    store: StateStore,
    dir: TempDir,
    server: Option<RedisServer>,
    degradations: Arc<Mutex<Vec<String>>>,
}

impl Fixture {
    async fn embedded() -> Self {
        let dir = tempdir();
        let store = StateStore::embedded(dir.path().join("state"), &fresh_namespace())
            .expect("open embedded store");
        Self {
            store,
            dir,
            server: None,
            degradations: Arc::default(),
        }
    }

    async fn redis() -> Self {
        let server = RedisServer::start();
        let dir = tempdir();
        let (hook, degradations) = recording_hook();
        let store = StateStore::redis(
            &server.url,
            &fresh_namespace(),
            dir.path().join("fallback"),
            hook,
        )
        .await
        .expect("connect to the test redis-server");
        Self {
            store,
            dir,
            server: Some(server),
            degradations,
        }
    }

    /// Another store on the same backend (same directory or same server), like a second
    /// process would open.
    async fn open(&self, namespace: &str) -> StateStore {
        match &self.server {
            None => StateStore::embedded(self.dir.path().join("state"), namespace),
            Some(server) => {
                StateStore::redis(
                    &server.url,
                    namespace,
                    self.dir.path().join("fallback"),
                    Arc::new(|_: &str| {}),
                )
                .await
            }
        }
        .expect("open a second store")
    }

    fn assert_healthy(&self) {
        assert!(
            !self.store.is_degraded(),
            "store went degraded during a plain case"
        );
        assert!(self.degradations.lock().unwrap().is_empty());
    }
}

/// Runs each case once per backend: `embedded::<case>` and `redis::<case>`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::Fixture::embedded().await;
                    assert_eq!(fixture.store.backend(), super::Backend::Embedded);
                    super::cases::$case(&fixture).await;
                    fixture.assert_healthy();
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::Fixture::redis().await;
                    assert_eq!(fixture.store.backend(), super::Backend::Redis);
                    super::cases::$case(&fixture).await;
                    fixture.assert_healthy();
                }
            )*
        }
    };
}

on_both_backends!(
    json_round_trips,
    missing_key_is_none,
    zero_ttl_keeps_the_value,
    delete_removes_and_tolerates_absent_keys,
    value_expires_after_its_ttl,
    put_if_absent_first_writer_wins,
    put_if_absent_takes_an_expired_slot,
    delete_if_removes_only_the_value_it_names,
    concurrent_put_if_absent_has_one_winner,
    two_stores_agree_on_put_if_absent,
    namespaces_are_isolated,
    odd_keys_round_trip_and_stay_distinct,
    value_of_the_wrong_shape_reads_as_none,
);

mod cases {
    use super::*;

    pub async fn json_round_trips(fx: &Fixture) {
        let store = &fx.store;
        store
            .put_json("vercel:resume:dpl_abc", &resume_state(1), HOUR)
            .await
            .unwrap();
        let back: Option<ResumeState> = store.get_json("vercel:resume:dpl_abc").await.unwrap();
        assert_eq!(back, Some(resume_state(1)));

        store
            .put_json("vercel:resume:dpl_abc", &resume_state(2), HOUR)
            .await
            .unwrap();
        let back: Option<ResumeState> = store.get_json("vercel:resume:dpl_abc").await.unwrap();
        assert_eq!(back, Some(resume_state(2)), "a put replaces the value");

        store
            .put_json("circuit:events", "open", HOUR)
            .await
            .unwrap();
        let back: Option<String> = store.get_json("circuit:events").await.unwrap();
        assert_eq!(
            back.as_deref(),
            Some("open"),
            "unsized values (str) work too"
        );
    }

    pub async fn missing_key_is_none(fx: &Fixture) {
        let back: Option<ResumeState> = fx.store.get_json("vercel:resume:nope").await.unwrap();
        assert_eq!(back, None);
    }

    pub async fn zero_ttl_keeps_the_value(fx: &Fixture) {
        fx.store.put_json("k", &1, Duration::ZERO).await.unwrap();
        assert_eq!(fx.store.get_json::<i32>("k").await.unwrap(), Some(1));
        assert_eq!(
            fx.store
                .put_if_absent("claim", "a", Duration::ZERO)
                .await
                .unwrap(),
            "a"
        );
        assert_eq!(
            fx.store
                .put_if_absent("claim", "b", Duration::ZERO)
                .await
                .unwrap(),
            "a"
        );
    }

    pub async fn delete_removes_and_tolerates_absent_keys(fx: &Fixture) {
        fx.store
            .put_json("alert_suppress:fp1", &true, HOUR)
            .await
            .unwrap();
        fx.store.delete("alert_suppress:fp1").await.unwrap();
        assert_eq!(
            fx.store
                .get_json::<bool>("alert_suppress:fp1")
                .await
                .unwrap(),
            None
        );
        fx.store.delete("alert_suppress:fp1").await.unwrap();
        fx.store.delete("never:written").await.unwrap();
    }

    pub async fn value_expires_after_its_ttl(fx: &Fixture) {
        let ttl = Duration::from_millis(50);
        let put_at = Instant::now();
        fx.store
            .put_json("alert_suppress:fp2", &"x", ttl)
            .await
            .unwrap();
        let right_after: Option<String> = fx.store.get_json("alert_suppress:fp2").await.unwrap();
        // Only meaningful if the read finished before the TTL ran out (slow CI may miss that).
        if put_at.elapsed() < ttl {
            assert_eq!(right_after.as_deref(), Some("x"));
        }
        fx.store.put_json("long", &"stays", HOUR).await.unwrap();

        eventually("the 50 ms value expires", move || async move {
            fx.store
                .get_json::<String>("alert_suppress:fp2")
                .await
                .unwrap()
                .is_none()
        })
        .await;
        assert_eq!(
            fx.store
                .get_json::<String>("long")
                .await
                .unwrap()
                .as_deref(),
            Some("stays")
        );
    }

    pub async fn put_if_absent_first_writer_wins(fx: &Fixture) {
        let key = "vercel:deployment_id:bld_1";
        let first = fx
            .store
            .put_if_absent(key, "vercel-bld_1-AAAA", HOUR)
            .await
            .unwrap();
        let second = fx
            .store
            .put_if_absent(key, "vercel-bld_1-BBBB", HOUR)
            .await
            .unwrap();
        assert_eq!(first, "vercel-bld_1-AAAA");
        assert_eq!(second, "vercel-bld_1-AAAA");
    }

    pub async fn delete_if_removes_only_the_value_it_names(fx: &Fixture) {
        let key = "action_claim:cancel:dpl_1";
        fx.store.put_if_absent(key, "bob's", HOUR).await.unwrap();
        // A claim given back late must not remove the one that replaced it.
        assert!(!fx.store.delete_if(key, "alice's").await.unwrap());
        assert_eq!(
            fx.store.put_if_absent(key, "carol's", HOUR).await.unwrap(),
            "bob's"
        );
        assert!(fx.store.delete_if(key, "bob's").await.unwrap());
        assert!(
            !fx.store.delete_if(key, "bob's").await.unwrap(),
            "gone already"
        );
        assert_eq!(
            fx.store.put_if_absent(key, "carol's", HOUR).await.unwrap(),
            "carol's"
        );
    }

    pub async fn put_if_absent_takes_an_expired_slot(fx: &Fixture) {
        let key = "vercel:deployment_id:bld_2";
        fx.store
            .put_if_absent(key, "old", Duration::from_millis(30))
            .await
            .unwrap();
        eventually(
            "the 30 ms claim expires and a new one wins",
            move || async move { fx.store.put_if_absent(key, "new", HOUR).await.unwrap() == "new" },
        )
        .await;
        assert_eq!(
            fx.store.put_if_absent(key, "newer", HOUR).await.unwrap(),
            "new"
        );
    }

    pub async fn concurrent_put_if_absent_has_one_winner(fx: &Fixture) {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = fx.store.clone();
                tokio::spawn(async move {
                    store
                        .put_if_absent("vercel:deployment_id:race", &format!("task-{i}"), HOUR)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let seen = join_all(tasks).await;
        assert_one_winner(&seen);
    }

    pub async fn two_stores_agree_on_put_if_absent(fx: &Fixture) {
        let other = fx.open(fx.store.namespace()).await;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = if i % 2 == 0 {
                    fx.store.clone()
                } else {
                    other.clone()
                };
                tokio::spawn(async move {
                    store
                        .put_if_absent("vercel:deployment_id:shared", &format!("store-{i}"), HOUR)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let seen = join_all(tasks).await;
        assert_one_winner(&seen);
        let again = other
            .put_if_absent("vercel:deployment_id:shared", "late", HOUR)
            .await
            .unwrap();
        assert_eq!(again, seen[0]);
    }

    pub async fn namespaces_are_isolated(fx: &Fixture) {
        let a = fx.open(&fresh_namespace()).await;
        let b = fx.open(&fresh_namespace()).await;
        a.put_json("vercel:resume:dpl_x", &resume_state(1), HOUR)
            .await
            .unwrap();
        b.put_json("vercel:resume:dpl_x", &resume_state(2), HOUR)
            .await
            .unwrap();
        assert_eq!(
            a.get_json("vercel:resume:dpl_x").await.unwrap(),
            Some(resume_state(1))
        );
        assert_eq!(
            b.get_json("vercel:resume:dpl_x").await.unwrap(),
            Some(resume_state(2))
        );
        assert_eq!(
            fx.store
                .get_json::<ResumeState>("vercel:resume:dpl_x")
                .await
                .unwrap(),
            None
        );

        assert_eq!(a.put_if_absent("claim", "a", HOUR).await.unwrap(), "a");
        assert_eq!(b.put_if_absent("claim", "b", HOUR).await.unwrap(), "b");
        a.delete("vercel:resume:dpl_x").await.unwrap();
        assert_eq!(
            b.get_json("vercel:resume:dpl_x").await.unwrap(),
            Some(resume_state(2))
        );
    }

    pub async fn odd_keys_round_trip_and_stay_distinct(fx: &Fixture) {
        for (i, key) in ODD_KEYS.iter().enumerate() {
            fx.store.put_json(key, &i, HOUR).await.unwrap();
        }
        for (i, key) in ODD_KEYS.iter().enumerate() {
            assert_eq!(
                fx.store.get_json::<usize>(key).await.unwrap(),
                Some(i),
                "key {key:?}"
            );
        }
    }

    pub async fn value_of_the_wrong_shape_reads_as_none(fx: &Fixture) {
        fx.store
            .put_json("vercel:resume:dpl_y", "not a resume state", HOUR)
            .await
            .unwrap();
        let back: Option<ResumeState> = fx.store.get_json("vercel:resume:dpl_y").await.unwrap();
        assert_eq!(back, None);
    }
}

/// Keys that differ only in case or punctuation, that look like paths, or are empty.
const ODD_KEYS: &[&str] = &[
    "vercel:resume:dpl_ABC/..\\x",
    "vercel:resume:dpl_abc/..\\x",
    "vercel:resume:dpl_abc_.._x",
    "../../../etc/passwd",
    "/absolute/path",
    "a/b",
    "a_b",
    "a:b",
    "a.b",
    "",
    ".",
    "..",
    "ключ:🚀",
    "nul\0byte",
];

mod embedded_only {
    use super::*;
    use std::path::Path;

    #[tokio::test]
    async fn creates_a_missing_directory() {
        let root = tempdir();
        let dir = root.path().join("a").join("b").join("state");
        let store = StateStore::embedded(&dir, "ns:").unwrap();
        store.put_json("k", &1, HOUR).await.unwrap();
        assert!(dir.is_dir());
        assert_eq!(store.backend().to_string(), "embedded");
        assert!(!store.is_degraded());
    }

    #[tokio::test]
    async fn odd_keys_cannot_escape_the_directory() {
        let root = tempdir();
        let dir = root.path().join("state");
        let store = StateStore::embedded(&dir, &fresh_namespace()).unwrap();
        for key in ODD_KEYS {
            store.put_json(key, &"v", HOUR).await.unwrap();
            store
                .put_if_absent(&format!("{key}:claim"), "v", HOUR)
                .await
                .unwrap();
        }
        let at_root = names_in(root.path());
        assert_eq!(
            at_root,
            vec!["state".to_owned()],
            "nothing written beside the state dir"
        );
        let files = names_in(&dir);
        assert_eq!(
            files.len(),
            ODD_KEYS.len() * 2,
            "one file per key: {files:?}"
        );
        for name in &files {
            assert!(dir.join(name).is_file(), "{name} is a plain file");
            assert!(name.ends_with(".json") && !name.starts_with('.'), "{name}");
        }
    }

    #[tokio::test]
    async fn a_corrupt_file_reads_as_absent() {
        let root = tempdir();
        let store = StateStore::embedded(root.path(), "ns:").unwrap();
        store
            .put_json("vercel:resume:dpl_c", &resume_state(1), HOUR)
            .await
            .unwrap();
        let files = names_in(root.path());
        assert_eq!(files.len(), 1);
        let path = root.path().join(&files[0]);

        for garbage in [
            &b"{\"key\": \"ns:vercel:res"[..],
            b"",
            b"\xff\xfe not json",
            b"[1,2,3]",
        ] {
            std::fs::write(&path, garbage).unwrap();
            let back: Option<ResumeState> = store.get_json("vercel:resume:dpl_c").await.unwrap();
            assert_eq!(back, None);
        }
        assert_eq!(
            store
                .put_if_absent("vercel:resume:dpl_c", "ours", HOUR)
                .await
                .unwrap(),
            "ours"
        );
    }

    #[tokio::test]
    async fn expired_files_are_removed_when_read() {
        let root = tempdir();
        let store = StateStore::embedded(root.path(), "ns:").unwrap();
        store
            .put_json("short", &1, Duration::from_millis(20))
            .await
            .unwrap();
        let store = &store;
        eventually("the entry expires", move || async move {
            store.get_json::<i32>("short").await.unwrap().is_none()
        })
        .await;
        assert!(
            names_in(root.path()).is_empty(),
            "expired file was deleted lazily"
        );
    }

    #[tokio::test]
    async fn expired_files_are_swept_at_open() {
        let root = tempdir();
        let store = StateStore::embedded(root.path(), "ns:").unwrap();
        store
            .put_json("short", &1, Duration::from_millis(20))
            .await
            .unwrap();
        store.put_json("long", &2, HOUR).await.unwrap();
        let root = &root;
        eventually(
            "the short entry expires and a reopen sweeps it",
            move || async move {
                StateStore::embedded(root.path(), "ns:").unwrap();
                names_in(root.path()).len() == 1
            },
        )
        .await;
        assert_eq!(store.get_json::<i32>("long").await.unwrap(), Some(2));
    }

    /// Separate OS processes racing on one directory: each runs `claim_in_child_process`.
    #[test]
    fn processes_agree_on_put_if_absent() {
        let root = tempdir();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..4)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args([
                        "embedded_only::claim_in_child_process",
                        "--exact",
                        "--ignored",
                        "--nocapture",
                    ])
                    .env("SHIPLOG_TEST_STORE_DIR", root.path())
                    .env("SHIPLOG_TEST_CLAIMANT", format!("process-{i}"))
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut seen = Vec::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "child failed: {output:?}");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let winners: Vec<String> = stdout
                .lines()
                .filter_map(|line| line.strip_prefix("WINNER="))
                .map(str::to_owned)
                .collect();
            assert_eq!(winners.len(), 5, "child output: {stdout}");
            seen.extend(winners);
        }
        assert_one_winner(&seen);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "run by processes_agree_on_put_if_absent as a child process"]
    async fn claim_in_child_process() {
        let (Ok(dir), Ok(claimant)) = (
            std::env::var("SHIPLOG_TEST_STORE_DIR"),
            std::env::var("SHIPLOG_TEST_CLAIMANT"),
        ) else {
            println!("nothing to do: processes_agree_on_put_if_absent runs this as a child");
            return;
        };
        let store = StateStore::embedded(dir, "ns:").unwrap();
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let store = store.clone();
                let value = format!("{claimant}-task-{i}");
                tokio::spawn(async move {
                    store
                        .put_if_absent("vercel:deployment_id:bld_p", &value, HOUR)
                        .await
                        .unwrap()
                })
            })
            .collect();
        for winner in join_all(tasks).await {
            println!("WINNER={winner}");
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

mod redis_only {
    use super::*;

    fn quick_retry() -> RedisOptions {
        RedisOptions {
            connect_timeout: Duration::from_secs(3),
            command_timeout: Duration::from_secs(1),
            retry_interval: Duration::from_millis(100),
        }
    }

    async fn connect(url: &str, hook: DegradedHook) -> Result<StateStore, StoreError> {
        let dir = tempdir();
        StateStore::redis_with_options(url, &fresh_namespace(), dir.path(), hook, quick_retry())
            .await
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast_without_the_password() {
        let started = Instant::now();
        let err = connect("redis://user:secretpw@127.0.0.1:1", Arc::new(|_: &str| {}))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let message = err.to_string();
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("connection refused"), "{message}");
        assert_no_secret(&err, "secretpw");
    }

    #[tokio::test]
    async fn an_invalid_url_is_named_without_the_password() {
        for url in [
            "redis://user:secretpw@127.0.0.1:notaport",
            "http://user:secretpw@127.0.0.1:6379",
            "redis://user:secretpw@127.0.0.1:6379/notadb",
        ] {
            let err = connect(url, Arc::new(|_: &str| {})).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidRedisUrl { .. }),
                "{url}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("REDIS_URL"), "{message}");
            assert!(message.contains("user:***@127.0.0.1"), "{message}");
            assert_no_secret(&err, "secretpw");
        }
    }

    #[tokio::test]
    async fn a_wrong_password_is_reported_without_it() {
        let server = RedisServer::start_private_with(&["--requirepass", "rightpw"]);
        let url = format!("redis://default:secretpw@127.0.0.1:{}", server.port());
        let err = connect(&url, Arc::new(|_: &str| {})).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("127.0.0.1:{}", server.port())),
            "{message}"
        );
        assert_no_secret(&err, "secretpw");
    }

    #[tokio::test]
    async fn debug_output_hides_the_password() {
        let server = RedisServer::start_private_with(&["--requirepass", "rightpw"]);
        let url = format!("redis://default:rightpw@127.0.0.1:{}", server.port());
        let store = connect(&url, Arc::new(|_: &str| {})).await.unwrap();
        store.put_json("k", &1, HOUR).await.unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("rightpw"), "{debug}");
        assert!(debug.contains("default:***@127.0.0.1"), "{debug}");
        assert_eq!(store.backend().to_string(), "redis");
    }

    /// The breakglass rule: a NOPERM must reach the caller, never be served from local files.
    #[tokio::test]
    async fn a_permission_error_is_an_error_not_an_outage() {
        let server = RedisServer::start_private();
        let namespace = fresh_namespace();
        redis_command(
            &server.url,
            ::redis::cmd("ACL")
                .arg("SETUSER")
                .arg("dashboard")
                .arg("on")
                .arg(">dashboardpw")
                .arg(format!("~{namespace}vercel:*"))
                .arg("+@all"),
        )
        .await;
        let (hook, degradations) = recording_hook();
        let url = format!("redis://dashboard:dashboardpw@127.0.0.1:{}", server.port());
        let dir = tempdir();
        let store =
            StateStore::redis_with_options(&url, &namespace, dir.path(), hook, quick_retry())
                .await
                .unwrap();

        store
            .put_json("vercel:resume:dpl_a", &1, HOUR)
            .await
            .unwrap();
        let err = store
            .put_json("breakglass:entry:1", &"token", HOUR)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no permissions"), "{err}");
        assert!(store
            .get_json::<String>("breakglass:entry:1")
            .await
            .is_err());
        assert!(store
            .put_if_absent("breakglass:entry:1", "x", HOUR)
            .await
            .is_err());
        assert!(!store.is_degraded());
        assert!(degradations.lock().unwrap().is_empty());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing went to the fallback"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn survives_a_redis_outage_and_returns_to_redis() {
        let mut server = RedisServer::start_private();
        let namespace = fresh_namespace();
        let (hook, degradations) = recording_hook();
        let dir = tempdir();
        let store = StateStore::redis_with_options(
            &server.url,
            &namespace,
            dir.path(),
            hook,
            quick_retry(),
        )
        .await
        .unwrap();
        let url = server.url.clone();
        let in_redis = |key: &str| redis_get(&url, format!("{namespace}{key}"));

        store
            .put_json("vercel:resume:before", &1, HOUR)
            .await
            .unwrap();
        assert_eq!(in_redis("vercel:resume:before").await.as_deref(), Some("1"));

        server.stop();
        for i in 0..30 {
            store
                .put_json("vercel:resume:during", &i, HOUR)
                .await
                .unwrap();
            assert_eq!(
                store.get_json::<i32>("vercel:resume:during").await.unwrap(),
                Some(i)
            );
            let id = store
                .put_if_absent("vercel:deployment_id:b", "local-id", HOUR)
                .await
                .unwrap();
            assert_eq!(id, "local-id");
            store
                .put_json("vercel:resume:deleted", &i, HOUR)
                .await
                .unwrap();
            store.delete("vercel:resume:deleted").await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await; // spread over several retry intervals
        }
        assert!(store.is_degraded());
        assert_eq!(
            store.backend(),
            Backend::Redis,
            "still reports the chosen backend"
        );
        {
            let reasons = degradations.lock().unwrap();
            assert_eq!(reasons.len(), 1, "hook fires once per outage: {reasons:?}");
            assert!(
                reasons[0].contains(&format!("127.0.0.1:{}", server.port())),
                "{}",
                reasons[0]
            );
        }

        server.restart();
        let store = &store;
        eventually("writes reach Redis again", move || async move {
            store
                .put_json("vercel:resume:after", &"back", HOUR)
                .await
                .unwrap();
            in_redis("vercel:resume:after").await.as_deref() == Some("\"back\"")
        })
        .await;
        assert!(!store.is_degraded());
        assert_eq!(degradations.lock().unwrap().len(), 1);
        // What was written during the outage was copied to the (empty, restarted) Redis.
        assert_eq!(
            in_redis("vercel:resume:during").await.as_deref(),
            Some("29")
        );
        assert_eq!(
            in_redis("vercel:deployment_id:b").await.as_deref(),
            Some("local-id")
        );
        assert_eq!(in_redis("vercel:resume:deleted").await, None);
        assert_eq!(
            store.get_json::<i32>("vercel:resume:during").await.unwrap(),
            Some(29)
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "the fallback is emptied once Redis has its data"
        );

        // A second outage is reported again.
        server.stop();
        store
            .put_json("vercel:resume:again", &1, HOUR)
            .await
            .unwrap();
        assert!(store.is_degraded());
        assert_eq!(degradations.lock().unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_made_during_an_outage_does_not_override_redis() {
        let mut server = RedisServer::start_private();
        let namespace = fresh_namespace();
        let (hook, _) = recording_hook();
        let dir = tempdir();
        let store = StateStore::redis_with_options(
            &server.url,
            &namespace,
            dir.path(),
            hook,
            quick_retry(),
        )
        .await
        .unwrap();

        server.stop();
        assert_eq!(
            store
                .put_if_absent("vercel:deployment_id:c", "mine", HOUR)
                .await
                .unwrap(),
            "mine"
        );
        server.restart();
        // Another machine claimed the id in Redis before we caught up.
        redis_command(
            &server.url,
            ::redis::cmd("SET")
                .arg(format!("{namespace}vercel:deployment_id:c"))
                .arg("theirs"),
        )
        .await;
        let store = &store;
        eventually("the store is back on Redis", move || async move {
            store.put_json("probe", &1, HOUR).await.unwrap();
            !store.is_degraded()
        })
        .await;
        assert_eq!(
            store
                .put_if_absent("vercel:deployment_id:c", "mine", HOUR)
                .await
                .unwrap(),
            "theirs"
        );
    }

    fn assert_no_secret(err: &StoreError, secret: &str) {
        let display = err.to_string();
        let debug = format!("{err:?}");
        assert!(!display.contains(secret), "{display}");
        assert!(!debug.contains(secret), "{debug}");
    }

    async fn redis_get(url: &str, key: String) -> Option<String> {
        let client = ::redis::Client::open(url).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        ::redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap()
    }

    async fn redis_command(url: &str, command: &::redis::Cmd) {
        let client = ::redis::Client::open(url).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        command.query_async::<()>(&mut connection).await.unwrap();
    }
}

fn tempdir() -> TempDir {
    tempfile::tempdir().expect("create a temp dir")
}

fn recording_hook() -> (DegradedHook, Arc<Mutex<Vec<String>>>) {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reasons);
    let hook: DegradedHook = Arc::new(move |reason: &str| {
        sink.lock().unwrap().push(reason.to_owned());
    });
    (hook, reasons)
}

async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("task panicked"));
    }
    results
}

fn assert_one_winner(seen: &[String]) {
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        1,
        "everyone must see the same winner: {seen:?}"
    );
}

/// Entries nobody reads again (a delivery ledger's) do not pile up in the state directory: a
/// sweep drops the expired ones and keeps the rest.
#[tokio::test]
async fn a_sweep_drops_expired_entries_nobody_reads_again() {
    let dir = TempDir::new().expect("dir");
    let state = dir.path().join("state");
    let store = StateStore::embedded(&state, &fresh_namespace()).expect("store");
    for i in 0..20 {
        store
            .put_if_absent(
                &format!("webhook:delivery:{i}"),
                "x",
                Duration::from_millis(1),
            )
            .await
            .expect("put");
    }
    store
        .put_json("kept", &"still here", Duration::from_secs(3600))
        .await
        .expect("put");
    let files = || std::fs::read_dir(&state).expect("dir").count();
    assert!(files() >= 21);
    eventually("the expired entries are swept", async || {
        store.sweep_expired().await;
        files() == 1
    })
    .await;
    assert_eq!(
        store
            .get_json::<String>("kept")
            .await
            .expect("get")
            .as_deref(),
        Some("still here")
    );
}
