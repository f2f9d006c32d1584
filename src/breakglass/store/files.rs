//! The breakglass store in files under the state directory, private to their owner (0700
//! directory, 0600 files): one file per entry and per use counter, the audit trail as one JSON
//! line per record. Changes hold a lock file, so processes sharing the directory never exceed
//! a use limit.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{format_uses, parse_uses, BreakglassStoreError, Reservation, Uses};
use crate::breakglass::audit::AuditRecord;
use crate::breakglass::entry::BreakglassEntry;
use crate::clock::now_ms;
use crate::fsutil;

#[derive(Clone)]
pub struct Files {
    dir: PathBuf,
}

fn unavailable(what: &str, path: &Path, err: impl std::fmt::Display) -> BreakglassStoreError {
    BreakglassStoreError::Unavailable(format!("cannot {what} {}: {err}", path.display()))
}

impl Files {
    /// The store in `dir`, created if missing.
    pub(super) fn open(dir: PathBuf) -> Result<Self, BreakglassStoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|err| unavailable("create", &dir, err))?;
        Ok(Files { dir })
    }

    /// Runs `job` on a thread that may block (file locks, fsync).
    pub(super) async fn off_thread<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Files) -> Result<T, BreakglassStoreError> + Send + 'static,
    ) -> Result<T, BreakglassStoreError> {
        let files = self.clone();
        tokio::task::spawn_blocking(move || job(&files))
            .await
            .map_err(|err| BreakglassStoreError::Unavailable(err.to_string()))?
    }

    fn entry_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("entry-{}.json", file_safe(id)))
    }

    fn uses_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("uses-{}", file_safe(id)))
    }

    /// Holds the store's lock (shared by processes) while `job` runs.
    fn locked<T>(
        &self,
        job: impl FnOnce() -> Result<T, BreakglassStoreError>,
    ) -> Result<T, BreakglassStoreError> {
        let path = self.dir.join("breakglass.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| unavailable("open", &path, err))?;
        lock.lock().map_err(|err| unavailable("lock", &path, err))?;
        let result = job();
        let _ = lock.unlock();
        result
    }

    pub(super) fn entry(&self, id: &str) -> Result<Option<BreakglassEntry>, BreakglassStoreError> {
        let path = self.entry_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(unavailable("read", &path, err)),
        };
        // serde's message could quote a stored value: not shown.
        let mut entry: BreakglassEntry = serde_json::from_str(&text).map_err(|_| {
            BreakglassStoreError::Unavailable(format!(
                "{} is not a breakglass entry",
                path.display()
            ))
        })?;
        if let Some(uses) = self.uses(id)?.filter(|uses| uses.entry_id == entry.id) {
            entry.access_count = uses.count;
            entry.accessed_at = uses.at;
        }
        Ok(Some(entry))
    }

    /// The use counter; a counter that cannot be read counts as an error, never as zero.
    fn uses(&self, id: &str) -> Result<Option<Uses>, BreakglassStoreError> {
        let path = self.uses_path(id);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_uses(&text).map(Some).ok_or_else(|| {
                BreakglassStoreError::Unavailable(format!("{} is malformed", path.display()))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(unavailable("read", &path, err)),
        }
    }

    pub(super) fn entries(&self) -> Result<Vec<BreakglassEntry>, BreakglassStoreError> {
        let listing =
            std::fs::read_dir(&self.dir).map_err(|err| unavailable("list", &self.dir, err))?;
        let mut entries = Vec::new();
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(id) = name
                .strip_prefix("entry-")
                .and_then(|n| n.strip_suffix(".json"))
            {
                if let Some(entry) = self.entry(id)? {
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }

    fn write_entry(&self, entry: &BreakglassEntry) -> Result<(), BreakglassStoreError> {
        let path = self.entry_path(&entry.connection_id);
        let text =
            serde_json::to_string_pretty(entry).map_err(|err| unavailable("encode", &path, err))?;
        write_private(&path, text.as_bytes())
    }

    pub(super) fn put_entry(&self, entry: &BreakglassEntry) -> Result<(), BreakglassStoreError> {
        self.locked(|| {
            self.write_entry(entry)?;
            write_private(
                &self.uses_path(&entry.connection_id),
                format_uses(&entry.id, 0, None).as_bytes(),
            )
        })
    }

    pub(super) fn update_entry(
        &self,
        entry: &BreakglassEntry,
    ) -> Result<bool, BreakglassStoreError> {
        self.locked(|| {
            let current = self.entry(&entry.connection_id)?;
            if current.is_none_or(|current| current.id != entry.id) {
                return Ok(false);
            }
            self.write_entry(entry).map(|()| true)
        })
    }

    pub(super) fn reserve_use(
        &self,
        id: &str,
        entry_id: &str,
        limit: u32,
    ) -> Result<Reservation, BreakglassStoreError> {
        self.locked(|| {
            let count = match self.uses(id)? {
                Some(uses) if uses.entry_id != entry_id => return Ok(Reservation::Replaced),
                Some(uses) => uses.count,
                None => 0,
            };
            if count >= limit {
                return Ok(Reservation::LimitReached);
            }
            write_private(
                &self.uses_path(id),
                format_uses(entry_id, count + 1, Some(now_ms())).as_bytes(),
            )?;
            Ok(Reservation::Reserved(count + 1))
        })
    }

    pub(super) fn release_use(&self, id: &str, entry_id: &str) -> Result<(), BreakglassStoreError> {
        self.locked(|| match self.uses(id)? {
            Some(uses) if uses.entry_id == entry_id => write_private(
                &self.uses_path(id),
                format_uses(entry_id, uses.count.saturating_sub(1), uses.at).as_bytes(),
            ),
            _ => Ok(()),
        })
    }

    pub(super) fn append_audit(&self, line: &str) -> Result<(), BreakglassStoreError> {
        let path = self.dir.join("audit.ndjson");
        let mut file: File = fsutil::private_file()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|err| unavailable("open the audit trail", &path, err))?;
        file.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|err| unavailable("write the audit trail", &path, err))
    }

    pub(super) fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, BreakglassStoreError> {
        let path = self.dir.join("audit.ndjson");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(unavailable("read the audit trail", &path, err)),
        };
        Ok(text
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str(line).ok())
            .take(limit)
            .collect())
    }
}

/// Replaces a file that only its owner may read (0600).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BreakglassStoreError> {
    fsutil::replace(path, bytes).map_err(|err| unavailable("write", path, err))
}

/// Connection ids are ours (`conn_...`), but a file name never takes a path from outside.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
