//! The breakglass store on Redis. Its keys sit outside the ordinary namespace
//! (`breakglass:{env}:...` beside `shiplog:{env}:...`) so that an ACL can keep the ordinary
//! dashboard's Redis user away from them entirely:
//!
//! - `breakglass:{env}:entry:{connection}`: the entry (JSON), expiring a week after the entry;
//! - `breakglass:{env}:uses:{connection}`: its use counter (`entry_id|count|last_access_ms`),
//!   changed only by a script that refuses to go past the limit, so concurrent requests never
//!   exceed it;
//! - `breakglass:{env}:audit`: the audit stream, append-only for the engine (XADD).

use std::time::Duration;

use redis::Script;

use super::{format_uses, parse_uses, BreakglassStoreError, Reservation};
use crate::breakglass::audit::AuditRecord;
use crate::breakglass::entry::BreakglassEntry;
use crate::clock::now_ms;
use crate::redis_io::{
    ConnectFailure, RedisIoError, RedisLink, RedisTarget, Request, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
};

/// How long an entry and its counter outlive its expiry, so lists show it as expired.
const KEEP_AFTER_EXPIRY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Breakglass keys under `prefix` on one Redis.
pub struct RedisBackend {
    link: RedisLink,
    prefix: String,
}

/// Only a NOPERM is a refusal: whatever else keeps Redis from answering, the store is
/// unavailable (and an access that cannot be audited is denied either way).
impl From<RedisIoError> for BreakglassStoreError {
    fn from(err: RedisIoError) -> Self {
        match err {
            RedisIoError::Refused {
                code: Some(code),
                detail,
                ..
            } if code == "NOPERM" => BreakglassStoreError::Refused(format!(
                "this Redis user may not touch breakglass keys ({})",
                detail.as_deref().unwrap_or("NOPERM")
            )),
            err => BreakglassStoreError::Unavailable(err.to_string()),
        }
    }
}

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

impl RedisBackend {
    pub(super) async fn connect(url: &str, prefix: &str) -> Result<Self, BreakglassStoreError> {
        let (client, target) = RedisTarget::open(url)?;
        let connection = target
            .manager(client, DEFAULT_CONNECT_TIMEOUT)
            .await
            .map_err(|failure| {
                BreakglassStoreError::Unavailable(match failure {
                    ConnectFailure::NoAnswer => format!("no answer from {}", target.address()),
                    ConnectFailure::Refused(err) => target.describe(&err),
                })
            })?;
        Ok(RedisBackend {
            link: RedisLink::new(connection, target, DEFAULT_COMMAND_TIMEOUT),
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, part: &str) -> String {
        format!("{}{part}", self.prefix)
    }

    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        request: &impl Request,
    ) -> Result<T, BreakglassStoreError> {
        Ok(self.link.run(request).await?)
    }

    pub(super) async fn entry(
        &self,
        id: &str,
    ) -> Result<Option<BreakglassEntry>, BreakglassStoreError> {
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
            BreakglassStoreError::Unavailable(format!(
                "the stored entry of {id} is not a breakglass entry"
            ))
        })?;
        if let Some(uses) = uses {
            let uses = parse_uses(&uses).ok_or_else(|| {
                BreakglassStoreError::Unavailable(format!("the use counter of {id} is malformed"))
            })?;
            if uses.entry_id == entry.id {
                entry.access_count = uses.count;
                entry.accessed_at = uses.at;
            }
        }
        Ok(Some(entry))
    }

    pub(super) async fn entries(&self) -> Result<Vec<BreakglassEntry>, BreakglassStoreError> {
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

    pub(super) async fn put_entry(
        &self,
        entry: &BreakglassEntry,
    ) -> Result<(), BreakglassStoreError> {
        let text = serde_json::to_string(entry).map_err(|err| {
            BreakglassStoreError::Unavailable(format!("cannot encode the entry: {err}"))
        })?;
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

    pub(super) async fn update_entry(
        &self,
        entry: &BreakglassEntry,
    ) -> Result<bool, BreakglassStoreError> {
        let text = serde_json::to_string(entry).map_err(|err| {
            BreakglassStoreError::Unavailable(format!("cannot encode the entry: {err}"))
        })?;
        let script = Script::new(UPDATE);
        let mut invocation = script.key(self.key(&format!("entry:{}", entry.connection_id)));
        invocation.arg(&entry.id).arg(text);
        let updated: i64 = self.run(&invocation).await?;
        Ok(updated == 1)
    }

    pub(super) async fn reserve_use(
        &self,
        id: &str,
        entry_id: &str,
        limit: u32,
        expires_at: i64,
    ) -> Result<Reservation, BreakglassStoreError> {
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

    pub(super) async fn release_use(
        &self,
        id: &str,
        entry_id: &str,
    ) -> Result<(), BreakglassStoreError> {
        let script = Script::new(RELEASE);
        let mut invocation = script.key(self.key(&format!("uses:{id}")));
        invocation.arg(entry_id);
        self.run::<i64>(&invocation).await.map(drop)
    }

    pub(super) async fn append_audit(&self, line: &str) -> Result<(), BreakglassStoreError> {
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

    pub(super) async fn audit(
        &self,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, BreakglassStoreError> {
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
