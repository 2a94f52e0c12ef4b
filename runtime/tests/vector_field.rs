//! `ode::sample` and `ode::VectorField`: a compiled vector field integrated through the `Model`
//! trait, against the same integration with a closure, and the errors of bad settings and
//! buffers. (The trained flow-matching models against torchdiffeq: `tests/cfm.rs`.)

use runtime::model::{ModelInfo, Noise};
use runtime::ode::{self, Dopri5Options, Error, Method, Scratch, Settings, VectorField, Workspace};
use runtime::{Model, Tier};

/// Input row: (c, x0, t, x1) — context first, time between the state columns, to check that
/// the settings' column indices are honoured. Outputs (dx0/dt, dx1/dt).
static INFO: ModelInfo = ModelInfo {
    name: "spiral",
    source: "models/spiral.json",
    n_inputs: 4,
    n_noise: 0,
    n_outputs: 2,
    input_columns: &["c", "x0", "t", "x1"],
    output_columns: &["v0", "v1"],
    noise: Noise::None,
    macs_per_row: 0,
};

const SETTINGS: Settings = Settings {
    method: Method::Rk4ThreeEighths { steps: 5 },
    state: &[1, 3],
    time: 2,
    context: &[0],
};

/// v = A x + c (1 + t) (1, −1), A = [[−0.5, 1], [−1, −0.5]].
fn field(c: f32, t: f32, x0: f32, x1: f32) -> (f32, f32) {
    let k = c * (1.0 + t);
    (-0.5 * x0 + x1 + k, -x0 - 0.5 * x1 - k)
}

struct Spiral;
impl Model for Spiral {
    fn info(&self) -> &'static ModelInfo {
        &INFO
    }
    fn run_unchecked(&self, _tier: Tier, rows: usize, inputs: &[f32], _noise: &[f32], out: &mut [f32]) {
        for r in 0..rows {
            let i = &inputs[4 * r..4 * r + 4];
            let (a, b) = field(i[0], i[2], i[1], i[3]);
            out[2 * r] = a;
            out[2 * r + 1] = b;
        }
    }
}

fn data(rows: usize) -> (Vec<f32>, Vec<f32>) {
    let ctx = (0..rows).map(|r| r as f32 * 0.25 - 1.0).collect();
    let z = (0..2 * rows).map(|i| ((i * 7) % 11) as f32 / 5.0 - 1.0).collect();
    (ctx, z)
}

/// The same integration with a closure over the field.
fn by_closure(method: Method, ctx: &[f32], z: &[f32]) -> Vec<f32> {
    let rows = ctx.len();
    let mut x = z.to_vec();
    let mut ws = Workspace::<f32>::new(rows, 2).unwrap();
    ode::integrate(&method, &mut x, &mut ws, |t, s, out| {
        for r in 0..rows {
            let (a, b) = field(ctx[r], t, s[2 * r], s[2 * r + 1]);
            out[2 * r] = a;
            out[2 * r + 1] = b;
        }
    })
    .unwrap();
    x
}

#[test]
fn sample_equals_integrating_the_field_directly() {
    let (ctx, z) = data(9);
    for method in [
        Method::Euler { steps: 7 },
        Method::Midpoint { steps: 3 },
        Method::Rk4 { steps: 5 },
        Method::Rk4ThreeEighths { steps: 5 },
        Method::Dopri5(Dopri5Options { rtol: 1e-6, atol: 1e-6, ..Dopri5Options::DEFAULT }),
    ] {
        let got = ode::sample(&Spiral, &Settings { method, ..SETTINGS }, &ctx, &z).unwrap();
        assert_eq!(got, by_closure(method, &ctx, &z), "{}", method.name());
    }
    // The builder form: another method and tier, and counters.
    let f = VectorField::new(&Spiral, SETTINGS).unwrap().with_method(Method::Euler { steps: 4 });
    let (x, stats) = f.on_tier(Tier::Portable).sample(&ctx, &z).unwrap();
    assert_eq!(x, by_closure(Method::Euler { steps: 4 }, &ctx, &z));
    assert_eq!((stats.nfe, stats.accepted), (4, 4));
    assert_eq!((f.dim(), f.context_width()), (2, 1));
}

#[test]
fn fixed_step_rows_do_not_depend_on_the_batch() {
    let (ctx, z) = data(9);
    let f = VectorField::new(&Spiral, SETTINGS).unwrap();
    let mut scratch = Scratch::new(&f, 9).unwrap();
    let mut all = z.clone();
    f.integrate(&ctx, &mut all, &mut scratch).unwrap();
    // Smaller batches through the same scratch (no new allocation), row by row.
    for r in 0..9 {
        let mut one = z[2 * r..2 * r + 2].to_vec();
        f.integrate(&ctx[r..r + 1], &mut one, &mut scratch).unwrap();
        assert_eq!(one, all[2 * r..2 * r + 2], "row {r}");
    }
    // No rows is no work.
    assert_eq!(f.integrate(&[], &mut [], &mut scratch).unwrap().nfe, 0);
}

#[test]
fn settings_that_do_not_fit_the_model_are_errors() {
    let bad = |s: Settings, needle: &str| {
        let e = VectorField::new(&Spiral, s).err().unwrap_or_else(|| panic!("{s:?} accepted"));
        assert!(matches!(e, Error::Settings { model: "spiral", .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(needle) && msg.contains("hint:"), "{msg}");
    };
    bad(Settings { state: &[1], ..SETTINGS }, "1 state column(s), but the model has 2 output(s)");
    bad(Settings { state: &[1, 7], ..SETTINGS }, "column 7 is out of range");
    bad(Settings { time: 1, ..SETTINGS }, "input column 1 is named twice");
    bad(Settings { context: &[], ..SETTINGS }, "input column 0 (`c`) is neither state, time nor context");
    // Bad method settings surface from the integrator.
    let e = ode::sample(&Spiral, &Settings { method: Method::Rk4 { steps: 0 }, ..SETTINGS }, &[0.0], &[0.0, 0.0]);
    assert!(matches!(e, Err(Error::Config { .. })), "{e:?}");
}

#[test]
fn wrong_buffer_sizes_are_errors() {
    let f = VectorField::new(&Spiral, SETTINGS).unwrap();
    let e = f.sample(&[0.0; 2], &[0.0; 3]).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }) && e.to_string().contains("state buffer"), "{e}");
    let e = f.sample(&[0.0; 3], &[0.0; 4]).unwrap_err();
    assert!(matches!(e, Error::Shape { what: "context buffer", expected: 2, got: 3 }), "{e}");
    let mut scratch = Scratch::new(&f, 1).unwrap();
    let e = f.integrate(&[0.0; 2], &mut [0.0; 4], &mut scratch).unwrap_err();
    assert!(e.to_string().contains("scratch"), "{e}");
}

#[test]
fn a_diverging_field_is_reported_not_returned() {
    // Context so large that the second Euler step overflows f32.
    let e = ode::sample(
        &Spiral,
        &Settings { method: Method::Euler { steps: 2 }, ..SETTINGS },
        &[f32::MAX],
        &[0.0, 0.0],
    )
    .unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e:?}");
}
