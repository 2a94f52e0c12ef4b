//! The columnar output of a pipeline: named, typed columns of equal length, in schema order.

/// The type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    F32,
    F64,
    I32,
    I64,
    /// Flags (0 or 1).
    U8,
}

/// The values of a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}

impl Values {
    fn empty(kind: Kind) -> Values {
        match kind {
            Kind::F32 => Values::F32(Vec::new()),
            Kind::F64 => Values::F64(Vec::new()),
            Kind::I32 => Values::I32(Vec::new()),
            Kind::I64 => Values::I64(Vec::new()),
            Kind::U8 => Values::U8(Vec::new()),
        }
    }

    /// The column type.
    pub fn kind(&self) -> Kind {
        match self {
            Values::F32(_) => Kind::F32,
            Values::F64(_) => Kind::F64,
            Values::I32(_) => Kind::I32,
            Values::I64(_) => Kind::I64,
            Values::U8(_) => Kind::U8,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::F32(v) => v.len(),
            Values::F64(v) => v.len(),
            Values::I32(v) => v.len(),
            Values::I64(v) => v.len(),
            Values::U8(v) => v.len(),
        }
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn clear(&mut self) {
        match self {
            Values::F32(v) => v.clear(),
            Values::F64(v) => v.clear(),
            Values::I32(v) => v.clear(),
            Values::I64(v) => v.clear(),
            Values::U8(v) => v.clear(),
        }
    }

    fn append(&mut self, other: &Values) {
        match (self, other) {
            (Values::F32(a), Values::F32(b)) => a.extend_from_slice(b),
            (Values::F64(a), Values::F64(b)) => a.extend_from_slice(b),
            (Values::I32(a), Values::I32(b)) => a.extend_from_slice(b),
            (Values::I64(a), Values::I64(b)) => a.extend_from_slice(b),
            (Values::U8(a), Values::U8(b)) => a.extend_from_slice(b),
            (a, b) => unreachable!(
                "append of {:?} to {:?}: tables share a schema",
                b.kind(),
                a.kind()
            ),
        }
    }
}

/// One named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub values: Values,
}

/// Columns of equal length, in schema order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    columns: Vec<Column>,
}

impl Table {
    /// An empty table with the given columns.
    pub fn new(schema: &[(&'static str, Kind)]) -> Table {
        Table {
            columns: schema
                .iter()
                .map(|&(name, kind)| Column {
                    name,
                    values: Values::empty(kind),
                })
                .collect(),
        }
    }

    /// The columns, in schema order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The schema.
    pub fn schema(&self) -> Vec<(&'static str, Kind)> {
        self.columns
            .iter()
            .map(|c| (c.name, c.values.kind()))
            .collect()
    }

    /// Rows (the length of the first column; every column has it, see [`Table::check`]).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    /// Removes every row, keeping the schema and the allocations.
    pub fn clear(&mut self) {
        for c in &mut self.columns {
            c.values.clear();
        }
    }

    /// Appends the rows of `other`, which must have the same schema.
    pub fn append(&mut self, other: &Table) {
        assert_eq!(
            self.schema(),
            other.schema(),
            "Table::append: schemas differ"
        );
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.values.append(&b.values);
        }
    }

    /// The column named `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Values> {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.values)
    }

    fn slot(&mut self, name: &str) -> &mut Values {
        match self.columns.iter_mut().find(|c| c.name == name) {
            Some(c) => &mut c.values,
            None => panic!("pipeline writes column `{name}`, which its schema lacks"),
        }
    }

    /// Appends to the `f32` column `name`.
    ///
    /// # Panics
    /// If the schema has no `f32` column of that name (a pipeline bug, caught by its tests).
    pub fn push_f32(&mut self, name: &str, v: impl IntoIterator<Item = f32>) {
        match self.slot(name) {
            Values::F32(c) => c.extend(v),
            other => panic!("column `{name}` is {:?}, not F32", other.kind()),
        }
    }

    /// Appends to the `i32` column `name` (panics like [`Table::push_f32`]).
    pub fn push_i32(&mut self, name: &str, v: impl IntoIterator<Item = i32>) {
        match self.slot(name) {
            Values::I32(c) => c.extend(v),
            other => panic!("column `{name}` is {:?}, not I32", other.kind()),
        }
    }

    /// Appends to the `i64` column `name` (panics like [`Table::push_f32`]).
    pub fn push_i64(&mut self, name: &str, v: impl IntoIterator<Item = i64>) {
        match self.slot(name) {
            Values::I64(c) => c.extend(v),
            other => panic!("column `{name}` is {:?}, not I64", other.kind()),
        }
    }

    /// Appends to the `u8` column `name` (panics like [`Table::push_f32`]).
    pub fn push_u8(&mut self, name: &str, v: impl IntoIterator<Item = u8>) {
        match self.slot(name) {
            Values::U8(c) => c.extend(v),
            other => panic!("column `{name}` is {:?}, not U8", other.kind()),
        }
    }

    /// The first column whose length differs from the first column's, if any.
    pub fn check(&self) -> Result<(), (&'static str, usize, usize)> {
        let n = self.rows();
        match self.columns.iter().find(|c| c.values.len() != n) {
            Some(c) => Err((c.name, c.values.len(), n)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_and_check() {
        let schema = [("a", Kind::F32), ("b", Kind::I64)];
        let mut t = Table::new(&schema);
        t.push_f32("a", [1.0, f32::NAN]);
        t.push_i64("b", [3, 4]);
        assert_eq!(t.check(), Ok(()));
        let mut u = Table::new(&schema);
        u.append(&t);
        u.append(&t);
        assert_eq!(u.rows(), 4);
        assert_eq!(u.column("b"), Some(&Values::I64(vec![3, 4, 3, 4])));
        u.push_f32("a", [0.0]);
        assert_eq!(u.check(), Err(("b", 4, 5)));
        u.clear();
        assert_eq!(u.rows(), 0);
    }
}
