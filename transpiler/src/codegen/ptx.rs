//! PTX code generation: one CUDA kernel per model, from the same planned [`Program`] as the
//! Rust backend.
//!
//! # Execution model
//!
//! * **One thread per row.** The entry `flashc_<name>` is launched with blocks of [`BLOCK`]
//!   threads; thread `blockIdx.x · BLOCK + threadIdx.x` computes batch row `row`. Threads past
//!   the last row compute a copy of the last row (so that every thread reaches every barrier)
//!   and store nothing.
//! * **Buffers.** The plan's slots become per-thread `.local` arrays (one row each; the
//!   hardware interleaves local memory so that a warp's accesses to the same slot offset
//!   coalesce). Inputs, noise and outputs are row-major global buffers; the weight blob is one
//!   global buffer, each array at the plan's offset.
//! * **Dense layers.** For each panel of 16 output columns the block stages the packed weights
//!   through shared memory in chunks of [`K_TILE`] input rows (`K_TILE × 16` floats, loaded
//!   cooperatively), and every thread keeps its 16 accumulators in registers. The epilogue
//!   (bias, residual before or after the activation, activation) runs in the same kernel on
//!   the thread's row.
//! * **Rounding.** Every f32/f64 operation carries an explicit rounding mode (`add.rn`,
//!   `mul.rn`, `div.rn`, `fma.rn`, `sqrt.rn`), so ptxas never contracts a `mul` and an `add`
//!   into an FMA: an FMA appears exactly where the CPU kernels use one. Dense sums run in the
//!   CPU kernel's order (`acc = fma(x_k, w_k, acc)` for `k = 0, 1, …`, then `+ bias`).
//! * **Math.** `exp`, `log`, `tanh`, `sigmoid`, `erf`/`Φ`, `expm1`, `softplus` are the
//!   runtime's f32 polynomials (`runtime/src/math.rs`) step by step; the f64 functions of the
//!   pre/post-processing (`erfc`, `Φ`, `Φ⁻¹`, used by the quantile transform) follow the
//!   runtime's f64 code, with this module's own f64 `exp` and `ln` (the CPU uses the platform
//!   libm there, so those agree to about one ulp, not bit for bit).
//! * **Noise** comes from the caller's noise buffer in `flashc_<name>`, as on the CPU. For a
//!   model with noise two more entries draw it in the kernel with the runtime's
//!   `rng::fill_batch` algorithm, bit for bit: Philox4x32-10 (`mul.hi.u32`/`mul.lo.u32`, key =
//!   seed, counter = (draw block, particle, event bits 0..32, event bits 32..48 | stream << 16 |
//!   domain << 24)), uniforms `(2·(x >> 9) + 1)·2^-24`, and Box-Muller with the runtime's own
//!   `ln`/`sin`/`cos` polynomials in separately rounded `.rn` operations (no FMA, like the CPU).
//!
//! # Kernel ABI
//!
//! ```text
//! .entry flashc_<name>(.u64 inputs, .u64 noise, .u64 outputs, .u64 weights, .u32 rows)
//! ```
//! `inputs`: `rows × N_INPUTS` f32; `noise`: `rows × N_NOISE` f32 (may be null without
//! noise); `outputs`: `rows × N_OUTPUTS` f32; `weights`: the model's weight blob
//! (`<name>.weights.bin`, little-endian f32, 16-byte aligned). Grid: `ceil(rows / BLOCK)`
//! blocks of [`BLOCK`] threads, no dynamic shared memory.
//!
//! Models with noise also get
//!
//! ```text
//! .entry flashc_<name>_philox(.u64 inputs, .u64 outputs, .u64 weights, .u32 rows,
//!                             .u32 seed_lo, .u32 seed_hi, .u32 stream,
//!                             .u64 events, .u64 particles, .u32 draw_offset)
//! .entry flashc_<name>_draw_noise(.u64 noise, .u32 rows, .u32 seed_lo, .u32 seed_hi,
//!                                 .u32 stream, .u64 events, .u64 particles, .u32 draw_offset)
//! ```
//! `events`: `rows` u64 event numbers, `particles`: `rows` u32 particle indices; row `r` gets
//! draws `draw_offset .. draw_offset + N_NOISE` of `(seed, events[r], particles[r], stream)`,
//! the model's distribution. `_philox` then runs the model like `flashc_<name>`; `_draw_noise`
//! only writes the noise (`rows × N_NOISE` f32), to compare it with the CPU's.
//!
//! Unlike the Rust backend this one can fail: a model whose per-row buffers do not fit a
//! thread's local memory budget is reported as an [`Error::Invalid`] naming the node and op.

// Fitted coefficients are written as fitted (the runtime's text).
#![allow(clippy::excessive_precision, clippy::approx_constant)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::{Error, Problem};
use crate::ir::{Activation, Distribution, ValidModel};
use crate::passes::plan::{Buf, Program, Step, PANEL};

/// Threads per block (rows per block).
pub const BLOCK: u32 = 128;
/// Input rows of a dense kernel panel staged in shared memory at a time.
pub const K_TILE: usize = 32;
/// Largest width of one value (columns of one row) the backend accepts.
pub const MAX_WIDTH: usize = 4096;
/// Largest per-thread local memory for the row buffers, in bytes.
pub const MAX_LOCAL_BYTES: usize = 64 * 1024;
/// PTX ISA version written in the header.
pub const PTX_VERSION: &str = "7.8";
/// Oldest target the PTX is written for (the driver JITs it forward to newer GPUs).
pub const PTX_TARGET: &str = "sm_80";

/// The kernel's entry name for model `name`.
pub fn entry_name(name: &str) -> String {
    format!("flashc_{name}")
}

/// The in-kernel noise entry of model `name` (models with noise only): draws the noise with
/// Philox4x32-10 + Box-Muller in the kernel, then runs the model.
pub fn philox_entry_name(name: &str) -> String {
    format!("flashc_{name}_philox")
}

/// The noise-only entry of model `name` (models with noise only): writes the noise the
/// [`philox_entry_name`] kernel draws, without running the model. (Not `flashc_<name>_noise`:
/// that is the name of the model entry's noise parameter, and ptxas crashes on the clash.)
pub fn noise_entry_name(name: &str) -> String {
    format!("flashc_{name}_draw_noise")
}

/// File name of a model's PTX.
pub fn ptx_file_name(name: &str) -> String {
    format!("{name}.ptx")
}

/// Ops this backend does not support yet: a model using one has no PTX ([`generate`] fails,
/// naming the node; `Config::ptx` then compiles the model for the CPU only).
pub const UNSUPPORTED_OPS: &[&str] = &["flow"];

/// The nodes of `model` whose op this backend does not support (see [`UNSUPPORTED_OPS`]).
pub fn unsupported_nodes(model: &ValidModel) -> Vec<(&str, &'static str)> {
    model.model().nodes.iter().filter(|n| UNSUPPORTED_OPS.contains(&n.op.name())).map(|n| (n.name.as_str(), n.op.name())).collect()
}

/// The PTX of a validated (unoptimised) model: optimises and plans it like the Rust backend.
pub fn generate(model: &ValidModel) -> Result<String, Error> {
    let program = crate::passes::plan(&crate::passes::optimise(model));
    let ops: BTreeMap<String, String> = model
        .model()
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.op.name().to_owned()))
        .collect();
    model_ptx_with_ops(&program, &ops)
}

/// The PTX of a planned program. Op names in errors are derived from the step kind.
pub fn model_ptx(p: &Program) -> Result<String, Error> {
    model_ptx_with_ops(p, &BTreeMap::new())
}

fn step_node(s: &Step) -> Option<(&str, &'static str)> {
    Some(match s {
        Step::Dense { node, .. } => (node, "dense"),
        Step::Act { node, .. } => (node, "activation"),
        Step::Affine { node, .. } => (node, "affine"),
        Step::ScaleShift { node, .. } => (node, "batchnorm"),
        Step::Quantile { node, .. } => (node, "quantile"),
        Step::Logit { node, .. } => (node, "logit"),
        Step::MatMul { node, .. } => (node, "decorrelate"),
        Step::LayerNorm { node, .. } => (node, "layernorm"),
        Step::Add { node, .. } => (node, "add"),
        Step::Mul { node, .. } => (node, "mul"),
        Step::Flow { node, .. } => (node, "flow"),
        _ => return None,
    })
}

fn step_width(s: &Step) -> usize {
    match s {
        Step::Dense { n_in, n_out, .. } => (*n_in).max(*n_out),
        Step::Act { width, .. }
        | Step::ScaleShift { width, .. }
        | Step::LayerNorm { width, .. }
        | Step::Add { width, .. }
        | Step::Mul { width, .. } => *width,
        Step::MatMul { n, .. } => *n,
        Step::Affine { cols, .. } | Step::Quantile { cols, .. } | Step::Logit { cols, .. } => {
            cols.iter().map(|&c| c as usize + 1).max().unwrap_or(0)
        }
        Step::LoadInput { width, .. }
        | Step::LoadNoise { width, .. }
        | Step::Copy { width, .. } => *width,
        Step::Store { width, .. } => *width,
        Step::Flow { .. } => 0,
    }
}

/// Checks what the backend cannot do; every problem names the node and its op.
fn check(p: &Program, ops: &BTreeMap<String, String>) -> Result<(), Error> {
    let mut problems = Vec::new();
    let op_of = |node: &str, kind: &str| ops.get(node).cloned().unwrap_or_else(|| kind.to_owned());
    let mut unsupported = std::collections::BTreeSet::new();
    for s in &p.steps {
        if let Step::Flow { node, .. } = s {
            if unsupported.insert(node.as_str()) {
                problems.push(Problem::node(
                    &p.source,
                    node,
                    &op_of(node, "flow"),
                    "the PTX backend does not support op flow (normalizing flows) yet",
                    "run this model on the CPU (`--device cpu`); a build that compiles PTX skips it (see docs/cuda.md)",
                ));
            }
            continue;
        }
        if let Some((node, kind)) = step_node(s) {
            let w = step_width(s);
            if w > MAX_WIDTH {
                problems.push(Problem::node(
                    &p.source,
                    node,
                    &op_of(node, kind),
                    format!("the PTX backend does not support values wider than {MAX_WIDTH} columns per row (this one has {w})"),
                    "the CUDA backend keeps each row in one thread's local memory; run this model on the CPU (`--device cpu`) or split the layer",
                ));
            }
        }
    }
    let local: usize = p.slots.iter().sum::<usize>() * 4;
    if problems.is_empty() && local > MAX_LOCAL_BYTES {
        // Name the widest node: it sets the largest buffer.
        let widest = p
            .steps
            .iter()
            .filter_map(|s| step_node(s).map(|(n, k)| (step_width(s), n, k)))
            .max_by_key(|(w, _, _)| *w);
        let message = format!(
            "the PTX backend does not support this model: its row buffers need {local} bytes of local memory per thread (at most {MAX_LOCAL_BYTES})"
        );
        let hint = "run this model on the CPU (`--device cpu`), or reduce the widths of its layers";
        problems.push(match widest {
            Some((_, n, k)) => Problem::node(&p.source, n, &op_of(n, k), message, hint),
            None => Problem::model(&p.source, message, hint),
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            file: p.source.clone(),
            problems,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A PTX function under construction: virtual registers, labels, body text.

#[derive(Clone, Copy)]
enum K {
    F,
    D,
    R,
    Rd,
    P,
}

const KINDS: [(K, &str, &str); 5] = [
    (K::P, ".pred", "%p"),
    (K::R, ".b32", "%r"),
    (K::Rd, ".b64", "%rd"),
    (K::F, ".f32", "%f"),
    (K::D, ".f64", "%fd"),
];

fn kind_index(k: K) -> usize {
    match k {
        K::P => 0,
        K::R => 1,
        K::Rd => 2,
        K::F => 3,
        K::D => 4,
    }
}

/// f32 immediate.
fn fl(v: f32) -> String {
    format!("0f{:08X}", v.to_bits())
}

/// f64 immediate.
fn dl(v: f64) -> String {
    format!("0d{:016X}", v.to_bits())
}

#[derive(Default)]
struct Fb {
    body: String,
    count: [usize; 5],
    labels: usize,
    /// Math functions called (closed over their dependencies when the module is written).
    calls: Vec<Math>,
}

impl Fb {
    fn reg(&mut self, k: K) -> String {
        let i = kind_index(k);
        self.count[i] += 1;
        format!("{}{}", KINDS[i].2, self.count[i])
    }
    fn line(&mut self, s: impl AsRef<str>) {
        self.body.push('\t');
        self.body.push_str(s.as_ref());
        self.body.push('\n');
    }
    fn comment(&mut self, s: impl AsRef<str>) {
        self.line(format!("// {}", s.as_ref()));
    }
    fn label(&mut self) -> String {
        self.labels += 1;
        format!("$L{}", self.labels)
    }
    fn place(&mut self, l: &str) {
        self.body.push_str(l);
        self.body.push_str(":\n");
    }
    /// `dst = op args` into a fresh register.
    fn op(&mut self, k: K, op: &str, args: &[&str]) -> String {
        let d = self.reg(k);
        self.line(format!("{op} {d}, {};", args.join(", ")));
        d
    }
    /// `dst = op args` into an existing register.
    fn op_to(&mut self, d: &str, op: &str, args: &[&str]) {
        self.line(format!("{op} {d}, {};", args.join(", ")));
    }
    fn decls(&self) -> String {
        let mut s = String::new();
        for (i, (_, ty, pre)) in KINDS.iter().enumerate() {
            if self.count[i] > 0 {
                let _ = writeln!(s, "\t.reg {ty} {pre}<{}>;", self.count[i] + 1);
            }
        }
        s
    }

    // f32 arithmetic, every op explicitly rounded.
    fn add(&mut self, a: &str, b: &str) -> String {
        self.op(K::F, "add.rn.f32", &[a, b])
    }
    fn sub(&mut self, a: &str, b: &str) -> String {
        self.op(K::F, "sub.rn.f32", &[a, b])
    }
    fn mul(&mut self, a: &str, b: &str) -> String {
        self.op(K::F, "mul.rn.f32", &[a, b])
    }
    fn div(&mut self, a: &str, b: &str) -> String {
        self.op(K::F, "div.rn.f32", &[a, b])
    }
    fn fma(&mut self, a: &str, b: &str, c: &str) -> String {
        self.op(K::F, "fma.rn.f32", &[a, b, c])
    }
    /// `a < b ? t : f` (false for NaN), the runtime's `lt_select`.
    fn lt_select(&mut self, a: &str, b: &str, t: &str, f: &str) -> String {
        let p = self.op(K::P, "setp.lt.f32", &[a, b]);
        self.op(K::F, "selp.f32", &[t, f, &p])
    }
    /// The runtime's `min(a, b)`: `a < b ? a : b`.
    fn min(&mut self, a: &str, b: &str) -> String {
        self.lt_select(a, b, a, b)
    }
    /// The runtime's `max(a, b)`: `a > b ? a : b`.
    fn max(&mut self, a: &str, b: &str) -> String {
        let p = self.op(K::P, "setp.gt.f32", &[a, b]);
        self.op(K::F, "selp.f32", &[a, b, &p])
    }
    fn abs(&mut self, x: &str) -> String {
        let b = self.op(K::R, "mov.b32", &[x]);
        let b = self.op(K::R, "and.b32", &[&b, "0x7FFFFFFF"]);
        self.op(K::F, "mov.b32", &[&b])
    }
    /// Horner with FMA: `c[0]` then `y = y·x + c[i]`.
    fn poly(&mut self, x: &str, c: &[f32]) -> String {
        let mut y = self.op(K::F, "mov.f32", &[&fl(c[0])]);
        for &ci in &c[1..] {
            y = self.fma(&y, x, &fl(ci));
        }
        y
    }
    /// Round to nearest integer, the runtime's magic-number trick.
    fn round(&mut self, x: &str) -> String {
        const MAGIC: f32 = 12582912.0;
        let t = self.add(x, &fl(MAGIC));
        self.sub(&t, &fl(MAGIC))
    }
    fn pow2i(&mut self, n: &str) -> String {
        let i = self.op(K::R, "cvt.rzi.s32.f32", &[n]);
        let i = self.op(K::R, "add.s32", &[&i, "127"]);
        let i = self.op(K::R, "shl.b32", &[&i, "23"]);
        self.op(K::F, "mov.b32", &[&i])
    }

    // f64 arithmetic.
    fn dadd(&mut self, a: &str, b: &str) -> String {
        self.op(K::D, "add.rn.f64", &[a, b])
    }
    fn dsub(&mut self, a: &str, b: &str) -> String {
        self.op(K::D, "sub.rn.f64", &[a, b])
    }
    fn dmul(&mut self, a: &str, b: &str) -> String {
        self.op(K::D, "mul.rn.f64", &[a, b])
    }
    fn ddiv(&mut self, a: &str, b: &str) -> String {
        self.op(K::D, "div.rn.f64", &[a, b])
    }
    fn dfma(&mut self, a: &str, b: &str, c: &str) -> String {
        self.op(K::D, "fma.rn.f64", &[a, b, c])
    }

    /// `base + idx·scale` (idx a u32 register or immediate).
    fn addr(&mut self, base: &str, idx: &str, scale: u32) -> String {
        let t = self.op(K::Rd, "mul.wide.u32", &[idx, &scale.to_string()]);
        self.op(K::Rd, "add.s64", &[base, &t])
    }

    /// `for i in 0..count` (count a u32 register or immediate; zero trips allowed).
    fn for_range(&mut self, count: &str, body: impl FnOnce(&mut Fb, &str)) {
        let i = self.reg(K::R);
        let (head, end) = (self.label(), self.label());
        self.op_to(&i, "mov.u32", &["0"]);
        self.place(&head);
        let p = self.op(K::P, "setp.ge.u32", &[&i, count]);
        self.line(format!("@{p} bra {end};"));
        body(self, &i);
        self.op_to(&i, "add.u32", &[&i, "1"]);
        self.line(format!("bra {head};"));
        self.place(&end);
    }

    /// Calls math function `m` on `args` (registers of the function's parameter types).
    fn call(&mut self, m: Math, args: &[&str]) -> String {
        if !self.calls.contains(&m) {
            self.calls.push(m);
        }
        let (ret, params) = m.signature();
        self.line("{");
        let mut names = Vec::new();
        for (i, (ty, a)) in params.iter().zip(args).enumerate() {
            let (decl, st) = param_types(*ty);
            self.line(format!("\t.param {decl} a{i};"));
            self.line(format!("\tst.param{st} [a{i}], {a};"));
            names.push(format!("a{i}"));
        }
        let (decl, st) = param_types(ret);
        self.line(format!("\t.param {decl} r0;"));
        self.line(format!(
            "\tcall (r0), {}, ({});",
            m.name(),
            names.join(", ")
        ));
        let d = self.reg(ret);
        self.line(format!("\tld.param{st} {d}, [r0];"));
        self.line("}");
        d
    }
}

fn param_types(k: K) -> (&'static str, &'static str) {
    match k {
        K::F => (".b32", ".f32"),
        K::D => (".b64", ".f64"),
        K::R | K::P => (".b32", ".u32"),
        K::Rd => (".b64", ".u64"),
    }
}

// ---------------------------------------------------------------------------------------------
// Math functions, mirroring runtime/src/math.rs as of 2026-11-24: f32 `exp` (EXP_P), `log`
// (LOG_P), `tanh` (rational TANH_NUM/TANH_DEN, clamp 8.95), `erf`/`Φ` (ERF_P, ERFC_Q, cut 0.9),
// `expm1` (cut 0.35); f64 `norm_ppf` (Acklam + one Halley step). The f64 `erfc` here is the
// series (|x| < 2) / continued fraction form; the runtime's may use another expansion, and both
// agree to ~1e-15 relative.
const EXP_P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    5.000_000_1e-1,
];
const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333_1e-1,
];
const TANH_NUM: [f32; 7] = [
    -8.488_721e-14,
    5.277_950_6e-11,
    -2.022_522_6e-8,
    1.115_430_8e-5,
    3.103_956e-3,
    1.308_401e-1,
    1.0,
];
const TANH_DEN: [f32; 4] = [2.546_145e-4, 2.449_517_7e-2, 4.641_733_8e-1, 1.0];
const TANH_CLAMP: f32 = 8.95;
const ERF_P: [f32; 6] = [
    -6.123_237_5e-4,
    5.019_121e-3,
    -2.678_451e-2,
    1.128_232_8e-1,
    -3.761_254_8e-1,
    1.128_379_2,
];
const ERFC_Q: [f32; 9] = [
    -2.334_299e-1,
    6.251_366_7e-1,
    -4.283_593_5e-1,
    -7.876_803_7e-2,
    -6.867_249e-2,
    7.097_353_6e-2,
    3.778_497_7e-1,
    9.996_904e-1,
    -1.265_498_8,
];
const ERF_CUT: f32 = 0.9;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Math {
    ExpF32,
    LogF32,
    TanhF32,
    SigmoidF32,
    PhiF32,
    Expm1F32,
    Softplus1F32,
    ExpF64,
    LogF64,
    ErfcF64,
    NormCdfF64,
    NormPpfF64,
    Interp,
    QuantileFwd,
    QuantileInv,
}

impl Math {
    const ALL: [Math; 15] = [
        Math::ExpF32,
        Math::LogF32,
        Math::TanhF32,
        Math::SigmoidF32,
        Math::PhiF32,
        Math::Expm1F32,
        Math::Softplus1F32,
        Math::ExpF64,
        Math::LogF64,
        Math::ErfcF64,
        Math::NormCdfF64,
        Math::NormPpfF64,
        Math::Interp,
        Math::QuantileFwd,
        Math::QuantileInv,
    ];
    fn name(self) -> &'static str {
        match self {
            Math::ExpF32 => "flashc_exp_f32",
            Math::LogF32 => "flashc_log_f32",
            Math::TanhF32 => "flashc_tanh_f32",
            Math::SigmoidF32 => "flashc_sigmoid_f32",
            Math::PhiF32 => "flashc_phi_f32",
            Math::Expm1F32 => "flashc_expm1_f32",
            Math::Softplus1F32 => "flashc_softplus1_f32",
            Math::ExpF64 => "flashc_exp_f64",
            Math::LogF64 => "flashc_log_f64",
            Math::ErfcF64 => "flashc_erfc_f64",
            Math::NormCdfF64 => "flashc_norm_cdf_f64",
            Math::NormPpfF64 => "flashc_norm_ppf_f64",
            Math::Interp => "flashc_interp",
            Math::QuantileFwd => "flashc_quantile_forward",
            Math::QuantileInv => "flashc_quantile_inverse",
        }
    }
    /// (return type, parameter types).
    fn signature(self) -> (K, &'static [K]) {
        match self {
            Math::ExpF32
            | Math::LogF32
            | Math::TanhF32
            | Math::SigmoidF32
            | Math::PhiF32
            | Math::Expm1F32
            | Math::Softplus1F32 => (K::F, &[K::F]),
            Math::ExpF64 | Math::LogF64 | Math::ErfcF64 | Math::NormCdfF64 | Math::NormPpfF64 => {
                (K::D, &[K::D])
            }
            // x, xp, fp, n, reversed
            Math::Interp => (K::D, &[K::D, K::Rd, K::Rd, K::R, K::R]),
            // x, quantiles, references, n, normal, bounds_threshold, clip_lo, clip_hi
            Math::QuantileFwd => (K::D, &[K::D, K::Rd, K::Rd, K::R, K::R, K::D, K::D, K::D]),
            // y, quantiles, references, n, normal, bounds_threshold
            Math::QuantileInv => (K::D, &[K::D, K::Rd, K::Rd, K::R, K::R, K::D]),
        }
    }

    /// The body; `a` are the parameter registers. Returns the result register.
    fn body(self, f: &mut Fb, a: &[String]) -> String {
        match self {
            Math::ExpF32 => exp_f32(f, &a[0]),
            Math::LogF32 => log_f32(f, &a[0]),
            Math::TanhF32 => {
                // a = clamp(x, ±8.95); clamp(a·P(a²)/Q(a²), −1, 1)
                let x = &a[0];
                let m = f.min(&fl(TANH_CLAMP), x);
                let a = f.max(&fl(-TANH_CLAMP), &m);
                let z = f.mul(&a, &a);
                let p = f.poly(&z, &TANH_NUM);
                let q = f.poly(&z, &TANH_DEN);
                let ap = f.mul(&a, &p);
                let y = f.div(&ap, &q);
                let y = f.min(&fl(1.0), &y);
                f.max(&fl(-1.0), &y)
            }
            Math::SigmoidF32 => {
                let x = &a[0];
                let ax = f.abs(x);
                let m = f.sub(&fl(0.0), &ax);
                let e = f.call(Math::ExpF32, &[&m]);
                let d = f.add(&fl(1.0), &e);
                let pos = f.div(&fl(1.0), &d);
                let neg = f.div(&e, &d);
                f.lt_select(x, &fl(0.0), &neg, &pos)
            }
            Math::PhiF32 => {
                let x = &a[0];
                let u = f.mul(x, &fl(core::f32::consts::FRAC_1_SQRT_2));
                let au = f.abs(&u);
                let es = erf_small(f, &u);
                let small = f.fma(&es, &fl(0.5), &fl(0.5));
                let eb = erfc_big(f, &au);
                let c = f.mul(&eb, &fl(0.5));
                let one_c = f.sub(&fl(1.0), &c);
                let big = f.lt_select(x, &fl(0.0), &c, &one_c);
                f.lt_select(&au, &fl(ERF_CUT), &small, &big)
            }
            Math::Expm1F32 => {
                let x = &a[0];
                let t: [f32; 7] = [
                    1.0 / 40320.0,
                    1.0 / 5040.0,
                    1.0 / 720.0,
                    1.0 / 120.0,
                    1.0 / 24.0,
                    1.0 / 6.0,
                    0.5,
                ];
                let x2 = f.mul(x, x);
                let px = f.poly(x, &t);
                let small = f.fma(&x2, &px, x);
                let e = f.call(Math::ExpF32, &[x]);
                let big = f.sub(&e, &fl(1.0));
                let ax = f.abs(x);
                f.lt_select(&ax, &fl(0.35), &small, &big)
            }
            Math::Softplus1F32 => {
                let x = &a[0];
                let ax = f.abs(x);
                let m = f.sub(&fl(0.0), &ax);
                let e = f.call(Math::ExpF32, &[&m]);
                // log1p_pos(e)
                let w = f.add(&fl(1.0), &e);
                let d = f.sub(&w, &fl(1.0));
                let lw = f.call(Math::LogF32, &[&w]);
                let dm = f.max(&d, &fl(f32::MIN_POSITIVE));
                let q = f.div(&e, &dm);
                let r = f.mul(&lw, &q);
                let l1p = f.lt_select(&e, &fl(1e-7), &e, &r);
                let pos = f.max(&fl(0.0), x);
                f.add(&pos, &l1p)
            }
            Math::ExpF64 => exp_f64(f, &a[0]),
            Math::LogF64 => log_f64(f, &a[0]),
            Math::ErfcF64 => erfc_f64(f, &a[0]),
            Math::NormCdfF64 => {
                // 0.5 · erfc(−x / √2)
                let nx = f.op(K::D, "neg.f64", &[&a[0]]);
                let u = f.dmul(&nx, &dl(core::f64::consts::FRAC_1_SQRT_2));
                let e = f.call(Math::ErfcF64, &[&u]);
                f.dmul(&dl(0.5), &e)
            }
            Math::NormPpfF64 => norm_ppf_f64(f, &a[0]),
            Math::Interp => interp(f, a),
            Math::QuantileFwd => quantile_forward(f, a),
            Math::QuantileInv => quantile_inverse(f, a),
        }
    }

    /// Functions this one calls.
    fn deps(self) -> &'static [Math] {
        match self {
            Math::SigmoidF32 | Math::PhiF32 | Math::Expm1F32 => &[Math::ExpF32],
            Math::Softplus1F32 => &[Math::ExpF32, Math::LogF32],
            Math::ErfcF64 => &[Math::ExpF64],
            Math::NormCdfF64 => &[Math::ErfcF64],
            Math::NormPpfF64 => &[Math::LogF64, Math::ExpF64, Math::NormCdfF64],
            Math::QuantileFwd => &[Math::Interp, Math::NormPpfF64],
            Math::QuantileInv => &[Math::Interp, Math::NormCdfF64],
            _ => &[],
        }
    }
}

fn exp_f32(f: &mut Fb, x: &str) -> String {
    let x = f.min(&fl(89.0), x);
    let x = f.max(&fl(-104.0), &x);
    let t = f.mul(&x, &fl(core::f32::consts::LOG2_E));
    let n = f.round(&t);
    let r = f.fma(&n, &fl(-0.693_359_4), &x);
    let r = f.fma(&n, &fl(2.121_944_4e-4), &r);
    let p = f.poly(&r, &EXP_P);
    let rr = f.mul(&r, &r);
    let r1 = f.add(&r, &fl(1.0));
    let y = f.fma(&p, &rr, &r1);
    let nh = f.mul(&n, &fl(0.5));
    let h = f.round(&nh);
    let ph = f.pow2i(&h);
    let nmh = f.sub(&n, &h);
    let pn = f.pow2i(&nmh);
    let y = f.mul(&y, &ph);
    f.mul(&y, &pn)
}

fn log_f32(f: &mut Fb, x0: &str) -> String {
    let x = f.max(&fl(f32::MIN_POSITIVE), x0);
    // frexp
    let b = f.op(K::R, "mov.b32", &[&x]);
    let eb = f.op(K::R, "shr.u32", &[&b, "23"]);
    let eb = f.op(K::R, "and.b32", &[&eb, "255"]);
    let eb = f.op(K::R, "add.s32", &[&eb, "-126"]);
    let e = f.op(K::F, "cvt.rn.f32.s32", &[&eb]);
    let mb = f.op(K::R, "and.b32", &[&b, "0x807FFFFF"]); // 0x807f_ffff
    let mb = f.op(K::R, "or.b32", &[&mb, "0x3F000000"]); // 0x3f00_0000
    let m = f.op(K::F, "mov.b32", &[&mb]);
    let small = f.lt_select(
        &m,
        &fl(core::f32::consts::FRAC_1_SQRT_2),
        &fl(1.0),
        &fl(0.0),
    );
    let e = f.sub(&e, &small);
    let ms = f.mul(&m, &small);
    let mm = f.add(&m, &ms);
    let fr = f.sub(&mm, &fl(1.0));
    let z = f.mul(&fr, &fr);
    let p = f.poly(&fr, &LOG_P);
    let pf = f.mul(&p, &fr);
    let y = f.mul(&pf, &z);
    let y = f.fma(&e, &fl(-2.121_944_4e-4), &y);
    let y = f.fma(&z, &fl(-0.5), &y);
    let r = f.add(&fr, &y);
    let r = f.fma(&e, &fl(0.693_359_4), &r);
    let r = f.lt_select(x0, &fl(f32::INFINITY), &r, x0);
    let r = f.lt_select(x0, &fl(f32::MIN_POSITIVE), &fl(f32::NEG_INFINITY), &r);
    f.lt_select(x0, &fl(0.0), &fl(f32::NAN), &r)
}

fn erf_small(f: &mut Fb, x: &str) -> String {
    let x2 = f.mul(x, x);
    let p = f.poly(&x2, &ERF_P);
    f.mul(x, &p)
}

fn erfc_big(f: &mut Fb, a: &str) -> String {
    let a = f.min(&fl(12.0), a);
    let d = f.fma(&a, &fl(0.5), &fl(1.0));
    let t = f.div(&fl(1.0), &d);
    let q = f.poly(&t, &ERFC_Q);
    let na = f.sub(&fl(0.0), &a);
    let arg = f.fma(&na, &a, &q);
    let e = f.call(Math::ExpF32, &[&arg]);
    f.mul(&t, &e)
}

/// f64 `exp`: range reduction by ln 2 (Cody–Waite), degree-13 Taylor polynomial, scaling in
/// two steps (so results in the subnormal range are right).
fn exp_f64(f: &mut Fb, x: &str) -> String {
    let done = f.label();
    let res = f.reg(K::D);
    // NaN → NaN; overflow → +inf; underflow → 0.
    let pn = f.op(K::P, "setp.nan.f64", &[x, x]);
    f.op_to(&res, "mov.f64", &[x]);
    f.line(format!("@{pn} bra {done};"));
    let ph = f.op(K::P, "setp.gt.f64", &[x, &dl(709.782712893384)]);
    f.op_to(&res, "mov.f64", &[&dl(f64::INFINITY)]);
    f.line(format!("@{ph} bra {done};"));
    let pl = f.op(K::P, "setp.lt.f64", &[x, &dl(-745.2)]);
    f.op_to(&res, "mov.f64", &[&dl(0.0)]);
    f.line(format!("@{pl} bra {done};"));
    let t = f.dmul(x, &dl(core::f64::consts::LOG2_E));
    let n = f.op(K::D, "cvt.rni.f64.f64", &[&t]);
    let nn = f.op(K::D, "neg.f64", &[&n]);
    let r = f.dfma(&nn, &dl(6.93147180369123816490e-01), x);
    let r = f.dfma(&nn, &dl(1.90821492927058770002e-10), &r);
    // Σ r^k / k!, k = 0..=13, Horner.
    let mut fact = [1.0f64; 14];
    for k in 1..14 {
        fact[k] = fact[k - 1] * k as f64;
    }
    let mut p = f.op(K::D, "mov.f64", &[&dl(1.0 / fact[13])]);
    for k in (0..13).rev() {
        p = f.dfma(&p, &r, &dl(1.0 / fact[k]));
    }
    let ni = f.op(K::R, "cvt.rni.s32.f64", &[&n]);
    let h = f.op(K::R, "shr.s32", &[&ni, "1"]);
    let rest = f.op(K::R, "sub.s32", &[&ni, &h]);
    let scale = |f: &mut Fb, e: &str| {
        let b = f.op(K::R, "add.s32", &[e, "1023"]);
        let b = f.op(K::Rd, "cvt.u64.u32", &[&b]);
        let b = f.op(K::Rd, "shl.b64", &[&b, "52"]);
        f.op(K::D, "mov.b64", &[&b])
    };
    let s1 = scale(f, &h);
    let s2 = scale(f, &rest);
    let y = f.dmul(&p, &s1);
    f.op_to(&res, "mul.rn.f64", &[&y, &s2]);
    f.place(&done);
    res
}

/// f64 natural log: `x = m·2^e`, `m` in `[√½, √2)`, `ln m = 2 atanh((m−1)/(m+1))` as an odd
/// series in `s = ((m−1)/(m+1))²`.
fn log_f64(f: &mut Fb, x: &str) -> String {
    let done = f.label();
    let res = f.reg(K::D);
    let pn = f.op(K::P, "setp.nan.f64", &[x, x]);
    f.op_to(&res, "mov.f64", &[x]);
    f.line(format!("@{pn} bra {done};"));
    let pneg = f.op(K::P, "setp.lt.f64", &[x, &dl(0.0)]);
    f.op_to(&res, "mov.f64", &[&dl(f64::NAN)]);
    f.line(format!("@{pneg} bra {done};"));
    let pz = f.op(K::P, "setp.eq.f64", &[x, &dl(0.0)]);
    f.op_to(&res, "mov.f64", &[&dl(f64::NEG_INFINITY)]);
    f.line(format!("@{pz} bra {done};"));
    let pinf = f.op(K::P, "setp.eq.f64", &[x, &dl(f64::INFINITY)]);
    f.op_to(&res, "mov.f64", &[x]);
    f.line(format!("@{pinf} bra {done};"));
    // Subnormals: scale by 2^54 first.
    let sub = f.op(K::P, "setp.lt.f64", &[x, &dl(f64::MIN_POSITIVE)]);
    let xs = f.dmul(x, &dl(18014398509481984.0));
    let xv = f.op(K::D, "selp.f64", &[&xs, x, &sub]);
    let eadj = f.op(K::R, "selp.s32", &["-54", "0", &sub]);
    let bits = f.op(K::Rd, "mov.b64", &[&xv]);
    let hi = f.op(K::Rd, "shr.u64", &[&bits, "52"]);
    let hi = f.op(K::R, "cvt.u32.u64", &[&hi]);
    let eb = f.op(K::R, "and.b32", &[&hi, "2047"]);
    let e = f.op(K::R, "add.s32", &[&eb, "-1023"]);
    let e = f.op(K::R, "add.s32", &[&e, &eadj]);
    let mb = f.op(K::Rd, "and.b64", &[&bits, "0x000FFFFFFFFFFFFF"]); // mantissa bits
    let mb = f.op(K::Rd, "or.b64", &[&mb, "0x3FF0000000000000"]); // exponent of 1.0
    let m = f.op(K::D, "mov.b64", &[&mb]);
    let big = f.op(K::P, "setp.gt.f64", &[&m, &dl(core::f64::consts::SQRT_2)]);
    let mh = f.dmul(&m, &dl(0.5));
    let m = f.op(K::D, "selp.f64", &[&mh, &m, &big]);
    let e1 = f.op(K::R, "add.s32", &[&e, "1"]);
    let e = f.op(K::R, "selp.s32", &[&e1, &e, &big]);
    let ed = f.op(K::D, "cvt.rn.f64.s32", &[&e]);
    let num = f.dsub(&m, &dl(1.0));
    let den = f.dadd(&m, &dl(1.0));
    let t = f.ddiv(&num, &den);
    let s = f.dmul(&t, &t);
    // Σ s^k / (2k+1), k = 0..=12.
    let mut p = f.op(K::D, "mov.f64", &[&dl(1.0 / 25.0)]);
    for k in (0..12).rev() {
        p = f.dfma(&p, &s, &dl(1.0 / (2 * k + 1) as f64));
    }
    let tt = f.dmul(&t, &dl(2.0));
    let lm = f.dmul(&tt, &p);
    let lo = f.dfma(&ed, &dl(1.90821492927058770002e-10), &lm);
    f.op_to(
        &res,
        "fma.rn.f64",
        &[&ed, &dl(6.93147180369123816490e-01), &lo],
    );
    f.place(&done);
    res
}

/// The runtime's `erfc_f64`: series below 2, continued fraction above.
fn erfc_f64(f: &mut Fb, x: &str) -> String {
    let res = f.reg(K::D);
    let done = f.label();
    let pn = f.op(K::P, "setp.nan.f64", &[x, x]);
    f.op_to(&res, "mov.f64", &[x]);
    f.line(format!("@{pn} bra {done};"));
    let a = f.op(K::D, "abs.f64", &[x]);
    let neg = f.op(K::P, "setp.lt.f64", &[x, &dl(0.0)]);
    let small = f.op(K::P, "setp.lt.f64", &[&a, &dl(2.0)]);
    let val = f.reg(K::D); // erfc(|x|)
    let (cf, join) = (f.label(), f.label());
    f.line(format!("@!{small} bra {cf};"));
    {
        // 1 − erf_series(a)
        let a2 = f.dmul(&a, &a);
        let term = f.reg(K::D);
        let sum = f.reg(K::D);
        let n = f.reg(K::D);
        f.op_to(&term, "mov.f64", &[&a]);
        f.op_to(&sum, "mov.f64", &[&a]);
        f.op_to(&n, "mov.f64", &[&dl(0.0)]);
        let (head, end) = (f.label(), f.label());
        f.place(&head);
        let lim = f.dmul(&dl(1e-17), &sum);
        let go = f.op(K::P, "setp.gt.f64", &[&term, &lim]);
        f.line(format!("@!{go} bra {end};"));
        f.op_to(&n, "add.rn.f64", &[&n, &dl(1.0)]);
        let num = f.dmul(&dl(2.0), &a2);
        let n2 = f.dmul(&dl(2.0), &n);
        let den = f.dadd(&n2, &dl(1.0));
        let q = f.ddiv(&num, &den);
        f.op_to(&term, "mul.rn.f64", &[&term, &q]);
        f.op_to(&sum, "add.rn.f64", &[&sum, &term]);
        f.line(format!("bra {head};"));
        f.place(&end);
        let na2 = f.op(K::D, "neg.f64", &[&a2]);
        let e = f.call(Math::ExpF64, &[&na2]);
        let c = f.dmul(&dl(core::f64::consts::FRAC_2_SQRT_PI), &e);
        let erf = f.dmul(&c, &sum);
        f.op_to(&val, "sub.rn.f64", &[&dl(1.0), &erf]);
        f.line(format!("bra {join};"));
    }
    f.place(&cf);
    {
        let far = f.op(K::P, "setp.gt.f64", &[&a, &dl(27.3)]);
        f.op_to(&val, "mov.f64", &[&dl(0.0)]);
        f.line(format!("@{far} bra {join};"));
        let aa = f.dmul(&a, &a);
        let q = f.ddiv(&dl(600.0), &aa);
        let q = f.dadd(&dl(20.0), &q);
        let nt = f.op(K::R, "cvt.rzi.u32.f64", &[&q]);
        let fr = f.reg(K::D);
        f.op_to(&fr, "mov.f64", &[&a]);
        let n = f.reg(K::R);
        f.op_to(&n, "mov.u32", &[&nt]);
        let (head, end) = (f.label(), f.label());
        f.place(&head);
        let stop = f.op(K::P, "setp.eq.u32", &[&n, "0"]);
        f.line(format!("@{stop} bra {end};"));
        let nd = f.op(K::D, "cvt.rn.f64.u32", &[&n]);
        let h = f.dmul(&nd, &dl(0.5));
        let d = f.ddiv(&h, &fr);
        f.op_to(&fr, "add.rn.f64", &[&a, &d]);
        f.op_to(&n, "sub.u32", &[&n, "1"]);
        f.line(format!("bra {head};"));
        f.place(&end);
        let na = f.op(K::D, "neg.f64", &[&a]);
        let arg = f.dmul(&na, &a);
        let e = f.call(Math::ExpF64, &[&arg]);
        let d = f.dmul(&fr, &dl(std::f64::consts::PI.sqrt()));
        f.op_to(&val, "div.rn.f64", &[&e, &d]);
    }
    f.place(&join);
    // erfc(x) = 2 − erfc(−x) for x < 0.
    let two = f.dsub(&dl(2.0), &val);
    f.op_to(&res, "selp.f64", &[&two, &val, &neg]);
    f.place(&done);
    res
}
fn norm_ppf_f64(f: &mut Fb, p: &str) -> String {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.383577518672690e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-03,
        3.224671290700398e-01,
        2.445134137142996e+00,
        3.754408661907416e+00,
    ];
    let res = f.reg(K::D);
    let done = f.label();
    let pn = f.op(K::P, "setp.nan.f64", &[p, p]);
    f.op_to(&res, "mov.f64", &[p]);
    f.line(format!("@{pn} bra {done};"));
    let le0 = f.op(K::P, "setp.le.f64", &[p, &dl(0.0)]);
    f.op_to(&res, "mov.f64", &[&dl(f64::NEG_INFINITY)]);
    f.line(format!("@{le0} bra {done};"));
    let ge1 = f.op(K::P, "setp.ge.f64", &[p, &dl(1.0)]);
    f.op_to(&res, "mov.f64", &[&dl(f64::INFINITY)]);
    f.line(format!("@{ge1} bra {done};"));
    let upper = f.op(K::P, "setp.gt.f64", &[p, &dl(0.5)]);
    let omp = f.dsub(&dl(1.0), p);
    let pl = f.op(K::D, "selp.f64", &[&omp, p, &upper]);
    // Horner without FMA (the CPU code multiplies then adds).
    let horner = |f: &mut Fb, c: &[f64], x: &str, one: bool| {
        let mut y = f.dmul(&dl(c[0]), x);
        for (i, &ci) in c[1..].iter().enumerate() {
            y = f.dadd(&y, &dl(ci));
            if i + 2 < c.len() || one {
                y = f.dmul(&y, x);
            }
        }
        if one {
            y = f.dadd(&y, &dl(1.0));
        }
        y
    };
    let x = f.reg(K::D);
    let (central, join) = (f.label(), f.label());
    let tail = f.op(K::P, "setp.lt.f64", &[&pl, &dl(0.02425)]);
    f.line(format!("@!{tail} bra {central};"));
    {
        let l = f.call(Math::LogF64, &[&pl]);
        let l2 = f.dmul(&dl(-2.0), &l);
        let q = f.op(K::D, "sqrt.rn.f64", &[&l2]);
        let num = horner(f, &C, &q, false);
        let den = horner(f, &D, &q, true);
        f.op_to(&x, "div.rn.f64", &[&num, &den]);
        f.line(format!("bra {join};"));
    }
    f.place(&central);
    {
        let q = f.dsub(&pl, &dl(0.5));
        let r = f.dmul(&q, &q);
        let num = horner(f, &A, &r, false);
        let num = f.dmul(&num, &q);
        let den = horner(f, &B, &r, true);
        f.op_to(&x, "div.rn.f64", &[&num, &den]);
    }
    f.place(&join);
    // Halley step.
    let c = f.call(Math::NormCdfF64, &[&x]);
    let e = f.dsub(&c, &pl);
    let hx = f.dmul(&dl(0.5), &x);
    let hxx = f.dmul(&hx, &x);
    let ex = f.call(Math::ExpF64, &[&hxx]);
    let u = f.dmul(&e, &dl((2.0 * core::f64::consts::PI).sqrt()));
    let u = f.dmul(&u, &ex);
    let fin = f.op(K::P, "testp.finite.f64", &[&u]);
    let hxu = f.dmul(&hx, &u);
    let d = f.dadd(&dl(1.0), &hxu);
    let s = f.ddiv(&u, &d);
    let xn = f.dsub(&x, &s);
    let lower = f.op(K::D, "selp.f64", &[&xn, &x, &fin]);
    let neg = f.op(K::D, "neg.f64", &[&lower]);
    f.op_to(&res, "selp.f64", &[&neg, &lower, &upper]);
    f.place(&done);
    res
}

/// `xp(i)`/`fp(i)` of [`interp`]: `base[i]`, or `−base[n−1−i]` when reversed.
fn table_at(f: &mut Fb, base: &str, i: &str, n: &str, rev: &str) -> String {
    if rev == "0" {
        let a = f.addr(base, i, 4);
        let v = f.op(K::F, "ld.global.nc.f32", &[&format!("[{a}]")]);
        return f.op(K::D, "cvt.f64.f32", &[&v]);
    }
    let n1 = f.op(K::R, "sub.u32", &[n, "1"]);
    let ri = f.op(K::R, "sub.u32", &[&n1, i]);
    let isrev = f.op(K::P, "setp.ne.u32", &[rev, "0"]);
    let idx = f.op(K::R, "selp.b32", &[&ri, i, &isrev]);
    let a = f.addr(base, &idx, 4);
    let v = f.op(K::F, "ld.global.nc.f32", &[&format!("[{a}]")]);
    let v = f.op(K::D, "cvt.f64.f32", &[&v]);
    let nv = f.op(K::D, "neg.f64", &[&v]);
    f.op(K::D, "selp.f64", &[&nv, &v, &isrev])
}

/// The runtime's `interp` (numpy's), binary search for the interval.
fn interp(f: &mut Fb, a: &[String]) -> String {
    let (x, xb, fb, n, rev) = (&a[0], &a[1], &a[2], &a[3], &a[4]);
    let res = f.reg(K::D);
    let done = f.label();
    let n1 = f.op(K::R, "sub.u32", &[n, "1"]);
    let x0 = table_at(f, xb, "0", n, rev);
    let f0 = table_at(f, fb, "0", n, rev);
    let below = f.op(K::P, "setp.lt.f64", &[x, &x0]);
    f.op_to(&res, "mov.f64", &[&f0]);
    f.line(format!("@{below} bra {done};"));
    let xl = table_at(f, xb, &n1, n, rev);
    let flast = table_at(f, fb, &n1, n, rev);
    let above = f.op(K::P, "setp.gt.f64", &[x, &xl]);
    f.op_to(&res, "mov.f64", &[&flast]);
    f.line(format!("@{above} bra {done};"));
    let lo = f.reg(K::R);
    let hi = f.reg(K::R);
    f.op_to(&lo, "mov.u32", &["0"]);
    f.op_to(&hi, "mov.u32", &[n]);
    let (head, end) = (f.label(), f.label());
    f.place(&head);
    let stop = f.op(K::P, "setp.ge.u32", &[&lo, &hi]);
    f.line(format!("@{stop} bra {end};"));
    let span = f.op(K::R, "sub.u32", &[&hi, &lo]);
    let half = f.op(K::R, "shr.u32", &[&span, "1"]);
    let mid = f.op(K::R, "add.u32", &[&lo, &half]);
    let xm = table_at(f, xb, &mid, n, rev);
    let ge = f.op(K::P, "setp.ge.f64", &[x, &xm]);
    let mid1 = f.op(K::R, "add.u32", &[&mid, "1"]);
    f.op_to(&lo, "selp.b32", &[&mid1, &lo, &ge]);
    f.op_to(&hi, "selp.b32", &[&hi, &mid, &ge]);
    f.line(format!("bra {head};"));
    f.place(&end);
    let j = f.op(K::R, "sub.u32", &[&lo, "1"]);
    let xj = table_at(f, xb, &j, n, rev);
    let fj = table_at(f, fb, &j, n, rev);
    f.op_to(&res, "mov.f64", &[&fj]);
    let last = f.op(K::P, "setp.eq.u32", &[&j, &n1]);
    f.line(format!("@{last} bra {done};"));
    let same = f.op(K::P, "setp.eq.f64", &[&xj, x]);
    f.line(format!("@{same} bra {done};"));
    let j1 = f.op(K::R, "add.u32", &[&j, "1"]);
    let xj1 = table_at(f, xb, &j1, n, rev);
    let fj1 = table_at(f, fb, &j1, n, rev);
    let df = f.dsub(&fj1, &fj);
    let dx = f.dsub(&xj1, &xj);
    let slope = f.ddiv(&df, &dx);
    let t = f.dsub(x, &xj);
    let t = f.dmul(&slope, &t);
    let y = f.dadd(&t, &fj);
    f.op_to(&res, "mov.f64", &[&y]);
    let ok = f.op(K::P, "setp.num.f64", &[&y, &y]);
    f.line(format!("@{ok} bra {done};"));
    let t = f.dsub(x, &xj1);
    let t = f.dmul(&slope, &t);
    let y2 = f.dadd(&t, &fj1);
    f.op_to(&res, "mov.f64", &[&y2]);
    let ok2 = f.op(K::P, "setp.num.f64", &[&y2, &y2]);
    f.line(format!("@{ok2} bra {done};"));
    let eq = f.op(K::P, "setp.eq.f64", &[&fj, &fj1]);
    f.line(format!("@{eq} mov.f64 {res}, {fj};"));
    f.place(&done);
    res
}

fn quantile_forward(f: &mut Fb, a: &[String]) -> String {
    let (x, qb, rb, n, normal, bt, clo, chi) =
        (&a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7]);
    let res = f.reg(K::D);
    let done = f.label();
    let isnan = f.op(K::P, "setp.nan.f64", &[x, x]);
    f.op_to(&res, "mov.f64", &[x]);
    f.line(format!("@{isnan} bra {done};"));
    let n1 = f.op(K::R, "sub.u32", &[n, "1"]);
    let lo_x = table_at(f, qb, "0", n, "0");
    let hi_x = table_at(f, qb, &n1, n, "0");
    let isnorm = f.op(K::P, "setp.ne.u32", &[normal, "0"]);
    let xm = f.dsub(x, bt);
    let xp = f.dadd(x, bt);
    let lower_n = f.op(K::P, "setp.lt.f64", &[&xm, &lo_x]);
    let upper_n = f.op(K::P, "setp.gt.f64", &[&xp, &hi_x]);
    let lower_u = f.op(K::P, "setp.eq.f64", &[x, &lo_x]);
    let upper_u = f.op(K::P, "setp.eq.f64", &[x, &hi_x]);
    let lower = f.reg(K::P);
    let upper = f.reg(K::P);
    f.line(format!("@{isnorm} mov.pred {lower}, {lower_n};"));
    f.line(format!("@!{isnorm} mov.pred {lower}, {lower_u};"));
    f.line(format!("@{isnorm} mov.pred {upper}, {upper_n};"));
    f.line(format!("@!{isnorm} mov.pred {upper}, {upper_u};"));
    let i1 = f.call(Math::Interp, &[x, qb, rb, n, "0"]);
    let nx = f.op(K::D, "neg.f64", &[x]);
    let i2 = f.call(Math::Interp, &[&nx, qb, rb, n, "1"]);
    let d = f.dsub(&i1, &i2);
    let u = f.dmul(&dl(0.5), &d);
    let u = f.op(K::D, "selp.f64", &[&dl(1.0), &u, &upper]);
    let u = f.op(K::D, "selp.f64", &[&dl(0.0), &u, &lower]);
    f.op_to(&res, "mov.f64", &[&u]);
    f.line(format!("@!{isnorm} bra {done};"));
    let z = f.call(Math::NormPpfF64, &[&u]);
    // f64::clamp: below lo → lo, above hi → hi, NaN stays.
    let blo = f.op(K::P, "setp.lt.f64", &[&z, clo]);
    let z = f.op(K::D, "selp.f64", &[clo, &z, &blo]);
    let ahi = f.op(K::P, "setp.gt.f64", &[&z, chi]);
    f.op_to(&res, "selp.f64", &[chi, &z, &ahi]);
    f.place(&done);
    res
}

fn quantile_inverse(f: &mut Fb, a: &[String]) -> String {
    let (y, qb, rb, n, normal, bt) = (&a[0], &a[1], &a[2], &a[3], &a[4], &a[5]);
    let res = f.reg(K::D);
    let done = f.label();
    let isnorm = f.op(K::P, "setp.ne.u32", &[normal, "0"]);
    let u = f.reg(K::D);
    f.op_to(&u, "mov.f64", &[y]);
    let skip = f.label();
    f.line(format!("@!{isnorm} bra {skip};"));
    let c = f.call(Math::NormCdfF64, &[y]);
    f.op_to(&u, "mov.f64", &[&c]);
    f.place(&skip);
    let isnan = f.op(K::P, "setp.nan.f64", &[&u, &u]);
    f.op_to(&res, "mov.f64", &[&u]);
    f.line(format!("@{isnan} bra {done};"));
    let um = f.dsub(&u, bt);
    let up = f.dadd(&u, bt);
    let lower_n = f.op(K::P, "setp.lt.f64", &[&um, &dl(0.0)]);
    let upper_n = f.op(K::P, "setp.gt.f64", &[&up, &dl(1.0)]);
    let lower_u = f.op(K::P, "setp.eq.f64", &[&u, &dl(0.0)]);
    let upper_u = f.op(K::P, "setp.eq.f64", &[&u, &dl(1.0)]);
    let lower = f.reg(K::P);
    let upper = f.reg(K::P);
    f.line(format!("@{isnorm} mov.pred {lower}, {lower_n};"));
    f.line(format!("@!{isnorm} mov.pred {lower}, {lower_u};"));
    f.line(format!("@{isnorm} mov.pred {upper}, {upper_n};"));
    f.line(format!("@!{isnorm} mov.pred {upper}, {upper_u};"));
    let x = f.call(Math::Interp, &[&u, rb, qb, n, "0"]);
    let n1 = f.op(K::R, "sub.u32", &[n, "1"]);
    let first = table_at(f, qb, "0", n, "0");
    let last = table_at(f, qb, &n1, n, "0");
    let x = f.op(K::D, "selp.f64", &[&last, &x, &upper]);
    f.op_to(&res, "selp.f64", &[&first, &x, &lower]);
    f.place(&done);
    res
}

fn math_function(m: Math) -> (String, Vec<Math>) {
    let mut f = Fb::default();
    let (ret, params) = m.signature();
    let mut regs = Vec::new();
    let mut decl = Vec::new();
    for (i, &k) in params.iter().enumerate() {
        let (ty, ld) = param_types(k);
        decl.push(format!(".param {ty} {}_p{i}", m.name()));
        let r = f.reg(k);
        f.line(format!("ld.param{ld} {r}, [{}_p{i}];", m.name()));
        regs.push(r);
    }
    let r = m.body(&mut f, &regs);
    let (rty, st) = param_types(ret);
    f.line(format!("st.param{st} [{}_ret], {r};", m.name()));
    f.line("ret;");
    let text = format!(
        ".func (.param {rty} {name}_ret) {name}(\n\t{params}\n)\n{{\n{decls}{body}}}\n",
        name = m.name(),
        params = decl.join(",\n\t"),
        decls = f.decls(),
        body = f.body
    );
    (text, f.calls)
}

// ---------------------------------------------------------------------------------------------
// The kernel.

struct Kernel<'a> {
    p: &'a Program,
    f: Fb,
    slot: Vec<String>,
    weights: String,
    tid: String,
    /// Module-scope tables (column lists).
    globals: Vec<String>,
}

impl Kernel<'_> {
    /// Address of blob array `i` (plus `extra_floats`).
    fn warr(&mut self, i: usize, extra_floats: usize) -> String {
        let off = self.p.arrays.get(i).map_or(0, |a| a.offset) + extra_floats;
        let w = self.weights.clone();
        self.f.op(K::Rd, "add.s64", &[&w, &(off * 4).to_string()])
    }
    /// Address of column `col` (u32 register) of `buf`.
    fn col_addr(&mut self, buf: &Buf, col: &str) -> String {
        let base = self.slot[buf.slot].clone();
        self.f.addr(&base, col, 4)
    }
    fn ld(&mut self, buf: &Buf, col: &str) -> String {
        let a = self.col_addr(buf, col);
        self.f.op(K::F, "ld.local.f32", &[&format!("[{a}]")])
    }
    fn st(&mut self, buf: &Buf, col: &str, v: &str) {
        let a = self.col_addr(buf, col);
        self.f.line(format!("st.local.f32 [{a}], {v};"));
    }
    /// A module-scope table of column indices; returns its address register.
    fn cols_table(&mut self, step: usize, cols: &[u32]) -> String {
        let name = format!("flashc_cols_{step}");
        let list: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        self.globals.push(format!(
            ".global .align 4 .u32 {name}[{}] = {{{}}};",
            cols.len().max(1),
            if list.is_empty() {
                "0".to_owned()
            } else {
                list.join(", ")
            }
        ));
        self.f.op(K::Rd, "mov.u64", &[&name])
    }
    /// Loops over `cols`: `body(kernel, i, col)`.
    /// `data[col] = data[col] * mul[idx] + add[idx]` (separately rounded, as on the CPU), with
    /// `mul` and `add` arrays of the weight blob.
    fn affine(&mut self, data: &Buf, col: &str, mul: &str, add: &str, idx: &str) {
        let v = self.ld(data, col);
        let ma = self.f.addr(mul, idx, 4);
        let aa = self.f.addr(add, idx, 4);
        let mv = self.f.op(K::F, "ld.global.nc.f32", &[&format!("[{ma}]")]);
        let av = self.f.op(K::F, "ld.global.nc.f32", &[&format!("[{aa}]")]);
        let t = self.f.mul(&v, &mv);
        let r = self.f.add(&t, &av);
        self.st(data, col, &r);
    }

    fn for_cols(&mut self, step: usize, cols: &[u32], body: impl Fn(&mut Kernel, &str, &str)) {
        let table = self.cols_table(step, cols);
        let n = cols.len().to_string();
        let i = self.f.reg(K::R);
        let (head, end) = (self.f.label(), self.f.label());
        self.f.op_to(&i, "mov.u32", &["0"]);
        self.f.place(&head);
        let p = self.f.op(K::P, "setp.ge.u32", &[&i, &n]);
        self.f.line(format!("@{p} bra {end};"));
        let a = self.f.addr(&table, &i, 4);
        let c = self.f.op(K::R, "ld.global.u32", &[&format!("[{a}]")]);
        body(self, &i, &c);
        self.f.op_to(&i, "add.u32", &[&i, "1"]);
        self.f.line(format!("bra {head};"));
        self.f.place(&end);
    }
    /// Loops over columns `0..width`.
    fn for_width(&mut self, width: usize, body: impl Fn(&mut Kernel, &str)) {
        let i = self.f.reg(K::R);
        let (head, end) = (self.f.label(), self.f.label());
        self.f.op_to(&i, "mov.u32", &["0"]);
        self.f.place(&head);
        let p = self.f.op(K::P, "setp.ge.u32", &[&i, &width.to_string()]);
        self.f.line(format!("@{p} bra {end};"));
        body(self, &i);
        self.f.op_to(&i, "add.u32", &[&i, "1"]);
        self.f.line(format!("bra {head};"));
        self.f.place(&end);
    }

    fn act(&mut self, a: Activation, x: &str) -> String {
        let f = &mut self.f;
        match a {
            Activation::Linear | Activation::Softmax => x.to_owned(),
            Activation::Relu => f.max(&fl(0.0), x),
            Activation::LeakyRelu { alpha } => {
                let m = f.mul(x, &fl(alpha));
                f.lt_select(x, &fl(0.0), &m, x)
            }
            Activation::Elu { alpha } => elu(f, x, alpha, 1.0),
            Activation::Selu { alpha, scale } => elu(f, x, alpha * scale, scale),
            Activation::Silu => {
                let s = f.call(Math::SigmoidF32, &[x]);
                f.mul(x, &s)
            }
            Activation::GeluErf => {
                let s = f.call(Math::PhiF32, &[x]);
                f.mul(x, &s)
            }
            Activation::GeluTanh => {
                const K2: f32 = 0.797_884_6;
                let x2 = f.mul(x, x);
                let t = f.fma(&x2, &fl(2.0 * K2 * 0.044715), &fl(2.0 * K2));
                let two_u = f.mul(x, &t);
                let s = f.call(Math::SigmoidF32, &[&two_u]);
                f.mul(x, &s)
            }
            Activation::Tanh => f.call(Math::TanhF32, &[x]),
            Activation::Sigmoid => f.call(Math::SigmoidF32, &[x]),
            Activation::Softplus { beta, threshold } => {
                let bx = f.mul(x, &fl(beta));
                let s = f.call(Math::Softplus1F32, &[&bx]);
                let sp = f.div(&s, &fl(beta));
                f.lt_select(&fl(threshold), &bx, x, &sp)
            }
        }
    }

    /// Softmax over `width` columns of `buf`, as the runtime's `softmax_row`.
    fn softmax(&mut self, buf: &Buf, width: usize) {
        let m = self.f.reg(K::F);
        self.f.op_to(&m, "mov.f32", &[&fl(f32::NEG_INFINITY)]);
        self.for_width(width, |k, j| {
            let v = k.ld(buf, j);
            k.f.op_to(&m, "max.f32", &[&m, &v]);
        });
        let inf = self.f.op(K::P, "setp.eq.f32", &[&m, &fl(f32::INFINITY)]);
        let nan = self.f.op(K::P, "setp.nan.f32", &[&m, &m]);
        let bad = self.f.op(K::P, "or.pred", &[&inf, &nan]);
        self.f.line(format!("@{bad} mov.f32 {m}, {};", fl(0.0)));
        let s = self.f.reg(K::D);
        self.f.op_to(&s, "mov.f64", &[&dl(-0.0)]);
        self.for_width(width, |k, j| {
            let v = k.ld(buf, j);
            let d = k.f.sub(&v, &m);
            let e = k.f.call(Math::ExpF32, &[&d]);
            k.st(buf, j, &e);
            let ed = k.f.op(K::D, "cvt.f64.f32", &[&e]);
            k.f.op_to(&s, "add.rn.f64", &[&s, &ed]);
        });
        let inv = self.f.ddiv(&dl(1.0), &s);
        let iv = self.f.op(K::F, "cvt.rn.f32.f64", &[&inv]);
        self.for_width(width, |k, j| {
            let v = k.ld(buf, j);
            let r = k.f.mul(&v, &iv);
            k.st(buf, j, &r);
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn dense(
        &mut self,
        x: &Buf,
        y: &Buf,
        n_in: usize,
        n_out: usize,
        kernel: usize,
        bias: usize,
        act: Activation,
        residual: Option<(Buf, bool)>,
    ) {
        let n_panels = n_out.div_ceil(PANEL);
        let n_chunks = n_in.div_ceil(K_TILE);
        let kbase = self.warr(kernel, 0);
        let bbase = self.warr(bias, 0);
        let (xs, ys) = (self.slot[x.slot].clone(), self.slot[y.slot].clone());
        let tid = self.tid.clone();
        let f = &mut self.f;
        let wt = f.op(K::Rd, "mov.u64", &["flashc_wtile"]);
        f.for_range(&n_panels.to_string(), |f, p| {
            let acc: Vec<String> = (0..PANEL).map(|_| f.reg(K::F)).collect();
            for a in &acc {
                f.op_to(a, "mov.f32", &[&fl(0.0)]);
            }
            let wp = f.op(K::Rd, "mul.wide.u32", &[p, &(n_in * PANEL * 4).to_string()]);
            let wp = f.op(K::Rd, "add.s64", &[&kbase, &wp]);
            f.for_range(&n_chunks.to_string(), |f, c| {
                let k0 = f.op(K::R, "mul.lo.u32", &[c, &K_TILE.to_string()]);
                let left = f.op(K::R, "sub.u32", &[&n_in.to_string(), &k0]);
                let rem = f.op(K::R, "min.u32", &[&left, &K_TILE.to_string()]);
                let nval = f.op(K::R, "mul.lo.u32", &[&rem, &PANEL.to_string()]);
                let src = f.op(K::Rd, "mul.wide.u32", &[&k0, &(PANEL * 4).to_string()]);
                let src = f.op(K::Rd, "add.s64", &[&wp, &src]);
                f.line("bar.sync 0;");
                for t in 0..(K_TILE * PANEL).div_ceil(BLOCK as usize) {
                    let idx = f.op(K::R, "add.u32", &[&tid, &(t * BLOCK as usize).to_string()]);
                    let inr = f.op(K::P, "setp.lt.u32", &[&idx, &nval]);
                    let ga = f.addr(&src, &idx, 4);
                    let sa = f.addr(&wt, &idx, 4);
                    let v = f.reg(K::F);
                    f.line(format!("@{inr} ld.global.nc.f32 {v}, [{ga}];"));
                    f.line(format!("@{inr} st.shared.f32 [{sa}], {v};"));
                }
                f.line("bar.sync 0;");
                let xa = f.op(K::Rd, "mul.wide.u32", &[&k0, "4"]);
                let xa = f.op(K::Rd, "add.s64", &[&xs, &xa]);
                f.for_range(&rem, |f, kk| {
                    let a = f.addr(&xa, kk, 4);
                    let xv = f.op(K::F, "ld.local.f32", &[&format!("[{a}]")]);
                    let so = f.addr(&wt, kk, (PANEL * 4) as u32);
                    for q in 0..PANEL / 4 {
                        let w: Vec<String> = (0..4).map(|_| f.reg(K::F)).collect();
                        f.line(format!(
                            "ld.shared.v4.f32 {{{}}}, [{so}+{}];",
                            w.join(", "),
                            q * 16
                        ));
                        for (j, wj) in w.iter().enumerate() {
                            let a = &acc[q * 4 + j];
                            f.op_to(a, "fma.rn.f32", &[&xv, wj, a]);
                        }
                    }
                });
            });
            // z = acc + bias, stored to the panel's 16 columns of y.
            let bo = f.op(K::Rd, "mul.wide.u32", &[p, &(PANEL * 4).to_string()]);
            let ba = f.op(K::Rd, "add.s64", &[&bbase, &bo]);
            let ya = f.op(K::Rd, "add.s64", &[&ys, &bo]);
            for q in 0..PANEL / 4 {
                let b: Vec<String> = (0..4).map(|_| f.reg(K::F)).collect();
                f.line(format!(
                    "ld.global.nc.v4.f32 {{{}}}, [{ba}+{}];",
                    b.join(", "),
                    q * 16
                ));
                let z: Vec<String> = (0..4).map(|j| f.add(&acc[q * 4 + j], &b[j])).collect();
                f.line(format!(
                    "st.local.v4.f32 [{ya}+{}], {{{}}};",
                    q * 16,
                    z.join(", ")
                ));
            }
        });
        // Epilogue: residual before the activation, activation, residual after.
        let (before, after) = match residual {
            Some((r, true)) => (Some(r), None),
            Some((r, false)) => (None, Some(r)),
            None => (None, None),
        };
        if act == Activation::Softmax {
            if let Some(r) = before {
                self.add_into(y, &r, n_out);
            }
            self.softmax(y, n_out);
            if let Some(r) = after {
                self.add_into(y, &r, n_out);
            }
        } else if before.is_some() || after.is_some() || act != Activation::Linear {
            self.for_width(n_out, |k, j| {
                let mut v = k.ld(y, j);
                if let Some(r) = &before {
                    let rv = k.ld(r, j);
                    v = k.f.add(&v, &rv);
                }
                v = k.act(act, &v);
                if let Some(r) = &after {
                    let rv = k.ld(r, j);
                    v = k.f.add(&v, &rv);
                }
                k.st(y, j, &v);
            });
        }
    }

    /// `y[j] += r[j]` for `j < width`.
    fn add_into(&mut self, y: &Buf, r: &Buf, width: usize) {
        self.for_width(width, |k, j| {
            let a = k.ld(y, j);
            let b = k.ld(r, j);
            let s = k.f.add(&a, &b);
            k.st(y, j, &s);
        });
    }

    fn step(&mut self, i: usize, s: &Step, io: &Io) {
        match s {
            Step::LoadInput { col0, width, dst } => {
                self.f
                    .comment(format!("load input columns {col0}..{}", col0 + width));
                let src = io.input.clone();
                self.for_width(*width, |k, j| {
                    let c = k.f.op(K::R, "add.u32", &[j, &col0.to_string()]);
                    let a = k.f.addr(&src, &c, 4);
                    let v = k.f.op(K::F, "ld.global.nc.f32", &[&format!("[{a}]")]);
                    k.st(dst, j, &v);
                });
            }
            Step::LoadNoise { width, dst } => match &io.noise {
                NoiseSrc::Buffer(src) => {
                    self.f.comment(format!("load {width} noise columns"));
                    let src = src.clone();
                    self.for_width(*width, |k, j| {
                        let a = k.f.addr(&src, j, 4);
                        let v = k.f.op(K::F, "ld.global.nc.f32", &[&format!("[{a}]")]);
                        k.st(dst, j, &v);
                    });
                }
                NoiseSrc::Philox(ph) => {
                    self.f
                        .comment(format!("draw {width} noise columns (Philox4x32-10)"));
                    let base = self.slot[dst.slot].clone();
                    draw_noise(&mut self.f, ph, *width, &|f, pred, col, v| {
                        let a = f.addr(&base, col, 4);
                        f.line(format!("@{pred} st.local.f32 [{a}], {v};"));
                    });
                }
            },
            Step::Copy {
                src,
                src_col0,
                width,
                dst,
                dst_col0,
            } => {
                self.f.comment(format!("copy {width} columns"));
                self.for_width(*width, |k, j| {
                    let sc = k.f.op(K::R, "add.u32", &[j, &src_col0.to_string()]);
                    let dc = k.f.op(K::R, "add.u32", &[j, &dst_col0.to_string()]);
                    let v = k.ld(src, &sc);
                    k.st(dst, &dc, &v);
                });
            }
            Step::Dense {
                node,
                x,
                y,
                n_in,
                n_out,
                kernel,
                bias,
                act,
                residual,
            } => {
                self.f
                    .comment(format!("{node}: dense {n_in} -> {n_out}, {}", act.kind()));
                self.dense(x, y, *n_in, *n_out, *kernel, *bias, *act, *residual);
            }
            Step::Act {
                node,
                data,
                width,
                act,
            } => {
                self.f
                    .comment(format!("{node}: {} on {width} columns", act.kind()));
                if *act == Activation::Softmax {
                    self.softmax(data, *width);
                } else {
                    let a = *act;
                    self.for_width(*width, |k, j| {
                        let v = k.ld(data, j);
                        let r = k.act(a, &v);
                        k.st(data, j, &r);
                    });
                }
            }
            Step::Affine {
                node,
                data,
                cols,
                mul,
                add,
            } => {
                self.f
                    .comment(format!("{node}: x * mul + add on {} columns", cols.len()));
                let (m, a) = (self.warr(*mul, 0), self.warr(*add, 0));
                self.for_cols(i, cols, |k, idx, c| k.affine(data, c, &m, &a, idx));
            }
            Step::ScaleShift {
                node,
                data,
                width,
                mul,
                add,
            } => {
                self.f
                    .comment(format!("{node}: x * mul + add on {width} columns"));
                let (m, a) = (self.warr(*mul, 0), self.warr(*add, 0));
                self.for_width(*width, |k, j| k.affine(data, j, &m, &a, j));
            }
            Step::Quantile {
                node,
                data,
                cols,
                n_quantiles,
                quantiles,
                references,
                normal,
                bounds_threshold,
                inverse,
            } => {
                let dir = if *inverse { "inverse" } else { "forward" };
                self.f.comment(format!(
                    "{node}: quantile transform ({dir}) on {} columns",
                    cols.len()
                ));
                let q0 = self.warr(*quantiles, 0);
                let rb = self.warr(*references, 0);
                let nq = n_quantiles.to_string();
                let norm = if *normal { "1" } else { "0" };
                let bt = dl(*bounds_threshold);
                let eps = f64::EPSILON;
                let clo = dl(crate::reference::normal_ppf(bounds_threshold - eps));
                let chi = dl(crate::reference::normal_ppf(1.0 - (bounds_threshold - eps)));
                let inverse = *inverse;
                let stride = n_quantiles * 4;
                self.for_cols(i, cols, |k, idx, c| {
                    let qb = k.f.addr(&q0, idx, stride as u32);
                    let v = k.ld(data, c);
                    let x = k.f.op(K::D, "cvt.f64.f32", &[&v]);
                    let y = if inverse {
                        k.f.call(Math::QuantileInv, &[&x, &qb, &rb, &nq, norm, &bt])
                    } else {
                        k.f.call(
                            Math::QuantileFwd,
                            &[&x, &qb, &rb, &nq, norm, &bt, &clo, &chi],
                        )
                    };
                    let r = k.f.op(K::F, "cvt.rn.f32.f64", &[&y]);
                    k.st(data, c, &r);
                });
            }
            Step::Logit {
                node,
                data,
                cols,
                scale,
                inverse,
            } => {
                let dir = if *inverse { "inverse" } else { "forward" };
                self.f
                    .comment(format!("{node}: logit ({dir}) on {} columns", cols.len()));
                let s = dl(*scale as f64);
                let inverse = *inverse;
                self.for_cols(i, cols, |k, _, c| {
                    let v = k.ld(data, c);
                    let x = k.f.op(K::D, "cvt.f64.f32", &[&v]);
                    let y = if inverse {
                        // 1 / (1 + exp(−x / s))
                        let nx = k.f.op(K::D, "neg.f64", &[&x]);
                        let q = k.f.ddiv(&nx, &s);
                        let e = k.f.call(Math::ExpF64, &[&q]);
                        let d = k.f.dadd(&dl(1.0), &e);
                        k.f.ddiv(&dl(1.0), &d)
                    } else {
                        // s · ln(x / (1 − x))
                        let om = k.f.dsub(&dl(1.0), &x);
                        let q = k.f.ddiv(&x, &om);
                        let l = k.f.call(Math::LogF64, &[&q]);
                        k.f.dmul(&s, &l)
                    };
                    let r = k.f.op(K::F, "cvt.rn.f32.f64", &[&y]);
                    k.st(data, c, &r);
                });
            }
            Step::MatMul {
                node,
                x,
                y,
                n,
                m,
                sub,
            } => {
                self.f.comment(format!(
                    "{node}: (x - sub) * M, {n} x {n}, f64 accumulation"
                ));
                let mb = self.warr(*m, 0);
                let sb = sub.map(|s| self.warr(s, 0));
                let n = *n;
                self.for_width(n, |k, j| {
                    let acc = k.f.reg(K::D);
                    k.f.op_to(&acc, "mov.f64", &[&dl(0.0)]);
                    let colbase = k.f.addr(&mb, j, 4);
                    k.for_width(n, |k, kk| {
                        let xv = k.ld(x, kk);
                        let xd = k.f.op(K::D, "cvt.f64.f32", &[&xv]);
                        let xd = match &sb {
                            Some(sb) => {
                                let sa = k.f.addr(sb, kk, 4);
                                let sv = k.f.op(K::F, "ld.global.nc.f32", &[&format!("[{sa}]")]);
                                let sd = k.f.op(K::D, "cvt.f64.f32", &[&sv]);
                                k.f.dsub(&xd, &sd)
                            }
                            None => xd,
                        };
                        let wa = k.f.addr(&colbase, kk, (n * 4) as u32);
                        let wv = k.f.op(K::F, "ld.global.nc.f32", &[&format!("[{wa}]")]);
                        let wd = k.f.op(K::D, "cvt.f64.f32", &[&wv]);
                        let t = k.f.dmul(&xd, &wd);
                        k.f.op_to(&acc, "add.rn.f64", &[&acc, &t]);
                    });
                    let r = k.f.op(K::F, "cvt.rn.f32.f64", &[&acc]);
                    k.st(y, j, &r);
                });
            }
            Step::LayerNorm {
                node,
                data,
                width,
                gamma,
                beta,
                eps,
            } => {
                self.f.comment(format!(
                    "{node}: layer norm on {width} columns, f64 statistics"
                ));
                let gb = gamma.map(|g| self.warr(g, 0));
                let bb = beta.map(|b| self.warr(b, 0));
                let w = *width;
                let sum = self.f.reg(K::D);
                self.f.op_to(&sum, "mov.f64", &[&dl(-0.0)]);
                self.for_width(w, |k, j| {
                    let v = k.ld(data, j);
                    let d = k.f.op(K::D, "cvt.f64.f32", &[&v]);
                    k.f.op_to(&sum, "add.rn.f64", &[&sum, &d]);
                });
                let mean = self.f.ddiv(&sum, &dl(w as f64));
                let var = self.f.reg(K::D);
                self.f.op_to(&var, "mov.f64", &[&dl(-0.0)]);
                self.for_width(w, |k, j| {
                    let v = k.ld(data, j);
                    let d = k.f.op(K::D, "cvt.f64.f32", &[&v]);
                    let c = k.f.dsub(&d, &mean);
                    let c2 = k.f.dmul(&c, &c);
                    k.f.op_to(&var, "add.rn.f64", &[&var, &c2]);
                });
                let var = self.f.ddiv(&var, &dl(w as f64));
                let ve = self.f.dadd(&var, &dl(*eps as f64));
                let sd = self.f.op(K::D, "sqrt.rn.f64", &[&ve]);
                let inv = self.f.ddiv(&dl(1.0), &sd);
                self.for_width(w, |k, j| {
                    let v = k.ld(data, j);
                    let d = k.f.op(K::D, "cvt.f64.f32", &[&v]);
                    let c = k.f.dsub(&d, &mean);
                    let mut t = k.f.dmul(&c, &inv);
                    if let Some(g) = &gb {
                        let a = k.f.addr(g, j, 4);
                        let gv = k.f.op(K::F, "ld.global.nc.f32", &[&format!("[{a}]")]);
                        let gd = k.f.op(K::D, "cvt.f64.f32", &[&gv]);
                        t = k.f.dmul(&t, &gd);
                    }
                    if let Some(b) = &bb {
                        let a = k.f.addr(b, j, 4);
                        let bv = k.f.op(K::F, "ld.global.nc.f32", &[&format!("[{a}]")]);
                        let bd = k.f.op(K::D, "cvt.f64.f32", &[&bv]);
                        t = k.f.dadd(&t, &bd);
                    }
                    let r = k.f.op(K::F, "cvt.rn.f32.f64", &[&t]);
                    k.st(data, j, &r);
                });
            }
            Step::Add {
                node,
                a,
                b,
                y,
                width,
            } => {
                self.f.comment(format!("{node}: add {width} columns"));
                self.for_width(*width, |k, j| {
                    let u = k.ld(a, j);
                    let v = k.ld(b, j);
                    let s = k.f.add(&u, &v);
                    k.st(y, j, &s);
                });
            }
            Step::Mul {
                node,
                a,
                b,
                y,
                width,
            } => {
                self.f.comment(format!("{node}: mul {width} columns"));
                self.for_width(*width, |k, j| {
                    let u = k.ld(a, j);
                    let v = k.ld(b, j);
                    let s = k.f.mul(&u, &v);
                    k.st(y, j, &s);
                });
            }
            // Rejected by `check` before any text is written.
            Step::Flow { .. } => {}
            Step::Store { src, width, col0 } => {
                self.f
                    .comment(format!("store output columns {col0}..{}", col0 + width));
                let dst = io.output.clone();
                let active = io.active.clone();
                self.for_width(*width, |k, j| {
                    let v = k.ld(src, j);
                    let c = k.f.op(K::R, "add.u32", &[j, &col0.to_string()]);
                    let a = k.f.addr(&dst, &c, 4);
                    k.f.line(format!("@{active} st.global.f32 [{a}], {v};"));
                });
            }
        }
    }
}

fn elu(f: &mut Fb, x: &str, neg: f32, pos: f32) -> String {
    let mn = f.min(&fl(0.0), x);
    let e = f.call(Math::Expm1F32, &[&mn]);
    let m = f.mul(&e, &fl(neg));
    let p = f.mul(x, &fl(pos));
    f.lt_select(&fl(0.0), x, &p, &m)
}

/// Row base addresses and the store predicate.
struct Io {
    input: String,
    noise: NoiseSrc,
    output: String,
    active: String,
}

/// Where a kernel's noise comes from.
enum NoiseSrc {
    /// The row's slice of the caller's noise buffer (address register).
    Buffer(String),
    /// Drawn in the kernel.
    Philox(Philox),
}

/// The registers of a row's random stream: round keys, counter words 1..4, first draw.
#[derive(Clone)]
struct Philox {
    /// Round keys `(k0, k1)` of rounds 0..10.
    keys: Vec<(String, String)>,
    /// Counter words 1, 2, 3 (particle, event bits 0..32, event bits 32..48 | stream | domain).
    tail: [String; 3],
    /// Draw index of noise column 0.
    offset: String,
    dist: Distribution,
}

// ---------------------------------------------------------------------------------------------
// In-kernel noise: the runtime's `rng` module (Philox4x32-10, uniforms, Box-Muller with its own
// `ln` and `sin`/`cos` polynomials), operation for operation. Every f32 operation is a separately
// rounded `add.rn`/`sub.rn`/`mul.rn`/`div.rn`/`sqrt.rn` (never an FMA, as on the CPU), and the
// rest is exact integer arithmetic, so the GPU draws the CPU's bits.

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;
const RNG_TWO_M24: f32 = 1.0 / 16_777_216.0;
const RNG_TWO_M22: f32 = 1.0 / 4_194_304.0;
const RNG_LN2_HI: f32 = 0.693_145_75;
const RNG_LN2_LO: f32 = 1.428_606_8e-6;
const RNG_SQRT_HALF_BITS: u32 = 0x3f35_04f3;
const RNG_L: [f32; 4] = [0.111_111_11, 0.142_857_15, 0.2, 0.333_333_34];
const RNG_S: [u32; 5] = [
    0x3928_3c1a,
    0xbb99_6966,
    0x3da3_35e3,
    0xbf25_5de7,
    0x3fc9_0fdb,
];
const RNG_C: [u32; 5] = [
    0xb7d3_68f9,
    0x3a70_fa83,
    0xbcaa_e9e4,
    0x3e81_e0f8,
    0xbf9d_e9e6,
];

/// Counter word 3's domain byte of a distribution (the runtime's `rng::Domain`).
fn rng_domain(d: Distribution) -> u32 {
    match d {
        Distribution::Uniform => 0,
        Distribution::Normal => 1,
    }
}

/// Loads the stream parameters of entry `entry` for row `rowc` and sets up the round keys and
/// the counter tail.
fn philox_setup(f: &mut Fb, entry: &str, rowc: &str, dist: Distribution) -> Philox {
    let lo = f.op(K::R, "ld.param.u32", &[&format!("[{entry}_seed_lo]")]);
    let hi = f.op(K::R, "ld.param.u32", &[&format!("[{entry}_seed_hi]")]);
    let stream = f.op(K::R, "ld.param.u32", &[&format!("[{entry}_stream]")]);
    let pev = f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_events]")]);
    let ppa = f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_particles]")]);
    let offset = f.op(K::R, "ld.param.u32", &[&format!("[{entry}_draw_offset]")]);
    let gev = f.op(K::Rd, "cvta.to.global.u64", &[&pev]);
    let gpa = f.op(K::Rd, "cvta.to.global.u64", &[&ppa]);
    let aev = f.addr(&gev, rowc, 8);
    let event = f.op(K::Rd, "ld.global.nc.u64", &[&format!("[{aev}]")]);
    let apa = f.addr(&gpa, rowc, 4);
    let particle = f.op(K::R, "ld.global.nc.u32", &[&format!("[{apa}]")]);
    let ev_lo = f.op(K::R, "cvt.u32.u64", &[&event]);
    let ev_hi = f.op(K::Rd, "shr.u64", &[&event, "32"]);
    let ev_hi = f.op(K::R, "cvt.u32.u64", &[&ev_hi]);
    let ev_hi = f.op(K::R, "and.b32", &[&ev_hi, "0xFFFF"]);
    let st = f.op(K::R, "and.b32", &[&stream, "0xFF"]);
    let st = f.op(K::R, "shl.b32", &[&st, "16"]);
    let w3 = f.op(K::R, "or.b32", &[&ev_hi, &st]);
    let w3 = f.op(
        K::R,
        "or.b32",
        &[&w3, &format!("{}", rng_domain(dist) << 24)],
    );
    let mut keys = vec![(lo, hi)];
    for _ in 1..10 {
        let (k0, k1) = keys.last().unwrap().clone();
        let k0 = f.op(K::R, "add.u32", &[&k0, &format!("{PHILOX_W0}")]);
        let k1 = f.op(K::R, "add.u32", &[&k1, &format!("{PHILOX_W1}")]);
        keys.push((k0, k1));
    }
    Philox {
        keys,
        tail: [particle, ev_lo, w3],
        offset,
        dist,
    }
}

/// The four words of Philox block `block` (u32 register).
fn philox_block(f: &mut Fb, ph: &Philox, block: &str) -> [String; 4] {
    let mut c = [
        block.to_owned(),
        ph.tail[0].clone(),
        ph.tail[1].clone(),
        ph.tail[2].clone(),
    ];
    for (k0, k1) in &ph.keys {
        let hi0 = f.op(K::R, "mul.hi.u32", &[&c[0], &format!("{PHILOX_M0}")]);
        let lo0 = f.op(K::R, "mul.lo.u32", &[&c[0], &format!("{PHILOX_M0}")]);
        let hi1 = f.op(K::R, "mul.hi.u32", &[&c[2], &format!("{PHILOX_M1}")]);
        let lo1 = f.op(K::R, "mul.lo.u32", &[&c[2], &format!("{PHILOX_M1}")]);
        let x0 = f.op(K::R, "xor.b32", &[&hi1, &c[1]]);
        let x0 = f.op(K::R, "xor.b32", &[&x0, k0]);
        let x2 = f.op(K::R, "xor.b32", &[&hi0, &c[3]]);
        let x2 = f.op(K::R, "xor.b32", &[&x2, k1]);
        c = [x0, lo1, x2, lo0];
    }
    c
}

/// `2·(x >> 9) + 1`.
fn rng_odd24(f: &mut Fb, x: &str) -> String {
    let t = f.op(K::R, "shr.u32", &[x, "9"]);
    let t = f.op(K::R, "shl.b32", &[&t, "1"]);
    f.op(K::R, "or.b32", &[&t, "1"])
}

/// The runtime's `rng::ln_uniform`.
fn rng_ln_uniform(f: &mut Fb, x: &str) -> String {
    let o = rng_odd24(f, x);
    let m = f.op(K::F, "cvt.rn.f32.u32", &[&o]);
    let mb = f.op(K::R, "mov.b32", &[&m]);
    let ix = f.op(
        K::R,
        "add.u32",
        &[&mb, &format!("{}", 0x3f80_0000u32 - RNG_SQRT_HALF_BITS)],
    );
    let k = f.op(K::R, "shr.u32", &[&ix, "23"]);
    let k = f.op(K::R, "sub.s32", &[&k, "151"]);
    let mm = f.op(K::R, "and.b32", &[&ix, "0x007FFFFF"]);
    let mm = f.op(K::R, "add.u32", &[&mm, &format!("{RNG_SQRT_HALF_BITS}")]);
    let mm = f.op(K::F, "mov.b32", &[&mm]);
    let fr = f.sub(&mm, &fl(1.0));
    let den = f.add(&mm, &fl(1.0));
    let s = f.div(&fr, &den);
    let z = f.mul(&s, &s);
    // `L9 · z` written `z · L9` (a register first; the product is the same).
    let mut p = f.mul(&z, &fl(RNG_L[0]));
    p = f.add(&p, &fl(RNG_L[1]));
    for &c in &RNG_L[2..] {
        let t = f.mul(&p, &z);
        p = f.add(&t, &fl(c));
    }
    let r = f.mul(&p, &z);
    let s2 = f.add(&s, &s);
    let t = f.mul(&s2, &r);
    let lnm = f.add(&s2, &t);
    let kf = f.op(K::F, "cvt.rn.f32.s32", &[&k]);
    let hi = f.mul(&kf, &fl(RNG_LN2_HI));
    let lo = f.mul(&kf, &fl(RNG_LN2_LO));
    let lo = f.add(&lo, &lnm);
    f.add(&hi, &lo)
}

/// `p = c[0]; p = p·z + c[i]` with separate roundings.
fn rng_horner(f: &mut Fb, z: &str, c: &[u32]) -> String {
    let t = f.mul(z, &fl(f32::from_bits(c[0])));
    let mut p = f.add(&t, &fl(f32::from_bits(c[1])));
    for &ci in &c[2..] {
        let t = f.mul(&p, z);
        p = f.add(&t, &fl(f32::from_bits(ci)));
    }
    p
}

/// The runtime's `rng::sincos_turn`: `(cos 2πu, sin 2πu)`.
fn rng_sincos_turn(f: &mut Fb, x: &str) -> (String, String) {
    let m = rng_odd24(f, x);
    let q = f.op(K::R, "add.u32", &[&m, "2097152"]);
    let q = f.op(K::R, "shr.u32", &[&q, "22"]);
    let q22 = f.op(K::R, "shl.b32", &[&q, "22"]);
    let d = f.op(K::R, "sub.s32", &[&m, &q22]);
    let df = f.op(K::F, "cvt.rn.f32.s32", &[&d]);
    let fr = f.mul(&df, &fl(RNG_TWO_M22));
    let z = f.mul(&fr, &fr);
    let ps = rng_horner(f, &z, &RNG_S);
    let s = f.mul(&ps, &fr);
    let pc = rng_horner(f, &z, &RNG_C);
    let t = f.mul(&pc, &z);
    let c = f.add(&t, &fl(1.0));
    let odd = f.op(K::R, "and.b32", &[&q, "1"]);
    let swap = f.op(K::P, "setp.ne.u32", &[&odd, "0"]);
    let x0 = f.op(K::F, "selp.f32", &[&s, &c, &swap]);
    let y0 = f.op(K::F, "selp.f32", &[&c, &s, &swap]);
    let q1 = f.op(K::R, "add.u32", &[&q, "1"]);
    let cs = f.op(K::R, "and.b32", &[&q1, "2"]);
    let cs = f.op(K::R, "shl.b32", &[&cs, "30"]);
    let ss = f.op(K::R, "and.b32", &[&q, "2"]);
    let ss = f.op(K::R, "shl.b32", &[&ss, "30"]);
    let xb = f.op(K::R, "mov.b32", &[&x0]);
    let xb = f.op(K::R, "xor.b32", &[&xb, &cs]);
    let yb = f.op(K::R, "mov.b32", &[&y0]);
    let yb = f.op(K::R, "xor.b32", &[&yb, &ss]);
    (f.op(K::F, "mov.b32", &[&xb]), f.op(K::F, "mov.b32", &[&yb]))
}

/// The runtime's `rng::box_muller`: `(r cos θ, r sin θ)`.
fn rng_box_muller(f: &mut Fb, x0: &str, x1: &str) -> (String, String) {
    let l = rng_ln_uniform(f, x0);
    let t = f.mul(&l, &fl(-2.0));
    let r = f.op(K::F, "sqrt.rn.f32", &[&t]);
    let (c, s) = rng_sincos_turn(f, x1);
    (f.mul(&r, &c), f.mul(&r, &s))
}

/// Draws `ph.offset .. ph.offset + width` of the row's stream: a loop over the Philox blocks
/// that hold them; `store(f, pred, col, value)` stores draw `offset + col` where `pred` holds.
fn draw_noise(f: &mut Fb, ph: &Philox, width: usize, store: &dyn Fn(&mut Fb, &str, &str, &str)) {
    if width == 0 {
        return;
    }
    let first = f.op(K::R, "shr.u32", &[&ph.offset, "2"]);
    let lastd = f.op(K::R, "add.u32", &[&ph.offset, &(width - 1).to_string()]);
    let last = f.op(K::R, "shr.u32", &[&lastd, "2"]);
    let b = f.reg(K::R);
    let (head, end) = (f.label(), f.label());
    f.op_to(&b, "mov.u32", &[&first]);
    f.place(&head);
    let done = f.op(K::P, "setp.gt.u32", &[&b, &last]);
    f.line(format!("@{done} bra {end};"));
    let w = philox_block(f, ph, &b);
    let v: [String; 4] = match ph.dist {
        Distribution::Uniform => w.map(|x| {
            let o = rng_odd24(f, &x);
            let u = f.op(K::F, "cvt.rn.f32.u32", &[&o]);
            f.mul(&u, &fl(RNG_TWO_M24))
        }),
        Distribution::Normal => {
            let (a, bb) = rng_box_muller(f, &w[0], &w[1]);
            let (c, d) = rng_box_muller(f, &w[2], &w[3]);
            [a, bb, c, d]
        }
    };
    // Column of draw 4b + j: 4b + j − offset (wraps for draws before the offset).
    let d0 = f.op(K::R, "shl.b32", &[&b, "2"]);
    let c0 = f.op(K::R, "sub.u32", &[&d0, &ph.offset]);
    for (j, vj) in v.iter().enumerate() {
        let col = f.op(K::R, "add.u32", &[&c0, &j.to_string()]);
        let ok = f.op(K::P, "setp.lt.u32", &[&col, &width.to_string()]);
        store(f, &ok, &col, vj);
    }
    f.op_to(&b, "add.u32", &[&b, "1"]);
    f.line(format!("bra {head};"));
    f.place(&end);
}

/// The entry's parameters of the stream (after the model's own).
const PHILOX_PARAMS: [(&str, &str); 6] = [
    (".u32", "seed_lo"),
    (".u32", "seed_hi"),
    (".u32", "stream"),
    (".u64", "events"),
    (".u64", "particles"),
    (".u32", "draw_offset"),
];

/// Which kernel entry is being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `flashc_<name>`: noise from the caller's buffer.
    Buffer,
    /// `flashc_<name>_philox`: noise drawn in the kernel.
    Philox,
}

/// One kernel entry of the model (header, declarations and body) and its module-scope needs.
fn model_entry(p: &Program, mode: Mode) -> (String, Vec<String>, Vec<Math>) {
    let entry = match mode {
        Mode::Buffer => entry_name(&p.name),
        Mode::Philox => philox_entry_name(&p.name),
    };
    let n_in = p.input_columns.len();
    let n_out = p.output_columns.len();
    let mut k = Kernel {
        p,
        f: Fb::default(),
        slot: Vec::new(),
        weights: String::new(),
        tid: String::new(),
        globals: Vec::new(),
    };
    // Parameters and the thread's row.
    let f = &mut k.f;
    let pin = f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_inputs]")]);
    let pnz = match mode {
        Mode::Buffer => Some(f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_noise]")])),
        Mode::Philox => None,
    };
    let pout = f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_outputs]")]);
    let pw = f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_weights]")]);
    let rows = f.op(K::R, "ld.param.u32", &[&format!("[{entry}_rows]")]);
    let gin = f.op(K::Rd, "cvta.to.global.u64", &[&pin]);
    let gnz = pnz.map(|pnz| f.op(K::Rd, "cvta.to.global.u64", &[&pnz]));
    let gout = f.op(K::Rd, "cvta.to.global.u64", &[&pout]);
    let gw = f.op(K::Rd, "cvta.to.global.u64", &[&pw]);
    let tid = f.op(K::R, "mov.u32", &["%tid.x"]);
    let cta = f.op(K::R, "mov.u32", &["%ctaid.x"]);
    let row = f.op(K::R, "mad.lo.u32", &[&cta, &BLOCK.to_string(), &tid]);
    let active = f.op(K::P, "setp.lt.u32", &[&row, &rows]);
    let last = f.op(K::R, "sub.u32", &[&rows, "1"]);
    let rowc = f.op(K::R, "min.u32", &[&row, &last]);
    let input = f.addr(&gin, &rowc, (n_in * 4) as u32);
    let noise = match gnz {
        Some(gnz) => NoiseSrc::Buffer(f.addr(&gnz, &rowc, (p.n_noise * 4) as u32)),
        None => NoiseSrc::Philox(philox_setup(
            f,
            &entry,
            &rowc,
            p.noise.unwrap_or(Distribution::Normal),
        )),
    };
    let output = f.addr(&gout, &rowc, (n_out * 4) as u32);
    let slots: Vec<String> = (0..p.slots.len())
        .map(|s| f.op(K::Rd, "mov.u64", &[&format!("flashc_slot{s}")]))
        .collect();
    k.slot = slots;
    k.weights = gw;
    k.tid = tid;
    let io = Io {
        input,
        noise,
        output,
        active,
    };
    for (i, s) in p.steps.iter().enumerate() {
        k.step(i, s, &io);
    }
    k.f.line("ret;");

    let mut params: Vec<(&str, &str)> = vec![(".u64", "inputs")];
    if mode == Mode::Buffer {
        params.push((".u64", "noise"));
    }
    params.extend([(".u64", "outputs"), (".u64", "weights"), (".u32", "rows")]);
    if mode == Mode::Philox {
        params.extend(PHILOX_PARAMS);
    }
    let mut out = entry_header(&entry, &params);
    for (s, size) in p.slots.iter().enumerate() {
        let _ = writeln!(out, "\t.local .align 16 .b8 flashc_slot{s}[{}];", size * 4);
    }
    if p.steps.iter().any(|s| matches!(s, Step::Dense { .. })) {
        let _ = writeln!(
            out,
            "\t.shared .align 16 .b8 flashc_wtile[{}];",
            K_TILE * PANEL * 4
        );
    }
    out.push_str(&k.f.decls());
    out.push_str(&k.f.body);
    out.push_str("}\n");
    (out, k.globals, k.f.calls)
}

/// `.visible .entry <entry>(params) .maxntid … {`.
fn entry_header(entry: &str, params: &[(&str, &str)]) -> String {
    let list: Vec<String> = params
        .iter()
        .map(|(ty, n)| format!("\t.param {ty} {entry}_{n}"))
        .collect();
    format!(
        ".visible .entry {entry}(\n{}\n)\n.maxntid {BLOCK}, 1, 1\n{{\n",
        list.join(",\n")
    )
}

/// `flashc_<name>_draw_noise(noise, rows, seed_lo, seed_hi, stream, events, particles, draw_offset)`:
/// writes row `r`'s `N_NOISE` draws to `noise[r·N_NOISE ..]`.
fn noise_entry(p: &Program, dist: Distribution) -> String {
    let entry = noise_entry_name(&p.name);
    let mut f = Fb::default();
    let pnz = f.op(K::Rd, "ld.param.u64", &[&format!("[{entry}_noise]")]);
    let rows = f.op(K::R, "ld.param.u32", &[&format!("[{entry}_rows]")]);
    let gnz = f.op(K::Rd, "cvta.to.global.u64", &[&pnz]);
    let tid = f.op(K::R, "mov.u32", &["%tid.x"]);
    let cta = f.op(K::R, "mov.u32", &["%ctaid.x"]);
    let row = f.op(K::R, "mad.lo.u32", &[&cta, &BLOCK.to_string(), &tid]);
    let idle = f.op(K::P, "setp.ge.u32", &[&row, &rows]);
    let end = f.label();
    f.line(format!("@{idle} bra {end};"));
    let ph = philox_setup(&mut f, &entry, &row, dist);
    let dst = f.addr(&gnz, &row, (p.n_noise * 4) as u32);
    draw_noise(&mut f, &ph, p.n_noise, &|f, pred, col, v| {
        let a = f.addr(&dst, col, 4);
        f.line(format!("@{pred} st.global.f32 [{a}], {v};"));
    });
    f.place(&end);
    f.line("ret;");
    let mut params = vec![(".u64", "noise"), (".u32", "rows")];
    params.extend(PHILOX_PARAMS);
    let mut out = entry_header(&entry, &params);
    out.push_str(&f.decls());
    out.push_str(&f.body);
    out.push_str("}\n");
    out
}

fn model_ptx_with_ops(p: &Program, ops: &BTreeMap<String, String>) -> Result<String, Error> {
    check(p, ops)?;
    let entry = entry_name(&p.name);
    let n_in = p.input_columns.len();
    let n_out = p.output_columns.len();
    let mut entries = Vec::new();
    let (text, globals, mut need) = model_entry(p, Mode::Buffer);
    entries.push(text);
    let noise = p.noise.filter(|_| p.n_noise > 0);
    if let Some(dist) = noise {
        // Same steps, same module-scope tables; only the noise source differs.
        let (text, _, calls) = model_entry(p, Mode::Philox);
        entries.push(text);
        need.extend(calls);
        entries.push(noise_entry(p, dist));
    }

    // Math functions: the closure of what the kernels call, in a fixed order.
    let mut texts: BTreeMap<Math, String> = BTreeMap::new();
    while let Some(m) = need.pop() {
        if texts.contains_key(&m) {
            continue;
        }
        let (text, calls) = math_function(m);
        texts.insert(m, text);
        need.extend(calls);
        need.extend(m.deps());
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by flashc from {}. Do not edit.",
        p.source
    );
    let _ = writeln!(
        out,
        "// Model `{}`: {} inputs, {} noise, {} outputs; {} multiply-adds per row.",
        p.name, n_in, p.n_noise, n_out, p.macs_per_row
    );
    let _ = writeln!(out, "// Kernel {entry}(inputs, noise, outputs, weights, rows): one thread per row, blocks of {BLOCK} threads.");
    if noise.is_some() {
        let _ = writeln!(out, "// Kernel {}(inputs, outputs, weights, rows, seed_lo, seed_hi, stream, events, particles, draw_offset): the noise drawn in the kernel (Philox4x32-10, the runtime's rng).", philox_entry_name(&p.name));
        let _ = writeln!(out, "// Kernel {}(noise, rows, seed_lo, seed_hi, stream, events, particles, draw_offset): only the noise.", noise_entry_name(&p.name));
    }
    let _ = writeln!(
        out,
        "// Weights: {}.weights.bin ({} floats).",
        p.name,
        p.blob.len()
    );
    let _ = writeln!(out);
    let _ = writeln!(out, ".version {PTX_VERSION}");
    let _ = writeln!(out, ".target {PTX_TARGET}");
    let _ = writeln!(out, ".address_size 64");
    let _ = writeln!(out);
    for g in &globals {
        let _ = writeln!(out, "{g}");
    }
    if !globals.is_empty() {
        let _ = writeln!(out);
    }
    for m in Math::ALL {
        if let Some(t) = texts.get(&m) {
            let _ = writeln!(out, "{t}");
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(e);
    }
    Ok(out)
}
