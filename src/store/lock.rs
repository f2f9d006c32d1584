//! A lock in the state store, for a read-modify-write of one value that several instances
//! change (the silences, the alert groups): taken with `put_if_absent`, given back only by its
//! holder (`delete_if`), and let go by itself after its TTL if the holder died holding it.

use std::time::Duration;

use super::{StateStore, StoreError};

/// A lock held; give it back with [`StoreLock::release`].
#[must_use = "a lock is held until released (or until its TTL)"]
pub struct StoreLock {
    store: StateStore,
    key: String,
    token: String,
}

impl StateStore {
    /// Takes the lock `key`, waiting up to `wait` for its holder; `None` when it stayed taken.
    /// Held for at most `ttl`.
    pub async fn lock(
        &self,
        key: &str,
        ttl: Duration,
        wait: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        let token = ulid::Ulid::new().to_string();
        let deadline = tokio::time::Instant::now() + wait;
        while self.put_if_absent(key, &token, ttl).await? != token {
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(StoreLock {
            store: self.clone(),
            key: key.to_owned(),
            token,
        }))
    }
}

impl StoreLock {
    pub async fn release(self) {
        if let Err(err) = self.store.delete_if(&self.key, &self.token).await {
            tracing::warn!(error = %err, key = %self.key, "could not give a lock back");
        }
    }
}
