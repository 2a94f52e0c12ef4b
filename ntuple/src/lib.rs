//! Columnar output of the simulator: flat per-particle tables written as a ROOT `TTree` (through
//! `oxyroot`) or a Parquet file (through `arrow`/`parquet`, zstd-compressed), with run metadata,
//! and read back for merging.
//!
//! - [`Schema`] (named, typed columns), [`Chunk`] (one value vector per column, all the same
//!   length; [`Table`] is the same type for a whole table) and [`Metadata`] (ordered string
//!   pairs).
//! - [`Writer`]: streams chunks to a temporary file in the output's directory and renames it to
//!   the final path in [`Writer::finish`]; on error or drop nothing appears at the final path.
//!   The metadata is written by `finish` too, so [`Writer::set_metadata`] can change it until then.
//! - [`Reader`] and [`read_metadata`]: the format comes from the extension (`.root`,
//!   `.parquet`).
//!
//! Formats, type mapping, metadata storage, atomicity and memory use are described in
//! `docs/output.md`.
//!
//! ```no_run
//! use ntuple::{Chunk, ColumnData, ColumnType, Format, Metadata, Reader, Schema, Writer};
//! # fn main() -> ntuple::Result<()> {
//! let schema = Schema::new([("pt", ColumnType::F32), ("reconstructed", ColumnType::Bool)])?;
//! let meta = Metadata::new().with("pipeline", "lamarr_charged").with("seed", "7");
//! let mut w = Writer::create("run.root", Format::Root, &schema, &meta, "particles")?;
//! for _ in 0..3 {
//!     let chunk = Chunk::from_columns(&schema, vec![vec![1.0f32, 2.0].into(), vec![true, false].into()])?;
//!     w.write(&chunk)?;
//! }
//! w.finish()?;
//! let table = Reader::open("run.root")?.read_all()?;
//! assert_eq!(table.rows(), 6);
//! # Ok(()) }
//! ```

mod atomic;
mod error;
mod metadata;
mod parquet;
mod reader;
mod root;
mod table;
mod writer;

pub use error::{Error, Result};
pub use metadata::{keys, Metadata};
pub use parquet::TABLE_KEY;
pub use reader::{read_metadata, Reader};
pub use root::METADATA_TREE;
pub use table::{Chunk, ColumnData, ColumnType, Field, Schema, Table};
pub use writer::{Format, Writer, WriterOptions};
