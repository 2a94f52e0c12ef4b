//! Flow-matching sampling: `cfm_resnet` (FlowSim's DenseResidualNet, 115,440 parameters)
//! integrated with its spec's method, torchdiffeq's RK4 (3/8 rule) × 5 steps = 20 evaluations,
//! per sample on one core, at batch 1 and 1024; then the same integration in PyTorch on one
//! thread, measured in the same run (`benches/cfm_torch.py`, run with `$FLASHC_PYTHON` or
//! `python3`; it needs torch and torchdiffeq), and the ratio.
//!
//! ```sh
//! FLASHC_PYTHON=/path/to/python cargo bench --bench cfm
//! ```
//!
//! Criterion measures each batch size (`cfm_resnet rk4x5/1`, `.../1024`); the closing table
//! takes, for each side, the best of 15 repetitions of at least 50 ms, so that the two are
//! measured alike and a machine shared with other work disturbs them as little as it can, and
//! puts them beside the single-core FMA peak measured in the same run (`runtime::peak`).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use runtime::ode::{Scratch, VectorField};

const MODEL: &str = "cfm_resnet";
const BATCHES: [usize; 2] = [1, 1024];

struct Case {
    field: VectorField<'static>,
    context: Vec<f32>,
    z: Vec<f32>,
    x: Vec<f32>,
    scratch: Scratch,
}

impl Case {
    fn new(batch: usize) -> Case {
        let model = generated::by_name(MODEL).expect("cfm_resnet is under models/");
        let settings = generated::ode_by_name(MODEL).expect("cfm_resnet has an ode section");
        let field = VectorField::new(model, *settings).expect("settings fit");
        // Context and noise: deterministic standard-normal-like rows.
        let mut s = 0x2545_f491_4f6c_dd1du64 ^ batch as u64;
        let mut next = || {
            let mut u = 0.0f32;
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                u += (s >> 40) as f32 / (1u64 << 24) as f32;
            }
            (u - 2.0) * 1.732
        };
        let context = (0..batch * field.context_width()).map(|_| next()).collect();
        let z: Vec<f32> = (0..batch * field.dim()).map(|_| next()).collect();
        let scratch = Scratch::new(&field, batch).expect("scratch");
        Case { field, context, x: z.clone(), z, scratch }
    }

    fn run(&mut self) {
        self.x.copy_from_slice(&self.z);
        self.field
            .integrate(&self.context, &mut self.x, &mut self.scratch)
            .expect("integrates");
        black_box(&self.x);
    }
}

/// Seconds per call of `f`: the best of `reps` repetitions of at least `min` each.
fn best(mut f: impl FnMut(), min: Duration, reps: usize) -> f64 {
    f();
    let t0 = Instant::now();
    f();
    let one = t0.elapsed().as_secs_f64().max(1e-9);
    let n = ((min.as_secs_f64() / one) as usize).max(1);
    (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..n {
                f();
            }
            t0.elapsed().as_secs_f64() / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// One batch size measured in PyTorch: batch, torchdiffeq µs/sample, loop µs/sample, a note.
type TorchRow = (usize, f64, f64, String);

/// PyTorch's versions and µs per sample per batch, or why there are none.
fn torch_times() -> Result<(String, Vec<TorchRow>), String> {
    let python = std::env::var("FLASHC_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/cfm_torch.py");
    let batches: Vec<String> = BATCHES.iter().map(|b| b.to_string()).collect();
    let out = Command::new(&python)
        .args([script, "--model", MODEL, "--method", "rk4", "--steps", "5", "--batches", &batches.join(",")])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").to_owned();
        return Err(format!("{python} benches/cfm_torch.py failed: {last} (set FLASHC_PYTHON to a Python with torch and torchdiffeq)"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut versions = String::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.first() {
            Some(&"versions") => versions = w[1..].join(" "),
            Some(&"batch") if w.len() >= 10 => rows.push((
                w[1].parse().map_err(|_| format!("bad line: {line}"))?,
                w[3].parse().map_err(|_| format!("bad line: {line}"))?,
                w[5].parse().map_err(|_| format!("bad line: {line}"))?,
                format!("nfe {}, |torchdiffeq − loop| {}", w[7], w[9]),
            )),
            _ => {}
        }
    }
    Ok((versions, rows))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    {
        let mut g = c.benchmark_group(format!("{MODEL} rk4x5"));
        for batch in BATCHES {
            let mut case = Case::new(batch);
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::from_parameter(batch), |b| b.iter(|| case.run()));
        }
        g.finish();
    }
    c.final_summary();

    // The comparison table, both sides measured the same way.
    let info = generated::by_name(MODEL).unwrap().info();
    let tier = runtime::isa::active();
    let flops = 2.0 * info.macs_per_row as f64 * 20.0;
    let ours: Vec<(usize, f64)> = BATCHES
        .iter()
        .map(|&b| {
            let mut case = Case::new(b);
            (b, best(|| case.run(), Duration::from_millis(50), 15) / b as f64 * 1e6)
        })
        .collect();
    let torch = torch_times();
    let peak = runtime::peak::fma_peak_gflops(tier);
    println!();
    println!(
        "{MODEL}: RK4 (3/8 rule) x 5 steps = 20 evaluations, {} multiply-adds per evaluation; one core, tier {}; \
         FMA peak {peak:.1} GFLOP/s (measured now), so at least {:.1} µs per sample",
        info.macs_per_row,
        tier.name(),
        flops / peak * 1e-3
    );
    match &torch {
        Ok((v, _)) => println!("PyTorch: {v}"),
        Err(e) => println!("PyTorch: not measured: {e}"),
    }
    println!("| batch | flashc µs/sample | GFLOP/s (% of peak) | PyTorch torchdiffeq µs/sample | PyTorch loop µs/sample | speed-up (torchdiffeq / loop) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (b, us) in ours {
        let gflops = flops / us * 1e-3;
        let pct = 100.0 * gflops / peak;
        let row = torch.as_ref().ok().and_then(|(_, rows)| rows.iter().find(|r| r.0 == b));
        match row {
            Some((_, td, lp, note)) => println!(
                "| {b} | {us:.1} | {gflops:.1} ({pct:.0} %) | {td:.1} | {lp:.1} | {:.1}× / {:.1}× |  ({note})",
                td / us,
                lp / us
            ),
            None => println!("| {b} | {us:.1} | {gflops:.1} ({pct:.0} %) | – | – | – |"),
        }
    }
}
