//! The normalizing-flow models under `models/` against the libraries that trained them
//! (fixtures written by `models/train_flow_models.py`), on every ISA tier this machine has.
//!
//! * sampling models (`x = T⁻¹(z; context)` from fixed base noise `z`): every value within
//!   `1e-4` *relative* of the library, `|x − x_ref| ≤ 1e-4 · max(1, |x_ref|)`;
//! * log-density models (`log p(x | context)`): within `1e-4` *absolute*.
//!
//! The achieved figures are printed (`cargo test --release --test flows -- --nocapture`) and
//! recorded in docs/flows.md. (`tests/fixtures.rs` checks the same models with the column-range
//! tolerance shared by every model, and the row-by-row path bit for bit.)

use std::path::Path;

use runtime::Model;
use safetensors::SafeTensors;

const SAMPLE_REL: f64 = 1e-4;
const LOG_PROB_ABS: f64 = 1e-4;

fn f32s(st: &SafeTensors, name: &str) -> Vec<f32> {
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("fixture tensor {name}: {e}"));
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn flow_models() -> Vec<&'static dyn Model> {
    generated::MODELS
        .iter()
        .copied()
        .filter(|m| m.info().name.starts_with("nflows_") || m.info().name.starts_with("zuko_"))
        .collect()
}

#[test]
fn flows_match_their_library_on_every_tier() {
    let models = flow_models();
    assert!(
        models.len() >= 4,
        "the flow models are missing from models/ (run models/train_flow_models.py)"
    );
    let mut failures = Vec::new();
    for model in models {
        let info = model.info();
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{}.safetensors", info.name));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (x, want) = (f32s(&st, "inputs"), f32s(&st, "outputs"));
        let noise = if info.n_noise > 0 {
            f32s(&st, "noise")
        } else {
            Vec::new()
        };
        let log_prob = info.name.ends_with("_log_prob");
        for tier in runtime::isa::supported() {
            let mut out = vec![f32::NAN; want.len()];
            model.run_on(tier, &x, &noise, &mut out).unwrap();
            let worst = out
                .iter()
                .zip(&want)
                .map(|(&g, &w)| {
                    let d = (g as f64 - w as f64).abs();
                    if log_prob {
                        d
                    } else {
                        d / (w as f64).abs().max(1.0)
                    }
                })
                .fold(
                    0.0f64,
                    |a, b| if b.is_nan() { f64::INFINITY } else { a.max(b) },
                );
            let (what, bound) = if log_prob {
                ("absolute", LOG_PROB_ABS)
            } else {
                ("relative", SAMPLE_REL)
            };
            println!(
                "{:<22} {:<9} max {what} error {worst:.2e} ({} values)",
                info.name,
                tier.name(),
                want.len()
            );
            if worst.is_nan() || worst > bound {
                failures.push(format!(
                    "{} on {tier}: {what} error {worst:.3e} > {bound:e}",
                    info.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Flows have no PTX yet: a build that compiles PTX skips them, and `ptx_by_name` says why.
#[test]
fn flows_have_no_ptx_and_say_why() {
    for model in flow_models() {
        let err = generated::ptx_by_name(model.info().name).unwrap_err();
        assert!(
            err.contains("(op flow)") && err.contains("does not support op flow"),
            "{err}"
        );
    }
    assert!(generated::ptx_by_name("no_such_model")
        .unwrap_err()
        .contains("no compiled model"));
}

/// A NaN in a row's context (or input) gives NaN in that row's outputs only: every other row
/// keeps its bits, on every tier, for every flow model (the documented per-row behaviour; no
/// error, no flag).
#[test]
fn a_nan_row_stays_in_its_row() {
    for model in flow_models() {
        let info = model.info();
        let rows = 40;
        let x: Vec<f32> = (0..rows * info.n_inputs)
            .map(|i| ((i * 7919) % 1000) as f32 / 400.0 - 1.25)
            .collect();
        let noise: Vec<f32> = (0..rows * info.n_noise)
            .map(|i| ((i * 104729) % 1000) as f32 / 300.0 - 1.66)
            .collect();
        let mut bad = x.clone();
        let nan_row = 17;
        bad[nan_row * info.n_inputs + info.n_inputs - 1] = f32::NAN;
        for tier in runtime::isa::supported() {
            let mut clean = vec![0f32; rows * info.n_outputs];
            let mut out = vec![0f32; rows * info.n_outputs];
            model.run_on(tier, &x, &noise, &mut clean).unwrap();
            model.run_on(tier, &bad, &noise, &mut out).unwrap();
            for r in 0..rows {
                let row = r * info.n_outputs..(r + 1) * info.n_outputs;
                if r == nan_row {
                    assert!(
                        out[row.clone()].iter().all(|v| v.is_nan()),
                        "{} on {tier}: the NaN row gives {:?}",
                        info.name,
                        &out[row]
                    );
                } else {
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&out[row.clone()]),
                        bits(&clean[row]),
                        "{} on {tier}: row {r} changed",
                        info.name
                    );
                }
            }
        }
    }
}
