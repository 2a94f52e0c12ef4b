//! `--device cpu|cuda`: where a model runs, the CPU fallback, and the GPU check and benchmark
//! (`flashc cuda-check`, `flashc bench --device cuda`). See docs/cuda.md.
//!
//! Without the `cuda` cargo feature, or without a CUDA driver, `cuda` falls back to the CPU
//! with a one-line notice on stderr.

use std::time::Instant;

use anyhow::{bail, Result};
use runtime::Model;

/// Where to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Device {
    /// The compiled SIMD code.
    #[default]
    Cpu,
    /// The model's PTX on an NVIDIA GPU (falls back to the CPU when none can be used).
    Cuda,
}

/// A model ready to run on the chosen device.
pub enum Runner {
    Cpu(&'static dyn Model),
    #[cfg(feature = "cuda")]
    Cuda(runtime::cuda::CudaModel),
}

impl Runner {
    /// Runs a batch (row-major buffers); returns the number of rows.
    pub fn run(&self, inputs: &[f32], noise: &[f32], out: &mut [f32]) -> Result<usize> {
        Ok(match self {
            Runner::Cpu(m) => m.run(inputs, noise, out)?,
            #[cfg(feature = "cuda")]
            Runner::Cuda(m) => m.run(inputs, noise, out)?,
        })
    }

    /// `cpu` or `cuda (<GPU name>)`.
    pub fn describe(&self) -> String {
        match self {
            Runner::Cpu(_) => "cpu".into(),
            #[cfg(feature = "cuda")]
            Runner::Cuda(m) => format!("cuda ({})", m.device()),
        }
    }

    /// Whether the model runs on a GPU.
    pub fn is_cuda(&self) -> bool {
        !matches!(self, Runner::Cpu(_))
    }

    /// The GPU's nominal fp32 peak (FLOP/s); `None` on the CPU.
    pub fn gpu_peak_flops(&self) -> Option<f64> {
        match self {
            Runner::Cpu(_) => None,
            #[cfg(feature = "cuda")]
            Runner::Cuda(m) => m.fp32_peak_flops(),
        }
    }
}

/// A runner is a [`Model`], so the simulation pipelines run on either device. On the GPU, a
/// failure is an [`runtime::Error::Device`] from [`Model::run`]; `run_unchecked` (which has no
/// error channel) is only reachable through `run*`, which check the sizes first.
impl Model for Runner {
    fn info(&self) -> &'static runtime::ModelInfo {
        match self {
            Runner::Cpu(m) => m.info(),
            #[cfg(feature = "cuda")]
            Runner::Cuda(m) => m.info(),
        }
    }

    fn run_unchecked(&self, tier: runtime::Tier, rows: usize, inputs: &[f32], noise: &[f32], out: &mut [f32]) {
        match self {
            Runner::Cpu(m) => m.run_unchecked(tier, rows, inputs, noise, out),
            #[cfg(feature = "cuda")]
            Runner::Cuda(m) => {
                if let Err(e) = m.run(inputs, noise, out) {
                    panic!("model `{}` on the GPU: {e}", m.info().name)
                }
            }
        }
    }

    fn run_on(&self, tier: runtime::Tier, inputs: &[f32], noise: &[f32], out: &mut [f32]) -> Result<usize, runtime::Error> {
        match self {
            Runner::Cpu(m) => m.run_on(tier, inputs, noise, out),
            #[cfg(feature = "cuda")]
            Runner::Cuda(m) => m.run(inputs, noise, out).map_err(|e| runtime::Error::Device {
                model: m.info().name,
                message: e.to_string(),
            }),
        }
    }
}

/// GPU index from `FLASHC_CUDA_DEVICE` (default 0).
fn ordinal() -> usize {
    std::env::var("FLASHC_CUDA_DEVICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The runner for `model` on `device`; when CUDA was asked for but cannot be used, the CPU,
/// after one line on stderr saying why.
pub fn select(model: &'static dyn Model, device: Device) -> Runner {
    let (runner, notice) = place(model, device);
    if let Some(n) = notice {
        eprintln!("{n}");
    }
    runner
}

/// The runner for `model` on `device`, and, when CUDA was asked for but cannot be used, the
/// one-line notice saying why it runs on the CPU.
pub fn place(model: &'static dyn Model, device: Device) -> (Runner, Option<String>) {
    match device {
        Device::Cpu => (Runner::Cpu(model), None),
        Device::Cuda => cuda(model),
    }
}

#[cfg(feature = "cuda")]
fn cuda(model: &'static dyn Model) -> (Runner, Option<String>) {
    use runtime::cuda::{or_cpu, Backend, CudaModel, Error};
    let name = model.info().name;
    let gpu = match generated::ptx_by_name(name) {
        Ok((ptx, entry, weights)) => CudaModel::new(model.info(), ptx, entry, weights, ordinal()),
        Err(why) => Err(Error::Input {
            model: name,
            message: format!("no PTX was compiled for this model: {why}"),
        }),
    };
    match or_cpu(model, gpu) {
        (Backend::Cuda(m), _) => (Runner::Cuda(m), None),
        (Backend::Cpu(m), notice) => (Runner::Cpu(m), notice),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(model: &'static dyn Model) -> (Runner, Option<String>) {
    let _ = ordinal();
    (
        Runner::Cpu(model),
        Some(format!(
            "notice: running `{}` on the CPU: this flashc was built without the `cuda` feature (cargo build --release --features cuda)",
            model.info().name
        )),
    )
}

/// Deterministic test data: inputs uniform in (0.02, 0.98) (inside every demo model's domain,
/// logit included), noise standard normal (Box–Muller on a hash).
pub fn test_data(model: &dyn Model, rows: usize, salt: u64) -> (Vec<f32>, Vec<f32>) {
    let info = model.info();
    let u = |i: u64, s: u64| {
        let mut z = (i ^ s.rotate_left(23)).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let inputs = (0..(rows * info.n_inputs) as u64)
        .map(|i| (0.02 + 0.96 * u(i, salt)) as f32)
        .collect();
    let noise = (0..(rows * info.n_noise) as u64)
        .map(|i| {
            let (a, b) = (u(2 * i, salt ^ 1), u(2 * i + 1, salt ^ 1));
            ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
        })
        .collect();
    (inputs, noise)
}

/// `flashc cuda-check`: runs each model on the GPU and the CPU with the same data and prints
/// the largest absolute and relative differences. Fails when no GPU can be used.
pub fn check(models: &[&'static dyn Model], rows: usize) -> Result<()> {
    println!(
        "{:<24} {:>8} {:>12} {:>12} {:>10} {:>8}",
        "model", "rows", "max |d|", "max |d|/|y|", "bit-equal", "NaN mism"
    );
    for &m in models {
        if let Err(why) = generated::ptx_by_name(m.info().name) {
            // A model the PTX backend does not support runs on the CPU only.
            let first = why.lines().find(|l| l.starts_with("error:")).unwrap_or(&why);
            println!("{:<24} {:>8} no PTX ({first})", m.info().name, "-");
            continue;
        }
        let gpu = select(m, Device::Cuda);
        if !gpu.is_cuda() {
            bail!("no GPU could be used (see the notice above); cuda-check needs one");
        }
        let info = m.info();
        let (x, z) = test_data(m, rows, 7);
        let mut y_cpu = vec![0.0f32; rows * info.n_outputs];
        let mut y_gpu = vec![0.0f32; rows * info.n_outputs];
        m.run(&x, &z, &mut y_cpu)?;
        gpu.run(&x, &z, &mut y_gpu)?;
        let (mut max_abs, mut max_rel, mut equal, mut nan_mismatch) =
            (0.0f64, 0.0f64, 0usize, 0usize);
        for (&c, &g) in y_cpu.iter().zip(&y_gpu) {
            if c.to_bits() == g.to_bits() || (c.is_nan() && g.is_nan()) {
                equal += 1;
                continue;
            }
            if c.is_nan() != g.is_nan() {
                nan_mismatch += 1;
                continue;
            }
            let d = (c as f64 - g as f64).abs();
            max_abs = max_abs.max(d);
            max_rel = max_rel.max(d / (c as f64).abs().max(1e-30));
        }
        let pct = 100.0 * equal as f64 / y_cpu.len().max(1) as f64;
        println!(
            "{:<24} {:>8} {:>12.3e} {:>12.3e} {:>9.2}% {:>8}",
            info.name, rows, max_abs, max_rel, pct, nan_mismatch
        );
    }
    Ok(())
}

/// `flashc bench --device cuda`: samples/s per model and batch size (transfers included), and
/// the dense layers' share of the GPU's fp32 peak.
pub fn bench(models: &[&'static dyn Model], batches: &[usize], seconds: f64) -> Result<()> {
    println!(
        "{:<24} {:>9} {:>14} {:>10} {:>10}  device",
        "model", "batch", "samples/s", "GFLOP/s", "% fp32"
    );
    for &m in models {
        let runner = select(m, Device::Cuda);
        let info = m.info();
        for &rows in batches {
            let (x, z) = test_data(m, rows, 3);
            let mut y = vec![0.0f32; rows * info.n_outputs];
            runner.run(&x, &z, &mut y)?; // warm-up (module JIT, allocations)
            let t = Instant::now();
            let mut calls = 0u64;
            while t.elapsed().as_secs_f64() < seconds || calls < 3 {
                runner.run(&x, &z, &mut y)?;
                calls += 1;
            }
            let rate = (calls as f64 * rows as f64) / t.elapsed().as_secs_f64();
            let flops = rate * 2.0 * info.macs_per_row as f64;
            let pct = runner
                .gpu_peak_flops()
                .map_or("-".to_owned(), |p| format!("{:.2}", 100.0 * flops / p));
            println!(
                "{:<24} {:>9} {:>14.4e} {:>10.2} {:>10}  {}",
                info.name,
                rows,
                rate,
                flops / 1e9,
                pct,
                runner.describe()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_the_cpu_and_cuda_falls_back_without_a_gpu() {
        let m = generated::MODELS[0];
        let cpu = select(m, Device::Cpu);
        assert!(!cpu.is_cuda());
        assert_eq!(cpu.describe(), "cpu");
        let (x, z) = test_data(m, 5, 1);
        let mut a = vec![0.0f32; 5 * m.info().n_outputs];
        assert_eq!(cpu.run(&x, &z, &mut a).unwrap(), 5);
        #[cfg(feature = "cuda")]
        let gpu_available = runtime::cuda::driver_present();
        #[cfg(not(feature = "cuda"))]
        let gpu_available = false;
        let r = select(m, Device::Cuda);
        let mut b = vec![0.0f32; a.len()];
        r.run(&x, &z, &mut b).unwrap();
        if gpu_available {
            // On a GPU: the same results to f32 rounding (docs/cuda.md).
            for (u, v) in a.iter().zip(&b) {
                assert!(
                    (u - v).abs() <= 1e-5 * (1.0 + u.abs()),
                    "cpu {u} vs cuda {v}"
                );
            }
        } else {
            assert!(!r.is_cuda(), "no driver: must fall back to the CPU");
            assert_eq!(a, b);
        }
    }

    #[test]
    fn test_data_is_in_domain_and_deterministic() {
        let m = generated::MODELS[0];
        let (x, z) = test_data(m, 100, 9);
        assert!(x.iter().all(|&v| v > 0.0 && v < 1.0));
        assert!(z.iter().all(|v| v.is_finite()));
        assert_eq!(test_data(m, 100, 9), (x, z));
    }
}
