//! The trained flow-matching models (`models/train_cfm_models.py`: `cfm_resnet`, FlowSim's
//! DenseResidualNet, and `cfm_mlp`) sampled by `runtime::ode` against torchdiffeq's `odeint` of
//! the same PyTorch modules, on every ISA tier this machine supports.
//!
//! The ODE fixtures (`tests/fixtures/ode/<name>.safetensors`) hold fixed context rows, fixed base
//! noise `z`, and torchdiffeq's `x(1)` for euler, midpoint, rk4 (the 3/8 rule), classic RK4 (all
//! with the same number of steps) and dopri5, integrated in float32 like flashc (and in float64
//! for information). Tolerances, absolute, on the standardised targets:
//!
//! * fixed-step methods: 1e-5 — the two implementations differ only in f32 rounding (summation
//!   order inside the network, t and step arithmetic);
//! * dopri5: flashc's global error (against the exact solution, dopri5 in float64 with
//!   tolerances 1e-10, also in the fixture) at most twice torchdiffeq's own at the same settings.
//!   In float32 the error estimate of dopri5's first, short steps is dominated by rounding
//!   (torchdiffeq's float32 and float64 runs of the same model pick different steps: 56 and 62
//!   evaluations for `cfm_resnet`), so two float32 implementations choose different step sizes
//!   and agree only to within the method's global error at that tolerance, not bit for bit.
//!
//! The achieved figures are printed (`cargo test --release --test cfm -- --nocapture`) and
//! recorded in docs/flow-matching.md.

use std::collections::HashMap;
use std::path::Path;

use runtime::ode::{Dopri5Options, Method, Settings, VectorField};
use runtime::Model;
use safetensors::{Dtype, SafeTensors};

const FIXED_TOLERANCE: f64 = 1e-5;
const MODELS: [&str; 2] = ["cfm_resnet", "cfm_mlp"];

struct OdeFixture {
    context: Vec<f32>,
    z: Vec<f32>,
    rows: usize,
    results: HashMap<String, Vec<f64>>,
    meta: HashMap<String, String>,
}

fn load(name: &str) -> OdeFixture {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ode").join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (written by models/train_cfm_models.py)", file.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let mut results = HashMap::new();
    let (mut context, mut z, mut rows) = (Vec::new(), Vec::new(), 0);
    for (key, t) in st.tensors() {
        let v: Vec<f64> = match t.dtype() {
            Dtype::F32 => t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
            Dtype::F64 => t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
            d => panic!("{}: {key} has dtype {d:?}", file.display()),
        };
        match key.as_str() {
            "context" => {
                rows = t.shape()[0];
                context = v.iter().map(|&x| x as f32).collect();
            }
            "z" => z = v.iter().map(|&x| x as f32).collect(),
            _ => {
                results.insert(key, v);
            }
        }
    }
    OdeFixture { context, z, rows, results, meta }
}

fn model(name: &str) -> (&'static dyn Model, &'static Settings) {
    let m = generated::by_name(name).unwrap_or_else(|| panic!("model {name} is not under models/"));
    let s = generated::ode_by_name(name).unwrap_or_else(|| panic!("model {name} has no ode section"));
    (m, s)
}

fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - y).abs()).fold(0.0, f64::max)
}

fn steps(fx: &OdeFixture) -> usize {
    fx.meta["steps"].parse().unwrap()
}

#[test]
fn the_specs_ode_sections_are_the_generated_settings() {
    let (m, s) = model("cfm_resnet");
    assert_eq!(s.method, Method::Rk4ThreeEighths { steps: 5 });
    let info = m.info();
    assert_eq!((info.n_inputs, info.n_outputs, info.n_noise), (29, 16, 0));
    assert_eq!(s.state, (0..16).collect::<Vec<_>>());
    assert_eq!(s.context, (16..28).collect::<Vec<_>>());
    assert_eq!((s.time, info.input_columns[s.time]), (28, "t"));
    assert_eq!(*s, generated::cfm_resnet::ODE);
    let (_, s) = model("cfm_mlp");
    assert_eq!(s.method, Method::Dopri5(Dopri5Options { rtol: 1e-5, atol: 1e-5, ..Dopri5Options::DEFAULT }));
    // Models without an ode section have no settings.
    assert!(generated::ode_by_name("tracking_acceptance").is_none());
    assert!(generated::ode_by_name("no_such_model").is_none());
}

#[test]
fn fixed_step_methods_match_torchdiffeq_on_every_tier() {
    let mut failures = Vec::new();
    for name in MODELS {
        let (m, s) = model(name);
        let fx = load(name);
        let n = steps(&fx);
        for tier in runtime::isa::supported() {
            for (key, method) in [
                ("euler", Method::Euler { steps: n }),
                ("midpoint", Method::Midpoint { steps: n }),
                ("rk4", Method::Rk4ThreeEighths { steps: n }),
                ("rk4_classic", Method::Rk4 { steps: n }),
            ] {
                let field = VectorField::new(m, *s).unwrap().with_method(method).on_tier(tier);
                let (x, stats) = field.sample(&fx.context, &fx.z).unwrap();
                assert_eq!(stats.nfe.to_string(), fx.meta[&format!("{key}_nfe")], "{name} {key}");
                let err = max_abs(&x, &fx.results[key]);
                let err64 = max_abs(&x, &fx.results[&format!("{key}_f64")]);
                let torch64 = max_abs(
                    &fx.results[key].iter().map(|&v| v as f32).collect::<Vec<_>>(),
                    &fx.results[&format!("{key}_f64")],
                );
                println!(
                    "{name:<11} {:<9} {key:<11} x {n} steps: max |flashc - torchdiffeq| {err:.2e} (f32); \
                     against float64: flashc {err64:.2e}, torch {torch64:.2e}",
                    tier.name()
                );
                if err > FIXED_TOLERANCE {
                    failures.push(format!("{name} {key} on {tier}: {err:.3e}"));
                }
            }
        }
        // A row's result does not depend on the batch: row by row equals the batch, bit for bit.
        let field = VectorField::new(m, *s).unwrap().with_method(Method::Rk4ThreeEighths { steps: n });
        let (all, _) = field.sample(&fx.context, &fx.z).unwrap();
        let (c, d) = (field.context_width(), field.dim());
        for r in [0, 1, fx.rows - 1] {
            let (one, _) = field.sample(&fx.context[r * c..(r + 1) * c], &fx.z[r * d..(r + 1) * d]).unwrap();
            assert_eq!(one, all[r * d..(r + 1) * d], "{name} row {r}");
        }
    }
    assert!(failures.is_empty(), "beyond {FIXED_TOLERANCE:e}:\n{}", failures.join("\n"));
}

#[test]
fn dopri5_is_as_accurate_as_torchdiffeq_on_every_tier() {
    let mut failures = Vec::new();
    for name in MODELS {
        let (m, s) = model(name);
        let fx = load(name);
        let (rtol, atol): (f64, f64) = (fx.meta["rtol"].parse().unwrap(), fx.meta["atol"].parse().unwrap());
        let method = Method::Dopri5(Dopri5Options { rtol, atol, ..Dopri5Options::DEFAULT });
        let (want, exact) = (&fx.results["dopri5"], &fx.results["exact"]);
        let torch32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
        let torch_global = max_abs(&torch32, exact);
        for tier in runtime::isa::supported() {
            let field = VectorField::new(m, *s).unwrap().with_method(method).on_tier(tier);
            let (x, stats) = field.sample(&fx.context, &fx.z).unwrap();
            let mut tols = 0.0f64; // the difference in units of the local tolerance
            for (&g, &w) in x.iter().zip(want) {
                tols = tols.max((f64::from(g) - w).abs() / (atol + rtol * w.abs()));
            }
            let (diff, global) = (max_abs(&x, want), max_abs(&x, exact));
            println!(
                "{name:<11} {:<9} dopri5 rtol = atol = {rtol:e}: nfe {} (torchdiffeq {}); global error flashc \
                 {global:.2e}, torchdiffeq {torch_global:.2e}; max |flashc - torchdiffeq| {diff:.2e} ({tols:.2} local \
                 tolerances)",
                tier.name(),
                stats.nfe,
                fx.meta["dopri5_nfe"]
            );
            if global > 2.0 * torch_global {
                failures.push(format!("{name} dopri5 on {tier}: global error {global:.3e}, torchdiffeq's {torch_global:.3e}"));
            }
        }
    }
    assert!(failures.is_empty(), "dopri5 less accurate than torchdiffeq's:\n{}", failures.join("\n"));
}
