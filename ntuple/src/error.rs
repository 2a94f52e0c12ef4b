//! The crate's one error type.
//!
//! Every message names the file when there is one, the column or metadata key concerned, and ends
//! with a `hint:` line saying how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that can go wrong while building tables, writing or reading output files.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Opening, writing, syncing or renaming a file failed.
    Io {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// What was being done ("create the temporary file", "rename ... to ...", ...).
        action: String,
        /// The underlying error.
        source: std::io::Error,
        /// How to fix it.
        hint: String,
    },
    /// A schema is not valid: no columns, a repeated or unusable column name.
    Schema {
        /// The column concerned, when there is one.
        column: Option<String>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A chunk does not match its schema (or the writer's): a missing, extra or mistyped column,
    /// or columns of different lengths.
    Chunk {
        /// The column concerned, when there is one.
        column: Option<String>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// Metadata cannot be stored: an empty or reserved key.
    Metadata {
        /// The key concerned.
        key: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A file's format is not one this crate handles (unknown extension, a column type it does
    /// not read, a missing tree), or its content is damaged. Also a writer option out of range.
    Format {
        /// The file concerned (empty when the problem is not tied to a file).
        path: PathBuf,
        /// The column concerned, when there is one.
        column: Option<String>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The ROOT (`oxyroot`) or Parquet (`parquet`/`arrow`) library reported an error, or a
    /// ROOT writer/reader thread stopped unexpectedly.
    Backend {
        /// The file concerned.
        path: PathBuf,
        /// `"ROOT"` or `"Parquet"`.
        backend: &'static str,
        /// What was being done.
        action: String,
        /// The library's message.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The writer cannot be used any more because an earlier write failed (the earlier error
    /// said why). Nothing was left at the final path.
    Poisoned {
        /// The output file that will not be written.
        path: PathBuf,
        /// The earlier error, as text.
        earlier: String,
    },
}

/// Short for `std::result::Result<T, ntuple::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(
        path: &Path,
        action: impl Into<String>,
        source: std::io::Error,
        hint: impl Into<String>,
    ) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action: action.into(),
            source,
            hint: hint.into(),
        }
    }

    pub(crate) fn schema(
        column: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Schema {
            column: column.map(str::to_owned),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn chunk(
        column: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Chunk {
            column: column.map(str::to_owned),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn format(
        path: &Path,
        column: Option<&str>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Error {
        Error::Format {
            path: path.to_path_buf(),
            column: column.map(str::to_owned),
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn root(
        path: &Path,
        action: impl Into<String>,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> Error {
        Error::Backend {
            path: path.to_path_buf(),
            backend: "ROOT",
            action: action.into(),
            message: message.to_string(),
            hint: hint.into(),
        }
    }

    pub(crate) fn parquet(
        path: &Path,
        action: impl Into<String>,
        message: impl fmt::Display,
        hint: impl Into<String>,
    ) -> Error {
        Error::Backend {
            path: path.to_path_buf(),
            backend: "Parquet",
            action: action.into(),
            message: message.to_string(),
            hint: hint.into(),
        }
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. } | Error::Backend { path, .. } | Error::Poisoned { path, .. } => {
                Some(path)
            }
            Error::Format { path, .. } if !path.as_os_str().is_empty() => Some(path),
            _ => None,
        }
    }

    /// The column the error is about, if any.
    pub fn column(&self) -> Option<&str> {
        match self {
            Error::Schema { column, .. }
            | Error::Chunk { column, .. }
            | Error::Format { column, .. } => column.as_deref(),
            _ => None,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> &str {
        match self {
            Error::Io { hint, .. }
            | Error::Schema { hint, .. }
            | Error::Chunk { hint, .. }
            | Error::Metadata { hint, .. }
            | Error::Format { hint, .. }
            | Error::Backend { hint, .. } => hint,
            Error::Poisoned { .. } => {
                "fix the earlier error and write the file again; a new Writer starts from scratch"
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: ")?;
        if let Some(p) = self.path() {
            write!(f, "{}: ", p.display())?;
        }
        if let Some(c) = self.column() {
            write!(f, "column \"{c}\": ")?;
        }
        match self {
            Error::Io { action, source, .. } => write!(f, "cannot {action}: {source}")?,
            Error::Schema { message, .. }
            | Error::Chunk { message, .. }
            | Error::Format { message, .. } => write!(f, "{message}")?,
            Error::Metadata { key, message, .. } => write!(f, "metadata key \"{key}\": {message}")?,
            Error::Backend {
                backend,
                action,
                message,
                ..
            } => write!(f, "{backend}: cannot {action}: {message}")?,
            Error::Poisoned { earlier, .. } => {
                write!(f, "the writer stopped after an earlier error: {earlier}")?
            }
        }
        write!(f, "\n  hint: {}", self.hint())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
