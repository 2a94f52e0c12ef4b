//! The streaming, atomic [`Writer`].

use std::fmt;
use std::path::{Path, PathBuf};

use crate::atomic::TempFile;
use crate::error::{Error, Result};
use crate::metadata::{check_key, Metadata};
use crate::parquet::ParquetWriter;
use crate::root::{RootWriter, METADATA_TREE};
use crate::table::{check_name, Chunk, Schema};

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A ROOT file with one `TTree` (uncompressed baskets) plus a `metadata` tree; extension
    /// `.root`.
    Root,
    /// A Parquet file, zstd-compressed, with the metadata as key-value metadata; extension
    /// `.parquet`.
    Parquet,
}

impl Format {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Root => "root",
            Format::Parquet => "parquet",
        }
    }

    /// The format named by `path`'s extension (`.root` or `.parquet`, in any case).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Format> {
        let path = path.as_ref();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("root") {
            Ok(Format::Root)
        } else if ext.eq_ignore_ascii_case("parquet") {
            Ok(Format::Parquet)
        } else {
            let found = if ext.is_empty() {
                "no extension".to_owned()
            } else {
                format!("extension \".{ext}\"")
            };
            Err(Error::format(
                path,
                None,
                format!("cannot tell the file format from its name ({found})"),
                "name the file NAME.root (ROOT TTree) or NAME.parquet (Parquet)",
            ))
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Format::Root => "ROOT",
            Format::Parquet => "Parquet",
        })
    }
}

/// Tuning of a [`Writer`]. The defaults suit the simulator's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Parquet: rows per row group (at least 1). The encoded row group is held in memory until
    /// it is full. Default 131072.
    pub row_group_rows: usize,
    /// Parquet: zstd level, 1 (fast) to 22 (small). Default 3.
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> WriterOptions {
        WriterOptions {
            row_group_rows: 131_072,
            zstd_level: 3,
        }
    }
}

enum Backend {
    Root(RootWriter),
    Parquet(Box<ParquetWriter>),
}

/// Writes a table chunk by chunk to a temporary file next to `path` and renames it to `path` in
/// [`finish`](Writer::finish). Dropping the writer without `finish`, or any error, removes the
/// temporary file and leaves `path` untouched (an existing file there stays as it was).
///
/// ```no_run
/// use ntuple::{Chunk, ColumnData, ColumnType, Format, Metadata, Schema, Writer};
/// # fn main() -> ntuple::Result<()> {
/// let schema = Schema::new([("px", ColumnType::F32), ("pid", ColumnType::I32)])?;
/// let meta = Metadata::new().with("seed", "42");
/// let mut w = Writer::create("out.parquet", Format::Parquet, &schema, &meta, "particles")?;
/// w.write(&Chunk::new(&schema, [("px", ColumnData::F32(vec![1.5, -2.0])), ("pid", ColumnData::I32(vec![211, -321]))])?)?;
/// let rows = w.finish()?;
/// assert_eq!(rows, 2);
/// # Ok(()) }
/// ```
pub struct Writer {
    backend: Option<Backend>,
    temp: Option<TempFile>,
    schema: Schema,
    format: Format,
    rows: u64,
    poisoned: Option<String>,
    path: PathBuf,
    metadata: Metadata,
}

impl Writer {
    /// Opens a writer with default options. `name` is the tree name (ROOT) or the table name
    /// (Parquet, stored under the key `flashc:table`). See [`Writer::create_with_options`].
    pub fn create(
        path: impl AsRef<Path>,
        format: Format,
        schema: &Schema,
        metadata: &Metadata,
        name: &str,
    ) -> Result<Writer> {
        Writer::create_with_options(
            path,
            format,
            schema,
            metadata,
            name,
            &WriterOptions::default(),
        )
    }

    /// Opens a writer: checks the arguments and creates the temporary file
    /// `.FILE_NAME.tmp-PID-N` in `path`'s directory. `metadata` is written by
    /// [`finish`](Writer::finish), with any changes made meanwhile by
    /// [`set_metadata`](Writer::set_metadata).
    ///
    /// Errors: `path`'s extension is not `format`'s (`.root` / `.parquet`); `name` is not an
    /// identifier, or is `metadata` for ROOT; a metadata key is empty or reserved; an option is
    /// out of range; the temporary file cannot be created (missing or read-only directory).
    pub fn create_with_options(
        path: impl AsRef<Path>,
        format: Format,
        schema: &Schema,
        metadata: &Metadata,
        name: &str,
        options: &WriterOptions,
    ) -> Result<Writer> {
        let path = path.as_ref();
        match Format::from_path(path) {
            Ok(f) if f == format => {}
            _ => {
                return Err(Error::format(
                    path,
                    None,
                    format!("a {format} file must be named *.{}", format.extension()),
                    format!(
                        "name the output NAME.{}; readers tell the format from the extension",
                        format.extension()
                    ),
                ))
            }
        }
        if let Err(message) = check_name("table", name) {
            return Err(Error::format(
                path,
                None,
                message,
                "use letters, digits and '_' only, e.g. \"particles\"",
            ));
        }
        if format == Format::Root && name == METADATA_TREE {
            return Err(Error::format(
                path,
                None,
                "the tree cannot be named \"metadata\": that tree holds the run metadata",
                "choose another name, e.g. \"particles\"",
            ));
        }
        metadata.check()?;
        if options.row_group_rows == 0 {
            return Err(Error::format(
                path,
                None,
                "row_group_rows is 0",
                "use at least 1 row per row group (default 131072)",
            ));
        }
        if !(1..=22).contains(&options.zstd_level) {
            return Err(Error::format(
                path,
                None,
                format!("zstd level {} is out of range", options.zstd_level),
                "use a zstd level from 1 to 22 (3 is the default)",
            ));
        }
        let (temp, file) = TempFile::create(path)?;
        let backend = match format {
            Format::Root => {
                drop(file); // oxyroot opens the path itself
                Backend::Root(RootWriter::start(temp.path(), schema, name)?)
            }
            Format::Parquet => {
                let w = ParquetWriter::start(temp.path(), file, schema, name, options)?;
                Backend::Parquet(Box::new(w))
            }
        };
        Ok(Writer {
            backend: Some(backend),
            temp: Some(temp),
            schema: schema.clone(),
            format,
            rows: 0,
            poisoned: None,
            path: path.to_path_buf(),
            metadata: metadata.clone(),
        })
    }

    /// The schema every chunk must have.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The metadata that [`finish`](Writer::finish) will store: the one given to
    /// [`create`](Writer::create), with the changes made by
    /// [`set_metadata`](Writer::set_metadata).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Sets metadata `key` to `value` before [`finish`](Writer::finish), which is when the
    /// metadata is written: an existing key keeps its place and gets the new value, a new key is
    /// appended. For what is known only at the end of a run, such as the number of events
    /// actually read.
    ///
    /// Errors: `key` is empty or reserved by a file format (the metadata is then unchanged).
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) -> Result<()> {
        let key = key.into();
        check_key(&key)?;
        self.metadata.insert(key, value);
        Ok(())
    }

    /// Appends the chunk's rows.
    ///
    /// A chunk whose schema differs from the writer's is refused and the writer stays usable. An
    /// I/O or library error stops the writer: it removes the temporary file, and later calls
    /// return [`Error::Poisoned`].
    pub fn write(&mut self, chunk: &Chunk) -> Result<()> {
        if let Some(earlier) = &self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                earlier: earlier.clone(),
            });
        }
        if !chunk.schema().same_as(&self.schema) {
            return Err(Error::chunk(
                None,
                format!(
                    "the chunk has columns ({}), the writer ({})",
                    chunk.schema(),
                    self.schema
                ),
                "build the chunks with the schema the writer was created with",
            ));
        }
        let r = match self.backend.as_mut() {
            Some(Backend::Root(w)) => w.write(chunk),
            Some(Backend::Parquet(w)) => w.write(chunk),
            None => Ok(()),
        };
        match r {
            Ok(()) => {
                self.rows += chunk.rows() as u64;
                Ok(())
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    fn poison(&mut self, e: &Error) {
        self.poisoned = Some(e.to_string());
        self.backend = None; // stops the ROOT thread
        self.temp = None; // removes the temporary file
    }

    /// Completes the file and renames it to the final path (replacing any file there). Returns
    /// the number of rows written. On error, nothing is left at the final path that was not
    /// there before, and the temporary file is removed.
    pub fn finish(mut self) -> Result<u64> {
        if let Some(earlier) = &self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
                earlier: earlier.clone(),
            });
        }
        let r = match self.backend.take() {
            Some(Backend::Root(w)) => w.finish(self.rows, &self.metadata),
            Some(Backend::Parquet(w)) => w.finish(&self.metadata),
            None => Ok(()),
        };
        let temp = self.temp.take();
        r?;
        if let Some(t) = temp {
            debug_assert_eq!(t.target(), self.path);
            t.commit()?;
        }
        Ok(self.rows)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Stop the backend first (the ROOT thread writes to the temporary file), then remove the
        // temporary file.
        self.backend = None;
        self.temp = None;
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("schema", &self.schema)
            .field("rows", &self.rows)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}
