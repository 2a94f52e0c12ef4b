//! Writes both formats and reads them back in Python (uproot and awkward for ROOT, pyarrow and
//! pandas for Parquet) with `tests/read_back.py`.
//!
//! The interpreter is `$FLASHC_PYTHON` if set, else `.venv/bin/python` at the repository root.
//! A missing interpreter or module fails the test with instructions; it is never skipped.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ntuple::{ColumnData, Format, Writer, WriterOptions};

const INSTALL: &str = "create it with `python3 -m venv .venv && .venv/bin/pip install -r python/requirements-ci.txt` \
     at the repository root (scripts/test.sh does this), or set FLASHC_PYTHON to an interpreter with uproot, awkward, pyarrow and pandas";

fn python() -> PathBuf {
    match std::env::var_os("FLASHC_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn raw_bytes(data: &ColumnData) -> Vec<u8> {
    match data {
        ColumnData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ColumnData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ColumnData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ColumnData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ColumnData::U8(v) => v.clone(),
        ColumnData::Bool(v) => v.iter().map(|&b| b as u8).collect(),
    }
}

#[test]
fn python_reads_both_formats() {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import uproot, awkward, pyarrow, pandas"])
        .output();
    match probe {
        Err(e) => panic!(
            "cannot run the Python interpreter {}: {e}\n{INSTALL}",
            python.display()
        ),
        Ok(o) if !o.status.success() => panic!(
            "{} lacks a module needed to read the files back:\n{}\n{INSTALL}",
            python.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => {}
    }

    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    let metadata = common::metadata();
    let options = WriterOptions {
        row_group_rows: 10_000,
        ..WriterOptions::default()
    };
    let sizes = [9_000, 12_000, 4_001];
    let rows: usize = sizes.iter().sum();
    let mut paths = Vec::new();
    for format in [Format::Root, Format::Parquet] {
        let path = dir.path().join(format!("run.{}", format.extension()));
        let mut w =
            Writer::create_with_options(&path, format, &schema, &metadata, "particles", &options)
                .unwrap();
        let mut start = 0;
        for n in sizes {
            w.write(&common::chunk(&schema, start, n)).unwrap();
            start += n as u64;
        }
        w.finish().unwrap();
        paths.push(path);
    }

    let all = common::chunk(&schema, 0, rows);
    let mut columns = Vec::new();
    for (field, data) in schema.fields().iter().zip(all.columns()) {
        let file = dir.path().join(format!("{}.bin", field.name));
        std::fs::write(&file, raw_bytes(data)).unwrap();
        columns.push(format!(
            "{{\"name\": {}, \"type\": \"{}\", \"file\": {}}}",
            json_string(&field.name),
            field.ty,
            json_string(&file.to_string_lossy())
        ));
    }
    let pairs: Vec<String> = metadata
        .iter()
        .map(|(k, v)| format!("[{}, {}]", json_string(k), json_string(v)))
        .collect();
    let manifest = format!(
        "{{\"root\": {}, \"parquet\": {}, \"name\": \"particles\", \"rows\": {rows}, \"row_groups\": {},\n \"columns\": [{}],\n \"metadata\": [{}]}}\n",
        json_string(&paths[0].to_string_lossy()),
        json_string(&paths[1].to_string_lossy()),
        rows.div_ceil(options.row_group_rows),
        columns.join(", "),
        pairs.join(", ")
    );
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, manifest).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_back.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "read_back.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("{rows} rows x 6 columns and 10 metadata pairs")),
        "{stdout}"
    );
    println!("{stdout}");
}
