//! Writing files safely: a file is replaced whole. The bytes go to a temporary file beside it,
//! which is then renamed over it, so a crash mid-write leaves the previous version and readers
//! never see half.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`; the file is its owner's only (0600).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = temp_path(path);
    let written = private_file()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Appends `line` and a newline to `path` (created 0600 if missing) and syncs it to disk: an
/// audit record that returns `Ok` survives a crash. One `write` per line, so processes
/// appending to the same file never interleave their lines.
pub fn append_line_synced(path: &Path, line: &str) -> io::Result<()> {
    let mut file = private_file().create(true).append(true).open(path)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    file.sync_data()
}

/// Options that create a file only its owner may read and write (0600). State, logs and
/// audit trails hold deployment ids, alert texts and sealed secrets.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Creates `dir` (and its parents) if missing, and makes it its owner's only (0700); a
/// directory an earlier version made 0755 is tightened.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700).create(dir)?;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    builder.create(dir)
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
