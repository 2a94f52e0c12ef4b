//! Tests of the batch ODE integrator: convergence orders against an analytic solution, and
//! agreement with torchdiffeq (fixtures from `tests/make_ode_fixtures.py`).

use runtime::ode::{integrate, Dopri5Options, Error, Method, Stats, Workspace};

// ---------------------------------------------------------------- analytic linear system
// dx/dt = A x + b sin t, A = [[-a, w], [-w, -a]], per row (dim 2).
const AA: f64 = 0.7;
const WW: f64 = 1.3;
const B: [f64; 2] = [0.9, -0.4];

fn mat_a() -> [[f64; 2]; 2] {
    [[-AA, WW], [-WW, -AA]]
}

fn linear_field(t: f64, x: &[f64], out: &mut [f64]) {
    let a = mat_a();
    let s = t.sin();
    for (xr, or) in x.chunks(2).zip(out.chunks_mut(2)) {
        or[0] = a[0][0] * xr[0] + a[0][1] * xr[1] + B[0] * s;
        or[1] = a[1][0] * xr[0] + a[1][1] * xr[1] + B[1] * s;
    }
}

/// Exact solution at t: x = e^{At}(x0 − Q) + P sin t + Q cos t, with (A² + I) Q = −b, P = A Q.
fn linear_exact(x0: &[f64], t: f64) -> Vec<f64> {
    let a = mat_a();
    let mut m = [[0.0; 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            m[i][j] = a[i][0] * a[0][j] + a[i][1] * a[1][j] + if i == j { 1.0 } else { 0.0 };
        }
    }
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let q = [
        -(m[1][1] * B[0] - m[0][1] * B[1]) / det,
        -(-m[1][0] * B[0] + m[0][0] * B[1]) / det,
    ];
    let p = [
        a[0][0] * q[0] + a[0][1] * q[1],
        a[1][0] * q[0] + a[1][1] * q[1],
    ];
    let e = (-AA * t).exp();
    let (c, s) = ((WW * t).cos(), (WW * t).sin());
    let mut out = Vec::new();
    for r in x0.chunks(2) {
        let z = [r[0] - q[0], r[1] - q[1]];
        out.push(e * (c * z[0] + s * z[1]) + p[0] * t.sin() + q[0] * t.cos());
        out.push(e * (-s * z[0] + c * z[1]) + p[1] * t.sin() + q[1] * t.cos());
    }
    out
}

#[test]
fn analytic_solution_satisfies_the_ode() {
    // Guards the reference itself: central difference of the exact solution equals the field.
    let x0 = [0.5, -1.0];
    let (t, h) = (0.6, 1e-5);
    let d: Vec<f64> = linear_exact(&x0, t + h)
        .iter()
        .zip(linear_exact(&x0, t - h))
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect();
    let mut f = [0.0; 2];
    linear_field(t, &linear_exact(&x0, t), &mut f);
    for i in 0..2 {
        assert!((d[i] - f[i]).abs() < 1e-8, "{d:?} vs {f:?}");
    }
}

const X0_LIN: [f64; 6] = [1.0, 0.0, -0.5, 2.0, 0.3, -0.7];

fn max_err(method: Method) -> (f64, Stats) {
    let mut x = X0_LIN.to_vec();
    let mut ws = Workspace::<f64>::new(3, 2).unwrap();
    let st = integrate(&method, &mut x, &mut ws, linear_field).unwrap();
    let exact = linear_exact(&X0_LIN, 1.0);
    (
        x.iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max),
        st,
    )
}

fn check_order(make: fn(usize) -> Method, order: f64, base: usize) {
    let errs: Vec<f64> = [base, 2 * base, 4 * base]
        .iter()
        .map(|&n| max_err(make(n)).0)
        .collect();
    for w in errs.windows(2) {
        let observed = (w[0] / w[1]).log2();
        assert!(
            (observed - order).abs() < 0.25,
            "{}: errors {errs:?}, observed order {observed}, expected {order}",
            make(base).name()
        );
    }
}

#[test]
fn euler_is_first_order() {
    check_order(|steps| Method::Euler { steps }, 1.0, 64);
}

#[test]
fn midpoint_is_second_order() {
    check_order(|steps| Method::Midpoint { steps }, 2.0, 16);
}

#[test]
fn classic_rk4_is_fourth_order() {
    check_order(|steps| Method::Rk4 { steps }, 4.0, 8);
}

#[test]
fn three_eighths_rk4_is_fourth_order() {
    check_order(|steps| Method::Rk4ThreeEighths { steps }, 4.0, 8);
}

#[test]
fn fixed_step_nfe() {
    for (m, per) in [
        (Method::Euler { steps: 7 }, 1),
        (Method::Midpoint { steps: 7 }, 2),
        (Method::Rk4 { steps: 7 }, 4),
        (Method::Rk4ThreeEighths { steps: 7 }, 4),
    ] {
        let st = max_err(m).1;
        assert_eq!(
            st,
            Stats {
                nfe: 7 * per,
                accepted: 7,
                rejected: 0
            },
            "{}",
            m.name()
        );
    }
}

#[test]
fn dopri5_error_follows_tolerance() {
    let mut last = f64::INFINITY;
    let mut last_nfe = 0;
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let (err, st) = max_err(Method::Dopri5(Dopri5Options {
            rtol: tol,
            atol: tol,
            ..Default::default()
        }));
        assert!(err < 50.0 * tol, "tol {tol}: error {err}");
        assert!(
            err < last,
            "error must shrink with the tolerance: {err} after {last}"
        );
        assert!(
            st.nfe > last_nfe && st.nfe == 2 + 6 * (st.accepted + st.rejected),
            "{st:?}"
        );
        last = err;
        last_nfe = st.nfe;
    }
}

// ---------------------------------------------------------------- torchdiffeq fixtures
struct Fixture {
    w: Vec<f64>,
    c: Vec<f64>,
    x0: Vec<f64>,
    fixed: Vec<(String, usize, Vec<f64>)>,
    dopri5: Vec<(f64, f64, usize, Vec<f64>)>,
    dopri5_f32: Vec<(f64, f64, usize, Vec<f64>)>,
}

fn load() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ode_torchdiffeq.txt"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut fx = Fixture {
        w: vec![],
        c: vec![],
        x0: vec![],
        fixed: vec![],
        dopri5: vec![],
        dopri5_f32: vec![],
    };
    for line in text.lines() {
        let tok: Vec<&str> = line.split_whitespace().collect();
        let nums =
            |from: usize| -> Vec<f64> { tok[from..].iter().map(|s| s.parse().unwrap()).collect() };
        match tok[0] {
            "W" => fx.w = nums(1),
            "c" => fx.c = nums(1),
            "x0" => fx.x0 = nums(1),
            "fixed" => fx
                .fixed
                .push((tok[1].to_string(), tok[2].parse().unwrap(), nums(3))),
            "dopri5" | "dopri5_f32" => (if tok[0] == "dopri5" {
                &mut fx.dopri5
            } else {
                &mut fx.dopri5_f32
            })
            .push((
                tok[1].parse().unwrap(),
                tok[2].parse().unwrap(),
                tok[3].parse().unwrap(),
                nums(4),
            )),
            other => panic!("unknown fixture record {other}"),
        }
    }
    assert_eq!((fx.w.len(), fx.c.len(), fx.x0.len()), (16, 4, 32));
    assert_eq!(
        (fx.fixed.len(), fx.dopri5.len(), fx.dopri5_f32.len()),
        (8, 2, 1)
    );
    fx
}

/// v(x, t) = tanh(W x + c t), per row of 4.
fn tanh_field<'a>(w: &'a [f64], c: &'a [f64]) -> impl FnMut(f64, &[f64], &mut [f64]) + 'a {
    move |t, x, out| {
        for (xr, or) in x.chunks(4).zip(out.chunks_mut(4)) {
            for i in 0..4 {
                let mut s = 0.0;
                for j in 0..4 {
                    s += xr[j] * w[i * 4 + j];
                }
                or[i] = (s + c[i] * t).tanh();
            }
        }
    }
}

fn tanh_field_f32(w: &[f64], c: &[f64]) -> impl FnMut(f32, &[f32], &mut [f32]) {
    let w: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    let c: Vec<f32> = c.iter().map(|&v| v as f32).collect();
    move |t, x, out| {
        for (xr, or) in x.chunks(4).zip(out.chunks_mut(4)) {
            for i in 0..4 {
                let mut s = 0.0f32;
                for j in 0..4 {
                    s += xr[j] * w[i * 4 + j];
                }
                or[i] = (s + c[i] * t).tanh();
            }
        }
    }
}

fn method_for(name: &str, steps: usize) -> Method {
    match name {
        "euler" => Method::Euler { steps },
        "midpoint" => Method::Midpoint { steps },
        "rk4" => Method::Rk4ThreeEighths { steps },
        "rk4_classic" => Method::Rk4 { steps },
        other => panic!("unknown method {other}"),
    }
}

fn max_diff<T: Copy + Into<f64>>(a: &[T], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, y)| (x.into() - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn fixed_steps_match_torchdiffeq_f64() {
    let fx = load();
    for (name, steps, want) in &fx.fixed {
        let m = method_for(name, *steps);
        assert_eq!(m.name(), name);
        let mut x = fx.x0.clone();
        let mut ws = Workspace::new(8, 4).unwrap();
        let st = integrate(&m, &mut x, &mut ws, tanh_field(&fx.w, &fx.c)).unwrap();
        let d = max_diff(&x, want);
        eprintln!("{name} {steps} f64: max diff {d:e}");
        assert!(d < 1e-10, "{name} {steps}: max diff {d:e}");
        assert_eq!(st.accepted, *steps);
    }
}

#[test]
fn fixed_steps_match_torchdiffeq_f32() {
    let fx = load();
    for (name, steps, want) in &fx.fixed {
        let mut x: Vec<f32> = fx.x0.iter().map(|&v| v as f32).collect();
        let mut ws = Workspace::new(8, 4).unwrap();
        integrate(
            &method_for(name, *steps),
            &mut x,
            &mut ws,
            tanh_field_f32(&fx.w, &fx.c),
        )
        .unwrap();
        let d = max_diff(&x, want);
        eprintln!("{name} {steps} f32: max diff {d:e}");
        assert!(d < 1e-5, "{name} {steps} (f32): max diff {d:e}");
    }
}

#[test]
fn dopri5_matches_torchdiffeq_f64_with_same_nfe() {
    let fx = load();
    for (rtol, atol, nfe, want) in &fx.dopri5 {
        let mut x = fx.x0.clone();
        let mut ws = Workspace::new(8, 4).unwrap();
        let m = Method::Dopri5(Dopri5Options {
            rtol: *rtol,
            atol: *atol,
            ..Default::default()
        });
        let st = integrate(&m, &mut x, &mut ws, tanh_field(&fx.w, &fx.c)).unwrap();
        assert_eq!(st.nfe, *nfe, "rtol {rtol}: nfe {st:?} vs torchdiffeq {nfe}");
        let d = max_diff(&x, want);
        eprintln!(
            "dopri5 f64 rtol {rtol}: nfe {} (torchdiffeq {nfe}), max diff {d:e}",
            st.nfe
        );
        assert!(d < 1e-10, "rtol {rtol}: max diff {d:e}");
    }
}

#[test]
fn dopri5_f32_within_tolerance_of_torchdiffeq() {
    let fx = load();
    let run = |rtol: f64, atol: f64| {
        let mut x: Vec<f32> = fx.x0.iter().map(|&v| v as f32).collect();
        let mut ws = Workspace::new(8, 4).unwrap();
        let m = Method::Dopri5(Dopri5Options {
            rtol,
            atol,
            ..Default::default()
        });
        let st = integrate(&m, &mut x, &mut ws, tanh_field_f32(&fx.w, &fx.c)).unwrap();
        (x, st)
    };
    // Against torchdiffeq in float32: same steps, differences from f32 rounding only.
    let (rtol, atol, nfe, want) = &fx.dopri5_f32[0];
    let (x, st) = run(*rtol, *atol);
    assert_eq!(st.nfe, *nfe, "{st:?}");
    let d = max_diff(&x, want);
    eprintln!(
        "dopri5 f32 rtol {rtol}: nfe {}, max diff vs torchdiffeq f32 {d:e}",
        st.nfe
    );
    // The RMS sums are accumulated in f64 here, so step sizes differ in the last f32 bits.
    assert!(d < 1e-5, "vs torchdiffeq f32: max diff {d:e}");
    // Against torchdiffeq in float64 at the same tolerance: within the method's own error
    // (torchdiffeq float32 vs float64 differ by 1.2e-5 here; the global error is 4e-5).
    let (rtol, atol, _, want) = &fx.dopri5[0];
    let (x, _) = run(*rtol, *atol);
    let d = max_diff(&x, want);
    eprintln!("dopri5 f32 rtol {rtol}: max diff vs torchdiffeq f64 {d:e}");
    assert!(
        d < 5.0 * rtol.max(*atol),
        "vs torchdiffeq f64: max diff {d:e}"
    );
}

// ---------------------------------------------------------------- errors
#[test]
fn bad_sizes_and_settings_are_errors() {
    let mut ws = Workspace::<f32>::new(2, 3).unwrap();
    let mut x = vec![0.0f32; 5];
    let f = |_: f32, _: &[f32], o: &mut [f32]| o.fill(1.0);
    let e = integrate(&Method::Euler { steps: 2 }, &mut x, &mut ws, f).unwrap_err();
    assert_eq!(
        e,
        Error::Shape {
            what: "state buffer",
            expected: 6,
            got: 5
        }
    );
    assert!(e.to_string().contains("expected 6"), "{e}");
    let mut x = vec![0.0f32; 6];
    let e = integrate(&Method::Rk4 { steps: 0 }, &mut x, &mut ws, f).unwrap_err();
    assert!(
        matches!(e, Error::Config { .. }) && e.to_string().contains("steps"),
        "{e}"
    );
    for (rtol, atol) in [(-1.0, 1e-6), (f64::NAN, 1e-6), (0.0, 0.0)] {
        let m = Method::Dopri5(Dopri5Options {
            rtol,
            atol,
            ..Default::default()
        });
        assert!(matches!(
            integrate(&m, &mut x, &mut ws, f),
            Err(Error::Config { .. })
        ));
    }
    let m = Method::Dopri5(Dopri5Options {
        first_step: Some(0.0),
        ..Default::default()
    });
    assert!(matches!(
        integrate(&m, &mut x, &mut ws, f),
        Err(Error::Config { .. })
    ));
    assert!(Workspace::<f32>::new(usize::MAX, 2).is_err());
    // Valid call, state exact: x' = 1 from 0 gives 1.
    let st = integrate(&Method::Euler { steps: 3 }, &mut x, &mut ws, f).unwrap();
    assert_eq!(st.nfe, 3);
    assert!(x.iter().all(|&v| (v - 1.0).abs() < 1e-6), "{x:?}");
}

#[test]
fn non_finite_values_are_reported_with_row_and_component() {
    let mut ws = Workspace::<f64>::new(3, 2).unwrap();
    let nan_at = |t: f64, x: &[f64], o: &mut [f64]| {
        o.fill(0.1);
        if t > 0.4 {
            o[5] = f64::NAN; // row 2, component 1
        }
        let _ = x;
    };
    for m in [
        Method::Euler { steps: 4 },
        Method::Rk4ThreeEighths { steps: 4 },
        Method::Dopri5(Dopri5Options::default()),
    ] {
        let mut x = vec![0.5; 6];
        let e = integrate(&m, &mut x, &mut ws, nan_at).unwrap_err();
        match e {
            Error::NonFinite { row, col, .. } => {
                assert_eq!((row, col), (2, 1), "{}: {e}", m.name())
            }
            other => panic!("{}: expected NonFinite, got {other}", m.name()),
        }
    }
    let mut x = vec![0.5, f64::INFINITY, 0.0, 0.0, 0.0, 0.0];
    let e = integrate(&Method::Midpoint { steps: 2 }, &mut x, &mut ws, nan_at).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NonFinite {
                what: "initial state",
                row: 0,
                col: 1,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn dopri5_step_limits() {
    let mut ws = Workspace::<f64>::new(3, 2).unwrap();
    let mut x = X0_LIN.to_vec();
    let m = Method::Dopri5(Dopri5Options {
        rtol: 1e-12,
        atol: 1e-12,
        max_steps: 3,
        first_step: None,
    });
    let e = integrate(&m, &mut x, &mut ws, linear_field).unwrap_err();
    assert!(matches!(e, Error::TooManySteps { max_steps: 3, .. }), "{e}");
    // A field that blows up at t = 0.5 (x' = 1/(0.5 − t)²): the step size must collapse.
    let mut ws = Workspace::<f64>::new(1, 1).unwrap();
    let mut x = vec![0.0];
    let m = Method::Dopri5(Dopri5Options {
        rtol: 1e-6,
        atol: 1e-6,
        max_steps: 1_000_000,
        first_step: None,
    });
    let e = integrate(&m, &mut x, &mut ws, |t: f64, _: &[f64], o: &mut [f64]| {
        let d = 0.5 - t;
        o[0] = 1.0 / (d * d);
    })
    .unwrap_err();
    assert!(matches!(e, Error::StepUnderflow { .. }), "{e}");
    assert!(e.to_string().contains("underflow"));
}
