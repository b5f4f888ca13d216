//! The state file on disk: one sandbox at a time, private to its owner, replaced whole.
//!
//! A running sandbox holds an advisory lock (`flock`, through `fs4`, as std's `File::try_lock`
//! is newer than the supported Rust) on
//! `<state>.lock`. Two sandboxes on one state file would each save their own view over the
//! other's and lose writes, so the second refuses to start and names the file. The lock is taken
//! on a file beside the state rather than on the state itself because saving replaces the state
//! by a rename, and a lock on the replaced file would guard nothing. The lock file stays behind,
//! empty; the lock itself ends with the sandbox (or its process).
//!
//! Saving writes a temporary file in the same folder with mode 0600 (secret digests and the
//! account live there) and renames it over the state, so a crash leaves the old state or the new
//! one; when writing or renaming fails, the temporary file is removed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::error::Error;

/// Held while a sandbox uses a state file.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

fn private() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Take the state file for this sandbox, or say which file another sandbox holds.
pub(crate) fn lock(state: &Path) -> Result<StateLock, Error> {
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::StateWrite {
            path: dir.to_owned(),
            source,
        })?;
    }
    let path = lock_path(state);
    let file = private()
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| Error::StateWrite {
            path: path.clone(),
            source,
        })?;
    match FileExt::try_lock_exclusive(&file) {
        Ok(true) => Ok(StateLock { _file: file }),
        Ok(false) => Err(Error::StateLocked {
            state: state.to_owned(),
            lock: path,
        }),
        Err(source) => Err(Error::StateWrite { path, source }),
    }
}

/// Write `bytes` to `tmp` (mode 0600) and rename it over `path`; never leaves `tmp` behind.
pub(crate) fn replace(path: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let written = private()
        .create_new(true)
        .open(tmp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| std::fs::rename(tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}
