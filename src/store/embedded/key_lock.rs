//! A per-key lock shared by processes: a lock file created with `create_new`.
//!
//! Writers hold it for the few milliseconds of a read-check-rename; readers never take it.
//! A lock left behind by a crashed process is broken once it is older than `STALE_AFTER`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::store::error::StoreError;

const STALE_AFTER: Duration = Duration::from_secs(10);
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);

pub(super) struct KeyLock {
    path: PathBuf,
}

impl KeyLock {
    /// Wait (blocking) until the lock for `entry_path` is ours.
    pub(super) fn acquire(entry_path: &Path) -> Result<Self, StoreError> {
        let path = lock_path(entry_path);
        let deadline = Instant::now() + GIVE_UP_AFTER;
        loop {
            if let Some(lock) = Self::create(&path)? {
                return Ok(lock);
            }
            if is_stale(&path) {
                tracing::warn!(path = %path.display(), "breaking a stale state file lock");
                let _ = fs::remove_file(&path);
                continue;
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Locked { path });
            }
            thread::sleep(Duration::from_millis(rand::random_range(1..=4)));
        }
    }

    /// The lock if nobody holds it now; `None` otherwise (also on I/O errors).
    pub(super) fn try_acquire(entry_path: &Path) -> Option<Self> {
        Self::create(&lock_path(entry_path)).ok().flatten()
    }

    fn create(path: &Path) -> Result<Option<Self>, StoreError> {
        match crate::fsutil::private_file()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => Ok(Some(Self {
                path: path.to_owned(),
            })),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(err) => Err(StoreError::file("lock", path, err)),
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_path(entry_path: &Path) -> PathBuf {
    let name = entry_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    entry_path.with_file_name(format!(".{name}.lock"))
}

fn is_stale(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|age| age > STALE_AFTER)
}
