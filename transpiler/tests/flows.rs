//! The `flow` op in the transpiler: errors naming file, node, path and tensor; the f64 reference
//! (sampling and log density consistent through the change of variables); a snapshot of the
//! generated Rust.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use safetensors::Dtype;
use serde_json::{json, Value};

fn ints(name: &str, data: &[i64]) -> Raw {
    Raw {
        name: name.into(),
        dtype: Dtype::I64,
        shape: vec![data.len()],
        bytes: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

const D: usize = 3;
const C: usize = 2;
const H: usize = 5;
/// nflows' hidden degrees for D = 3, H = 5: arange(H) % 2 + 1.
const DEG: [i64; H] = [1, 2, 1, 2, 1];

/// A masked `[rows, cols]` weight: entries the degrees forbid are zero.
fn masked(
    name: &str,
    rows: usize,
    cols: usize,
    seed: u64,
    ok: impl Fn(usize, usize) -> bool,
) -> Raw {
    let mut w = rand_vec(rows * cols, seed, 0.6);
    for r in 0..rows {
        for c in 0..cols {
            if !ok(r, c) {
                w[r * cols + c] = 0.0;
            }
        }
    }
    t(name, &[rows, cols], &w)
}

fn layer(p: &str) -> Value {
    json!({"weight": format!("{p}/weight"), "bias": format!("{p}/bias"), "degrees": format!("{p}/degrees")})
}

fn norm(p: &str) -> Value {
    json!({"gamma": format!("{p}/gamma"), "beta": format!("{p}/beta"), "mean": format!("{p}/mean"), "var": format!("{p}/var"), "eps": 1e-3})
}

fn norm_tensors(p: &str, n: usize, seed: u64) -> Vec<Raw> {
    let pos: Vec<f32> = rand_vec(n, seed, 0.3).iter().map(|x| 1.0 + x).collect();
    vec![
        t(&format!("{p}/gamma"), &[n], &pos),
        rand(&format!("{p}/beta"), &[n], seed + 1, 0.2),
        rand(&format!("{p}/mean"), &[n], seed + 2, 0.2),
        t(&format!("{p}/var"), &[n], &pos),
    ]
}

/// A conditional flow (D 3, C 2): a residual-MADE affine MAF with batch norm and context, a
/// permutation, a flow batch norm, and a feed-forward-MADE affine MAF. `mode`: "sample" or
/// "log_prob".
fn flow(
    dir: &Path,
    name: &str,
    mode: &str,
    edit: impl FnOnce(&mut Value, &mut Vec<Raw>),
) -> PathBuf {
    let hidden = |r: usize, c: usize| DEG[r] >= DEG[c];
    let first = |r: usize, c: usize| DEG[r] > c as i64;
    let out = |r: usize, c: usize| (r / 2 + 1) as i64 > DEG[c];
    let mut w = vec![
        masked("m0/initial/weight", H, D, 1, first),
        rand("m0/initial/bias", &[H], 2, 0.1),
        ints("m0/initial/degrees", &DEG),
        rand("m0/context/weight", &[H, C], 3, 0.5),
        rand("m0/context/bias", &[H], 4, 0.1),
        masked("m0/b0/l0/weight", H, H, 5, hidden),
        rand("m0/b0/l0/bias", &[H], 6, 0.1),
        ints("m0/b0/l0/degrees", &DEG),
        masked("m0/b0/l1/weight", H, H, 7, hidden),
        rand("m0/b0/l1/bias", &[H], 8, 0.1),
        ints("m0/b0/l1/degrees", &DEG),
        rand("m0/b0/context/weight", &[H, C], 9, 0.5),
        masked("m0/final/weight", 2 * D, H, 10, out),
        rand("m0/final/bias", &[2 * D], 11, 0.2),
        ints("perm", &[2, 0, 1]),
        t("bn/weight", &[D], &[1.2, 0.8, 1.1]),
        rand("bn/bias", &[D], 12, 0.2),
        rand("bn/mean", &[D], 13, 0.3),
        t("bn/var", &[D], &[0.9, 1.3, 0.7]),
        masked("m1/initial/weight", H, D, 14, first),
        rand("m1/initial/bias", &[H], 15, 0.1),
        ints("m1/initial/degrees", &DEG),
        rand("m1/context/weight", &[H, C], 16, 0.5),
        masked("m1/b0/l/weight", H, H, 17, hidden),
        rand("m1/b0/l/bias", &[H], 18, 0.1),
        ints("m1/b0/l/degrees", &DEG),
        masked("m1/final/weight", 2 * D, H, 19, out),
        rand("m1/final/bias", &[2 * D], 20, 0.2),
    ];
    for (p, s) in [("m0/b0/bn0", 30), ("m0/b0/bn1", 40), ("m1/b0/bn", 50)] {
        w.extend(norm_tensors(p, H, s));
    }
    let transforms = json!([
        {"kind": "affine_autoregressive", "params": ["scale", "shift"], "scale": {"kind": "softplus", "threshold": 20, "eps": 1e-3},
         "made": {"kind": "residual", "activation": {"kind": "relu"},
                  "initial": layer("m0/initial"),
                  "context": {"weight": "m0/context/weight", "bias": "m0/context/bias", "activation": {"kind": "relu"}},
                  "blocks": [{"batchnorm": [norm("m0/b0/bn0"), norm("m0/b0/bn1")], "linear": [layer("m0/b0/l0"), layer("m0/b0/l1")],
                              "context": {"weight": "m0/b0/context/weight"}}],
                  "final": {"weight": "m0/final/weight", "bias": "m0/final/bias"}}},
        {"kind": "permutation", "permutation": "perm"},
        {"kind": "batchnorm", "weight": "bn/weight", "bias": "bn/bias", "mean": "bn/mean", "var": "bn/var", "eps": 1e-5},
        {"kind": "affine_autoregressive", "params": ["shift", "scale"], "scale": {"kind": "soft_clip_exp", "bound": 6.907755278982137},
         "made": {"kind": "feedforward", "activation": {"kind": "tanh"},
                  "initial": layer("m1/initial"),
                  "context": {"weight": "m1/context/weight", "activation": {"kind": "linear"}},
                  "blocks": [{"batchnorm": norm("m1/b0/bn"), "linear": layer("m1/b0/l")}],
                  "final": {"weight": "m1/final/weight", "bias": "m1/final/bias"}}}
    ]);
    let mut spec = if mode == "sample" {
        json!({
            "format": "flashc/1", "name": name,
            "inputs": [{"name": "c", "columns": cols("c", C)}],
            "noise": {"name": "z", "dim": D, "distribution": "normal"},
            "graph": [{"name": "x", "op": "flow", "input": "z", "context": "c", "mode": "sample", "base": "standard_normal", "transforms": transforms}],
            "outputs": [{"value": "x", "columns": cols("x", D)}]
        })
    } else {
        json!({
            "format": "flashc/1", "name": name,
            "inputs": [{"name": "x", "columns": cols("x", D)}, {"name": "c", "columns": cols("c", C)}],
            "graph": [{"name": "lp", "op": "flow", "input": "x", "context": "c", "mode": "log_prob", "base": "standard_normal", "transforms": transforms}],
            "outputs": [{"value": "lp", "columns": ["log_prob"]}]
        })
    };
    edit(&mut spec, &mut w);
    write_model(dir, name, spec, &w)
}

fn transforms(spec: &mut Value) -> &mut Value {
    &mut spec["graph"][0]["transforms"]
}

/// log p(x) from the sampling map: x = S(z) ⇒ log p(x) = log N(z) − log|det ∂S/∂z| (the
/// Jacobian by central differences with step `h`, in f64); `density`'s value at each point
/// `(z, context)` must agree within `tol`.
fn assert_change_of_variables(
    sample: &transpiler::ValidModel,
    density: &transpiler::ValidModel,
    points: &[([f64; D], [f64; C])],
    h: f64,
    tol: f64,
) {
    let eval = transpiler::reference::eval_row;
    for (k, &(z, c)) in points.iter().enumerate() {
        let x = eval(sample.model(), &c, &z).unwrap();
        let mut jac = [[0.0f64; D]; D];
        for j in 0..D {
            let (mut zp, mut zm) = (z, z);
            zp[j] += h;
            zm[j] -= h;
            let (xp, xm) = (
                eval(sample.model(), &c, &zp).unwrap(),
                eval(sample.model(), &c, &zm).unwrap(),
            );
            for i in 0..D {
                jac[i][j] = (xp[i] - xm[i]) / (2.0 * h);
            }
        }
        let det = jac[0][0] * (jac[1][1] * jac[2][2] - jac[1][2] * jac[2][1])
            - jac[0][1] * (jac[1][0] * jac[2][2] - jac[1][2] * jac[2][0])
            + jac[0][2] * (jac[1][0] * jac[2][1] - jac[1][1] * jac[2][0]);
        let log_n: f64 =
            z.iter().map(|v| -0.5 * v * v).sum::<f64>() - 1.5 * std::f64::consts::TAU.ln();
        let want = log_n - det.abs().ln();
        let input: Vec<f64> = x.iter().copied().chain(c).collect();
        let got = eval(density.model(), &input, &[]).unwrap()[0];
        assert!(
            (got - want).abs() < tol,
            "point {k}: log_prob {got} vs change of variables {want}"
        );
    }
}

/// The demo flow through the change of variables.
#[test]
fn reference_sampling_and_log_density_agree_through_the_change_of_variables() {
    let d = tempfile::tempdir().unwrap();
    let sample = transpiler::load(flow(d.path(), "fs", "sample", |_, _| {})).unwrap();
    let density = transpiler::load(flow(d.path(), "fl", "log_prob", |_, _| {})).unwrap();
    assert_change_of_variables(
        &sample,
        &density,
        &[
            ([0.3, -1.2, 0.7], [0.5, -0.2]),
            ([-1.5, 0.1, 2.0], [-1.0, 1.3]),
            ([0.0, 0.0, 0.0], [0.0, 0.0]),
        ],
        1e-5,
        1e-6,
    );
}

#[test]
fn snapshot_of_generated_flow() {
    let d = tempfile::tempdir().unwrap();
    let spec = flow(d.path(), "flow_demo", "sample", |_, _| {});
    let mut m = transpiler::load(&spec).unwrap().model().clone();
    m.source = "models/flow_demo.json".into();
    let model = transpiler::ir::validate(m).unwrap();
    let (code, _) = transpiler::generate(&model, &quote::quote!(::runtime));
    insta::assert_snapshot!("flow_demo", code);
    let (again, _) = transpiler::generate(&model, &quote::quote!(::runtime));
    assert_eq!(code, again, "generated code is deterministic");
    // The log-density model compiles to valid Rust too.
    let lp = transpiler::load(flow(d.path(), "flow_lp", "log_prob", |_, _| {})).unwrap();
    syn::parse_file(&transpiler::generate(&lp, &quote::quote!(::runtime)).0).unwrap();
}

#[test]
fn unmasked_weights_are_named_with_the_degrees_they_break() {
    let d = tempfile::tempdir().unwrap();
    let p = flow(d.path(), "bad", "sample", |_, w| {
        // Feature 3 (degree 3) may not feed any hidden unit (degrees 1, 2).
        let i = w
            .iter()
            .position(|r| r.name == "m0/initial/weight")
            .unwrap();
        w[i] = rand("m0/initial/weight", &[H, D], 1, 0.6);
    });
    assert_has(
        &load_err(&p),
        &[
            "node \"x\" (op flow)",
            "tensor \"m0/initial/weight\"",
            "transforms[0].made.initial",
            "degree",
            "not consistent with the autoregressive degrees",
            "hint: export the masked weights",
        ],
    );
    let p = flow(d.path(), "bad2", "sample", |_, w| {
        // An output of feature 1 reading a hidden unit: outputs read strictly lower degrees.
        let i = w.iter().position(|r| r.name == "m1/final/weight").unwrap();
        w[i] = rand("m1/final/weight", &[2 * D, H], 3, 0.6);
    });
    assert_has(
        &load_err(&p),
        &[
            "tensor \"m1/final/weight\"",
            "transforms[3].made.final",
            "an output may only read units of lower degree",
        ],
    );
}

#[test]
fn every_problem_of_a_flow_is_reported_at_once() {
    let d = tempfile::tempdir().unwrap();
    let p = flow(d.path(), "many", "sample", |s, w| {
        let ts = transforms(s);
        ts[1]["permutation"] = json!("perm");
        ts[2]["eps"] = json!(-1);
        ts[3]["params"] = json!(["a", "b"]);
        ts[0]["made"]["blocks"][0]["linear"][1]["degrees"] = json!("m0/b0/l1/degrees");
        ts.as_array_mut()
            .unwrap()
            .push(json!({"kind": "svd_linear"}));
        let i = w.iter().position(|r| r.name == "perm").unwrap();
        w[i] = ints("perm", &[0, 0, 1]);
    });
    let e = load_err(&p);
    assert_has(
        &e,
        &[
            "transforms[4]: unknown transform kind \"svd_linear\"",
            "supported kinds: \"permutation\", \"batchnorm\", \"affine_autoregressive\"",
            "transforms[3]: field \"params\" must be [\"scale\", \"shift\"] or [\"shift\", \"scale\"]",
        ],
    );
    // Lowering problems stop the node before validation; the rest are validation problems.
    let p = flow(d.path(), "many2", "sample", |s, w| {
        let ts = transforms(s);
        ts[2]["eps"] = json!(-1);
        let i = w.iter().position(|r| r.name == "perm").unwrap();
        w[i] = ints("perm", &[0, 0, 1]);
        let i = w.iter().position(|r| r.name == "m0/b0/l1/degrees").unwrap();
        w[i] = ints("m0/b0/l1/degrees", &[2, 2, 1, 2, 1]);
    });
    let e = load_err(&p);
    assert_has(
        &e,
        &[
            "3 problem(s) found",
            "tensor \"perm\": transforms[1]: is not a permutation of 0..3",
            "transforms[2]: eps = -1 is invalid",
            "transforms[0].made.blocks[0].linear[1]",
            "a residual block adds its output to its input unit by unit",
        ],
    );
}

#[test]
fn missing_fields_and_wrong_tensors_name_their_path() {
    let d = tempfile::tempdir().unwrap();
    let p = flow(d.path(), "miss", "sample", |s, w| {
        let ts = transforms(s);
        ts[0]["made"].as_object_mut().unwrap().remove("final");
        ts[3]["made"]["initial"]["degrees"] = json!("m1/initial/bias");
        ts[0]["made"]["bogus"] = json!(1);
        w.push(t("float_degrees", &[5], &[1.5, 2.0, 1.0, 2.0, 1.0]));
    });
    assert_has(
        &load_err(&p),
        &[
            "transforms[0].made: missing field \"final\"",
            "transforms[0].made: unknown field(s) \"bogus\"",
            "tensor \"m1/initial/bias\"",
            "field \"transforms[3].made.initial.degrees\" needs integers",
        ],
    );
    // A conditional MADE in a flow without context; a mode that does not exist.
    let p = flow(d.path(), "noctx", "sample", |s, _| {
        s["graph"][0].as_object_mut().unwrap().remove("context");
        s["graph"][0]["mode"] = json!("sample");
    });
    assert_has(
        &load_err(&p),
        &[
            "transforms[0].made.context",
            "the flow has no \"context\"",
            "hint: give the flow node a \"context\" value",
        ],
    );
    let p = flow(d.path(), "mode", "sample", |s, _| {
        s["graph"][0]["mode"] = json!("forward")
    });
    assert_has(
        &load_err(&p),
        &["field \"mode\" is \"forward\"", "\"log_prob\""],
    );
    // A batch-norm transform whose weight is not positive.
    let p = flow(d.path(), "bnw", "sample", |_, w| {
        let i = w.iter().position(|r| r.name == "bn/weight").unwrap();
        w[i] = t("bn/weight", &[D], &[1.0, 0.0, 1.0]);
    });
    assert_has(
        &load_err(&p),
        &["tensor \"bn/weight\": transforms[2]: is not positive at index 1"],
    );
}

#[test]
fn flows_have_no_ptx() {
    let d = tempfile::tempdir().unwrap();
    let m = transpiler::load(flow(d.path(), "fp", "sample", |_, _| {})).unwrap();
    let e = transpiler::codegen::ptx::generate(&m)
        .unwrap_err()
        .to_string();
    assert_has(
        &e,
        &[
            "node \"x\" (op flow)",
            "the PTX backend does not support op flow",
            "hint:",
        ],
    );
    assert_eq!(
        transpiler::codegen::ptx::unsupported_nodes(&m),
        [("x", "flow")]
    );
}

/// `L` (unit lower-triangular) and `U` (upper-triangular, positive diagonal) of an LU-linear
/// transform, row-major `[D, D]`.
fn lu_factors() -> (Vec<f32>, Vec<f32>) {
    let r = rand_vec(2 * D * D, 60, 0.5);
    let (mut l, mut u) = (vec![0.0f32; D * D], vec![0.0f32; D * D]);
    for i in 0..D {
        for j in 0..D {
            if j < i {
                l[i * D + j] = r[i * D + j];
            } else if j == i {
                l[i * D + j] = 1.0;
                u[i * D + j] = 0.8 + 0.3 * i as f32;
            } else {
                u[i * D + j] = r[D * D + i * D + j];
            }
        }
    }
    (l, u)
}

/// The demo flow with an LU-linear transform appended and FlashSim's affine variants: a sigmoid
/// scale with a shift offset and a two-way shift clamp, an atan scale, a clamped softplus.
fn lu_and_variants(s: &mut Value, w: &mut Vec<Raw>) {
    let (l, u) = lu_factors();
    w.push(t("lu/lower", &[D, D], &l));
    w.push(t("lu/upper", &[D, D], &u));
    w.push(rand("lu/bias", &[D], 61, 0.3));
    let ts = transforms(s);
    ts[0]["scale"] = json!({"kind": "sigmoid", "factor": 3.0, "offset": 1.0, "eps": 0.05});
    ts[0]["shift_offset"] = json!(0.25);
    ts[0]["shift_clamp"] = json!({"min": -0.4, "max": 0.4, "inverse": true});
    ts[3]["scale"] = json!({"kind": "atan", "factor": 0.5, "min": 0.2, "max": 0.9});
    ts[3]["shift_offset"] = json!(-1.0);
    let mut sp = ts[0].clone();
    sp["scale"] =
        json!({"kind": "softplus", "threshold": 20.0, "eps": 0.05, "min": 0.0, "max": 1.0});
    sp.as_object_mut().unwrap().remove("shift_clamp");
    let ts = ts.as_array_mut().unwrap();
    ts.insert(
        1,
        json!({"kind": "lu_linear", "lower": "lu/lower", "upper": "lu/upper", "bias": "lu/bias"}),
    );
    ts.push(sp);
}

/// The LU-linear transform and the affine variants in the f64 reference: log p from the sampling
/// map by the change of variables, as above; both models compile to valid Rust calling the
/// runtime's kernels.
#[test]
fn lu_linear_and_affine_variants_in_reference_and_codegen() {
    let d = tempfile::tempdir().unwrap();
    let sample = transpiler::load(flow(d.path(), "vs", "sample", lu_and_variants)).unwrap();
    let density = transpiler::load(flow(d.path(), "vl", "log_prob", lu_and_variants)).unwrap();
    assert_change_of_variables(
        &sample,
        &density,
        &[
            ([0.3, -1.2, 0.7], [0.5, -0.2]),
            ([-1.5, 0.1, 2.0], [-1.0, 1.3]),
            ([0.9, 0.4, -0.3], [0.2, 0.0]),
        ],
        1e-6,
        1e-5,
    );
    for m in [&sample, &density] {
        let code = transpiler::generate(m, &quote::quote!(::runtime)).0;
        syn::parse_file(&code).unwrap();
        for needle in [
            "lu_linear",
            "Scale::Sigmoid",
            "Scale::Atan",
            "clamp_inverse: true",
        ] {
            assert!(code.contains(needle), "generated code lacks {needle:?}");
        }
    }
}

/// Every problem of an LU-linear transform is named by node, path and tensor.
#[test]
fn bad_lu_factors_are_named() {
    let d = tempfile::tempdir().unwrap();
    let with = |name: &str, l: Vec<f32>, u: Vec<f32>| {
        flow(d.path(), name, "sample", move |s, w| {
            lu_and_variants(s, w);
            let n = w.len();
            w[n - 3] = t("lu/lower", &[D, D], &l);
            w[n - 2] = t("lu/upper", &[D, D], &u);
        })
    };
    let (l, u) = lu_factors();
    let mut u0 = u.clone();
    u0[D + 1] = 0.0;
    assert_has(
        &load_err(&with("zero", l.clone(), u0)),
        &[
            "node \"x\" (op flow)",
            "tensor \"lu/upper\": transforms[1].upper: non-invertible LU: diagonal entry 1 = 0",
            "hint: nflows' diagonal is softplus(unconstrained_upper_diag) + eps",
        ],
    );
    let mut un = u.clone();
    un[0] = -0.5;
    un[2 * D + 2] = f32::NAN;
    assert_has(
        &load_err(&with("neg", l.clone(), un)),
        &[
            "non-invertible LU: diagonal entry 0 = -0.5 (2 diagonal entries are not finite and > 0)",
            "value NaN at index [2, 2]",
        ],
    );
    let mut lb = l.clone();
    lb[1] = 0.3;
    lb[2 * D + 2] = 2.0;
    let mut ub = u.clone();
    ub[D] = 0.1;
    assert_has(
        &load_err(&with("tri", lb, ub)),
        &[
            "tensor \"lu/lower\": transforms[1].lower: [0, 1] = 0.3: L is not unit lower-triangular: an entry above the diagonal is not 0 (2 such entries)",
            "tensor \"lu/upper\": transforms[1].upper: [1, 0] = 0.1: U is not upper-triangular",
            "2 problem(s) found",
        ],
    );
    let mut ld = l.clone();
    ld[0] = 0.5;
    assert_has(
        &load_err(&with("diag", ld, u.clone())),
        &["[0, 0] = 0.5: L is not unit lower-triangular: a diagonal entry is not 1"],
    );
    let p = flow(d.path(), "shape", "sample", |s, w| {
        lu_and_variants(s, w);
        let n = w.len();
        w[n - 2] = rand("lu/upper", &[D, D + 1], 3, 0.5);
        w[n - 1] = rand("lu/bias", &[D + 1], 4, 0.5);
    });
    assert_has(
        &load_err(&p),
        &[
            "tensor \"lu/upper\": transforms[1].upper: has shape [3, 4], expected [3, 3]",
            "tensor \"lu/bias\": transforms[1].bias: has shape [4], expected [3]",
        ],
    );
    let p = flow(d.path(), "missing", "sample", |s, w| {
        lu_and_variants(s, w);
        transforms(s)[1].as_object_mut().unwrap().remove("upper");
    });
    assert_has(
        &load_err(&p),
        &["transforms[1]: missing field \"upper\" (tensor [D, D], the upper-triangular U"],
    );
}

/// Scale and shift constants that could make the scale non-positive are refused.
#[test]
fn bad_affine_variant_constants_are_named() {
    let d = tempfile::tempdir().unwrap();
    let p = flow(d.path(), "consts", "sample", |s, w| {
        lu_and_variants(s, w);
        let ts = transforms(s);
        ts[0]["scale"]["eps"] = json!(0.0);
        ts[4]["scale"]["min"] = json!(0.0);
        ts[5]["scale"]["max"] = json!(-1.0);
        ts[0]["shift_clamp"]["min"] = json!(1.0);
    });
    assert_has(
        &load_err(&p),
        &[
            "transforms[0].scale: factor = 3, offset = 1, eps = 0 are invalid",
            "transforms[4].scale: factor = 0.5, min = 0, max = Some(0.9) are invalid",
            "transforms[5].scale: threshold = 20, eps = 0.05, min = Some(0.0), max = Some(-1.0) are invalid",
            "transforms[0].shift_clamp: min = 1, max = 0.4 are invalid",
        ],
    );
    let p = flow(d.path(), "kinds", "sample", |s, w| {
        lu_and_variants(s, w);
        let ts = transforms(s);
        ts[0]["scale"] = json!({"kind": "tanh"});
        ts[4]["shift_clamp"] = json!({"min": -1, "max": 1, "inverse": "yes"});
    });
    assert_has(
        &load_err(&p),
        &[
            "transforms[0].scale: unknown scale kind \"tanh\"",
            "\"sigmoid\" (s = factor·σ(u + offset) + eps)",
            "transforms[4].shift_clamp: field \"inverse\" must be true or false",
        ],
    );
}

/// Turns both autoregressive transforms of [`flow`] into rational-quadratic splines (nflows
/// style with 4 bins on [−1.5, 1.5], zuko style with 3 bins on [−2, 2]).
fn splines(s: &mut Value, w: &mut Vec<Raw>) {
    let out = |m: usize| move |r: usize, c: usize| (r / m + 1) as i64 > DEG[c];
    let ts = transforms(s);
    for (i, spline) in [
        (
            0,
            json!({"style": "nflows", "bins": 4, "bound": 1.5, "min_bin_width": 1e-3, "min_bin_height": 1e-3, "min_derivative": 1e-3}),
        ),
        (
            3,
            json!({"style": "zuko", "bins": 3, "bound": 2.0, "slope": 1e-3}),
        ),
    ] {
        let t = ts[i].as_object_mut().unwrap();
        t.remove("params");
        t.remove("scale");
        t.insert("kind".into(), json!("rqs_autoregressive"));
        let k = spline["bins"].as_u64().unwrap() as usize;
        t.insert("spline".into(), spline);
        let p = 3 * k - 1;
        let name = if i == 0 { "m0" } else { "m1" };
        let (wn, bn) = (format!("{name}/final/weight"), format!("{name}/final/bias"));
        w.retain(|r| r.name != wn && r.name != bn);
        w.push(masked(&wn, p * D, H, 60 + i as u64, out(p)));
        w.push(rand(&bn, &[p * D], 61 + i as u64, 0.5));
    }
}

#[test]
fn spline_flows_in_reference_and_codegen() {
    let d = tempfile::tempdir().unwrap();
    let sample = transpiler::load(flow(d.path(), "ss", "sample", splines)).unwrap();
    let density = transpiler::load(flow(d.path(), "sl", "log_prob", splines)).unwrap();
    // Points inside and outside the splines' intervals.
    assert_change_of_variables(
        &sample,
        &density,
        &[
            ([0.3, -1.2, 0.7], [0.5, -0.2]),
            ([-1.9, 0.1, 2.6], [-1.0, 1.3]),
            ([0.9, 0.4, -0.3], [0.2, 0.0]),
        ],
        1e-6,
        1e-5,
    );
    for m in [&sample, &density] {
        let code = transpiler::generate(m, &quote::quote!(::runtime)).0;
        syn::parse_file(&code).unwrap();
        for needle in ["SplineStyle::Nflows", "SplineStyle::Zuko", "bins: 4"] {
            assert!(code.contains(needle), "generated code lacks {needle:?}");
        }
    }
}

/// Spline problems: bin counts that do not match the MADE's output layer, bad constants.
#[test]
fn bad_splines_are_named() {
    let d = tempfile::tempdir().unwrap();
    let p = flow(d.path(), "bins", "sample", |s, w| {
        splines(s, w);
        transforms(s)[0]["spline"]["bins"] = json!(5);
    });
    assert_has(
        &load_err(&p),
        &[
            "tensor \"m0/final/weight\": transforms[0].made.final",
            "has shape [33, 5], expected [42, 5] (14 parameters per feature)",
            "a spline with K bins 3K − 1",
        ],
    );
    let p = flow(d.path(), "consts", "sample", |s, w| {
        splines(s, w);
        let ts = transforms(s);
        ts[0]["spline"]["min_bin_width"] = json!(0.3);
        ts[0]["spline"]["bound"] = json!(-1.0);
        ts[3]["spline"]["slope"] = json!(1.5);
    });
    assert_has(
        &load_err(&p),
        &[
            "transforms[0].spline: bound = -1 is invalid",
            "transforms[0].spline: min_bin_width = 0.3 with 4 bins is invalid",
            "transforms[3].spline: slope = 1.5 is invalid",
        ],
    );
    let p = flow(d.path(), "style", "sample", |s, w| {
        splines(s, w);
        let ts = transforms(s);
        ts[0]["spline"]["style"] = json!("circular");
        ts[3]["spline"]["bins"] = json!(2.5);
    });
    assert_has(
        &load_err(&p),
        &[
            "transforms[0].spline: unknown spline style \"circular\"",
            "transforms[3].spline: bins = 2.5 is not an integer from 1 to 512",
        ],
    );
}

/// Tensors and JSON of a ResidualNet (hidden 4) under prefix `p`, reading `n_in` identity columns
/// and the context, with `n_out` outputs; `bn`: batch norms in its first block; the first block
/// is gated by the context, the second is not.
fn residual_net(p: &str, n_in: usize, n_out: usize, bn: bool, seed: u64) -> (Value, Vec<Raw>) {
    const HN: usize = 4;
    let mut w = vec![
        rand(&format!("{p}/initial/weight"), &[HN, n_in + C], seed, 0.6),
        rand(&format!("{p}/initial/bias"), &[HN], seed + 1, 0.1),
        rand(&format!("{p}/final/weight"), &[n_out, HN], seed + 2, 0.5),
        rand(&format!("{p}/final/bias"), &[n_out], seed + 3, 0.2),
        rand(&format!("{p}/b0/context/weight"), &[HN, C], seed + 4, 0.6),
        rand(&format!("{p}/b0/context/bias"), &[HN], seed + 5, 0.2),
    ];
    let lin = |q: &str, s: u64, w: &mut Vec<Raw>| {
        w.push(rand(&format!("{p}/{q}/weight"), &[HN, HN], s, 0.5));
        w.push(rand(&format!("{p}/{q}/bias"), &[HN], s + 1, 0.1));
        json!({"weight": format!("{p}/{q}/weight"), "bias": format!("{p}/{q}/bias")})
    };
    let (l00, l01) = (
        lin("b0/l0", seed + 10, &mut w),
        lin("b0/l1", seed + 12, &mut w),
    );
    let (l10, l11) = (
        lin("b1/l0", seed + 14, &mut w),
        lin("b1/l1", seed + 16, &mut w),
    );
    let mut b0 = json!({"linear": [l00, l01],
                        "context": {"weight": format!("{p}/b0/context/weight"), "bias": format!("{p}/b0/context/bias")}});
    if bn {
        w.extend(norm_tensors(&format!("{p}/b0/bn0"), HN, seed + 20));
        w.extend(norm_tensors(&format!("{p}/b0/bn1"), HN, seed + 30));
        b0["batchnorm"] = json!([norm(&format!("{p}/b0/bn0")), norm(&format!("{p}/b0/bn1"))]);
    }
    let net = json!({"activation": {"kind": "tanh"},
                     "initial": {"weight": format!("{p}/initial/weight"), "bias": format!("{p}/initial/bias")},
                     "blocks": [b0, {"linear": [l10, l11]}],
                     "final": {"weight": format!("{p}/final/weight"), "bias": format!("{p}/final/bias")}});
    (net, w)
}

/// The demo flow with an affine coupling layer (identity column 1, columns 0 and 2 transformed,
/// nflows' sigmoid scale) and a spline coupling layer (identity 0 and 2, column 1 through a
/// 3-bin spline with nflows' logit divisor) appended.
fn couplings(s: &mut Value, w: &mut Vec<Raw>) {
    let (a, wa) = residual_net("ca", 1, 2 * 2, true, 70);
    let (r, wr) = residual_net("cr", 2, 8, false, 80);
    w.extend(wa);
    w.extend(wr);
    w.push(ints("ca/identity", &[1]));
    w.push(ints("ca/transform", &[0, 2]));
    w.push(ints("cr/identity", &[0, 2]));
    w.push(ints("cr/transform", &[1]));
    let ts = transforms(s).as_array_mut().unwrap();
    ts.push(json!({"kind": "affine_coupling", "identity": "ca/identity", "transform": "ca/transform",
                   "scale": {"kind": "sigmoid", "factor": 1.0, "offset": 2.0, "eps": 1e-3}, "net": a}));
    ts.push(json!({"kind": "rqs_coupling", "identity": "cr/identity", "transform": "cr/transform",
                   "spline": {"style": "nflows", "bins": 3, "bound": 2.0, "divisor": 2.0, "min_bin_width": 1e-3,
                              "min_bin_height": 1e-3, "min_derivative": 1e-3},
                   "net": r}));
}

/// Coupling layers in the f64 reference (log p from the sampling map by the change of
/// variables); both models compile to valid Rust calling the coupling kernel.
#[test]
fn coupling_layers_in_reference_and_codegen() {
    let d = tempfile::tempdir().unwrap();
    let sample = transpiler::load(flow(d.path(), "cs", "sample", couplings)).unwrap();
    let density = transpiler::load(flow(d.path(), "cl", "log_prob", couplings)).unwrap();
    assert_change_of_variables(
        &sample,
        &density,
        &[
            ([0.3, -1.2, 0.7], [0.5, -0.2]),
            ([-1.5, 0.1, 2.5], [-1.0, 1.3]),
            ([0.9, 0.4, -0.3], [0.2, 0.0]),
        ],
        1e-6,
        1e-5,
    );
    for m in [&sample, &density] {
        let code = transpiler::generate(m, &quote::quote!(::runtime)).0;
        syn::parse_file(&code).unwrap();
        for needle in ["flow::coupling", "NetBlock", "Scale::Sigmoid", "divisor: 2"] {
            assert!(code.contains(needle), "generated code lacks {needle:?}");
        }
    }
}

/// Columns that are not a partition, parameter counts that do not match the bins, and net shapes
/// are named by node, path and tensor.
#[test]
fn bad_coupling_layers_are_named() {
    let d = tempfile::tempdir().unwrap();
    let p = flow(d.path(), "overlap", "sample", |s, w| {
        couplings(s, w);
        let i = w.iter().position(|r| r.name == "ca/transform").unwrap();
        w[i] = ints("ca/transform", &[1, 2]);
        let i = w.iter().position(|r| r.name == "cr/transform").unwrap();
        w[i] = ints("cr/transform", &[3]);
    });
    assert_has(
        &load_err(&p),
        &[
            "node \"x\" (op flow)",
            "tensor \"ca/transform\": transforms[4].transform: entry 0 is column 1, already listed in \"identity\": identity and transform columns must be a partition of 0..3",
            "tensor \"cr/transform\": transforms[5].transform: entry 0 is column 3, outside 0..3",
            "hint: export the layer's identity_features and transform_features buffers",
        ],
    );
    let p = flow(d.path(), "gap", "sample", |s, w| {
        couplings(s, w);
        let i = w.iter().position(|r| r.name == "cr/identity").unwrap();
        w[i] = ints("cr/identity", &[0]);
    });
    assert_has(
        &load_err(&p),
        &["tensor \"cr/transform\": transforms[5].transform: column 2 is neither an identity nor a transform column (1 missing)"],
    );
    let p = flow(d.path(), "bins", "sample", |s, w| {
        couplings(s, w);
        transforms(s)[5]["spline"]["bins"] = json!(4);
        let i = w
            .iter()
            .position(|r| r.name == "ca/initial/weight")
            .unwrap();
        w[i] = rand("ca/initial/weight", &[4, 2], 3, 0.5);
    });
    assert_has(
        &load_err(&p),
        &[
            "tensor \"cr/final/weight\": transforms[5].net.final: has shape [8, 4], expected [11, 4] (parameters per transformed column × transformed columns)",
            "a spline with K bins 3K − 1",
            "tensor \"ca/initial/weight\": transforms[4].net.initial: has shape [4, 2], expected [4, 3] ([hidden, identity columns + context width]",
            "2 problem(s) found",
        ],
    );
    let p = flow(d.path(), "net", "sample", |s, w| {
        couplings(s, w);
        let i = w.iter().position(|r| r.name == "ca/b1/l0/weight").unwrap();
        w[i] = rand("ca/b1/l0/weight", &[4, 5], 3, 0.5);
        let i = w
            .iter()
            .position(|r| r.name == "ca/b0/context/weight")
            .unwrap();
        w[i] = rand("ca/b0/context/weight", &[4, 3], 3, 0.5);
        transforms(s)[5]["net"]["blocks"][0]["gate"] = json!(1);
    });
    assert_has(
        &load_err(&p),
        &["transforms[5].net.blocks[0]: unknown field(s) \"gate\""],
    );
    let p = flow(d.path(), "net2", "sample", |s, w| {
        couplings(s, w);
        let i = w.iter().position(|r| r.name == "ca/b1/l0/weight").unwrap();
        w[i] = rand("ca/b1/l0/weight", &[4, 5], 3, 0.5);
        let i = w
            .iter()
            .position(|r| r.name == "ca/b0/context/weight")
            .unwrap();
        w[i] = rand("ca/b0/context/weight", &[4, 3], 3, 0.5);
    });
    assert_has(
        &load_err(&p),
        &[
            "tensor \"ca/b1/l0/weight\": transforms[4].net.blocks[1].linear[0]: has shape [4, 5], expected [4, 4]",
            "tensor \"ca/b0/context/weight\": transforms[4].net.blocks[0].context: has shape [4, 3], expected [4, 2]",
        ],
    );
}

/// An unconditional flow of one spline coupling layer (no context, no gates): the log density
/// integrates the change of variables of its forward map, and the model compiles.
#[test]
fn unconditional_coupling_layer() {
    let d = tempfile::tempdir().unwrap();
    let mut w = vec![
        rand("u/initial/weight", &[4, 1], 1, 0.8),
        rand("u/initial/bias", &[4], 2, 0.2),
        rand("u/b0/l0/weight", &[4, 4], 3, 0.5),
        rand("u/b0/l1/weight", &[4, 4], 4, 0.5),
        rand("u/final/weight", &[2 * 8, 4], 5, 0.6),
        ints("u/identity", &[1]),
        ints("u/transform", &[2, 0]),
    ];
    w.push(rand("u/final/bias", &[2 * 8], 6, 0.3));
    let spec = json!({
        "format": "flashc/1", "name": "uc",
        "inputs": [{"name": "x", "columns": cols("x", D)}],
        "graph": [{"name": "lp", "op": "flow", "input": "x", "mode": "log_prob", "base": "standard_normal",
                   "transforms": [{"kind": "rqs_coupling", "identity": "u/identity", "transform": "u/transform",
                                   "spline": {"style": "nflows", "bins": 3, "bound": 2.0, "divisor": 2.0,
                                              "min_bin_width": 1e-3, "min_bin_height": 1e-3, "min_derivative": 1e-3},
                                   "net": {"activation": {"kind": "relu"},
                                           "initial": {"weight": "u/initial/weight", "bias": "u/initial/bias"},
                                           "blocks": [{"linear": [{"weight": "u/b0/l0/weight"}, {"weight": "u/b0/l1/weight"}]}],
                                           "final": {"weight": "u/final/weight", "bias": "u/final/bias"}}}]}],
        "outputs": [{"value": "lp", "columns": ["log_prob"]}]
    });
    let m = transpiler::load(write_model(d.path(), "uc", spec, &w)).unwrap();
    let eval = |x: &[f64]| transpiler::reference::eval_row(m.model(), x, &[]).unwrap()[0];
    // Column 1 passes unchanged and, given it, (x0, x2) ↦ (y0, y2) is a bijection: the density
    // integrated over x0 and x2 is N(x1; 0, 1) (trapezoid rule on [−8, 8]², step 0.04).
    for x1 in [0.4, -1.3] {
        let (n, lo, step) = (401, -8.0, 0.04);
        let mut total = 0.0;
        for i in 0..n {
            for j in 0..n {
                let wi = if i == 0 || i == n - 1 { 0.5 } else { 1.0 };
                let wj = if j == 0 || j == n - 1 { 0.5 } else { 1.0 };
                let x = [lo + step * i as f64, x1, lo + step * j as f64];
                total += wi * wj * eval(&x).exp();
            }
        }
        total *= step * step;
        let want = (-0.5 * x1 * x1).exp() / std::f64::consts::TAU.sqrt();
        assert!(
            (total - want).abs() < 1e-3 * want,
            "x1 = {x1}: marginal {total} vs N(x1) {want}"
        );
    }
    syn::parse_file(&transpiler::generate(&m, &quote::quote!(::runtime)).0).unwrap();
}
