//! Element-wise activations over a tile of rows, and their `f64` references.
//!
//! Every activation except softmax is also fused into the dense kernel's epilogue
//! ([`crate::dense`]); both use the same vector code ([`act_v`]), built on the polynomials of
//! [`crate::math`]. Formulas (spec names in brackets):
//!
//! | variant | formula |
//! |---|---|
//! | `Linear` | `x` |
//! | `Relu` | `max(x, 0)` |
//! | `LeakyRelu { alpha }` | `x ≥ 0 ? x : alpha·x` |
//! | `Elu { alpha }` | `x > 0 ? x : alpha·(eˣ − 1)` |
//! | `Selu { alpha, scale }` | `scale · elu_alpha(x)` |
//! | `Silu` | `x · σ(x)` |
//! | `GeluErf` | `x · Φ(x)` (Φ computed without cancellation in the lower tail) |
//! | `GeluTanh` | `0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))`, computed as `x · σ(2u)` |
//! | `Tanh`, `Sigmoid` | |
//! | `Softplus { beta, threshold }` | `beta·x > threshold ? x : log(1 + e^(beta·x))/beta` |
//! | `Softmax` | `e^(x − max) / Σ e^(x − max)` over the row (numerically stable) |
use crate::math::{self, exp_v, expm1_v, phi_v, sigmoid_v, softplus1_v, tanh_v};
use crate::simd::{tiered, Simd};

/// An activation function with all its parameters explicit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Linear,
    Relu,
    LeakyRelu { alpha: f32 },
    Elu { alpha: f32 },
    Selu { alpha: f32, scale: f32 },
    Silu,
    GeluErf,
    GeluTanh,
    Tanh,
    Sigmoid,
    /// `threshold`: `f32::INFINITY` means none.
    Softplus { beta: f32, threshold: f32 },
    /// Over the whole row; never fused into the dense kernel (it needs the full row).
    Softmax,
}

/// One vector of an element-wise activation. `Softmax` is the identity here (handled per row).
#[inline(always)]
pub(crate) unsafe fn act_v<S: Simd>(act: &Activation, x: S::V) -> S::V {
    match *act {
        Activation::Linear | Activation::Softmax => x,
        Activation::Relu => S::max(S::splat(0.0), x),
        Activation::LeakyRelu { alpha } => S::lt_select(x, S::splat(0.0), S::mul(x, S::splat(alpha)), x),
        Activation::Elu { alpha } => elu::<S>(x, alpha, 1.0),
        Activation::Selu { alpha, scale } => elu::<S>(x, alpha * scale, scale),
        Activation::Silu => S::mul(x, sigmoid_v::<S>(x)),
        Activation::GeluErf => S::mul(x, phi_v::<S>(x)),
        Activation::GeluTanh => {
            // 0.5(1 + tanh(u)) = σ(2u), u = √(2/π)(x + 0.044715x³)
            const K: f32 = 0.797_884_6; // √(2/π)
            let x2 = S::mul(x, x);
            let two_u = S::mul(x, S::fma(x2, S::splat(2.0 * K * 0.044715), S::splat(2.0 * K)));
            S::mul(x, sigmoid_v::<S>(two_u))
        }
        Activation::Tanh => tanh_v::<S>(x),
        Activation::Sigmoid => sigmoid_v::<S>(x),
        Activation::Softplus { beta, threshold } => {
            let bx = S::mul(x, S::splat(beta));
            let sp = S::div(softplus1_v::<S>(bx), S::splat(beta));
            S::lt_select(S::splat(threshold), bx, x, sp)
        }
    }
}

/// `x > 0 ? pos·x : neg·(eˣ − 1)`.
#[inline(always)]
unsafe fn elu<S: Simd>(x: S::V, neg: f32, pos: f32) -> S::V {
    let m = S::mul(expm1_v::<S>(S::min(S::splat(0.0), x)), S::splat(neg));
    S::lt_select(S::splat(0.0), x, S::mul(x, S::splat(pos)), m)
}

#[inline(always)]
unsafe fn apply_impl<S: Simd>(act: Activation, rows: usize, width: usize, data: &mut [f32], stride: usize) {
    if rows == 0 || width == 0 {
        return;
    }
    assert!(stride >= width, "act::apply: stride {stride} < width {width}");
    assert!(
        data.len() >= (rows - 1) * stride + width,
        "act::apply: data has {} values, {rows} rows × stride {stride} need {}",
        data.len(),
        (rows - 1) * stride + width
    );
    for r in 0..rows {
        let row = &mut data[r * stride..r * stride + width];
        if act == Activation::Softmax {
            softmax_row::<S>(row);
        } else {
            crate::simd::map_slice!(S, row, |v| act_v::<S>(&act, v));
        }
    }
}

/// Numerically stable softmax of one row.
#[inline(always)]
pub(crate) unsafe fn softmax_row<S: Simd>(row: &mut [f32]) {
    let n = row.len();
    let p = row.as_mut_ptr();
    let l = S::LANES;
    let mut buf = [0.0f32; 16];
    // max
    let mut mv = S::splat(f32::NEG_INFINITY);
    let mut i = 0;
    while i + l <= n {
        mv = S::max(S::load(p.add(i)), mv);
        i += l;
    }
    S::store(buf.as_mut_ptr(), mv);
    let mut m = buf[..l].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for &v in &row[i..] {
        m = m.max(v);
    }
    if m == f32::INFINITY || m.is_nan() {
        // An infinite or NaN logit: fall back to the definition (NaN results, as frameworks give).
        m = 0.0;
    }
    // exp, then the sum in f64 in index order (the same on every tier), then scale.
    let mv = S::splat(m);
    crate::simd::map_slice!(S, &mut *row, |v| exp_v::<S>(S::sub(v, mv)));
    let s: f64 = row.iter().map(|&v| v as f64).sum();
    let iv = S::splat((1.0 / s) as f32);
    crate::simd::map_slice!(S, row, |v| S::mul(v, iv));
}

tiered!(
    /// Applies `act` in place to `rows` rows of `width` values; row `r` starts at `r * stride`.
    ///
    /// Panics if `data` is shorter than `(rows − 1)·stride + width` or `stride < width`
    /// (a bug in the calling code, never a data problem).
    pub fn apply(act: Activation, rows: usize, width: usize, data: &mut [f32], stride: usize) => apply_impl
);

/// `f64` reference of an element-wise activation (for tests). `Softmax` (a row operation)
/// returns NaN.
pub fn scalar_f64(act: Activation, x: f64) -> f64 {
    use std::f64::consts::{FRAC_1_SQRT_2, PI};
    match act {
        Activation::Linear => x,
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                alpha as f64 * x
            }
        }
        Activation::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                alpha as f64 * x.exp_m1()
            }
        }
        Activation::Selu { alpha, scale } => {
            scale as f64 * if x > 0.0 { x } else { alpha as f64 * x.exp_m1() }
        }
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::GeluErf => x * 0.5 * math::erfc_f64(-x * FRAC_1_SQRT_2),
        Activation::GeluTanh => {
            let u = (2.0 / PI).sqrt() * (x + 0.044715 * x * x * x);
            0.5 * x * (1.0 + u.tanh())
        }
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Softplus { beta, threshold } => {
            let (b, t) = (beta as f64, threshold as f64);
            let bx = b * x;
            if bx > t {
                x
            } else {
                (bx.max(0.0) + (-bx.abs()).exp().ln_1p()) / b
            }
        }
        Activation::Softmax => f64::NAN,
    }
}
