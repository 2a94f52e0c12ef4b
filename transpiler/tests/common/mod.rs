//! Helpers shared by the integration tests: writing specs and safetensors files to a tempdir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::{json, Value};

/// A tensor to write: name, dtype, shape, raw little-endian bytes.
pub struct Raw {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// An f32 tensor.
pub fn t(name: &str, shape: &[usize], data: &[f32]) -> Raw {
    assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
    Raw {
        name: name.into(),
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        bytes: data.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// A deterministic pseudo-random f32 tensor in [-scale, scale].
pub fn rand(name: &str, shape: &[usize], seed: u64, scale: f32) -> Raw {
    let n: usize = shape.iter().product();
    t(name, shape, &rand_vec(n, seed, scale))
}

pub fn rand_vec(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32) / ((1u64 << 24) as f32);
            (2.0 * u - 1.0) * scale
        })
        .collect()
}

/// Serialises tensors to safetensors bytes.
pub fn safetensors_bytes(tensors: &[Raw]) -> Vec<u8> {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                TensorView::new(r.dtype, r.shape.clone(), &r.bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// Writes `<dir>/<name>.json` (with `"weights": "<name>.safetensors"` unless the spec sets it)
/// and the weights; returns the spec path.
pub fn write_model(dir: &Path, name: &str, mut spec: Value, tensors: &[Raw]) -> PathBuf {
    let weights = format!("{name}.safetensors");
    if spec.get("weights").is_none() {
        spec["weights"] = json!(weights);
    }
    std::fs::write(dir.join(&weights), safetensors_bytes(tensors)).unwrap();
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&spec).unwrap()).unwrap();
    path
}

/// Column names `c0..cn`.
pub fn cols(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// A minimal valid model: input x[3] → dense 3→2 (tanh) → output.
pub fn tiny_spec() -> (Value, Vec<Raw>) {
    let spec = json!({
        "format": "flashc/1",
        "name": "tiny",
        "inputs": [{"name": "x", "columns": cols("x", 3)}],
        "graph": [
            {"name": "d1", "op": "dense", "input": "x", "kernel": "d1/kernel", "bias": "d1/bias", "activation": {"kind": "tanh"}}
        ],
        "outputs": [{"value": "d1", "columns": cols("y", 2)}]
    });
    (
        spec,
        vec![
            rand("d1/kernel", &[3, 2], 1, 0.5),
            rand("d1/bias", &[2], 2, 0.1),
        ],
    )
}

/// The error message of loading `path`.
pub fn load_err(path: &Path) -> String {
    match transpiler::load(path) {
        Ok(m) => panic!("expected an error, got a valid model:\n{m}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts every needle is in the message.
#[track_caller]
pub fn assert_has(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "message lacks {n:?}:\n{msg}");
    }
}
