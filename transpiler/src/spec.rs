//! The spec file (`docs/spec.md`, format `flashc/1`) as serde structs.
//!
//! Only the frame is typed here: the top level, inputs, noise and outputs reject unknown fields.
//! A node keeps its op-specific fields as raw JSON ([`NodeSpec::fields`]) so that lowering
//! ([`crate::ir::lower`]) can report an unknown op, a missing field or a field of the wrong type
//! for *every* node at once, naming the node, instead of stopping at the first serde error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::Error;

/// The format string this crate reads.
pub const FORMAT: &str = "flashc/1";
/// Every format string this crate reads.
pub const SUPPORTED_FORMATS: &[&str] = &[FORMAT];

/// A whole spec file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Must be [`FORMAT`].
    pub format: String,
    /// Model name, `[a-z][a-z0-9_]*`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Path of the safetensors file, relative to the spec file.
    pub weights: String,
    /// The named inputs, concatenated in this order.
    pub inputs: Vec<InputSpec>,
    /// Optional noise input.
    #[serde(default)]
    pub noise: Option<NoiseSpec>,
    /// Nodes in topological order.
    pub graph: Vec<NodeSpec>,
    /// The outputs, concatenated in this order.
    pub outputs: Vec<OutputSpec>,
    /// Optional: how the model, a flow-matching vector field, is integrated (checked by
    /// [`crate::ir::ode`]).
    #[serde(default)]
    pub ode: Option<serde_json::Value>,
}

/// One named input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Value name.
    pub name: String,
    /// Column names; the length is the dimension.
    pub columns: Vec<String>,
}

/// The noise input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseSpec {
    /// Value name.
    pub name: String,
    /// Values per row.
    pub dim: usize,
    /// `"normal"` or `"uniform"`.
    pub distribution: String,
}

/// One graph node: its name, op, and the op's fields as raw JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeSpec {
    /// Name of the value the node produces.
    pub name: String,
    /// The op (`dense`, `activation`, ...).
    pub op: String,
    /// Every other field, checked per op by [`crate::ir::lower`].
    #[serde(flatten)]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// One output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The value written.
    pub value: String,
    /// Column names; the length must be the value's width.
    pub columns: Vec<String>,
}

/// Parses spec text; `path` is only used in the error (which carries line and column).
pub fn parse(path: &Path, text: &str) -> Result<Spec, Error> {
    serde_json::from_str(text).map_err(|e| {
        // A spec of another format version need not have this version's shape: when it does
        // not parse, name the version rather than a missing field.
        if let Ok(serde_json::Value::Object(top)) = serde_json::from_str::<serde_json::Value>(text) {
            if let Some(serde_json::Value::String(format)) = top.get("format") {
                let file = path.display().to_string();
                if let Some(problem) = crate::ir::lower::format_problem(format, &file) {
                    return Error::Invalid { file, problems: vec![problem] };
                }
            }
        }
        Error::Json { path: path.to_owned(), line: e.line(), column: e.column(), message: e.to_string() }
    })
}

/// Reads and parses a spec file.
pub fn read(path: &Path) -> Result<Spec, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "read the spec",
        source,
        hint: "check the path given to the transpiler (relative paths are relative to the build's working directory)".into(),
    })?;
    parse(path, &text)
}
