//! Running models compiled to PTX on an NVIDIA GPU (cargo feature `cuda`, off by default).
//!
//! The transpiler writes `<name>.ptx` next to `<name>.rs` when built with
//! `transpiler::Config::ptx(true)`; the generated module then exposes `PTX`, `PTX_ENTRY` and
//! `ptx_weights()`, which [`CudaModel::new`] takes. The kernel ABI and the numerics are
//! described in `docs/cuda.md` and in the transpiler's `codegen::ptx`.
//!
//! * `libcuda` is loaded at run time (`cudarc` with `dynamic-loading`): the binary builds and
//!   starts on machines without CUDA. [`CudaModel::new`] checks for the driver library first
//!   and returns [`Error::NoDriver`] instead of letting `cudarc` panic.
//! * PTX is loaded with `cuModuleLoadData` (no NVRTC needed); the driver JIT-compiles it for the
//!   GPU at hand (sm_80 or newer).
//! * A batch is cut into chunks of [`CHUNK_ROWS`] rows that alternate between two streams, so
//!   the copies of one chunk overlap the kernel of the other.
//! * [`or_cpu`] picks the GPU when it can be had and the compiled CPU model otherwise, with a
//!   one-line notice.
//! * [`CudaModel::run_with_philox`] draws the noise in the kernel (entry `<entry>_philox`,
//!   written for every model with noise): the same Philox4x32-10 + Box-Muller as
//!   [`crate::rng::fill_batch`], bit for bit, so only inputs, event numbers and particle indices
//!   travel to the GPU. [`Backend::run_with_philox`] does the same on either device.

use std::fmt;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};

use crate::model::{check_rows, Model, ModelInfo};

/// Threads per block of the generated kernels (the transpiler's `codegen::ptx::BLOCK`).
pub const BLOCK: u32 = 128;
/// Rows per chunk of a large batch (each chunk is copied and run on one of two streams).
pub const CHUNK_ROWS: usize = 1 << 16;

/// What can go wrong on the CUDA path. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No CUDA driver library (`libcuda.so`) could be loaded.
    NoDriver {
        /// The model that was to run.
        model: &'static str,
    },
    /// The driver reported an error.
    Driver {
        model: &'static str,
        /// What was being done ("create a context on GPU 0", "load the PTX", ...).
        action: String,
        /// The driver's message.
        message: String,
    },
    /// The PTX or weights given are unusable.
    Input {
        model: &'static str,
        message: String,
    },
    /// The buffers do not describe whole rows of the model.
    Shape(crate::model::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDriver { model } => write!(
                f,
                "model `{model}`: no CUDA driver found (libcuda.so could not be loaded); \
                 hint: run on the CPU (`--device cpu`), or install the NVIDIA driver on a machine with a GPU"
            ),
            Error::Driver { model, action, message } => write!(
                f,
                "model `{model}`: CUDA error while trying to {action}: {message}; \
                 hint: check `nvidia-smi`, the GPU index, and that the GPU is sm_80 or newer (docs/cuda.md)"
            ),
            Error::Input { model, message } => write!(
                f,
                "model `{model}`: {message}; hint: rebuild the model with transpiler::Config::ptx(true) so that its PTX and weights match"
            ),
            Error::Shape(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::model::Error> for Error {
    fn from(e: crate::model::Error) -> Error {
        Error::Shape(e)
    }
}

/// Whether a CUDA driver library can be loaded on this machine (does not touch a GPU).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the driver library by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// One model's kernel, weights and streams on one GPU.
pub struct CudaModel {
    info: &'static ModelInfo,
    ctx: Arc<CudaContext>,
    streams: [Arc<CudaStream>; 2],
    func: CudaFunction,
    /// The in-kernel noise entry (`<entry>_philox`), for models with noise.
    philox: Option<CudaFunction>,
    weights: CudaSlice<f32>,
    device: String,
}

impl fmt::Debug for CudaModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaModel")
            .field("model", &self.info.name)
            .field("device", &self.device)
            .finish()
    }
}

impl CudaModel {
    /// Loads a model's PTX (`ptx`, entry `entry`) and weight blob (little-endian f32) on GPU
    /// `ordinal`. `info` is the compiled CPU model's description (same shapes).
    pub fn new(
        info: &'static ModelInfo,
        ptx: &str,
        entry: &str,
        weights: &[u8],
        ordinal: usize,
    ) -> Result<CudaModel, Error> {
        let model = info.name;
        if ptx.contains('\0') || entry.contains('\0') {
            return Err(Error::Input {
                model,
                message: "the PTX text or the entry name contains a NUL byte".into(),
            });
        }
        if !ptx.contains(&format!(".entry {entry}(")) {
            return Err(Error::Input {
                model,
                message: format!("the PTX has no kernel entry `{entry}`"),
            });
        }
        #[allow(clippy::manual_is_multiple_of)] // rust-version 1.85 predates is_multiple_of
        let ragged = weights.len() % 4 != 0;
        if ragged {
            return Err(Error::Input {
                model,
                message: format!(
                    "the weight blob has {} bytes, not a whole number of f32",
                    weights.len()
                ),
            });
        }
        if !driver_present() {
            return Err(Error::NoDriver { model });
        }
        let drv = |action: String| {
            move |e: cudarc::driver::DriverError| Error::Driver {
                model,
                action,
                message: e.to_string(),
            }
        };
        let ctx =
            CudaContext::new(ordinal).map_err(drv(format!("create a context on GPU {ordinal}")))?;
        let device = ctx.name().unwrap_or_else(|_| format!("GPU {ordinal}"));
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(drv("load the PTX".into()))?;
        let func = module
            .load_function(entry)
            .map_err(drv(format!("find kernel `{entry}`")))?;
        let philox_entry = format!("{entry}_philox");
        let philox = if ptx.contains(&format!(".entry {philox_entry}(")) {
            Some(
                module
                    .load_function(&philox_entry)
                    .map_err(drv(format!("find kernel `{philox_entry}`")))?,
            )
        } else {
            None
        };
        let s0 = ctx.new_stream().map_err(drv("create a stream".into()))?;
        let s1 = ctx.new_stream().map_err(drv("create a stream".into()))?;
        let floats: Vec<f32> = weights
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // At least one float, so the kernel always gets a valid pointer.
        let floats = if floats.is_empty() { vec![0.0] } else { floats };
        let w = s0
            .clone_htod(&floats)
            .map_err(drv("copy the weights to the GPU".into()))?;
        s0.synchronize()
            .map_err(drv("copy the weights to the GPU".into()))?;
        Ok(CudaModel {
            info,
            ctx,
            streams: [s0, s1],
            func,
            philox,
            weights: w,
            device,
        })
    }

    /// The model's description.
    pub fn info(&self) -> &'static ModelInfo {
        self.info
    }

    /// The GPU's name.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The GPU's nominal fp32 peak in FLOP/s (2 per FMA lane per cycle at the boost clock the
    /// driver reports), for "% of peak" figures; `None` for an unknown architecture.
    pub fn fp32_peak_flops(&self) -> Option<f64> {
        use cudarc::driver::sys::CUdevice_attribute as A;
        let get = |a| self.ctx.attribute(a).ok();
        let sms = get(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as f64;
        let khz = get(A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)? as f64;
        let cc = (
            get(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            get(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        );
        let lanes = fp32_lanes_per_sm(cc)? as f64;
        Some(sms * lanes * 2.0 * khz * 1e3)
    }

    /// Runs a batch (row-major buffers, as [`Model::run`]); returns the number of rows.
    pub fn run(&self, inputs: &[f32], noise: &[f32], out: &mut [f32]) -> Result<usize, Error> {
        let info = self.info;
        let model = info.name;
        let rows = check_rows(info, inputs.len(), noise.len(), out.len())?;
        if rows == 0 {
            return Ok(0);
        }
        let drv = |action: &'static str| {
            move |e: cudarc::driver::DriverError| Error::Driver {
                model,
                action: action.into(),
                message: e.to_string(),
            }
        };
        let (ni, nz, no) = (info.n_inputs, info.n_noise, info.n_outputs);
        if no == 0 {
            return Ok(rows);
        }
        let chunk = rows.min(CHUNK_ROWS);
        // Per stream: device buffers for one chunk (at least one float each).
        let mut bufs = Vec::with_capacity(2);
        for s in &self.streams {
            let a = s
                .alloc_zeros::<f32>((chunk * ni).max(1))
                .map_err(drv("allocate device memory"))?;
            let b = s
                .alloc_zeros::<f32>((chunk * nz).max(1))
                .map_err(drv("allocate device memory"))?;
            let c = s
                .alloc_zeros::<f32>((chunk * no).max(1))
                .map_err(drv("allocate device memory"))?;
            bufs.push((a, b, c));
        }
        let mut row0 = 0;
        for (k, out_chunk) in out.chunks_mut(chunk * no).enumerate() {
            let n = out_chunk.len() / no;
            let s = &self.streams[k % 2];
            let (din, dnz, dout) = &mut bufs[k % 2];
            if ni > 0 {
                s.memcpy_htod(
                    &inputs[row0 * ni..(row0 + n) * ni],
                    &mut din.slice_mut(0..n * ni),
                )
                .map_err(drv("copy inputs to the GPU"))?;
            }
            if nz > 0 {
                s.memcpy_htod(
                    &noise[row0 * nz..(row0 + n) * nz],
                    &mut dnz.slice_mut(0..n * nz),
                )
                .map_err(drv("copy noise to the GPU"))?;
            }
            let rows_u32 = n as u32;
            let cfg = LaunchConfig {
                grid_dim: ((n as u32).div_ceil(BLOCK), 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = s.launch_builder(&self.func);
            b.arg(&*din)
                .arg(&*dnz)
                .arg(&mut *dout)
                .arg(&self.weights)
                .arg(&rows_u32);
            // SAFETY: the kernel reads n rows of inputs/noise and writes n rows of outputs, all
            // within the buffers allocated above (chunk ≥ n rows each), and the weight blob.
            unsafe { b.launch(cfg) }.map_err(drv("launch the kernel"))?;
            s.memcpy_dtoh(&dout.slice(0..n * no), out_chunk)
                .map_err(drv("copy outputs from the GPU"))?;
            row0 += n;
        }
        for s in &self.streams {
            s.synchronize().map_err(drv("wait for the GPU"))?;
        }
        Ok(rows)
    }

    /// Runs a batch with the noise drawn in the kernel: row `r` gets draws `0 .. N_NOISE` of
    /// `(seed, events[r], particles[r], stream)`, exactly what
    /// [`crate::rng::fill_batch`]`(seed, stream, dist, 0, events, particles, noise)` gives on
    /// the CPU (same bits), then the model runs as in [`CudaModel::run`]. Returns the rows.
    pub fn run_with_philox(
        &self,
        seed: u64,
        stream: u8,
        events: &[u64],
        particles: &[u32],
        inputs: &[f32],
        out: &mut [f32],
    ) -> Result<usize, Error> {
        self.run_with_philox_at(seed, stream, 0, events, particles, inputs, out)
    }

    /// [`CudaModel::run_with_philox`] with draws `draw_offset .. draw_offset + N_NOISE`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_with_philox_at(
        &self,
        seed: u64,
        stream: u8,
        draw_offset: u32,
        events: &[u64],
        particles: &[u32],
        inputs: &[f32],
        out: &mut [f32],
    ) -> Result<usize, Error> {
        let info = self.info;
        let model = info.name;
        let rows = check_philox_rows(info, draw_offset, events, particles, inputs, out)?;
        let Some(func) = &self.philox else {
            if info.n_noise == 0 {
                // Nothing to draw: the plain kernel.
                return self.run(inputs, &[], out);
            }
            return Err(Error::Input {
                model,
                message: "the PTX has no in-kernel noise entry `<entry>_philox` (PTX written before the entry existed)".into(),
            });
        };
        if rows == 0 || info.n_outputs == 0 {
            return Ok(rows);
        }
        let drv = |action: &'static str| {
            move |e: cudarc::driver::DriverError| Error::Driver {
                model,
                action: action.into(),
                message: e.to_string(),
            }
        };
        let (ni, no) = (info.n_inputs, info.n_outputs);
        let chunk = rows.min(CHUNK_ROWS);
        let mut bufs = Vec::with_capacity(2);
        for s in &self.streams {
            let a = s
                .alloc_zeros::<f32>((chunk * ni).max(1))
                .map_err(drv("allocate device memory"))?;
            let c = s
                .alloc_zeros::<f32>((chunk * no).max(1))
                .map_err(drv("allocate device memory"))?;
            let e = s
                .alloc_zeros::<u64>(chunk)
                .map_err(drv("allocate device memory"))?;
            let p = s
                .alloc_zeros::<u32>(chunk)
                .map_err(drv("allocate device memory"))?;
            bufs.push((a, c, e, p));
        }
        let (seed_lo, seed_hi, stream_u32) = (seed as u32, (seed >> 32) as u32, stream as u32);
        let mut row0 = 0;
        for (k, out_chunk) in out.chunks_mut(chunk * no).enumerate() {
            let n = out_chunk.len() / no;
            let s = &self.streams[k % 2];
            let (din, dout, dev, dpa) = &mut bufs[k % 2];
            if ni > 0 {
                s.memcpy_htod(
                    &inputs[row0 * ni..(row0 + n) * ni],
                    &mut din.slice_mut(0..n * ni),
                )
                .map_err(drv("copy inputs to the GPU"))?;
            }
            s.memcpy_htod(&events[row0..row0 + n], &mut dev.slice_mut(0..n))
                .map_err(drv("copy event numbers to the GPU"))?;
            s.memcpy_htod(&particles[row0..row0 + n], &mut dpa.slice_mut(0..n))
                .map_err(drv("copy particle indices to the GPU"))?;
            let rows_u32 = n as u32;
            let cfg = LaunchConfig {
                grid_dim: ((n as u32).div_ceil(BLOCK), 1, 1),
                block_dim: (BLOCK, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut b = s.launch_builder(func);
            b.arg(&*din)
                .arg(&mut *dout)
                .arg(&self.weights)
                .arg(&rows_u32)
                .arg(&seed_lo)
                .arg(&seed_hi)
                .arg(&stream_u32)
                .arg(&*dev)
                .arg(&*dpa)
                .arg(&draw_offset);
            // SAFETY: the kernel reads n rows of inputs, event numbers and particle indices and
            // writes n rows of outputs, all within the buffers allocated above (chunk ≥ n rows
            // each), and the weight blob; the arguments follow the entry's parameter list.
            unsafe { b.launch(cfg) }.map_err(drv("launch the kernel"))?;
            s.memcpy_dtoh(&dout.slice(0..n * no), out_chunk)
                .map_err(drv("copy outputs from the GPU"))?;
            row0 += n;
        }
        for s in &self.streams {
            s.synchronize().map_err(drv("wait for the GPU"))?;
        }
        Ok(rows)
    }
}

/// FP32 FMA lanes per SM by compute capability (NVIDIA's published figures).
pub fn fp32_lanes_per_sm(cc: (i32, i32)) -> Option<u32> {
    match cc {
        (8, 0) => Some(64),
        (8, 6) | (8, 7) | (8, 9) => Some(128),
        (9, 0) => Some(128),
        (10, _) | (12, _) => Some(128),
        _ => None,
    }
}

/// Checks the buffers of a run with in-kernel noise: one event number and one particle index
/// per row, inputs and outputs of as many rows, draws within 0..2^32. Returns the rows.
fn check_philox_rows(
    info: &ModelInfo,
    draw_offset: u32,
    events: &[u64],
    particles: &[u32],
    inputs: &[f32],
    out: &[f32],
) -> Result<usize, Error> {
    let model = info.name;
    let rows = events.len();
    let shape = |what, expected, got| {
        Error::Shape(crate::model::Error::Shape {
            model,
            what,
            expected,
            got,
        })
    };
    if particles.len() != rows {
        return Err(shape("particles", rows, particles.len()));
    }
    if inputs.len() != rows * info.n_inputs {
        return Err(shape("inputs", rows * info.n_inputs, inputs.len()));
    }
    if out.len() != rows * info.n_outputs {
        return Err(shape("outputs", rows * info.n_outputs, out.len()));
    }
    if draw_offset as u64 + info.n_noise as u64 > 1 << 32 {
        return Err(Error::Input {
            model,
            message: format!(
                "draws {draw_offset}..{draw_offset}+{} leave the draw-index range 0..2^32",
                info.n_noise
            ),
        });
    }
    Ok(rows)
}

/// The device a model runs on: the GPU, or the compiled CPU model.
pub enum Backend {
    Cuda(CudaModel),
    Cpu(&'static dyn Model),
}

impl Backend {
    /// Runs a batch on the chosen device; returns the number of rows.
    pub fn run(&self, inputs: &[f32], noise: &[f32], out: &mut [f32]) -> Result<usize, Error> {
        match self {
            Backend::Cuda(m) => m.run(inputs, noise, out),
            Backend::Cpu(m) => Ok(m.run(inputs, noise, out)?),
        }
    }

    /// Runs a batch with the noise of `(seed, events[r], particles[r], stream)`, draws
    /// `0 .. N_NOISE` per row: in the kernel on the GPU ([`CudaModel::run_with_philox`]), with
    /// [`crate::rng::fill_batch`] on the CPU. Both give the same noise bits.
    pub fn run_with_philox(
        &self,
        seed: u64,
        stream: u8,
        events: &[u64],
        particles: &[u32],
        inputs: &[f32],
        out: &mut [f32],
    ) -> Result<usize, Error> {
        match self {
            Backend::Cuda(m) => m.run_with_philox(seed, stream, events, particles, inputs, out),
            Backend::Cpu(m) => {
                let info = m.info();
                let rows = check_philox_rows(info, 0, events, particles, inputs, out)?;
                let mut noise = vec![0f32; rows * info.n_noise];
                let dist = match info.noise {
                    crate::model::Noise::Normal => Some(crate::rng::Distribution::Normal),
                    crate::model::Noise::Uniform => Some(crate::rng::Distribution::Uniform),
                    crate::model::Noise::None => None,
                };
                if let Some(dist) = dist {
                    crate::rng::fill_batch(seed, stream, dist, 0, events, particles, &mut noise);
                }
                m.run(inputs, &noise, out)?;
                Ok(rows)
            }
        }
    }

    /// `"cuda (<GPU name>)"` or `"cpu"`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cuda(m) => format!("cuda ({})", m.device()),
            Backend::Cpu(_) => "cpu".into(),
        }
    }

    /// Whether this is the GPU.
    pub fn is_cuda(&self) -> bool {
        matches!(self, Backend::Cuda(_))
    }
}

/// The GPU model when `gpu` is `Ok`, else the CPU model `cpu` and a one-line notice saying why.
pub fn or_cpu(cpu: &'static dyn Model, gpu: Result<CudaModel, Error>) -> (Backend, Option<String>) {
    match gpu {
        Ok(m) => (Backend::Cuda(m), None),
        Err(e) => {
            let reason = e.to_string();
            let reason = reason.split("; hint:").next().unwrap_or(&reason);
            let prefix = format!("model `{}`: ", cpu.info().name);
            let reason = reason.strip_prefix(&prefix).unwrap_or(reason).to_owned();
            (
                Backend::Cpu(cpu),
                Some(format!(
                    "notice: running `{}` on the CPU: {reason}",
                    cpu.info().name
                )),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelInfo, Noise};
    use crate::Tier;

    /// A CPU model: `y = 2x`.
    struct Double;
    static INFO: ModelInfo = ModelInfo {
        name: "double",
        source: "test",
        n_inputs: 1,
        n_noise: 0,
        n_outputs: 1,
        input_columns: &["x"],
        output_columns: &["y"],
        noise: Noise::None,
        macs_per_row: 0,
    };
    impl Model for Double {
        fn info(&self) -> &'static ModelInfo {
            &INFO
        }
        fn run_unchecked(
            &self,
            _tier: Tier,
            rows: usize,
            inputs: &[f32],
            _noise: &[f32],
            out: &mut [f32],
        ) {
            for r in 0..rows {
                out[r] = 2.0 * inputs[r];
            }
        }
    }
    static DOUBLE: Double = Double;

    const PTX: &str = ".version 7.8\n.target sm_80\n.address_size 64\n.visible .entry flashc_double(\n\t.param .u64 a\n)\n{\n\tret;\n}\n";

    #[test]
    fn creating_a_model_never_panics_and_names_the_problem() {
        let r = CudaModel::new(&INFO, PTX, "flashc_double", &[0; 8], 0);
        if driver_present() {
            // A machine with a driver: either it works, or the driver's error is reported.
            if let Err(e) = r {
                assert!(matches!(e, Error::Driver { .. }), "{e}");
            }
        } else {
            let e = r.unwrap_err();
            assert_eq!(e, Error::NoDriver { model: "double" });
            let msg = e.to_string();
            assert!(
                msg.contains("model `double`")
                    && msg.contains("no CUDA driver")
                    && msg.contains("--device cpu"),
                "{msg}"
            );
        }
    }

    #[test]
    fn bad_ptx_or_weights_are_errors_before_the_driver_is_touched() {
        let e = CudaModel::new(&INFO, PTX, "flashc_other", &[], 0).unwrap_err();
        assert!(
            matches!(&e, Error::Input { .. })
                && e.to_string().contains("no kernel entry `flashc_other`"),
            "{e}"
        );
        let e = CudaModel::new(&INFO, PTX, "flashc_double", &[0; 6], 0).unwrap_err();
        assert!(e.to_string().contains("6 bytes"), "{e}");
        let e = CudaModel::new(&INFO, "nul\0", "flashc_double", &[], 0).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn or_cpu_falls_back_with_a_one_line_notice() {
        let (backend, notice) = or_cpu(&DOUBLE, Err(Error::NoDriver { model: "double" }));
        assert!(!backend.is_cuda());
        assert_eq!(backend.describe(), "cpu");
        let notice = notice.unwrap();
        assert!(!notice.contains('\n'), "{notice}");
        assert!(
            notice.starts_with("notice: running `double` on the CPU: ")
                && notice.contains("no CUDA driver"),
            "{notice}"
        );
        let mut out = [0.0f32; 3];
        assert_eq!(backend.run(&[1.0, 2.0, 3.5], &[], &mut out).unwrap(), 3);
        assert_eq!(out, [2.0, 4.0, 7.0]);
        // Shape errors come through as errors, on either device.
        let e = backend.run(&[1.0, 2.0], &[], &mut out).unwrap_err();
        assert!(matches!(e, Error::Shape(_)), "{e}");
    }

    /// A CPU model with noise: `y = x + z`.
    struct AddNoise;
    static NOISY: ModelInfo = ModelInfo {
        name: "add_noise",
        source: "test",
        n_inputs: 1,
        n_noise: 1,
        n_outputs: 1,
        input_columns: &["x"],
        output_columns: &["y"],
        noise: Noise::Normal,
        macs_per_row: 0,
    };
    impl Model for AddNoise {
        fn info(&self) -> &'static ModelInfo {
            &NOISY
        }
        fn run_unchecked(
            &self,
            _tier: Tier,
            rows: usize,
            inputs: &[f32],
            noise: &[f32],
            out: &mut [f32],
        ) {
            for r in 0..rows {
                out[r] = inputs[r] + noise[r];
            }
        }
    }
    static ADD_NOISE: AddNoise = AddNoise;

    #[test]
    fn cpu_backend_runs_with_the_rng_noise_of_each_row() {
        let backend = Backend::Cpu(&ADD_NOISE);
        let events = [0u64, 1 << 40, 7, 7];
        let particles = [0u32, 3, 1, 2];
        let x = [0.0f32, 10.0, 20.0, 30.0];
        let mut out = [f32::NAN; 4];
        let rows = backend
            .run_with_philox(99, 5, &events, &particles, &x, &mut out)
            .unwrap();
        assert_eq!(rows, 4);
        for r in 0..4 {
            let z = crate::rng::Stream::new(99, events[r], particles[r], 5).normal(0);
            assert_eq!(out[r], x[r] + z, "row {r}");
        }
        // One event number and one particle index per row.
        let e = backend
            .run_with_philox(99, 5, &events[..3], &particles, &x[..3], &mut out[..3])
            .unwrap_err();
        assert!(
            matches!(e, Error::Shape(_)) && e.to_string().contains("particles"),
            "{e}"
        );
    }

    #[test]
    fn model_creation_feeds_or_cpu_on_any_machine() {
        let (backend, notice) =
            or_cpu(&DOUBLE, CudaModel::new(&INFO, PTX, "flashc_double", &[], 0));
        if driver_present() {
            // With a driver: the GPU, or the CPU with the driver's reason.
            assert!(backend.is_cuda() || notice.is_some_and(|n| n.contains("CUDA error")));
        } else {
            assert!(!backend.is_cuda());
            assert!(notice.unwrap().contains("no CUDA driver"));
        }
    }
}
