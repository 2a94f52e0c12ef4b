//! Output files appear at their final path only complete: they are written to a temporary file in
//! the same directory (`.NAME.tmp-PID-N`) and renamed over the final path on success. The
//! temporary file is removed on error or when the writer is dropped without `finish`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// A temporary file next to its final path; removed on drop unless [`commit`](TempFile::commit)ted.
#[derive(Debug)]
pub(crate) struct TempFile {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    /// Reserves a new temporary file for `target` in the same directory and returns it with the
    /// opened (empty) file.
    pub(crate) fn create(target: &Path) -> Result<(TempFile, File)> {
        let Some(name) = target.file_name() else {
            return Err(Error::format(
                target,
                None,
                "the output path has no file name",
                "give a file path such as out/run1.root",
            ));
        };
        if target.is_dir() {
            return Err(Error::format(
                target,
                None,
                "the output path is a directory",
                "give a file path inside it, such as DIR/run1.root",
            ));
        }
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => {
                    format!("the directory {} does not exist: create it first", dir.display())
                }
                std::io::ErrorKind::PermissionDenied => format!(
                    "the directory {} is not writable: choose another output directory or fix its permissions",
                    dir.display()
                ),
                _ => format!(
                    "the output is written to a temporary file in {} and renamed; that directory must be writable",
                    dir.display()
                ),
            };
            Error::io(&tmp, "create the temporary output file", e, hint)
        })?;
        Ok((
            TempFile {
                tmp,
                target: target.to_path_buf(),
                committed: false,
            },
            file,
        ))
    }

    /// The temporary file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.tmp
    }

    /// The final path.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes the temporary file to disk and renames it over the final path (atomically
    /// replacing any file there), then syncs the directory so that the rename is durable.
    pub(crate) fn commit(mut self) -> Result<()> {
        let file = File::open(&self.tmp).map_err(|e| {
            Error::io(
                &self.tmp,
                "reopen the temporary output file",
                e,
                "was it removed meanwhile?",
            )
        })?;
        file.sync_all().map_err(|e| {
            Error::io(
                &self.tmp,
                "flush the output to disk",
                e,
                "check free disk space and quota",
            )
        })?;
        drop(file);
        std::fs::rename(&self.tmp, &self.target).map_err(|e| {
            Error::io(
                &self.target,
                format!(
                    "rename the complete temporary file {} to it",
                    self.tmp.display()
                ),
                e,
                "the final path must be on the same file system and not be a directory",
            )
        })?;
        self.committed = true;
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Best effort: some file systems cannot open or sync a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
