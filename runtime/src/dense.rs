//! The dense-layer kernel: `y = act(x·W + b) (+ r)` over a batch of rows, with bias,
//! activation and residual fused into the epilogue.
//!
//! # Packed layout
//!
//! The kernel matrix (`n_in × n_out`, row-major `kernel[k][j]`) is stored in panels of
//! [`PANEL`] = 16 output columns, panel-major and zero padded:
//!
//! ```text
//! n_panels = ceil(n_out / 16)
//! packed[(p * n_in + k) * 16 + j] = kernel[k][p * 16 + j]   (0 where p * 16 + j >= n_out)
//! ```
//!
//! so one panel is a contiguous `n_in × 16` block, read front to back by the kernel. The bias
//! has `n_panels * 16` values (zero padded). The transpiler packs at build time; [`pack`] is the
//! reference implementation.
//!
//! # Paths
//!
//! * Register-blocked: `R` rows × `C` vectors of accumulators, one weight load feeds `R`
//!   FMAs. AVX2: 6 rows × 2 ymm (one panel) = 12 accumulators + 2 weights + 1 broadcast = 15 of
//!   16 registers. AVX-512: 12 rows × 2 zmm (two panels) = 24 accumulators (32 registers).
//!   NEON: 6 rows × 4 q-registers (one panel). Portable: 2 rows × one 16-lane panel.
//!   Row blocks are grouped in tiles of about 24 rows; for each group of vector columns the
//!   tile's blocks are swept while those weights stay in L1. Leftover rows go through blocks
//!   of 4 and then 2 rows (same loop, fewer accumulators) before the streaming path.
//! * Weight streaming (batch 1, and the last row left over after the blocks): one row against up
//!   to 8 vectors of accumulators (4 panels on AVX2, 8 on AVX-512) at a time, so consecutive
//!   FMAs are independent and the weights are read once per row.
//!
//! The epilogue adds the bias and the residual (`BeforeAct`) to the accumulators as each block
//! finishes, then, per finished group of rows (still in L1), applies the activation with the
//! SIMD polynomials and adds the residual (`AfterAct`). Both paths run exactly the same
//! operations for a row (k ascending, one FMA per k and output, same epilogue), so a row's
//! result does not depend on the batch size or its position in the batch; AVX2 and AVX-512
//! results are bit-identical. Full panels are stored:
//! columns `n_out..round_up(n_out, 16)` of `y` receive the activation of the (zero) padding,
//! callers ignore them. `Softmax` is not fused: the kernel writes the linear part and
//! [`crate::act::apply`] normalises each row afterwards.
#![allow(clippy::needless_range_loop)] // index loops over register blocks read best
use crate::act::{act_v, Activation};
use crate::isa::Tier;
use crate::simd::Simd;

/// Output columns per weight panel.
pub const PANEL: usize = 16;

/// Where the residual is added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residual {
    /// No residual.
    None,
    /// `y = act(x·W + b) + r` (e.g. Lamarr's `x + tanh(Dense(x))`).
    AfterAct,
    /// `y = act(x·W + b + r)`.
    BeforeAct,
}

/// A dense layer over packed weights.
#[derive(Clone, Copy, Debug)]
pub struct Dense<'a> {
    pub n_in: usize,
    pub n_out: usize,
    /// Packed kernel, `ceil(n_out/16) * n_in * 16` values (see the module docs).
    pub kernel: &'a [f32],
    /// Bias, `ceil(n_out/16) * 16` values, zero padded.
    pub bias: &'a [f32],
    pub act: Activation,
    pub residual: Residual,
}

/// Number of panels for `n_out` outputs.
pub const fn n_panels(n_out: usize) -> usize {
    n_out.div_ceil(PANEL)
}

/// `n_out` rounded up to a whole panel: the minimum output row stride.
pub const fn padded(n_out: usize) -> usize {
    n_panels(n_out) * PANEL
}

/// Packs a row-major `n_in × n_out` kernel (`kernel[k * n_out + j]`) into the panel layout.
pub fn pack(kernel_in_out: &[f32], n_in: usize, n_out: usize) -> Vec<f32> {
    assert_eq!(kernel_in_out.len(), n_in * n_out, "dense::pack: kernel must have n_in × n_out values");
    let np = n_panels(n_out);
    let mut out = vec![0.0f32; np * n_in * PANEL];
    for p in 0..np {
        for k in 0..n_in {
            for j in 0..PANEL {
                let col = p * PANEL + j;
                if col < n_out {
                    out[(p * n_in + k) * PANEL + j] = kernel_in_out[k * n_out + col];
                }
            }
        }
    }
    out
}

/// Pads a bias of `n_out` values to `padded(n_out)`.
pub fn pack_bias(bias: &[f32], n_out: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; padded(n_out)];
    out[..n_out].copy_from_slice(&bias[..n_out]);
    out
}

/// Runs the layer on `rows` rows: row `r` of `x` is `x[r*x_stride .. r*x_stride + n_in]`, row
/// `r` of `y` is written at `y[r*y_stride .. r*y_stride + padded(n_out)]` (`y_stride ≥
/// padded(n_out)`). `residual`: `Some((r, r_stride))`, read at columns `0..n_out`, required
/// exactly when `d.residual != Residual::None`.
///
/// Uses the register-blocked path for whole blocks of rows and the weight-streaming path for
/// the rest. Panics when the buffers are too short for the given sizes (a bug in the calling
/// code: generated code passes compile-time shapes).
#[allow(clippy::too_many_arguments)]
pub fn dense(
    tier: Tier,
    d: &Dense,
    rows: usize,
    x: &[f32],
    x_stride: usize,
    y: &mut [f32],
    y_stride: usize,
    residual: Option<(&[f32], usize)>,
) {
    check(d, rows, x, x_stride, y, y_stride, residual);
    if rows == 0 {
        return;
    }
    if d.act == Activation::Softmax {
        // Linear part (+ residual before the activation), then the row softmax, then the
        // residual after it.
        let lin = Dense {
            act: Activation::Linear,
            residual: if d.residual == Residual::BeforeAct { Residual::BeforeAct } else { Residual::None },
            ..*d
        };
        let res_lin = if d.residual == Residual::BeforeAct { residual } else { None };
        run(tier, &lin, rows, x, x_stride, y, y_stride, res_lin);
        crate::act::apply(tier, Activation::Softmax, rows, d.n_out, y, y_stride);
        if d.residual == Residual::AfterAct {
            let (r, rs) = residual.expect("checked");
            for i in 0..rows {
                for j in 0..d.n_out {
                    y[i * y_stride + j] += r[i * rs + j];
                }
            }
        }
        return;
    }
    run(tier, d, rows, x, x_stride, y, y_stride, residual);
}

fn check(d: &Dense, rows: usize, x: &[f32], xs: usize, y: &[f32], ys: usize, residual: Option<(&[f32], usize)>) {
    let np = n_panels(d.n_out);
    assert_eq!(
        d.kernel.len(),
        np * d.n_in * PANEL,
        "dense: packed kernel for {}×{} must have {} values",
        d.n_in,
        d.n_out,
        np * d.n_in * PANEL
    );
    assert_eq!(d.bias.len(), np * PANEL, "dense: padded bias must have {} values", np * PANEL);
    assert!(ys >= np * PANEL, "dense: y_stride {ys} < padded width {}", np * PANEL);
    assert!(xs >= d.n_in || rows <= 1, "dense: x_stride {xs} < n_in {}", d.n_in);
    assert_eq!(
        residual.is_some(),
        d.residual != Residual::None,
        "dense: a residual buffer must be given exactly when the layer has a residual"
    );
    if rows == 0 {
        return;
    }
    assert!(x.len() >= (rows - 1) * xs + d.n_in, "dense: x too short for {rows} rows");
    assert!(y.len() >= (rows - 1) * ys + np * PANEL, "dense: y too short for {rows} rows");
    if let Some((r, rs)) = residual {
        assert!(rs >= d.n_out || rows <= 1, "dense: residual stride {rs} < n_out {}", d.n_out);
        assert!(r.len() >= (rows - 1) * rs + d.n_out, "dense: residual too short for {rows} rows");
    }
}

/// Raw pointers and sizes shared by the blocks of one call.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    d: &'a Dense<'a>,
    x: *const f32,
    xs: usize,
    y: *mut f32,
    ys: usize,
    r: *const f32,
    rs: usize,
}

#[allow(clippy::too_many_arguments)]
fn run(tier: Tier, d: &Dense, rows: usize, x: &[f32], xs: usize, y: &mut [f32], ys: usize, residual: Option<(&[f32], usize)>) {
    let (r, rs) = match residual {
        Some((r, rs)) => (r.as_ptr(), rs),
        None => (core::ptr::null(), 0),
    };
    let c = Ctx { d, x: x.as_ptr(), xs, y: y.as_mut_ptr(), ys, r, rs };

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn avx512(c: Ctx, rows: usize) {
        unsafe { drive::<crate::simd::Avx512, 12, 2, 8>(c, rows) }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(c: Ctx, rows: usize) {
        unsafe { drive::<crate::simd::Avx2, 6, 2, 8>(c, rows) }
    }
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    unsafe fn neon(c: Ctx, rows: usize) {
        unsafe { drive::<crate::simd::Neon, 6, 4, 8>(c, rows) }
    }
    // SAFETY: sizes were checked by `check`; `checked` returns only supported tiers.
    match crate::isa::checked(tier) {
        #[cfg(target_arch = "x86_64")]
        Tier::Avx512 => unsafe { avx512(c, rows) },
        #[cfg(target_arch = "x86_64")]
        Tier::Avx2Fma => unsafe { avx2(c, rows) },
        #[cfg(target_arch = "aarch64")]
        Tier::Neon => unsafe { neon(c, rows) },
        _ => unsafe { drive::<crate::simd::Portable, 2, 1, 2>(c, rows) },
    }
}

/// Blocks of `R` rows × `C` vectors, then leftover blocks of 4 and 2 rows, then the last rows
/// one at a time against `CS` vectors.
#[inline(always)]
unsafe fn drive<S: Simd, const R: usize, const C: usize, const CS: usize>(c: Ctx, rows: usize) {
    let nvec = n_panels(c.d.n_out) * PANEL / S::LANES;
    // Tiles of whole row blocks (about 24 rows): for each group of vector columns, sweep the
    // tile's row blocks while that group's weights stay in L1; then the tile's epilogue.
    let tile = (24 / R).max(1) * R;
    let mut r0 = 0;
    while r0 + R <= rows {
        let t_end = r0 + ((rows - r0) / R).min(tile / R) * R;
        let mut v0 = 0;
        while v0 < nvec {
            let n = C.min(nvec - v0);
            let mut rb = r0;
            while rb < t_end {
                if n == C {
                    block::<S, R, C>(c, rb, v0);
                } else {
                    block_cols::<S, R>(c, rb, v0, n);
                }
                rb += R;
            }
            v0 += n;
        }
        epilogue::<S>(c, r0, t_end - r0);
        r0 = t_end;
    }
    // Leftover rows (fewer than R): blocks of 4 and 2 rows where R is larger, so that they
    // still share weight loads; the last single row streams.
    if R > 4 && rows - r0 >= 4 {
        small_block::<S, 4, C>(c, r0, nvec);
        r0 += 4;
    }
    if R > 2 && rows - r0 >= 2 {
        small_block::<S, 2, C>(c, r0, nvec);
        r0 += 2;
    }
    while r0 < rows {
        let mut v0 = 0;
        while v0 + CS <= nvec {
            block::<S, 1, CS>(c, r0, v0);
            v0 += CS;
        }
        if v0 < nvec {
            block_cols::<S, 1>(c, r0, v0, nvec - v0);
        }
        epilogue::<S>(c, r0, 1);
        r0 += 1;
    }
}

/// `R2` rows starting at `r0` over all `nvec` vector columns, `C` at a time, then their epilogue.
#[inline(always)]
unsafe fn small_block<S: Simd, const R2: usize, const C: usize>(c: Ctx, r0: usize, nvec: usize) {
    let mut v0 = 0;
    while v0 < nvec {
        let n = C.min(nvec - v0);
        if n == C {
            block::<S, R2, C>(c, r0, v0);
        } else {
            block_cols::<S, R2>(c, r0, v0, n);
        }
        v0 += n;
    }
    epilogue::<S>(c, r0, R2);
}

/// A block of `R` rows × `n` vectors (n < 8) with `n` known only at run time.
#[inline(always)]
unsafe fn block_cols<S: Simd, const R: usize>(c: Ctx, r0: usize, v0: usize, n: usize) {
    match n {
        1 => block::<S, R, 1>(c, r0, v0),
        2 => block::<S, R, 2>(c, r0, v0),
        3 => block::<S, R, 3>(c, r0, v0),
        4 => block::<S, R, 4>(c, r0, v0),
        5 => block::<S, R, 5>(c, r0, v0),
        6 => block::<S, R, 6>(c, r0, v0),
        _ => {
            // n == 7 (CS = 8): 4 + 3.
            block::<S, R, 4>(c, r0, v0);
            block::<S, R, 3>(c, r0, v0 + 4);
        }
    }
}

/// `R` rows starting at `r0` × `C` vectors starting at vector column `v0`, over all of `n_in`,
/// then the epilogue.
#[inline(always)]
unsafe fn block<S: Simd, const R: usize, const C: usize>(c: Ctx, r0: usize, v0: usize) {
    let d = c.d;
    let n_in = d.n_in;
    let vp = PANEL / S::LANES; // vectors per panel
    let w = d.kernel.as_ptr();
    let mut wp = [w; C];
    for (j, p) in wp.iter_mut().enumerate() {
        let g = v0 + j;
        *p = w.add((g / vp) * n_in * PANEL + (g % vp) * S::LANES);
    }
    let mut xp = [c.x; R];
    for (i, p) in xp.iter_mut().enumerate() {
        *p = c.x.add((r0 + i) * c.xs);
    }
    let mut acc = [[S::splat(0.0); C]; R];
    for k in 0..n_in {
        let mut wv = [S::splat(0.0); C];
        for j in 0..C {
            wv[j] = S::load(wp[j].add(k * PANEL));
        }
        for i in 0..R {
            let xb = S::splat(*xp[i].add(k));
            for j in 0..C {
                acc[i][j] = S::fma(xb, wv[j], acc[i][j]);
            }
        }
    }
    // z = acc + bias (+ residual before the activation), stored; the activation runs in
    // `epilogue` over whole rows (one copy of the activation code per tier, not per block shape).
    let n_out = d.n_out;
    for j in 0..C {
        let col = (v0 + j) * S::LANES;
        let b = S::load(d.bias.as_ptr().add(col));
        for i in 0..R {
            let row = r0 + i;
            let mut z = S::add(acc[i][j], b);
            if d.residual == Residual::BeforeAct {
                z = S::add(z, load_partial::<S>(c.r.add(row * c.rs), col, n_out));
            }
            S::store(c.y.add(row * c.ys + col), z);
        }
    }
}

/// Activation and residual-after-activation over `n` finished rows starting at `r0`.
#[inline(always)]
unsafe fn epilogue<S: Simd>(c: Ctx, r0: usize, n: usize) {
    // Copies, so the compiler sees them loop-invariant (stores to `y` cannot change them).
    let (act, residual, n_out) = (c.d.act, c.d.residual, c.d.n_out);
    let width = n_panels(n_out) * PANEL;
    let skip_act = matches!(act, Activation::Linear | Activation::Softmax);
    let after = residual == Residual::AfterAct;
    if skip_act && !after {
        return;
    }
    for row in r0..r0 + n {
        let y = c.y.add(row * c.ys);
        let mut col = 0;
        while col < width {
            let mut v = S::load(y.add(col));
            if !skip_act {
                v = act_v::<S>(&act, v);
            }
            if after {
                v = S::add(v, load_partial::<S>(c.r.add(row * c.rs), col, n_out));
            }
            S::store(y.add(col), v);
            col += S::LANES;
        }
    }
}

/// Loads `row[col .. col + LANES]`, reading only columns `< n` (the rest are 0).
#[inline(always)]
unsafe fn load_partial<S: Simd>(row: *const f32, col: usize, n: usize) -> S::V {
    if col + S::LANES <= n {
        S::load(row.add(col))
    } else {
        let mut buf = [0.0f32; 16];
        for (t, b) in buf.iter_mut().enumerate().take(S::LANES) {
            if col + t < n {
                *b = *row.add(col + t);
            }
        }
        S::load(buf.as_ptr())
    }
}
