//! The flow models under `models/`: samples/s at batch 1 and 1024 (criterion), then, in the same
//! run, a side-by-side table against nflows in PyTorch on one thread (`benches/flows_torch.py`,
//! same model and weights, same batch sizes) with the speed-up.
//!
//! ```sh
//! FLASHC_PYTHON=/path/to/python cargo bench --bench flows    # a Python with torch, nflows 0.14, zuko
//! ```
//!
//! Without such a Python (`FLASHC_PYTHON`, else `python3`) the table shows flashc alone. The
//! tier is the active one (`FLASHC_ISA` forces one); flashc runs on one thread.

use std::hint::black_box;
use std::process::Command;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};

const BATCHES: [usize; 2] = [1, 1024];

fn flow_models() -> Vec<&'static dyn runtime::Model> {
    generated::MODELS
        .iter()
        .copied()
        .filter(|m| {
            let n = m.info().name;
            n.starts_with("nflows_") || n.starts_with("zuko_")
        })
        .collect()
}

fn data(info: &runtime::ModelInfo, batch: usize) -> (Vec<f32>, Vec<f32>) {
    let inputs = (0..batch * info.n_inputs)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let noise = (0..batch * info.n_noise)
        .map(|i| {
            // Roughly standard normal: a sum of four uniforms, rescaled.
            let u = |k: usize| ((i * 4 + k) * 104729 % 1000) as f32 / 1000.0;
            (u(0) + u(1) + u(2) + u(3) - 2.0) * 1.73
        })
        .collect();
    (inputs, noise)
}

fn criterion_benches(c: &mut Criterion) {
    let tier = runtime::isa::active();
    for model in flow_models() {
        let info = model.info();
        let mut group = c.benchmark_group(format!("{}/{tier}", info.name));
        for batch in BATCHES {
            let (inputs, noise) = data(info, batch);
            let mut out = vec![0f32; batch * info.n_outputs];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
                b.iter(|| {
                    model
                        .run_on(tier, black_box(&inputs), black_box(&noise), &mut out)
                        .unwrap()
                })
            });
        }
        group.finish();
    }
}

/// Best time per sample over repeated calls for about `seconds`, in ns.
fn flashc_ns(model: &dyn runtime::Model, batch: usize, seconds: f64) -> f64 {
    let info = model.info();
    let (inputs, noise) = data(info, batch);
    let mut out = vec![0f32; batch * info.n_outputs];
    let tier = runtime::isa::active();
    model.run_on(tier, &inputs, &noise, &mut out).unwrap();
    let reps = (200_000 / batch).max(1);
    let mut best = f64::INFINITY;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        for _ in 0..reps {
            model
                .run_on(tier, black_box(&inputs), black_box(&noise), &mut out)
                .unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64() / (reps * batch) as f64);
    }
    best * 1e9
}

/// `ns_per_sample` per batch from `flows_torch.py`, or why there is none.
fn torch_ns(name: &str) -> Result<Vec<(usize, f64, f64)>, String> {
    let python = std::env::var("FLASHC_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/flows_torch.py");
    let mut cmd = Command::new(&python);
    cmd.arg(script)
        .arg(name)
        .args(BATCHES.iter().map(|b| b.to_string()))
        .args(["--seconds", "3"]);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{python} {script} failed: {}",
            err.lines().last().unwrap_or("")
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> Option<f64> {
        let at = text.find(key)? + key.len();
        let rest = text[at..].trim_start_matches([':', ' ', '"']);
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end].trim().parse().ok()
    };
    let diff = field("\"max_rel_diff_vs_fixture\"").ok_or("no fixture check in the output")?;
    BATCHES
        .iter()
        .map(|&b| {
            field(&format!("\"{b}\""))
                .map(|ns| (b, ns, diff))
                .ok_or_else(|| format!("no timing for batch {b}"))
        })
        .collect()
}

fn comparison() {
    let tier = runtime::isa::active();
    println!(
        "\nflashc ({tier}, one thread) against nflows / zuko in PyTorch (one thread): x = T⁻¹(z; context)"
    );
    println!(
        "{:<16} {:>6} {:>14} {:>14} {:>14} {:>14} {:>9}",
        "model", "batch", "flashc µs", "flashc /s", "torch µs", "torch /s", "speed-up"
    );
    for model in flow_models() {
        let name = model.info().name;
        if name.ends_with("_log_prob") {
            continue;
        }
        let torch = torch_ns(name);
        for (k, &batch) in BATCHES.iter().enumerate() {
            let ours = flashc_ns(model, batch, 2.0);
            match &torch {
                Ok(t) => {
                    let theirs = t[k].1;
                    println!(
                        "{name:<16} {batch:>6} {:>14.2} {:>14.0} {:>14.2} {:>14.0} {:>8.1}×",
                        ours / 1e3,
                        1e9 / ours,
                        theirs / 1e3,
                        1e9 / theirs,
                        theirs / ours
                    );
                }
                Err(_) => println!(
                    "{name:<16} {batch:>6} {:>14.2} {:>14.0} {:>14} {:>14} {:>9}",
                    ours / 1e3,
                    1e9 / ours,
                    "-",
                    "-",
                    "-"
                ),
            }
        }
        match &torch {
            Ok(t) => println!(
                "{:<16} (the PyTorch model reproduces the fixture to {:.1e} relative)",
                "", t[0].2
            ),
            Err(e) => println!("{:<16} no PyTorch timing: {e}", ""),
        }
    }
    println!("(µs per sample; batch 1 is one call per row; PyTorch's batch 1 is one inverse() call per row from Python)");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    comparison();
}
