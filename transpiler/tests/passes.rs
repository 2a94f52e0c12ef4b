//! The passes keep the math: the IR is evaluated in f64 before and after.

mod common;

use common::*;
use serde_json::{json, Value};
use transpiler::ir::{Activation, Op};
use transpiler::{passes, reference, ValidModel};

fn load(name: &str, spec: Value, tensors: &[Raw]) -> ValidModel {
    let d = tempfile::tempdir().unwrap();
    transpiler::load(write_model(d.path(), name, spec, tensors)).unwrap()
}

/// Evaluates before and after optimisation on pseudo-random rows; returns the optimised ops.
fn check_same(m: &ValidModel, tol: f64) -> Vec<Op> {
    let opt = passes::optimise(m);
    let rows = 17;
    let x: Vec<f64> = rand_vec(rows * m.n_inputs(), 99, 2.0)
        .iter()
        .map(|&v| f64::from(v) + 0.01)
        .collect();
    let z: Vec<f64> = rand_vec(rows * m.n_noise(), 98, 1.0)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let a = reference::eval(m.model(), rows, &x, &z).unwrap();
    let b = reference::eval(opt.model(), rows, &x, &z).unwrap();
    assert_eq!(a.len(), rows * m.n_outputs());
    for (i, (u, v)) in a.iter().zip(&b).enumerate() {
        assert!(
            (u - v).abs() <= tol * (1.0 + u.abs()),
            "output {i}: {u} before, {v} after"
        );
    }
    opt.model().nodes.iter().map(|n| n.op.clone()).collect()
}

fn base(graph: Value, out: &str, width: usize) -> Value {
    json!({
        "format": "flashc/1", "name": "mdl",
        "inputs": [{"name": "x", "columns": cols("x", 4)}],
        "graph": graph,
        "outputs": [{"value": out, "columns": cols("y", width)}]
    })
}

fn dense_tensors() -> Vec<Raw> {
    vec![
        rand("k", &[4, 5], 1, 0.7),
        rand("b", &[5], 2, 0.3),
        rand("k2", &[5, 5], 3, 0.5),
        rand("b2", &[5], 4, 0.2),
    ]
}

#[test]
fn scalers_fold_into_the_next_dense() {
    for (op, a, b, dir) in [
        ("standard_scaler", "mean", "scale", "forward"),
        ("standard_scaler", "mean", "scale", "inverse"),
        ("min_max", "min", "scale", "forward"),
        ("min_max", "min", "scale", "inverse"),
    ] {
        let graph = json!([
            {"name": "s", "op": op, "input": "x", "direction": dir, "columns": [0, 3], a: "sa", b: "sb"},
            {"name": "d", "op": "dense", "input": "s", "kernel": "k", "bias": "b", "activation": {"kind": "elu", "alpha": 1.0}}
        ]);
        let mut t = dense_tensors();
        t.push(T::v("sa", &[0.5, -3.0]));
        t.push(T::v("sb", &[2.5, 0.25]));
        let m = load("m", base(graph, "d", 5), &t);
        let ops = check_same(&m, 1e-6);
        assert_eq!(ops.len(), 1, "{op} {dir} was not folded: {ops:?}");
        assert!(matches!(ops[0], Op::Dense { .. }));
    }
}

struct T;
impl T {
    fn v(name: &str, d: &[f32]) -> Raw {
        t(name, &[d.len()], d)
    }
}

fn bn_tensors(n: usize, seed: u64) -> Vec<Raw> {
    let var: Vec<f32> = rand_vec(n, seed, 0.5).iter().map(|v| v + 0.6).collect();
    vec![
        rand("g", &[n], seed + 1, 1.0),
        rand("be", &[n], seed + 2, 1.0),
        rand("mu", &[n], seed + 3, 1.0),
        t("var", &[n], &var),
    ]
}

#[test]
fn batchnorm_folds_before_and_after_dense() {
    // before: bn → dense
    let graph = json!([
        {"name": "n", "op": "batchnorm", "input": "x", "gamma": "g", "beta": "be", "mean": "mu", "var": "var", "eps": 1e-3},
        {"name": "d", "op": "dense", "input": "n", "kernel": "k", "bias": "b"}
    ]);
    let mut t = dense_tensors();
    t.extend(bn_tensors(4, 20));
    let ops = check_same(&load("m", base(graph, "d", 5), &t), 1e-6);
    assert_eq!(ops.len(), 1);
    // after: dense → bn → relu (the relu then fuses too)
    let graph = json!([
        {"name": "d", "op": "dense", "input": "x", "kernel": "k", "bias": "b"},
        {"name": "n", "op": "batchnorm", "input": "d", "gamma": "g", "beta": "be", "mean": "mu", "var": "var", "eps": 1e-5},
        {"name": "r", "op": "activation", "input": "n", "activation": {"kind": "relu"}}
    ]);
    let mut t = dense_tensors();
    t.extend(bn_tensors(5, 30));
    let ops = check_same(&load("m", base(graph, "r", 5), &t), 1e-6);
    assert_eq!(ops.len(), 1);
    assert!(matches!(
        ops[0],
        Op::Dense {
            activation: Activation::Relu,
            ..
        }
    ));
}

#[test]
fn residual_blocks_fuse_after_and_before_the_activation() {
    // Keras Lamarr block: h + tanh(Dense(h)), with the add's operands in either order.
    for inputs in [json!(["h", "t"]), json!(["t", "h"])] {
        let graph = json!([
            {"name": "h", "op": "dense", "input": "x", "kernel": "k", "bias": "b"},
            {"name": "d", "op": "dense", "input": "h", "kernel": "k2", "bias": "b2"},
            {"name": "t", "op": "activation", "input": "d", "activation": {"kind": "tanh"}},
            {"name": "r", "op": "add", "inputs": inputs}
        ]);
        let ops = check_same(&load("m", base(graph, "r", 5), &dense_tensors()), 1e-12);
        assert_eq!(ops.len(), 2);
        let Op::Dense {
            activation,
            residual: Some(r),
            input,
            ..
        } = &ops[1]
        else {
            panic!("{ops:?}")
        };
        assert_eq!(
            (activation, r.value.as_str(), r.before_act, input.as_str()),
            (&Activation::Tanh, "h", false, "h")
        );
    }
    // relu(Dense(h) + h): the add fuses, then the activation comes after it.
    let graph = json!([
        {"name": "h", "op": "dense", "input": "x", "kernel": "k", "bias": "b"},
        {"name": "d", "op": "dense", "input": "h", "kernel": "k2", "bias": "b2"},
        {"name": "s", "op": "add", "inputs": ["d", "h"]},
        {"name": "r", "op": "activation", "input": "s", "activation": {"kind": "silu"}}
    ]);
    let ops = check_same(&load("m", base(graph, "r", 5), &dense_tensors()), 1e-12);
    assert_eq!(ops.len(), 2);
    let Op::Dense {
        activation: Activation::Silu,
        residual: Some(r),
        ..
    } = &ops[1]
    else {
        panic!("{ops:?}")
    };
    assert!(r.before_act);
}

#[test]
fn nothing_folds_when_a_value_has_another_consumer_or_softmax() {
    let graph = json!([
        {"name": "s", "op": "standard_scaler", "input": "x", "direction": "forward", "mean": "sa", "scale": "sb"},
        {"name": "d", "op": "dense", "input": "s", "kernel": "k", "bias": "b"},
        {"name": "p", "op": "activation", "input": "d", "activation": {"kind": "softmax"}},
        {"name": "e", "op": "dense", "input": "s", "kernel": "k", "bias": "b"},
        {"name": "o", "op": "concat", "inputs": ["p", "e"]}
    ]);
    let mut t = dense_tensors();
    t.push(T::v("sa", &[0.5, -3.0, 1.0, 2.0]));
    t.push(T::v("sb", &[2.5, 0.25, 1.0, 3.0]));
    let ops = check_same(&load("m", base(graph, "o", 10), &t), 1e-12);
    let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
    assert_eq!(
        names,
        ["standard_scaler", "dense", "activation", "dense", "concat"]
    );
}

#[test]
fn dead_nodes_are_removed() {
    let graph = json!([
        {"name": "d", "op": "dense", "input": "x", "kernel": "k", "bias": "b"},
        {"name": "unused", "op": "activation", "input": "d", "activation": {"kind": "relu"}},
        {"name": "e", "op": "dense", "input": "d", "kernel": "k2", "bias": "b2"}
    ]);
    let ops = check_same(&load("m", base(graph, "e", 5), &dense_tensors()), 1e-12);
    assert_eq!(ops.len(), 2);
}

#[test]
fn unoptimised_ir_is_the_spec_graph_and_summary_counts() {
    let graph = json!([
        {"name": "n", "op": "layernorm", "input": "x", "eps": 1e-5},
        {"name": "d", "op": "dense", "input": "n", "kernel": "k", "bias": "b", "activation": {"kind": "gelu", "approximate": "tanh"}},
        {"name": "l", "op": "logit", "input": "d", "direction": "inverse", "columns": [1], "scale": 1.0},
        {"name": "c", "op": "decorrelate", "input": "l", "direction": "inverse", "matrix": "m", "mean": "mm"}
    ]);
    let mut t = dense_tensors();
    t.push(t_mat());
    t.push(T::v("mm", &[0.1, 0.2, 0.3, 0.4, 0.5]));
    let m = load("m", base(graph, "c", 5), &t);
    assert_eq!(m.model().nodes.len(), 4);
    let s = m.to_string();
    assert!(
        s.contains("ops:     4 (dense 1, layernorm 1, logit 1, decorrelate 1)"),
        "{s}"
    );
    assert!(
        s.contains("params:  55") && s.contains("MACs per row: 45"),
        "{s}"
    );
    check_same(&m, 1e-12);
    // Decorrelate inverse as planned ((y − sub)·M⁻¹ with sub = −mean·M) equals y·M⁻¹ + mean.
    let x = [0.3f64, -1.0, 2.0, 0.5, 0.25];
    let Op::Decorrelate { matrix, mean, .. } = &m.model().nodes[3].op else {
        panic!()
    };
    let program = passes::plan(&passes::optimise(&m));
    let Some(passes::plan::Step::MatMul {
        m: mi,
        sub: Some(si),
        ..
    }) = program
        .steps
        .iter()
        .find(|s| matches!(s, passes::plan::Step::MatMul { .. }))
    else {
        panic!()
    };
    let arr = |i: usize| {
        &program.blob[program.arrays[i].offset..program.arrays[i].offset + program.arrays[i].len]
    };
    let (inv, sub) = (arr(*mi), arr(*si));
    let got: Vec<f64> = (0..5)
        .map(|j| {
            (0..5)
                .map(|k| (x[k] - f64::from(sub[k])) * f64::from(inv[k * 5 + j]))
                .sum()
        })
        .collect();
    let mean = &mean.as_ref().unwrap().data;
    for (j, xj) in x.iter().enumerate() {
        let back: f64 = (0..5)
            .map(|k| (got[k] - f64::from(mean[k])) * f64::from(matrix.data[k * 5 + j]))
            .sum();
        assert!((back - xj).abs() < 1e-5, "{j}: {back} vs {xj}");
    }
}

fn t_mat() -> Raw {
    let mut m = rand_vec(25, 77, 0.3);
    for i in 0..5 {
        m[i * 6] += 2.0;
    }
    t("m", &[5, 5], &m)
}
