//! Pipeline tables into ROOT / Parquet files through `ntuple` (written to a temporary file in
//! the output's directory and renamed on success: never a half-written output).

use std::path::Path;

use anyhow::{Context, Result};
use runtime::sim::{Kind, Table, Values};

use crate::simulate::{OutFormat, Sink};

pub struct Writer {
    inner: ntuple::Writer,
    schema: ntuple::Schema,
}

fn column_type(k: Kind) -> ntuple::ColumnType {
    match k {
        Kind::F32 => ntuple::ColumnType::F32,
        Kind::F64 => ntuple::ColumnType::F64,
        Kind::I32 => ntuple::ColumnType::I32,
        Kind::I64 => ntuple::ColumnType::I64,
        Kind::U8 => ntuple::ColumnType::U8,
    }
}

impl Writer {
    /// Opens `path` for a table named `name` with `schema`; `meta` is stored in the file.
    pub fn create(
        path: &Path,
        format: OutFormat,
        name: &str,
        schema: &[(&'static str, Kind)],
        meta: &[(String, String)],
    ) -> Result<Writer> {
        let schema = ntuple::Schema::new(schema.iter().map(|&(n, k)| (n, column_type(k))))?;
        let mut metadata = ntuple::Metadata::new();
        for (k, v) in meta {
            metadata.insert(k.as_str(), v.as_str());
        }
        let format = match format {
            OutFormat::Root => ntuple::Format::Root,
            OutFormat::Parquet => ntuple::Format::Parquet,
        };
        let inner = ntuple::Writer::create(path, format, &schema, &metadata, name)
            .with_context(|| format!("creating {}", path.display()))?;
        Ok(Writer { inner, schema })
    }

    /// Sets metadata `key` to `value` (written by [`finish`](Writer::finish)).
    pub fn set_metadata(&mut self, key: &str, value: String) -> Result<()> {
        Ok(self.inner.set_metadata(key, value)?)
    }

    /// Completes the file and moves it to its final path; returns the number of rows.
    pub fn finish(self) -> Result<u64> {
        Ok(self.inner.finish()?)
    }
}

impl Sink for Writer {
    fn write(&mut self, table: &Table) -> Result<()> {
        let columns = table
            .columns()
            .iter()
            .map(|c| match &c.values {
                Values::F32(v) => ntuple::ColumnData::F32(v.clone()),
                Values::F64(v) => ntuple::ColumnData::F64(v.clone()),
                Values::I32(v) => ntuple::ColumnData::I32(v.clone()),
                Values::I64(v) => ntuple::ColumnData::I64(v.clone()),
                Values::U8(v) => ntuple::ColumnData::U8(v.clone()),
            })
            .collect();
        let chunk = ntuple::Chunk::from_columns(&self.schema, columns)?;
        self.inner.write(&chunk)?;
        Ok(())
    }
}
