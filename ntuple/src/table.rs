//! Schemas and chunks: the simulator's flat per-particle tables, as structure of arrays.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The type of one column. Each maps to one ROOT leaf type and one Arrow/Parquet type (see
/// `docs/output.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// 32-bit float (ROOT `float`, Arrow `Float32`).
    F32,
    /// 64-bit float (ROOT `double`, Arrow `Float64`).
    F64,
    /// 32-bit signed integer (ROOT `int32_t`, Arrow `Int32`).
    I32,
    /// 64-bit signed integer (ROOT `int64_t`, Arrow `Int64`).
    I64,
    /// 8-bit unsigned integer (ROOT `uint8_t`, Arrow `UInt8`).
    U8,
    /// Boolean (ROOT `bool`, Arrow `Boolean`).
    Bool,
}

impl ColumnType {
    /// Every type, in declaration order.
    pub const ALL: [ColumnType; 6] = [
        ColumnType::F32,
        ColumnType::F64,
        ColumnType::I32,
        ColumnType::I64,
        ColumnType::U8,
        ColumnType::Bool,
    ];

    /// The short name: `f32`, `f64`, `i32`, `i64`, `u8`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::F32 => "f32",
            ColumnType::F64 => "f64",
            ColumnType::I32 => "i32",
            ColumnType::I64 => "i64",
            ColumnType::U8 => "u8",
            ColumnType::Bool => "bool",
        }
    }

    /// The C++ type of the ROOT leaf, as uproot and ROOT name it.
    pub fn root_type(self) -> &'static str {
        match self {
            ColumnType::F32 => "float",
            ColumnType::F64 => "double",
            ColumnType::I32 => "int32_t",
            ColumnType::I64 => "int64_t",
            ColumnType::U8 => "uint8_t",
            ColumnType::Bool => "bool",
        }
    }

    /// Bytes per value in memory (and in an uncompressed ROOT basket).
    pub fn size(self) -> usize {
        match self {
            ColumnType::F32 | ColumnType::I32 => 4,
            ColumnType::F64 | ColumnType::I64 => 8,
            ColumnType::U8 | ColumnType::Bool => 1,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// One column of a schema: a name and a type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The column's name (a ROOT branch name, a Parquet column name).
    pub name: String,
    /// The column's type.
    pub ty: ColumnType,
}

/// An ordered list of named, typed columns. Cheap to clone.
///
/// Names are ASCII identifiers (`[A-Za-z_][A-Za-z0-9_]*`, at most 256 characters) and unique:
/// such names are valid ROOT branch names, Parquet column names, pandas columns and Python
/// attribute names alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schema {
    fields: Arc<[Field]>,
}

/// Checks that `name` is usable as a column or table name.
pub(crate) fn check_name(what: &str, name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} name is empty"));
    }
    if name.len() > 256 {
        return Err(format!(
            "{what} name is {} characters long (at most 256)",
            name.len()
        ));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "{what} name \"{name}\" is not an identifier ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    Ok(())
}

impl Schema {
    /// A schema of the given columns, in order.
    ///
    /// Errors: no columns, an empty, repeated or non-identifier name.
    pub fn new<S: Into<String>>(
        columns: impl IntoIterator<Item = (S, ColumnType)>,
    ) -> Result<Schema> {
        let fields: Vec<Field> = columns
            .into_iter()
            .map(|(name, ty)| Field {
                name: name.into(),
                ty,
            })
            .collect();
        if fields.is_empty() {
            return Err(Error::schema(
                None,
                "a schema needs at least one column",
                "give Schema::new the list of (name, type) of the output columns",
            ));
        }
        for (i, f) in fields.iter().enumerate() {
            if let Err(message) = check_name("column", &f.name) {
                return Err(Error::schema(
                    Some(&f.name),
                    message,
                    "use letters, digits and '_' only, not starting with a digit (e.g. \"px\", \"pid_K\")",
                ));
            }
            if let Some(j) = fields[..i].iter().position(|g| g.name == f.name) {
                return Err(Error::schema(
                    Some(&f.name),
                    format!("columns {j} and {i} have the same name"),
                    "give every column its own name",
                ));
            }
        }
        Ok(Schema {
            fields: fields.into(),
        })
    }

    /// The columns, in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The number of columns (never 0).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Always `false`: a schema has at least one column.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The position of column `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The column named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Whether `other` has the same columns (names and types, in order).
    pub fn same_as(&self, other: &Schema) -> bool {
        Arc::ptr_eq(&self.fields, &other.fields) || self.fields == other.fields
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", field.name, field.ty)?;
        }
        Ok(())
    }
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// `f32` values.
    F32(Vec<f32>),
    /// `f64` values.
    F64(Vec<f64>),
    /// `i32` values.
    I32(Vec<i32>),
    /// `i64` values.
    I64(Vec<i64>),
    /// `u8` values.
    U8(Vec<u8>),
    /// `bool` values.
    Bool(Vec<bool>),
}

macro_rules! column_data_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<Vec<$t>> for ColumnData {
            fn from(v: Vec<$t>) -> ColumnData {
                ColumnData::$v(v)
            }
        }
    )*};
}
column_data_from!(f32 => F32, f64 => F64, i32 => I32, i64 => I64, u8 => U8, bool => Bool);

/// Applies `$body` to the vector inside any variant.
macro_rules! with_vec {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            ColumnData::F32($v) => $body,
            ColumnData::F64($v) => $body,
            ColumnData::I32($v) => $body,
            ColumnData::I64($v) => $body,
            ColumnData::U8($v) => $body,
            ColumnData::Bool($v) => $body,
        }
    };
}

impl ColumnData {
    /// An empty column of type `ty`, with room for `capacity` values.
    pub fn with_capacity(ty: ColumnType, capacity: usize) -> ColumnData {
        match ty {
            ColumnType::F32 => ColumnData::F32(Vec::with_capacity(capacity)),
            ColumnType::F64 => ColumnData::F64(Vec::with_capacity(capacity)),
            ColumnType::I32 => ColumnData::I32(Vec::with_capacity(capacity)),
            ColumnType::I64 => ColumnData::I64(Vec::with_capacity(capacity)),
            ColumnType::U8 => ColumnData::U8(Vec::with_capacity(capacity)),
            ColumnType::Bool => ColumnData::Bool(Vec::with_capacity(capacity)),
        }
    }

    /// The type of the values.
    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnData::F32(_) => ColumnType::F32,
            ColumnData::F64(_) => ColumnType::F64,
            ColumnData::I32(_) => ColumnType::I32,
            ColumnData::I64(_) => ColumnType::I64,
            ColumnData::U8(_) => ColumnType::U8,
            ColumnData::Bool(_) => ColumnType::Bool,
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the values of `other`; `false` (and nothing appended) when the types differ.
    pub fn extend_from(&mut self, other: &ColumnData) -> bool {
        match (self, other) {
            (ColumnData::F32(a), ColumnData::F32(b)) => a.extend_from_slice(b),
            (ColumnData::F64(a), ColumnData::F64(b)) => a.extend_from_slice(b),
            (ColumnData::I32(a), ColumnData::I32(b)) => a.extend_from_slice(b),
            (ColumnData::I64(a), ColumnData::I64(b)) => a.extend_from_slice(b),
            (ColumnData::U8(a), ColumnData::U8(b)) => a.extend_from_slice(b),
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }

    /// Whether the two columns hold the same type and the same bits (so NaN equals a NaN with the
    /// same payload, and `0.0` differs from `-0.0`), unlike `==`.
    pub fn bits_eq(&self, other: &ColumnData) -> bool {
        match (self, other) {
            (ColumnData::F32(a), ColumnData::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (ColumnData::F64(a), ColumnData::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (a, b) => a == b,
        }
    }
}

/// A block of rows: one value vector per schema column, all of the same length. A whole table is
/// a chunk too ([`Table`]).
#[derive(Debug, Clone)]
pub struct Chunk {
    schema: Schema,
    columns: Vec<ColumnData>,
    rows: usize,
}

/// A whole table in memory: the same type as a chunk.
pub type Table = Chunk;

impl Chunk {
    /// A chunk from named columns. Every schema column must appear exactly once, in any order,
    /// with the schema's type, and all columns must have the same length; the chunk stores them
    /// in schema order.
    pub fn new<S: AsRef<str>>(
        schema: &Schema,
        columns: impl IntoIterator<Item = (S, ColumnData)>,
    ) -> Result<Chunk> {
        let mut slots: Vec<Option<ColumnData>> = vec![None; schema.len()];
        for (name, data) in columns {
            let name = name.as_ref();
            let Some(i) = schema.index_of(name) else {
                return Err(Error::chunk(
                    Some(name),
                    format!("the schema has no column \"{name}\" (it has: {schema})"),
                    "add the column to the schema, or leave it out of the chunk",
                ));
            };
            if slots[i].is_some() {
                return Err(Error::chunk(
                    Some(name),
                    "the column is given twice",
                    "give each column once",
                ));
            }
            slots[i] = Some(data);
        }
        let mut out = Vec::with_capacity(schema.len());
        for (field, slot) in schema.fields().iter().zip(slots) {
            match slot {
                Some(data) => out.push(data),
                None => {
                    return Err(Error::chunk(
                        Some(&field.name),
                        "the column is missing from the chunk",
                        format!("give values for every schema column ({schema})"),
                    ))
                }
            }
        }
        Chunk::from_columns(schema, out)
    }

    /// A chunk from columns given in schema order. Errors on a wrong number of columns, a type
    /// that differs from the schema's, or columns of different lengths.
    pub fn from_columns(schema: &Schema, columns: Vec<ColumnData>) -> Result<Chunk> {
        if columns.len() != schema.len() {
            return Err(Error::chunk(
                None,
                format!(
                    "{} columns given, the schema has {} ({schema})",
                    columns.len(),
                    schema.len()
                ),
                "give one value vector per schema column, in schema order",
            ));
        }
        let rows = columns[0].len();
        for (field, data) in schema.fields().iter().zip(&columns) {
            if data.column_type() != field.ty {
                return Err(Error::chunk(
                    Some(&field.name),
                    format!(
                        "values are {}, the schema says {}",
                        data.column_type(),
                        field.ty
                    ),
                    "convert the values, or change the column's type in the schema",
                ));
            }
            if data.len() != rows {
                return Err(Error::chunk(
                    Some(&field.name),
                    format!(
                        "{} values, but column \"{}\" has {rows}: all columns of a chunk have the same length",
                        data.len(),
                        schema.fields()[0].name
                    ),
                    "give every column one value per row",
                ));
            }
        }
        Ok(Chunk {
            schema: schema.clone(),
            columns,
            rows,
        })
    }

    /// A chunk with no rows.
    pub fn empty(schema: &Schema) -> Chunk {
        Chunk {
            schema: schema.clone(),
            columns: schema
                .fields()
                .iter()
                .map(|f| ColumnData::with_capacity(f.ty, 0))
                .collect(),
            rows: 0,
        }
    }

    /// The chunk's schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The columns, in schema order.
    pub fn columns(&self) -> &[ColumnData] {
        &self.columns
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.schema.index_of(name).map(|i| &self.columns[i])
    }

    /// The columns, in schema order, by value.
    pub fn into_columns(self) -> Vec<ColumnData> {
        self.columns
    }

    /// Appends the rows of `other`, which must have the same schema (names and types in order).
    pub fn append(&mut self, other: &Chunk) -> Result<()> {
        if !self.schema.same_as(&other.schema) {
            return Err(Error::chunk(
                None,
                format!(
                    "cannot append a chunk with columns ({}) to one with columns ({})",
                    other.schema, self.schema
                ),
                "only tables with the same columns, in the same order, can be concatenated",
            ));
        }
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            // Same schema, so the types match.
            a.extend_from(b);
        }
        self.rows += other.rows;
        Ok(())
    }

    /// Whether the two chunks have the same schema and the same bits in every column (see
    /// [`ColumnData::bits_eq`]).
    pub fn bits_eq(&self, other: &Chunk) -> bool {
        self.schema.same_as(&other.schema)
            && self.rows == other.rows
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| a.bits_eq(b))
    }
}
