//! Reading the safetensors weights file.
//!
//! The file is memory-mapped and every tensor is decoded to `f32` once, here: tensor data in a
//! safetensors file has no alignment guarantee, so values are read with `from_le_bytes`
//! (`F32`) or through `half` (`F16`, `BF16`). Integer tensors (`I64`, `I32`, `I16`, `I8`, `U8`:
//! permutations and MADE degrees, saved as the frameworks store them) are decoded to f32 as well
//! when every value is exact in f32 (|v| ≤ 2²⁴), and marked [`Entry::integer`]. Tensors of other
//! dtypes are kept as a dtype name so that lowering can report them against the node that names
//! them.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::Error;

/// A decoded tensor of the weights file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Values in f32, or the name of the unsupported dtype (or why its values cannot be read).
    pub data: Result<Vec<f32>, String>,
    /// Whether the stored dtype is an integer type.
    pub integer: bool,
    /// The stored dtype's name (`F32`, `I64`, ...).
    pub dtype: String,
}

/// Every tensor of one weights file, by name.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    /// The tensors, sorted by name.
    pub tensors: BTreeMap<String, Entry>,
}

impl Weights {
    /// Opens and decodes `path`; `spec` is the spec naming it (for messages).
    pub fn open(path: &Path, spec: &Path) -> Result<Weights, Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            action: "open the weights file named by the spec",
            source,
            hint: format!(
                "the spec {} names this file in its \"weights\" field, relative to the spec's directory; export the weights next to the spec or fix the field",
                spec.display()
            ),
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            return Err(Error::Weights {
                path: path.to_owned(),
                spec: spec.to_owned(),
                message: "the file is empty".into(),
            });
        }
        // SAFETY: the map is only read, and every value is copied out before it is dropped. A file
        // truncated by another process while mapped could fault; build inputs are not modified
        // while the build reads them.
        let map =
            unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|source| Error::Io {
                path: path.to_owned(),
                action: "memory-map the weights file",
                source,
                hint: "check that the file is a regular, readable file".into(),
            })?;
        Self::from_bytes(&map).map_err(|message| Error::Weights {
            path: path.to_owned(),
            spec: spec.to_owned(),
            message,
        })
    }

    /// Decodes a safetensors file held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Weights, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let data = decode(view.dtype(), view.data());
            let integer = matches!(view.dtype(), Dtype::I64 | Dtype::I32 | Dtype::I16 | Dtype::I8 | Dtype::U8);
            tensors.insert(
                name.to_owned(),
                Entry {
                    shape: view.shape().to_vec(),
                    data,
                    integer,
                    dtype: format!("{:?}", view.dtype()),
                },
            );
        }
        Ok(Weights { tensors })
    }
}

/// Little-endian bytes of one dtype to f32; an unsupported dtype gives its name.
fn decode(dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>, String> {
    match dtype {
        Dtype::F32 => Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        Dtype::F16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        Dtype::BF16 => Ok(bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()),
        Dtype::I64 => ints(bytes.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))),
        Dtype::I32 => ints(bytes.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))),
        Dtype::I16 => ints(bytes.chunks_exact(2).map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))),
        Dtype::I8 => ints(bytes.iter().map(|&b| i64::from(b as i8))),
        Dtype::U8 => ints(bytes.iter().map(|&b| i64::from(b))),
        other => Err(format!("{other:?}")),
    }
}

/// Integers to f32, if every one is exact in f32.
fn ints(values: impl Iterator<Item = i64>) -> Result<Vec<f32>, String> {
    values
        .map(|v| {
            if v.unsigned_abs() <= 1 << 24 {
                Ok(v as f32)
            } else {
                Err(format!("integer value {v} (beyond 2^24, not exact in f32)"))
            }
        })
        .collect()
}
