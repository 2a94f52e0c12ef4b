//! Real generator events end to end: Pythia8 pp collisions at 13.6 TeV (minimum bias and bb̄),
//! written as HepMC3, HepMC2 and gzip-compressed HepMC3 by `tests/production/make_pythia_events.py`,
//! simulated by `flashc simulate` (Lamarr pipeline) and checked against the generator's own
//! particle counts with uproot (`tests/production/check_pythia_output.py`). The three encodings
//! of the events must give bit-identical ntuples.
//!
//! It also measures and prints the Pythia8 generation rate and flashc's throughput on these
//! events (`cargo test --release --test pythia -- --nocapture` shows them; docs/production.md
//! records them).
//!
//! Needs `pythia8mc`, `pyhepmc` and `uproot` in the Python interpreter `$FLASHC_PYTHON`, else
//! `.venv/bin/python` at the repository root (scripts/test.sh installs python/requirements-ci.txt
//! there). A missing interpreter or module fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ntuple::{ColumnData, Reader};

#[path = "support/process.rs"]
mod process;
use process::run;

const INSTALL: &str = "create it with `python3 -m venv .venv && .venv/bin/pip install -r python/requirements-ci.txt` \
     at the repository root (scripts/test.sh does this), or set FLASHC_PYTHON";

/// Events generated: minimum bias, then bb̄.
const MINBIAS: u32 = 50;
const BBBAR: u32 = 20;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    match std::env::var_os("FLASHC_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv/bin/python"),
    }
}

fn flashc(dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flashc"));
    c.current_dir(dir).args(args);
    run(c, Duration::from_secs(120), &format!("flashc {args:?}"))
}

fn read(path: &Path) -> Vec<ColumnData> {
    Reader::open(path)
        .and_then(|r| r.read_all())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .columns()
        .to_vec()
}

fn same(a: &[ColumnData], b: &[ColumnData]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.bits_eq(y))
}

/// `(events/s, particles/s, particles/s per thread)` from the summary line of `flashc simulate`:
/// `time 0.15 s: 468 events/s, 69626 particles/s (69626 per thread)`.
fn throughput(summary: &str) -> (f64, f64, f64) {
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("time ") && l.contains("particles/s"))
        .unwrap_or_else(|| panic!("no throughput line in:\n{summary}"));
    let nums: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(
        nums.len(),
        4,
        "time, events/s, particles/s, per thread: {line}"
    );
    (nums[1], nums[2], nums[3])
}

#[test]
fn pythia8_events_through_lamarr_in_three_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // 1. Generate (Pythia8 + pyhepmc); the generator's counts go to truth.json.
    let mut gen = Command::new(python());
    gen.arg(root().join("tests/production/make_pythia_events.py"))
        .arg(d)
        .args([
            "--minbias",
            &MINBIAS.to_string(),
            "--bbbar",
            &BBBAR.to_string(),
        ]);
    let t0 = Instant::now();
    let gen_out = run(
        gen,
        Duration::from_secs(120),
        &format!("the Pythia8 generator (if pythia8mc or pyhepmc is missing: {INSTALL})"),
    );
    let gen_wall = t0.elapsed().as_secs_f64();
    let inputs = ["events.hepmc3", "events.hepmc2", "events.hepmc3.gz"];
    for f in inputs.iter().chain(&["truth.json"]) {
        assert!(
            d.join(f).is_file(),
            "the generator wrote no {f}:\n{gen_out}"
        );
    }

    // 2. Simulate each encoding; the ntuples must be bit-identical.
    for f in inputs {
        let s = flashc(
            d,
            &[
                "simulate",
                "--quiet",
                "--input",
                f,
                "--threads",
                "2",
                "--output",
                &format!("{f}.root"),
            ],
        );
        assert!(
            s.contains(&format!("{} events", MINBIAS + BBBAR)),
            "{f}: {s}"
        );
    }
    let reference = read(&d.join("events.hepmc3.root"));
    for f in &inputs[1..] {
        assert!(
            same(&reference, &read(&d.join(format!("{f}.root")))),
            "{f} gives a different ntuple than events.hepmc3"
        );
    }

    // 3. The ntuple against the generator, read with uproot.
    let mut check = Command::new(python());
    check
        .arg(root().join("tests/production/check_pythia_output.py"))
        .arg(d.join("events.hepmc3.root"))
        .arg(d.join("truth.json"));
    let report = run(
        check,
        Duration::from_secs(120),
        &format!("the uproot check (if a module is missing: {INSTALL})"),
    );
    assert!(report.starts_with("ok:"), "{report}");

    // 4. Throughput on one core: the best of three runs (the time includes reading the HepMC3).
    let mut best = (0.0, 0.0, 0.0);
    for _ in 0..3 {
        let s = flashc(
            d,
            &[
                "simulate",
                "--quiet",
                "--input",
                "events.hepmc3",
                "--threads",
                "1",
                "--output",
                "throughput.root",
            ],
        );
        let t = throughput(&s);
        if t.0 > best.0 {
            best = t;
        }
    }
    assert!(best.0 > 0.0 && best.2 > 0.0);

    // The rates the generator printed (its other lines are HepMC's notices).
    let rates: Vec<&str> = gen_out
        .lines()
        .filter(|l| l.starts_with("minbias:") || l.starts_with("bbbar:"))
        .collect();
    assert_eq!(rates.len(), 2, "a rate per process:\n{gen_out}");
    println!(
        "Pythia8 generation ({MINBIAS} minimum-bias + {BBBAR} bb̄ events, 13.6 TeV, {gen_wall:.1} s in all):"
    );
    for l in rates {
        println!("  {l}");
    }
    println!("uproot check: {}", report.trim_end());
    println!(
        "flashc simulate, lamarr, 1 thread, HepMC3 input: {:.0} events/s, {:.0} particles/s per core",
        best.0, best.2
    );
}
