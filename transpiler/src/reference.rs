//! An f64 reference evaluator of the IR: the oracle for pass tests and kernel tests.
//!
//! It evaluates one row at a time, straightforwardly, in f64, with the semantics of
//! `docs/spec.md` (sklearn's for the quantile transform). It works on any [`Model`] (before or
//! after the passes) and reports undefined values or size mismatches as errors instead of
//! panicking.

use std::collections::BTreeMap;

use crate::ir::{Activation, Direction, Model, Op, Tensor};

mod flow;

/// Evaluates one row: `input` is all inputs concatenated, `noise` the noise values.
pub fn eval_row(m: &Model, input: &[f64], noise: &[f64]) -> Result<Vec<f64>, String> {
    let mut env: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut col0 = 0;
    for i in &m.inputs {
        let w = i.columns.len();
        let v = input
            .get(col0..col0 + w)
            .ok_or_else(|| format!("input row too short for \"{}\"", i.name))?;
        env.insert(&i.name, v.to_vec());
        col0 += w;
    }
    if let Some(n) = &m.noise {
        let v = noise.get(..n.dim).ok_or("noise row too short")?;
        env.insert(&n.name, v.to_vec());
    }
    for node in &m.nodes {
        let get = |v: &str| {
            env.get(v)
                .cloned()
                .ok_or_else(|| format!("node \"{}\": value \"{v}\" undefined", node.name))
        };
        let y = eval_op(&node.op, &get)?;
        env.insert(&node.name, y);
    }
    let mut out = Vec::new();
    for o in &m.outputs {
        out.extend(
            env.get(o.value.as_str())
                .ok_or_else(|| format!("output \"{}\" undefined", o.value))?,
        );
    }
    Ok(out)
}

/// Evaluates `rows` rows (row-major `input` and `noise`).
pub fn eval(m: &Model, rows: usize, input: &[f64], noise: &[f64]) -> Result<Vec<f64>, String> {
    let ni: usize = m.inputs.iter().map(|i| i.columns.len()).sum();
    let nz = m.noise.as_ref().map_or(0, |n| n.dim);
    let mut out = Vec::new();
    for r in 0..rows {
        let x = input.get(r * ni..(r + 1) * ni).ok_or("input too short")?;
        let z = noise.get(r * nz..(r + 1) * nz).ok_or("noise too short")?;
        out.extend(eval_row(m, x, z)?);
    }
    Ok(out)
}

fn f(t: &Tensor) -> Vec<f64> {
    t.data.iter().map(|&x| f64::from(x)).collect()
}

fn at(v: &[f64], i: usize) -> Result<f64, String> {
    v.get(i)
        .copied()
        .ok_or_else(|| format!("index {i} out of range"))
}

fn cols(columns: &Option<Vec<usize>>, w: usize) -> Vec<usize> {
    columns.clone().unwrap_or_else(|| (0..w).collect())
}

fn eval_op(op: &Op, get: &dyn Fn(&str) -> Result<Vec<f64>, String>) -> Result<Vec<f64>, String> {
    Ok(match op {
        Op::Dense {
            input,
            kernel,
            bias,
            activation,
            residual,
        } => {
            let x = get(input)?;
            let (n_in, n_out) = (
                kernel.shape.first().copied().unwrap_or(0),
                kernel.shape.get(1).copied().unwrap_or(0),
            );
            if x.len() != n_in {
                return Err(format!("dense: input width {} != {n_in}", x.len()));
            }
            let k = f(kernel);
            let mut y: Vec<f64> = (0..n_out)
                .map(|j| {
                    bias.as_ref()
                        .and_then(|b| b.data.get(j))
                        .map_or(0.0, |&b| f64::from(b))
                })
                .collect();
            for (i, xi) in x.iter().enumerate() {
                for (j, yj) in y.iter_mut().enumerate() {
                    *yj += xi * at(&k, i * n_out + j)?;
                }
            }
            let r = match residual {
                Some(r) => Some((get(&r.value)?, r.before_act)),
                None => None,
            };
            if let Some((r, true)) = &r {
                for (yj, rj) in y.iter_mut().zip(r) {
                    *yj += rj;
                }
            }
            let mut y = apply(*activation, &y);
            if let Some((r, false)) = &r {
                for (yj, rj) in y.iter_mut().zip(r) {
                    *yj += rj;
                }
            }
            y
        }
        Op::Activation { input, activation } => apply(*activation, &get(input)?),
        Op::Add { a, b } => get(a)?.iter().zip(get(b)?).map(|(a, b)| a + b).collect(),
        Op::Mul { a, b } => get(a)?.iter().zip(get(b)?).map(|(a, b)| a * b).collect(),
        Op::Concat { inputs } => {
            let mut y = Vec::new();
            for v in inputs {
                y.extend(get(v)?);
            }
            y
        }
        Op::BatchNorm {
            input,
            gamma,
            beta,
            mean,
            var,
            eps,
        } => {
            let x = get(input)?;
            let (g, b, m, v) = (f(gamma), f(beta), f(mean), f(var));
            (0..x.len())
                .map(|i| {
                    Ok(
                        (at(&x, i)? - at(&m, i)?) / (at(&v, i)? + eps).sqrt() * at(&g, i)?
                            + at(&b, i)?,
                    )
                })
                .collect::<Result<_, String>>()?
        }
        Op::LayerNorm {
            input,
            gamma,
            beta,
            eps,
        } => {
            let x = get(input)?;
            let n = x.len() as f64;
            let mu = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n;
            let s = (var + eps).sqrt();
            let (g, b) = (gamma.as_ref().map(f), beta.as_ref().map(f));
            (0..x.len())
                .map(|i| {
                    let z = (at(&x, i)? - mu) / s;
                    Ok(match (&g, &b) {
                        (Some(g), Some(b)) => z * at(g, i)? + at(b, i)?,
                        _ => z,
                    })
                })
                .collect::<Result<_, String>>()?
        }
        Op::StandardScaler {
            input,
            direction,
            columns,
            mean,
            scale,
        } => {
            let mut x = get(input)?;
            let (m, s) = (f(mean), f(scale));
            for (i, c) in cols(columns, x.len()).into_iter().enumerate() {
                let v = x.get_mut(c).ok_or("column out of range")?;
                *v = match direction {
                    Direction::Forward => (*v - at(&m, i)?) / at(&s, i)?,
                    Direction::Inverse => *v * at(&s, i)? + at(&m, i)?,
                };
            }
            x
        }
        Op::MinMax {
            input,
            direction,
            columns,
            min,
            scale,
        } => {
            let mut x = get(input)?;
            let (m, s) = (f(min), f(scale));
            for (i, c) in cols(columns, x.len()).into_iter().enumerate() {
                let v = x.get_mut(c).ok_or("column out of range")?;
                *v = match direction {
                    Direction::Forward => *v * at(&s, i)? + at(&m, i)?,
                    Direction::Inverse => (*v - at(&m, i)?) / at(&s, i)?,
                };
            }
            x
        }
        Op::Quantile {
            input,
            direction,
            columns,
            quantiles,
            references,
            normal,
            bounds_threshold,
        } => {
            let mut x = get(input)?;
            let refs = f(references);
            let cs = cols(columns, x.len());
            let nc = cs.len();
            for (i, c) in cs.into_iter().enumerate() {
                let q: Vec<f64> = (0..refs.len())
                    .map(|k| {
                        quantiles
                            .data
                            .get(k * nc + i)
                            .map_or(0.0, |&v| f64::from(v))
                    })
                    .collect();
                let v = x.get_mut(c).ok_or("column out of range")?;
                *v = quantile(*v, &q, &refs, *normal, *bounds_threshold, *direction);
            }
            x
        }
        Op::Logit {
            input,
            direction,
            columns,
            scale,
        } => {
            let mut x = get(input)?;
            for c in cols(columns, x.len()) {
                let v = x.get_mut(c).ok_or("column out of range")?;
                *v = match direction {
                    Direction::Forward => scale * (*v / (1.0 - *v)).ln(),
                    Direction::Inverse => 1.0 / (1.0 + (-*v / scale).exp()),
                };
            }
            x
        }
        Op::Decorrelate {
            input,
            direction,
            columns,
            matrix,
            mean,
        } => {
            let x = get(input)?;
            let n = x.len();
            let (m, mean) = crate::ir::decorrelate_full_width(n, columns, matrix, mean);
            let mean = mean.unwrap_or_else(|| vec![0.0; n]);
            match direction {
                Direction::Forward => (0..n)
                    .map(|j| {
                        (0..n)
                            .map(|k| Ok((at(&x, k)? - at(&mean, k)?) * at(&m, k * n + j)?))
                            .sum()
                    })
                    .collect::<Result<_, String>>()?,
                Direction::Inverse => {
                    let inv = crate::linalg::invert(&m, n).ok_or("singular matrix")?;
                    (0..n)
                        .map(|j| {
                            Ok((0..n)
                                .map(|k| Ok(at(&x, k)? * at(&inv, k * n + j)?))
                                .sum::<Result<f64, String>>()?
                                + at(&mean, j)?)
                        })
                        .collect::<Result<_, String>>()?
                }
            }
        }
        Op::Flow(fl) => {
            let c = match &fl.context {
                Some(c) => Some(get(c)?),
                None => None,
            };
            flow::eval(fl, &get(&fl.input)?, c.as_deref())?
        }
    })
}

/// Applies an activation to a row (softmax over the row).
pub fn apply(a: Activation, x: &[f64]) -> Vec<f64> {
    if a == Activation::Softmax {
        let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = x.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        return e.iter().map(|v| v / s).collect();
    }
    x.iter().map(|&v| scalar(a, v)).collect()
}

/// One element of an element-wise activation (softmax: identity).
pub fn scalar(a: Activation, x: f64) -> f64 {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match a {
        Activation::Linear | Activation::Softmax => x,
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu { alpha } => {
            if x >= 0.0 {
                x
            } else {
                f64::from(alpha) * x
            }
        }
        Activation::Elu { alpha } => {
            if x > 0.0 {
                x
            } else {
                f64::from(alpha) * x.exp_m1()
            }
        }
        Activation::Selu { alpha, scale } => {
            f64::from(scale)
                * if x > 0.0 {
                    x
                } else {
                    f64::from(alpha) * x.exp_m1()
                }
        }
        Activation::Silu => x * sigmoid(x),
        Activation::GeluErf => x * normal_cdf(x),
        Activation::GeluTanh => {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => sigmoid(x),
        Activation::Softplus { beta, threshold } => {
            let b = f64::from(beta);
            if x * b > f64::from(threshold) {
                x
            } else {
                (b * x).exp().ln_1p() / b
            }
        }
    }
}

/// `erf(x)` to about 1e-14 (Taylor series near 0, continued fraction of `erfc` beyond 3).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a < 3.0 {
        let (mut term, mut sum, x2) = (a, a, a * a);
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        (2.0 / std::f64::consts::PI.sqrt() * sum).copysign(x)
    } else {
        (1.0 - erfc_large(a)).copysign(x)
    }
}

/// `erfc(a)` for `a >= 3` (continued fraction, evaluated backwards).
fn erfc_large(a: f64) -> f64 {
    let mut t = 0.0;
    for k in (1..80).rev() {
        t = (k as f64 / 2.0) / (a + t);
    }
    (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + t)
}

/// Standard normal CDF Φ.
pub fn normal_cdf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    if z < -3.0 {
        0.5 * erfc_large(-z)
    } else {
        0.5 * (1.0 + erf(z))
    }
}

/// Standard normal quantile Φ⁻¹ (Acklam's approximation refined by one Halley step).
#[allow(clippy::excessive_precision)]
pub fn normal_ppf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// `numpy.interp` (xp non-decreasing).
pub fn interp(x: f64, xp: &[f64], fp: &[f64]) -> f64 {
    let (Some(&x0), Some(&xl), Some(&f0), Some(&fl)) =
        (xp.first(), xp.last(), fp.first(), fp.last())
    else {
        return f64::NAN;
    };
    if x.is_nan() {
        return x;
    }
    if x < x0 {
        return f0;
    }
    if x >= xl {
        return fl;
    }
    // Largest j with xp[j] <= x (j < last).
    let j = xp.partition_point(|&v| v <= x).saturating_sub(1);
    let (Some(&xa), Some(&xb), Some(&fa), Some(&fb)) =
        (xp.get(j), xp.get(j + 1), fp.get(j), fp.get(j + 1))
    else {
        return f64::NAN;
    };
    if xb == xa {
        fa
    } else {
        fa + (x - xa) * (fb - fa) / (xb - xa)
    }
}

/// sklearn `QuantileTransformer` on one value of one column.
pub fn quantile(
    x: f64,
    q: &[f64],
    refs: &[f64],
    normal: bool,
    bt: f64,
    direction: Direction,
) -> f64 {
    let (Some(&q0), Some(&ql)) = (q.first(), q.last()) else {
        return f64::NAN;
    };
    match direction {
        Direction::Forward => {
            let (lo, hi) = if normal {
                (x - bt < q0, x + bt > ql)
            } else {
                (x == q0, x == ql)
            };
            let rq: Vec<f64> = q.iter().rev().map(|v| -v).collect();
            let rr: Vec<f64> = refs.iter().rev().map(|v| -v).collect();
            let mut y = 0.5 * (interp(x, q, refs) - interp(-x, &rq, &rr));
            if hi {
                y = 1.0;
            }
            if lo {
                y = 0.0;
            }
            if normal {
                let lo = normal_ppf(bt - f64::EPSILON);
                let hi = normal_ppf(1.0 - (bt - f64::EPSILON));
                y = normal_ppf(y).clamp(lo, hi);
            }
            y
        }
        Direction::Inverse => {
            let u = if normal { normal_cdf(x) } else { x };
            let (lo, hi) = if normal {
                (u - bt < 0.0, u + bt > 1.0)
            } else {
                (u == 0.0, u == 1.0)
            };
            let mut y = interp(u, refs, q);
            if hi {
                y = ql;
            }
            if lo {
                y = q0;
            }
            y
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_functions() {
        assert!((erf(0.5) - 0.5204998778130465).abs() < 1e-14);
        assert!((erf(3.5) - 0.9999992569016276).abs() < 1e-14);
        assert!((normal_cdf(-1.0) - 0.15865525393145707).abs() < 1e-14);
        for p in [1e-9, 1e-3, 0.1, 0.5, 0.77, 0.999] {
            assert!(
                (normal_cdf(normal_ppf(p)) - p).abs() < 1e-12 * p.max(1e-3),
                "{p}"
            );
        }
    }

    #[test]
    fn interp_and_ties() {
        let xp = [0.0, 1.0, 1.0, 2.0];
        let fp = [0.0, 0.25, 0.75, 1.0];
        assert_eq!(interp(0.5, &xp, &fp), 0.125);
        assert_eq!(interp(1.0, &xp, &fp), 0.75);
        // sklearn's averaged interpolation maps a tie to the midpoint.
        let y = quantile(1.0, &xp, &fp, false, 1e-7, Direction::Forward);
        assert!((y - 0.5).abs() < 1e-15, "{y}");
        let back = quantile(0.125, &xp, &fp, false, 1e-7, Direction::Inverse);
        assert!((back - 0.5).abs() < 1e-15);
    }
}
