//! The crate's one error type, [`Error`], and [`Problem`], one finding of validation.
//!
//! Every message names the file, and where relevant the node (name and op) and the tensor, and
//! ends with a `hint:` line saying how to fix it.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong between a spec file and generated code.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("read the spec", "write generated code", ...).
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
        /// How to fix it.
        hint: String,
    },
    /// The spec is not valid JSON, or does not have the spec's shape.
    Json {
        /// The spec file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// The weights file is not a readable safetensors file (truncated, corrupt header, ...).
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// The spec that names it.
        spec: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The spec was read, but it has problems; all of them are listed.
    Invalid {
        /// The spec file, as given.
        file: String,
        /// Every problem found (never empty).
        problems: Vec<Problem>,
    },
    /// The build configuration is unusable (no output directory, bad runtime path, ...).
    Config {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

/// One problem found in a spec, tied to the node and tensor it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The spec file, as given.
    pub file: String,
    /// The node's name and op, when the problem is in a node.
    pub node: Option<(String, String)>,
    /// The tensor concerned, if any.
    pub tensor: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Problem {
    /// A problem of the model as a whole (not of one node).
    pub fn model(file: &str, message: impl Into<String>, hint: impl Into<String>) -> Problem {
        Problem {
            file: file.to_owned(),
            node: None,
            tensor: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A problem of node `name` (op `op`).
    pub fn node(
        file: &str,
        name: &str,
        op: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Problem {
        Problem {
            file: file.to_owned(),
            node: Some((name.to_owned(), op.to_owned())),
            tensor: None,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The same problem, about tensor `tensor`.
    pub fn with_tensor(mut self, tensor: &str) -> Problem {
        self.tensor = Some(tensor.to_owned());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: ", self.file)?;
        if let Some((name, op)) = &self.node {
            write!(f, "node \"{name}\" (op {op}): ")?;
        }
        if let Some(t) = &self.tensor {
            write!(f, "tensor \"{t}\": ")?;
        }
        write!(f, "{}\n  hint: {}", self.message, self.hint)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, action, source, hint } => {
                write!(f, "error: {}: cannot {action}: {source}\n  hint: {hint}", path.display())
            }
            Error::Json { path, line, column, message } => write!(
                f,
                "error: {}:{line}:{column}: invalid spec: {message}\n  hint: the spec format is described in docs/spec.md; re-export the model or fix the JSON at line {line}, column {column}",
                path.display()
            ),
            Error::Weights { path, spec, message } => write!(
                f,
                "error: {}: cannot read weights named by {}: {message}\n  hint: the file is not a complete safetensors file; re-export the model's weights",
                path.display(),
                spec.display()
            ),
            Error::Invalid { file, problems } => {
                write!(f, "{file}: {} problem(s) found", problems.len())?;
                for p in problems {
                    write!(f, "\n{p}")?;
                }
                Ok(())
            }
            Error::Config { message, hint } => write!(f, "error: {message}\n  hint: {hint}"),
        }
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
