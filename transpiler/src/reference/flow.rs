//! The f64 reference of the `flow` op, written as nflows computes it: MADE passes over the
//! unsorted masked weights, the inverse of an autoregressive transform by `D` full passes.

use super::{apply, at, f};
use crate::ir::flow::{
    AffineScale, AffineShift, CouplingElementwise, Flow, FlowMode, FlowTransform, Linear, Made,
    MadeBlock, MadeKind, MaskedLinear, Norm, ResidualNet, Spline, SplineStyle,
};

type R<T> = Result<T, String>;

/// `W·x + b`, `W` `[n_out, n_in]`.
fn matvec(w: &crate::ir::Tensor, b: Option<&crate::ir::Tensor>, x: &[f64]) -> R<Vec<f64>> {
    let n_in = x.len();
    let n_out = w.shape.first().copied().unwrap_or(0);
    if w.shape != [n_out, n_in] {
        return Err(format!(
            "flow: tensor \"{}\" has shape {:?}, input width {n_in}",
            w.name, w.shape
        ));
    }
    let (wf, bf) = (f(w), b.map(f));
    (0..n_out)
        .map(|o| {
            let mut y = match &bf {
                Some(b) => at(b, o)?,
                None => 0.0,
            };
            for (i, xi) in x.iter().enumerate() {
                y += at(&wf, o * n_in + i)? * xi;
            }
            Ok(y)
        })
        .collect()
}

fn masked(l: &MaskedLinear, x: &[f64]) -> R<Vec<f64>> {
    matvec(&l.weight, Some(&l.bias), x)
}

fn linear(l: &Linear, x: &[f64]) -> R<Vec<f64>> {
    matvec(&l.weight, l.bias.as_ref(), x)
}

fn norm(n: &Norm, x: &[f64]) -> R<Vec<f64>> {
    let (g, b, m, v) = (f(&n.gamma), f(&n.beta), f(&n.mean), f(&n.var));
    (0..x.len())
        .map(|i| Ok((x[i] - at(&m, i)?) / (at(&v, i)? + n.eps).sqrt() * at(&g, i)? + at(&b, i)?))
        .collect()
}

fn add(a: &[f64], b: &[f64]) -> R<Vec<f64>> {
    if a.len() != b.len() {
        return Err("flow: widths differ in an addition".into());
    }
    Ok(a.iter().zip(b).map(|(x, y)| x + y).collect())
}

fn context(c: Option<&[f64]>) -> R<&[f64]> {
    c.ok_or_else(|| "flow: a MADE with context layers needs the flow's context".to_owned())
}

/// The MADE's outputs (`D·m`, feature-major) at `x` (columns in the input's order).
pub(super) fn made(m: &Made, x: &[f64], c: Option<&[f64]>) -> R<Vec<f64>> {
    let mut h = masked(&m.initial, x)?;
    if let Some((l, act)) = &m.context {
        h = add(&h, &apply(*act, &linear(l, context(c)?)?))?;
    }
    if m.kind == MadeKind::Feedforward {
        h = apply(m.activation, &h);
    }
    for b in &m.blocks {
        match b {
            MadeBlock::Residual {
                norms,
                linear: l,
                context: cl,
            } => {
                let mut t = h.clone();
                if let Some(n) = norms {
                    t = norm(&n[0], &t)?;
                }
                t = masked(&l[0], &apply(m.activation, &t))?;
                if let Some(cl) = cl {
                    t = add(&t, &linear(cl, context(c)?)?)?;
                }
                if let Some(n) = norms {
                    t = norm(&n[1], &t)?;
                }
                t = masked(&l[1], &apply(m.activation, &t))?;
                h = add(&h, &t)?;
            }
            MadeBlock::Feedforward { norm: n, linear: l } => {
                let t = match n {
                    Some(n) => norm(n, &h)?,
                    None => h,
                };
                h = apply(m.activation, &masked(l, &t)?);
            }
        }
    }
    masked(&m.final_layer, &h)
}

fn softplus(threshold: f64, u: f64) -> f64 {
    if u > threshold {
        u
    } else {
        u.max(0.0) + (-u.abs()).exp().ln_1p()
    }
}

/// `torch.clamp(x, min, max)`: `min(max(x, min), max)`, either bound optional.
fn clamp(x: f64, min: Option<f64>, max: Option<f64>) -> f64 {
    let x = min.map_or(x, |m| x.max(m));
    max.map_or(x, |m| x.min(m))
}

fn scale(s: AffineScale, u: f64) -> f64 {
    match s {
        AffineScale::Softplus { threshold, eps } => softplus(threshold, u) + eps,
        AffineScale::SoftClipExp { bound } => (u / (1.0 + u.abs() / bound)).exp(),
        AffineScale::SoftplusClamped {
            threshold,
            eps,
            min,
            max,
        } => clamp(softplus(threshold, u) + eps, min, max),
        AffineScale::Sigmoid {
            factor,
            offset,
            eps,
        } => factor / (1.0 + (-(u + offset)).exp()) + eps,
        AffineScale::Atan { factor, min, max } => {
            clamp(factor * (u / factor).atan(), Some(min), max)
        }
    }
}

/// The shift of a feature from its parameter `t`, in the forward (`inverse == false`) or
/// inverse direction.
fn shift_of(sh: AffineShift, t: f64, inverse: bool) -> f64 {
    let v = t + sh.offset;
    match sh.clamp {
        Some(c) if !inverse || c.inverse => clamp(v, Some(c.min), Some(c.max)),
        _ => v,
    }
}

/// `(scale, shift)` of every feature.
fn affine_params(
    m: &Made,
    s: AffineScale,
    scale_param: usize,
    sh: AffineShift,
    inverse: bool,
    x: &[f64],
    c: Option<&[f64]>,
) -> R<Vec<(f64, f64)>> {
    let p = made(m, x, c)?;
    (0..x.len())
        .map(|i| {
            Ok((
                scale(s, at(&p, 2 * i + scale_param)?),
                shift_of(sh, at(&p, 2 * i + 1 - scale_param)?, inverse),
            ))
        })
        .collect()
}

/// The knots `(x, y, derivative)` of one feature's spline from its `3K − 1` parameters.
fn knots(s: &Spline, p: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let k = s.bins;
    let (b, div) = (s.bound, s.divisor);
    let softmax = |u: &[f64]| -> Vec<f64> {
        let m = u.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = u.iter().map(|v| (v - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|v| v / sum).collect()
    };
    let softplus = |u: f64| u.max(0.0) + (-u.abs()).exp().ln_1p();
    let cum = |w: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0];
        for v in w {
            c.push(c.last().unwrap_or(&0.0) + v);
        }
        c
    };
    match s.style {
        SplineStyle::Nflows {
            min_width,
            min_height,
            min_derivative,
        } => {
            let sized = |u: &[f64], min: f64| -> Vec<f64> {
                let u: Vec<f64> = u.iter().map(|v| v / div).collect();
                let w = softmax(&u);
                let mut c: Vec<f64> = cum(&w
                    .iter()
                    .map(|v| min + (1.0 - min * k as f64) * v)
                    .collect::<Vec<_>>())
                .iter()
                .map(|c| 2.0 * b * c - b)
                .collect();
                c[0] = -b;
                c[k] = b;
                c
            };
            let end = min_derivative + softplus(((1.0 - min_derivative).exp() - 1.0).ln());
            let mut d = vec![end];
            d.extend(
                p[2 * k..3 * k - 1]
                    .iter()
                    .map(|&u| min_derivative + softplus(u)),
            );
            d.push(end);
            (
                sized(&p[..k], min_width),
                sized(&p[k..2 * k], min_height),
                d,
            )
        }
        SplineStyle::Zuko { slope } => {
            let ls = slope.ln();
            let clip = |u: &[f64]| -> Vec<f64> {
                u.iter()
                    .map(|v| v / div)
                    .map(|v| v / (1.0 + (2.0 * v / ls).abs()))
                    .collect()
            };
            let knots = |u: &[f64]| -> Vec<f64> {
                cum(&softmax(&clip(u)))
                    .iter()
                    .map(|c| b * (2.0 * c - 1.0))
                    .collect()
            };
            let mut d = vec![1.0];
            d.extend(
                p[2 * k..3 * k - 1]
                    .iter()
                    .map(|&u| (u / (1.0 + (u / ls).abs())).exp()),
            );
            d.push(1.0);
            (knots(&p[..k]), knots(&p[k..2 * k]), d)
        }
    }
}

/// The bin `v` falls in among `knots`, or `None` outside the spline (identity there).
fn bin(s: &Spline, knots: &[f64], v: f64) -> Option<usize> {
    let k = s.bins;
    match s.style {
        SplineStyle::Nflows { .. } => (v >= -s.bound && v <= s.bound)
            .then(|| (0..k).rev().find(|&i| v >= knots[i]).unwrap_or(0)),
        SplineStyle::Zuko { .. } => (knots[0] < v && !(knots[k] < v))
            .then(|| (0..k).rev().find(|&i| knots[i] < v).unwrap_or(0)),
    }
}

/// `log T'` at relative position `theta` in a bin.
fn spline_log_jacobian(delta: f64, d0: f64, d1: f64, theta: f64) -> f64 {
    let t = theta * (1.0 - theta);
    let num = delta * delta * (d1 * theta * theta + 2.0 * delta * t + d0 * (1.0 - theta).powi(2));
    let den = delta + (d0 + d1 - 2.0 * delta) * t;
    num.ln() - 2.0 * den.ln()
}

/// The spline forward: `(T(x), log T'(x))`.
fn spline_forward(s: &Spline, p: &[f64], x: f64) -> (f64, f64) {
    let (xs, ys, ds) = knots(s, p);
    let Some(i) = bin(s, &xs, x) else {
        return (x, 0.0);
    };
    let (w, h) = (xs[i + 1] - xs[i], ys[i + 1] - ys[i]);
    let delta = h / w;
    let theta = (x - xs[i]) / w;
    let t = theta * (1.0 - theta);
    let y = ys[i]
        + h * (delta * theta * theta + ds[i] * t) / (delta + (ds[i] + ds[i + 1] - 2.0 * delta) * t);
    (y, spline_log_jacobian(delta, ds[i], ds[i + 1], theta))
}

/// The spline inverse, by the quadratic's stable root (discriminant clamped at 0).
fn spline_inverse(s: &Spline, p: &[f64], y: f64) -> f64 {
    let (xs, ys, ds) = knots(s, p);
    let Some(i) = bin(s, &ys, y) else {
        return y;
    };
    let (w, h) = (xs[i + 1] - xs[i], ys[i + 1] - ys[i]);
    let delta = h / w;
    let (d0, d1) = (ds[i], ds[i + 1]);
    let dy = y - ys[i];
    let g = d0 + d1 - 2.0 * delta;
    let a = dy * g + h * (delta - d0);
    let b = h * d0 - dy * g;
    let c = -delta * dy;
    let disc = (b * b - 4.0 * a * c).max(0.0);
    let root = 2.0 * c / (-b - disc.sqrt());
    root * w + xs[i]
}

/// Every feature's spline parameters.
fn spline_params(m: &Made, s: &Spline, x: &[f64], c: Option<&[f64]>) -> R<Vec<Vec<f64>>> {
    let p = made(m, x, c)?;
    let n = s.params();
    if p.len() != n * x.len() {
        return Err(format!(
            "flow: the MADE gives {} parameters, expected {}",
            p.len(),
            n * x.len()
        ));
    }
    Ok(p.chunks(n).map(<[f64]>::to_vec).collect())
}

/// nflows' `ResidualNet` at `cat(x[identity], c)`.
fn residual_net(
    net: &ResidualNet,
    x: &[f64],
    identity: &[usize],
    c: Option<&[f64]>,
) -> R<Vec<f64>> {
    let mut input: Vec<f64> = identity.iter().map(|&i| at(x, i)).collect::<R<_>>()?;
    if let Some(c) = c {
        input.extend_from_slice(c);
    }
    let a = net.activation;
    let mut h = linear(&net.initial, &input)?;
    for b in &net.blocks {
        let mut t = h.clone();
        if let Some(n) = &b.norms {
            t = norm(&n[0], &t)?;
        }
        t = linear(&b.linear[0], &apply(a, &t))?;
        if let Some(n) = &b.norms {
            t = norm(&n[1], &t)?;
        }
        t = linear(&b.linear[1], &apply(a, &t))?;
        if let Some(cl) = &b.context {
            let g = linear(cl, context(c)?)?;
            t = t
                .iter()
                .zip(&g)
                .map(|(t, g)| t / (1.0 + (-g).exp()))
                .collect();
        }
        h = add(&h, &t)?;
    }
    linear(&net.final_layer, &h)
}

fn columns(t: &crate::ir::Tensor) -> Vec<usize> {
    t.data.iter().map(|&v| v as usize).collect()
}

/// A coupling layer, forward (`inverse == false`: `(y, log|det|)`) or inverted (`(x, −log|det|)`).
fn coupling(
    identity: &crate::ir::Tensor,
    transform: &crate::ir::Tensor,
    net: &ResidualNet,
    e: &CouplingElementwise,
    v: &[f64],
    c: Option<&[f64]>,
    inverse: bool,
) -> R<(Vec<f64>, f64)> {
    let (id, tr) = (columns(identity), columns(transform));
    let p = residual_net(net, v, &id, c)?;
    let n = tr.len();
    if p.len() != n * e.params() {
        return Err(format!(
            "flow: the coupling net gives {} parameters, expected {}",
            p.len(),
            n * e.params()
        ));
    }
    let mut out = v.to_vec();
    let mut ld = 0.0;
    for (j, &col) in tr.iter().enumerate() {
        let u = at(v, col)?;
        let slot = out
            .get_mut(col)
            .ok_or("flow: coupling column out of range")?;
        match e {
            CouplingElementwise::Affine { scale: sc } => {
                let (shift, s) = (p[j], scale(*sc, p[n + j]));
                *slot = if inverse {
                    (u - shift) / s
                } else {
                    s * u + shift
                };
                ld += s.ln();
            }
            CouplingElementwise::Spline(sp) => {
                let q = &p[j * sp.params()..(j + 1) * sp.params()];
                if inverse {
                    *slot = spline_inverse(sp, q, u);
                } else {
                    let (y, l) = spline_forward(sp, q, u);
                    *slot = y;
                    ld += l;
                }
            }
        }
    }
    Ok((out, ld))
}

/// `[D, D]` row-major as f64, after a shape check.
fn square(t: &crate::ir::Tensor, d: usize) -> R<Vec<f64>> {
    if t.shape != [d, d] {
        return Err(format!(
            "flow: tensor \"{}\" has shape {:?}, expected [{d}, {d}]",
            t.name, t.shape
        ));
    }
    Ok(f(t))
}

/// nflows' `LULinear` forward: `t = U·x`, `y = L·t + bias` (in f64).
fn lu_forward(
    lower: &crate::ir::Tensor,
    upper: &crate::ir::Tensor,
    bias: &crate::ir::Tensor,
    x: &[f64],
) -> R<(Vec<f64>, f64)> {
    let d = x.len();
    let (l, u, b) = (square(lower, d)?, square(upper, d)?, f(bias));
    let t: Vec<f64> = (0..d)
        .map(|i| (i..d).map(|j| u[i * d + j] * x[j]).sum())
        .collect();
    let y = (0..d)
        .map(|i| Ok((0..i).map(|j| l[i * d + j] * t[j]).sum::<f64>() + t[i] + at(&b, i)?))
        .collect::<R<_>>()?;
    Ok((y, (0..d).map(|i| u[i * d + i].ln()).sum()))
}

/// nflows' `LULinear` inverse: forward substitution with the unit L, then back substitution
/// with U.
fn lu_inverse(
    lower: &crate::ir::Tensor,
    upper: &crate::ir::Tensor,
    bias: &crate::ir::Tensor,
    y: &[f64],
) -> R<Vec<f64>> {
    let d = y.len();
    let (l, u, b) = (square(lower, d)?, square(upper, d)?, f(bias));
    let mut w = vec![0.0; d];
    for i in 0..d {
        w[i] = y[i] - at(&b, i)? - (0..i).map(|j| l[i * d + j] * w[j]).sum::<f64>();
    }
    let mut x = vec![0.0; d];
    for i in (0..d).rev() {
        x[i] = (w[i] - (i + 1..d).map(|j| u[i * d + j] * x[j]).sum::<f64>()) / u[i * d + i];
    }
    Ok(x)
}

/// One transform forward (data → noise): `(y, log|det|)`.
fn forward(t: &FlowTransform, x: &[f64], c: Option<&[f64]>) -> R<(Vec<f64>, f64)> {
    Ok(match t {
        FlowTransform::Permutation { permutation } => (
            permutation
                .data
                .iter()
                .map(|&p| at(x, p as usize))
                .collect::<R<_>>()?,
            0.0,
        ),
        FlowTransform::BatchNorm {
            weight,
            bias,
            mean,
            var,
            eps,
        } => {
            let (w, b, m, v) = (f(weight), f(bias), f(mean), f(var));
            let mut ld = 0.0;
            let y = (0..x.len())
                .map(|i| {
                    let sd = (at(&v, i)? + eps).sqrt();
                    ld += at(&w, i)?.ln() - sd.ln();
                    Ok(at(&w, i)? * (x[i] - at(&m, i)?) / sd + at(&b, i)?)
                })
                .collect::<R<_>>()?;
            (y, ld)
        }
        FlowTransform::LuLinear { lower, upper, bias } => lu_forward(lower, upper, bias, x)?,
        FlowTransform::AffineAutoregressive {
            made: m,
            scale: s,
            scale_param,
            shift,
        } => {
            let p = affine_params(m, *s, *scale_param, *shift, false, x, c)?;
            (
                x.iter().zip(&p).map(|(x, (s, sh))| s * x + sh).collect(),
                p.iter().map(|(s, _)| s.ln()).sum(),
            )
        }
        FlowTransform::Coupling {
            identity,
            transform,
            net,
            elementwise,
        } => coupling(identity, transform, net, elementwise, x, c, false)?,
        FlowTransform::SplineAutoregressive { made: m, spline } => {
            let p = spline_params(m, spline, x, c)?;
            let r: Vec<(f64, f64)> = x
                .iter()
                .zip(&p)
                .map(|(&x, p)| spline_forward(spline, p, x))
                .collect();
            (r.iter().map(|v| v.0).collect(), r.iter().map(|v| v.1).sum())
        }
    })
}

/// One transform inverted (noise → data); an autoregressive transform by `D` full passes.
fn inverse(t: &FlowTransform, y: &[f64], c: Option<&[f64]>) -> R<Vec<f64>> {
    Ok(match t {
        FlowTransform::Permutation { permutation } => {
            let mut x = vec![0.0; y.len()];
            for (j, &p) in permutation.data.iter().enumerate() {
                *x.get_mut(p as usize)
                    .ok_or("flow: permutation out of range")? = at(y, j)?;
            }
            x
        }
        FlowTransform::BatchNorm {
            weight,
            bias,
            mean,
            var,
            eps,
        } => {
            let (w, b, m, v) = (f(weight), f(bias), f(mean), f(var));
            (0..y.len())
                .map(|i| {
                    Ok((y[i] - at(&b, i)?) / at(&w, i)? * (at(&v, i)? + eps).sqrt() + at(&m, i)?)
                })
                .collect::<R<_>>()?
        }
        FlowTransform::LuLinear { lower, upper, bias } => lu_inverse(lower, upper, bias, y)?,
        FlowTransform::Coupling {
            identity,
            transform,
            net,
            elementwise,
        } => coupling(identity, transform, net, elementwise, y, c, true)?.0,
        FlowTransform::AffineAutoregressive {
            made: m,
            scale: s,
            scale_param,
            shift,
        } => {
            let mut x = vec![0.0; y.len()];
            for _ in 0..y.len() {
                let p = affine_params(m, *s, *scale_param, *shift, true, &x, c)?;
                x = y.iter().zip(&p).map(|(y, (s, sh))| (y - sh) / s).collect();
            }
            x
        }
        FlowTransform::SplineAutoregressive { made: m, spline } => {
            let mut x = vec![0.0; y.len()];
            for _ in 0..y.len() {
                let p = spline_params(m, spline, &x, c)?;
                x = y
                    .iter()
                    .zip(&p)
                    .map(|(&y, p)| spline_inverse(spline, p, y))
                    .collect();
            }
            x
        }
    })
}

/// The flow node's value.
pub(super) fn eval(fl: &Flow, input: &[f64], c: Option<&[f64]>) -> R<Vec<f64>> {
    match fl.mode {
        FlowMode::Sample => {
            let mut x = input.to_vec();
            for t in fl.transforms.iter().rev() {
                x = inverse(t, &x, c)?;
            }
            Ok(x)
        }
        FlowMode::LogProb => {
            let mut z = input.to_vec();
            let mut ld = 0.0;
            for t in &fl.transforms {
                let (y, l) = forward(t, &z, c)?;
                z = y;
                ld += l;
            }
            let d = z.len() as f64;
            Ok(vec![
                -0.5 * z.iter().map(|v| v * v).sum::<f64>() - 0.5 * d * std::f64::consts::TAU.ln()
                    + ld,
            ])
        }
    }
}
