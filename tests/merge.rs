//! `flashc merge` end to end: shards of a production merged (in any order, ROOT and Parquet
//! mixed, in stages) give the single run's rows bit for bit and its metadata; a missing shard, a
//! duplicated shard and a shard of another configuration are each refused with one message that
//! names the range or the key and the files, and leave no file behind.

use std::path::Path;
use std::process::{Command, Output};

use ntuple::{read_metadata, ColumnData, Metadata, Reader};

fn flashc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashc"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs flashc")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = flashc(dir, args);
    assert!(
        o.status.success(),
        "flashc {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs flashc, expects it to fail, and returns its stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let o = flashc(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "flashc {args:?} succeeded:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "one error: {err}");
    err
}

/// The columns of a file, read with ntuple's Reader.
fn columns(path: &Path) -> Vec<ColumnData> {
    let t = Reader::open(path)
        .and_then(|r| r.read_all())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    t.columns().to_vec()
}

fn same_bits(a: &Path, b: &Path) {
    let (x, y) = (columns(a), columns(b));
    assert_eq!(x.len(), y.len());
    assert!(x[0].len() > 1000, "{} rows only", x[0].len());
    for (i, (c, d)) in x.iter().zip(&y).enumerate() {
        assert!(
            c.bits_eq(d),
            "column {i} of {} differs from {}",
            a.display(),
            b.display()
        );
    }
}

/// The names in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The metadata without one key.
fn without(m: &Metadata, key: &str) -> Metadata {
    m.iter().filter(|(k, _)| *k != key).collect()
}

const SEED: &str = "7";
const EVENTS: &str = "120";

/// Simulates shard `i` of 4 of the production (seed 7, 120 events) into `out`.
fn shard(dir: &Path, i: u32, out: &str, extra: &[&str]) {
    let s = format!("{i}/4");
    let mut a = vec![
        "simulate",
        "--quiet",
        "--seed",
        SEED,
        "--n-events",
        EVENTS,
        "--shard",
        &s,
        "--threads",
        "2",
        "--output",
        out,
    ];
    a.extend_from_slice(extra);
    ok(dir, &a);
}

/// The production in one run, into `single.root`.
fn single(dir: &Path) {
    ok(
        dir,
        &[
            "simulate",
            "--quiet",
            "--seed",
            SEED,
            "--n-events",
            EVENTS,
            "--threads",
            "2",
            "--output",
            "single.root",
        ],
    );
}

#[test]
fn four_shards_merged_out_of_order_equal_one_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    single(d);
    for i in 1..=4 {
        shard(d, i, "part.{shard}.root", &[]);
    }
    // Given out of order: merged in event order.
    let out = ok(
        d,
        &[
            "merge",
            "merged.root",
            "part.shard3-of-4.root",
            "part.shard1-of-4.root",
            "part.shard4-of-4.root",
            "part.shard2-of-4.root",
        ],
    );
    assert!(
        out.contains("merged 4 file(s), 120 events from event 0"),
        "{out}"
    );
    same_bits(&d.join("merged.root"), &d.join("single.root"));

    // The metadata is the single run's, plus the list of merged files.
    let one = read_metadata(d.join("single.root")).unwrap();
    let merged = read_metadata(d.join("merged.root")).unwrap();
    assert_eq!(
        merged.get("merged_files"),
        Some("part.shard1-of-4.root,part.shard2-of-4.root,part.shard3-of-4.root,part.shard4-of-4.root")
    );
    assert_eq!(without(&merged, "merged_files"), one);
    assert_eq!(one.get("first_event"), Some("0"));
    assert_eq!(one.get("n_events"), Some("120"));
    assert_eq!(one.get("n_events_simulated"), Some("120"));
    assert_eq!(one.get("shard"), None);

    // In stages: 1+2 and 3+4, then the two halves (to Parquet): the same rows, the same list.
    ok(
        d,
        &[
            "merge",
            "a.parquet",
            "part.shard2-of-4.root",
            "part.shard1-of-4.root",
        ],
    );
    ok(
        d,
        &[
            "merge",
            "b.root",
            "part.shard4-of-4.root",
            "part.shard3-of-4.root",
        ],
    );
    let out = ok(d, &["merge", "ab.parquet", "b.root", "a.parquet"]);
    assert!(out.contains("merged 2 file(s)"), "{out}");
    same_bits(&d.join("ab.parquet"), &d.join("single.root"));
    assert_eq!(read_metadata(d.join("ab.parquet")).unwrap(), merged);
    let half = read_metadata(d.join("a.parquet")).unwrap();
    assert_eq!(half.get("n_events"), Some("60"));
    assert_eq!(half.get("first_event"), Some("0"));

    assert!(
        !files(d).iter().any(|f| f.starts_with('.')),
        "temporary files left: {:?}",
        files(d)
    );
}

#[test]
fn root_and_parquet_shards_merge_into_either_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    single(d);
    shard(d, 1, "s.{shard}.parquet", &[]);
    shard(d, 2, "s.{shard}.root", &[]);
    shard(d, 3, "s.{shard}.root", &[]);
    shard(d, 4, "s.{shard}.parquet", &[]);
    let inputs = [
        "s.shard4-of-4.parquet",
        "s.shard2-of-4.root",
        "s.shard1-of-4.parquet",
        "s.shard3-of-4.root",
    ];
    for out in ["m.root", "m.parquet"] {
        let mut a = vec!["merge", out];
        a.extend_from_slice(&inputs);
        ok(d, &a);
        same_bits(&d.join(out), &d.join("single.root"));
        let m = read_metadata(d.join(out)).unwrap();
        assert_eq!(
            without(&m, "merged_files"),
            read_metadata(d.join("single.root")).unwrap()
        );
    }
    // The output format comes from the extension.
    let before = files(d);
    let err = fails(d, &["merge", "m.csv", "s.shard1-of-4.parquet"]);
    assert!(
        err.contains("m.csv") && err.contains(".root") && err.contains(".parquet"),
        "{err}"
    );
    assert_eq!(files(d), before);
}

#[test]
fn a_missing_or_duplicated_shard_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for i in 1..=4 {
        shard(d, i, "p.{shard}.root", &[]);
    }
    std::fs::copy(d.join("p.shard2-of-4.root"), d.join("copy.root")).unwrap();
    let before = files(d);
    let p = |i: u32| format!("p.shard{i}-of-4.root");

    // Shard 2 (events 30 to 59) is missing.
    let err = fails(d, &["merge", "out.root", &p(1), &p(3), &p(4)]);
    assert!(
        err.contains("events 30 to 59 (30 events) are missing"),
        "{err}"
    );
    assert!(
        err.contains(&p(1)) && err.contains(&p(3)),
        "names the files around the gap: {err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(files(d), before, "no output, no temporary file");

    // Shard 2 twice, under two names.
    let err = fails(
        d,
        &["merge", "out.root", &p(1), &p(2), "copy.root", &p(3), &p(4)],
    );
    assert!(
        err.contains("events 30 to 59 (30 events) are in both"),
        "{err}"
    );
    assert!(err.contains(&p(2)) && err.contains("copy.root"), "{err}");
    assert_eq!(files(d), before);

    // The same file twice.
    let err = fails(d, &["merge", "out.root", &p(1), &p(2), &p(2), &p(3), &p(4)]);
    assert!(err.contains("given twice"), "{err}");
    assert_eq!(files(d), before);

    // The output is one of the inputs.
    let err = fails(d, &["merge", &p(1), &p(1), &p(2)]);
    assert!(err.contains("both the output and an input"), "{err}");
    assert_eq!(files(d), before);

    // Shards of another split (of 3) overlap those of 4.
    ok(
        d,
        &[
            "simulate",
            "--quiet",
            "--seed",
            SEED,
            "--n-events",
            EVENTS,
            "--shard",
            "2/3",
            "--output",
            "t.{shard}.root",
        ],
    );
    let err = fails(d, &["merge", "out.root", &p(1), "t.shard2-of-3.root"]);
    assert!(
        err.contains("events 30 to 39 (10 events) are missing"),
        "{err}"
    );
    let err = fails(
        d,
        &["merge", "out.root", &p(1), &p(2), "t.shard2-of-3.root"],
    );
    assert!(
        err.contains("events 40 to 59 (20 events) are in both"),
        "{err}"
    );

    // Part of a production merges, with a notice naming the shards left out.
    let o = flashc(d, &["merge", "half.root", &p(2), &p(3)]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("notice: merging 2 of the 4 shards; not given: 1/4, 4/4"),
        "{err}"
    );
}

#[test]
fn shards_of_another_configuration_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    shard(d, 1, "p.{shard}.root", &[]);
    shard(d, 2, "p.{shard}.root", &[]);
    // The same shard with another seed, another oversampling, another pipeline.
    let s = |extra: &[&str], out: &str| {
        let mut a = vec![
            "simulate",
            "--quiet",
            "--n-events",
            EVENTS,
            "--shard",
            "2/4",
            "--output",
            out,
        ];
        a.extend_from_slice(extra);
        ok(d, &a);
    };
    s(&["--seed", "8"], "seed8.root");
    s(&["--seed", SEED, "--oversample", "2"], "over2.parquet");
    s(&["--seed", SEED, "--pipeline", "flashsim"], "flashsim.root");
    let before = files(d);
    for (file, key, a, b) in [
        ("seed8.root", "seed", "7", "8"),
        ("over2.parquet", "oversample", "1", "2"),
        ("flashsim.root", "pipeline", "lamarr", "flashsim"),
    ] {
        let err = fails(d, &["merge", "out.parquet", "p.shard1-of-4.root", file]);
        let want =
            format!("metadata key `{key}` is `{a}` in p.shard1-of-4.root but `{b}` in {file}");
        assert!(err.contains(&want), "wanted `{want}` in: {err}");
        assert!(
            err.contains("hint: only the outputs of one production"),
            "{err}"
        );
        assert_eq!(files(d), before, "{file}: no output, no temporary file");
    }
    // Different models: a file whose digest of one model differs.
    let mut m = read_metadata(d.join("p.shard2-of-4.root")).unwrap();
    let key = m
        .iter()
        .find(|(k, _)| k.starts_with("model."))
        .map(|(k, _)| k.to_string())
        .unwrap();
    m.insert(key.as_str(), "fnv1a64:0000000000000000");
    let r = Reader::open(d.join("p.shard2-of-4.root")).unwrap();
    let (schema, name) = (r.schema().clone(), r.name().to_string());
    let mut w = ntuple::Writer::create(
        d.join("edited.root"),
        ntuple::Format::Root,
        &schema,
        &m,
        &name,
    )
    .unwrap();
    for c in r {
        w.write(&c.unwrap()).unwrap();
    }
    w.finish().unwrap();
    let err = fails(
        d,
        &["merge", "out.root", "p.shard1-of-4.root", "edited.root"],
    );
    assert!(
        err.contains(&format!("metadata key `{key}` is `fnv1a64:")),
        "{err}"
    );
    assert!(
        err.contains("but `fnv1a64:0000000000000000` in edited.root"),
        "{err}"
    );
    assert!(!d.join("out.root").exists());
}

#[test]
fn more_shards_than_events_merge_including_the_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 3 events in 5 shards: shards 1 and 3 are empty.
    for i in [5, 3, 1, 4, 2] {
        let s = format!("{i}/5");
        ok(
            d,
            &[
                "simulate",
                "--quiet",
                "--n-events",
                "3",
                "--shard",
                &s,
                "--output",
                "e.{shard}.parquet",
            ],
        );
    }
    ok(
        d,
        &[
            "simulate",
            "--quiet",
            "--n-events",
            "3",
            "--output",
            "all3.root",
        ],
    );
    let m = read_metadata(d.join("e.shard3-of-5.parquet")).unwrap();
    assert_eq!(
        (m.get("first_event"), m.get("n_events")),
        (Some("1"), Some("0"))
    );
    let names: Vec<String> = [4, 1, 5, 3, 2]
        .iter()
        .map(|i| format!("e.shard{i}-of-5.parquet"))
        .collect();
    let mut a = vec!["merge", "m.root"];
    a.extend(names.iter().map(String::as_str));
    ok(d, &a);
    let (x, y) = (columns(&d.join("m.root")), columns(&d.join("all3.root")));
    assert!(!x[0].is_empty());
    assert!(x.iter().zip(&y).all(|(p, q)| p.bits_eq(q)));
    assert_eq!(
        without(&read_metadata(d.join("m.root")).unwrap(), "merged_files"),
        read_metadata(d.join("all3.root")).unwrap()
    );

    // An empty shard of another split, inside the events of a file.
    let err = fails(
        d,
        &["merge", "x.root", "all3.root", "e.shard3-of-5.parquet"],
    );
    assert!(err.contains("e.shard3-of-5.parquet holds no events, from event 1, which is inside the events 0 to 2 (3 events) of all3.root"), "{err}");
    assert!(!d.join("x.root").exists());
}
