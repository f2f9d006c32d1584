//! The one way a command reaches Redis: bounded by a timeout, its failure sorted and scrubbed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, ScriptInvocation};

use super::{RedisIoError, RedisTarget};

/// What can be sent to Redis: a command, a pipeline, or a script with its keys and arguments.
pub(crate) trait Request: Sync {
    fn send<T: FromRedisValue + Send>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = RedisResult<T>> + Send;
}

impl Request for Cmd {
    fn send<T: FromRedisValue + Send>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = RedisResult<T>> + Send {
        self.query_async(connection)
    }
}

impl Request for Pipeline {
    fn send<T: FromRedisValue + Send>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = RedisResult<T>> + Send {
        self.query_async(connection)
    }
}

impl Request for ScriptInvocation<'_> {
    fn send<T: FromRedisValue + Send>(
        &self,
        connection: &mut ConnectionManager,
    ) -> impl Future<Output = RedisResult<T>> + Send {
        self.invoke_async(connection)
    }
}

/// A connection to one Redis whose every command is bounded by `timeout`.
#[derive(Clone)]
pub(crate) struct RedisLink {
    connection: ConnectionManager,
    target: Arc<RedisTarget>,
    timeout: Duration,
}

impl RedisLink {
    pub(crate) fn new(
        connection: ConnectionManager,
        target: RedisTarget,
        timeout: Duration,
    ) -> Self {
        Self {
            connection,
            target: Arc::new(target),
            timeout,
        }
    }

    pub(crate) fn target(&self) -> &RedisTarget {
        &self.target
    }

    pub(crate) async fn run<T: FromRedisValue + Send>(
        &self,
        request: &impl Request,
    ) -> Result<T, RedisIoError> {
        let answer = self.answer(request).await;
        sort(&self.target, self.timeout, answer)
    }

    /// [`RedisLink::run`], once more if the connection had dropped: the connection manager
    /// reconnects in the background but fails the command that noticed. Only for commands that
    /// may run twice.
    pub(crate) async fn run_reconnecting<T: FromRedisValue + Send>(
        &self,
        request: &impl Request,
    ) -> Result<T, RedisIoError> {
        let answer = match self.answer(request).await {
            Some(Err(err)) if err.is_connection_dropped() || err.is_io_error() => {
                self.answer(request).await
            }
            answer => answer,
        };
        sort(&self.target, self.timeout, answer)
    }

    /// Any other Redis future (on a connection of its own), bounded and sorted the same way.
    pub(crate) async fn bounded<T>(
        &self,
        command: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, RedisIoError> {
        within(&self.target, self.timeout, command).await
    }

    /// Redis' answer, or `None` when none came in time.
    async fn answer<T: FromRedisValue + Send>(
        &self,
        request: &impl Request,
    ) -> Option<RedisResult<T>> {
        let mut connection = self.connection.clone();
        tokio::time::timeout(self.timeout, request.send(&mut connection))
            .await
            .ok()
    }
}

/// `command` bounded by `timeout`, its failure sorted into an outage or a refusal.
pub(crate) async fn within<T>(
    target: &RedisTarget,
    timeout: Duration,
    command: impl Future<Output = RedisResult<T>>,
) -> Result<T, RedisIoError> {
    let answer = tokio::time::timeout(timeout, command).await.ok();
    sort(target, timeout, answer)
}

fn sort<T>(
    target: &RedisTarget,
    timeout: Duration,
    answer: Option<RedisResult<T>>,
) -> Result<T, RedisIoError> {
    match answer {
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) => Err(target.failure(&err)),
        None => Err(RedisIoError::NoAnswer {
            address: target.address().to_owned(),
            within: timeout,
        }),
    }
}
