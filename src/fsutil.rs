//! Writing files safely: a file is replaced whole. The bytes go to a temporary file beside it,
//! which is then renamed over it, so a crash mid-write leaves the previous version and readers
//! never see half.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Who may read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The process's default (umask).
    Shared,
    /// Its owner only (0600): secrets, sealed or not, and their audit.
    Private,
}

/// Replaces `path` with `bytes`.
pub fn replace(path: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let temporary = temp_path(path);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::Private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let written = options
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// A name no other writer (thread or process) uses at the same time.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}-{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ))
}
