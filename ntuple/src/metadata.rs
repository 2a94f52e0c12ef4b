//! Run metadata: ordered string key → string value pairs stored with every output file.

use std::fmt;

use crate::error::{Error, Result};

/// Key names used by the simulator. Keys are free strings; these are the conventional ones, listed
/// in `docs/output.md`.
pub mod keys {
    /// The flashc version that wrote the file (`env!("CARGO_PKG_VERSION")` of the binary).
    pub const FLASHC_VERSION: &str = "flashc_version";
    /// The pipeline that produced the rows (e.g. `lamarr_charged`).
    pub const PIPELINE: &str = "pipeline";
    /// The run's random seed, in decimal.
    pub const SEED: &str = "seed";
    /// The first generator event of the run, in decimal.
    pub const FIRST_EVENT: &str = "first_event";
    /// The number of generator events the run was asked for, in decimal (`all`: to the end of
    /// the input file).
    pub const N_EVENTS: &str = "n_events";
    /// The number of generator events actually simulated, in decimal (fewer than `n_events` when
    /// the input ended first). Written when the run ends.
    pub const N_EVENTS_SIMULATED: &str = "n_events_simulated";
    /// Events simulated per generator event (the `fold` column counts them), in decimal.
    pub const OVERSAMPLE: &str = "oversample";
    /// The generator events: the input file as given, or the particle gun's description.
    pub const INPUT: &str = "input";
    /// The models of the pipeline, comma-separated, in stage order.
    pub const MODELS: &str = "models";
    /// `I/N` for shard I of N of a production (absent otherwise, and in merged files).
    pub const SHARD: &str = "shard";
    /// In a merged file: the base names of the files merged, in event order, comma-separated.
    pub const MERGED_FILES: &str = "merged_files";
    /// Prefix of one key per model: `model.NAME` → the model's content hash.
    pub const MODEL_PREFIX: &str = "model.";
}

/// Ordered key → value pairs. Keys are unique: inserting an existing key replaces its value and
/// keeps its position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata {
    entries: Vec<(String, String)>,
}

/// Keys that the file formats use for themselves: `ARROW:schema` (Parquet's Arrow schema) and
/// anything starting with `flashc:` (this crate's own keys, such as the table name in Parquet).
pub(crate) fn reserved(key: &str) -> bool {
    key == "ARROW:schema" || key.starts_with("flashc:")
}

impl Metadata {
    /// No entries.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Sets `key` to `value`: appended if new, replaced in place if present.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Metadata {
        let (key, value) = (key.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
        self
    }

    /// Builder form of [`insert`](Metadata::insert).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Metadata {
        self.insert(key, value);
        self
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The keys whose values differ between `self` and `other`, or that only one of them has, in
    /// `self`'s order then `other`'s. Order alone does not count. Meant for checking that files
    /// to be merged come from the same configuration.
    pub fn differing_keys<'a>(&'a self, other: &'a Metadata) -> Vec<&'a str> {
        let mut out: Vec<&str> = self
            .iter()
            .filter(|(k, v)| other.get(k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        out.extend(
            other
                .iter()
                .filter(|(k, _)| self.get(k).is_none())
                .map(|(k, _)| k),
        );
        out
    }

    /// Checks that every key can be stored: not empty and not reserved by a file format.
    pub(crate) fn check(&self) -> Result<()> {
        self.iter().try_for_each(|(k, _)| check_key(k))
    }
}

/// Checks that `key` can be stored: not empty and not reserved by a file format.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::Metadata {
            key: String::new(),
            message: "empty key".into(),
            hint: "give every metadata entry a name".into(),
        });
    }
    if reserved(key) {
        return Err(Error::Metadata {
            key: key.to_owned(),
            message: "the key is reserved by the file format".into(),
            hint: "rename it: `ARROW:schema` and keys starting with `flashc:` are written by the library itself".into(),
        });
    }
    Ok(())
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Metadata {
        let mut m = Metadata::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in self.iter() {
            writeln!(f, "{k} = {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_order_and_replaces_in_place() {
        let mut m = Metadata::new();
        m.insert("b", "1").insert("a", "2").insert("b", "3");
        assert_eq!(m.iter().collect::<Vec<_>>(), [("b", "3"), ("a", "2")]);
        assert_eq!(m.get("a"), Some("2"));
        assert_eq!(m.get("c"), None);
    }

    #[test]
    fn differing_keys_ignores_order() {
        let a: Metadata = [("x", "1"), ("y", "2"), ("z", "3")].into_iter().collect();
        let b: Metadata = [("y", "2"), ("x", "1"), ("z", "4"), ("w", "0")]
            .into_iter()
            .collect();
        assert_eq!(a.differing_keys(&b), ["z", "w"]);
        assert!(a.differing_keys(&a.clone()).is_empty());
    }

    #[test]
    fn reserved_and_empty_keys_are_refused() {
        assert!(Metadata::new().with("seed", "1").check().is_ok());
        let e = Metadata::new()
            .with("ARROW:schema", "x")
            .check()
            .unwrap_err();
        assert!(
            matches!(e, Error::Metadata { ref key, .. } if key == "ARROW:schema"),
            "{e}"
        );
        assert!(Metadata::new().with("flashc:table", "x").check().is_err());
        assert!(Metadata::new().with("", "x").check().is_err());
    }
}
