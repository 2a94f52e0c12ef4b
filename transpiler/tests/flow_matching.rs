//! Flow-matching vector fields: the `mul` op (GLU gating), models with several inputs, and the
//! `ode` section — validation errors, the passes against the f64 reference, generated code
//! (snapshot), the registry's `ode_by_name`, and the PTX kernel (interpreted) against the
//! reference.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use transpiler::codegen::ptx;

/// A FlowSim-style vector field in miniature: inputs x[3], context[2], t[1]; a first dense on
/// cat(x, context, t), one residual block gated by cat(context, t) (GLU: `h + r · σ(W·[c, t])`),
/// a resize dense back to the state width; integrated with torchdiffeq's rk4, 4 steps.
fn gated_spec() -> (Value, Vec<Raw>) {
    let spec = json!({
        "format": "flashc/1",
        "name": "cfm_tiny",
        "description": "test model",
        "inputs": [
            {"name": "x", "columns": ["x0", "x1", "x2"]},
            {"name": "context", "columns": ["c0", "c1"]},
            {"name": "t", "columns": ["t"]}
        ],
        "graph": [
            {"name": "in", "op": "concat", "inputs": ["x", "context", "t"]},
            {"name": "h", "op": "dense", "input": "in", "kernel": "h/kernel", "bias": "h/bias"},
            {"name": "ct", "op": "concat", "inputs": ["context", "t"]},
            {"name": "a0", "op": "activation", "input": "h", "activation": {"kind": "gelu", "approximate": "none"}},
            {"name": "l0", "op": "dense", "input": "a0", "kernel": "l0/kernel", "bias": "l0/bias",
             "activation": {"kind": "gelu", "approximate": "none"}},
            {"name": "l1", "op": "dense", "input": "l0", "kernel": "l1/kernel", "bias": "l1/bias"},
            {"name": "g", "op": "dense", "input": "ct", "kernel": "g/kernel", "bias": "g/bias"},
            {"name": "gs", "op": "activation", "input": "g", "activation": {"kind": "sigmoid"}},
            {"name": "m", "op": "mul", "inputs": ["l1", "gs"]},
            {"name": "r", "op": "add", "inputs": ["h", "m"]},
            {"name": "v", "op": "dense", "input": "r", "kernel": "v/kernel", "bias": "v/bias"}
        ],
        "outputs": [{"value": "v", "columns": ["v0", "v1", "v2"]}],
        "ode": {"method": "rk4", "steps": 4, "state": ["x0", "x1", "x2"], "time": "t"}
    });
    let tensors = vec![
        rand("h/kernel", &[6, 20], 21, 0.5),
        rand("h/bias", &[20], 22, 0.1),
        rand("l0/kernel", &[20, 20], 23, 0.4),
        rand("l0/bias", &[20], 24, 0.1),
        rand("l1/kernel", &[20, 20], 25, 0.4),
        rand("l1/bias", &[20], 26, 0.1),
        rand("g/kernel", &[3, 20], 27, 1.0),
        rand("g/bias", &[20], 28, 0.5),
        rand("v/kernel", &[20, 3], 29, 0.5),
        rand("v/bias", &[3], 30, 0.1),
    ];
    (spec, tensors)
}

fn write(dir: &Path, spec: Value, tensors: &[Raw]) -> PathBuf {
    let name = spec["name"].as_str().unwrap().to_owned();
    write_model(dir, &name, spec, tensors)
}

fn load_gated(dir: &Path) -> transpiler::ValidModel {
    let (spec, w) = gated_spec();
    transpiler::load(write(dir, spec, &w)).unwrap()
}

/// The error message for the gated model with `edit` applied to its spec.
fn error_with(edit: impl FnOnce(&mut Value)) -> String {
    let d = tempfile::tempdir().unwrap();
    let (mut spec, w) = gated_spec();
    edit(&mut spec);
    load_err(&write(d.path(), spec, &w))
}

// ------------------------------------------------------------------------------ validation

#[test]
fn mul_of_different_widths_is_a_clear_error() {
    let msg = error_with(|s| s["graph"][8]["inputs"] = json!(["l1", "ct"]));
    assert_has(
        &msg,
        &[
            "cfm_tiny.json",
            "node \"m\" (op mul)",
            "inconsistent dimensions: \"l1\" has width 20, \"ct\" has width 3",
            "hint: mul multiplies two values of the same width",
        ],
    );
    let msg = error_with(|s| s["graph"][8]["inputs"] = json!(["l1", "gs", "l0"]));
    assert_has(&msg, &["node \"m\" (op mul)", "mul takes exactly 2 inputs, found 3", "hint:"]);
    let msg = error_with(|s| s["graph"][8]["inputs"] = json!(["l1", "nowhere"]));
    assert_has(&msg, &["node \"m\" (op mul)", "reads value \"nowhere\"", "hint:"]);
}

#[test]
fn ode_section_problems_are_all_reported() {
    let msg = error_with(|s| s["ode"]["method"] = json!("rk45"));
    assert_has(
        &msg,
        &["cfm_tiny.json", "ode: unknown method \"rk45\"", "hint: supported methods: \"euler\""],
    );
    let msg = error_with(|s| s["ode"]["steps"] = json!(0));
    assert_has(&msg, &["ode: \"steps\" is 0", "hint: a fixed-step method needs at least one step"]);
    let msg = error_with(|s| {
        s["ode"]["steps"] = json!(2.5);
    });
    assert_has(&msg, &["ode: \"steps\" must be a positive integer, found 2.5"]);
    let msg = error_with(|s| s["ode"]["state"] = json!(["x0", "x1"]));
    assert_has(
        &msg,
        &[
            "ode: \"state\" lists 2 column(s), but the outputs (the vector field dx/dt) have 3",
            "hint: the outputs are the derivatives of the state columns",
        ],
    );
    let msg = error_with(|s| s["ode"]["state"] = json!(["x0", "x1", "y2"]));
    assert_has(&msg, &["ode: state column \"y2\" is not an input column", "hint: name columns of the model's inputs", "\"c0\""]);
    let msg = error_with(|s| s["ode"]["time"] = json!("x2"));
    assert_has(&msg, &["ode: \"x2\" is both a state column and the time column"]);
    let msg = error_with(|s| {
        s["ode"] = json!({"method": "dopri5", "steps": 4, "state": ["x0", "x1", "x2"], "time": "t"});
    });
    assert_has(
        &msg,
        &[
            "ode: \"steps\" is given for the adaptive method dopri5",
            "ode: missing \"rtol\" for dopri5",
            "ode: missing \"atol\" for dopri5",
        ],
    );
    let msg = error_with(|s| {
        s["ode"]["rtol"] = json!(1e-5);
        s["ode"]["colour"] = json!("blue");
        s["ode"].as_object_mut().unwrap().remove("time");
    });
    assert_has(
        &msg,
        &[
            "ode: \"rtol\" is given for the fixed-step method rk4",
            "ode: unknown key \"colour\"",
            "ode: missing \"time\"",
        ],
    );
    let msg = error_with(|s| s["ode"] = json!("rk4"));
    assert_has(&msg, &["ode: the section must be an object"]);
    // Noise makes no sense for a vector field.
    let msg = error_with(|s| s["noise"] = json!({"name": "z", "dim": 2, "distribution": "normal"}));
    assert_has(&msg, &["ode: the model also takes noise (\"z\")", "hint: a vector field is deterministic"]);
    // The model's static would clash with the settings constant.
    let msg = error_with(|s| s["name"] = json!("ode"));
    assert_has(&msg, &["ode: model name \"ode\" clashes with the generated constant ODE", "hint: rename the model"]);
    // A node problem and an ode problem come together.
    let msg = error_with(|s| {
        s["graph"][8]["inputs"] = json!(["l1", "ct"]);
        s["ode"]["method"] = json!("heun");
    });
    assert_has(&msg, &["node \"m\" (op mul)", "ode: unknown method \"heun\""]);
}

#[test]
fn dopri5_settings_are_accepted_and_summarised() {
    let d = tempfile::tempdir().unwrap();
    let (mut spec, w) = gated_spec();
    spec["ode"] = json!({"method": "dopri5", "rtol": 1e-5, "atol": 1e-6, "state": ["x0", "x1", "x2"], "time": "t"});
    let m = transpiler::load(write(d.path(), spec, &w)).unwrap();
    let summary = m.to_string();
    assert!(summary.contains("ode:     dopri5, rtol 1e-5, atol 1e-6 (state 3, time t)"), "{summary}");
    let program = transpiler::passes::plan(&transpiler::passes::optimise(&m));
    let (code, _) = transpiler::generate(&m, &quote::quote!(::runtime));
    assert!(
        code.contains("Dopri5(::runtime::ode::Dopri5Options {"),
        "{code}"
    );
    let ode = program.ode.unwrap();
    assert_eq!(ode.columns.state, [0, 1, 2]);
    assert_eq!(ode.columns.time, 5);
    assert_eq!(ode.columns.context, [3, 4]);
}

// ------------------------------------------------------------------- math, code, PTX

/// Rows of (x, context, t) in a range the field sees when sampling.
fn rows(n: usize) -> Vec<f64> {
    rand_vec(n * 6, 77, 2.0)
        .chunks(6)
        .flat_map(|r| {
            let mut r: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
            r[5] = (r[5] + 2.0) / 4.0; // t in [0, 1]
            r
        })
        .collect()
}

#[test]
fn passes_keep_the_gated_block_and_fuse_around_it() {
    let d = tempfile::tempdir().unwrap();
    let m = load_gated(d.path());
    let opt = transpiler::passes::optimise(&m);
    let x = rows(23);
    let a = transpiler::reference::eval(m.model(), 23, &x, &[]).unwrap();
    let b = transpiler::reference::eval(opt.model(), 23, &x, &[]).unwrap();
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() <= 1e-6 * (1.0 + u.abs()), "{u} vs {v}");
    }
    // The sigmoid is fused into the gate's dense; the gelu on h stays (h is also the residual).
    let ops: Vec<&str> = opt.model().nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["concat", "dense", "concat", "activation", "dense", "dense", "dense", "mul", "add", "dense"]);
}

#[test]
fn snapshot_of_generated_vector_field() {
    let d = tempfile::tempdir().unwrap();
    let model = load_gated(d.path());
    let mut m = model.model().clone();
    m.source = "models/cfm_tiny.json".into();
    let model = transpiler::ir::validate(m).unwrap();
    let (code, _) = transpiler::generate(&model, &quote::quote!(::runtime));
    insta::assert_snapshot!("cfm_tiny", code);
    assert!(code.contains("::runtime::prep::mul("));
    assert!(code.contains("pub const ODE: ::runtime::ode::Settings"));
    assert!(code.contains("method: ::runtime::ode::Method::Rk4ThreeEighths {") && code.contains("steps: 4,"));
    assert!(code.contains("state: &[0, 1, 2]") && code.contains("time: 5") && code.contains("context: &[3, 4]"));
    syn::parse_file(&code).unwrap();
    // Models without an ode section define no ODE.
    let (tiny, w) = tiny_spec();
    let tiny = transpiler::load(write_model(d.path(), "tiny", tiny, &w)).unwrap();
    let (code, _) = transpiler::generate(&tiny, &quote::quote!(::runtime));
    assert!(!code.contains("ODE"));
}

#[test]
fn registry_finds_the_settings_by_name() {
    let d = tempfile::tempdir().unwrap();
    let (spec, w) = gated_spec();
    let gated = write(d.path(), spec, &w);
    let (tiny, w) = tiny_spec();
    let tiny = write_model(d.path(), "tiny", tiny, &w);
    let out = d.path().join("out");
    transpiler::Config::new()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .compile(&[&tiny, &gated])
        .unwrap();
    let reg = std::fs::read_to_string(out.join(transpiler::REGISTRY_FILE)).unwrap();
    assert!(
        reg.contains("pub fn ode_by_name(name: &str) -> Option<&'static ::runtime::ode::Settings>"),
        "{reg}"
    );
    assert!(reg.contains("\"cfm_tiny\" => Some(&cfm_tiny::ODE)"), "{reg}");
    assert_eq!(reg.matches("::ODE").count(), 1, "only cfm_tiny has settings:\n{reg}");
    syn::parse_file(&reg).unwrap();
}

#[path = "../../tests/support/ptx_interp.rs"]
mod sim;

#[test]
fn ptx_kernel_of_the_gated_field_matches_the_reference() {
    let d = tempfile::tempdir().unwrap();
    let model = load_gated(d.path());
    let text = ptx::generate(&model).unwrap();
    assert!(text.contains("mul 20 columns"), "the mul step is in the kernel");
    let program = transpiler::passes::plan(&transpiler::passes::optimise(&model));
    let n = 70;
    let x64 = rows(n);
    let x: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
    let words = |v: &[f32]| -> Vec<u32> { v.iter().map(|x| x.to_bits()).chain(std::iter::once(0)).collect() };
    let mut bufs = vec![words(&x), words(&[]), vec![0u32; n * 3], words(&program.blob)];
    sim::parse(&text).launch(ptx::BLOCK, n as u32, &mut bufs);
    let got: Vec<f32> = bufs[2].iter().map(|&b| f32::from_bits(b)).collect();
    let x_exact: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let want = transpiler::reference::eval(model.model(), n, &x_exact, &[]).unwrap();
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(&want) {
        worst = worst.max((f64::from(*g) - w).abs() / (1.0 + w.abs()));
    }
    println!("cfm_tiny PTX (interpreted): worst error {worst:.2e}");
    assert!(worst < 2e-6, "worst {worst:e}");
}
