//! The breakglass store in files under the state directory, private to their owner (0700
//! directory, 0600 files): one file per entry and per use counter, the audit trail as one JSON
//! line per record. Changes hold a lock file, so processes sharing the directory never exceed
//! a use limit.
//!
//! With `BREAKGLASS_KEY` set, the files are tamper-evident (see [`FileSeal`]): each entry
//! carries a tag over its limits and expiry, each use counter a tag over its count, and each
//! audit record a tag over itself and the previous record's tag (a chain), the last of which
//! `audit.head` holds, tagged too. An edited entry or counter is refused; a missing counter
//! fails closed; an edited, removed or cut audit record breaks the chain, which is reported
//! and stops every access. What the seal cannot stop: someone with the key, or putting back
//! an older copy of the whole directory.

use std::path::{Path, PathBuf};

use super::{format_uses, parse_uses, BreakglassStoreError, Reservation, Uses};
use crate::breakglass::audit::AuditRecord;
use crate::breakglass::entry::BreakglassEntry;
use crate::breakglass::keys::FileSeal;
use crate::clock::now_ms;
use crate::fsutil;

#[derive(Clone)]
pub struct Files {
    dir: PathBuf,
    seal: Option<FileSeal>,
}

fn tampered(path: &Path, what: &str) -> BreakglassStoreError {
    BreakglassStoreError::Tampered(format!(
        "{} {what}; access is refused until it is restored or a new login makes a new entry",
        path.display()
    ))
}

/// What an entry's tag covers: who it is for, what it holds, and every limit on it.
fn entry_fields(entry: &BreakglassEntry) -> Vec<u8> {
    serde_json::to_vec(&(
        &entry.id,
        &entry.connection_id,
        &entry.user_id,
        &entry.access_token,
        &entry.refresh_token,
        &entry.storage,
        entry.expires_at,
        entry.max_access_count,
        entry.is_active,
        entry.access_restricted_until,
        entry.created_at,
    ))
    .unwrap_or_default()
}

fn unavailable(what: &str, path: &Path, err: impl std::fmt::Display) -> BreakglassStoreError {
    BreakglassStoreError::Unavailable(format!("cannot {what} {}: {err}", path.display()))
}

impl Files {
    /// The store in `dir`, created if missing.
    pub(super) fn open(dir: PathBuf, seal: Option<FileSeal>) -> Result<Self, BreakglassStoreError> {
        fsutil::private_dir(&dir).map_err(|err| unavailable("create", &dir, err))?;
        Ok(Files { dir, seal })
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
        let lock = fsutil::private_file()
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
        let malformed = || {
            BreakglassStoreError::Unavailable(format!(
                "{} is not a breakglass entry",
                path.display()
            ))
        };
        let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|_| malformed())?;
        let tag = value
            .as_object_mut()
            .and_then(|fields| fields.remove("mac"))
            .and_then(|tag| tag.as_str().map(str::to_owned));
        let mut entry: BreakglassEntry = serde_json::from_value(value).map_err(|_| malformed())?;
        if let Some(seal) = &self.seal {
            if !tag.is_some_and(|tag| seal.verify(&entry_fields(&entry), &tag)) {
                return Err(tampered(
                    &path,
                    "was changed outside shiplog (its seal does not match)",
                ));
            }
        }
        match self.uses(id)? {
            Some(uses) if uses.entry_id == entry.id => {
                entry.access_count = uses.count;
                entry.accessed_at = uses.at;
            }
            // No counter for this entry: it shows no use left, and access fails closed.
            _ => entry.access_count = entry.max_access_count,
        }
        Ok(Some(entry))
    }

    /// The use counter; a counter that cannot be read counts as an error, never as zero.
    fn uses(&self, id: &str) -> Result<Option<Uses>, BreakglassStoreError> {
        let path = self.uses_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(unavailable("read", &path, err)),
        };
        let counter = match &self.seal {
            Some(seal) => seal.open_text(&text).ok_or_else(|| {
                tampered(
                    &path,
                    "was changed outside shiplog (its seal does not match)",
                )
            })?,
            None => text.trim().lines().next().unwrap_or_default(),
        };
        parse_uses(counter).map(Some).ok_or_else(|| {
            BreakglassStoreError::Unavailable(format!("{} is malformed", path.display()))
        })
    }

    fn write_uses(&self, id: &str, counter: &str) -> Result<(), BreakglassStoreError> {
        let text = match &self.seal {
            Some(seal) => seal.seal_text(counter),
            None => counter.to_owned(),
        };
        write_private(&self.uses_path(id), text.as_bytes())
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
        let mut value =
            serde_json::to_value(entry).map_err(|err| unavailable("encode", &path, err))?;
        if let (Some(seal), Some(fields)) = (&self.seal, value.as_object_mut()) {
            fields.insert("mac".to_owned(), seal.tag(&entry_fields(entry)).into());
        }
        let text = serde_json::to_string_pretty(&value)
            .map_err(|err| unavailable("encode", &path, err))?;
        write_private(&path, text.as_bytes())
    }

    pub(super) fn put_entry(&self, entry: &BreakglassEntry) -> Result<(), BreakglassStoreError> {
        self.locked(|| {
            self.write_entry(entry)?;
            self.write_uses(&entry.connection_id, &format_uses(&entry.id, 0, None))
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
                // Deleting the counter must not reset it.
                None => return Err(tampered(&self.uses_path(id), "is missing")),
            };
            if count >= limit {
                return Ok(Reservation::LimitReached);
            }
            self.write_uses(id, &format_uses(entry_id, count + 1, Some(now_ms())))?;
            Ok(Reservation::Reserved(count + 1))
        })
    }

    pub(super) fn release_use(&self, id: &str, entry_id: &str) -> Result<(), BreakglassStoreError> {
        self.locked(|| match self.uses(id)? {
            Some(uses) if uses.entry_id == entry_id => self.write_uses(
                id,
                &format_uses(entry_id, uses.count.saturating_sub(1), uses.at),
            ),
            _ => Ok(()),
        })
    }

    fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.ndjson")
    }

    fn head_path(&self) -> PathBuf {
        self.dir.join("audit.head")
    }

    /// Appends a record; sealed, it joins the chain, and a broken chain refuses it (so the
    /// access it records is denied).
    pub(super) fn append_audit(&self, line: &str) -> Result<(), BreakglassStoreError> {
        let Some(seal) = &self.seal else {
            return self.append_line(line);
        };
        self.locked(|| {
            let (count, previous) = self.verified_chain(seal, &self.audit_text()?)?;
            let path = self.audit_path();
            let mut record: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).map_err(|err| unavailable("encode", &path, err))?;
            record.insert("prev".to_owned(), previous.into());
            let tag = seal.tag(
                serde_json::to_string(&record)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            record.insert("mac".to_owned(), tag.clone().into());
            self.append_line(&serde_json::to_string(&record).unwrap_or_default())?;
            let head = seal.seal_text(&format!("{}|{tag}", count + 1));
            write_private(&self.head_path(), head.as_bytes())
        })
    }

    fn append_line(&self, line: &str) -> Result<(), BreakglassStoreError> {
        let path = self.audit_path();
        fsutil::append_line_synced(&path, line)
            .map_err(|err| unavailable("write the audit trail", &path, err))
    }

    fn audit_text(&self) -> Result<String, BreakglassStoreError> {
        let path = self.audit_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(err) => Err(unavailable("read the audit trail", &path, err)),
        }
    }

    /// Checks the chain of `text` (the trail) from the first record to `audit.head`; gives the
    /// number of records and the last tag, or says where the chain breaks.
    fn verified_chain(
        &self,
        seal: &FileSeal,
        text: &str,
    ) -> Result<(usize, String), BreakglassStoreError> {
        let path = self.audit_path();
        let broken = |at: usize, why: &str| {
            BreakglassStoreError::Tampered(format!(
                "the audit trail {} is broken at record {at}: {why}",
                path.display()
            ))
        };
        let mut previous = String::new();
        let mut count = 0;
        for (index, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let at = index + 1;
            let mut record: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).map_err(|_| broken(at, "not a record"))?;
            let tag = record
                .remove("mac")
                .and_then(|t| t.as_str().map(str::to_owned));
            let prev = record
                .get("prev")
                .and_then(|p| p.as_str())
                .unwrap_or_default();
            let body = serde_json::to_string(&record).unwrap_or_default();
            if prev != previous
                || !tag
                    .as_ref()
                    .is_some_and(|t| seal.verify(body.as_bytes(), t))
            {
                return Err(broken(at, "it was changed, or a record before it removed"));
            }
            previous = tag.unwrap_or_default();
            count = at;
        }
        let head = match std::fs::read_to_string(self.head_path()) {
            Ok(head) => Some(head),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(unavailable("read", &self.head_path(), err)),
        };
        let expected = match head {
            None if count == 0 => return Ok((0, previous)),
            None => return Err(broken(count, "its head (audit.head) is missing")),
            Some(head) => head,
        };
        let Some(head) = seal.open_text(&expected) else {
            return Err(broken(count, "its head (audit.head) was changed"));
        };
        if head != format!("{count}|{previous}") {
            return Err(broken(count + 1, "records after it were removed"));
        }
        Ok((count, previous))
    }

    pub(super) fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>, BreakglassStoreError> {
        let text = self.audit_text()?;
        if let Some(seal) = &self.seal {
            self.verified_chain(seal, &text)?;
        }
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
