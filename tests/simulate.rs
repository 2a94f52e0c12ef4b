//! `flashc simulate` end to end: the default run, both pipelines, both formats read back in
//! Python (uproot, pandas), HepMC input, bit-identical output for any number of threads and any
//! split into shards, and clear errors that leave no output file behind.
//!
//! The Python interpreter is `$FLASHC_PYTHON` if set, else `.venv/bin/python` at the repository
//! root (scripts/test.sh creates it). A missing interpreter or module fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ntuple::{Chunk, Reader};

const INSTALL: &str = "create it with `python3 -m venv .venv && .venv/bin/pip install -r python/requirements-ci.txt` \
     at the repository root (scripts/test.sh does this), or set FLASHC_PYTHON";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    match std::env::var_os("FLASHC_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv/bin/python"),
    }
}

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

fn read(path: &Path) -> Chunk {
    Reader::open(path)
        .and_then(|r| r.read_all())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `a` then `b`, as one chunk.
fn concat(parts: &[Chunk]) -> Vec<ntuple::ColumnData> {
    let mut cols: Vec<ntuple::ColumnData> = parts[0].columns().to_vec();
    for p in &parts[1..] {
        for (c, d) in cols.iter_mut().zip(p.columns()) {
            assert!(c.extend_from(d));
        }
    }
    cols
}

fn same(a: &[ntuple::ColumnData], b: &[ntuple::ColumnData]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bits_eq(y))
}

fn python_check(file: &Path, pipeline: &str, rows: usize) -> String {
    let py = python();
    let o = Command::new(&py)
        .arg(root().join("tests/simulate/check_output.py"))
        .arg(file)
        .arg(pipeline)
        .arg(rows.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}\n{INSTALL}", py.display()));
    assert!(
        o.status.success(),
        "the Python check of {} failed:\n{}\n{}\n(if a module is missing: {INSTALL})",
        file.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Files in `dir` (to check that nothing else, e.g. a temporary file, is left).
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn no_arguments_runs_lamarr_on_the_gun_and_uproot_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["simulate"]);
    assert!(
        out.contains("lamarr pipeline") && out.contains("1000 events"),
        "{out}"
    );
    assert!(
        out.contains("acceptance") && out.contains("particles/s"),
        "{out}"
    );
    assert_eq!(files(dir.path()), ["flashc-lamarr.root"]);
    let t = read(&dir.path().join("flashc-lamarr.root"));
    assert!(t.rows() > 10_000, "{} rows", t.rows());
    let report = python_check(&dir.path().join("flashc-lamarr.root"), "lamarr", t.rows());
    assert!(report.starts_with("ok:"), "{report}");
}

#[test]
fn threads_chunks_and_shards_give_identical_bits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = ["simulate", "--quiet", "--seed", "7", "--n-events", "120"];
    let run = |extra: &[&str], out: &str| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--output", out]);
        ok(d, &a);
        read(&d.join(out))
    };
    let one = run(&["--threads", "1"], "t1.root");
    let reference = concat(std::slice::from_ref(&one));
    for (extra, out) in [
        (&["--threads", "2"][..], "t2.root"),
        (&["--threads", "4", "--chunk", "5"][..], "t4.parquet"),
        (&["--threads", "3", "--chunk", "1"][..], "t3.root"),
    ] {
        assert!(
            same(&reference, &concat(&[run(extra, out)])),
            "{extra:?} differs from --threads 1"
        );
    }
    // Four shards by --shard I/N ...
    let shards: Vec<Chunk> = (1..=4)
        .map(|i| {
            let s = format!("{i}/4");
            let mut a: Vec<&str> = base.to_vec();
            a.extend_from_slice(&["--shard", &s, "--threads", "2"]);
            ok(d, &a);
            read(&d.join(format!("flashc-lamarr.shard{i}-of-4.root")))
        })
        .collect();
    assert!(
        same(&reference, &concat(&shards)),
        "4 shards differ from one run"
    );
    // ... and by explicit ranges of unequal sizes.
    let ranges = [(0, 1), (1, 50), (51, 9), (60, 60)];
    let parts: Vec<Chunk> = ranges
        .iter()
        .map(|&(f, n)| {
            let (f, n) = (f.to_string(), n.to_string());
            let out = format!("r{f}.parquet");
            ok(
                d,
                &[
                    "simulate",
                    "--quiet",
                    "--seed",
                    "7",
                    "--first-event",
                    &f,
                    "--n-events",
                    &n,
                    "--output",
                    &out,
                ],
            );
            read(&d.join(out))
        })
        .collect();
    assert!(
        same(&reference, &concat(&parts)),
        "--first-event/--n-events split differs from one run"
    );
    // A different seed gives different bits.
    let other = ok(
        d,
        &[
            "simulate",
            "--quiet",
            "--seed",
            "8",
            "--n-events",
            "120",
            "--output",
            "s8.root",
        ],
    );
    let _ = other;
    assert!(!same(&reference, &concat(&[read(&d.join("s8.root"))])));
}

#[test]
fn flashsim_with_oversampling_to_parquet_reads_in_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "simulate",
            "--quiet",
            "--pipeline",
            "flashsim",
            "--n-events",
            "300",
            "--output",
            "one.parquet",
        ],
    );
    let out = ok(
        d,
        &[
            "simulate",
            "--pipeline",
            "flashsim",
            "--n-events",
            "300",
            "--oversample",
            "3",
            "--threads",
            "2",
            "--output",
            "fs.parquet",
        ],
    );
    assert!(
        out.contains("muon efficiency") && out.contains("electron efficiency"),
        "{out}"
    );
    let one = read(&d.join("one.parquet"));
    let three = read(&d.join("fs.parquet"));
    assert_eq!(three.rows(), 3 * one.rows());
    let report = python_check(&d.join("fs.parquet"), "flashsim", three.rows());
    assert!(report.contains("folds [0, 1, 2]"), "{report}");
    // Fold 0 of the oversampled run is the single run.
    let fold = match &three.columns()[three.schema().index_of("fold").unwrap()] {
        ntuple::ColumnData::I32(v) => v.clone(),
        c => panic!("fold is {:?}", c.column_type()),
    };
    let pt = |c: &Chunk| match &c.columns()[c.schema().index_of("reco_pt").unwrap()] {
        ntuple::ColumnData::F32(v) => v.clone(),
        c => panic!("reco_pt is {:?}", c.column_type()),
    };
    let fold0: Vec<u32> = pt(&three)
        .iter()
        .zip(&fold)
        .filter(|(_, &f)| f == 0)
        .map(|(x, _)| x.to_bits())
        .collect();
    assert_eq!(
        fold0,
        pt(&one).iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn hepmc_input_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, out) in [
        ("pyhepmc_events.hepmc3", "h3.root"),
        ("pyhepmc_events.hepmc2", "h2.root"),
    ] {
        let input = root().join("runtime/tests/data").join(file);
        let s = ok(
            d,
            &[
                "simulate",
                "--quiet",
                "--input",
                input.to_str().unwrap(),
                "--output",
                out,
            ],
        );
        assert!(s.contains("charged particles"), "{s}");
        let t = read(&d.join(out));
        assert!(t.rows() > 0);
    }
    // The two files hold the same events: the same rows.
    assert!(same(
        &concat(&[read(&d.join("h3.root"))]),
        &concat(&[read(&d.join("h2.root"))])
    ));
}

#[test]
fn bad_input_is_one_clear_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = d.join("bad.hepmc3");
    let good =
        std::fs::read_to_string(root().join("runtime/tests/data/two_events.hepmc3")).unwrap();
    // Corrupt a particle line of the second event.
    let mut lines: Vec<String> = good.lines().map(String::from).collect();
    let k = lines.iter().rposition(|l| l.starts_with("P ")).unwrap();
    lines[k] = "P 1 0 2212 nonsense".into();
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let before = files(d);
    let o = flashc(
        d,
        &[
            "simulate",
            "--quiet",
            "--input",
            bad.to_str().unwrap(),
            "--output",
            "out.root",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("bad.hepmc3:{}", k + 1)),
        "names file and line: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(files(d), before, "no output or temporary file is left");

    for (args, needle) in [
        (&["simulate", "--output", "x.csv"][..], "extension"),
        (
            &["simulate", "--shard", "5/4", "--n-events", "10"][..],
            "1 <= I <= N",
        ),
        (&["simulate", "--shard", "1/4"][..], "--n-events"),
        (&["simulate", "--oversample", "0"][..], "oversample"),
        (
            &["simulate", "--output", "x.{shard}.root"][..],
            "no --shard I/N was given",
        ),
        (
            &["simulate", "--input", "missing.hepmc3"][..],
            "missing.hepmc3",
        ),
    ] {
        let o = flashc(d, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(files(d), before, "{args:?} left a file");
    }
}

#[test]
fn device_cuda_without_a_gpu_runs_on_the_cpu_with_one_notice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["simulate", "--quiet", "--n-events", "30", "--output", "cpu.parquet"]);
    let o = flashc(d, &["simulate", "--quiet", "--n-events", "30", "--device", "cuda", "--output", "gpu.parquet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    let notices: Vec<&str> = err.lines().filter(|l| l.starts_with("notice: running")).collect();
    assert_eq!(notices.len(), 1, "one notice for the run: {err}");
    assert!(notices[0].contains("on the CPU"), "{err}");
    assert!(same(&concat(&[read(&d.join("cpu.parquet"))]), &concat(&[read(&d.join("gpu.parquet"))])));
}

#[test]
fn shard_output_names_and_the_run_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("out")).unwrap();
    // `{shard}` in --output, and the default name of a shard.
    ok(
        d,
        &[
            "simulate",
            "--quiet",
            "--n-events",
            "30",
            "--first-event",
            "100",
            "--shard",
            "2/3",
            "--output",
            "out/run.{shard}.parquet",
        ],
    );
    ok(
        d,
        &[
            "simulate",
            "--quiet",
            "--n-events",
            "30",
            "--shard",
            "3/3",
            "--format",
            "parquet",
        ],
    );
    assert_eq!(files(&d.join("out")), ["run.shard2-of-3.parquet"]);
    assert_eq!(files(d), ["flashc-lamarr.shard3-of-3.parquet", "out"]);

    let m = ntuple::read_metadata(d.join("out/run.shard2-of-3.parquet")).unwrap();
    assert_eq!(m.get("flashc_version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(m.get("pipeline"), Some("lamarr"));
    assert_eq!(m.get("seed"), Some("42"));
    assert_eq!(m.get("first_event"), Some("110"));
    assert_eq!(m.get("n_events"), Some("10"));
    assert_eq!(m.get("n_events_simulated"), Some("10"));
    assert_eq!(m.get("oversample"), Some("1"));
    assert_eq!(m.get("shard"), Some("2/3"));
    assert!(m.get("input").unwrap().starts_with("particle gun"), "{m}");
    // Every model of the pipeline by name and by content.
    let models: Vec<&str> = m.get("models").unwrap().split(',').collect();
    assert_eq!(models.len(), 11, "{m}");
    for name in &models {
        let digest = m
            .get(&format!("model.{name}"))
            .unwrap_or_else(|| panic!("no digest of {name}: {m}"));
        assert_eq!(Some(digest), generated::digest(name));
        assert!(
            digest.starts_with("fnv1a64:") && digest.len() == 24,
            "{digest}"
        );
    }

    // An input that ends before --n-events: the events actually simulated are recorded.
    let input = root().join("runtime/tests/data/two_events.hepmc3");
    let o = flashc(
        d,
        &[
            "simulate",
            "--quiet",
            "--input",
            input.to_str().unwrap(),
            "--n-events",
            "5",
            "--output",
            "short.root",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the input ended after 2 of the 5 events"));
    let m = ntuple::read_metadata(d.join("short.root")).unwrap();
    assert_eq!(
        (m.get("n_events"), m.get("n_events_simulated")),
        (Some("5"), Some("2"))
    );
    assert_eq!(m.get("input"), input.to_str());
}
