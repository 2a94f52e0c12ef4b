//! A scikinC-style C emitter, used only as a benchmark baseline.
//!
//! It reproduces how LHCb deploys its models today (see scikinC's converters): one scalar C
//! function per layer, weights as decimal literals in *function-local* (non-static) arrays, one
//! row per call, `float* name(float* out, const float* in)` (plus `const float* random` for
//! generators, as Lamarr's hand-written GAN glue does). The quantile transform is a per-feature
//! binary search with one-sided linear interpolation and, for normal output, a 4096-point Φ⁻¹
//! table, as scikinC does. It works from the *unoptimised* IR: nothing is folded or fused.
//!
//! This is deliberately not good code: it is the thing flashc is measured against. flashc's own
//! output is [`crate::codegen`].

use std::fmt::Write as _;

use crate::ir::{Activation, Direction, Op, Tensor, ValidModel};
use crate::Error;

/// Emits the C translation unit for `model`, exporting `symbol`.
///
/// Fails (naming the node) for the ops scikinC has no converter for (layer norm, decorrelation).
pub fn scikinc_c(model: &ValidModel, symbol: &str) -> Result<String, Error> {
    let m = model.model();
    let mut c = String::new();
    let _ = writeln!(
        c,
        "/* scikinC-style baseline of {} ({}): benchmark reference, not for production. */",
        m.name, m.source
    );
    c.push_str("#include <math.h>\n#include <string.h>\n#define FLOAT_T float\n\n");
    let mut body = String::new();
    let has_noise = m.noise.is_some();
    let _ = if has_noise {
        writeln!(body, "FLOAT_T* {symbol}(FLOAT_T* ret, const FLOAT_T* input, const FLOAT_T* random) {{")
    } else {
        writeln!(body, "FLOAT_T* {symbol}(FLOAT_T* ret, const FLOAT_T* input) {{")
    };
    // Values: inputs are slices of `input`, noise is `random`, nodes get stack buffers.
    let mut offset = 0;
    let mut names: Vec<(String, String)> = Vec::new();
    for inp in &m.inputs {
        names.push((inp.name.clone(), format!("(input + {offset})")));
        offset += inp.columns.len();
    }
    if let Some(n) = &m.noise {
        names.push((n.name.clone(), "random".to_owned()));
    }
    let lookup = |names: &Vec<(String, String)>, v: &str| -> String {
        names.iter().rev().find(|(n, _)| n == v).map(|(_, e)| e.clone()).unwrap_or_default()
    };
    for (idx, node) in m.nodes.iter().enumerate() {
        let width = model.width(&node.name);
        let fname = format!("{symbol}_{idx}_{}", node.op.name());
        let buf = format!("v{idx}");
        let _ = writeln!(body, "  FLOAT_T {buf}[{width}];");
        let unsupported = |what: &str| Error::Config {
            message: format!(
                "{}: node \"{}\" (op {what}): the scikinC-style baseline has no converter for this op",
                m.source, node.name
            ),
            hint: "benchmark this model without a baseline (`flashc bench --no-baseline`)".into(),
        };
        match &node.op {
            Op::Dense { input, kernel, bias, activation, residual } => {
                let n_in = model.width(input);
                let _ = writeln!(c, "static FLOAT_T* {fname}(FLOAT_T* ret, const FLOAT_T* input) {{");
                let _ = writeln!(c, "  int i, j;");
                let _ = writeln!(c, "  const FLOAT_T kernel[{width}][{n_in}] = {{");
                for o in 0..width {
                    let row: Vec<f32> = (0..n_in).map(|k| kernel.data[k * width + o]).collect();
                    let _ = writeln!(c, "    {{{}}},", literals(&row));
                }
                c.push_str("  };\n");
                let b = bias.as_ref().map_or_else(|| vec![0.0; width], |b| b.data.clone());
                let _ = writeln!(c, "  const FLOAT_T bias[{width}] = {{{}}};", literals(&b));
                let _ = writeln!(c, "  for (i = 0; i < {width}; ++i) {{");
                c.push_str("    const FLOAT_T *row = kernel[i];\n    ret[i] = bias[i];\n");
                let _ = writeln!(c, "    for (j = 0; j < {n_in}; ++j) ret[i] += input[j] * row[j];");
                if *activation == Activation::Softmax {
                    c.push_str("  }\n");
                    softmax(&mut c, width);
                } else {
                    let _ = writeln!(c, "    ret[i] = {};", activation_c(*activation, "ret[i]"));
                    c.push_str("  }\n");
                }
                c.push_str("  return ret;\n}\n\n");
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
                if let Some(r) = residual {
                    let _ = writeln!(body, "  {{ int i; for (i = 0; i < {width}; ++i) {buf}[i] += {}[i]; }}", lookup(&names, &r.value));
                }
            }
            Op::Activation { input, activation } => {
                let _ = writeln!(c, "static FLOAT_T* {fname}(FLOAT_T* ret, const FLOAT_T* input) {{\n  int i;");
                let _ = writeln!(c, "  for (i = 0; i < {width}; ++i) ret[i] = input[i];");
                if *activation == Activation::Softmax {
                    softmax(&mut c, width);
                } else {
                    let _ = writeln!(c, "  for (i = 0; i < {width}; ++i) ret[i] = {};", activation_c(*activation, "ret[i]"));
                }
                c.push_str("  return ret;\n}\n\n");
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
            }
            Op::Add { a, b } => {
                let _ = writeln!(
                    body,
                    "  {{ int i; for (i = 0; i < {width}; ++i) {buf}[i] = {}[i] + {}[i]; }}",
                    lookup(&names, a),
                    lookup(&names, b)
                );
            }
            Op::Mul { a, b } => {
                let _ = writeln!(
                    body,
                    "  {{ int i; for (i = 0; i < {width}; ++i) {buf}[i] = {}[i] * {}[i]; }}",
                    lookup(&names, a),
                    lookup(&names, b)
                );
            }
            Op::Concat { inputs } => {
                let mut at = 0;
                for v in inputs {
                    let w = model.width(v);
                    let _ = writeln!(body, "  memcpy({buf} + {at}, {}, {w} * sizeof(FLOAT_T));", lookup(&names, v));
                    at += w;
                }
            }
            Op::BatchNorm { input, gamma, beta, mean, var, eps } => {
                let _ = writeln!(c, "static FLOAT_T* {fname}(FLOAT_T* ret, const FLOAT_T* input) {{\n  int i;");
                for (n, t) in [("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)] {
                    let _ = writeln!(c, "  const FLOAT_T {n}[{width}] = {{{}}};", literals(&t.data));
                }
                let _ = writeln!(
                    c,
                    "  for (i = 0; i < {width}; ++i) ret[i] = (input[i] - mean[i]) / sqrt(var[i] + {eps:e}) * gamma[i] + beta[i];"
                );
                c.push_str("  return ret;\n}\n\n");
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
            }
            Op::StandardScaler { input, direction, columns, mean, scale } => {
                let expr = match direction {
                    Direction::Forward => "(x - p0[k]) / p1[k]",
                    Direction::Inverse => "x * p1[k] + p0[k]",
                };
                elementwise(&mut c, &fname, width, columns, &[mean, scale], expr);
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
            }
            Op::MinMax { input, direction, columns, min, scale } => {
                let expr = match direction {
                    Direction::Forward => "x * p1[k] + p0[k]",
                    Direction::Inverse => "(x - p0[k]) / p1[k]",
                };
                elementwise(&mut c, &fname, width, columns, &[min, scale], expr);
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
            }
            Op::Logit { input, direction, columns, scale } => {
                let expr = match direction {
                    Direction::Forward => format!("{scale:e} * log(x / (1 - x))"),
                    Direction::Inverse => format!("1. / (1. + exp(-x / {scale:e}))"),
                };
                elementwise(&mut c, &fname, width, columns, &[], &expr);
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
            }
            Op::Quantile { input, direction, columns, quantiles, references, normal, .. } => {
                quantile(&mut c, &fname, width, columns, quantiles, references, *normal, *direction);
                let _ = writeln!(body, "  {fname}({buf}, {});", lookup(&names, input));
            }
            Op::LayerNorm { .. } => return Err(unsupported("layernorm")),
            Op::Decorrelate { .. } => return Err(unsupported("decorrelate")),
            Op::Flow(_) => return Err(unsupported("flow")),
        }
        names.push((node.name.clone(), buf));
    }
    let mut at = 0;
    for o in &m.outputs {
        let w = o.columns.len();
        let _ = writeln!(body, "  memcpy(ret + {at}, {}, {w} * sizeof(FLOAT_T));", lookup(&names, &o.value));
        at += w;
    }
    body.push_str("  return ret;\n}\n");
    c.push_str(&body);
    Ok(c)
}

/// Comma-separated C float literals (9 significant digits: exact for f32).
fn literals(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 17);
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{x:.8e}");
    }
    s
}

/// The activation as a C expression of `x`, with libm calls as scikinC emits them.
fn activation_c(a: Activation, x: &str) -> String {
    match a {
        Activation::Linear | Activation::Softmax => x.to_owned(),
        Activation::Relu => format!("{x} > 0 ? {x} : 0"),
        Activation::LeakyRelu { alpha } => format!("{x} > 0 ? {x} : {alpha:e}f * {x}"),
        Activation::Elu { alpha } => format!("{x} > 0 ? {x} : {alpha:e}f * (expf({x}) - 1)"),
        Activation::Selu { alpha, scale } => {
            format!("{scale:e}f * ({x} > 0 ? {x} : {alpha:e}f * (expf({x}) - 1))")
        }
        Activation::Silu => format!("{x} / (1 + expf(-{x}))"),
        Activation::GeluErf => format!("0.5f * {x} * (1 + erff({x} * 0.70710678f))"),
        Activation::GeluTanh => {
            format!("0.5f * {x} * (1 + tanhf(0.7978845608f * ({x} + 0.044715f * {x} * {x} * {x})))")
        }
        Activation::Tanh => format!("tanhf({x})"),
        Activation::Sigmoid => format!("1 / (1 + expf(-{x}))"),
        Activation::Softplus { beta, threshold } => {
            format!("{x} * {beta:e}f > {threshold:e}f ? {x} : log1pf(expf({beta:e}f * {x})) / {beta:e}f")
        }
    }
}

/// In-place softmax of `ret[0..width]`, computed in double as scikinC's Softmax layer does.
fn softmax(c: &mut String, width: usize) {
    let _ = writeln!(
        c,
        "  {{ int k; double mx = ret[0], s = 0; for (k = 1; k < {width}; ++k) if (ret[k] > mx) mx = ret[k];\n    for (k = 0; k < {width}; ++k) s += exp(ret[k] - mx);\n    for (k = 0; k < {width}; ++k) ret[k] = exp(ret[k] - mx) / s; }}"
    );
}

/// The columns a transform applies to: `columns`, or all.
fn cols(width: usize, columns: &Option<Vec<usize>>) -> Vec<usize> {
    columns.clone().unwrap_or_else(|| (0..width).collect())
}

/// A per-column transform `x → expr(x, p0[k], p1[k])` on the selected columns.
fn elementwise(c: &mut String, fname: &str, width: usize, columns: &Option<Vec<usize>>, params: &[&Tensor], expr: &str) {
    let cs = cols(width, columns);
    let _ = writeln!(c, "static FLOAT_T* {fname}(FLOAT_T* ret, const FLOAT_T* input) {{\n  int k;");
    let _ = writeln!(c, "  const int cols[{}] = {{{}}};", cs.len(), join(&cs));
    for (i, p) in params.iter().enumerate() {
        let _ = writeln!(c, "  const FLOAT_T p{i}[{}] = {{{}}};", cs.len(), literals(&p.data));
    }
    let _ = writeln!(c, "  memcpy(ret, input, {width} * sizeof(FLOAT_T));");
    let _ = writeln!(c, "  for (k = 0; k < {}; ++k) {{ FLOAT_T x = input[cols[k]]; ret[cols[k]] = {expr}; }}", cs.len());
    c.push_str("  return ret;\n}\n\n");
}

fn join(v: &[usize]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// scikinC's quantile transform: binary search + one-sided interpolation, Φ⁻¹ from a table.
#[allow(clippy::too_many_arguments)]
fn quantile(
    c: &mut String,
    fname: &str,
    width: usize,
    columns: &Option<Vec<usize>>,
    quantiles: &Tensor,
    references: &Tensor,
    normal: bool,
    direction: Direction,
) {
    let cs = cols(width, columns);
    let nq = references.data.len();
    let _ = writeln!(c, "static FLOAT_T* {fname}(FLOAT_T* ret, const FLOAT_T* input) {{\n  int k;");
    let _ = writeln!(c, "  const int cols[{}] = {{{}}};", cs.len(), join(&cs));
    let _ = writeln!(c, "  const FLOAT_T refs[{nq}] = {{{}}};", literals(&references.data));
    c.push_str(&format!("  const FLOAT_T q[{}][{nq}] = {{\n", cs.len()));
    for j in 0..cs.len() {
        let col: Vec<f32> = (0..nq).map(|i| quantiles.data[i * cs.len() + j]).collect();
        let _ = writeln!(c, "    {{{}}},", literals(&col));
    }
    c.push_str("  };\n");
    const TABLE: usize = 4096;
    if normal && direction == Direction::Forward {
        let table: Vec<f32> = (0..TABLE)
            .map(|i| {
                let u = (i as f64 + 0.5) / TABLE as f64;
                crate::reference::normal_ppf(u) as f32
            })
            .collect();
        let _ = writeln!(c, "  const FLOAT_T ppf[{TABLE}] = {{{}}};", literals(&table));
    }
    let _ = writeln!(c, "  memcpy(ret, input, {width} * sizeof(FLOAT_T));");
    let _ = writeln!(c, "  for (k = 0; k < {}; ++k) {{", cs.len());
    c.push_str("    FLOAT_T x = input[cols[k]];\n    int lo = 0, hi, mid;\n    FLOAT_T y;\n");
    let _ = writeln!(c, "    hi = {};", nq - 1);
    let (xs, ys) = match direction {
        Direction::Forward => ("q[k]", "refs"),
        Direction::Inverse => ("refs", "q[k]"),
    };
    if normal && direction == Direction::Inverse {
        c.push_str("    x = 0.5 * erfc(-x * 0.70710678118654752);\n");
    }
    let _ = writeln!(
        c,
        "    if (x <= {xs}[0]) y = {ys}[0];\n    else if (x >= {xs}[hi]) y = {ys}[hi];\n    else {{\n      while (hi - lo > 1) {{ mid = (lo + hi) / 2; if ({xs}[mid] <= x) lo = mid; else hi = mid; }}\n      y = {ys}[lo] + ({ys}[hi] - {ys}[lo]) * (x - {xs}[lo]) / ({xs}[hi] - {xs}[lo]);\n    }}"
    );
    if normal && direction == Direction::Forward {
        let _ = writeln!(
            c,
            "    {{ FLOAT_T t = y * {TABLE} - 0.5f; int i0 = (int)floorf(t); FLOAT_T f = t - i0;\n      if (i0 < 0) y = ppf[0]; else if (i0 >= {last}) y = ppf[{last}]; else y = ppf[i0] + f * (ppf[i0 + 1] - ppf[i0]); }}",
            last = TABLE - 1
        );
    }
    c.push_str("    ret[cols[k]] = y;\n  }\n  return ret;\n}\n\n");
}

