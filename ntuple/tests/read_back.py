"""Reads the files written by the `python_read_back` Rust test with uproot, awkward, pyarrow and
pandas, and checks names, types, values (bit for bit) and metadata against the test's manifest.

Usage: python read_back.py MANIFEST.json

The manifest (written by ntuple/tests/python_read_back.rs) names the ROOT and Parquet files, the
tree/table name, the row count, the expected row groups, the metadata pairs in order, and for each
column its name, type and a raw little-endian file with the expected values.
"""

import json
import sys

INSTALL = (
    "install the read-back dependencies with: python3 -m venv .venv && "
    ".venv/bin/pip install -r python/requirements-ci.txt (or set FLASHC_PYTHON to an "
    "interpreter that has uproot, awkward, pyarrow and pandas)"
)

try:
    import awkward as ak
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import uproot
except ImportError as e:  # pragma: no cover - reported to the Rust test
    sys.exit(f"read_back.py: {e}; {INSTALL}")

RAW = {"f32": "<f4", "f64": "<f8", "i32": "<i4", "i64": "<i8", "u8": "u1", "bool": "u1"}
NUMPY = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64", "u8": "uint8", "bool": "bool"}
ROOT = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t", "u8": "uint8_t", "bool": "bool"}
ARROW = {
    "f32": pa.float32(),
    "f64": pa.float64(),
    "i32": pa.int32(),
    "i64": pa.int64(),
    "u8": pa.uint8(),
    "bool": pa.bool_(),
}
RESERVED = {"ARROW:schema", "flashc:table"}


def same_bits(got, want, what):
    """Asserts equal dtype, shape and bits (NaN payloads and signed zeros included)."""
    got = np.asarray(got)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if want.dtype.kind == "f":
        unsigned = f"u{want.dtype.itemsize}"
        eq = got.view(unsigned) == want.view(unsigned)
    else:
        eq = got == want
    if not eq.all():
        i = int(np.argmin(eq))
        raise AssertionError(f"{what}: row {i} is {got[i]!r}, expected {want[i]!r}")


def main(manifest_path):
    with open(manifest_path, encoding="utf-8") as f:
        man = json.load(f)
    rows, name = man["rows"], man["name"]
    columns = man["columns"]
    names = [c["name"] for c in columns]
    metadata = [tuple(p) for p in man["metadata"]]
    expected = {}
    for c in columns:
        a = np.fromfile(c["file"], dtype=RAW[c["type"]])
        expected[c["name"]] = a.astype(bool) if c["type"] == "bool" else a.astype(NUMPY[c["type"]])
        assert len(a) == rows, f"{c['file']}: {len(a)} values, manifest says {rows}"
    for c in columns:
        if c["type"] in ("f32", "f64"):
            assert np.isnan(expected[c["name"]]).any(), "the test data should contain NaN"

    # ROOT through uproot.
    f = uproot.open(man["root"])
    trees = sorted({k.split(";")[0] for k in f.keys()})
    assert trees == sorted([name, "metadata"]), f"ROOT keys {f.keys()}"
    t = f[name]
    assert t.num_entries == rows, f"ROOT: {t.num_entries} entries, expected {rows}"
    assert t.keys() == names, f"ROOT branches {t.keys()}, expected {names}"
    for c in columns:
        typename = t[c["name"]].typename
        assert typename == ROOT[c["type"]], f"ROOT {c['name']}: typename {typename}, expected {ROOT[c['type']]}"
    arrays = t.arrays(library="np")
    for c in columns:
        same_bits(arrays[c["name"]], expected[c["name"]], f"ROOT {c['name']}")
    jagged = t.arrays(library="ak")  # the default awkward path
    same_bits(ak.to_numpy(jagged[names[0]]), expected[names[0]], f"ROOT (awkward) {names[0]}")
    m = f["metadata"].arrays(["key", "value"], library="np")
    got = [(str(k), str(v)) for k, v in zip(m["key"], m["value"])]
    assert got == metadata, f"ROOT metadata {got}, expected {metadata}"

    # Parquet through pyarrow.
    pf = pq.ParquetFile(man["parquet"])
    md = pf.metadata
    assert md.num_rows == rows, f"Parquet: {md.num_rows} rows, expected {rows}"
    assert md.num_row_groups == man["row_groups"], f"Parquet: {md.num_row_groups} row groups, expected {man['row_groups']}"
    for i in range(md.num_columns):
        comp = md.row_group(0).column(i).compression
        assert comp == "ZSTD", f"Parquet column {i}: compression {comp}"
    table = pf.read()
    assert table.schema.names == names, f"Parquet columns {table.schema.names}"
    for c in columns:
        field = table.schema.field(c["name"])
        assert field.type == ARROW[c["type"]], f"Parquet {c['name']}: type {field.type}"
        assert not field.nullable, f"Parquet {c['name']}: nullable"
        same_bits(table.column(c["name"]).to_numpy(), expected[c["name"]], f"pyarrow {c['name']}")
    kv = md.metadata
    got = {k.decode(): v.decode() for k, v in kv.items() if k.decode() not in RESERVED}
    # The file keeps the pairs in order (the Rust reader checks it), but pyarrow hands them over
    # as a dict in its own order, so compare as a mapping here.
    assert got == dict(metadata), f"Parquet metadata {got}, expected {metadata}"
    assert kv[b"flashc:table"].decode() == name

    # Parquet through pandas.
    df = pd.read_parquet(man["parquet"])
    assert list(df.columns) == names, f"pandas columns {list(df.columns)}"
    assert len(df) == rows
    for c in columns:
        assert str(df[c["name"]].dtype) == NUMPY[c["type"]], f"pandas {c['name']}: dtype {df[c['name']].dtype}"
        same_bits(df[c["name"]].to_numpy(), expected[c["name"]], f"pandas {c['name']}")

    print(
        f"read_back.py: {rows} rows x {len(columns)} columns and {len(metadata)} metadata pairs read back "
        f"(uproot {uproot.__version__}, awkward {ak.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__})"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
