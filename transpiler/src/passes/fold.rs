//! IR rewrites: dead-node removal, folding and fusion into dense layers.
//!
//! All arithmetic on weights is done in f64 and rounded to f32 once. A rewrite only fires when
//! the value it removes has exactly one consumer (counting graph inputs, residuals and model
//! outputs), so no other node sees a difference. The fused node takes the *later* node's name and
//! position, so every value it reads is still defined before it.
//!
//! * `scaler/min_max/batchnorm → dense`: `(x·m + a)·K + b = x·(diag(m)K) + (a·K + b)`;
//! * `dense → batchnorm`: `(xK + b)·m + a = x·(K diag(m)) + (b·m + a)` (linear dense, no residual);
//! * `dense → activation` (not softmax): the dense's epilogue applies it; if the dense already
//!   adds a residual, the activation now comes after it (`Residual::before_act`);
//! * `dense → add(·, r)`: the dense adds `r` after its activation (`Residual` with
//!   `before_act: false`), e.g. Keras's `x + tanh(Dense(x))`.

use std::collections::BTreeSet;

use crate::ir::{Activation, Direction, Model, Node, Op, Residual, Tensor};

/// Rewrites to a fixed point.
pub fn run(mut m: Model) -> Model {
    remove_dead(&mut m);
    while fold_affine_into_dense(&mut m)
        || fold_dense_into_batchnorm(&mut m)
        || fuse_activation(&mut m)
        || fuse_add(&mut m)
    {}
    m
}

/// How many times `value` is read (node inputs, residuals, model outputs).
pub fn consumers(m: &Model, value: &str) -> usize {
    m.nodes
        .iter()
        .flat_map(|n| n.op.inputs())
        .filter(|v| *v == value)
        .count()
        + m.outputs.iter().filter(|o| o.value == value).count()
}

/// Removes nodes whose value no output depends on.
pub fn remove_dead(m: &mut Model) {
    let mut live: BTreeSet<String> = m.outputs.iter().map(|o| o.value.clone()).collect();
    for n in m.nodes.iter().rev() {
        if live.contains(&n.name) {
            live.extend(n.op.inputs().into_iter().map(str::to_owned));
        }
    }
    m.nodes.retain(|n| live.contains(&n.name));
}

fn producer(m: &Model, value: &str) -> Option<usize> {
    m.nodes.iter().position(|n| n.name == value)
}

/// Per-column `(mul, add)` of an affine op over a row of width `w`; `None` for other ops.
pub fn affine_of(op: &Op, w: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let f = |t: &Tensor| t.data.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let (columns, mul, add): (Option<&Vec<usize>>, Vec<f64>, Vec<f64>) = match op {
        Op::StandardScaler {
            direction,
            columns,
            mean,
            scale,
            ..
        } => {
            let (mean, scale) = (f(mean), f(scale));
            match direction {
                Direction::Forward => (
                    columns.as_ref(),
                    scale.iter().map(|s| 1.0 / s).collect(),
                    mean.iter().zip(&scale).map(|(m, s)| -m / s).collect(),
                ),
                Direction::Inverse => (columns.as_ref(), scale, mean),
            }
        }
        Op::MinMax {
            direction,
            columns,
            min,
            scale,
            ..
        } => {
            let (min, scale) = (f(min), f(scale));
            match direction {
                Direction::Forward => (columns.as_ref(), scale, min),
                Direction::Inverse => (
                    columns.as_ref(),
                    scale.iter().map(|s| 1.0 / s).collect(),
                    min.iter().zip(&scale).map(|(m, s)| -m / s).collect(),
                ),
            }
        }
        Op::BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps,
            ..
        } => {
            let mul: Vec<f64> = f(gamma)
                .iter()
                .zip(f(var))
                .map(|(g, v)| g / (v + eps).sqrt())
                .collect();
            let add = f(beta)
                .iter()
                .zip(f(mean))
                .zip(&mul)
                .map(|((b, m), k)| b - m * k)
                .collect();
            (None, mul, add)
        }
        _ => return None,
    };
    let mut full_mul = vec![1.0; w];
    let mut full_add = vec![0.0; w];
    let cols: Vec<usize> = match columns {
        Some(c) => c.clone(),
        None => (0..w).collect(),
    };
    for ((c, m), a) in cols.into_iter().zip(mul).zip(add) {
        if let (Some(fm), Some(fa)) = (full_mul.get_mut(c), full_add.get_mut(c)) {
            *fm = m;
            *fa = a;
        }
    }
    Some((full_mul, full_add))
}

/// Replaces node `keep` by `node` and removes node `remove` (`remove < keep`).
fn replace(m: &mut Model, remove: usize, keep: usize, node: Node) {
    if let Some(slot) = m.nodes.get_mut(keep) {
        *slot = node;
    }
    if remove < m.nodes.len() {
        m.nodes.remove(remove);
    }
}

fn rows(kernel: &Tensor) -> (usize, usize) {
    (
        kernel.shape.first().copied().unwrap_or(0),
        kernel.shape.get(1).copied().unwrap_or(0),
    )
}

/// `scaler/min_max/batchnorm → dense`.
fn fold_affine_into_dense(m: &mut Model) -> bool {
    for j in 0..m.nodes.len() {
        let Some(Node {
            name,
            op:
                Op::Dense {
                    input,
                    kernel,
                    bias,
                    activation,
                    residual,
                },
        }) = m.nodes.get(j)
        else {
            continue;
        };
        let Some(i) = producer(m, input) else {
            continue;
        };
        if consumers(m, input) != 1 {
            continue;
        }
        let Some(prev) = m.nodes.get(i) else { continue };
        let (n_in, n_out) = rows(kernel);
        let Some((mul, add)) = affine_of(&prev.op, n_in) else {
            continue;
        };
        let Some(prev_input) = prev.op.inputs().first().map(|s| s.to_string()) else {
            continue;
        };
        let mut k = vec![0.0f32; n_in * n_out];
        let mut b: Vec<f64> = match bias {
            Some(b) => b.data.iter().map(|&x| f64::from(x)).collect(),
            None => vec![0.0; n_out],
        };
        for (r, (mr, ar)) in mul.iter().zip(&add).enumerate() {
            for c in 0..n_out {
                let w = f64::from(kernel.data.get(r * n_out + c).copied().unwrap_or(0.0));
                if let Some(slot) = k.get_mut(r * n_out + c) {
                    *slot = (w * mr) as f32;
                }
                if let Some(bc) = b.get_mut(c) {
                    *bc += ar * w;
                }
            }
        }
        let node = Node {
            name: name.clone(),
            op: Op::Dense {
                input: prev_input,
                kernel: Tensor {
                    name: format!("{}*{}", kernel.name, prev.name),
                    shape: kernel.shape.clone(),
                    data: k,
                },
                bias: Some(Tensor::vector(
                    format!(
                        "{}+{}",
                        bias.as_ref().map_or("bias", |b| b.name.as_str()),
                        prev.name
                    ),
                    b.iter().map(|&x| x as f32).collect(),
                )),
                activation: *activation,
                residual: residual.clone(),
            },
        };
        replace(m, i, j, node);
        return true;
    }
    false
}

/// `dense → batchnorm`.
fn fold_dense_into_batchnorm(m: &mut Model) -> bool {
    for j in 0..m.nodes.len() {
        let Some(Node {
            name,
            op: bn @ Op::BatchNorm { input, .. },
        }) = m.nodes.get(j)
        else {
            continue;
        };
        let Some(i) = producer(m, input) else {
            continue;
        };
        if consumers(m, input) != 1 {
            continue;
        }
        let Some(Node {
            op:
                Op::Dense {
                    input: x,
                    kernel,
                    bias,
                    activation: Activation::Linear,
                    residual: None,
                },
            ..
        }) = m.nodes.get(i)
        else {
            continue;
        };
        let (n_in, n_out) = rows(kernel);
        let Some((mul, add)) = affine_of(bn, n_out) else {
            continue;
        };
        let k: Vec<f32> = (0..n_in * n_out)
            .map(|idx| {
                (f64::from(kernel.data.get(idx).copied().unwrap_or(0.0))
                    * mul.get(idx % n_out.max(1)).copied().unwrap_or(1.0)) as f32
            })
            .collect();
        let b: Vec<f32> = (0..n_out)
            .map(|c| {
                let b0 = bias
                    .as_ref()
                    .and_then(|b| b.data.get(c))
                    .map_or(0.0, |&x| f64::from(x));
                (b0 * mul.get(c).copied().unwrap_or(1.0) + add.get(c).copied().unwrap_or(0.0))
                    as f32
            })
            .collect();
        let node = Node {
            name: name.clone(),
            op: Op::Dense {
                input: x.clone(),
                kernel: Tensor {
                    name: format!("{}*{}", kernel.name, name),
                    shape: kernel.shape.clone(),
                    data: k,
                },
                bias: Some(Tensor::vector(format!("bias+{name}"), b)),
                activation: Activation::Linear,
                residual: None,
            },
        };
        replace(m, i, j, node);
        return true;
    }
    false
}

/// `dense → activation` (not softmax).
fn fuse_activation(m: &mut Model) -> bool {
    for j in 0..m.nodes.len() {
        let Some(Node {
            name,
            op: Op::Activation { input, activation },
        }) = m.nodes.get(j)
        else {
            continue;
        };
        if *activation == Activation::Softmax || consumers(m, input) != 1 {
            continue;
        }
        let Some(i) = producer(m, input) else {
            continue;
        };
        let Some(Node {
            op:
                Op::Dense {
                    input: x,
                    kernel,
                    bias,
                    activation: Activation::Linear,
                    residual,
                },
            ..
        }) = m.nodes.get(i)
        else {
            continue;
        };
        let node = Node {
            name: name.clone(),
            op: Op::Dense {
                input: x.clone(),
                kernel: kernel.clone(),
                bias: bias.clone(),
                activation: *activation,
                residual: residual.as_ref().map(|r| Residual {
                    value: r.value.clone(),
                    before_act: true,
                }),
            },
        };
        replace(m, i, j, node);
        return true;
    }
    false
}

/// `dense → add(·, r)`.
fn fuse_add(m: &mut Model) -> bool {
    for j in 0..m.nodes.len() {
        let Some(Node {
            name,
            op: Op::Add { a, b },
        }) = m.nodes.get(j)
        else {
            continue;
        };
        let (name, a, b) = (name.clone(), a.clone(), b.clone());
        for (d, r) in [(&a, &b), (&b, &a)] {
            if consumers(m, d) != 1 {
                continue;
            }
            let Some(i) = producer(m, d) else { continue };
            let Some(Node {
                op:
                    Op::Dense {
                        input,
                        kernel,
                        bias,
                        activation,
                        residual: None,
                    },
                ..
            }) = m.nodes.get(i)
            else {
                continue;
            };
            let node = Node {
                name,
                op: Op::Dense {
                    input: input.clone(),
                    kernel: kernel.clone(),
                    bias: bias.clone(),
                    activation: *activation,
                    residual: Some(Residual {
                        value: r.clone(),
                        before_act: false,
                    }),
                },
            };
            replace(m, i, j, node);
            return true;
        }
    }
    false
}
