//! Redis with a local fallback: when Redis goes away mid-run, operations go to an embedded
//! store, the degraded hook fires once, and Redis is tried again at a bounded pace. On return,
//! what was written during the outage is copied to Redis before Redis is used again.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::embedded::EmbeddedStore;
use super::error::StoreError;
use super::redis_store::{RedisFailure, RedisStore};
use super::DegradedHook;

pub(crate) struct FailoverStore {
    redis: RedisStore,
    fallback: EmbeddedStore,
    on_degraded: DegradedHook,
    retry_interval: Duration,
    degraded: AtomicBool,
    /// Held while touching the fallback and while recovering, so no fallback write can slip
    /// in between the copy back to Redis and the switch to Redis.
    outage: Mutex<Outage>,
}

#[derive(Default)]
struct Outage {
    last_attempt: Option<Instant>,
    /// Keys written or deleted in the fallback during this outage.
    touched: BTreeSet<String>,
}

impl FailoverStore {
    pub(crate) fn new(
        redis: RedisStore,
        fallback: EmbeddedStore,
        on_degraded: DegradedHook,
        retry_interval: Duration,
    ) -> Self {
        Self {
            redis,
            fallback,
            on_degraded,
            retry_interval,
            degraded: AtomicBool::new(false),
            outage: Mutex::new(Outage::default()),
        }
    }

    pub(crate) fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    pub(crate) fn redacted_url(&self) -> &str {
        self.redis.target().redacted_url()
    }

    /// Drops the fallback's expired entries (Redis expires its own).
    pub(crate) async fn sweep_fallback(&self) {
        self.fallback.sweep().await;
    }

    pub(crate) fn fallback_dir(&self) -> &Path {
        self.fallback.dir()
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.route(
            key,
            Access::Read,
            |redis| redis.get(key),
            |files| files.get(key),
        )
        .await
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.route(
            key,
            Access::Write,
            |redis| redis.put(key, value, ttl),
            |files| files.put(key, value, ttl),
        )
        .await
    }

    pub(crate) async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        self.route(
            key,
            Access::Write,
            |redis| redis.put_if_absent(key, value, ttl),
            |files| files.put_if_absent(key, value, ttl),
        )
        .await
    }

    pub(crate) async fn delete_if(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        self.route(
            key,
            Access::Write,
            |redis| redis.delete_if(key, value),
            |files| files.delete_if(key, value),
        )
        .await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.route(
            key,
            Access::Write,
            |redis| redis.delete(key),
            |files| files.delete(key),
        )
        .await
    }

    /// Run one operation on Redis, or on the fallback while Redis is gone.
    async fn route<'a, T, R, F>(
        &'a self,
        key: &str,
        access: Access,
        on_redis: impl Fn(&'a RedisStore) -> R,
        on_fallback: impl Fn(&'a EmbeddedStore) -> F,
    ) -> Result<T, StoreError>
    where
        R: Future<Output = Result<T, RedisFailure>>,
        F: Future<Output = Result<T, StoreError>>,
    {
        loop {
            if self.is_degraded() {
                self.try_recover().await;
            }
            if !self.is_degraded() {
                match on_redis(&self.redis).await {
                    Ok(value) => return Ok(value),
                    Err(RedisFailure::Refused(err)) => return Err(err),
                    Err(RedisFailure::Outage(reason)) => self.enter_degraded(&reason).await,
                }
            }
            let mut outage = self.outage.lock().await;
            if self.is_degraded() {
                if access == Access::Write {
                    outage.touched.insert(key.to_owned());
                }
                return on_fallback(&self.fallback).await;
            }
            // Redis came back while we waited for the lock: use it.
        }
    }

    async fn enter_degraded(&self, reason: &str) {
        {
            let mut outage = self.outage.lock().await;
            outage.last_attempt = Some(Instant::now());
            if self.degraded.swap(true, Ordering::SeqCst) {
                return;
            }
        }
        let sentence = format!(
            "Redis at {} stopped answering ({reason}); shared state is kept in local files until it answers again.",
            self.redis.target().address()
        );
        tracing::warn!("{sentence}");
        (self.on_degraded)(&sentence);
    }

    /// If the retry interval has passed, PING Redis; when it answers, copy the outage's writes
    /// back and switch to Redis.
    async fn try_recover(&self) {
        {
            let mut outage = self.outage.lock().await;
            let due = outage
                .last_attempt
                .is_none_or(|last| last.elapsed() >= self.retry_interval);
            if !self.is_degraded() || !due {
                return;
            }
            outage.last_attempt = Some(Instant::now());
        }
        // Any answer, even a refusal, means Redis is there again.
        if let Err(RedisFailure::Outage(reason)) = self.redis.ping().await {
            tracing::debug!(%reason, "Redis still unavailable");
            return;
        }
        let mut outage = self.outage.lock().await;
        if !self.is_degraded() {
            return;
        }
        let touched: Vec<String> = outage.touched.iter().cloned().collect();
        for key in touched {
            match self.copy_back(&key).await {
                Ok(()) => {}
                Err(RedisFailure::Outage(reason)) => {
                    tracing::debug!(%reason, "Redis went away again while catching up");
                    outage.last_attempt = Some(Instant::now());
                    return;
                }
                Err(RedisFailure::Refused(err)) => {
                    tracing::warn!(key, %err, "could not copy a value written during the Redis outage back to Redis");
                }
            }
            outage.touched.remove(&key);
        }
        self.degraded.store(false, Ordering::SeqCst);
        tracing::info!(
            address = self.redis.target().address(),
            "Redis answers again; shared state is back in Redis"
        );
    }

    /// Make Redis hold what the fallback holds for `key`, then drop the fallback copy (also
    /// when Redis refused it: a stale local copy must not resurface in the next outage).
    async fn copy_back(&self, key: &str) -> Result<(), RedisFailure> {
        let copied = match self.fallback.entry(key).await {
            Err(err) => Err(RedisFailure::Refused(err)),
            Ok(Some(entry)) if entry.claimed => self
                .redis
                .put_if_absent(key, &entry.value, entry.ttl_left())
                .await
                .map(drop),
            Ok(Some(entry)) => self.redis.put(key, &entry.value, entry.ttl_left()).await,
            Ok(None) => self.redis.delete(key).await,
        };
        if matches!(copied, Err(RedisFailure::Outage(_))) {
            return copied;
        }
        if let Err(err) = self.fallback.delete(key).await {
            tracing::warn!(key, %err, "could not remove a fallback entry after copying it to Redis");
        }
        copied
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}
