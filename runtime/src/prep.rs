//! Pre- and post-processing kernels: scalers, sklearn's quantile transform, logit, layer
//! norm, small matrix products (decorrelation), column routing.
//!
//! All operate on row-major tiles: `rows` rows, row `r` starting at `r * stride`. Kernels that
//! take `cols: &[u32]` touch only those columns; parameter `i` belongs to column `cols[i]`.
//! These kernels are cheap next to the dense layers; they are scalar code (the simple loops
//! are vectorised by the compiler) and the quantile transform and logit compute in `f64`.
use crate::math::{norm_cdf_f64, norm_ppf};

/// `x[c] = x[c]·mul[i] + add[i]` for `c = cols[i]` (standard scaler forward: `mul = 1/scale`,
/// `add = −mean/scale`; inverse: `mul = scale`, `add = mean`; min-max alike).
pub fn affine_columns(rows: usize, data: &mut [f32], stride: usize, cols: &[u32], mul: &[f32], add: &[f32]) {
    assert!(mul.len() >= cols.len() && add.len() >= cols.len(), "affine_columns: one mul and add per column");
    for r in 0..rows {
        let row = &mut data[r * stride..];
        for (i, &c) in cols.iter().enumerate() {
            let v = &mut row[c as usize];
            *v = *v * mul[i] + add[i];
        }
    }
}

/// sklearn `QuantileTransformer` parameters for the columns of one op.
#[derive(Clone, Copy, Debug)]
pub struct Quantile<'a> {
    pub n_quantiles: usize,
    /// Column-major: `[n_cols][n_quantiles]`, each column non-decreasing.
    pub quantiles: &'a [f32],
    /// `n_quantiles` values, increasing from 0 to 1.
    pub references: &'a [f32],
    /// `true`: output distribution normal; `false`: uniform.
    pub normal: bool,
    /// sklearn's `BOUNDS_THRESHOLD` (1e-7).
    pub bounds_threshold: f64,
}

/// `np.interp(x, xp, fp)` for non-decreasing `xp` (read through `xs`/`fs` accessors so the
/// reversed and negated sequences need no copy). `x` is not NaN.
#[inline]
fn interp(x: f64, n: usize, xp: impl Fn(usize) -> f64, fp: impl Fn(usize) -> f64) -> f64 {
    if x < xp(0) {
        return fp(0);
    }
    if x > xp(n - 1) {
        return fp(n - 1);
    }
    // j = last index with xp[j] <= x.
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if x >= xp(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let j = lo - 1;
    if j == n - 1 || xp(j) == x {
        return fp(j);
    }
    let slope = (fp(j + 1) - fp(j)) / (xp(j + 1) - xp(j));
    let mut y = slope * (x - xp(j)) + fp(j);
    if y.is_nan() {
        y = slope * (x - xp(j + 1)) + fp(j + 1);
        if y.is_nan() && fp(j) == fp(j + 1) {
            y = fp(j);
        }
    }
    y
}

/// The normal-output clip bounds `(Φ⁻¹(t − ε), Φ⁻¹(1 − (t − ε)))`, `ε = 2⁻⁵²` (`np.spacing(1)`).
///
/// Two `norm_ppf` calls; the value for sklearn's default threshold (1e-7) is computed once.
pub fn quantile_clip(bounds_threshold: f64) -> (f64, f64) {
    fn compute(t: f64) -> (f64, f64) {
        let eps = f64::EPSILON;
        (norm_ppf(t - eps), norm_ppf(1.0 - (t - eps)))
    }
    const DEFAULT_THRESHOLD: f64 = 1e-7;
    static DEFAULT: std::sync::OnceLock<(f64, f64)> = std::sync::OnceLock::new();
    if bounds_threshold == DEFAULT_THRESHOLD {
        *DEFAULT.get_or_init(|| compute(DEFAULT_THRESHOLD))
    } else {
        compute(bounds_threshold)
    }
}

/// sklearn's forward transform of one value of a column (`col_q`: the column's quantiles,
/// `clip`: [`quantile_clip`]).
pub fn quantile_forward_value(q: &Quantile, col_q: &[f32], x: f64, clip: (f64, f64)) -> f64 {
    if x.is_nan() {
        return x;
    }
    let n = q.n_quantiles;
    let qs = |i: usize| col_q[i] as f64;
    let rs = |i: usize| q.references[i] as f64;
    let (lo_x, hi_x) = (qs(0), qs(n - 1));
    let (lower, upper) = if q.normal {
        (x - q.bounds_threshold < lo_x, x + q.bounds_threshold > hi_x)
    } else {
        (x == lo_x, x == hi_x)
    };
    let mut u = 0.5 * (interp(x, n, qs, rs) - interp(-x, n, |i| -qs(n - 1 - i), |i| -rs(n - 1 - i)));
    if upper {
        u = 1.0;
    }
    if lower {
        u = 0.0;
    }
    if q.normal {
        norm_ppf(u).clamp(clip.0, clip.1)
    } else {
        u
    }
}

/// sklearn's inverse transform of one value of a column.
pub fn quantile_inverse_value(q: &Quantile, col_q: &[f32], y: f64) -> f64 {
    let n = q.n_quantiles;
    let qs = |i: usize| col_q[i] as f64;
    let rs = |i: usize| q.references[i] as f64;
    let u = if q.normal { norm_cdf_f64(y) } else { y };
    if u.is_nan() {
        return u;
    }
    let (lower, upper) = if q.normal {
        (u - q.bounds_threshold < 0.0, u + q.bounds_threshold > 1.0)
    } else {
        (u == 0.0, u == 1.0)
    };
    let mut x = interp(u, n, rs, qs);
    if upper {
        x = qs(n - 1);
    }
    if lower {
        x = qs(0);
    }
    x
}

fn quantile_apply(q: &Quantile, rows: usize, data: &mut [f32], stride: usize, cols: &[u32], inverse: bool) {
    let n = q.n_quantiles;
    assert!(n >= 1, "quantile: at least one quantile");
    assert!(q.references.len() >= n, "quantile: {n} references needed");
    assert!(q.quantiles.len() >= cols.len() * n, "quantile: {n} quantiles per column needed");
    // The clip bounds are only used by the forward transform.
    let clip = if inverse { (f64::NEG_INFINITY, f64::INFINITY) } else { quantile_clip(q.bounds_threshold) };
    for (i, &c) in cols.iter().enumerate() {
        let col_q = &q.quantiles[i * n..(i + 1) * n];
        for r in 0..rows {
            let v = &mut data[r * stride + c as usize];
            let x = *v as f64;
            *v = if inverse { quantile_inverse_value(q, col_q, x) } else { quantile_forward_value(q, col_q, x, clip) } as f32;
        }
    }
}

/// sklearn `QuantileTransformer.transform` on columns `cols` (computed in f64): the mean of the
/// forward and backward interpolations (tied quantiles map to the midpoint), sklearn's bound
/// rules, then for normal output Φ⁻¹ clipped to `±Φ⁻¹(1 − (bounds_threshold − ε))`.
pub fn quantile_forward(q: &Quantile, rows: usize, data: &mut [f32], stride: usize, cols: &[u32]) {
    quantile_apply(q, rows, data, stride, cols, false)
}

/// sklearn `QuantileTransformer.inverse_transform` on columns `cols`: `u = Φ(y)` for normal
/// output, interpolation references → quantiles, `u − t < 0` → first quantile, `u + t > 1` →
/// last (uniform: exact 0 / 1).
pub fn quantile_inverse(q: &Quantile, rows: usize, data: &mut [f32], stride: usize, cols: &[u32]) {
    quantile_apply(q, rows, data, stride, cols, true)
}

/// `x ← scale · ln(x / (1 − x))` (f64 inside).
pub fn logit_forward(scale: f32, rows: usize, data: &mut [f32], stride: usize, cols: &[u32]) {
    let s = scale as f64;
    for r in 0..rows {
        for &c in cols {
            let v = &mut data[r * stride + c as usize];
            let x = *v as f64;
            *v = (s * (x / (1.0 - x)).ln()) as f32;
        }
    }
}

/// `y ← 1 / (1 + exp(−y / scale))` (f64 inside).
pub fn logit_inverse(scale: f32, rows: usize, data: &mut [f32], stride: usize, cols: &[u32]) {
    let s = scale as f64;
    for r in 0..rows {
        for &c in cols {
            let v = &mut data[r * stride + c as usize];
            *v = (1.0 / (1.0 + (-(*v as f64) / s).exp())) as f32;
        }
    }
}

/// `y = (x − sub) · m` for `n`-wide rows; `m` is `[n][n]` row-major (`y[j] = Σ_k x[k]·m[k][j]`).
/// Accumulates in f64. `x` and `y` are distinct buffers.
#[allow(clippy::too_many_arguments)]
pub fn matmul_small(
    rows: usize,
    x: &[f32],
    x_stride: usize,
    n: usize,
    m: &[f32],
    sub: Option<&[f32]>,
    y: &mut [f32],
    y_stride: usize,
) {
    assert!(m.len() >= n * n, "matmul_small: matrix needs {n}×{n} values");
    let mut acc = vec![0.0f64; 0];
    acc.resize(n, 0.0);
    for r in 0..rows {
        let xr = &x[r * x_stride..r * x_stride + n];
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (k, &xv) in xr.iter().enumerate() {
            let xv = xv as f64 - sub.map_or(0.0, |s| s[k] as f64);
            let mk = &m[k * n..(k + 1) * n];
            for (a, &w) in acc.iter_mut().zip(mk) {
                *a += xv * w as f64;
            }
        }
        for (o, a) in y[r * y_stride..r * y_stride + n].iter_mut().zip(&acc) {
            *o = *a as f32;
        }
    }
}

/// Layer normalisation over `width` values per row: `(x − μ)/√(σ² + eps)·gamma + beta` with the
/// biased variance (f64 accumulation).
pub fn layernorm(rows: usize, width: usize, data: &mut [f32], stride: usize, gamma: Option<&[f32]>, beta: Option<&[f32]>, eps: f32) {
    if width == 0 {
        return;
    }
    for r in 0..rows {
        let row = &mut data[r * stride..r * stride + width];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        for (j, v) in row.iter_mut().enumerate() {
            let mut t = (*v as f64 - mean) * inv;
            if let Some(g) = gamma {
                t *= g[j] as f64;
            }
            if let Some(b) = beta {
                t += b[j] as f64;
            }
            *v = t as f32;
        }
    }
}

/// Copies `width` columns per row: `dst[r][dst_col0 + j] = src[r][src_col0 + j]`.
#[allow(clippy::too_many_arguments)]
pub fn copy_columns(
    rows: usize,
    src: &[f32],
    src_stride: usize,
    src_col0: usize,
    width: usize,
    dst: &mut [f32],
    dst_stride: usize,
    dst_col0: usize,
) {
    for r in 0..rows {
        let s = r * src_stride + src_col0;
        let d = r * dst_stride + dst_col0;
        dst[d..d + width].copy_from_slice(&src[s..s + width]);
    }
}

/// `y = a + b` over `width` columns per row.
#[allow(clippy::too_many_arguments)]
pub fn add(rows: usize, width: usize, a: &[f32], a_stride: usize, b: &[f32], b_stride: usize, y: &mut [f32], y_stride: usize) {
    for r in 0..rows {
        let (ar, br) = (&a[r * a_stride..r * a_stride + width], &b[r * b_stride..r * b_stride + width]);
        for ((o, &u), &v) in y[r * y_stride..r * y_stride + width].iter_mut().zip(ar).zip(br) {
            *o = u + v;
        }
    }
}

/// `y = a ⊙ b` (element-wise product) over `width` columns per row: the gate of a gated linear
/// unit, `h · σ(g)`. One correctly rounded f32 multiplication per value, so every tier gives the
/// same bits.
#[allow(clippy::too_many_arguments)]
pub fn mul(rows: usize, width: usize, a: &[f32], a_stride: usize, b: &[f32], b_stride: usize, y: &mut [f32], y_stride: usize) {
    for r in 0..rows {
        let (ar, br) = (&a[r * a_stride..r * a_stride + width], &b[r * b_stride..r * b_stride + width]);
        for ((o, &u), &v) in y[r * y_stride..r * y_stride + width].iter_mut().zip(ar).zip(br) {
            *o = u * v;
        }
    }
}

/// `x[j] = x[j]·mul[j] + add[j]` over `width` columns per row (an un-folded batch norm).
pub fn scale_shift(rows: usize, width: usize, data: &mut [f32], stride: usize, mul: &[f32], add: &[f32]) {
    let (mul, add) = (&mul[..width], &add[..width]);
    for r in 0..rows {
        for ((v, &m), &a) in data[r * stride..r * stride + width].iter_mut().zip(mul).zip(add) {
            *v = *v * m + a;
        }
    }
}
