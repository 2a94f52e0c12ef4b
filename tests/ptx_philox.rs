//! In-kernel noise of the PTX backend, checked without a GPU: the kernels run in the PTX
//! interpreter (`tests/support/ptx_interp.rs`) and must draw exactly the bits of the CPU's
//! `runtime::rng::fill_batch` (Philox4x32-10, uniforms, Box-Muller), row by row, for assorted
//! `(event, particle)` ids, seeds, streams and draw offsets. The `_philox` entry must then give
//! exactly the outputs of the plain entry fed with that noise, and agree with the CPU model.

#[path = "support/ptx_interp.rs"]
mod sim;

use std::path::{Path, PathBuf};

use runtime::rng::{fill_batch, Distribution};
use transpiler::codegen::ptx;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// A small model with noise: `x[3] ‖ z[dim] → dense → tanh → y[2]`.
fn noisy_model(dir: &Path, name: &str, dim: usize, dist: &str) -> transpiler::ValidModel {
    let spec = format!(
        r#"{{
  "format": "flashc/1",
  "name": "{name}",
  "weights": "{name}.safetensors",
  "inputs": [{{"name": "x", "columns": ["x0", "x1", "x2"]}}],
  "noise": {{"name": "z", "dim": {dim}, "distribution": "{dist}"}},
  "graph": [
    {{"name": "h", "op": "concat", "inputs": ["x", "z"]}},
    {{"name": "d", "op": "dense", "input": "h", "kernel": "d/kernel", "bias": "d/bias", "activation": {{"kind": "tanh"}}}}
  ],
  "outputs": [{{"value": "d", "columns": ["y0", "y1"]}}]
}}"#
    );
    let n = 3 + dim;
    let kernel: Vec<f32> = (0..n * 2)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 20.0)
        .collect();
    let bias = [0.1f32, -0.2];
    let bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let (kb, bb) = (bytes(&kernel), bytes(&bias));
    let views = vec![
        (
            "d/kernel".to_owned(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![n, 2], &kb).unwrap(),
        ),
        (
            "d/bias".to_owned(),
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &bb).unwrap(),
        ),
    ];
    std::fs::write(
        dir.join(format!("{name}.safetensors")),
        safetensors::serialize(views, None).unwrap(),
    )
    .unwrap();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, spec).unwrap();
    transpiler::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Assorted `(event, particle)` ids: small, past 2^32, near and past 2^48 (reduced modulo
/// 2^48 on both sides), repeated events with different particles, extreme particles.
fn ids(rows: usize) -> (Vec<u64>, Vec<u32>) {
    let mut events = Vec::with_capacity(rows);
    let mut particles = Vec::with_capacity(rows);
    for r in 0..rows as u64 {
        let e = match r % 8 {
            0 => r,
            1 => 7,
            2 => (1 << 32) + r * 977,
            3 => (1 << 48) - 1 - r,
            4 => (1 << 48) + r,
            5 => u64::MAX - r,
            6 => 0x0000_ABCD_1234_5678 ^ (r << 20),
            _ => r * 0x1_0000_0001,
        };
        let p = match r % 5 {
            0 => 0,
            1 => r as u32,
            2 => u32::MAX - r as u32,
            3 => 0x8000_0000 | (r as u32 * 12345),
            _ => 3,
        };
        events.push(e);
        particles.push(p);
    }
    (events, particles)
}

fn words(v: &[f32]) -> Vec<u32> {
    v.iter()
        .map(|x| x.to_bits())
        .chain(std::iter::once(0))
        .collect()
}

fn event_words(events: &[u64]) -> Vec<u32> {
    events
        .iter()
        .flat_map(|&e| [e as u32, (e >> 32) as u32])
        .collect()
}

fn rng_dist(model: &transpiler::ValidModel) -> Distribution {
    match model.model().noise.as_ref().unwrap().distribution {
        transpiler::ir::Distribution::Normal => Distribution::Normal,
        transpiler::ir::Distribution::Uniform => Distribution::Uniform,
    }
}

/// The draw parameters of one launch.
#[derive(Clone, Copy, Debug)]
struct Draw {
    seed: u64,
    stream: u8,
    offset: u32,
}

/// The `_noise` entry, interpreted: `rows × n_noise` values.
fn gpu_noise(
    module: &sim::Module,
    model: &transpiler::ValidModel,
    d: Draw,
    events: &[u64],
    particles: &[u32],
) -> Vec<f32> {
    let n = model.model().noise.as_ref().unwrap().dim;
    let rows = events.len();
    let mut bufs = vec![
        vec![0x7FC0_0000u32; rows * n],
        event_words(events),
        particles.to_vec(),
    ];
    let args = [
        sim::buf(0),
        rows as u64,
        d.seed & 0xFFFF_FFFF,
        d.seed >> 32,
        d.stream as u64,
        sim::buf(1),
        sim::buf(2),
        d.offset as u64,
    ];
    let entry = ptx::noise_entry_name(&model.model().name);
    module.launch_entry(&entry, ptx::BLOCK, rows as u32, &args, &mut bufs);
    bufs[0].iter().map(|&b| f32::from_bits(b)).collect()
}

/// The CPU's noise for the same rows.
fn cpu_noise(
    model: &transpiler::ValidModel,
    d: Draw,
    events: &[u64],
    particles: &[u32],
) -> Vec<f32> {
    let n = model.model().noise.as_ref().unwrap().dim;
    let mut out = vec![f32::NAN; events.len() * n];
    fill_batch(
        d.seed,
        d.stream,
        rng_dist(model),
        d.offset,
        events,
        particles,
        &mut out,
    );
    out
}

fn program(model: &transpiler::ValidModel) -> transpiler::passes::plan::Program {
    transpiler::passes::plan(&transpiler::passes::optimise(model))
}

/// The `_philox` entry, interpreted: `rows × n_outputs` values.
fn gpu_philox_run(
    module: &sim::Module,
    model: &transpiler::ValidModel,
    d: Draw,
    inputs: &[f32],
    events: &[u64],
    particles: &[u32],
) -> Vec<f32> {
    let p = program(model);
    let rows = events.len();
    let mut bufs = vec![
        words(inputs),
        vec![0x7FC0_0000u32; rows * p.output_columns.len()],
        words(&p.blob),
        event_words(events),
        particles.to_vec(),
    ];
    let args = [
        sim::buf(0),
        sim::buf(1),
        sim::buf(2),
        rows as u64,
        d.seed & 0xFFFF_FFFF,
        d.seed >> 32,
        d.stream as u64,
        sim::buf(3),
        sim::buf(4),
        d.offset as u64,
    ];
    let entry = ptx::philox_entry_name(&model.model().name);
    module.launch_entry(&entry, ptx::BLOCK, rows as u32, &args, &mut bufs);
    bufs[1].iter().map(|&b| f32::from_bits(b)).collect()
}

/// The plain entry, interpreted, on the caller's noise.
fn gpu_run(
    module: &sim::Module,
    model: &transpiler::ValidModel,
    inputs: &[f32],
    noise: &[f32],
    rows: usize,
) -> Vec<f32> {
    let p = program(model);
    let mut bufs = vec![
        words(inputs),
        words(noise),
        vec![0x7FC0_0000u32; rows * p.output_columns.len()],
        words(&p.blob),
    ];
    module.launch(ptx::BLOCK, rows as u32, &mut bufs);
    bufs[2].iter().map(|&b| f32::from_bits(b)).collect()
}

/// Index of the first value whose bits differ, with both values.
fn first_difference(got: &[f32], want: &[f32]) -> Option<(usize, f32, f32)> {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .enumerate()
        .find(|(_, (g, w))| g.to_bits() != w.to_bits())
        .map(|(i, (g, w))| (i, *g, *w))
}

const DRAWS: [Draw; 3] = [
    Draw {
        seed: 0x0123_4567_89AB_CDEF,
        stream: 0,
        offset: 0,
    },
    Draw {
        seed: 42,
        stream: 7,
        offset: 3,
    },
    Draw {
        seed: u64::MAX - 5,
        stream: 239,
        offset: 6,
    },
];

fn check_noise(model: &transpiler::ValidModel, rows: usize) {
    let name = &model.model().name;
    let text = ptx::generate(model).unwrap();
    let module = sim::parse(&text);
    let (events, particles) = ids(rows);
    let n = model.model().noise.as_ref().unwrap().dim;
    for d in DRAWS {
        let got = gpu_noise(&module, model, d, &events, &particles);
        let want = cpu_noise(model, d, &events, &particles);
        if let Some((i, g, w)) = first_difference(&got, &want) {
            panic!(
                "{name} {d:?}: noise value {i} (row {}, column {}): GPU {g} ({:#010x}), CPU {w} ({:#010x})",
                i / n,
                i % n,
                g.to_bits(),
                w.to_bits()
            );
        }
        // Not a degenerate stream: the rows and columns differ.
        let distinct: std::collections::BTreeSet<u32> = got.iter().map(|v| v.to_bits()).collect();
        assert!(
            distinct.len() > got.len() * 9 / 10,
            "{name}: {} distinct of {}",
            distinct.len(),
            got.len()
        );
        // A wrong stream number would be seen.
        let other = Draw {
            stream: d.stream + 1,
            ..d
        };
        assert!(first_difference(&got, &cpu_noise(model, other, &events, &particles)).is_some());
    }
    println!(
        "{name}: {rows} rows × {n} noise values bit-identical to rng::fill_batch for {} draws",
        DRAWS.len()
    );
}

#[test]
fn noise_entry_draws_the_bits_of_the_cpu_rng() {
    let dir = tempfile::tempdir().unwrap();
    check_noise(&noisy_model(dir.path(), "tiny_uniform", 7, "uniform"), 40);
    check_noise(&noisy_model(dir.path(), "tiny_normal", 5, "normal"), 40);
    // Two blocks, the second partly idle.
    check_noise(&noisy_model(dir.path(), "tiny_normal", 9, "normal"), 131);
    let pid = transpiler::load(models_dir().join("pid_gan.json")).unwrap();
    check_noise(&pid, 40);
}

/// A CPU run: `(inputs, noise) → outputs`.
type CpuRun<'a> = dyn Fn(&[f32], &[f32]) -> Vec<f64> + 'a;

/// The `_philox` entry gives the plain entry's outputs on the CPU's noise, bit for bit, and
/// agrees with `cpu` (the CPU model or the f64 reference) within `tol` (relative to 1 + |want|).
fn check_model(
    model: &transpiler::ValidModel,
    inputs: &[f32],
    rows: usize,
    tol: f64,
    cpu: &CpuRun,
) {
    let name = &model.model().name;
    let text = ptx::generate(model).unwrap();
    let module = sim::parse(&text);
    let (events, particles) = ids(rows);
    let mut worst = 0.0f64;
    for d in DRAWS {
        let noise = cpu_noise(model, d, &events, &particles);
        let got = gpu_philox_run(&module, model, d, inputs, &events, &particles);
        let plain = gpu_run(&module, model, inputs, &noise, rows);
        if let Some((i, g, w)) = first_difference(&got, &plain) {
            panic!(
                "{name} {d:?}: output {i}: philox kernel {g}, plain kernel on the CPU noise {w}"
            );
        }
        let want = cpu(inputs, &noise);
        assert_eq!(got.len(), want.len());
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let err = (g as f64 - w).abs() / (1.0 + w.abs());
            worst = worst.max(err);
            assert!(
                err <= tol,
                "{name} {d:?}: output {i}: GPU {g}, CPU {w} (error {err:.3e})"
            );
        }
    }
    println!("{name}: {rows} rows, philox kernel = plain kernel bit for bit; worst error against the CPU {worst:.3e}");
}

#[test]
fn philox_kernel_runs_the_model_on_the_cpu_noise() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 40;
    for (name, dim, dist) in [("tiny_uniform", 7, "uniform"), ("tiny_normal", 6, "normal")] {
        let m = noisy_model(dir.path(), name, dim, dist);
        let x: Vec<f32> = (0..rows * 3)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let reference = |x: &[f32], z: &[f32]| {
            let f = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            transpiler::reference::eval(m.model(), rows, &f(x), &f(z)).unwrap()
        };
        check_model(&m, &x, rows, 1e-5, &reference);
    }
    // pid_gan against the compiled CPU model.
    let pid = transpiler::load(models_dir().join("pid_gan.json")).unwrap();
    let cpu_model =
        generated::by_name("pid_gan").expect("pid_gan is compiled into the generated crate");
    let info = cpu_model.info();
    let x: Vec<f32> = (0..rows)
        .flat_map(|r| {
            let r = r as f32;
            [
                3.0 + (r * 0.37) % 2.0,
                2.0 + (r * 0.71) % 3.0,
                10.0 + (r * 37.0) % 300.0,
                if (r as u32) & 1 == 0 { 1.0 } else { -1.0 },
            ]
        })
        .collect();
    assert_eq!(x.len(), rows * info.n_inputs);
    let cpu = |x: &[f32], z: &[f32]| {
        let mut out = vec![0f32; rows * info.n_outputs];
        cpu_model.run(x, z, &mut out).unwrap();
        out.iter().map(|&v| v as f64).collect::<Vec<f64>>()
    };
    check_model(&pid, &x, rows, 1e-4, &cpu);
}

#[test]
fn models_without_noise_have_no_philox_entries() {
    let spec = models_dir().join("tracking_acceptance.json");
    let m = transpiler::load(&spec).unwrap();
    if m.model().noise.is_none() {
        let text = ptx::generate(&m).unwrap();
        let module = sim::parse(&text);
        assert_eq!(module.entries(), [ptx::entry_name(&m.model().name)]);
    } else {
        panic!("tracking_acceptance is expected to be a model without noise");
    }
    let pid = transpiler::load(models_dir().join("pid_gan.json")).unwrap();
    let module = sim::parse(&ptx::generate(&pid).unwrap());
    assert_eq!(
        module.entries(),
        [
            "flashc_pid_gan",
            "flashc_pid_gan_philox",
            "flashc_pid_gan_draw_noise"
        ]
    );
}

/// On a GPU: every model with noise, 100 000 rows with assorted ids, in-kernel noise against
/// the CPU model on `rng::fill_batch` noise. Needs an NVIDIA GPU (sm_80+) and its driver:
/// `cargo test --release --features cuda --test ptx_philox -- --ignored --nocapture`.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs an NVIDIA GPU: cargo test --release --features cuda --test ptx_philox -- --ignored"]
fn gpu_in_kernel_noise_matches_the_cpu() {
    use runtime::cuda::{Backend, CudaModel};
    let rows = 100_000;
    let (events, particles) = ids(rows);
    let mut checked = 0;
    for &model in generated::MODELS {
        let info = model.info();
        if info.n_noise == 0 {
            continue;
        }
        // Models the PTX backend does not support (flows) run on the CPU only.
        let Ok((ptx_text, entry, weights)) = generated::ptx_by_name(info.name) else {
            continue;
        };
        let gpu =
            CudaModel::new(info, ptx_text, entry, weights, 0).unwrap_or_else(|e| panic!("{e}"));
        let x: Vec<f32> = (0..rows * info.n_inputs)
            .map(|i| 0.5 + 0.45 * (((i * 7919) % 1000) as f32 / 500.0 - 1.0))
            .collect();
        for seed in [1u64, 0xDEAD_BEEF_0123_4567] {
            let mut got = vec![f32::NAN; rows * info.n_outputs];
            let mut want = vec![f32::NAN; rows * info.n_outputs];
            gpu.run_with_philox(seed, 3, &events, &particles, &x, &mut got)
                .unwrap();
            Backend::Cpu(model)
                .run_with_philox(seed, 3, &events, &particles, &x, &mut want)
                .unwrap();
            let mut worst = 0.0f64;
            let mut equal = 0usize;
            for (&g, &w) in got.iter().zip(&want) {
                equal += (g.to_bits() == w.to_bits()) as usize;
                if !(g.is_nan() && w.is_nan()) {
                    worst = worst.max((g as f64 - w as f64).abs() / (1.0 + (w as f64).abs()));
                }
            }
            println!(
                "{} ({}), seed {seed:#x}: {rows} rows, max |d|/(1+|y|) {worst:.3e}, {:.2}% bit-equal",
                info.name,
                gpu.device(),
                100.0 * equal as f64 / got.len() as f64
            );
            assert!(
                worst <= 1e-4,
                "{}: GPU and CPU differ by {worst:.3e}",
                info.name
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "no model with noise under models/");
}
