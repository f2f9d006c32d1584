//! The state store: small JSON values under namespaced keys, shared by every engine.
//!
//! Embedded (the default) keeps one file per key under the state directory. With `REDIS_URL`
//! the values live in Redis so several dashboards and workers share them; when Redis goes away
//! mid-run the store keeps working on local files and returns to Redis when it answers again.

mod embedded;
mod error;
mod failover;
mod lock;
mod redis_store;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::redis_io::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
use embedded::EmbeddedStore;
pub use error::StoreError;
use failover::FailoverStore;
pub use lock::StoreLock;
use redis_store::RedisStore;

/// Called once when a Redis-backed store loses Redis, with a one-sentence reason.
pub type DegradedHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Which backend a store was opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Redis,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Embedded => "embedded",
            Backend::Redis => "redis",
        })
    }
}

/// Timeouts and the retry pace of a Redis-backed store.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// How long opening the store may take (connect, authenticate, PING).
    pub connect_timeout: Duration,
    /// How long one command may take before Redis counts as gone.
    pub command_timeout: Duration,
    /// While degraded, the least time between two attempts to reach Redis again.
    pub retry_interval: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            retry_interval: Duration::from_secs(5),
        }
    }
}

/// Where shared state lives: files under the state directory (default), or Redis when
/// `REDIS_URL` is set.
///
/// Keys are the plan's names (`vercel:resume:{deploymentId}`, ...); the store puts its namespace
/// in front of each. A zero `ttl` keeps a value until it is deleted.
#[derive(Clone)]
pub struct StateStore {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    backing: Backing,
}

/// What keeps the values: files, or Redis with files to fall back on.
enum Backing {
    Embedded(EmbeddedStore),
    Redis(FailoverStore),
}

impl StateStore {
    /// Embedded backend rooted at `dir` (created if missing). `namespace` e.g. "shiplog:development:".
    pub fn embedded(dir: impl Into<PathBuf>, namespace: &str) -> Result<Self, StoreError> {
        let store = EmbeddedStore::open(dir.into())?;
        Ok(Self::with_backing(namespace, Backing::Embedded(store)))
    }

    /// Redis backend; connects and PINGs with a timeout (3 s) so a bad URL fails fast with a
    /// clear error. Keeps an embedded fallback at `fallback_dir` for when Redis goes away
    /// mid-run: `on_degraded` is called once per outage, Redis is tried again at most every 5 s.
    pub async fn redis(
        url: &str,
        namespace: &str,
        fallback_dir: impl Into<PathBuf>,
        on_degraded: DegradedHook,
    ) -> Result<Self, StoreError> {
        Self::redis_with_options(
            url,
            namespace,
            fallback_dir,
            on_degraded,
            RedisOptions::default(),
        )
        .await
    }

    /// [`StateStore::redis`] with explicit timeouts and retry pace.
    pub async fn redis_with_options(
        url: &str,
        namespace: &str,
        fallback_dir: impl Into<PathBuf>,
        on_degraded: DegradedHook,
        options: RedisOptions,
    ) -> Result<Self, StoreError> {
        let fallback = EmbeddedStore::open(fallback_dir.into())?;
        let redis = RedisStore::connect(url, &options).await?;
        let failover = FailoverStore::new(redis, fallback, on_degraded, options.retry_interval);
        Ok(Self::with_backing(namespace, Backing::Redis(failover)))
    }

    fn with_backing(namespace: &str, backing: Backing) -> Self {
        Self {
            inner: Arc::new(Inner {
                namespace: namespace.to_owned(),
                backing,
            }),
        }
    }

    /// The backend chosen at start; a degraded Redis store still reports `Redis`.
    pub fn backend(&self) -> Backend {
        match self.inner.backing {
            Backing::Embedded(_) => Backend::Embedded,
            Backing::Redis(_) => Backend::Redis,
        }
    }

    /// True while a Redis store serves from its local fallback because Redis is gone.
    pub fn is_degraded(&self) -> bool {
        match &self.inner.backing {
            Backing::Embedded(_) => false,
            Backing::Redis(failover) => failover.is_degraded(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The value under `key`, or `None` when it is absent, expired, or not the expected JSON
    /// (logged as a warning).
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(text) = self.get_text(key).await? else {
            return Ok(None);
        };
        match serde_json::from_str(&text) {
            Ok(value) => Ok(Some(value)),
            Err(err) => {
                tracing::warn!(key, %err, "ignoring a stored value that is not the expected JSON");
                Ok(None)
            }
        }
    }

    pub async fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(value).map_err(|err| StoreError::Encode {
            key: key.to_owned(),
            reason: err.to_string(),
        })?;
        let key = self.full_key(key);
        match &self.inner.backing {
            Backing::Embedded(store) => store.put(&key, &text, ttl).await,
            Backing::Redis(store) => store.put(&key, &text, ttl).await,
        }
    }

    /// Atomically store `value` (as given, not JSON-encoded) only if `key` is absent or
    /// expired; returns the value stored now: ours if we won, the existing one otherwise.
    /// Atomic across processes and machines sharing the backend.
    pub async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let key = self.full_key(key);
        match &self.inner.backing {
            Backing::Embedded(store) => store.put_if_absent(&key, value, ttl).await,
            Backing::Redis(store) => store.put_if_absent(&key, value, ttl).await,
        }
    }

    /// True for the one caller, among every process sharing the backend, that first marks
    /// `key` within `ttl`; false for everyone after (a repeat, another instance's turn).
    pub async fn first_claim(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ours = ulid::Ulid::new().to_string();
        Ok(self.put_if_absent(key, &ours, ttl).await? == ours)
    }

    /// Drops expired entries kept in files (the embedded store, or Redis's local fallback);
    /// Redis expires its own. For long runs that write many short-lived keys.
    pub async fn sweep_expired(&self) {
        match &self.inner.backing {
            Backing::Embedded(store) => store.sweep().await,
            Backing::Redis(store) => store.sweep_fallback().await,
        }
    }

    /// Remove `key`; removing an absent key is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = self.full_key(key);
        match &self.inner.backing {
            Backing::Embedded(store) => store.delete(&key).await,
            Backing::Redis(store) => store.delete(&key).await,
        }
    }

    /// Remove `key` only while it holds `value` (one atomic step): a claim given back is never
    /// someone else's that replaced it. True when it was removed.
    pub async fn delete_if(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let key = self.full_key(key);
        match &self.inner.backing {
            Backing::Embedded(store) => store.delete_if(&key, value).await,
            Backing::Redis(store) => store.delete_if(&key, value).await,
        }
    }

    async fn get_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.full_key(key);
        match &self.inner.backing {
            Backing::Embedded(store) => store.get(&key).await,
            Backing::Redis(store) => store.get(&key).await,
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.namespace)
    }
}

impl fmt::Debug for StateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("StateStore");
        out.field("backend", &self.backend().to_string())
            .field("namespace", &self.inner.namespace);
        match &self.inner.backing {
            Backing::Embedded(store) => out.field("dir", &store.dir()),
            Backing::Redis(store) => out
                .field("redis", &store.redacted_url())
                .field("fallback_dir", &store.fallback_dir())
                .field("degraded", &store.is_degraded()),
        };
        out.finish()
    }
}

/// A TTL in whole milliseconds (at least 1), or `None` for "keep until deleted".
pub(crate) fn ttl_millis(ttl: Duration) -> Option<u64> {
    if ttl.is_zero() {
        return None;
    }
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    Some(u64::try_from(millis).unwrap_or(u64::MAX))
}
