//! The queue on Redis: a stream with the consumer group `workers` holds waiting and taken jobs
//! (its pending entries list says who holds what and for how long), a sorted set holds retries
//! by due time, lists keep the latest completed and dead-lettered jobs. Every change of more
//! than one key is one Lua script (`scripts`), so instances never see half of it.
//!
//! Keys, under the namespace: `LOGQ:{env}` (stream), `LOGQ:{env}:delayed`, `:dead`,
//! `:completed`, `:completed_total`, `:job:{id}` (the idempotency mark of a queued job),
//! `:rate:{second}` (the global rate limit's window).

mod scripts;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use tokio::sync::Mutex;

use super::{
    Ending, Enqueued, FinishedJob, Job, QueueCounts, QueueError, QueueSettings, Taken, STALLED,
};
use crate::alert::channels::RateLimit;
use crate::redis_io::{
    ConnectFailure, RedisIoError, RedisLink, RedisTarget, Request, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
};
use scripts::{held_by, Scripts};

const GROUP: &str = "workers";
/// How long one blocking read waits for a job.
const BLOCK: Duration = Duration::from_secs(1);
/// The idempotency mark outlives a job only if the job is lost some other way.
const MARK_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// The queue `LOGQ:{env}` on one Redis, shared by every instance.
pub struct SharedQueue {
    client: Client,
    commands: RedisLink,
    /// The blocking reads' own connection (a blocking command would hold up every other
    /// command multiplexed on the same connection).
    reader: Mutex<Option<MultiplexedConnection>>,
    key: String,
    settings: QueueSettings,
    scripts: Scripts,
}

impl SharedQueue {
    /// Connects to the queue `{namespace}LOGQ:{env}` and creates its consumer group if needed.
    pub async fn open(
        url: &str,
        namespace: &str,
        env: &str,
        settings: QueueSettings,
    ) -> Result<Self, QueueError> {
        let (client, target) =
            RedisTarget::open(url).map_err(|err| QueueError::refused(err.to_string()))?;
        let connection = target
            .manager(client.clone(), DEFAULT_CONNECT_TIMEOUT)
            .await
            .map_err(|failure| match failure {
                ConnectFailure::NoAnswer => {
                    QueueError::outage(format!("no answer from {}", target.address()))
                }
                ConnectFailure::Refused(err) => target.failure(&err).into(),
            })?;
        let queue = SharedQueue {
            client,
            commands: RedisLink::new(connection, target, DEFAULT_COMMAND_TIMEOUT),
            reader: Mutex::new(None),
            key: format!("{namespace}LOGQ:{env}"),
            settings,
            scripts: Scripts::new(),
        };
        queue.create_group().await?;
        Ok(queue)
    }

    fn sub(&self, part: &str) -> String {
        format!("{}:{part}", self.key)
    }

    fn mark(&self, job_id: &str) -> String {
        self.sub(&format!("job:{job_id}"))
    }

    async fn create_group(&self) -> Result<(), QueueError> {
        let mut command = redis::cmd("XGROUP");
        command
            .arg("CREATE")
            .arg(&self.key)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM");
        let created = self.commands.run_reconnecting::<Value>(&command).await;
        match created.map_err(QueueError::from) {
            Err(err) if err.says("BUSYGROUP") => Ok(()),
            other => other.map(drop),
        }
    }

    /// Runs a request on the shared connection (once more if the connection had dropped), and
    /// again after making the consumer group if Redis lost it.
    async fn run<T: redis::FromRedisValue + Send>(
        &self,
        request: &impl Request,
    ) -> Result<T, QueueError> {
        match self
            .commands
            .run_reconnecting(request)
            .await
            .map_err(QueueError::from)
        {
            // Redis restarted empty, or someone deleted the stream: the group is made again.
            Err(err) if err.says("NOGROUP") => {
                self.create_group().await?;
                Ok(self.commands.run_reconnecting(request).await?)
            }
            result => result,
        }
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        self.run::<Value>(&redis::cmd("PING")).await.map(drop)
    }

    pub async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let text = encode(job)?;
        let mut invocation = self.scripts.enqueue.key(&self.key);
        invocation
            .key(self.mark(&job.id))
            .arg(&job.id)
            .arg(text)
            .arg(MARK_TTL_MS);
        let added: i64 = self.run(&invocation).await?;
        Ok(if added == 1 {
            Enqueued::Added
        } else {
            Enqueued::Duplicate
        })
    }

    /// The next job for `consumer`, waiting up to a second for one.
    pub async fn take(&self, consumer: &str) -> Result<Option<Taken>, QueueError> {
        match self.read_one(consumer).await {
            // A connection made before Redis went away fails once; a new one may not.
            Err(_) => self.read_one(consumer).await,
            read => read,
        }
    }

    async fn read_one(&self, consumer: &str) -> Result<Option<Taken>, QueueError> {
        let mut reader = self.reader.lock().await;
        if reader.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(DEFAULT_COMMAND_TIMEOUT))
                .set_response_timeout(Some(BLOCK + DEFAULT_COMMAND_TIMEOUT));
            let connection = self
                .commands
                .bounded(
                    self.client
                        .get_multiplexed_async_connection_with_config(&config),
                )
                .await?;
            *reader = Some(connection);
        }
        let Some(connection) = reader.as_mut() else {
            return Ok(None);
        };
        let read: Result<Option<StreamReadReply>, RedisError> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">")
            .query_async(connection)
            .await;
        let reply = match read {
            Ok(reply) => reply,
            Err(err) => {
                *reader = None;
                drop(reader);
                let err = QueueError::from(self.commands.target().failure(&err));
                // Redis restarted empty, or someone deleted the stream: make it again.
                if err.says("NOGROUP") {
                    self.create_group().await?;
                    return Ok(None);
                }
                return Err(err);
            }
        };
        let Some(entry) = reply
            .and_then(|reply| reply.keys.into_iter().next())
            .and_then(|key| key.ids.into_iter().next())
        else {
            return Ok(None);
        };
        drop(reader);
        match entry_job(&entry.map) {
            Some(job) => Ok(Some(Taken {
                job,
                receipt: entry.id,
                deliveries: 1,
            })),
            None => {
                self.discard(&entry.id).await;
                Ok(None)
            }
        }
    }

    /// An entry that is not a job (written by something else) is removed, not retried forever.
    async fn discard(&self, entry_id: &str) {
        tracing::warn!(entry_id, "removed an alert queue entry that is not a job");
        let _ = self
            .run::<Value>(redis::cmd("XACK").arg(&self.key).arg(GROUP).arg(entry_id))
            .await;
        let _ = self
            .run::<Value>(redis::cmd("XDEL").arg(&self.key).arg(entry_id))
            .await;
    }

    /// The worker holding `receipt` is alive: its entry's idle time starts again. False when
    /// the job is no longer `consumer`'s (it was taken over, or finished).
    pub async fn heartbeat(&self, consumer: &str, receipt: &str) -> Result<bool, QueueError> {
        let invocation = held_by(&self.scripts.heartbeat, &self.key, consumer, receipt);
        self.run::<i64>(&invocation).await.map(|held| held == 1)
    }

    /// Takes the job out of the stream, as `ending` says: into the completed list (counted
    /// as sent when it was) or the dead letters. False when `consumer` no longer holds it.
    pub async fn finish(
        &self,
        consumer: &str,
        taken: &Taken,
        ending: Ending<'_>,
        at_ms: i64,
    ) -> Result<bool, QueueError> {
        let (list, keep) = match ending {
            Ending::Dead(_) => ("dead", self.settings.keep_dead),
            Ending::Sent | Ending::Skipped(_) => ("completed", self.settings.keep_completed),
        };
        let mut invocation = held_by(&self.scripts.finish, &self.key, consumer, &taken.receipt);
        invocation.key(self.mark(&taken.job.id)).key(self.sub(list));
        if ending == Ending::Sent {
            invocation.key(self.sub("completed_total"));
        }
        invocation
            .arg(encode(&ending.record(&taken.job, at_ms))?)
            .arg(keep);
        self.run::<i64>(&invocation).await.map(|held| held == 1)
    }

    /// Back in the queue at `due_ms`, as `job` (its attempts counted); false when `consumer`
    /// no longer holds it.
    pub async fn retry_at(
        &self,
        consumer: &str,
        taken: &Taken,
        job: &Job,
        due_ms: i64,
    ) -> Result<bool, QueueError> {
        let mut invocation = held_by(&self.scripts.retry, &self.key, consumer, &taken.receipt);
        invocation
            .key(self.sub("delayed"))
            .arg(encode(job)?)
            .arg(due_ms);
        self.run::<i64>(&invocation).await.map(|held| held == 1)
    }

    /// Moves retries that are due back to the stream; how many.
    pub async fn promote_due(&self, now_ms: i64) -> Result<usize, QueueError> {
        let mut invocation = self.scripts.promote.key(self.sub("delayed"));
        invocation.key(&self.key).arg(now_ms).arg(100);
        self.run::<usize>(&invocation).await
    }

    /// Takes over, for `consumer`, up to `room` jobs whose worker was not heard of for the
    /// stall interval; a job taken over more than `max_stalled` times is dead-lettered instead.
    pub async fn recover_stalled(
        &self,
        consumer: &str,
        room: usize,
        at_ms: i64,
    ) -> Result<Vec<Taken>, QueueError> {
        if room == 0 {
            return Ok(Vec::new());
        }
        let reply = self
            .run::<StreamAutoClaimReply>(
                redis::cmd("XAUTOCLAIM")
                    .arg(&self.key)
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(self.settings.stall_interval.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(room),
            )
            .await?;
        let mut recovered = Vec::new();
        for entry in reply.claimed {
            let Some(job) = entry_job(&entry.map) else {
                self.discard(&entry.id).await;
                continue;
            };
            let deliveries = match self.deliveries(&entry.id).await {
                Ok(Some(deliveries)) => deliveries,
                // Finished meanwhile by its holder: nothing to take over.
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "could not check a stalled alert job");
                    continue;
                }
            };
            let taken = Taken {
                job,
                receipt: entry.id,
                deliveries,
            };
            // The first delivery plus `max_stalled` takeovers.
            if deliveries > self.settings.max_stalled + 1 {
                tracing::warn!(job = %taken.job.id, "alert job stalled too often; dead-lettered");
                let dead = self.finish(consumer, &taken, Ending::Dead(STALLED), at_ms);
                if let Err(err) = dead.await {
                    tracing::warn!(error = %err, "could not dead-letter a stalled alert job");
                }
            } else {
                tracing::info!(job = %taken.job.id, "took over a stalled alert job");
                recovered.push(taken);
            }
        }
        Ok(recovered)
    }

    /// How many times the entry was delivered (XPENDING's extended form); none when it is no
    /// longer pending.
    async fn deliveries(&self, entry_id: &str) -> Result<Option<u32>, QueueError> {
        let pending: Vec<(String, String, u64, u64)> = self
            .run(
                redis::cmd("XPENDING")
                    .arg(&self.key)
                    .arg(GROUP)
                    .arg(entry_id)
                    .arg(entry_id)
                    .arg(1),
            )
            .await?;
        Ok(pending
            .first()
            .map(|(_, _, _, count)| (*count).try_into().unwrap_or(u32::MAX)))
    }

    /// None when a notification may start now, else how long until it may: at most
    /// `rate_per_second` start in one second across every instance.
    pub async fn rate_slot(&self, now_ms: i64) -> Result<Option<Duration>, QueueError> {
        let second = now_ms.div_euclid(1000);
        let invocation = self.scripts.rate.key(self.sub(&format!("rate:{second}")));
        let started: u64 = self.run(&invocation).await?;
        Ok((started > u64::from(self.settings.rate_per_second))
            .then(|| Duration::from_millis((1000 - now_ms.rem_euclid(1000)) as u64)))
    }

    /// None when one more notification within `limit` may start now (it is counted), else how
    /// long until one may; across every instance.
    pub async fn window_slot(
        &self,
        limit: &RateLimit,
        now_ms: i64,
    ) -> Result<Option<Duration>, QueueError> {
        let mut invocation = self
            .scripts
            .window
            .key(self.sub(&format!("window:{}", limit.scope)));
        invocation
            .arg(now_ms)
            .arg(limit.window.as_millis() as i64)
            .arg(limit.limit)
            .arg(ulid::Ulid::new().to_string());
        let wait: i64 = self.run(&invocation).await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait as u64)))
    }

    pub async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN")
            .arg(&self.key)
            .cmd("XPENDING")
            .arg(&self.key)
            .arg(GROUP)
            .cmd("ZCARD")
            .arg(self.sub("delayed"))
            .cmd("LLEN")
            .arg(self.sub("dead"))
            .cmd("GET")
            .arg(self.sub("completed_total"));
        let (length, pending, retrying, dead, completed): (u64, Value, u64, u64, Option<u64>) =
            self.run(&pipe).await?;
        // XPENDING's summary form starts with the number of pending entries.
        let in_flight = match pending {
            Value::Array(items) => match items.first() {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        };
        Ok(QueueCounts {
            waiting: length.saturating_sub(in_flight),
            in_flight,
            retrying,
            dead_lettered: dead,
            completed: completed.unwrap_or(0),
        })
    }

    pub async fn recent_dead(&self, limit: usize) -> Result<Vec<FinishedJob>, QueueError> {
        let texts: Vec<String> = self
            .run(
                redis::cmd("LRANGE")
                    .arg(self.sub("dead"))
                    .arg(0)
                    .arg(limit.saturating_sub(1)),
            )
            .await?;
        Ok(texts
            .iter()
            .filter_map(|text| serde_json::from_str(text).ok())
            .collect())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, QueueError> {
    serde_json::to_string(value)
        .map_err(|err| QueueError::refused(format!("could not encode a job: {err}")))
}

fn entry_job(fields: &std::collections::HashMap<String, Value>) -> Option<Job> {
    match fields.get("job")? {
        Value::BulkString(bytes) => serde_json::from_slice(bytes).ok(),
        Value::SimpleString(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

/// An outage (the local queue takes over) or an error Redis answered with.
impl From<RedisIoError> for QueueError {
    fn from(err: RedisIoError) -> Self {
        let code = match &err {
            RedisIoError::Refused { code, .. } => code.clone(),
            _ => None,
        };
        QueueError {
            reason: err.reason(),
            outage: err.is_outage(),
            code,
        }
    }
}
