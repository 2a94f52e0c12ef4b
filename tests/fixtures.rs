//! Every compiled model against the reference outputs its framework (Keras, PyTorch, sklearn)
//! produced, on every ISA tier this machine supports.
//!
//! Tolerance: for each output column, max |flashc − reference| ≤ 1e-5 × scale, where scale is the
//! standard deviation of that column over the fixture rows (or max(1, max |ref|) for a constant
//! column). The achieved figures are printed (`cargo test --test fixtures -- --nocapture`) and
//! recorded in docs/numerics.md.

use std::path::Path;

use runtime::Model;
use safetensors::{Dtype, SafeTensors};

const TOLERANCE: f64 = 1e-5;

struct Fixture {
    inputs: Vec<f32>,
    noise: Vec<f32>,
    outputs: Vec<f64>,
    rows: usize,
}

fn tensor(st: &SafeTensors, file: &Path, name: &str) -> Option<(Vec<f64>, Vec<usize>)> {
    let t = st.tensor(name).ok()?;
    let data: Vec<f64> = match t.dtype() {
        Dtype::F32 => t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        Dtype::F64 => t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
        other => panic!("{}: tensor {name} has dtype {other:?}; fixtures use F32 or F64", file.display()),
    };
    Some((data, t.shape().to_vec()))
}

fn load_fixture(model: &dyn Model) -> Fixture {
    let info = model.info();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(format!("{}.safetensors", info.name));
    let bytes = std::fs::read(&file).unwrap_or_else(|e| {
        panic!("model {} has no fixture at {}: {e} (run models/train_demo_models.py)", info.name, file.display())
    });
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (inputs, ishape) = tensor(&st, &file, "inputs").expect("fixture has inputs");
    let (outputs, oshape) = tensor(&st, &file, "outputs").expect("fixture has outputs");
    let rows = ishape[0];
    assert_eq!(ishape, [rows, info.n_inputs], "{}: inputs shape", file.display());
    assert_eq!(oshape, [rows, info.n_outputs], "{}: outputs shape", file.display());
    let noise = match tensor(&st, &file, "noise") {
        Some((n, nshape)) => {
            assert_eq!(nshape, [rows, info.n_noise], "{}: noise shape", file.display());
            n.into_iter().map(|x| x as f32).collect()
        }
        None => {
            assert_eq!(info.n_noise, 0, "{}: the model takes noise but the fixture has none", file.display());
            Vec::new()
        }
    };
    Fixture { inputs: inputs.into_iter().map(|x| x as f32).collect(), noise, outputs, rows }
}

/// Max error over all columns, each relative to its column's scale.
fn max_scaled_error(got: &[f32], want: &[f64], rows: usize, cols: usize) -> (f64, usize) {
    let mut worst = (0.0, 0);
    for c in 0..cols {
        let col: Vec<f64> = (0..rows).map(|r| want[r * cols + c]).collect();
        let mean = col.iter().sum::<f64>() / rows as f64;
        let std = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / rows as f64).sqrt();
        let scale = if std > 0.0 { std } else { col.iter().fold(1.0f64, |m, x| m.max(x.abs())) };
        for r in 0..rows {
            let e = (got[r * cols + c] as f64 - col[r]).abs() / scale;
            assert!(e.is_finite(), "column {c} row {r}: got {} want {}", got[r * cols + c], col[r]);
            if e > worst.0 {
                worst = (e, c);
            }
        }
    }
    worst
}

#[test]
fn every_model_has_a_fixture_and_matches_it_on_every_tier() {
    assert!(generated::MODELS.len() >= 3, "the demo models are missing from models/");
    let mut failures = Vec::new();
    for &model in generated::MODELS {
        let info = model.info();
        let fx = load_fixture(model);
        for tier in runtime::isa::supported() {
            // Batch path.
            let mut out = vec![f32::NAN; fx.rows * info.n_outputs];
            model.run_on(tier, &fx.inputs, &fx.noise, &mut out).unwrap();
            let (err, col) = max_scaled_error(&out, &fx.outputs, fx.rows, info.n_outputs);
            println!("{:<28} {:<9} batch  max error {err:.2e} (column {})", info.name, tier.name(), info.output_columns[col]);
            if err > TOLERANCE {
                failures.push(format!("{} on {tier} (batch): {err:.3e} in column {}", info.name, info.output_columns[col]));
            }
            // Row-by-row path must give the same numbers as the batch path, bit for bit.
            if tier == runtime::isa::active() {
                let mut row_out = vec![0f32; info.n_outputs];
                for r in 0..fx.rows {
                    model
                        .run_row(
                            &fx.inputs[r * info.n_inputs..(r + 1) * info.n_inputs],
                            &fx.noise[r * info.n_noise..(r + 1) * info.n_noise],
                            &mut row_out,
                        )
                        .unwrap();
                    let batch_row = &out[r * info.n_outputs..(r + 1) * info.n_outputs];
                    if row_out.iter().zip(batch_row).any(|(a, b)| a.to_bits() != b.to_bits()) {
                        failures.push(format!("{} on {tier}: row {r} differs between run_row and run", info.name));
                        break;
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "fixtures not matched:\n{}", failures.join("\n"));
}

#[test]
fn wrong_buffer_sizes_are_errors_not_panics() {
    let model = generated::MODELS[0];
    let info = model.info();
    let mut out = vec![0f32; 2 * info.n_outputs];
    let err = model.run(&vec![0.0; 3 * info.n_inputs], &vec![0.0; 2 * info.n_noise], &mut out).unwrap_err();
    assert!(err.to_string().contains(info.name), "{err}");
}
