//! Parquet output and input through `arrow` record batches.
//!
//! Every chunk becomes one Arrow record batch (non-nullable columns). `ArrowWriter` keeps the
//! encoded, zstd-compressed pages of the current row group in memory and writes the row group out
//! every `row_group_rows` rows, so memory stays about one row group of encoded data. Floating
//! point columns are written without dictionary encoding (it rarely pays for continuous values and
//! costs time); integer and boolean columns keep Parquet's default dictionary.
//!
//! The metadata goes into the file's key-value metadata, in order, followed by the table name under
//! `flashc:table` and the Arrow schema under `ARROW:schema` (both reserved keys, left out by
//! [`read_metadata`]). It is handed over in [`ParquetWriter::finish`], so that it can describe the
//! whole run.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type};
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    UInt8Array,
};
use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema, SchemaRef};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::metadata::{reserved, Metadata};
use crate::table::{Chunk, ColumnData, ColumnType, Schema};
use crate::writer::WriterOptions;

/// The key-value metadata key that holds the table name.
pub const TABLE_KEY: &str = "flashc:table";

const IO_HINT: &str = "check free disk space and quota";
const DAMAGED_HINT: &str =
    "the file is not a complete Parquet file (truncated or damaged); write it again";

fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::F32 => DataType::Float32,
        ColumnType::F64 => DataType::Float64,
        ColumnType::I32 => DataType::Int32,
        ColumnType::I64 => DataType::Int64,
        ColumnType::U8 => DataType::UInt8,
        ColumnType::Bool => DataType::Boolean,
    }
}

fn arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(ArrowSchema::new(
        schema
            .fields()
            .iter()
            .map(|f| ArrowField::new(&f.name, arrow_type(f.ty), false))
            .collect::<Vec<_>>(),
    ))
}

fn array(data: &ColumnData) -> ArrayRef {
    match data {
        ColumnData::F32(v) => Arc::new(Float32Array::from(v.clone())),
        ColumnData::F64(v) => Arc::new(Float64Array::from(v.clone())),
        ColumnData::I32(v) => Arc::new(Int32Array::from(v.clone())),
        ColumnData::I64(v) => Arc::new(Int64Array::from(v.clone())),
        ColumnData::U8(v) => Arc::new(UInt8Array::from(v.clone())),
        ColumnData::Bool(v) => Arc::new(BooleanArray::from(v.clone())),
    }
}

/// The streaming Parquet writer on the temporary file.
pub(crate) struct ParquetWriter {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    path: PathBuf,
    table: String,
}

impl ParquetWriter {
    pub(crate) fn start(
        tmp: &Path,
        file: File,
        schema: &Schema,
        table: &str,
        options: &WriterOptions,
    ) -> Result<ParquetWriter> {
        let level = ZstdLevel::try_new(options.zstd_level).map_err(|e| {
            Error::format(
                Path::new(""),
                None,
                format!("zstd level {}: {e}", options.zstd_level),
                "use a zstd level from 1 to 22 (3 is the default)",
            )
        })?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(options.row_group_rows.max(1)));
        for f in schema.fields() {
            if matches!(f.ty, ColumnType::F32 | ColumnType::F64) {
                props =
                    props.set_column_dictionary_enabled(ColumnPath::from(f.name.as_str()), false);
            }
        }
        let arrow = arrow_schema(schema);
        let writer = ArrowWriter::try_new(file, arrow.clone(), Some(props.build()))
            .map_err(|e| Error::parquet(tmp, "start the file", e, IO_HINT))?;
        Ok(ParquetWriter {
            writer,
            schema: arrow,
            path: tmp.to_path_buf(),
            table: table.to_owned(),
        })
    }

    pub(crate) fn write(&mut self, chunk: &Chunk) -> Result<()> {
        if chunk.rows() == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = chunk.columns().iter().map(array).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| {
            Error::parquet(
                &self.path,
                "build a record batch",
                e,
                "this is a bug: the chunk was checked against the schema",
            )
        })?;
        self.writer
            .write(&batch)
            .map_err(|e| Error::parquet(&self.path, "write rows", e, IO_HINT))
    }

    /// Writes the last row group and the footer with `metadata`.
    pub(crate) fn finish(mut self, metadata: &Metadata) -> Result<()> {
        for (k, v) in metadata.iter() {
            self.writer
                .append_key_value_metadata(KeyValue::new(k.to_owned(), v.to_owned()));
        }
        self.writer
            .append_key_value_metadata(KeyValue::new(TABLE_KEY.to_owned(), self.table.clone()));
        self.writer
            .close()
            .map_err(|e| Error::parquet(&self.path, "write the footer", e, IO_HINT))?;
        Ok(())
    }
}

/// What a Parquet file holds, from its footer.
pub(crate) struct ParquetInfo {
    pub(crate) table: String,
    pub(crate) schema: Schema,
    pub(crate) metadata: Metadata,
    pub(crate) rows: u64,
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path)
        .map_err(|e| Error::io(path, "open the Parquet file", e, "check the path"))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| Error::parquet(path, "read the footer", e, DAMAGED_HINT))
}

fn info_of(path: &Path, builder: &ParquetRecordBatchReaderBuilder<File>) -> Result<ParquetInfo> {
    let mut columns = Vec::new();
    for f in builder.schema().fields() {
        let ty = ColumnType::ALL
            .into_iter()
            .find(|t| arrow_type(*t) == *f.data_type())
            .ok_or_else(|| {
                Error::format(
                    path,
                    Some(f.name()),
                    format!(
                        "Arrow type {} is not one this reader handles",
                        f.data_type()
                    ),
                    "supported types: Float32, Float64, Int32, Int64, UInt8, Boolean",
                )
            })?;
        columns.push((f.name().clone(), ty));
    }
    let schema = Schema::new(columns).map_err(|e| {
        Error::format(
            path,
            e.column(),
            e.to_string(),
            "the file's columns cannot form a schema",
        )
    })?;
    let meta = builder.metadata().file_metadata();
    let mut metadata = Metadata::new();
    let mut table = String::new();
    for kv in meta.key_value_metadata().into_iter().flatten() {
        let value = kv.value.clone().unwrap_or_default();
        if kv.key == TABLE_KEY {
            table = value;
        } else if !reserved(&kv.key) {
            metadata.insert(kv.key.clone(), value);
        }
    }
    Ok(ParquetInfo {
        table,
        schema,
        metadata,
        rows: meta.num_rows().max(0) as u64,
    })
}

/// Reads a Parquet file's schema and metadata from its footer.
pub(crate) fn inspect(path: &Path) -> Result<ParquetInfo> {
    info_of(path, &open(path)?)
}

/// Reads a Parquet file's metadata from its footer.
pub(crate) fn read_metadata(path: &Path) -> Result<Metadata> {
    Ok(inspect(path)?.metadata)
}

/// Chunks of a Parquet file, one per record batch of at most `chunk_rows` rows.
pub(crate) struct ParquetChunks {
    reader: ParquetRecordBatchReader,
    schema: Schema,
    path: PathBuf,
}

impl ParquetChunks {
    pub(crate) fn start(path: &Path, chunk_rows: usize) -> Result<ParquetChunks> {
        let builder = open(path)?;
        let schema = info_of(path, &builder)?.schema;
        let reader = builder
            .with_batch_size(chunk_rows.max(1))
            .build()
            .map_err(|e| Error::parquet(path, "start reading", e, DAMAGED_HINT))?;
        Ok(ParquetChunks {
            reader,
            schema,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn next_chunk(&mut self) -> Option<Result<Chunk>> {
        let batch = match self.reader.next()? {
            Ok(b) => b,
            Err(e) => {
                return Some(Err(Error::parquet(
                    &self.path,
                    "read rows",
                    e,
                    DAMAGED_HINT,
                )))
            }
        };
        Some(self.convert(&batch))
    }

    fn convert(&self, batch: &RecordBatch) -> Result<Chunk> {
        let mut columns = Vec::with_capacity(self.schema.len());
        for (f, a) in self.schema.fields().iter().zip(batch.columns()) {
            if a.null_count() > 0 {
                return Err(Error::format(
                    &self.path,
                    Some(&f.name),
                    format!("{} null values", a.null_count()),
                    "flashc tables have no nulls; fill them before reading the file with this crate",
                ));
            }
            let bad = || {
                Error::format(
                    &self.path,
                    Some(&f.name),
                    format!("a record batch column is not {}", f.ty),
                    DAMAGED_HINT,
                )
            };
            columns.push(match f.ty {
                ColumnType::F32 => ColumnData::F32(
                    a.as_primitive_opt::<Float32Type>()
                        .ok_or_else(bad)?
                        .values()
                        .to_vec(),
                ),
                ColumnType::F64 => ColumnData::F64(
                    a.as_primitive_opt::<Float64Type>()
                        .ok_or_else(bad)?
                        .values()
                        .to_vec(),
                ),
                ColumnType::I32 => ColumnData::I32(
                    a.as_primitive_opt::<Int32Type>()
                        .ok_or_else(bad)?
                        .values()
                        .to_vec(),
                ),
                ColumnType::I64 => ColumnData::I64(
                    a.as_primitive_opt::<Int64Type>()
                        .ok_or_else(bad)?
                        .values()
                        .to_vec(),
                ),
                ColumnType::U8 => ColumnData::U8(
                    a.as_primitive_opt::<UInt8Type>()
                        .ok_or_else(bad)?
                        .values()
                        .to_vec(),
                ),
                ColumnType::Bool => ColumnData::Bool(
                    a.as_boolean_opt()
                        .ok_or_else(bad)?
                        .values()
                        .iter()
                        .collect(),
                ),
            });
        }
        Chunk::from_columns(&self.schema, columns)
    }
}
