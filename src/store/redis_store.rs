//! The Redis backend: one link to Redis (see `src/redis_io/link.rs`), every command bounded by
//! the store's command timeout.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisError, Script};

use super::error::StoreError;
use super::{ttl_millis, RedisOptions};
use crate::redis_io::{fail_fast, within, RedisIoError, RedisLink, RedisTarget, Request};

/// SET NX and, when someone was first, their value, in one atomic step. A script rather than
/// `SET ... NX GET` so it also runs on Redis before 7.0.
const PUT_IF_ABSENT: &str = r"
local stored
if tonumber(ARGV[2]) > 0 then
  stored = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  stored = redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
if stored then return ARGV[1] end
return redis.call('GET', KEYS[1])
";

/// KEYS: the key. ARGV: the value it must hold. 1 when removed.
const DELETE_IF: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// How a Redis command failed.
pub(crate) enum RedisFailure {
    /// Redis is gone or unusable for now (connection, timeout, loading, failover); the
    /// caller may fall back. Carries a short reason such as "connection refused".
    Outage(String),
    /// Redis answered and said no (NOPERM, WRONGTYPE, ...): a real error for the caller.
    Refused(StoreError),
}

#[derive(Clone)]
pub(crate) struct RedisStore {
    link: RedisLink,
    put_if_absent: Arc<Script>,
    delete_if: Arc<Script>,
}

impl RedisStore {
    /// Connect and PING within `options.connect_timeout`.
    pub(crate) async fn connect(url: &str, options: &RedisOptions) -> Result<Self, StoreError> {
        let (client, target) = RedisTarget::open(url)?;
        let config = fail_fast(
            options.connect_timeout.min(options.command_timeout),
            options.command_timeout,
        );
        let connecting = async {
            let mut connection = ConnectionManager::new_with_config(client, config).await?;
            redis::cmd("PING")
                .query_async::<redis::Value>(&mut connection)
                .await?;
            Ok::<_, RedisError>(connection)
        };
        let connection = within(&target, options.connect_timeout, connecting).await?;
        Ok(Self {
            link: RedisLink::new(connection, target, options.command_timeout),
            put_if_absent: Arc::new(Script::new(PUT_IF_ABSENT)),
            delete_if: Arc::new(Script::new(DELETE_IF)),
        })
    }

    pub(crate) fn target(&self) -> &RedisTarget {
        self.link.target()
    }

    pub(crate) async fn ping(&self) -> Result<(), RedisFailure> {
        self.run::<redis::Value>("reach", "", &redis::cmd("PING"))
            .await
            .map(drop)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, RedisFailure> {
        self.run("read", key, redis::cmd("GET").arg(key)).await
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), RedisFailure> {
        let mut command = redis::cmd("SET");
        command.arg(key).arg(value);
        if let Some(millis) = ttl_millis(ttl) {
            command.arg("PX").arg(millis);
        }
        self.run("write", key, &command).await
    }

    pub(crate) async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, RedisFailure> {
        let mut invocation = self.put_if_absent.key(key);
        invocation.arg(value).arg(ttl_millis(ttl).unwrap_or(0));
        self.run("write", key, &invocation).await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), RedisFailure> {
        self.run("delete", key, redis::cmd("DEL").arg(key)).await
    }

    pub(crate) async fn delete_if(&self, key: &str, value: &str) -> Result<bool, RedisFailure> {
        let mut invocation = self.delete_if.key(key);
        invocation.arg(value);
        self.run::<i64>("delete", key, &invocation)
            .await
            .map(|removed| removed > 0)
    }

    /// One command on the link, its failure told as an outage or as the store's error.
    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        action: &'static str,
        key: &str,
        request: &impl Request,
    ) -> Result<T, RedisFailure> {
        self.link.run(request).await.map_err(|err| match err {
            RedisIoError::Refused {
                address, reason, ..
            } => RedisFailure::Refused(StoreError::RedisCommand {
                address,
                action,
                key: key.to_owned(),
                reason,
            }),
            outage => RedisFailure::Outage(outage.reason()),
        })
    }
}
