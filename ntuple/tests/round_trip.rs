//! Write both formats, read them back, and check bits, schema, metadata, and that failures leave
//! no file behind.

mod common;

use std::path::{Path, PathBuf};

use ntuple::{
    read_metadata, Chunk, ColumnData, ColumnType, Error, Format, Metadata, Reader, Schema, Writer,
    WriterOptions,
};

const FORMATS: [Format; 2] = [Format::Root, Format::Parquet];

fn out(dir: &Path, stem: &str, format: Format) -> PathBuf {
    dir.join(format!("{stem}.{}", format.extension()))
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Writes `sizes` chunks (consecutive rows) and returns the whole table.
fn write_file(path: &Path, format: Format, sizes: &[usize], options: &WriterOptions) -> Chunk {
    let schema = common::schema();
    let mut w = Writer::create_with_options(
        path,
        format,
        &schema,
        &common::metadata(),
        "particles",
        options,
    )
    .unwrap();
    let mut all = Chunk::empty(&schema);
    let mut start = 0u64;
    for &n in sizes {
        let c = common::chunk(&schema, start, n);
        w.write(&c).unwrap();
        all.append(&c).unwrap();
        start += n as u64;
        assert_eq!(w.rows(), start);
    }
    assert_eq!(w.finish().unwrap(), start);
    all
}

#[test]
fn round_trip_bits_schema_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriterOptions {
        row_group_rows: 5000,
        ..WriterOptions::default()
    };
    // Several ROOT baskets per branch (8000 floats per 32 kB basket), several Parquet row groups,
    // chunks that straddle them, and an empty chunk.
    let sizes = [7000, 0, 1, 12_345, 3000];
    for format in FORMATS {
        let path = out(dir.path(), "run", format);
        let expected = write_file(&path, format, &sizes, &options);
        assert_eq!(expected.rows(), 22_346);

        let reader = Reader::open(&path).unwrap().with_chunk_rows(4096);
        assert_eq!(reader.format(), format);
        assert_eq!(reader.name(), "particles");
        assert_eq!(reader.rows(), 22_346);
        assert!(
            reader.schema().same_as(&common::schema()),
            "{format}: {}",
            reader.schema()
        );
        assert_eq!(reader.metadata(), &common::metadata(), "{format}");
        let mut back = Chunk::empty(reader.schema());
        let mut chunks = 0;
        for c in reader {
            let c = c.unwrap();
            assert!(c.rows() <= 4096 && c.rows() > 0);
            back.append(&c).unwrap();
            chunks += 1;
        }
        assert!(chunks >= 6, "{format}: {chunks} chunks");
        for (i, f) in expected.schema().fields().iter().enumerate() {
            assert!(
                back.columns()[i].bits_eq(&expected.columns()[i]),
                "{format}: column {} differs",
                f.name
            );
        }
        assert!(back.bits_eq(&expected));
        // NaN survives as NaN (not turned into a number or a null).
        let Some(ColumnData::F32(px)) = back.column("px") else {
            panic!("px is not f32")
        };
        assert!(px[0].is_nan() && px[97].is_nan());
        let Some(ColumnData::F64(w)) = back.column("weight") else {
            panic!("weight is not f64")
        };
        assert!(w[0].is_nan() && w[89].is_nan());

        assert_eq!(read_metadata(&path).unwrap(), common::metadata());
        assert_eq!(
            Reader::open(&path).unwrap().read_all().unwrap().rows(),
            22_346
        );
    }
    assert_eq!(
        listing(dir.path()),
        ["run.parquet", "run.root"],
        "no temporary file left"
    );
}

#[test]
fn parquet_row_groups_follow_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = out(dir.path(), "groups", Format::Parquet);
    write_file(
        &path,
        Format::Parquet,
        &[2500, 2500, 1000],
        &WriterOptions {
            row_group_rows: 1000,
            zstd_level: 1,
        },
    );
    let file = std::fs::File::open(&path).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let md = builder.metadata();
    assert_eq!(md.num_row_groups(), 6);
    assert!(md.row_groups().iter().all(|g| g.num_rows() == 1000));
    let compression = md.row_group(0).column(0).compression();
    assert!(
        matches!(compression, parquet::basic::Compression::ZSTD(_)),
        "{compression:?}"
    );
}

#[test]
fn empty_table_and_empty_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new([("x", ColumnType::F64), ("n", ColumnType::I32)]).unwrap();
    for format in FORMATS {
        let path = out(dir.path(), "empty", format);
        let w = Writer::create(&path, format, &schema, &Metadata::new(), "t").unwrap();
        assert_eq!(w.finish().unwrap(), 0);
        let r = Reader::open(&path).unwrap();
        assert_eq!(r.rows(), 0);
        assert!(r.metadata().is_empty());
        assert!(r.schema().same_as(&schema), "{format}");
        let t = r.read_all().unwrap();
        assert_eq!(t.rows(), 0);
    }
}

#[test]
fn metadata_set_before_finish_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    for format in FORMATS {
        let path = out(dir.path(), "late_metadata", format);
        let mut w =
            Writer::create(&path, format, &schema, &common::metadata(), "particles").unwrap();
        w.write(&common::chunk(&schema, 0, 1000)).unwrap();
        // Known only at the end: a new key is appended, an existing one replaced in place.
        w.set_metadata("n_events_simulated", "437").unwrap();
        w.set_metadata(ntuple::keys::SEED, "777").unwrap();
        w.write(&common::chunk(&schema, 1000, 10)).unwrap();
        // Refused keys leave the metadata as it was, and the writer usable.
        for bad in ["", "ARROW:schema", "flashc:table"] {
            let e = w.set_metadata(bad, "x").unwrap_err();
            assert!(
                matches!(e, Error::Metadata { ref key, .. } if key == bad),
                "{format}: {e}"
            );
            assert!(e.to_string().contains("hint:"), "{e}");
        }
        let mut expected = common::metadata();
        expected
            .insert("seed", "777")
            .insert("n_events_simulated", "437");
        assert_eq!(w.metadata(), &expected);
        assert_eq!(w.finish().unwrap(), 1010);

        let got = read_metadata(&path).unwrap();
        assert_eq!(got, expected, "{format}");
        let order: Vec<&str> = got.iter().map(|(k, _)| k).collect();
        let want: Vec<&str> = expected.iter().map(|(k, _)| k).collect();
        assert_eq!(order, want, "{format}: order");
        assert_eq!(order.last(), Some(&"n_events_simulated"));
        let r = Reader::open(&path).unwrap();
        assert_eq!(r.metadata(), &expected, "{format}");
        assert_eq!(r.name(), "particles", "{format}");
        assert_eq!(r.read_all().unwrap().rows(), 1010);
    }
}

#[test]
fn drop_without_finish_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    for format in FORMATS {
        let path = out(dir.path(), "dropped", format);
        let mut w =
            Writer::create(&path, format, &schema, &common::metadata(), "particles").unwrap();
        w.write(&common::chunk(&schema, 0, 50_000)).unwrap();
        assert_eq!(
            listing(dir.path()).len(),
            1,
            "{format}: only the temporary file exists while writing"
        );
        assert!(
            listing(dir.path())[0].starts_with(&format!(".dropped.{}.tmp-", format.extension()))
        );
        assert!(!path.exists());
        drop(w);
        assert!(
            listing(dir.path()).is_empty(),
            "{format}: {:?}",
            listing(dir.path())
        );
    }
}

#[test]
fn overwrite_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    for format in FORMATS {
        let path = out(dir.path(), "same", format);
        write_file(&path, format, &[100], &WriterOptions::default());

        // While the new file is being written, and after it is abandoned, the old one is intact.
        let mut w = Writer::create(
            &path,
            format,
            &schema,
            &Metadata::new().with("seed", "2"),
            "particles",
        )
        .unwrap();
        w.write(&common::chunk(&schema, 0, 30)).unwrap();
        assert_eq!(Reader::open(&path).unwrap().rows(), 100);
        drop(w);
        assert_eq!(Reader::open(&path).unwrap().rows(), 100);
        assert_eq!(read_metadata(&path).unwrap(), common::metadata());

        // A finished one replaces it.
        let mut w = Writer::create(
            &path,
            format,
            &schema,
            &Metadata::new().with("seed", "2"),
            "particles",
        )
        .unwrap();
        w.write(&common::chunk(&schema, 0, 30)).unwrap();
        w.finish().unwrap();
        let r = Reader::open(&path).unwrap();
        assert_eq!(r.rows(), 30);
        assert_eq!(r.metadata().iter().collect::<Vec<_>>(), [("seed", "2")]);
        assert!(r
            .read_all()
            .unwrap()
            .bits_eq(&common::chunk(&schema, 0, 30)));
    }
    assert_eq!(listing(dir.path()), ["same.parquet", "same.root"]);
}

#[test]
fn chunk_errors_name_the_column() {
    let schema = common::schema();
    let good = common::chunk(&schema, 0, 10).into_columns();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name.clone()).collect();

    // Length mismatch.
    let mut cols = good.clone();
    cols[3] = ColumnData::I64(vec![1, 2, 3]);
    let e = Chunk::from_columns(&schema, cols).unwrap_err();
    assert!(matches!(e, Error::Chunk { .. }), "{e}");
    assert_eq!(e.column(), Some("event"));
    assert!(
        e.to_string().contains("3 values") && e.to_string().contains("hint:"),
        "{e}"
    );

    // Wrong type.
    let mut cols = good.clone();
    cols[0] = ColumnData::F64(vec![0.0; 10]);
    let e = Chunk::from_columns(&schema, cols).unwrap_err();
    assert_eq!(e.column(), Some("px"));
    assert!(
        e.to_string()
            .contains("values are f64, the schema says f32"),
        "{e}"
    );

    // Wrong number of columns.
    let e = Chunk::from_columns(&schema, good[..5].to_vec()).unwrap_err();
    assert!(
        e.to_string().contains("5 columns given, the schema has 6"),
        "{e}"
    );

    // Named: any order is fine; unknown, repeated and missing names are not.
    let mut named: Vec<(String, ColumnData)> = names.iter().cloned().zip(good.clone()).collect();
    named.reverse();
    let c = Chunk::new(&schema, named.clone()).unwrap();
    assert!(c.bits_eq(&common::chunk(&schema, 0, 10)));
    let mut bad = named.clone();
    bad[0].0 = "py".into();
    let e = Chunk::new(&schema, bad).unwrap_err();
    assert_eq!(e.column(), Some("py"));
    let mut bad = named.clone();
    bad[1].0 = bad[0].0.clone();
    assert!(Chunk::new(&schema, bad)
        .unwrap_err()
        .to_string()
        .contains("given twice"));
    let e = Chunk::new(&schema, named[1..].to_vec()).unwrap_err();
    assert_eq!(e.column(), Some(names[5].as_str()));
    assert!(e.to_string().contains("missing"), "{e}");
}

#[test]
fn schema_errors() {
    let e = Schema::new(Vec::<(String, ColumnType)>::new()).unwrap_err();
    assert!(e.to_string().contains("at least one column"), "{e}");
    let e = Schema::new([("a", ColumnType::F32), ("a", ColumnType::I32)]).unwrap_err();
    assert_eq!(e.column(), Some("a"));
    for bad in ["", "1x", "p.x", "p/x", "p x", "é"] {
        let e = Schema::new([(bad, ColumnType::F32)]).unwrap_err();
        assert!(matches!(e, Error::Schema { .. }), "{bad}: {e}");
    }
    assert!(Schema::new([("_ok1", ColumnType::F32), ("Ok_2", ColumnType::Bool)]).is_ok());
}

#[test]
fn writer_refuses_a_chunk_of_another_schema_and_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    let other = Schema::new([("px", ColumnType::F32)]).unwrap();
    for format in FORMATS {
        let path = out(dir.path(), "mixed", format);
        let mut w = Writer::create(&path, format, &schema, &Metadata::new(), "particles").unwrap();
        w.write(&common::chunk(&schema, 0, 10)).unwrap();
        let e = w
            .write(&Chunk::from_columns(&other, vec![ColumnData::F32(vec![1.0])]).unwrap())
            .unwrap_err();
        assert!(matches!(e, Error::Chunk { .. }), "{e}");
        w.write(&common::chunk(&schema, 10, 10)).unwrap();
        assert_eq!(w.finish().unwrap(), 20);
        assert!(Reader::open(&path)
            .unwrap()
            .read_all()
            .unwrap()
            .bits_eq(&common::chunk(&schema, 0, 20)));
    }
}

#[test]
fn unwritable_destinations_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    let meta = Metadata::new();
    std::fs::write(dir.path().join("plain_file"), b"x").unwrap();
    for format in FORMATS {
        let ext = format.extension();
        // Missing directory.
        let path = dir.path().join(format!("missing/run.{ext}"));
        let e = Writer::create(&path, format, &schema, &meta, "t").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.hint().contains("does not exist"), "{e}");
        assert!(
            e.path().unwrap().starts_with(dir.path().join("missing")),
            "{e}"
        );
        // A "directory" that is a file.
        let path = dir.path().join(format!("plain_file/run.{ext}"));
        let e = Writer::create(&path, format, &schema, &meta, "t").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        // The output path is a directory.
        let sub = dir.path().join(format!("sub.{ext}"));
        std::fs::create_dir(&sub).unwrap();
        let e = Writer::create(&sub, format, &schema, &meta, "t").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        std::fs::remove_dir(&sub).unwrap();
    }
    // A read-only directory (only meaningful when not running as root, which ignores modes).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = std::fs::File::create(ro.join("probe"));
        if probe.is_err() {
            for format in FORMATS {
                let path = ro.join(format!("run.{}", format.extension()));
                let e = Writer::create(&path, format, &schema, &meta, "t").unwrap_err();
                assert!(e.hint().contains("not writable"), "{e}");
            }
        } else {
            std::fs::remove_file(ro.join("probe")).unwrap();
        }
        assert!(listing(&ro).is_empty());
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_dir(&ro).unwrap();
    }
    assert_eq!(listing(dir.path()), ["plain_file"]);
}

#[test]
fn bad_arguments_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let schema = common::schema();
    let meta = Metadata::new();
    let root = dir.path().join("a.root");
    let e = Writer::create(
        dir.path().join("a.parquet"),
        Format::Root,
        &schema,
        &meta,
        "t",
    )
    .unwrap_err();
    assert!(e.to_string().contains("must be named *.root"), "{e}");
    let e = Writer::create(
        dir.path().join("a.csv"),
        Format::Parquet,
        &schema,
        &meta,
        "t",
    )
    .unwrap_err();
    assert!(e.to_string().contains("*.parquet"), "{e}");
    let e = Writer::create(&root, Format::Root, &schema, &meta, "metadata").unwrap_err();
    assert!(e.to_string().contains("metadata"), "{e}");
    let e = Writer::create(&root, Format::Root, &schema, &meta, "my tree").unwrap_err();
    assert!(e.to_string().contains("identifier"), "{e}");
    let e = Writer::create(
        &root,
        Format::Root,
        &schema,
        &Metadata::new().with("ARROW:schema", "x"),
        "t",
    )
    .unwrap_err();
    assert!(matches!(e, Error::Metadata { .. }), "{e}");
    let e = Writer::create_with_options(
        dir.path().join("a.parquet"),
        Format::Parquet,
        &schema,
        &meta,
        "t",
        &WriterOptions {
            row_group_rows: 0,
            zstd_level: 3,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("row_group_rows"), "{e}");
    let e = Writer::create_with_options(
        dir.path().join("a.parquet"),
        Format::Parquet,
        &schema,
        &meta,
        "t",
        &WriterOptions {
            row_group_rows: 10,
            zstd_level: 0,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("zstd level"), "{e}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn format_from_extension() {
    assert_eq!(Format::from_path("a/b.root").unwrap(), Format::Root);
    assert_eq!(Format::from_path("B.PARQUET").unwrap(), Format::Parquet);
    for bad in ["out.csv", "out", "out.root.gz"] {
        let e = Format::from_path(bad).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(
            e.hint().contains(".root") && e.hint().contains(".parquet"),
            "{e}"
        );
        let e = Reader::open(bad).unwrap_err();
        assert!(e.hint().contains(".root"), "{e}");
        assert!(read_metadata(bad).is_err());
    }
}

#[test]
fn damaged_and_missing_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    for format in FORMATS {
        let ext = format.extension();
        let missing = dir.path().join(format!("missing.{ext}"));
        assert!(matches!(
            Reader::open(&missing).unwrap_err(),
            Error::Io { .. }
        ));

        let garbage = dir.path().join(format!("garbage.{ext}"));
        std::fs::write(
            &garbage,
            b"this is not a data file, just some text that is long enough.....",
        )
        .unwrap();
        let e = Reader::open(&garbage).unwrap_err();
        assert!(e.path() == Some(garbage.as_path()), "{e}");
        assert!(read_metadata(&garbage).is_err());
        // Long enough for a header: oxyroot panics on the wrong magic bytes; that is caught.
        let long = dir.path().join(format!("long_garbage.{ext}"));
        std::fs::write(&long, vec![0x5a_u8; 4096]).unwrap();
        let e = Reader::open(&long).unwrap_err();
        assert!(matches!(e, Error::Backend { .. }), "{e}");
        assert!(read_metadata(&long).is_err());

        // A good file cut in half.
        let good = dir.path().join(format!("good.{ext}"));
        write_file(&good, format, &[20_000], &WriterOptions::default());
        let bytes = std::fs::read(&good).unwrap();
        for keep in [bytes.len() / 2, bytes.len() - 10] {
            let cut = dir.path().join(format!("cut.{ext}"));
            std::fs::write(&cut, &bytes[..keep]).unwrap();
            let r = Reader::open(&cut).and_then(|r| r.read_all());
            assert!(
                r.is_err(),
                "{format}: a file cut at {keep} of {} bytes read without error",
                bytes.len()
            );
        }
    }
}

#[test]
fn root_tree_can_be_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = out(dir.path(), "named", Format::Root);
    let schema = common::schema();
    let mut w = Writer::create(&path, Format::Root, &schema, &Metadata::new(), "Lamarr").unwrap();
    w.write(&common::chunk(&schema, 0, 5)).unwrap();
    w.finish().unwrap();
    assert_eq!(Reader::open(&path).unwrap().name(), "Lamarr");
    assert_eq!(Reader::open_table(&path, "Lamarr").unwrap().rows(), 5);
    assert!(Reader::open_table(&path, "other").is_err());
}

#[test]
fn types_can_move_between_threads() {
    fn send<T: Send>() {}
    fn sync<T: Send + Sync>() {}
    send::<Writer>();
    send::<Reader>();
    sync::<Chunk>();
    sync::<Schema>();
    sync::<Metadata>();
    sync::<Error>();
}
