//! Bad input: every case gives one clear error naming file, node and tensor, with a hint.

mod common;

use common::*;
use safetensors::Dtype;
use serde_json::json;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn malformed_json_reports_line_and_column() {
    let d = dir();
    let p = d.path().join("bad.json");
    std::fs::write(&p, "{\n  \"format\": \"flashc/1\",\n  \"name\": tiny\n}").unwrap();
    let msg = load_err(&p);
    assert_has(&msg, &["bad.json:3:", "hint:"]);
    match transpiler::load(&p) {
        Err(transpiler::Error::Json { line, column, .. }) => assert_eq!((line, column), (3, 12)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_top_level_field_is_rejected_with_position() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["colour"] = json!("blue");
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &["tiny.json:", "unknown field `colour`", "hint:"],
    );
}

#[test]
fn unknown_op_lists_supported_ops() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"][0]["op"] = json!("convolution");
    let p = write_model(d.path(), "tiny", spec, &w);
    let msg = load_err(&p);
    assert_has(
        &msg,
        &[
            "tiny.json",
            "node \"d1\" (op convolution)",
            "unknown op \"convolution\"",
            "hint: supported ops: dense, activation, add",
        ],
    );
}

#[test]
fn missing_tensor_names_node_and_tensor() {
    let d = dir();
    let (spec, mut w) = tiny_spec();
    w.retain(|r| r.name != "d1/kernel");
    let p = write_model(d.path(), "tiny", spec, &w);
    let msg = load_err(&p);
    assert_has(
        &msg,
        &[
            "tiny.json",
            "node \"d1\" (op dense)",
            "tensor \"d1/kernel\"",
            "not in the weights file",
            "hint:",
        ],
    );
}

#[test]
fn shape_mismatch_names_tensor_and_expected_shape() {
    let d = dir();
    let (spec, mut w) = tiny_spec();
    w[0] = rand("d1/kernel", &[4, 2], 1, 0.5);
    let p = write_model(d.path(), "tiny", spec, &w);
    let msg = load_err(&p);
    assert_has(
        &msg,
        &[
            "node \"d1\" (op dense)",
            "tensor \"d1/kernel\"",
            "has shape [4, 2], expected [3, 2]",
            "hint:",
        ],
    );
}

#[test]
fn bias_shape_mismatch() {
    let d = dir();
    let (spec, mut w) = tiny_spec();
    w[1] = rand("d1/bias", &[3], 2, 0.5);
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &["tensor \"d1/bias\"", "has shape [3], expected [2]", "hint:"],
    );
}

#[test]
fn unsupported_dtypes_are_named() {
    for (dtype, size, label) in [(Dtype::I32, 4, "I32"), (Dtype::F64, 8, "F64")] {
        let d = dir();
        let (spec, mut w) = tiny_spec();
        w[0] = Raw {
            name: "d1/kernel".into(),
            dtype,
            shape: vec![3, 2],
            bytes: vec![0; 6 * size],
        };
        let p = write_model(d.path(), "tiny", spec, &w);
        assert_has(
            &load_err(&p),
            &[
                "node \"d1\" (op dense)",
                "tensor \"d1/kernel\"",
                &format!("dtype {label} is not supported"),
                "hint:",
            ],
        );
    }
}

#[test]
fn f16_and_bf16_weights_are_accepted() {
    let d = dir();
    let (spec, mut w) = tiny_spec();
    let k: Vec<u8> = [0.5f32, -1.0, 0.25, 2.0, 0.0, 1.5]
        .iter()
        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
        .collect();
    let b: Vec<u8> = [0.5f32, -3.0]
        .iter()
        .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
        .collect();
    w[0] = Raw {
        name: "d1/kernel".into(),
        dtype: Dtype::F16,
        shape: vec![3, 2],
        bytes: k,
    };
    w[1] = Raw {
        name: "d1/bias".into(),
        dtype: Dtype::BF16,
        shape: vec![2],
        bytes: b,
    };
    let p = write_model(d.path(), "tiny", spec, &w);
    let m = transpiler::load(&p).unwrap();
    let transpiler::ir::Op::Dense { kernel, bias, .. } = &m.model().nodes[0].op else {
        panic!()
    };
    assert_eq!(kernel.data, vec![0.5, -1.0, 0.25, 2.0, 0.0, 1.5]);
    assert_eq!(bias.as_ref().unwrap().data, vec![0.5, -3.0]);
}

#[test]
fn nan_and_inf_weights_name_tensor_and_index() {
    for (bad, label) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let d = dir();
        let (spec, mut w) = tiny_spec();
        let mut k = vec![0.1f32; 6];
        k[3] = bad;
        w[0] = t("d1/kernel", &[3, 2], &k);
        let p = write_model(d.path(), "tiny", spec, &w);
        assert_has(
            &load_err(&p),
            &[
                "node \"d1\" (op dense)",
                "tensor \"d1/kernel\"",
                label,
                "[1, 1] (flat index 3) is not finite",
                "hint:",
            ],
        );
    }
}

#[test]
fn inconsistent_dimensions_in_add() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "s", "op": "add", "inputs": ["x", "d1"]}));
    spec["outputs"] = json!([{"value": "s", "columns": cols("y", 3)}]);
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"s\" (op add)",
            "inconsistent dimensions: \"x\" has width 3, \"d1\" has width 2",
            "hint:",
        ],
    );
}

#[test]
fn column_index_out_of_range() {
    let d = dir();
    let (mut spec, mut w) = tiny_spec();
    spec["graph"].as_array_mut().unwrap().insert(
        0,
        json!({"name": "sc", "op": "standard_scaler", "input": "x", "direction": "forward", "columns": [0, 7], "mean": "sc/mean", "scale": "sc/scale"}),
    );
    spec["graph"][1]["input"] = json!("sc");
    w.push(t("sc/mean", &[2], &[0.0, 1.0]));
    w.push(t("sc/scale", &[2], &[1.0, 2.0]));
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"sc\" (op standard_scaler)",
            "column index 7 is out of range (the input has width 3)",
            "hint:",
        ],
    );
}

#[test]
fn wrong_format_version_lists_supported() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["format"] = json!("flashc/2");
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "tiny.json",
            "format \"flashc/2\" is not supported",
            "hint: supported formats: \"flashc/1\"",
        ],
    );
}

#[test]
fn other_format_version_with_another_shape_reports_the_version_not_a_field() {
    let d = dir();
    let p = d.path().join("future.json");
    std::fs::write(&p, r#"{"format": "flashc/2", "model": {"layers": []}}"#).unwrap();
    let e = load_err(&p);
    assert_has(&e, &["future.json", "format \"flashc/2\" is not supported", "hint: supported formats"]);
    assert!(!e.contains("missing field"), "{e}");
}

#[test]
fn missing_weights_file_names_both_files() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["weights"] = json!("elsewhere.safetensors");
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "elsewhere.safetensors",
            "cannot open the weights file",
            "tiny.json",
            "hint:",
        ],
    );
}

#[test]
fn truncated_and_corrupt_safetensors() {
    let d = dir();
    let (spec, w) = tiny_spec();
    let p = write_model(d.path(), "tiny", spec, &w);
    let wpath = d.path().join("tiny.safetensors");
    let bytes = std::fs::read(&wpath).unwrap();
    for (label, data) in [
        ("truncated", bytes[..bytes.len() - 5].to_vec()),
        (
            "corrupt",
            b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all".to_vec(),
        ),
        ("empty", vec![]),
    ] {
        std::fs::write(&wpath, &data).unwrap();
        let msg = load_err(&p);
        assert_has(&msg, &["tiny.safetensors", "tiny.json", "hint:"]);
        assert!(
            matches!(transpiler::load(&p), Err(transpiler::Error::Weights { .. })),
            "{label}: {msg}"
        );
    }
}

#[test]
fn undefined_value_reference() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"][0]["input"] = json!("xx");
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"d1\" (op dense)",
            "reads value \"xx\", which is not defined before this node",
            "hint:",
            "\"x\"",
        ],
    );
}

#[test]
fn duplicate_names() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"][0]["name"] = json!("x");
    spec["outputs"][0]["value"] = json!("x");
    spec["outputs"][0]["columns"] = json!(cols("y", 3));
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"x\" (op dense)",
            "duplicate value name \"x\"",
            "hint:",
        ],
    );
}

#[test]
fn bad_activation_parameters() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"][0]["activation"] = json!({"kind": "leaky_relu"});
    let p = write_model(d.path(), "tiny", spec.clone(), &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"d1\" (op dense)",
            "parameter \"alpha\" must be a number",
            "hint:",
        ],
    );
    spec["graph"][0]["activation"] = json!({"kind": "softplus", "beta": -1.0, "threshold": null});
    let p = write_model(d.path(), "tiny", spec.clone(), &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"d1\" (op dense)",
            "softplus has invalid parameters: beta = -1",
            "hint:",
        ],
    );
    spec["graph"][0]["activation"] = json!({"kind": "swish"});
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "activation kind \"swish\" is not supported",
            "hint: supported kinds: linear, relu",
        ],
    );
}

#[test]
fn model_name_must_be_an_identifier() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    for bad in ["Tiny-Model", "type", "9lives"] {
        spec["name"] = json!(bad);
        let p = write_model(d.path(), "tiny", spec.clone(), &w);
        assert_has(
            &load_err(&p),
            &[
                "tiny.json",
                &format!("model name \"{bad}\" is not a valid identifier"),
                "hint:",
            ],
        );
    }
    for clash in ["x", "models", "self_"] {
        spec["name"] = json!(clash);
        let p = write_model(d.path(), "tiny", spec.clone(), &w);
        assert_has(
            &load_err(&p),
            &[
                "tiny.json",
                &format!("model name \"{clash}\" clashes in generated code"),
                "hint:",
            ],
        );
    }
}

#[test]
fn singular_decorrelation_matrix() {
    let d = dir();
    let (mut spec, mut w) = tiny_spec();
    spec["graph"].as_array_mut().unwrap().insert(0, json!({"name": "dc", "op": "decorrelate", "input": "x", "direction": "inverse", "matrix": "dc/m"}));
    spec["graph"][1]["input"] = json!("dc");
    w.push(t(
        "dc/m",
        &[3, 3],
        &[1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.0, 1.0, 1.0],
    ));
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"dc\" (op decorrelate)",
            "tensor \"dc/m\"",
            "singular",
            "hint:",
        ],
    );
}

#[test]
fn unknown_node_field_is_reported() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"][0]["kernal"] = json!("d1/kernel");
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "node \"d1\" (op dense)",
            "unknown field(s) \"kernal\"",
            "hint: op dense takes",
        ],
    );
}

#[test]
fn several_problems_are_all_reported_at_once() {
    let d = dir();
    let (mut spec, mut w) = tiny_spec();
    spec["format"] = json!("flashc/0");
    spec["graph"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "bad", "op": "frobnicate", "input": "d1"}));
    spec["graph"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "s", "op": "add", "inputs": ["x", "d1"]}));
    w[1] = t("d1/bias", &[2], &[f32::NAN, 0.0]);
    let p = write_model(d.path(), "tiny", spec, &w);
    let msg = load_err(&p);
    eprintln!("{msg}");
    assert_has(
        &msg,
        &[
            "4 problem(s) found",
            "format \"flashc/0\"",
            "unknown op \"frobnicate\"",
            "tensor \"d1/bias\"",
            "NaN",
            "inconsistent dimensions",
        ],
    );
    assert_eq!(msg.matches("hint:").count(), 4, "{msg}");
    let Err(transpiler::Error::Invalid { problems, .. }) = transpiler::load(&p) else {
        panic!()
    };
    assert_eq!(problems.len(), 4);
    assert!(problems.iter().all(|p| p.file.ends_with("tiny.json")));
}

#[test]
fn consumers_of_a_broken_node_are_not_reported_twice() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["graph"][0]["op"] = json!("densee");
    let p = write_model(d.path(), "tiny", spec, &w);
    let Err(transpiler::Error::Invalid { problems, .. }) = transpiler::load(&p) else {
        panic!()
    };
    assert_eq!(problems.len(), 1, "{problems:#?}");
}

#[test]
fn output_width_mismatch() {
    let d = dir();
    let (mut spec, w) = tiny_spec();
    spec["outputs"][0]["columns"] = json!(cols("y", 5));
    let p = write_model(d.path(), "tiny", spec, &w);
    assert_has(
        &load_err(&p),
        &[
            "output \"d1\" lists 5 column(s), but the value has width 2",
            "hint:",
        ],
    );
}

#[test]
fn no_output_dir_is_a_config_error() {
    if std::env::var_os("OUT_DIR").is_some() {
        return; // only meaningful outside a build script
    }
    let err = transpiler::Config::new().compile(&["x.json"]).unwrap_err();
    assert_has(&err.to_string(), &["OUT_DIR", "hint:"]);
}
