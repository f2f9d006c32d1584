//! What can go wrong with the state store, in one error type for every backend.

use std::path::{Path, PathBuf};

use crate::redis_io::RedisIoError;

/// Why a state store operation failed. Messages are one sentence and never carry the Redis
/// password: URLs are redacted and Redis' own texts are scrubbed before they get here.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not {action} the state file {}: {reason}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        reason: std::io::Error,
    },

    #[error("the state file {} stayed locked by another process for too long", path.display())]
    Locked { path: PathBuf },

    #[error("could not encode the value for key {key} as JSON: {reason}")]
    Encode { key: String, reason: String },

    #[error("REDIS_URL {url} is not a usable Redis URL: {reason}")]
    InvalidRedisUrl { url: String, reason: String },

    #[error("could not connect to Redis at {address}: {reason}")]
    RedisUnreachable { address: String, reason: String },

    #[error("Redis at {address} refused to {action} key {key}: {reason}")]
    RedisCommand {
        address: String,
        action: &'static str,
        key: String,
        reason: String,
    },

    #[error("a state store file task stopped unexpectedly: {reason}")]
    Task { reason: String },
}

impl StoreError {
    pub(crate) fn file(action: &'static str, path: &Path, reason: std::io::Error) -> Self {
        Self::File {
            action,
            path: path.to_owned(),
            reason,
        }
    }
}

/// Opening a Redis store: a URL that is not one, or a Redis that cannot be used.
impl From<RedisIoError> for StoreError {
    fn from(err: RedisIoError) -> Self {
        let reason = err.reason();
        match err {
            RedisIoError::InvalidUrl { url, .. } => StoreError::InvalidRedisUrl { url, reason },
            RedisIoError::Outage { address, .. }
            | RedisIoError::NoAnswer { address, .. }
            | RedisIoError::Refused { address, .. } => {
                StoreError::RedisUnreachable { address, reason }
            }
        }
    }
}
