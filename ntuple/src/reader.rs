//! Reading output files back: [`read_metadata`] and [`Reader`], for merging and checks.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::metadata::Metadata;
use crate::parquet::{self, ParquetChunks};
use crate::root::{self, RootChunks};
use crate::table::{Chunk, Schema};
use crate::writer::Format;

/// Reads the metadata of a `.root` or `.parquet` file (format from the extension). Cheap: reads
/// only the ROOT `metadata` tree or the Parquet footer. A ROOT file without a `metadata` tree
/// gives empty metadata.
pub fn read_metadata(path: impl AsRef<Path>) -> Result<Metadata> {
    let path = path.as_ref();
    match Format::from_path(path)? {
        Format::Root => root::read_metadata(path),
        Format::Parquet => parquet::read_metadata(path),
    }
}

enum Chunks {
    NotStarted,
    Root(RootChunks),
    Parquet(ParquetChunks),
    Done,
}

/// Reads a file written by [`Writer`](crate::Writer) back as chunks of rows, in file order.
///
/// It is an iterator of `Result<Chunk>`: each chunk has at most
/// [`chunk_rows`](Reader::with_chunk_rows) rows (default 65536), and the iteration stops after the
/// first error. Memory is bounded by a few chunks for both formats (a background thread decodes
/// ROOT baskets).
///
/// ```no_run
/// # fn main() -> ntuple::Result<()> {
/// let mut all = None::<ntuple::Chunk>;
/// for path in ["a.parquet", "b.parquet"] {
///     let reader = ntuple::Reader::open(path)?;
///     for chunk in reader {
///         let chunk = chunk?;
///         match &mut all {
///             None => all = Some(chunk),
///             Some(t) => t.append(&chunk)?,
///         }
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Reader {
    path: PathBuf,
    format: Format,
    name: String,
    schema: Schema,
    metadata: Metadata,
    rows: u64,
    chunk_rows: usize,
    root: Option<root::RootInfo>,
    chunks: Chunks,
}

impl Reader {
    /// Opens `path` (`.root` or `.parquet`) and reads its schema, metadata and row count. For
    /// ROOT, the data tree is the file's one `TTree` other than `metadata`.
    pub fn open(path: impl AsRef<Path>) -> Result<Reader> {
        Reader::open_inner(path.as_ref(), None)
    }

    /// Like [`open`](Reader::open), naming the ROOT tree to read. For Parquet, `name` is ignored
    /// (a Parquet file holds one table).
    pub fn open_table(path: impl AsRef<Path>, name: &str) -> Result<Reader> {
        Reader::open_inner(path.as_ref(), Some(name))
    }

    fn open_inner(path: &Path, name: Option<&str>) -> Result<Reader> {
        let format = Format::from_path(path)?;
        let (name, schema, metadata, rows, root) = match format {
            Format::Root => {
                let info = root::inspect(path, name)?;
                (
                    info.tree.clone(),
                    info.schema.clone(),
                    info.metadata.clone(),
                    info.rows,
                    Some(info),
                )
            }
            Format::Parquet => {
                let info = parquet::inspect(path)?;
                (info.table, info.schema, info.metadata, info.rows, None)
            }
        };
        Ok(Reader {
            path: path.to_path_buf(),
            format,
            name,
            schema,
            metadata,
            rows,
            chunk_rows: 65_536,
            root,
            chunks: Chunks::NotStarted,
        })
    }

    /// Sets the largest number of rows per chunk (at least 1); only before the first chunk is read.
    pub fn with_chunk_rows(mut self, rows: usize) -> Reader {
        self.chunk_rows = rows.max(1);
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The tree name (ROOT) or table name (Parquet; empty if the file does not store one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The columns.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The run metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The number of rows in the file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads all the (remaining) rows into one table.
    pub fn read_all(self) -> Result<Chunk> {
        let mut table = Chunk::empty(&self.schema);
        for chunk in self {
            table.append(&chunk?)?;
        }
        Ok(table)
    }
}

impl Iterator for Reader {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Result<Chunk>> {
        if let Chunks::NotStarted = self.chunks {
            let started = match (self.format, &self.root) {
                (Format::Root, Some(info)) => {
                    RootChunks::start(&self.path, info, self.chunk_rows).map(Chunks::Root)
                }
                _ => ParquetChunks::start(&self.path, self.chunk_rows).map(Chunks::Parquet),
            };
            match started {
                Ok(c) => self.chunks = c,
                Err(e) => {
                    self.chunks = Chunks::Done;
                    return Some(Err(e));
                }
            }
        }
        let r = match &mut self.chunks {
            Chunks::Root(c) => c.next_chunk(),
            Chunks::Parquet(c) => c.next_chunk(),
            Chunks::NotStarted | Chunks::Done => None,
        };
        if !matches!(r, Some(Ok(_))) {
            self.chunks = Chunks::Done;
        }
        r
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("name", &self.name)
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .finish()
    }
}
