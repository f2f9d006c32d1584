//! Where breakglass entries, their use counters and the audit trail live: files under the
//! state directory (`files`), or Redis (`redis_store`, which also says how its keys are laid
//! out so that an ACL can keep the ordinary dashboard away from them).
//!
//! Unlike the ordinary state store there is no fallback to local files when Redis is away:
//! an access that cannot be audited in the shared trail is denied.

mod files;
mod redis_store;

use std::path::PathBuf;

use super::audit::AuditRecord;
use super::entry::BreakglassEntry;
use super::keys::FileSeal;
pub use files::Files;
pub use redis_store::RedisBackend;

/// Why the breakglass store could not be used. Never holds a token or the Redis password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakglassStoreError {
    #[error("the breakglass store is unavailable: {0}")]
    Unavailable(String),
    /// Redis said no (NOPERM: this Redis user may not touch breakglass keys).
    #[error("the breakglass store refused: {0}")]
    Refused(String),
    /// A file was changed, removed or cut outside shiplog: its seal does not match.
    #[error("the breakglass store was tampered with: {0}")]
    Tampered(String),
}

/// How a reservation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Use number `n` of the entry.
    Reserved(u32),
    LimitReached,
    /// The entry was replaced (a new login) after it was checked.
    Replaced,
}

/// The use counter of one entry, stored as `entry_id|count|last_access_ms`: a count belongs to
/// one entry, so a login that replaces the entry starts a new count, and a request checked
/// against the old entry cannot spend the new one's uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Uses {
    entry_id: String,
    count: u32,
    at: Option<i64>,
}

/// The Redis key prefix of breakglass for the ordinary namespace `namespace`:
/// `shiplog:{env}:` gives `breakglass:{env}:` (outside the ordinary keys, for the ACL).
pub fn prefix_for(namespace: &str) -> String {
    format!(
        "breakglass:{}",
        namespace.strip_prefix("shiplog:").unwrap_or(namespace)
    )
}

pub enum BreakglassStore {
    Files(Files),
    Redis(RedisBackend),
}

/// What actually keeps people out of the breakglass store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Files: the role is a claim; the OS user owning them and `BREAKGLASS_KEY` are the boundary.
    FileOwner,
    /// Redis: its ACL users.
    RedisAcl,
}

impl BreakglassStore {
    pub fn boundary(&self) -> Boundary {
        match self {
            BreakglassStore::Files(_) => Boundary::FileOwner,
            BreakglassStore::Redis(_) => Boundary::RedisAcl,
        }
    }

    /// Files under `dir` (created if missing), tamper-evident when `seal` is given (it comes
    /// from `BREAKGLASS_KEY`).
    pub fn files(dir: PathBuf, seal: Option<FileSeal>) -> Result<Self, BreakglassStoreError> {
        Files::open(dir, seal).map(BreakglassStore::Files)
    }

    /// Redis at `url` (its user decides what this process may do), keys under `prefix`.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, BreakglassStoreError> {
        RedisBackend::connect(url, prefix)
            .await
            .map(BreakglassStore::Redis)
    }

    pub async fn entry(
        &self,
        connection_id: &str,
    ) -> Result<Option<BreakglassEntry>, BreakglassStoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let id = connection_id.to_owned();
                files.off_thread(move |files| files.entry(&id)).await
            }
            BreakglassStore::Redis(redis) => redis.entry(connection_id).await,
        }
    }

    /// Every entry, newest first.
    pub async fn entries(&self) -> Result<Vec<BreakglassEntry>, BreakglassStoreError> {
        let mut entries = match self {
            BreakglassStore::Files(files) => files.off_thread(Files::entries).await?,
            BreakglassStore::Redis(redis) => redis.entries().await?,
        };
        entries.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        Ok(entries)
    }

    /// Stores a new entry (a login's), replacing the connection's previous one; its use count
    /// starts at 0.
    pub async fn put_entry(&self, entry: &BreakglassEntry) -> Result<(), BreakglassStoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let entry = entry.clone();
                files.off_thread(move |files| files.put_entry(&entry)).await
            }
            BreakglassStore::Redis(redis) => redis.put_entry(entry).await,
        }
    }

    /// Rewrites an entry if it is still the one stored (same `id`); false when a login has
    /// replaced it meanwhile.
    pub async fn update_entry(
        &self,
        entry: &BreakglassEntry,
    ) -> Result<bool, BreakglassStoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let entry = entry.clone();
                files
                    .off_thread(move |files| files.update_entry(&entry))
                    .await
            }
            BreakglassStore::Redis(redis) => redis.update_entry(entry).await,
        }
    }

    /// Takes one use of the entry `entry_id` if fewer than `limit` were taken.
    pub async fn reserve_use(
        &self,
        connection_id: &str,
        entry_id: &str,
        limit: u32,
        keep_until_ms: i64,
    ) -> Result<Reservation, BreakglassStoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let (id, entry_id) = (connection_id.to_owned(), entry_id.to_owned());
                files
                    .off_thread(move |files| files.reserve_use(&id, &entry_id, limit))
                    .await
            }
            BreakglassStore::Redis(redis) => {
                redis
                    .reserve_use(connection_id, entry_id, limit, keep_until_ms)
                    .await
            }
        }
    }

    /// Gives back a use of the entry `entry_id` taken for an access that did not complete.
    pub async fn release_use(
        &self,
        connection_id: &str,
        entry_id: &str,
    ) -> Result<(), BreakglassStoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let (id, entry_id) = (connection_id.to_owned(), entry_id.to_owned());
                files
                    .off_thread(move |files| files.release_use(&id, &entry_id))
                    .await
            }
            BreakglassStore::Redis(redis) => redis.release_use(connection_id, entry_id).await,
        }
    }

    /// Appends to the audit trail; durable when this returns `Ok`.
    pub async fn append_audit(&self, record: &AuditRecord) -> Result<(), BreakglassStoreError> {
        let line = serde_json::to_string(record).map_err(|err| {
            BreakglassStoreError::Unavailable(format!("cannot encode the audit record: {err}"))
        })?;
        match self {
            BreakglassStore::Files(files) => {
                files
                    .off_thread(move |files| files.append_audit(&line))
                    .await
            }
            BreakglassStore::Redis(redis) => redis.append_audit(&line).await,
        }
    }

    /// The newest audit records first.
    pub async fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, BreakglassStoreError> {
        match self {
            BreakglassStore::Files(files) => {
                files.off_thread(move |files| files.audit(limit)).await
            }
            BreakglassStore::Redis(redis) => redis.audit(limit).await,
        }
    }
}

fn format_uses(entry_id: &str, count: u32, at: Option<i64>) -> String {
    let at = at.map(|ms| ms.to_string()).unwrap_or_default();
    format!("{entry_id}|{count}|{at}")
}

/// `entry_id|count|last_access_ms`; `None` when malformed.
fn parse_uses(text: &str) -> Option<Uses> {
    let mut parts = text.trim().splitn(3, '|');
    let entry_id = parts.next()?.to_owned();
    let count = parts.next()?.parse().ok()?;
    let at = match parts.next()? {
        "" => None,
        ms => Some(ms.parse().ok()?),
    };
    Some(Uses {
        entry_id,
        count,
        at,
    })
}
