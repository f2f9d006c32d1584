//! Where breakglass entries, their use counters and the audit trail live: files under the
//! state directory, or Redis. On Redis they sit outside the ordinary namespace
//! (`breakglass:{env}:...` beside `shiplog:{env}:...`) so that an ACL can keep the ordinary
//! dashboard's Redis user away from them entirely:
//!
//! - `breakglass:{env}:entry:{connection}`: the entry (JSON), expiring a week after the entry;
//! - `breakglass:{env}:uses:{connection}`: `count:last_access_ms`, changed only by a script
//!   that refuses to go past the limit, so concurrent requests never exceed it;
//! - `breakglass:{env}:audit`: the audit stream, append-only for the engine (XADD).
//!
//! Unlike the ordinary state store there is no fallback to local files when Redis is away:
//! an access that cannot be audited in the shared trail is denied.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use redis::Script;

use super::audit::AuditRecord;
use super::entry::BreakglassEntry;
use crate::clock::now_ms;
use crate::fsutil;
use crate::redis_io::{
    ConnectFailure, RedisIoError, RedisLink, RedisTarget, Request, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
};

/// How long an entry and its counter outlive its expiry, so lists show it as expired.
const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the breakglass store is unavailable: {0}")]
    Unavailable(String),
    /// Redis said no (NOPERM: this Redis user may not touch breakglass keys).
    #[error("the breakglass store refused: {0}")]
    Refused(String),
}

/// Only a NOPERM is a refusal: whatever else keeps Redis from answering, the store is
/// unavailable (and an access that cannot be audited is denied either way).
impl From<RedisIoError> for StoreError {
    fn from(err: RedisIoError) -> Self {
        match err {
            RedisIoError::Refused {
                code: Some(code),
                detail,
                ..
            } if code == "NOPERM" => StoreError::Refused(format!(
                "this Redis user may not touch breakglass keys ({})",
                detail.as_deref().unwrap_or("NOPERM")
            )),
            err => StoreError::Unavailable(err.to_string()),
        }
    }
}

/// The use counter's value is `entry_id|count|last_access_ms`: a count belongs to one entry, so
/// a login that replaces the entry starts a new count, and a request checked against the old
/// entry cannot spend the new one's uses.
///
/// KEYS: uses. ARGV: entry id, limit, now ms, ttl ms. The new count; -1 at the limit; -2 when
/// the entry was replaced meanwhile.
const RESERVE: &str = r"
local current = redis.call('GET', KEYS[1])
local n = 0
if current then
  local id, count = string.match(current, '^([^|]*)|(%d+)|')
  if not id then return redis.error_reply('malformed breakglass use counter') end
  if id ~= ARGV[1] then return -2 end
  n = tonumber(count)
end
if n >= tonumber(ARGV[2]) then return -1 end
n = n + 1
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. n .. '|' .. ARGV[3], 'PX', ARGV[4])
return n
";

/// KEYS: uses. ARGV: entry id. Gives back one use of that entry (an access that did not
/// complete); nothing when the entry was replaced meanwhile.
const RELEASE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local id, count, at = string.match(current, '^([^|]*)|(%d+)|(%d*)$')
if id ~= ARGV[1] then return 0 end
local n = math.max(tonumber(count) - 1, 0)
redis.call('SET', KEYS[1], id .. '|' .. n .. '|' .. at, 'KEEPTTL')
return n
";

/// KEYS: entry. ARGV: entry id, new value. Rewrites the entry only if it is still the same one
/// (a login may have replaced it since it was read).
const UPDATE: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, decoded = pcall(cjson.decode, current)
if not ok or decoded['id'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
";

/// How a reservation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Use number `n` of the entry.
    Reserved(u32),
    LimitReached,
    /// The entry was replaced (a new login) after it was checked.
    Replaced,
}

/// The use counter of one entry.
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
    Redis(Shared),
}

#[derive(Clone)]
pub struct Files {
    dir: PathBuf,
}

pub struct Shared {
    link: RedisLink,
    prefix: String,
}

impl BreakglassStore {
    /// Files under `dir` (created if missing).
    pub fn files(dir: PathBuf) -> Result<Self, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|err| {
            StoreError::Unavailable(format!("cannot create {}: {err}", dir.display()))
        })?;
        Ok(BreakglassStore::Files(Files { dir }))
    }

    /// Redis at `url` (its user decides what this process may do), keys under `prefix`.
    pub async fn redis(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let (client, target) = RedisTarget::open(url)?;
        let connection = target
            .manager(client, DEFAULT_CONNECT_TIMEOUT)
            .await
            .map_err(|failure| {
                StoreError::Unavailable(match failure {
                    ConnectFailure::NoAnswer => format!("no answer from {}", target.address()),
                    ConnectFailure::Refused(err) => target.describe(&err),
                })
            })?;
        Ok(BreakglassStore::Redis(Shared {
            link: RedisLink::new(connection, target, DEFAULT_COMMAND_TIMEOUT),
            prefix: prefix.to_owned(),
        }))
    }

    pub async fn entry(&self, connection_id: &str) -> Result<Option<BreakglassEntry>, StoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                let id = connection_id.to_owned();
                blocking(move || files.entry(&id)).await
            }
            BreakglassStore::Redis(shared) => shared.entry(connection_id).await,
        }
    }

    /// Every entry, newest first.
    pub async fn entries(&self) -> Result<Vec<BreakglassEntry>, StoreError> {
        let mut entries = match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.entries()).await?
            }
            BreakglassStore::Redis(shared) => shared.entries().await?,
        };
        entries.sort_by_key(|e| std::cmp::Reverse(e.created_at));
        Ok(entries)
    }

    /// Stores a new entry (a login's), replacing the connection's previous one; its use count
    /// starts at 0.
    pub async fn put_entry(&self, entry: &BreakglassEntry) -> Result<(), StoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                let entry = entry.clone();
                blocking(move || files.put_entry(&entry)).await
            }
            BreakglassStore::Redis(shared) => shared.put_entry(entry).await,
        }
    }

    /// Rewrites an entry if it is still the one stored (same `id`); false when a login has
    /// replaced it meanwhile.
    pub async fn update_entry(&self, entry: &BreakglassEntry) -> Result<bool, StoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                let entry = entry.clone();
                blocking(move || files.update_entry(&entry)).await
            }
            BreakglassStore::Redis(shared) => shared.update_entry(entry).await,
        }
    }

    /// Takes one use of the entry `entry_id` if fewer than `limit` were taken.
    pub async fn reserve_use(
        &self,
        connection_id: &str,
        entry_id: &str,
        limit: u32,
        keep_until_ms: i64,
    ) -> Result<Reservation, StoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                let (id, entry_id) = (connection_id.to_owned(), entry_id.to_owned());
                blocking(move || files.reserve_use(&id, &entry_id, limit)).await
            }
            BreakglassStore::Redis(shared) => {
                shared
                    .reserve_use(connection_id, entry_id, limit, keep_until_ms)
                    .await
            }
        }
    }

    /// Gives back a use of the entry `entry_id` taken for an access that did not complete.
    pub async fn release_use(&self, connection_id: &str, entry_id: &str) -> Result<(), StoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                let (id, entry_id) = (connection_id.to_owned(), entry_id.to_owned());
                blocking(move || files.release_use(&id, &entry_id)).await
            }
            BreakglassStore::Redis(shared) => shared.release_use(connection_id, entry_id).await,
        }
    }

    /// Appends to the audit trail; durable when this returns `Ok`.
    pub async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError> {
        let line = serde_json::to_string(record).map_err(|err| {
            StoreError::Unavailable(format!("cannot encode the audit record: {err}"))
        })?;
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.append_audit(&line)).await
            }
            BreakglassStore::Redis(shared) => shared.append_audit(&line).await,
        }
    }

    /// The newest audit records first.
    pub async fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        match self {
            BreakglassStore::Files(files) => {
                let files = files.clone();
                blocking(move || files.audit(limit)).await
            }
            BreakglassStore::Redis(shared) => shared.audit(limit).await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|err| StoreError::Unavailable(err.to_string()))?
}

fn unavailable(what: &str, path: &std::path::Path, err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("cannot {what} {}: {err}", path.display()))
}

impl Files {
    fn entry_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("entry-{}.json", file_safe(id)))
    }

    fn uses_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("uses-{}", file_safe(id)))
    }

    /// Holds the store's lock (shared by processes) while `job` runs.
    fn locked<T>(&self, job: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let path = self.dir.join("breakglass.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| unavailable("open", &path, err))?;
        lock.lock().map_err(|err| unavailable("lock", &path, err))?;
        let result = job();
        let _ = lock.unlock();
        result
    }

    fn entry(&self, id: &str) -> Result<Option<BreakglassEntry>, StoreError> {
        let path = self.entry_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(unavailable("read", &path, err)),
        };
        // serde's message could quote a stored value: not shown.
        let mut entry: BreakglassEntry = serde_json::from_str(&text).map_err(|_| {
            StoreError::Unavailable(format!("{} is not a breakglass entry", path.display()))
        })?;
        if let Some(uses) = self.uses(id)?.filter(|uses| uses.entry_id == entry.id) {
            entry.access_count = uses.count;
            entry.accessed_at = uses.at;
        }
        Ok(Some(entry))
    }

    /// The use counter; a counter that cannot be read counts as an error, never as zero.
    fn uses(&self, id: &str) -> Result<Option<Uses>, StoreError> {
        let path = self.uses_path(id);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_uses(&text)
                .map(Some)
                .ok_or_else(|| StoreError::Unavailable(format!("{} is malformed", path.display()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(unavailable("read", &path, err)),
        }
    }

    fn entries(&self) -> Result<Vec<BreakglassEntry>, StoreError> {
        let listing =
            std::fs::read_dir(&self.dir).map_err(|err| unavailable("list", &self.dir, err))?;
        let mut entries = Vec::new();
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(id) = name
                .strip_prefix("entry-")
                .and_then(|n| n.strip_suffix(".json"))
            {
                if let Some(entry) = self.entry(id)? {
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }

    fn write_entry(&self, entry: &BreakglassEntry) -> Result<(), StoreError> {
        let path = self.entry_path(&entry.connection_id);
        let text =
            serde_json::to_string_pretty(entry).map_err(|err| unavailable("encode", &path, err))?;
        write_private(&path, text.as_bytes())
    }

    fn put_entry(&self, entry: &BreakglassEntry) -> Result<(), StoreError> {
        self.locked(|| {
            self.write_entry(entry)?;
            write_private(
                &self.uses_path(&entry.connection_id),
                format_uses(&entry.id, 0, None).as_bytes(),
            )
        })
    }

    fn update_entry(&self, entry: &BreakglassEntry) -> Result<bool, StoreError> {
        self.locked(|| {
            let current = self.entry(&entry.connection_id)?;
            if current.is_none_or(|current| current.id != entry.id) {
                return Ok(false);
            }
            self.write_entry(entry).map(|()| true)
        })
    }

    fn reserve_use(&self, id: &str, entry_id: &str, limit: u32) -> Result<Reservation, StoreError> {
        self.locked(|| {
            let count = match self.uses(id)? {
                Some(uses) if uses.entry_id != entry_id => return Ok(Reservation::Replaced),
                Some(uses) => uses.count,
                None => 0,
            };
            if count >= limit {
                return Ok(Reservation::LimitReached);
            }
            write_private(
                &self.uses_path(id),
                format_uses(entry_id, count + 1, Some(now_ms())).as_bytes(),
            )?;
            Ok(Reservation::Reserved(count + 1))
        })
    }

    fn release_use(&self, id: &str, entry_id: &str) -> Result<(), StoreError> {
        self.locked(|| match self.uses(id)? {
            Some(uses) if uses.entry_id == entry_id => write_private(
                &self.uses_path(id),
                format_uses(entry_id, uses.count.saturating_sub(1), uses.at).as_bytes(),
            ),
            _ => Ok(()),
        })
    }

    fn append_audit(&self, line: &str) -> Result<(), StoreError> {
        let path = self.dir.join("audit.ndjson");
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file: File = options
            .open(&path)
            .map_err(|err| unavailable("open the audit trail", &path, err))?;
        file.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|err| unavailable("write the audit trail", &path, err))
    }

    fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let path = self.dir.join("audit.ndjson");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(unavailable("read the audit trail", &path, err)),
        };
        Ok(text
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str(line).ok())
            .take(limit)
            .collect())
    }
}

/// Replaces a file that only its owner may read (0600).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), StoreError> {
    fsutil::replace(path, bytes, fsutil::Access::Private)
        .map_err(|err| unavailable("write", path, err))
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

/// Connection ids are ours (`conn_...`), but a file name never takes a path from outside.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Shared {
    fn key(&self, part: &str) -> String {
        format!("{}{part}", self.prefix)
    }

    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        request: &impl Request,
    ) -> Result<T, StoreError> {
        Ok(self.link.run(request).await?)
    }

    async fn entry(&self, id: &str) -> Result<Option<BreakglassEntry>, StoreError> {
        let (text, uses): (Option<String>, Option<String>) = {
            let mut pipe = redis::pipe();
            pipe.cmd("GET")
                .arg(self.key(&format!("entry:{id}")))
                .cmd("GET")
                .arg(self.key(&format!("uses:{id}")));
            self.run(&pipe).await?
        };
        let Some(text) = text else { return Ok(None) };
        // serde's message could quote a stored value: not shown.
        let mut entry: BreakglassEntry = serde_json::from_str(&text).map_err(|_| {
            StoreError::Unavailable(format!(
                "the stored entry of {id} is not a breakglass entry"
            ))
        })?;
        if let Some(uses) = uses {
            let uses = parse_uses(&uses).ok_or_else(|| {
                StoreError::Unavailable(format!("the use counter of {id} is malformed"))
            })?;
            if uses.entry_id == entry.id {
                entry.access_count = uses.count;
                entry.accessed_at = uses.at;
            }
        }
        Ok(Some(entry))
    }

    async fn entries(&self) -> Result<Vec<BreakglassEntry>, StoreError> {
        let pattern = self.key("entry:*");
        let mut cursor: u64 = 0;
        let mut ids = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(200),
                )
                .await?;
            let prefix = self.key("entry:");
            ids.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut entries = Vec::new();
        for id in ids {
            if let Some(entry) = self.entry(&id).await? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    async fn put_entry(&self, entry: &BreakglassEntry) -> Result<(), StoreError> {
        let text = serde_json::to_string(entry)
            .map_err(|err| StoreError::Unavailable(format!("cannot encode the entry: {err}")))?;
        let keep = keep_ms(entry.expires_at);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.key(&format!("entry:{}", entry.connection_id)))
            .arg(text)
            .arg("PX")
            .arg(keep)
            .cmd("SET")
            .arg(self.key(&format!("uses:{}", entry.connection_id)))
            .arg(format_uses(&entry.id, 0, None))
            .arg("PX")
            .arg(keep);
        self.run::<redis::Value>(&pipe).await.map(drop)
    }

    async fn update_entry(&self, entry: &BreakglassEntry) -> Result<bool, StoreError> {
        let text = serde_json::to_string(entry)
            .map_err(|err| StoreError::Unavailable(format!("cannot encode the entry: {err}")))?;
        let script = Script::new(UPDATE);
        let mut invocation = script.key(self.key(&format!("entry:{}", entry.connection_id)));
        invocation.arg(&entry.id).arg(text);
        let updated: i64 = self.run(&invocation).await?;
        Ok(updated == 1)
    }

    async fn reserve_use(
        &self,
        id: &str,
        entry_id: &str,
        limit: u32,
        expires_at: i64,
    ) -> Result<Reservation, StoreError> {
        let script = Script::new(RESERVE);
        let mut invocation = script.key(self.key(&format!("uses:{id}")));
        invocation
            .arg(entry_id)
            .arg(limit)
            .arg(now_ms())
            .arg(keep_ms(expires_at));
        let count: i64 = self.run(&invocation).await?;
        Ok(match count {
            -2 => Reservation::Replaced,
            n => u32::try_from(n).map_or(Reservation::LimitReached, Reservation::Reserved),
        })
    }

    async fn release_use(&self, id: &str, entry_id: &str) -> Result<(), StoreError> {
        let script = Script::new(RELEASE);
        let mut invocation = script.key(self.key(&format!("uses:{id}")));
        invocation.arg(entry_id);
        self.run::<i64>(&invocation).await.map(drop)
    }

    async fn append_audit(&self, line: &str) -> Result<(), StoreError> {
        self.run::<String>(
            redis::cmd("XADD")
                .arg(self.key("audit"))
                .arg("*")
                .arg("record")
                .arg(line),
        )
        .await
        .map(drop)
    }

    async fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let entries: Vec<(String, Vec<(String, String)>)> = self
            .run(
                redis::cmd("XREVRANGE")
                    .arg(self.key("audit"))
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit),
            )
            .await?;
        Ok(entries
            .iter()
            .flat_map(|(_, fields)| fields.iter())
            .filter(|(name, _)| name == "record")
            .filter_map(|(_, text)| serde_json::from_str(text).ok())
            .collect())
    }
}

/// Milliseconds from now until a week after `expires_at` (at least a minute).
fn keep_ms(expires_at: i64) -> i64 {
    (expires_at - now_ms() + KEEP_AFTER_EXPIRY.as_millis() as i64).max(60_000)
}
