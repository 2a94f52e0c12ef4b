//! ROOT TTree output and input through `oxyroot`.
//!
//! # Writing
//! `oxyroot`'s `WriterTree` pulls every branch's values from an iterator and only returns when
//! all iterators are exhausted. To stream, a writer thread owns the `RootFile` and the tree; each
//! branch's iterator receives the column's chunks through a bounded channel (capacity 1) fed by
//! [`RootWriter::write`]. `oxyroot` fills one basket (32 kB) per branch and writes it out when
//! full, so memory stays bounded: at most two chunks per column in flight plus one basket per
//! branch, whatever the number of rows. The thread also overlaps the encoding with the caller's
//! work. `oxyroot` writes uncompressed baskets.
//!
//! Metadata goes into a second tree, `metadata`, with two string (`char*`) branches `key` and
//! `value` and one entry per pair, in order: `oxyroot` 0.1.25 cannot write `TNamed` or
//! `TObjString` objects, and uproot reads string branches directly.
//!
//! # Reading
//! `oxyroot` reads a branch through an iterator that borrows the tree, so a reader thread owns the
//! file and sends chunks of rows through a bounded channel. `oxyroot` panics on some damaged
//! files; such panics are caught and turned into [`Error::Backend`].

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use oxyroot::{Marshaler, Named, RootFile, WriterTree};

use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::table::{Chunk, ColumnData, ColumnType, Schema};

/// The name of the tree that holds the metadata.
pub const METADATA_TREE: &str = "metadata";

const DAMAGED_HINT: &str =
    "the file is damaged or truncated, or was written with features oxyroot does not read (compressed with ZSTD, split objects); rewrite it with flashc";

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs `f`, turning a panic inside `oxyroot` into an error.
fn guarded<T>(path: &Path, action: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::root(
            path,
            action,
            format!("the ROOT library stopped: {}", panic_message(&*p)),
            DAMAGED_HINT,
        )),
    }
}

/// One branch's values, pulled by `oxyroot` from the column's channel.
struct ChannelColumn<T> {
    rx: Receiver<ColumnData>,
    current: std::vec::IntoIter<T>,
    abort: Arc<AtomicBool>,
    take: fn(ColumnData) -> Option<Vec<T>>,
}

impl<T> Iterator for ChannelColumn<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(v) = self.current.next() {
                return Some(v);
            }
            if self.abort.load(Ordering::Relaxed) {
                return None;
            }
            // A closed channel (finish or drop) ends the branch.
            let data = self.rx.recv().ok()?;
            self.current = (self.take)(data)?.into_iter();
        }
    }
}

fn add_branch<T: Marshaler + 'static>(
    tree: &mut WriterTree,
    name: &str,
    rx: Receiver<ColumnData>,
    abort: &Arc<AtomicBool>,
    take: fn(ColumnData) -> Option<Vec<T>>,
) {
    let it = ChannelColumn {
        rx,
        current: Vec::new().into_iter(),
        abort: abort.clone(),
        take,
    };
    tree.new_branch(name, it);
}

/// The streaming ROOT writer: a thread running `oxyroot` on the temporary file.
pub(crate) struct RootWriter {
    senders: Vec<SyncSender<ColumnData>>,
    abort: Arc<AtomicBool>,
    /// The metadata, sent by [`finish`](RootWriter::finish) once the rows are written.
    metadata: Option<SyncSender<Metadata>>,
    thread: Option<JoinHandle<Result<()>>>,
    path: PathBuf,
    tree: String,
}

impl RootWriter {
    /// Starts the writer thread on `tmp` (an existing, empty file that `oxyroot` truncates). The
    /// metadata is given to [`finish`](RootWriter::finish).
    pub(crate) fn start(tmp: &Path, schema: &Schema, tree: &str) -> Result<RootWriter> {
        if tmp.to_str().is_none() {
            return Err(Error::format(
                tmp,
                None,
                "the ROOT writer needs a UTF-8 path",
                "rename the output file or directory to use UTF-8 characters only",
            ));
        }
        let abort = Arc::new(AtomicBool::new(false));
        let mut senders = Vec::with_capacity(schema.len());
        let mut receivers = Vec::with_capacity(schema.len());
        for _ in schema.fields() {
            let (tx, rx) = sync_channel::<ColumnData>(1);
            senders.push(tx);
            receivers.push(rx);
        }
        let (meta_tx, meta_rx) = sync_channel::<Metadata>(1);
        let (path, name, schema2, abort2) = (
            tmp.to_path_buf(),
            tree.to_owned(),
            schema.clone(),
            abort.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("ntuple-root-writer".into())
            .spawn(move || {
                guarded(&path, "write the tree", || {
                    write_file(&path, &name, &schema2, receivers, meta_rx, &abort2)
                })
            })
            .map_err(|e| {
                Error::io(
                    tmp,
                    "start the ROOT writer thread",
                    e,
                    "the system is out of threads or memory",
                )
            })?;
        Ok(RootWriter {
            senders,
            abort,
            metadata: Some(meta_tx),
            thread: Some(thread),
            path: tmp.to_path_buf(),
            tree: tree.to_owned(),
        })
    }

    /// Hands the chunk's columns to the writer thread; blocks while it is two chunks behind.
    pub(crate) fn write(&mut self, chunk: &Chunk) -> Result<()> {
        if chunk.rows() == 0 {
            return Ok(());
        }
        for (tx, data) in self.senders.iter().zip(chunk.columns()) {
            if tx.send(data.clone()).is_err() {
                // The thread stopped: its result says why.
                return Err(self.join().err().unwrap_or_else(|| {
                    Error::root(
                        &self.path,
                        "write the tree",
                        "the writer thread stopped early",
                        DAMAGED_HINT,
                    )
                }));
            }
        }
        Ok(())
    }

    fn join(&mut self) -> Result<()> {
        self.senders.clear();
        self.metadata = None;
        match self.thread.take() {
            None => Ok(()),
            Some(t) => match t.join() {
                Ok(r) => r,
                Err(p) => Err(Error::root(
                    &self.path,
                    "write the tree",
                    format!("the writer thread stopped: {}", panic_message(&*p)),
                    DAMAGED_HINT,
                )),
            },
        }
    }

    /// Ends the branches, writes `metadata` as the metadata tree, closes the file and checks it by
    /// reopening it (`oxyroot` writes its last header bytes when the file is dropped, ignoring
    /// errors there).
    pub(crate) fn finish(mut self, rows: u64, metadata: &Metadata) -> Result<()> {
        if let Some(tx) = self.metadata.take() {
            // The channel holds one value, so this does not block; if the thread has stopped,
            // `join` returns its error.
            let _ = tx.send(metadata.clone());
        }
        self.join()?;
        let (path, tree, meta_len) = (self.path.clone(), self.tree.clone(), metadata.len());
        guarded(&path, "check the written file", || {
            let mut file = RootFile::open(&path)
                .map_err(|e| Error::root(&path, "reopen the written file", e, DAMAGED_HINT))?;
            for (name, want) in [(tree.as_str(), rows), (METADATA_TREE, meta_len as u64)] {
                let t = file.get_tree(name).map_err(|e| {
                    Error::root(
                        &path,
                        format!("find tree \"{name}\" in the written file"),
                        e,
                        DAMAGED_HINT,
                    )
                })?;
                if t.entries() as u64 != want {
                    return Err(Error::root(
                        &path,
                        "check the written file",
                        format!(
                            "tree \"{name}\" has {} entries, {want} were written",
                            t.entries()
                        ),
                        "check free disk space and quota",
                    ));
                }
            }
            Ok(())
        })
    }
}

impl Drop for RootWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Not finished: let the thread stop at the next chunk boundary.
            self.abort.store(true, Ordering::Relaxed);
            let _ = self.join();
        }
    }
}

/// The writer thread's body.
fn write_file(
    path: &Path,
    tree_name: &str,
    schema: &Schema,
    receivers: Vec<Receiver<ColumnData>>,
    metadata: Receiver<Metadata>,
    abort: &Arc<AtomicBool>,
) -> Result<()> {
    let mut file = RootFile::create(path).map_err(|e| {
        Error::root(
            path,
            "create the file",
            e,
            "check that the directory is writable",
        )
    })?;
    let mut tree = WriterTree::new(tree_name);
    for (field, rx) in schema.fields().iter().zip(receivers) {
        let name = field.name.as_str();
        match field.ty {
            ColumnType::F32 => add_branch(&mut tree, name, rx, abort, |d| match d {
                ColumnData::F32(v) => Some(v),
                _ => None,
            }),
            ColumnType::F64 => add_branch(&mut tree, name, rx, abort, |d| match d {
                ColumnData::F64(v) => Some(v),
                _ => None,
            }),
            ColumnType::I32 => add_branch(&mut tree, name, rx, abort, |d| match d {
                ColumnData::I32(v) => Some(v),
                _ => None,
            }),
            ColumnType::I64 => add_branch(&mut tree, name, rx, abort, |d| match d {
                ColumnData::I64(v) => Some(v),
                _ => None,
            }),
            ColumnType::U8 => add_branch(&mut tree, name, rx, abort, |d| match d {
                ColumnData::U8(v) => Some(v),
                _ => None,
            }),
            ColumnType::Bool => add_branch(&mut tree, name, rx, abort, |d| match d {
                ColumnData::Bool(v) => Some(v),
                _ => None,
            }),
        }
    }
    let io_hint = "check free disk space and quota";
    tree.write(&mut file)
        .map_err(|e| Error::root(path, format!("write tree \"{tree_name}\""), e, io_hint))?;
    if abort.load(Ordering::Relaxed) {
        // Dropped without finish: the caller removes the file; no need to complete it.
        return Ok(());
    }
    let Ok(metadata) = metadata.recv() else {
        // Stopped without finish (the metadata sender is gone): the file is removed.
        return Ok(());
    };
    let mut meta = WriterTree::new(METADATA_TREE);
    let keys: Vec<String> = metadata.iter().map(|(k, _)| k.to_owned()).collect();
    let values: Vec<String> = metadata.iter().map(|(_, v)| v.to_owned()).collect();
    meta.new_branch("key", keys.into_iter());
    meta.new_branch("value", values.into_iter());
    meta.write(&mut file)
        .map_err(|e| Error::root(path, "write the metadata tree", e, io_hint))?;
    file.close()
        .map_err(|e| Error::root(path, "close the file", e, io_hint))?;
    drop(file);
    Ok(())
}

/// What a ROOT file holds, read from its keys and tree headers.
pub(crate) struct RootInfo {
    pub(crate) tree: String,
    pub(crate) schema: Schema,
    pub(crate) metadata: Metadata,
    pub(crate) rows: u64,
}

fn open_file(path: &Path) -> Result<RootFile> {
    if !path.exists() {
        return Err(Error::io(
            path,
            "open the ROOT file",
            std::io::Error::from(std::io::ErrorKind::NotFound),
            "check the path",
        ));
    }
    RootFile::open(path).map_err(|e| Error::root(path, "open the file", e, DAMAGED_HINT))
}

fn column_type(path: &Path, column: &str, cxx: &str) -> Result<ColumnType> {
    ColumnType::ALL
        .into_iter()
        .find(|t| t.root_type() == cxx)
        .ok_or_else(|| {
            Error::format(
                path,
                Some(column),
                format!("branch type \"{cxx}\" is not one this reader handles"),
                "supported branch types: float, double, int32_t, int64_t, uint8_t, bool",
            )
        })
}

/// Reads the metadata tree (empty metadata when the file has none).
fn read_metadata_tree(path: &Path, file: &mut RootFile) -> Result<Metadata> {
    if !file.keys_name().any(|k| k == METADATA_TREE) {
        return Ok(Metadata::new());
    }
    let t = file
        .get_tree(METADATA_TREE)
        .map_err(|e| Error::root(path, "read the metadata tree", e, DAMAGED_HINT))?;
    let strings = |name: &str| -> Result<Vec<String>> {
        let b = t.branch(name).ok_or_else(|| {
            Error::format(
                path,
                None,
                format!("the metadata tree has no \"{name}\" branch"),
                "the metadata tree should have string branches \"key\" and \"value\"; it was not written by flashc",
            )
        })?;
        let it = b.as_iter::<String>().map_err(|e| {
            Error::root(
                path,
                format!("read metadata branch \"{name}\""),
                e,
                DAMAGED_HINT,
            )
        })?;
        Ok(it.collect())
    };
    let (keys, values) = (strings("key")?, strings("value")?);
    if keys.len() != values.len() {
        return Err(Error::format(
            path,
            None,
            format!(
                "the metadata tree has {} keys but {} values",
                keys.len(),
                values.len()
            ),
            DAMAGED_HINT,
        ));
    }
    Ok(keys.into_iter().zip(values).collect())
}

/// Reads a ROOT file's metadata.
pub(crate) fn read_metadata(path: &Path) -> Result<Metadata> {
    guarded(path, "read the metadata", || {
        let mut file = open_file(path)?;
        read_metadata_tree(path, &mut file)
    })
}

/// Finds the data tree (`tree`, or the one `TTree` other than `metadata`) and reads its schema
/// and the metadata.
pub(crate) fn inspect(path: &Path, tree: Option<&str>) -> Result<RootInfo> {
    guarded(path, "read the file", || {
        let mut file = open_file(path)?;
        let name = match tree {
            Some(t) => t.to_owned(),
            None => {
                let mut trees: Vec<String> = Vec::new();
                for k in file.keys() {
                    if k.class_name() == "TTree"
                        && k.name() != METADATA_TREE
                        && !trees.iter().any(|t| t == k.name())
                    {
                        trees.push(k.name().to_owned());
                    }
                }
                match trees.len() {
                    1 => trees.remove(0),
                    0 => {
                        return Err(Error::format(
                            path,
                            None,
                            "the file has no data tree",
                            "was it written by flashc?",
                        ))
                    }
                    _ => {
                        return Err(Error::format(
                            path,
                            None,
                            format!("the file has several trees: {}", trees.join(", ")),
                            "name the one to read with Reader::open_table(path, name)",
                        ))
                    }
                }
            }
        };
        let t = file.get_tree(&name).map_err(|e| {
            Error::root(
                path,
                format!("find tree \"{name}\""),
                e,
                "list the file's trees with uproot: uproot.open(path).keys()",
            )
        })?;
        let mut columns = Vec::new();
        for b in t.branches() {
            let ty = column_type(path, b.name(), &b.item_type_name())?;
            columns.push((b.name().to_owned(), ty));
        }
        let schema = Schema::new(columns).map_err(|e| {
            Error::format(
                path,
                e.column(),
                format!("tree \"{name}\": {e}"),
                "the tree's branches cannot form a schema",
            )
        })?;
        let rows = t.entries().max(0) as u64;
        let metadata = read_metadata_tree(path, &mut file)?;
        Ok(RootInfo {
            tree: name,
            schema,
            metadata,
            rows,
        })
    })
}

/// A column's values as the reader thread pulls them.
enum Source<'a> {
    F32(Box<dyn Iterator<Item = f32> + 'a>),
    F64(Box<dyn Iterator<Item = f64> + 'a>),
    I32(Box<dyn Iterator<Item = i32> + 'a>),
    I64(Box<dyn Iterator<Item = i64> + 'a>),
    U8(Box<dyn Iterator<Item = u8> + 'a>),
    Bool(Box<dyn Iterator<Item = bool> + 'a>),
}

impl Source<'_> {
    fn take(&mut self, n: usize) -> ColumnData {
        match self {
            Source::F32(it) => ColumnData::F32(it.take(n).collect()),
            Source::F64(it) => ColumnData::F64(it.take(n).collect()),
            Source::I32(it) => ColumnData::I32(it.take(n).collect()),
            Source::I64(it) => ColumnData::I64(it.take(n).collect()),
            Source::U8(it) => ColumnData::U8(it.take(n).collect()),
            Source::Bool(it) => ColumnData::Bool(it.take(n).collect()),
        }
    }
}

/// Chunks of a ROOT tree, read by a thread.
pub(crate) struct RootChunks {
    rx: Receiver<Result<Chunk>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl RootChunks {
    pub(crate) fn start(path: &Path, info: &RootInfo, chunk_rows: usize) -> Result<RootChunks> {
        let (tx, rx) = sync_channel::<Result<Chunk>>(1);
        let (p, tree, schema, rows) = (
            path.to_path_buf(),
            info.tree.clone(),
            info.schema.clone(),
            info.rows,
        );
        let thread = std::thread::Builder::new()
            .name("ntuple-root-reader".into())
            .spawn(move || {
                let r = guarded(&p, "read the tree", || {
                    read_chunks(&p, &tree, &schema, rows, chunk_rows, &tx)
                });
                if let Err(e) = r {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| {
                Error::io(
                    path,
                    "start the ROOT reader thread",
                    e,
                    "the system is out of threads or memory",
                )
            })?;
        Ok(RootChunks {
            rx,
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn next_chunk(&mut self) -> Option<Result<Chunk>> {
        match self.rx.recv() {
            Ok(r) => Some(r),
            Err(_) => {
                // The thread ended: normally after the last chunk, or by a panic outside `guarded`.
                let t = self.thread.take()?;
                match t.join() {
                    Ok(()) => None,
                    Err(p) => Some(Err(Error::root(
                        &self.path,
                        "read the tree",
                        format!("the reader thread stopped: {}", panic_message(&*p)),
                        DAMAGED_HINT,
                    ))),
                }
            }
        }
    }
}

impl Drop for RootChunks {
    fn drop(&mut self) {
        // Unblock the thread (its send fails once the receiver is gone), then wait for it.
        let (_tx, rx) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_chunks(
    path: &Path,
    tree: &str,
    schema: &Schema,
    rows: u64,
    chunk_rows: usize,
    tx: &SyncSender<Result<Chunk>>,
) -> Result<()> {
    let mut file = open_file(path)?;
    let t = file
        .get_tree(tree)
        .map_err(|e| Error::root(path, format!("find tree \"{tree}\""), e, DAMAGED_HINT))?;
    let mut sources = Vec::with_capacity(schema.len());
    for f in schema.fields() {
        let b = t.branch(&f.name).ok_or_else(|| {
            Error::format(
                path,
                Some(&f.name),
                "the branch disappeared from the tree",
                DAMAGED_HINT,
            )
        })?;
        macro_rules! source {
            ($v:ident, $t:ty) => {
                Source::$v(Box::new(b.as_iter::<$t>().map_err(|e| {
                    Error::root(path, format!("read branch \"{}\"", f.name), e, DAMAGED_HINT)
                })?))
            };
        }
        sources.push(match f.ty {
            ColumnType::F32 => source!(F32, f32),
            ColumnType::F64 => source!(F64, f64),
            ColumnType::I32 => source!(I32, i32),
            ColumnType::I64 => source!(I64, i64),
            ColumnType::U8 => source!(U8, u8),
            ColumnType::Bool => source!(Bool, bool),
        });
    }
    let mut done = 0u64;
    while done < rows {
        let n = (rows - done).min(chunk_rows as u64) as usize;
        let columns: Vec<ColumnData> = sources.iter_mut().map(|s| s.take(n)).collect();
        if let Some((f, c)) = schema
            .fields()
            .iter()
            .zip(&columns)
            .find(|(_, c)| c.len() != n)
        {
            return Err(Error::format(
                path,
                Some(&f.name),
                format!(
                    "the branch ends after {} entries, the tree has {rows}",
                    done + c.len() as u64
                ),
                DAMAGED_HINT,
            ));
        }
        let chunk = Chunk::from_columns(schema, columns)?;
        if tx.send(Ok(chunk)).is_err() {
            return Ok(()); // the reader was dropped
        }
        done += n as u64;
    }
    Ok(())
}
