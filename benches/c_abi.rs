//! Per-row latency of the C ABI (`flashc compile`, docs/c-abi.md) against the Rust API and the
//! scikinC-style baseline, measured in one run: `cargo bench --bench c_abi`.
//!
//! The demo models are compiled into one shared library exactly as tests/c_abi.rs does (the helpers
//! are shared: tests/c_abi_support/). The two C columns are timed by the same C host
//! (tests/c/sqlamarr_like.c, `dlopen` + `dlsym`, as SQLamarr loads its models); the scikinC-style
//! library is `transpiler::baseline`'s C compiled with `cc -O3`, as LHCb builds scikinC output. The
//! Rust column calls `Model::run_row` in this process. Every column cycles over the same fixture
//! rows. Prints a markdown table of ns per row (min / median of 7 repetitions).
//!
//! Run by `cargo test --benches` (no `--bench` argument), it does a short smoke run instead.

#[path = "../tests/c_abi_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Instant;

use support::{c_host, fixture, root, run_ok, shared, work, write_f32};

const DEMO: [&str; 3] = ["tracking_acceptance", "tracking_resolution", "pid_gan"];
/// Rows per call of the `_batch` column.
const BATCH: usize = 256;
const REPS: usize = 7;

/// Times `f` (one call = `rows` rows) as the C host does: a tenth of the budget to warm up, then
/// [`REPS`] repetitions; returns (min, median) ns per row.
fn time_rust(budget_s: f64, rows: usize, mut f: impl FnMut()) -> (f64, f64) {
    let t0 = Instant::now();
    let mut calls = 0u64;
    while t0.elapsed().as_secs_f64() < budget_s / 10.0 || calls < 3 {
        f();
        calls += 1;
    }
    let per_rep = ((budget_s / REPS as f64) / (t0.elapsed().as_secs_f64() / calls as f64)) as u64 + 1;
    let mut times: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_rep {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / (per_rep as f64 * rows as f64)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[REPS / 2])
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let budget = if benchmarking { 0.5 } else { 0.02 };
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; the Rust column is not optimised (use cargo bench --bench c_abi)");
    }
    let t0 = Instant::now();
    let lib = shared();
    let host = c_host();
    eprintln!("built the library and the C host in {:.1} s", t0.elapsed().as_secs_f64());
    let dir = work().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    // The scikinC-style baseline, compiled as LHCb does (cc -O3, no -march) and loaded by the same host.
    let mut sources = Vec::new();
    for name in DEMO {
        let valid = transpiler::load(root().join(format!("models/{name}.json"))).unwrap_or_else(|e| panic!("{e}"));
        let c = transpiler::baseline::scikinc_c(&valid, &format!("scikinc_{name}")).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join(format!("scikinc_{name}.c"));
        std::fs::write(&file, c).unwrap();
        sources.push(file);
    }
    let baseline = dir.join("libscikinc.so");
    run_ok(
        Command::new("cc")
            .args(["-O3", "-fno-fast-math", "-fPIC", "-shared", "-o"])
            .arg(&baseline)
            .args(&sources)
            .arg("-lm"),
    );
    let mut args: Vec<String> = vec!["bench".into(), budget.to_string()];
    let mut rust = Vec::new();
    for name in DEMO {
        let model = generated::by_name(name).unwrap_or_else(|| panic!("{name} is not compiled"));
        let info = model.info();
        let f = fixture(model);
        let rows = f.rows.min(1024);
        let (inp, noise) = (&f.inputs[..rows * info.n_inputs], &f.noise[..rows * info.n_noise]);
        let (fin, fnoise) = (
            dir.join(format!("{name}.in.f32")),
            dir.join(format!("{name}.noise.f32")),
        );
        write_f32(&fin, inp);
        write_f32(&fnoise, noise);
        let sizes = [info.n_inputs, info.n_noise, info.n_outputs].map(|n| n.to_string());
        for (lib, sym, batch) in [
            (&lib.lib, name.to_string(), 0),
            (&baseline, format!("scikinc_{name}"), 0),
            (&lib.lib, name.to_string(), BATCH.min(rows)),
        ] {
            args.push(lib.to_str().unwrap().into());
            args.push(sym);
            args.extend(sizes.iter().cloned());
            args.push(batch.to_string());
            args.push(rows.to_string());
            args.push(fin.to_str().unwrap().into());
            args.push(fnoise.to_str().unwrap().into());
        }
        // The Rust API, one row per call, cycling over the same rows.
        let mut out = vec![0f32; info.n_outputs];
        let mut r = 0usize;
        let (ni, nz) = (info.n_inputs, info.n_noise);
        rust.push(time_rust(budget, 1, || {
            model
                .run_row(
                    std::hint::black_box(&inp[r * ni..(r + 1) * ni]),
                    std::hint::black_box(&noise[r * nz..(r + 1) * nz]),
                    &mut out,
                )
                .unwrap();
            std::hint::black_box(&out);
            r = if r + 1 == rows { 0 } else { r + 1 };
        }));
    }
    let stdout = run_ok(Command::new(host).args(&args));
    let c: Vec<(String, usize, f64, f64)> = stdout
        .lines()
        .filter_map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            (v.len() == 5 && v[0] == "bench").then(|| {
                (
                    v[1].to_string(),
                    v[2].parse().unwrap(),
                    v[3].parse().unwrap(),
                    v[4].parse().unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(c.len(), 3 * DEMO.len(), "unexpected output of the C host:\n{stdout}");
    println!(
        "\nper-row latency, ns per row (min / median of {REPS} repetitions, {budget} s each cell), isa {}:\n",
        runtime::isa::active()
    );
    println!("| model | C ABI, row call via dlopen | Rust API `run_row` | scikinC-style C via dlopen | C ABI speed-up vs scikinC-style | C ABI `_batch` ({BATCH} rows/call) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (k, name) in DEMO.iter().enumerate() {
        let (row, base, batch) = (&c[3 * k], &c[3 * k + 1], &c[3 * k + 2]);
        assert!(
            row.0 == *name && base.0 == format!("scikinc_{name}") && batch.0 == *name,
            "C host rows out of order:\n{stdout}"
        );
        let (rmin, rmed) = rust[k];
        println!(
            "| {name} | {:.0} / {:.0} | {rmin:.0} / {rmed:.0} | {:.0} / {:.0} | {:.1}× | {:.0} / {:.0} |",
            row.2,
            row.3,
            base.2,
            base.3,
            base.2 / row.2,
            batch.2,
            batch.3
        );
    }
}
