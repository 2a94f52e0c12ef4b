//! Normalizing-flow kernels: masked autoregressive transforms (MAF) driven by a MADE, in both
//! directions, with the inverse computed in **one sweep**; and the small column kernels around
//! them (permutation, standard-normal log density). See `docs/flows.md` for the maths.
//!
//! # The MADE as a degree-sliced program
//!
//! A MADE assigns every unit a *degree*. Input feature `i` has degree `i + 1` (features are
//! taken in degree order, see [`Made::order`]); a hidden unit of degree `k` may only read units
//! of degree `≤ k`; the `m` outputs of feature `i` (degree `i + 1`) may only read hidden units of
//! degree `≤ i`. Hidden units are stored **sorted by degree**, so the units of degree `≤ k` of a
//! value are its first `bounds[k]` units ([`Value::bounds`]) and the units of degree exactly `k`
//! (its *group* `k`) are contiguous.
//!
//! The network is a list of [`MadeOp`]s over hidden [`Value`]s, run group by group: for a group
//! `k` every op computes the units of degree `k` of its destination, reading prefixes of its
//! source. A masked layer's weights are stored per destination group, as the dense block over
//! the source prefix only (the masked-out rest is all zeros and is not stored):
//!
//! ```text
//! for k in 0..features:  P = src.bounds[k] (src = input: P = k),  g = dst group k,  gp = padded(|g|)
//!     block_k[v * gp + j] = W[g.start + j][v]      (v < P, j < |g|; 0 for j ≥ |g|)
//! weight = block_0 ‖ block_1 ‖ … ‖ SLACK zeros
//! ```
//!
//! The output layer is stored the same way per feature (`P = src.bounds[i]`, `m` rows, padded to
//! [`padded`]`(m)`), and a context layer as one block over all `C` context columns and all units.
//! Biases and per-unit vectors are plain arrays in sorted unit order. Every array ends with
//! [`SLACK`] extra floats (vector loads of a partial group may read past the last unit).
//!
//! # The one-sweep inverse
//!
//! nflows and zuko invert a MAF with `D` full MADE passes. Here, feature `k`'s parameters need
//! only the hidden units of degree `< k + 1`, and a hidden unit of degree `k` needs only
//! features of degree `≤ k`. So the inverse is one sweep `k = 0, 1, …, D − 1`: compute feature
//! `k` from its parameters, then every op's group `k + 1` … exactly one MADE forward of work
//! (less: the masked zeros are never multiplied). Each unit is a sum over its source prefix in
//! ascending order, one FMA per term, then `+ bias`: the same operations as a full masked pass
//! over the same sorted units (which adds exact zeros for the masked terms), so the sweep is
//! bit-identical to the `D`-pass inverse ([`maf_naive`] is that algorithm, kept for tests).
//!
//! # Paths
//!
//! * Batches (≥ 4 rows): *rows on lanes*. A sub-tile of 16 or 32 rows is transposed into the
//!   scratch buffer, one `[unit][rows]` array per value, and every unit is computed for a whole
//!   vector of rows at once (register blocks of units × row vectors; the weights are
//!   broadcast). Group sizes do not matter for the vector width.
//! * Fewer rows: one row at a time, *units on lanes* (a group's units form the vector).
//!
//! Both run exactly the same operations per row, so a row's result does not depend on the batch
//! size or its position, and AVX2 and AVX-512 give identical bits.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

use crate::act::{act_v, Activation};
use crate::isa::Tier;
use crate::math::log_v;
use crate::simd::Simd;

/// Group widths are padded to a multiple of `PAD` floats in packed weights.
pub const PAD: usize = 8;
/// Every packed array ends with this many extra floats.
pub const SLACK: usize = 16;
/// Largest number of rows in a rows-on-lanes sub-tile.
pub const MAX_SUBTILE: usize = 32;
/// Rows in one rows-on-lanes sub-tile step (the sub-tile is 1 or 2 of these).
pub const ROW_BLOCK: usize = 16;
/// Most hidden values a MADE may have.
pub const MAX_VALUES: usize = 64;
/// Most ops a MADE may have.
pub const MAX_OPS: usize = 128;
/// Most dot-product chains the one-row path runs side by side (masked ops + the output).
const MAX_CHAINS: usize = 32;

/// `n` rounded up to a multiple of [`PAD`].
pub const fn padded(n: usize) -> usize {
    n.div_ceil(PAD) * PAD
}

/// A hidden value: its units sorted by degree.
#[derive(Clone, Copy, Debug)]
pub struct Value<'a> {
    /// `bounds[k]`: number of units of degree `≤ k`, for `k = 0..features`; non-decreasing, the
    /// last entry is the width.
    pub bounds: &'a [u32],
}

impl Value<'_> {
    /// Number of units.
    pub fn width(&self) -> usize {
        self.bounds.last().copied().unwrap_or(0) as usize
    }

    /// Units of degree exactly `k`: `start..end`.
    fn group(&self, k: usize) -> (usize, usize) {
        let start = if k == 0 {
            0
        } else {
            self.bounds[k - 1] as usize
        };
        (start, self.bounds[k] as usize)
    }
}

/// The source of a masked layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// The MADE's input features (degree order).
    Input,
    /// A hidden value.
    Value(usize),
}

/// `values[dst] = act(context · W + b)`, computed once per row before the sweep.
#[derive(Clone, Copy, Debug)]
pub struct ContextLayer<'a> {
    /// Destination value (all its units).
    pub dst: usize,
    /// `[C][padded(width)]` (`weight[c * padded(width) + u] = W[u][c]`) + [`SLACK`].
    pub weight: &'a [f32],
    /// `width` + [`SLACK`].
    pub bias: &'a [f32],
    /// Applied after the bias.
    pub act: Activation,
}

/// One op of the MADE program, run per degree group.
#[derive(Clone, Copy, Debug)]
pub enum MadeOp<'a> {
    /// `dst[g] = (Σ_v src[v]·W[g][v] + b[g]) (+ add[g])` over the source prefix, in ascending
    /// order of `v`, one FMA per term. `add` has `dst`'s degrees (it may be `dst` itself).
    Masked {
        src: Src,
        dst: usize,
        /// Packed per destination group (module docs).
        weight: &'a [f32],
        /// `width(dst)` + [`SLACK`].
        bias: &'a [f32],
        add: Option<usize>,
    },
    /// `dst[g] = act(src[g]·mul[g] + add[g])` (`affine` absent: `act(src[g])`); same degrees.
    Map {
        src: usize,
        dst: usize,
        /// `(mul, add)`, each `width` + [`SLACK`] (a batch norm in inference mode).
        affine: Option<(&'a [f32], &'a [f32])>,
        act: Activation,
    },
}

/// The output layer: `params` values per feature.
#[derive(Clone, Copy, Debug)]
pub struct Output<'a> {
    /// The hidden value read.
    pub src: usize,
    /// Parameters per feature (`m`).
    pub params: usize,
    /// Packed per feature (module docs).
    pub weight: &'a [f32],
    /// `features · params` (feature-major, in degree order) + [`SLACK`].
    pub bias: &'a [f32],
}

/// A MADE, as a degree-sliced program.
#[derive(Clone, Copy, Debug)]
pub struct Made<'a> {
    /// `D`.
    pub features: usize,
    /// `C` (0: no context).
    pub context: usize,
    /// `order[k]`: the column (of the transform's input and output rows) of the feature of
    /// degree `k + 1`; `None`: column `k`.
    pub order: Option<&'a [u32]>,
    /// The hidden values.
    pub values: &'a [Value<'a>],
    /// Computed first, once per row.
    pub context_layers: &'a [ContextLayer<'a>],
    /// Run in order for each degree group.
    pub ops: &'a [MadeOp<'a>],
    /// The parameters of each feature.
    pub output: Output<'a>,
}

/// How an affine transform's scale is made from its unconstrained parameter `u`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// `s = softplus(u) + eps`, softplus as PyTorch's (`u > threshold → u`) (nflows).
    Softplus { threshold: f32, eps: f32 },
    /// `s = exp(u / (1 + |u| / bound))` (zuko's soft clip of the log scale).
    SoftClipExp { bound: f32 },
    /// `s = factor·σ(u + offset) + eps` (FlashSim's `sigmoid` affine type).
    Sigmoid { factor: f32, offset: f32, eps: f32 },
    /// `s = factor·atan(u / factor)` (FlashSim's `atan` affine type, with a [`Affine::clamp`]).
    Atan { factor: f32 },
}

/// What is done to the shift parameter `t`: `shift = t + offset`, then `clamp(shift, min, max)`
/// when `clamp` is given, in the forward direction always and when inverting only if
/// `clamp_inverse` (FlashSim).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    pub offset: f32,
    /// `(min, max)`.
    pub clamp: Option<(f32, f32)>,
    pub clamp_inverse: bool,
}

impl Shift {
    /// The shift parameter as it is (nflows, zuko).
    pub const NONE: Shift = Shift {
        offset: 0.0,
        clamp: None,
        clamp_inverse: false,
    };
}

/// The elementwise affine transform of a MAF: forward (data → noise) `y = s·x + shift`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    pub scale: Scale,
    /// Which of a feature's parameters is the unconstrained scale.
    pub scale_param: usize,
    /// Which is the shift.
    pub shift_param: usize,
    /// `s = clamp(s, min, max)` (`torch.clamp`: `min(max(s, min), max)`; ±∞ for an open end).
    pub clamp: Option<(f32, f32)>,
    pub shift: Shift,
}

/// How a rational-quadratic spline's knots are made from its unconstrained parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SplineStyle {
    /// nflows (`unconstrained_rational_quadratic_spline`, linear tails): bin widths
    /// `min_width + (1 − K·min_width)·softmax(w / divisor)` (heights alike), knots
    /// `2B·cumsum − B` with the end knots set to `∓B`, inner derivatives
    /// `min_derivative + softplus(d)`, end derivatives `min_derivative + softplus(end_logit)`
    /// (nflows: `end_logit = ln(e^{1 − min_derivative} − 1)`, a slope of 1); a value is in a bin
    /// when it is `≥` the bin's left knot; identity outside `[−B, B]`.
    Nflows {
        min_width: f32,
        min_height: f32,
        min_derivative: f32,
        end_logit: f32,
    },
    /// zuko (`MonotonicRQSTransform`): logits soft-clipped (`w / (1 + |2w / ln slope|)`,
    /// `d / (1 + |d / ln slope|)`), widths `softmax(w)`, knots `B·(2·cumsum − 1)`, derivatives
    /// `exp(d)` (1 at both ends); a value is in a bin when the bin's left knot is `<` it; identity
    /// outside the first and last knots.
    Zuko { ln_slope: f32 },
}

/// A monotonic rational-quadratic spline on `[−B, B]` with `K` bins (Durkan et al. 2019). Its
/// `3K − 1` parameters per feature are `K` width logits, `K` height logits, `K − 1` inner
/// derivative logits.
///
/// The inverse solves a quadratic per value; its discriminant `b² − 4ac`, which is ≥ 0 in exact
/// arithmetic, is clamped at 0 (rounding can make it slightly negative where a bin is very
/// flat; nflows asserts instead). The result is then the quadratic's double root: finite, and
/// within rounding of the exact inverse. No row is ever re-drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spline {
    /// `K`.
    pub bins: usize,
    /// `B`.
    pub bound: f32,
    /// Width and height logits are divided by this first (nflows' coupling transforms: `√H` of
    /// the conditioner; 1 elsewhere).
    pub divisor: f32,
    pub style: SplineStyle,
}

/// Most bins a spline may have.
pub const MAX_BINS: usize = 512;

/// The elementwise transform a MADE parametrises.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Elementwise {
    Affine(Affine),
    Spline(Spline),
}

impl Elementwise {
    /// Parameters per feature.
    pub fn params(&self) -> usize {
        match self {
            Elementwise::Affine(_) => 2,
            Elementwise::Spline(s) => 3 * s.bins - 1,
        }
    }
}

impl Made<'_> {
    /// Scratch floats per row (see [`scratch_len`]).
    pub fn per_row(&self) -> usize {
        2 * self.features
            + self.context
            + self.values.iter().map(Value::width).sum::<usize>()
            + self.output.params
            + 1
    }
}

/// Scratch floats [`maf`] needs to process `rows` rows per sub-tile (`rows` = 1 for the
/// row-by-row path, 16 or 32 for the batch path): `per_row · rows + SLACK`.
pub fn scratch_len(made: &Made, rows: usize) -> usize {
    made.per_row() * rows + SLACK
}

fn src_bound(made: &Made, src: Src, k: usize) -> usize {
    match src {
        Src::Input => k,
        Src::Value(v) => made.values[v].bounds[k] as usize,
    }
}

fn check(made: &Made, t: &Elementwise) {
    let d = made.features;
    assert!(d >= 1, "flow: a MADE needs at least one feature");
    assert!(
        made.values.len() <= MAX_VALUES,
        "flow: at most {MAX_VALUES} hidden values"
    );
    assert!(made.ops.len() <= MAX_OPS, "flow: at most {MAX_OPS} ops");
    if let Some(o) = made.order {
        assert_eq!(o.len(), d, "flow: order must have one entry per feature");
        let mut seen = vec![false; d];
        for &c in o {
            assert!(
                (c as usize) < d && !seen[c as usize],
                "flow: order must be a permutation"
            );
            seen[c as usize] = true;
        }
    }
    for v in made.values {
        assert_eq!(
            v.bounds.len(),
            d,
            "flow: a value's bounds have one entry per degree 0..features"
        );
        assert!(
            v.bounds.windows(2).all(|w| w[0] <= w[1]),
            "flow: bounds must be non-decreasing"
        );
    }
    let width = |i: usize| made.values[i].width();
    let same = |a: usize, b: usize| made.values[a].bounds == made.values[b].bounds;
    for c in made.context_layers {
        assert!(
            c.dst < made.values.len(),
            "flow: context layer writes an unknown value"
        );
        assert_eq!(
            c.weight.len(),
            made.context * padded(width(c.dst)) + SLACK,
            "flow: context weight length"
        );
        assert!(
            c.bias.len() >= width(c.dst) + SLACK,
            "flow: context bias length"
        );
    }
    for op in made.ops {
        match *op {
            MadeOp::Masked {
                src,
                dst,
                weight,
                bias,
                add,
            } => {
                assert!(
                    dst < made.values.len(),
                    "flow: masked op writes an unknown value"
                );
                if let Src::Value(s) = src {
                    assert!(
                        s < made.values.len(),
                        "flow: masked op reads an unknown value"
                    );
                }
                let want: usize = (0..d)
                    .map(|k| {
                        let (a, b) = made.values[dst].group(k);
                        src_bound(made, src, k) * padded(b - a)
                    })
                    .sum();
                assert_eq!(weight.len(), want + SLACK, "flow: masked weight length");
                assert!(bias.len() >= width(dst) + SLACK, "flow: masked bias length");
                if let Some(a) = add {
                    assert!(
                        a < made.values.len() && same(a, dst),
                        "flow: an added value must have the destination's degrees"
                    );
                }
            }
            MadeOp::Map {
                src, dst, affine, ..
            } => {
                assert!(
                    src < made.values.len() && dst < made.values.len(),
                    "flow: map op on an unknown value"
                );
                assert!(same(src, dst), "flow: a map op keeps the degrees");
                if let Some((m, a)) = affine {
                    assert!(
                        m.len() >= width(dst) + SLACK && a.len() >= width(dst) + SLACK,
                        "flow: map affine length"
                    );
                }
            }
        }
    }
    let o = &made.output;
    assert!(
        o.src < made.values.len(),
        "flow: output reads an unknown value"
    );
    assert_eq!(
        o.params,
        t.params(),
        "flow: the output layer must give the transform's parameters"
    );
    let want: usize = (0..d)
        .map(|k| made.values[o.src].bounds[k] as usize * padded(o.params))
        .sum();
    assert_eq!(o.weight.len(), want + SLACK, "flow: output weight length");
    assert!(
        o.bias.len() >= d * o.params + SLACK,
        "flow: output bias length"
    );
    match t {
        Elementwise::Affine(a) => {
            assert!(
                a.scale_param < 2 && a.shift_param < 2 && a.scale_param != a.shift_param,
                "flow: affine parameter indices"
            )
        }
        Elementwise::Spline(sp) => {
            assert!(
                (1..=MAX_BINS).contains(&sp.bins),
                "flow: a spline has 1 to {MAX_BINS} bins"
            );
            assert!(sp.bound > 0.0, "flow: a spline's bound must be positive");
        }
    }
}

/// Raw pointers of one call.
#[derive(Clone, Copy)]
struct Io {
    input: *const f32,
    is: usize,
    ctx: *const f32,
    cs: usize,
    out: *mut f32,
    os: usize,
    logdet: *mut f32,
    ls: usize,
}

/// Runs a MAF transform on `rows` rows.
///
/// * `inverse == false` (density direction): `input` holds `x`, `output` receives
///   `y = T(x)` and, when `logdet` is given, `log|det ∂y/∂x|` is **added** to its column 0;
/// * `inverse == true` (sampling): `input` holds `y` (e.g. base noise), `output` receives
///   `x = T⁻¹(y)` in one sweep; `logdet` (if given) receives `+= log|det ∂x/∂y|`.
///
/// Row `r` of each buffer starts at `r · stride`; `input`/`output` have `features` columns,
/// `ctx` has `context` columns (ignored when `context == 0`). `scratch` must hold
/// [`scratch_len`]`(made, 1)` floats; with [`scratch_len`]`(made, 16)` or `(made, 32)` batches go
/// through the rows-on-lanes path. Panics when the program or a buffer is inconsistent (a bug in
/// the calling code).
pub fn maf(
    tier: Tier,
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    rows: usize,
    input: &[f32],
    input_stride: usize,
    ctx: &[f32],
    ctx_stride: usize,
    output: &mut [f32],
    output_stride: usize,
    logdet: Option<(&mut [f32], usize)>,
    scratch: &mut [f32],
) {
    run(
        tier,
        made,
        t,
        inverse,
        false,
        rows,
        input,
        input_stride,
        ctx,
        ctx_stride,
        output,
        output_stride,
        logdet,
        scratch,
    )
}

/// [`maf`] with nflows' algorithm for the inverse: `D` full passes of the masked network over
/// every feature (the masked-out terms are added as exact zeros), rows on lanes. Same result as
/// the sweep, bit for bit; `D` times the work. For tests and comparisons only.
pub fn maf_naive(
    tier: Tier,
    made: &Made,
    t: &Elementwise,
    rows: usize,
    input: &[f32],
    input_stride: usize,
    ctx: &[f32],
    ctx_stride: usize,
    output: &mut [f32],
    output_stride: usize,
    scratch: &mut [f32],
) {
    run(
        tier,
        made,
        t,
        true,
        true,
        rows,
        input,
        input_stride,
        ctx,
        ctx_stride,
        output,
        output_stride,
        None,
        scratch,
    )
}

/// Runs `$body` with `$S` the kernel type of `tier` (a tier this machine supports: `checked`
/// falls back to one it has).
macro_rules! on_tier {
    ($tier:expr, $S:ident => $body:expr) => {
        match crate::isa::checked($tier) {
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512 => {
                type $S = crate::simd::Avx512;
                $body
            }
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2Fma => {
                type $S = crate::simd::Avx2;
                $body
            }
            #[cfg(target_arch = "aarch64")]
            Tier::Neon => {
                type $S = crate::simd::Neon;
                $body
            }
            _ => {
                type $S = crate::simd::Portable;
                $body
            }
        }
    };
}

fn run(
    tier: Tier,
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    naive: bool,
    rows: usize,
    input: &[f32],
    is: usize,
    ctx: &[f32],
    cs: usize,
    output: &mut [f32],
    os: usize,
    logdet: Option<(&mut [f32], usize)>,
    scratch: &mut [f32],
) {
    check(made, t);
    if rows == 0 {
        return;
    }
    let d = made.features;
    let c = made.context;
    assert!(
        is >= d || rows <= 1,
        "flow: input stride {is} < features {d}"
    );
    assert!(
        os >= d || rows <= 1,
        "flow: output stride {os} < features {d}"
    );
    assert!(
        input.len() >= (rows - 1) * is + d,
        "flow: input too short for {rows} rows"
    );
    assert!(
        output.len() >= (rows - 1) * os + d,
        "flow: output too short for {rows} rows"
    );
    if c > 0 {
        assert!(
            cs >= c || rows <= 1,
            "flow: context stride {cs} < context {c}"
        );
        assert!(
            ctx.len() >= (rows - 1) * cs + c,
            "flow: context too short for {rows} rows"
        );
    }
    let (lp, ls) = match logdet {
        Some((l, s)) => {
            assert!(s >= 1 || rows <= 1, "flow: logdet stride");
            assert!(
                l.len() > (rows - 1) * s,
                "flow: logdet too short for {rows} rows"
            );
            (l.as_mut_ptr(), s)
        }
        None => (core::ptr::null_mut(), 0),
    };
    let rt = if naive {
        assert!(
            scratch.len() >= scratch_len(made, ROW_BLOCK),
            "flow: the naive inverse needs a 16-row scratch"
        );
        ROW_BLOCK
    } else if scratch.len() >= scratch_len(made, MAX_SUBTILE) && rows > ROW_BLOCK {
        MAX_SUBTILE
    } else if scratch.len() >= scratch_len(made, ROW_BLOCK) {
        ROW_BLOCK
    } else {
        assert!(
            scratch.len() >= scratch_len(made, 1),
            "flow: scratch too short ({} < {})",
            scratch.len(),
            scratch_len(made, 1)
        );
        1
    };
    let io = Io {
        input: input.as_ptr(),
        is,
        ctx: ctx.as_ptr(),
        cs,
        out: output.as_mut_ptr(),
        os,
        logdet: lp,
        ls,
    };
    let s = scratch.as_mut_ptr();
    // SAFETY: the program and every buffer were checked above; `on_tier!` runs only tiers this
    // machine supports.
    on_tier!(tier, S => unsafe { S::drive(made, t, inverse, naive, rows, rt, io, s) })
}

/// The per-tier kernels the drivers call: each is compiled once per tier, as a non-inlined
/// function with the tier's target features. Inlined into every call site (they are generic
/// over the tier, the register block and the activation), they made this file take minutes to
/// compile; one call per group of units costs little next to the group's dot products.
trait Kernels: Simd {
    /// [`drive`] with the tier's target features: the MAF entry point.
    #[allow(clippy::too_many_arguments)]
    unsafe fn drive(
        m: &Made,
        t: &Elementwise,
        inv: bool,
        naive: bool,
        rows: usize,
        rt: usize,
        io: Io,
        s: *mut f32,
    );
    /// [`coupling_drive`] with the tier's target features: the coupling entry point.
    unsafe fn coupling_drive(
        n: &Coupling,
        t: &Elementwise,
        inv: bool,
        rows: usize,
        rt: usize,
        io: Io,
        s: *mut f32,
    );
    unsafe fn masked(a: MaskedArgs);
    unsafe fn map(a: MapArgs);
    unsafe fn transform(t: &Elementwise, inverse: bool, ld: bool, k: usize, l: &Layout);
}

/// The arguments of [`masked`].
#[derive(Clone, Copy)]
struct MaskedArgs {
    w: *const f32,
    gp: usize,
    p: usize,
    zeros: usize,
    src: *const f32,
    rt: usize,
    bias: *const f32,
    add: *const f32,
    dst: *mut f32,
    gs: usize,
}

/// The arguments of [`map`].
#[derive(Clone, Copy)]
struct MapArgs {
    src: *const f32,
    dst: *mut f32,
    affine: Option<(*const f32, *const f32)>,
    act: Activation,
    rt: usize,
    gs: usize,
}

/// Implements [`Kernels`] for a tier: `RV` row vectors × up to `UB` units per register block,
/// compiled with the target features `feat`.
macro_rules! kernels {
    ($t:ty, $rv:literal, $ub:literal $(, $feat:literal)?) => {
        impl Kernels for $t {
            #[inline(always)]
            unsafe fn drive(
                m: &Made,
                t: &Elementwise,
                inv: bool,
                naive: bool,
                rows: usize,
                rt: usize,
                io: Io,
                s: *mut f32,
            ) {
                $(#[target_feature(enable = $feat)])?
                #[inline(never)]
                #[allow(clippy::too_many_arguments)]
                unsafe fn f(
                    m: &Made,
                    t: &Elementwise,
                    inv: bool,
                    naive: bool,
                    rows: usize,
                    rt: usize,
                    io: Io,
                    s: *mut f32,
                ) {
                    unsafe { drive::<$t>(m, t, inv, naive, rows, rt, io, s) }
                }
                unsafe { f(m, t, inv, naive, rows, rt, io, s) }
            }
            #[inline(always)]
            unsafe fn coupling_drive(
                n: &Coupling,
                t: &Elementwise,
                inv: bool,
                rows: usize,
                rt: usize,
                io: Io,
                s: *mut f32,
            ) {
                $(#[target_feature(enable = $feat)])?
                #[inline(never)]
                unsafe fn f(
                    n: &Coupling,
                    t: &Elementwise,
                    inv: bool,
                    rows: usize,
                    rt: usize,
                    io: Io,
                    s: *mut f32,
                ) {
                    unsafe { coupling_drive::<$t>(n, t, inv, rows, rt, io, s) }
                }
                unsafe { f(n, t, inv, rows, rt, io, s) }
            }
            #[inline(always)]
            unsafe fn masked(a: MaskedArgs) {
                $(#[target_feature(enable = $feat)])?
                #[inline(never)]
                unsafe fn k(a: MaskedArgs) {
                    unsafe { masked_body::<$t, $rv, $ub>(a) }
                }
                unsafe { k(a) }
            }
            #[inline(always)]
            unsafe fn map(a: MapArgs) {
                $(#[target_feature(enable = $feat)])?
                #[inline(never)]
                unsafe fn k(a: MapArgs) {
                    unsafe { map_body::<$t>(a) }
                }
                unsafe { k(a) }
            }
            #[inline(always)]
            unsafe fn transform(t: &Elementwise, inverse: bool, ld: bool, k: usize, l: &Layout) {
                $(#[target_feature(enable = $feat)])?
                #[inline(never)]
                unsafe fn f(t: &Elementwise, inverse: bool, ld: bool, k: usize, l: &Layout) {
                    unsafe { transform_body::<$t>(t, inverse, ld, k, l) }
                }
                unsafe { f(t, inverse, ld, k, l) }
            }
        }
    };
}
kernels!(crate::simd::Portable, 1, 4);
#[cfg(target_arch = "x86_64")]
kernels!(crate::simd::Avx2, 2, 4, "avx2,fma");
#[cfg(target_arch = "x86_64")]
kernels!(crate::simd::Avx512, 1, 8, "avx512f,avx2,fma");
#[cfg(target_arch = "aarch64")]
kernels!(crate::simd::Neon, 4, 4, "neon");

/// Where everything lives in the scratch buffer for a sub-tile of `rt` rows (`[unit][rt]`).
struct Layout {
    rt: usize,
    /// The input as loaded (degree order).
    a: *mut f32,
    /// The result (degree order).
    b: *mut f32,
    ctx: *mut f32,
    params: *mut f32,
    logdet: *mut f32,
    values: [*mut f32; MAX_VALUES],
}

unsafe fn layout(made: &Made, rt: usize, s: *mut f32) -> Layout {
    let d = made.features;
    let a = s;
    let b = a.add(d * rt);
    let ctx = b.add(d * rt);
    let mut p = ctx.add(made.context * rt);
    let mut values = [core::ptr::null_mut(); MAX_VALUES];
    for (i, v) in made.values.iter().enumerate() {
        values[i] = p;
        p = p.add(v.width() * rt);
    }
    let params = p;
    let logdet = params.add(made.output.params * rt);
    Layout {
        rt,
        a,
        b,
        ctx,
        params,
        logdet,
        values,
    }
}

#[inline(always)]
unsafe fn drive<S: Kernels>(
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    naive: bool,
    rows: usize,
    rt: usize,
    io: Io,
    s: *mut f32,
) {
    let l = layout(made, rt, s);
    let mut r0 = 0;
    while r0 < rows {
        let nt = if rt == 1 { 1 } else { (rows - r0).min(rt) };
        // Fewer than 4 rows left: one at a time (same arithmetic per row).
        if !naive && rt > 1 && nt < 4 {
            let l1 = layout(made, 1, s);
            for r in r0..r0 + nt {
                tile::<S>(made, t, inverse, false, r, 1, &l1, io);
            }
        } else {
            tile::<S>(made, t, inverse, naive, r0, nt, &l, io);
        }
        r0 += nt;
    }
}

/// One sub-tile: rows `r0 .. r0 + nt` (`nt ≤ l.rt`).
#[inline(always)]
unsafe fn tile<S: Kernels>(
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    naive: bool,
    r0: usize,
    nt: usize,
    l: &Layout,
    io: Io,
) {
    let d = made.features;
    let rt = l.rt;
    let ld = !io.logdet.is_null();
    // Transpose in (degree order), zero the unused lanes.
    for k in 0..d {
        let col = made.order.map_or(k, |o| o[k] as usize);
        for i in 0..rt {
            *l.a.add(k * rt + i) = if i < nt {
                *io.input.add((r0 + i) * io.is + col)
            } else {
                0.0
            };
            *l.b.add(k * rt + i) = 0.0;
        }
    }
    for c in 0..made.context {
        for i in 0..rt {
            *l.ctx.add(c * rt + i) = if i < nt {
                *io.ctx.add((r0 + i) * io.cs + c)
            } else {
                0.0
            };
        }
    }
    for i in 0..rt {
        *l.logdet.add(i) = 0.0;
    }
    for cl in made.context_layers {
        let v = made.values[cl.dst];
        let w = v.width();
        let dst = l.values[cl.dst];
        masked::<S>(
            cl.weight.as_ptr(),
            padded(w),
            made.context,
            0,
            l.ctx,
            rt,
            cl.bias.as_ptr(),
            core::ptr::null(),
            dst,
            w,
        );
        map::<S>(dst, dst, None, cl.act, rt, w);
    }
    let mut woff = [0usize; MAX_OPS];
    let mut ooff = 0usize;
    let x = if inverse { l.b } else { l.a };
    if naive {
        for _pass in 0..d {
            woff = [0; MAX_OPS];
            ooff = 0;
            // Layer by layer, every unit, as a plain masked network evaluates.
            for oi in 0..made.ops.len() {
                for k in 0..d {
                    op_group::<S>(made, oi, k, x, l, &mut woff, true);
                }
            }
            for k in 0..d {
                feature::<S>(made, t, true, false, k, &mut ooff, l, true);
            }
        }
    } else if rt == 1 && pipelined::<S>(made) {
        row_sweep::<S>(made, t, inverse, ld, x, l);
    } else if inverse {
        for k in 0..d {
            if k > 0 {
                feature::<S>(made, t, true, ld, k - 1, &mut ooff, l, false);
            }
            groups::<S>(made, k, x, l, &mut woff);
        }
        feature::<S>(made, t, true, ld, d - 1, &mut ooff, l, false);
    } else {
        for k in 0..d {
            groups::<S>(made, k, x, l, &mut woff);
        }
        for k in 0..d {
            feature::<S>(made, t, false, ld, k, &mut ooff, l, false);
        }
    }
    // Transpose out.
    for k in 0..d {
        let col = made.order.map_or(k, |o| o[k] as usize);
        for i in 0..nt {
            *io.out.add((r0 + i) * io.os + col) = *l.b.add(k * rt + i);
        }
    }
    if ld {
        for i in 0..nt {
            *io.logdet.add((r0 + i) * io.ls) += *l.logdet.add(i);
        }
    }
}

/// Whether [`row_sweep`] can run `made`: every group of a masked op and the output's
/// parameters fit one vector, and there are fewer than [`MAX_CHAINS`] masked ops.
fn pipelined<S: Simd>(made: &Made) -> bool {
    made.output.params <= S::LANES
        && made
            .ops
            .iter()
            .filter(|op| matches!(op, MadeOp::Masked { .. }))
            .count()
            < MAX_CHAINS
        && made.ops.iter().all(|op| match *op {
            MadeOp::Masked { dst, .. } => (0..made.features).all(|k| {
                let (g0, g1) = made.values[dst].group(k);
                g1 - g0 <= S::LANES
            }),
            MadeOp::Map { .. } => true,
        })
}

/// One dot-product chain: `acc += Σ_{from ≤ v < to} src[v]·w[v·gp ..]`, ascending `v`.
#[derive(Clone, Copy)]
struct Job {
    w: *const f32,
    gp: usize,
    src: *const f32,
    len: usize,
}

#[inline(always)]
unsafe fn chain<S: Simd>(
    mut acc: S::V,
    w: *const f32,
    gp: usize,
    src: *const f32,
    from: usize,
    to: usize,
) -> S::V {
    for v in from..to {
        acc = S::fma(S::splat(*src.add(v)), S::load(w.add(v * gp)), acc);
    }
    acc
}

/// `N` independent chains from zero over each job's `0..len`, in lockstep over their common
/// length (the order within each chain is unchanged).
#[inline(always)]
unsafe fn chains<S: Simd, const N: usize>(jobs: &[Job], accs: &mut [S::V]) {
    let common = jobs[..N].iter().map(|j| j.len).min().unwrap_or(0);
    let mut a = [S::splat(0.0); N];
    for v in 0..common {
        for q in 0..N {
            let j = jobs[q];
            a[q] = S::fma(S::splat(*j.src.add(v)), S::load(j.w.add(v * j.gp)), a[q]);
        }
    }
    for q in 0..N {
        let j = jobs[q];
        accs[q] = chain::<S>(a[q], j.w, j.gp, j.src, common, j.len);
    }
}

/// The one-row sweep with the chains reordered for instruction-level parallelism: at step `k`,
/// every op's sum over the source units of degree `< k` (and, inverting, feature `k − 1`'s
/// parameters) only reads results of earlier steps, so these chains run side by side first;
/// then, op by op, each chain continues over the new units. Each unit's sum keeps its ascending
/// order, one FMA per term: the same bits as the batch path.
#[inline(always)]
unsafe fn row_sweep<S: Kernels>(
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    ld: bool,
    x: *mut f32,
    l: &Layout,
) {
    let d = made.features;
    let o = &made.output;
    let (m, mp) = (o.params, padded(o.params));
    let last = made.values[o.src];
    let hp = l.values[o.src] as *const f32;
    let mut woff = [0usize; MAX_OPS];
    let mut ooff = 0usize;
    let none = Job {
        w: core::ptr::null(),
        gp: 0,
        src: core::ptr::null(),
        len: 0,
    };
    let mut jobs = [none; MAX_CHAINS];
    let mut accs = [S::splat(0.0); MAX_CHAINS];
    let mut slot = [0usize; MAX_OPS];
    for k in 0..d {
        let mut n = 0;
        // Inverting, feature k's parameters: first over the hidden units of degree < k.
        if inverse {
            jobs[0] = Job {
                w: o.weight.as_ptr().add(ooff),
                gp: mp,
                src: hp,
                len: if k == 0 {
                    0
                } else {
                    last.bounds[k - 1] as usize
                },
            };
            ooff += last.bounds[k] as usize * mp;
            n = 1;
        }
        for (oi, op) in made.ops.iter().enumerate() {
            if let MadeOp::Masked {
                src, dst, weight, ..
            } = *op
            {
                let (g0, g1) = made.values[dst].group(k);
                if g1 > g0 {
                    let sp = match src {
                        Src::Input => x as *const f32,
                        Src::Value(v) => l.values[v] as *const f32,
                    };
                    let old = if k == 0 {
                        0
                    } else {
                        src_bound(made, src, k - 1)
                    };
                    jobs[n] = Job {
                        w: weight.as_ptr().add(woff[oi]),
                        gp: padded(g1 - g0),
                        src: sp,
                        len: old,
                    };
                    woff[oi] += src_bound(made, src, k) * padded(g1 - g0);
                    slot[oi] = n;
                    n += 1;
                }
            }
        }
        let mut j = 0;
        while j + 4 <= n {
            chains::<S, 4>(&jobs[j..n], &mut accs[j..n]);
            j += 4;
        }
        if j + 2 <= n {
            chains::<S, 2>(&jobs[j..n], &mut accs[j..n]);
            j += 2;
        }
        if j < n {
            chains::<S, 1>(&jobs[j..n], &mut accs[j..n]);
        }
        for (oi, op) in made.ops.iter().enumerate() {
            match *op {
                MadeOp::Masked {
                    src,
                    dst,
                    bias,
                    add,
                    ..
                } => {
                    let (g0, g1) = made.values[dst].group(k);
                    if g1 == g0 {
                        continue;
                    }
                    let jb = jobs[slot[oi]];
                    let acc = chain::<S>(
                        accs[slot[oi]],
                        jb.w,
                        jb.gp,
                        jb.src,
                        jb.len,
                        src_bound(made, src, k),
                    );
                    let mut y = S::add(acc, S::load(bias.as_ptr().add(g0)));
                    if let Some(a) = add {
                        y = S::add(y, S::load(l.values[a].add(g0)));
                    }
                    store_n::<S>(l.values[dst].add(g0), y, g1 - g0);
                }
                MadeOp::Map {
                    src,
                    dst,
                    affine,
                    act,
                } => {
                    let (g0, g1) = made.values[dst].group(k);
                    if g1 > g0 {
                        let aff = affine.map(|(mu, a)| (mu.as_ptr().add(g0), a.as_ptr().add(g0)));
                        map::<S>(
                            l.values[src].add(g0),
                            l.values[dst].add(g0),
                            aff,
                            act,
                            1,
                            g1 - g0,
                        );
                    }
                }
            }
        }
        // Inverting: feature k's parameters over the units of degree k, then the feature.
        if inverse {
            let acc = chain::<S>(
                accs[0],
                jobs[0].w,
                mp,
                hp,
                jobs[0].len,
                last.bounds[k] as usize,
            );
            store_n::<S>(
                l.params,
                S::add(acc, S::load(o.bias.as_ptr().add(k * m))),
                m,
            );
            transform::<S>(t, true, ld, k, l);
        }
    }
    if !inverse {
        for k in 0..d {
            feature::<S>(made, t, false, ld, k, &mut ooff, l, false);
        }
    }
}

/// Every op's group `k`, in op order. `x`: the input features' buffer.
#[inline(always)]
unsafe fn groups<S: Kernels>(
    made: &Made,
    k: usize,
    x: *mut f32,
    l: &Layout,
    woff: &mut [usize; MAX_OPS],
) {
    for oi in 0..made.ops.len() {
        op_group::<S>(made, oi, k, x, l, woff, false);
    }
}

/// Group `k` of op `oi`. `full`: sum over the whole source (the masked-out terms as zeros), as a
/// plain masked pass does.
#[inline(always)]
unsafe fn op_group<S: Kernels>(
    made: &Made,
    oi: usize,
    k: usize,
    x: *mut f32,
    l: &Layout,
    woff: &mut [usize; MAX_OPS],
    full: bool,
) {
    let rt = l.rt;
    match made.ops[oi] {
        MadeOp::Masked {
            src,
            dst,
            weight,
            bias,
            add,
        } => {
            let (g0, g1) = made.values[dst].group(k);
            let gs = g1 - g0;
            if gs == 0 {
                return;
            }
            let p = src_bound(made, src, k);
            let (sp, swidth) = match src {
                Src::Input => (x as *const f32, made.features),
                Src::Value(v) => (l.values[v] as *const f32, made.values[v].width()),
            };
            let zeros = if full { swidth - p } else { 0 };
            let w = weight.as_ptr().add(woff[oi]);
            woff[oi] += p * padded(gs);
            let addp = match add {
                Some(a) => l.values[a].add(g0 * rt) as *const f32,
                None => core::ptr::null(),
            };
            masked::<S>(
                w,
                padded(gs),
                p,
                zeros,
                sp,
                rt,
                bias.as_ptr().add(g0),
                addp,
                l.values[dst].add(g0 * rt),
                gs,
            );
        }
        MadeOp::Map {
            src,
            dst,
            affine,
            act,
        } => {
            let (g0, g1) = made.values[dst].group(k);
            if g1 == g0 {
                return;
            }
            let aff = affine.map(|(m, a)| (m.as_ptr().add(g0), a.as_ptr().add(g0)));
            map::<S>(
                l.values[src].add(g0 * rt),
                l.values[dst].add(g0 * rt),
                aff,
                act,
                rt,
                g1 - g0,
            );
        }
    }
}

/// Feature `k` (degree `k + 1`): its parameters from the hidden units of degree `≤ k`, then the
/// elementwise transform (`inverse`: `b[k] = T⁻¹(a[k])`; else `b[k] = T(a[k])`), adding its
/// log-det to the sub-tile's when `ld`.
#[inline(always)]
unsafe fn feature<S: Kernels>(
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    ld: bool,
    k: usize,
    ooff: &mut usize,
    l: &Layout,
    full: bool,
) {
    let rt = l.rt;
    let o = &made.output;
    let m = o.params;
    let src = made.values[o.src];
    let p = src.bounds[k] as usize;
    let zeros = if full { src.width() - p } else { 0 };
    let w = o.weight.as_ptr().add(*ooff);
    *ooff += p * padded(m);
    masked::<S>(
        w,
        padded(m),
        p,
        zeros,
        l.values[o.src],
        rt,
        o.bias.as_ptr().add(k * m),
        core::ptr::null(),
        l.params,
        m,
    );
    transform::<S>(t, inverse, ld, k, l);
}

/// The elementwise transform of feature `k` from its parameters in `l.params`:
/// `b[k] = T⁻¹(a[k])` (`inverse`) or `T(a[k])`, adding its log-det to the sub-tile's when `ld`.
#[inline(always)]
unsafe fn transform<S: Kernels>(t: &Elementwise, inverse: bool, ld: bool, k: usize, l: &Layout) {
    S::transform(t, inverse, ld, k, l)
}

/// The body of [`transform`] for one tier.
#[inline(always)]
unsafe fn transform_body<S: Simd>(t: &Elementwise, inverse: bool, ld: bool, k: usize, l: &Layout) {
    let rt = l.rt;
    let a = l.a.add(k * rt);
    let b = l.b.add(k * rt);
    match t {
        Elementwise::Affine(af) => {
            let u = l.params.add(af.scale_param * rt);
            let sh = l.params.add(af.shift_param * rt);
            let mut i = 0;
            while i < rt {
                let (y, lds) = affine_v::<S>(
                    af,
                    inverse,
                    S::load(a.add(i)),
                    load_n::<S>(u.add(i), rt - i),
                    load_n::<S>(sh.add(i), rt - i),
                );
                store_n::<S>(b.add(i), y, rt - i);
                if ld {
                    let acc = load_n::<S>(l.logdet.add(i), rt - i);
                    store_n::<S>(l.logdet.add(i), S::add(acc, lds), rt - i);
                }
                i += S::LANES;
            }
        }
        Elementwise::Spline(sp) => {
            let mut i = 0;
            while i < rt {
                let (y, lds) = spline_v::<S>(sp, inverse, S::load(a.add(i)), l.params.add(i), rt);
                store_n::<S>(b.add(i), y, rt - i);
                if ld {
                    let acc = load_n::<S>(l.logdet.add(i), rt - i);
                    store_n::<S>(l.logdet.add(i), S::add(acc, lds), rt - i);
                }
                i += S::LANES;
            }
        }
    }
}

/// The spline of one vector `v` (`x` forward, `y` inverse) with parameter `j` of its lanes at
/// `p[j·stride ..]`: `(T(x), log T'(x))` or `(T⁻¹(y), −log T'(T⁻¹(y)))`. One pass over the
/// bins builds the knots as nflows or zuko do (same operations, in f32) and keeps the bin the
/// value falls in.
#[inline(always)]
unsafe fn spline_v<S: Simd>(
    sp: &Spline,
    inverse: bool,
    v: S::V,
    p: *const f32,
    stride: usize,
) -> (S::V, S::V) {
    let k_bins = sp.bins;
    // Macros, not closures: a closure the optimiser does not inline is compiled without the
    // tier's target features, and every vector operation in it becomes a call.
    macro_rules! par {
        ($j:expr) => {
            S::load(p.add(($j) * stride))
        };
    }
    let zero = S::splat(0.0);
    let one = S::splat(1.0);
    let bound = S::splat(sp.bound);
    let div = S::splat(sp.divisor);
    let (clip_w, clip_d) = match sp.style {
        SplineStyle::Zuko { ln_slope } => (
            Some(S::splat(2.0 / ln_slope)),
            Some(S::splat(1.0 / ln_slope)),
        ),
        SplineStyle::Nflows { .. } => (None, None),
    };
    macro_rules! logit {
        ($j:expr) => {{
            let u = S::div(par!($j), div);
            match clip_w {
                // w / (1 + |2w / ln slope|)
                Some(c) => S::div(u, S::add(one, S::abs(S::mul(u, c)))),
                None => u,
            }
        }};
    }
    // Softmax maxima and sums, widths (0..K) and heights (K..2K).
    let (mut mw, mut mh) = (logit!(0), logit!(k_bins));
    for j in 1..k_bins {
        mw = S::max(mw, logit!(j));
        mh = S::max(mh, logit!(k_bins + j));
    }
    // Softmax denominators, as compensated sums (hi, lo).
    macro_rules! ew {
        ($j:expr) => {
            crate::math::exp_v::<S>(S::sub(logit!($j), mw))
        };
    }
    macro_rules! eh {
        ($j:expr) => {
            crate::math::exp_v::<S>(S::sub(logit!(k_bins + $j), mh))
        };
    }
    let (mut sw, mut sw_lo, mut sh, mut sh_lo) = (zero, zero, zero, zero);
    for j in 0..k_bins {
        (sw, sw_lo) = two_sum::<S>(sw, ew!(j), sw_lo);
        (sh, sh_lo) = two_sum::<S>(sh, eh!(j), sh_lo);
    }
    let (tw, th) = (S::add(sw, sw_lo), S::add(sh, sh_lo));
    let (min_w, min_h, keep_w, keep_h, end_d) = match sp.style {
        SplineStyle::Nflows {
            min_width,
            min_height,
            min_derivative,
            end_logit,
        } => (
            S::splat(min_width),
            S::splat(min_height),
            S::splat(1.0 - min_width * k_bins as f32),
            S::splat(1.0 - min_height * k_bins as f32),
            S::add(
                S::splat(min_derivative),
                crate::math::softplus1_v::<S>(S::splat(end_logit)),
            ),
        ),
        SplineStyle::Zuko { .. } => (zero, zero, one, one, one),
    };
    let nflows = matches!(sp.style, SplineStyle::Nflows { .. });
    macro_rules! derivative {
        ($j:expr) => {{
            let u = par!(2 * k_bins + $j);
            match (sp.style, clip_d) {
                (SplineStyle::Nflows { min_derivative, .. }, _) => {
                    S::add(S::splat(min_derivative), crate::math::softplus1_v::<S>(u))
                }
                (_, Some(c)) => {
                    crate::math::exp_v::<S>(S::div(u, S::add(one, S::abs(S::mul(u, c)))))
                }
                _ => u,
            }
        }};
    }
    // Knot k: (x, y, derivative); the bin k the value is in: (x0, x1, y0, y1, d0, d1).
    //
    // A knot is B·(2c − 1) with c the cumulative share of the bins left of it (nflows writes
    // 2B·c − B, the same number). In float32 the shares' common rounding (of the softmax
    // denominator) would move the knots near the far end by a few ulps of B, which narrow bins
    // there turn into log-slope errors of 1e-4. So the prefix P and the suffix S = Σ − P are
    // kept as compensated sums, and each knot is taken from its nearer end: B·(2c − 1) with
    // c = P/Σ (plus the minimum widths) left of the middle, B·(1 − 2r) with r = S/Σ right of it.
    let neg_b = S::sub(zero, bound);
    let (mut pw, mut pw_lo, mut ph, mut ph_lo) = (zero, zero, zero, zero);
    let (mut xk, mut yk, mut dk) = (neg_b, neg_b, end_d);
    let mut sel = [zero; 6];
    for k in 0..k_bins {
        (pw, pw_lo) = two_sum::<S>(pw, ew!(k), pw_lo);
        (ph, ph_lo) = two_sum::<S>(ph, eh!(k), ph_lo);
        let (x1, y1, d1) = if nflows && k + 1 == k_bins {
            (bound, bound, end_d)
        } else {
            let d1 = match (nflows, k + 1 == k_bins) {
                (false, true) => one,
                _ => derivative!(k),
            };
            (
                knot::<S>(pw, pw_lo, sw, sw_lo, tw, k + 1, k_bins, min_w, keep_w, bound),
                knot::<S>(ph, ph_lo, sh, sh_lo, th, k + 1, k_bins, min_h, keep_h, bound),
                d1,
            )
        };
        let bin = [xk, x1, yk, y1, dk, d1];
        if k == 0 {
            sel = bin;
        } else {
            let knot = if inverse { yk } else { xk };
            for q in 0..6 {
                sel[q] = if nflows {
                    // v ≥ knot
                    S::lt_select(v, knot, sel[q], bin[q])
                } else {
                    // knot < v
                    S::lt_select(knot, v, bin[q], sel[q])
                };
            }
        }
        (xk, yk, dk) = (x1, y1, d1);
    }
    // Inside the spline's domain: nflows [−B, B]; zuko (first knot, last knot].
    let last = if inverse { yk } else { xk };
    let [x0, x1, y0, y1, d0, d1] = sel;
    let (w, h) = (S::sub(x1, x0), S::sub(y1, y0));
    let delta = S::div(h, w);
    let g = S::sub(S::add(d0, d1), S::add(delta, delta));
    let (out, theta) = if inverse {
        let dy = S::sub(v, y0);
        let a = S::fma(dy, g, S::mul(h, S::sub(delta, d0)));
        let b = S::sub(S::mul(h, d0), S::mul(dy, g));
        let c = S::sub(zero, S::mul(delta, dy));
        let disc = S::max(
            zero,
            S::sub(S::mul(b, b), S::mul(S::splat(4.0), S::mul(a, c))),
        );
        let root = S::div(S::add(c, c), S::sub(S::sub(zero, b), S::sqrt(disc)));
        (S::fma(root, w, x0), root)
    } else {
        let theta = S::div(S::sub(v, x0), w);
        let t = S::mul(theta, S::sub(one, theta));
        let num = S::mul(h, S::fma(delta, S::mul(theta, theta), S::mul(d0, t)));
        let den = S::fma(g, t, delta);
        (S::add(y0, S::div(num, den)), theta)
    };
    // log T' at theta: log(δ²·(d1·θ² + 2δ·θ(1 − θ) + d0·(1 − θ)²)) − 2·log(δ + g·θ(1 − θ)).
    let t = S::mul(theta, S::sub(one, theta));
    let om = S::sub(one, theta);
    let dn = S::mul(
        S::mul(delta, delta),
        S::add(
            S::add(
                S::mul(d1, S::mul(theta, theta)),
                S::mul(S::add(delta, delta), t),
            ),
            S::mul(d0, S::mul(om, om)),
        ),
    );
    let den = S::fma(g, t, delta);
    let lj = S::sub(
        crate::math::log_v::<S>(dn),
        S::mul(S::splat(2.0), crate::math::log_v::<S>(den)),
    );
    let lj = if inverse { S::sub(zero, lj) } else { lj };
    // Outside: identity, log-det 0.
    let (out, lj) = if nflows {
        let o = S::lt_select(v, neg_b, v, S::lt_select(bound, v, v, out));
        let l = S::lt_select(v, neg_b, zero, S::lt_select(bound, v, zero, lj));
        (o, l)
    } else {
        let first = neg_b;
        // inside: first < v && !(last < v)
        let o = S::lt_select(first, v, S::lt_select(last, v, v, out), v);
        let l = S::lt_select(first, v, S::lt_select(last, v, zero, lj), zero);
        (o, l)
    };
    (out, lj)
}

/// Knot `k` of `k_bins` from the compensated prefix `(p, p_lo)` and total `(s, s_lo)` of the
/// exponentiated logits (`t`: the total, rounded), taken from its nearer end (see [`spline_v`]).
#[inline(always)]
unsafe fn knot<S: Simd>(
    p: S::V,
    p_lo: S::V,
    s: S::V,
    s_lo: S::V,
    t: S::V,
    k: usize,
    k_bins: usize,
    min: S::V,
    keep: S::V,
    bound: S::V,
) -> S::V {
    let one = S::splat(1.0);
    // c = k·min + keep·P/Σ, r = (K − k)·min + keep·S/Σ
    let suffix = S::add(S::sub(s, p), S::sub(s_lo, p_lo));
    let c = S::fma(
        keep,
        S::div(S::add(p, p_lo), t),
        S::mul(S::splat(k as f32), min),
    );
    let r = S::fma(
        keep,
        S::div(suffix, t),
        S::mul(S::splat((k_bins - k) as f32), min),
    );
    let left = S::mul(bound, S::sub(S::add(c, c), one));
    let right = S::mul(bound, S::sub(one, S::add(r, r)));
    S::lt_select(c, r, left, right)
}

/// `s + t` as `(sum, err + rounding error)` (Knuth's two-sum: exact without FMA).
#[inline(always)]
unsafe fn two_sum<S: Simd>(s: S::V, t: S::V, err: S::V) -> (S::V, S::V) {
    let sum = S::add(s, t);
    let tt = S::sub(sum, s);
    let e = S::add(S::sub(s, S::sub(sum, tt)), S::sub(t, tt));
    (sum, S::add(err, e))
}

/// The affine transform of one vector: forward `(s·x + shift, log s)`, inverse
/// `((x − shift)/s, −log s)`.
#[inline(always)]
unsafe fn affine_v<S: Simd>(
    af: &Affine,
    inverse: bool,
    x: S::V,
    u: S::V,
    shift: S::V,
) -> (S::V, S::V) {
    let s = match af.scale {
        Scale::Sigmoid {
            factor,
            offset,
            eps,
        } => S::fma(
            S::splat(factor),
            crate::math::sigmoid_v::<S>(S::add(u, S::splat(offset))),
            S::splat(eps),
        ),
        Scale::Atan { factor } => S::mul(
            S::splat(factor),
            crate::math::atan_v::<S>(S::div(u, S::splat(factor))),
        ),
        Scale::Softplus { threshold, eps } => S::add(
            act_v::<S>(
                &Activation::Softplus {
                    beta: 1.0,
                    threshold,
                },
                u,
            ),
            S::splat(eps),
        ),
        Scale::SoftClipExp { bound } => {
            let log_s = S::div(u, S::add(S::splat(1.0), S::div(S::abs(u), S::splat(bound))));
            crate::math::exp_v::<S>(log_s)
        }
    };
    // Data as the second operand of max/min, so that NaN propagates.
    let s = match af.clamp {
        Some((lo, hi)) => S::min(S::splat(hi), S::max(S::splat(lo), s)),
        None => s,
    };
    let sh = &af.shift;
    let shift = if sh.offset != 0.0 {
        S::add(shift, S::splat(sh.offset))
    } else {
        shift
    };
    let shift = match sh.clamp {
        Some((lo, hi)) if !inverse || sh.clamp_inverse => {
            S::min(S::splat(hi), S::max(S::splat(lo), shift))
        }
        _ => shift,
    };
    if inverse {
        (
            S::div(S::sub(x, shift), s),
            S::sub(S::splat(0.0), log_v::<S>(s)),
        )
    } else {
        (S::add(S::mul(s, x), shift), log_v::<S>(s))
    }
}

/// Loads a vector of which only the first `n` lanes matter. Every array the kernel reads (packed
/// weights, biases, the scratch buffer) ends with [`SLACK`] floats, so the whole vector is in
/// bounds; the other lanes are ignored.
#[inline(always)]
unsafe fn load_n<S: Simd>(p: *const f32, _n: usize) -> S::V {
    S::load(p)
}

/// Lane indices `0, 1, …, 15`.
static IOTA: [f32; 16] = [
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
];

/// Stores the first `min(n, LANES)` lanes of `v`; the rest of the vector's memory keeps its
/// bits (read and written back: it belongs to later units, or to the slack).
#[inline(always)]
unsafe fn store_n<S: Simd>(p: *mut f32, v: S::V, n: usize) {
    if n >= S::LANES {
        S::store(p, v)
    } else {
        let keep = S::load(p);
        S::store(
            p,
            S::lt_select(S::load(IOTA.as_ptr()), S::splat(n as f32), v, keep),
        )
    }
}

/// `gs` units of a masked (or context, or output) layer for a sub-tile of `rt` rows:
/// `dst[j] = (Σ_{v<p} w[v·gp + j]·src[v] (+ Σ_{v<p+zeros} 0·src[v]) + bias[j]) (+ add[j])`.
/// `src`, `add`, `dst`: `[unit][rt]`; `rt == 1` is the units-on-lanes path.
#[inline(always)]
unsafe fn masked<S: Kernels>(
    w: *const f32,
    gp: usize,
    p: usize,
    zeros: usize,
    src: *const f32,
    rt: usize,
    bias: *const f32,
    add: *const f32,
    dst: *mut f32,
    gs: usize,
) {
    S::masked(MaskedArgs {
        w,
        gp,
        p,
        zeros,
        src,
        rt,
        bias,
        add,
        dst,
        gs,
    })
}

/// The body of [`masked`] for one tier (`RV` row vectors × up to `UB` units per register block).
#[inline(always)]
unsafe fn masked_body<S: Simd, const RV: usize, const UB: usize>(a: MaskedArgs) {
    let MaskedArgs {
        w,
        gp,
        p,
        zeros,
        src,
        rt,
        bias,
        add,
        dst,
        gs,
    } = a;
    if rt == 1 {
        let mut j = 0;
        while j < gs {
            let mut acc = S::splat(0.0);
            for v in 0..p {
                acc = S::fma(S::splat(*src.add(v)), S::load(w.add(v * gp + j)), acc);
            }
            for v in p..p + zeros {
                acc = S::fma(S::splat(*src.add(v)), S::splat(0.0), acc);
            }
            let n = gs - j;
            let mut y = S::add(acc, load_n::<S>(bias.add(j), n));
            if !add.is_null() {
                y = S::add(y, load_n::<S>(add.add(j), n));
            }
            store_n::<S>(dst.add(j), y, n);
            j += S::LANES;
        }
        return;
    }
    let rb = RV * S::LANES;
    let mut r = 0;
    while r < rt {
        let mut j = 0;
        while j < gs {
            let n = (gs - j).min(UB);
            let (wj, bj) = (w.add(j), bias.add(j));
            let aj = if add.is_null() {
                add
            } else {
                add.add(j * rt + r)
            };
            let (sr, dj) = (src.add(r), dst.add(j * rt + r));
            match n {
                8 => block::<S, RV, 8>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                7 => block::<S, RV, 7>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                6 => block::<S, RV, 6>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                5 => block::<S, RV, 5>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                4 => block::<S, RV, 4>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                3 => block::<S, RV, 3>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                2 => block::<S, RV, 2>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
                _ => block::<S, RV, 1>(wj, gp, p, zeros, sr, rt, bj, aj, dj),
            }
            j += n;
        }
        r += rb;
    }
}

/// `U` units × `RV` row vectors.
#[inline(always)]
unsafe fn block<S: Simd, const RV: usize, const U: usize>(
    w: *const f32,
    gp: usize,
    p: usize,
    zeros: usize,
    src: *const f32,
    rt: usize,
    bias: *const f32,
    add: *const f32,
    dst: *mut f32,
) {
    let mut acc = [[S::splat(0.0); RV]; U];
    for v in 0..p {
        let mut h = [S::splat(0.0); RV];
        for r in 0..RV {
            h[r] = S::load(src.add(v * rt + r * S::LANES));
        }
        for j in 0..U {
            let wv = S::splat(*w.add(v * gp + j));
            for r in 0..RV {
                acc[j][r] = S::fma(wv, h[r], acc[j][r]);
            }
        }
    }
    for v in p..p + zeros {
        for r in 0..RV {
            let h = S::load(src.add(v * rt + r * S::LANES));
            for j in 0..U {
                acc[j][r] = S::fma(S::splat(0.0), h, acc[j][r]);
            }
        }
    }
    for j in 0..U {
        let b = S::splat(*bias.add(j));
        for r in 0..RV {
            let mut y = S::add(acc[j][r], b);
            if !add.is_null() {
                y = S::add(y, S::load(add.add(j * rt + r * S::LANES)));
            }
            S::store(dst.add(j * rt + r * S::LANES), y);
        }
    }
}

/// `dst[u] = act(src[u]·mul[u] + add[u])` for `gs` units of `rt` rows.
#[inline(always)]
unsafe fn map<S: Kernels>(
    src: *const f32,
    dst: *mut f32,
    affine: Option<(*const f32, *const f32)>,
    act: Activation,
    rt: usize,
    gs: usize,
) {
    S::map(MapArgs {
        src,
        dst,
        affine,
        act,
        rt,
        gs,
    })
}

/// The body of [`map`] for one tier.
#[inline(always)]
unsafe fn map_body<S: Simd>(a: MapArgs) {
    let MapArgs {
        src,
        dst,
        affine,
        act,
        rt,
        gs,
    } = a;
    if affine.is_none() && act == Activation::Linear {
        if !core::ptr::eq(src, dst) {
            core::ptr::copy_nonoverlapping(src, dst, gs * rt);
        }
        return;
    }
    if rt == 1 {
        let mut j = 0;
        while j < gs {
            let n = gs - j;
            let mut y = load_n::<S>(src.add(j), n);
            if let Some((m, a)) = affine {
                y = S::fma(y, load_n::<S>(m.add(j), n), load_n::<S>(a.add(j), n));
            }
            store_n::<S>(dst.add(j), act_v::<S>(&act, y), n);
            j += S::LANES;
        }
        return;
    }
    for u in 0..gs {
        let (m, a) = match affine {
            Some((m, a)) => (S::splat(*m.add(u)), S::splat(*a.add(u))),
            None => (S::splat(1.0), S::splat(0.0)),
        };
        let mut i = 0;
        while i < rt {
            let mut y = S::load(src.add(u * rt + i));
            if affine.is_some() {
                y = S::fma(y, m, a);
            }
            S::store(dst.add(u * rt + i), act_v::<S>(&act, y));
            i += S::LANES;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Coupling transforms
// ---------------------------------------------------------------------------------------------

/// A dense layer `y = W·x + b`: `weight[v · padded(n_out) + o] = W[o][v]` (`[n_in][padded(n_out)]`)
/// + [`SLACK`], `bias` `n_out` + [`SLACK`].
#[derive(Clone, Copy, Debug)]
pub struct Dense<'a> {
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

/// A block of nflows' `ResidualNet`:
/// `t = L₁·act(bn₁(L₀·act(bn₀(h))))`, with context `t = t·σ(W_c·c + b_c)`, then `h = h + t`.
#[derive(Clone, Copy, Debug)]
pub struct NetBlock<'a> {
    /// `(mul, add)` of `bn₀` and `bn₁` (`hidden` + [`SLACK`] each): `v·mul + add`.
    pub norms: Option<[(&'a [f32], &'a [f32]); 2]>,
    pub linear: [Dense<'a>; 2],
    /// The gate's layer on the context.
    pub context: Option<Dense<'a>>,
}

/// A coupling transform: columns `identity` pass unchanged, the net (nflows' `ResidualNet`)
/// reads `cat(x[identity], context)` and gives each column of `transform` the parameters of its
/// elementwise transform.
#[derive(Clone, Copy, Debug)]
pub struct Coupling<'a> {
    /// `D`.
    pub features: usize,
    /// `C` (0: no context).
    pub context: usize,
    pub identity: &'a [u32],
    pub transform: &'a [u32],
    /// `H`.
    pub hidden: usize,
    pub activation: Activation,
    /// `[n_identity + C][padded(H)]`.
    pub initial: Dense<'a>,
    pub blocks: &'a [NetBlock<'a>],
    /// Per transformed column `j`, a `[H][padded(m)]` block at `j · H · padded(m)` (`m` the
    /// elementwise transform's parameters); bias `[j · m + p]`.
    pub final_layer: Dense<'a>,
}

impl Coupling<'_> {
    /// Scratch floats per row (see [`coupling_scratch_len`]).
    pub fn per_row(&self, t: &Elementwise) -> usize {
        2 * self.features + self.identity.len() + self.context + 4 * self.hidden + t.params() + 1
    }
}

/// Scratch floats [`coupling`] needs for `rows` rows per sub-tile (1, or [`ROW_BLOCK`] for the
/// rows-on-lanes path).
pub fn coupling_scratch_len(net: &Coupling, t: &Elementwise, rows: usize) -> usize {
    net.per_row(t) * rows + SLACK
}

fn check_coupling(net: &Coupling, t: &Elementwise) {
    let (d, c, h) = (net.features, net.context, net.hidden);
    let (ni, m) = (net.identity.len(), t.params());
    assert!(
        h >= 1 && !net.transform.is_empty(),
        "flow: empty coupling net"
    );
    let mut seen = [false; 4096];
    assert!(d <= seen.len(), "flow: at most 4096 features");
    for &col in net.identity.iter().chain(net.transform) {
        let col = col as usize;
        assert!(
            col < d && !seen[col],
            "flow: coupling columns are not a partition"
        );
        seen[col] = true;
    }
    assert!(
        ni + net.transform.len() == d,
        "flow: coupling columns are not a partition"
    );
    assert!(
        net.activation != Activation::Softmax,
        "flow: softmax is not a hidden activation"
    );
    let dense = |l: &Dense, n_in: usize, n_out: usize| {
        assert!(
            l.weight.len() >= n_in * padded(n_out) + SLACK && l.bias.len() >= n_out + SLACK,
            "flow: coupling layer arrays too short"
        );
    };
    dense(&net.initial, ni + c, h);
    for b in net.blocks {
        dense(&b.linear[0], h, h);
        dense(&b.linear[1], h, h);
        if let Some(cl) = &b.context {
            assert!(c > 0, "flow: a gated block needs the context");
            dense(cl, c, h);
        }
        if let Some(n) = &b.norms {
            for (mul, add) in n {
                assert!(mul.len() >= h + SLACK && add.len() >= h + SLACK);
            }
        }
    }
    assert!(
        net.final_layer.weight.len() >= net.transform.len() * h * padded(m) + SLACK
            && net.final_layer.bias.len() >= net.transform.len() * m + SLACK,
        "flow: coupling output layer arrays too short"
    );
    if let Elementwise::Spline(sp) = t {
        assert!(
            (1..=MAX_BINS).contains(&sp.bins),
            "flow: 1 to {MAX_BINS} bins"
        );
    }
}

/// Runs a coupling transform on `rows` rows (same buffers and conventions as [`maf`]:
/// `inverse == false` maps `x` to `y = T(x)`, `inverse == true` maps `y` to `x = T⁻¹(y)`;
/// `logdet`, when given, receives `+= log|det|` of the direction computed). The net runs once
/// per row in either direction. `scratch` must hold [`coupling_scratch_len`]`(net, t, 1)`
/// floats; with `(net, t, 16)` batches run rows on lanes. A row's result does not depend on
/// the batch size or its position.
pub fn coupling(
    tier: Tier,
    net: &Coupling,
    t: &Elementwise,
    inverse: bool,
    rows: usize,
    input: &[f32],
    is: usize,
    ctx: &[f32],
    cs: usize,
    output: &mut [f32],
    os: usize,
    logdet: Option<(&mut [f32], usize)>,
    scratch: &mut [f32],
) {
    check_coupling(net, t);
    if rows == 0 {
        return;
    }
    let (d, c) = (net.features, net.context);
    assert!(
        (is >= d && os >= d) || rows <= 1,
        "flow: stride < features {d}"
    );
    assert!(
        input.len() >= (rows - 1) * is + d && output.len() >= (rows - 1) * os + d,
        "flow: buffers too short for {rows} rows"
    );
    if c > 0 {
        assert!(
            (cs >= c || rows <= 1) && ctx.len() >= (rows - 1) * cs + c,
            "flow: context too short for {rows} rows"
        );
    }
    let (lp, ls) = match logdet {
        Some((l, s)) => {
            assert!(
                (s >= 1 || rows <= 1) && l.len() > (rows - 1) * s,
                "flow: logdet too short for {rows} rows"
            );
            (l.as_mut_ptr(), s)
        }
        None => (core::ptr::null_mut(), 0),
    };
    let rt = if scratch.len() >= coupling_scratch_len(net, t, ROW_BLOCK) {
        ROW_BLOCK
    } else {
        assert!(
            scratch.len() >= coupling_scratch_len(net, t, 1),
            "flow: scratch too short"
        );
        1
    };
    let io = Io {
        input: input.as_ptr(),
        is,
        ctx: ctx.as_ptr(),
        cs,
        out: output.as_mut_ptr(),
        os,
        logdet: lp,
        ls,
    };
    let s = scratch.as_mut_ptr();
    // SAFETY: the net and every buffer were checked above; `on_tier!` runs only tiers this
    // machine supports.
    on_tier!(tier, S => unsafe { S::coupling_drive(net, t, inverse, rows, rt, io, s) })
}

/// The scratch of a coupling sub-tile (`[unit][rt]` arrays).
struct CouplingLayout {
    /// `a`, `b`, `params`, `logdet` as the elementwise kernel reads them.
    l: Layout,
    z: *mut f32,
    h: *mut f32,
    t: *mut f32,
    u: *mut f32,
    g: *mut f32,
}

unsafe fn coupling_layout(
    net: &Coupling,
    t: &Elementwise,
    rt: usize,
    s: *mut f32,
) -> CouplingLayout {
    let (d, hd) = (net.features, net.hidden);
    let a = s;
    let b = a.add(d * rt);
    let z = b.add(d * rt);
    let h = z.add((net.identity.len() + net.context) * rt);
    let tt = h.add(hd * rt);
    let u = tt.add(hd * rt);
    let g = u.add(hd * rt);
    let params = g.add(hd * rt);
    let logdet = params.add(t.params() * rt);
    CouplingLayout {
        l: Layout {
            rt,
            a,
            b,
            ctx: z.add(net.identity.len() * rt),
            params,
            logdet,
            values: [core::ptr::null_mut(); MAX_VALUES],
        },
        z,
        h,
        t: tt,
        u,
        g,
    }
}

#[inline(always)]
unsafe fn coupling_drive<S: Kernels>(
    net: &Coupling,
    t: &Elementwise,
    inverse: bool,
    rows: usize,
    rt: usize,
    io: Io,
    s: *mut f32,
) {
    let l = coupling_layout(net, t, rt, s);
    let mut r0 = 0;
    while r0 < rows {
        let nt = (rows - r0).min(rt);
        // Fewer than 4 rows left: one at a time (same arithmetic per row).
        if rt > 1 && nt < 4 {
            let l1 = coupling_layout(net, t, 1, s);
            for r in r0..r0 + nt {
                coupling_tile::<S>(net, t, inverse, r, 1, &l1, io);
            }
        } else {
            coupling_tile::<S>(net, t, inverse, r0, nt, &l, io);
        }
        r0 += nt;
    }
}

/// A dense layer on `[unit][rt]` arrays: `dst = W·src + b (+ add)`.
#[inline(always)]
unsafe fn dense<S: Kernels>(
    l: &Dense,
    n_in: usize,
    n_out: usize,
    src: *const f32,
    rt: usize,
    add: *const f32,
    dst: *mut f32,
) {
    masked::<S>(
        l.weight.as_ptr(),
        padded(n_out),
        n_in,
        0,
        src,
        rt,
        l.bias.as_ptr(),
        add,
        dst,
        n_out,
    );
}

/// One sub-tile of a coupling transform: rows `r0 .. r0 + nt`.
#[inline(always)]
unsafe fn coupling_tile<S: Kernels>(
    net: &Coupling,
    t: &Elementwise,
    inverse: bool,
    r0: usize,
    nt: usize,
    cl: &CouplingLayout,
    io: Io,
) {
    let (d, c, hd) = (net.features, net.context, net.hidden);
    let ni = net.identity.len();
    let l = &cl.l;
    let rt = l.rt;
    let ld = !io.logdet.is_null();
    for k in 0..d {
        for i in 0..rt {
            *l.a.add(k * rt + i) = if i < nt {
                *io.input.add((r0 + i) * io.is + k)
            } else {
                0.0
            };
        }
    }
    // The net's input: the identity columns, then the context.
    for (q, &col) in net.identity.iter().enumerate() {
        core::ptr::copy_nonoverlapping(l.a.add(col as usize * rt), cl.z.add(q * rt), rt);
    }
    for q in 0..c {
        for i in 0..rt {
            *cl.z.add((ni + q) * rt + i) = if i < nt {
                *io.ctx.add((r0 + i) * io.cs + q)
            } else {
                0.0
            };
        }
    }
    for i in 0..rt {
        *l.logdet.add(i) = 0.0;
    }
    let act = net.activation;
    let null = core::ptr::null::<f32>();
    dense::<S>(&net.initial, ni + c, hd, cl.z, rt, null, cl.h);
    for b in net.blocks {
        let norm = |q: usize| b.norms.map(|n| (n[q].0.as_ptr(), n[q].1.as_ptr()));
        map::<S>(cl.h, cl.t, norm(0), act, rt, hd);
        dense::<S>(&b.linear[0], hd, hd, cl.t, rt, null, cl.u);
        map::<S>(cl.u, cl.u, norm(1), act, rt, hd);
        match &b.context {
            None => dense::<S>(&b.linear[1], hd, hd, cl.u, rt, cl.h, cl.h),
            Some(gate) => {
                dense::<S>(&b.linear[1], hd, hd, cl.u, rt, null, cl.t);
                dense::<S>(gate, c, hd, l.ctx, rt, null, cl.g);
                map::<S>(cl.g, cl.g, None, Activation::Sigmoid, rt, hd);
                // h + t·σ(g): PyTorch's two roundings (F.glu, then the residual sum).
                for e in 0..hd * rt {
                    let v = *cl.t.add(e) * *cl.g.add(e);
                    *cl.h.add(e) += v;
                }
            }
        }
    }
    let m = t.params();
    let gp = padded(m);
    for (j, &col) in net.transform.iter().enumerate() {
        masked::<S>(
            net.final_layer.weight.as_ptr().add(j * hd * gp),
            gp,
            hd,
            0,
            cl.h,
            rt,
            net.final_layer.bias.as_ptr().add(j * m),
            null,
            l.params,
            m,
        );
        transform::<S>(t, inverse, ld, col as usize, l);
    }
    for &col in net.identity {
        let col = col as usize;
        core::ptr::copy_nonoverlapping(l.a.add(col * rt), l.b.add(col * rt), rt);
    }
    for k in 0..d {
        for i in 0..nt {
            *io.out.add((r0 + i) * io.os + k) = *l.b.add(k * rt + i);
        }
    }
    if ld {
        for i in 0..nt {
            *io.logdet.add((r0 + i) * io.ls) += *l.logdet.add(i);
        }
    }
}

/// `dst[r][j] = src[r][idx[j]]` for `rows` rows (a column permutation; `src` and `dst` distinct).
pub fn gather_columns(
    rows: usize,
    src: &[f32],
    src_stride: usize,
    idx: &[u32],
    dst: &mut [f32],
    dst_stride: usize,
) {
    for r in 0..rows {
        let (s, d) = (
            &src[r * src_stride..],
            &mut dst[r * dst_stride..r * dst_stride + idx.len()],
        );
        for (o, &i) in d.iter_mut().zip(idx) {
            *o = s[i as usize];
        }
    }
}

/// Column 0 of each of `rows` rows = `value`.
pub fn fill_column(rows: usize, data: &mut [f32], stride: usize, value: f32) {
    for r in 0..rows {
        data[r * stride] = value;
    }
}

/// Column 0 of each of `rows` rows += `value`.
pub fn add_to_column(rows: usize, data: &mut [f32], stride: usize, value: f32) {
    for r in 0..rows {
        data[r * stride] += value;
    }
}

/// `out[r][0] = −½·Σ_j z[r][j]² − log_z + logdet[r][0]` (the standard normal log density of `z`
/// plus an accumulated log-determinant), with `log_z = width/2 · ln 2π` rounded to f32 as given.
/// The sum runs over `j` in order, in f32.
pub fn normal_log_prob(
    rows: usize,
    width: usize,
    z: &[f32],
    z_stride: usize,
    log_z: f32,
    logdet: &[f32],
    logdet_stride: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    for r in 0..rows {
        let zr = &z[r * z_stride..r * z_stride + width];
        let mut sq = 0.0f32;
        for &v in zr {
            sq += v * v;
        }
        out[r * out_stride] = (-0.5 * sq - log_z) + logdet[r * logdet_stride];
    }
}

/// nflows' `LULinear` on `rows` rows of `width` = D columns: forward (data → noise)
/// `y = L·(U·x) + bias`; inverse `x = U⁻¹·(L⁻¹·(y − bias))` by forward substitution with the
/// unit lower-triangular `L` and back substitution with the upper-triangular `U` (no inverse
/// matrix is formed). `lower` and `upper` are `[D][D]` row-major; only `L`'s strict lower
/// triangle and `U`'s upper triangle with the diagonal are read. Each row is computed on its
/// own in plain f32 (one multiply and one add per term, sums in ascending order of the column),
/// the same operations on every tier. `src` and `dst` are distinct buffers. The log-det
/// (`Σ ln U_ii`, a constant) is not touched.
pub fn lu_linear(
    rows: usize,
    width: usize,
    lower: &[f32],
    upper: &[f32],
    bias: &[f32],
    inverse: bool,
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
) {
    let d = width;
    assert!(
        lower.len() >= d * d && upper.len() >= d * d && bias.len() >= d,
        "flow: LU-linear weights too short for width {d}"
    );
    if rows == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * src_stride + d && dst.len() >= (rows - 1) * dst_stride + d,
        "flow: LU-linear buffers too short for {rows} rows"
    );
    for r in 0..rows {
        let x = &src[r * src_stride..r * src_stride + d];
        let y = &mut dst[r * dst_stride..r * dst_stride + d];
        if inverse {
            // L·w = x − bias, row by row downwards.
            for i in 0..d {
                let li = &lower[i * d..i * d + i];
                let mut acc = x[i] - bias[i];
                for (j, &l) in li.iter().enumerate() {
                    acc -= l * y[j];
                }
                y[i] = acc;
            }
            // U·x = w, row by row upwards.
            for i in (0..d).rev() {
                let ui = &upper[i * d..i * d + d];
                let mut acc = y[i];
                for j in i + 1..d {
                    acc -= ui[j] * y[j];
                }
                y[i] = acc / ui[i];
            }
        } else {
            // t = U·x.
            for i in 0..d {
                let ui = &upper[i * d..i * d + d];
                let mut acc = 0.0f32;
                for j in i..d {
                    acc += ui[j] * x[j];
                }
                y[i] = acc;
            }
            // y = L·t + bias, upwards so that t[j < i] is still there.
            for i in (0..d).rev() {
                let li = &lower[i * d..i * d + i];
                let mut acc = 0.0f32;
                for (j, &l) in li.iter().enumerate() {
                    acc += l * y[j];
                }
                y[i] = (acc + y[i]) + bias[i];
            }
        }
    }
}

/// Packs a masked layer (reference implementation of the layout in the module docs; the
/// transpiler packs at build time). `w` is `[dst units][src units]` row-major, both sorted by
/// degree; `src_bounds[k]` is the source prefix of group `k` (`k` for the input features).
pub fn pack_masked(w: &[f32], n_src: usize, dst: &Value, src_bounds: &[u32]) -> Vec<f32> {
    let mut out = Vec::new();
    for k in 0..dst.bounds.len() {
        let (g0, g1) = dst.group(k);
        let gp = padded(g1 - g0);
        for v in 0..src_bounds[k] as usize {
            for j in 0..gp {
                out.push(if g0 + j < g1 {
                    w[(g0 + j) * n_src + v]
                } else {
                    0.0
                });
            }
        }
    }
    out.extend([0.0; SLACK]);
    out
}

/// Packs a context layer: `w` is `[units][context]` row-major (units sorted by degree).
pub fn pack_context(w: &[f32], units: usize, context: usize) -> Vec<f32> {
    let gp = padded(units);
    let mut out = vec![0.0; context * gp + SLACK];
    for c in 0..context {
        for u in 0..units {
            out[c * gp + u] = w[u * context + c];
        }
    }
    out
}

/// Packs the output layer: `w` is `[features · params][src units]` row-major, feature-major in
/// degree order (row `i · params + j` is parameter `j` of the feature of degree `i + 1`).
pub fn pack_output(w: &[f32], params: usize, src: &Value) -> Vec<f32> {
    let n_src = src.width();
    let gp = padded(params);
    let mut out = Vec::new();
    for k in 0..src.bounds.len() {
        for v in 0..src.bounds[k] as usize {
            for j in 0..gp {
                out.push(if j < params {
                    w[(k * params + j) * n_src + v]
                } else {
                    0.0
                });
            }
        }
    }
    out.extend([0.0; SLACK]);
    out
}

/// A vector followed by [`SLACK`] zeros (biases, batch-norm factors).
pub fn with_slack(v: &[f32]) -> Vec<f32> {
    let mut out = v.to_vec();
    out.extend([0.0; SLACK]);
    out
}
