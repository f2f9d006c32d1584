//! The Redis backend: one `ConnectionManager`, every command bounded by a timeout.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use super::error::StoreError;
use super::redis_url::{fail_fast, RedisTarget};
use super::{ttl_millis, RedisOptions};

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
    connection: ConnectionManager,
    target: Arc<RedisTarget>,
    command_timeout: Duration,
    put_if_absent: Arc<Script>,
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
        let unreachable = |reason: String| StoreError::RedisUnreachable {
            address: target.address().to_owned(),
            reason,
        };
        let connection = match tokio::time::timeout(options.connect_timeout, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(err)) => return Err(unreachable(target.describe(&err))),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}",
                    seconds(options.connect_timeout)
                )))
            }
        };
        Ok(Self {
            connection,
            target: Arc::new(target),
            command_timeout: options.command_timeout,
            put_if_absent: Arc::new(Script::new(PUT_IF_ABSENT)),
        })
    }

    pub(crate) fn target(&self) -> &RedisTarget {
        &self.target
    }

    pub(crate) async fn ping(&self) -> Result<(), RedisFailure> {
        let mut connection = self.connection.clone();
        self.run("reach", "", async move {
            redis::cmd("PING")
                .query_async::<redis::Value>(&mut connection)
                .await
                .map(drop)
        })
        .await
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, RedisFailure> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("GET").arg(key).clone();
        self.run("read", key, async move {
            command.query_async::<Option<String>>(&mut connection).await
        })
        .await
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), RedisFailure> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("SET");
        command.arg(key).arg(value);
        if let Some(millis) = ttl_millis(ttl) {
            command.arg("PX").arg(millis);
        }
        self.run("write", key, async move {
            command.query_async::<()>(&mut connection).await
        })
        .await
    }

    pub(crate) async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, RedisFailure> {
        let mut connection = self.connection.clone();
        let mut invocation = self.put_if_absent.key(key);
        invocation.arg(value).arg(ttl_millis(ttl).unwrap_or(0));
        self.run("write", key, async move {
            invocation.invoke_async::<String>(&mut connection).await
        })
        .await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), RedisFailure> {
        let mut connection = self.connection.clone();
        let command = redis::cmd("DEL").arg(key).clone();
        self.run("delete", key, async move {
            command.query_async::<()>(&mut connection).await
        })
        .await
    }

    /// Bound a command by the timeout and sort its failure into outage or refusal.
    async fn run<T>(
        &self,
        action: &'static str,
        key: &str,
        command: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisFailure> {
        match tokio::time::timeout(self.command_timeout, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) if is_outage(&err) => {
                Err(RedisFailure::Outage(self.target.describe(&err)))
            }
            Ok(Err(err)) => Err(RedisFailure::Refused(StoreError::RedisCommand {
                address: self.target.address().to_owned(),
                action,
                key: key.to_owned(),
                reason: self.target.describe(&err),
            })),
            Err(_) => Err(RedisFailure::Outage(format!(
                "no answer within {}",
                seconds(self.command_timeout)
            ))),
        }
    }
}

/// Errors that mean "Redis is not usable right now" rather than "Redis said no". A NOPERM is
/// deliberately not an outage: falling back to local files would bypass the ACL.
fn is_outage(err: &RedisError) -> bool {
    match err.kind() {
        ErrorKind::Io
        | ErrorKind::Parse
        | ErrorKind::AuthenticationFailed
        | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
        ),
        _ => err.is_connection_dropped() || err.is_timeout(),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}
