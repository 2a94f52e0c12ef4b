//! The `Model` trait's size checks and errors.
use runtime::model::{Noise, ModelInfo};
use runtime::{Error, Model, Tier};

static INFO: ModelInfo = ModelInfo {
    name: "toy",
    source: "models/toy.json",
    n_inputs: 3,
    n_noise: 2,
    n_outputs: 2,
    input_columns: &["a", "b", "c"],
    output_columns: &["u", "v"],
    noise: Noise::Normal,
    macs_per_row: 0,
};

/// out = (a + b + c, noise0 · noise1)
struct Toy;
impl Model for Toy {
    fn info(&self) -> &'static ModelInfo {
        &INFO
    }
    fn run_unchecked(&self, _tier: Tier, rows: usize, inputs: &[f32], noise: &[f32], out: &mut [f32]) {
        for r in 0..rows {
            out[2 * r] = inputs[3 * r..3 * r + 3].iter().sum();
            out[2 * r + 1] = noise[2 * r] * noise[2 * r + 1];
        }
    }
}

#[test]
fn run_checks_sizes() {
    let m = Toy;
    let mut out = vec![0.0; 4];
    assert_eq!(m.run(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1.0, 2.0, 3.0, 4.0], &mut out), Ok(2));
    assert_eq!(out, [6.0, 2.0, 15.0, 12.0]);
    let e = m.run(&[1.0; 3], &[1.0; 4], &mut out).unwrap_err();
    assert_eq!(e, Error::Shape { model: "toy", what: "inputs", expected: 6, got: 3 });
    let msg = e.to_string();
    assert!(msg.contains("toy") && msg.contains("inputs") && msg.contains("hint"), "{msg}");
    let e = m.run(&[1.0; 6], &[1.0; 4], &mut out[..3]).unwrap_err();
    assert!(matches!(e, Error::Ragged { what: "outputs", len: 3, width: 2, .. }), "{e:?}");
    assert!(m.run(&[1.0; 6], &[1.0; 2], &mut out).is_err());
    // Zero rows is fine.
    assert_eq!(m.run(&[], &[], &mut []), Ok(0));
    let _: &dyn std::error::Error = &e;
}

#[test]
fn run_row_checks_sizes() {
    let m = Toy;
    let mut out = [0.0; 2];
    m.run_row(&[1.0, 1.0, 1.0], &[2.0, 3.0], &mut out).unwrap();
    assert_eq!(out, [3.0, 6.0]);
    assert!(m.run_row(&[1.0, 1.0], &[2.0, 3.0], &mut out).is_err());
    assert!(m.run_row(&[1.0, 1.0, 1.0], &[2.0], &mut out).is_err());
    assert!(m.run_row(&[1.0, 1.0, 1.0], &[2.0, 3.0], &mut [0.0; 3]).is_err());
}
