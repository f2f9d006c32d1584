//! The embedded backend: one JSON file per key under a directory.
//!
//! Writes go to a temp file in the same directory and are renamed into place, so readers see
//! the old or the new entry, never half of one. Writers of one key serialize on a lock file
//! (see `key_lock`), which also makes `put_if_absent` atomic across processes.

mod entry;
mod file_name;
mod key_lock;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub(crate) use entry::StoredEntry;
use key_lock::KeyLock;

use super::error::StoreError;

/// Temp files older than this are leftovers of a crash and are swept at open.
const TEMP_LEFTOVER_AGE: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub(crate) struct EmbeddedStore {
    files: Arc<EntryFiles>,
}

impl EmbeddedStore {
    pub(crate) fn open(dir: PathBuf) -> Result<Self, StoreError> {
        crate::fsutil::private_dir(&dir).map_err(|err| StoreError::file("create", &dir, err))?;
        let files = EntryFiles { dir };
        files.sweep();
        Ok(Self {
            files: Arc::new(files),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.files.dir
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |files| Ok(files.read_live(&key)?.map(|entry| entry.value)))
            .await
    }

    /// The live entry under `key`, with its expiry and origin.
    pub(crate) async fn entry(&self, key: &str) -> Result<Option<StoredEntry>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |files| files.read_live(&key)).await
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let entry = StoredEntry::new(key, value, ttl, false);
        self.blocking(move |files| files.put(&entry)).await
    }

    pub(crate) async fn put_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let entry = StoredEntry::new(key, value, ttl, true);
        self.blocking(move |files| files.put_if_absent(entry)).await
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.blocking(move |files| files.delete(&key)).await
    }

    pub(crate) async fn delete_if(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.blocking(move |files| files.delete_if(&key, &value))
            .await
    }

    /// Drops expired entries (and a crash's temp files): expired entries are otherwise only
    /// removed when read again, and a long run writes many it never reads (delivery ledgers).
    pub(crate) async fn sweep(&self) {
        let _ = self
            .blocking(|files| {
                files.sweep();
                Ok(())
            })
            .await;
    }

    async fn blocking<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&EntryFiles) -> Result<T, StoreError> + Send + 'static,
    {
        let files = Arc::clone(&self.files);
        tokio::task::spawn_blocking(move || job(&files))
            .await
            .map_err(|err| StoreError::Task {
                reason: err.to_string(),
            })?
    }
}

/// The blocking file operations.
struct EntryFiles {
    dir: PathBuf,
}

impl EntryFiles {
    fn path_for(&self, key: &str) -> PathBuf {
        self.dir.join(file_name::for_key(key))
    }

    /// The entry under `key` unless it is absent, expired (then removed) or unreadable.
    fn read_live(&self, key: &str) -> Result<Option<StoredEntry>, StoreError> {
        let path = self.path_for(key);
        let Some(entry) = read_entry(&path)? else {
            return Ok(None);
        };
        if entry.key != key {
            tracing::warn!(path = %path.display(), key, "state file belongs to another key; treating it as absent");
            return Ok(None);
        }
        if entry.is_expired() {
            remove_if_expired(&path);
            return Ok(None);
        }
        Ok(Some(entry))
    }

    fn put(&self, entry: &StoredEntry) -> Result<(), StoreError> {
        let path = self.path_for(&entry.key);
        let _lock = KeyLock::acquire(&path)?;
        write_entry(&path, entry)
    }

    fn put_if_absent(&self, entry: StoredEntry) -> Result<String, StoreError> {
        if let Some(existing) = self.read_live(&entry.key)? {
            return Ok(existing.value);
        }
        let path = self.path_for(&entry.key);
        let _lock = KeyLock::acquire(&path)?;
        // Someone may have won between our first look and the lock.
        if let Some(existing) = self.read_live(&entry.key)? {
            return Ok(existing.value);
        }
        write_entry(&path, &entry)?;
        Ok(entry.value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_for(key);
        let _lock = KeyLock::acquire(&path)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(StoreError::file("remove", &path, err)),
        }
    }

    fn delete_if(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let path = self.path_for(key);
        let _lock = KeyLock::acquire(&path)?;
        if self
            .read_live(key)?
            .is_none_or(|entry| entry.value != value)
        {
            return Ok(false);
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(StoreError::file("remove", &path, err)),
        }
    }

    /// Best effort, at open and now and then: drop expired entries and temp files a crash left
    /// behind.
    fn sweep(&self) {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return;
        };
        for dir_entry in listing.flatten() {
            let name = dir_entry.file_name().to_string_lossy().into_owned();
            let path = dir_entry.path();
            if file_name::is_entry(&name) {
                remove_if_expired(&path);
            } else if name.ends_with(".tmp") && is_older_than(&path, TEMP_LEFTOVER_AGE) {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// `None` when the file is missing or corrupt (logged); an error only when it can't be read.
fn read_entry(path: &Path) -> Result<Option<StoredEntry>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(StoreError::file("read", path, err)),
    };
    match serde_json::from_slice(&bytes) {
        Ok(entry) => Ok(Some(entry)),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "ignoring a corrupt state file");
            Ok(None)
        }
    }
}

fn write_entry(path: &Path, entry: &StoredEntry) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(entry).map_err(|err| StoreError::Encode {
        key: entry.key.clone(),
        reason: err.to_string(),
    })?;
    crate::fsutil::replace(path, &bytes).map_err(|err| StoreError::file("write", path, err))
}

/// Lazy expiry: remove the entry if it is still expired once we hold its lock. Skipped when a
/// writer holds the lock, since that writer is replacing it anyway.
fn remove_if_expired(path: &Path) {
    let Some(_lock) = KeyLock::try_acquire(path) else {
        return;
    };
    if let Ok(Some(entry)) = read_entry(path) {
        if entry.is_expired() {
            let _ = fs::remove_file(path);
        }
    }
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|elapsed| elapsed > age)
}
