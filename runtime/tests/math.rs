//! Polynomial special functions on every supported tier against f64 references.
#![allow(clippy::type_complexity)]
mod common;
use runtime::{isa, math};

type SliceFn = fn(runtime::Tier, &mut [f32]);

/// Max errors over a grid: (max |Δ|/max(|ref|, floor), max |Δ|).
fn errors(tier: runtime::Tier, f: SliceFn, reference: fn(f64) -> f64, xs: &[f32], floor: f64) -> (f64, f64) {
    let mut y = xs.to_vec();
    f(tier, &mut y);
    let (mut rel, mut abs) = (0.0f64, 0.0f64);
    for (&x, &v) in xs.iter().zip(&y) {
        let r = reference(x as f64);
        let d = (v as f64 - r).abs();
        assert!(d.is_finite(), "{tier}: non-finite at x = {x}: got {v}, expected {r}");
        rel = rel.max(d / r.abs().max(floor));
        abs = abs.max(d);
    }
    (rel, abs)
}

fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..=n).map(|i| lo + (hi - lo) * (i as f32 / n as f32)).collect()
}

#[test]
fn polynomials_match_f64_on_every_tier() {
    let n = 400_000;
    let log_grid: Vec<f32> = (0..=n).map(|i| 10f64.powf(-30.0 + 60.0 * i as f64 / n as f64) as f32).collect();
    let cases: [(&str, SliceFn, fn(f64) -> f64, Vec<f32>, f64, f64); 6] = [
        ("exp", math::exp_slice, f64::exp, grid(-87.0, 88.0, n), 0.0, 3e-7),
        ("log", math::log_slice, f64::ln, log_grid, 1.0, 3e-7),
        ("log near 1", math::log_slice, f64::ln, grid(0.5, 2.0, n), 0.0, 3e-7),
        ("tanh", math::tanh_slice, f64::tanh, grid(-20.0, 20.0, n), 0.0, 4e-7),
        ("sigmoid", math::sigmoid_slice, |x| 1.0 / (1.0 + (-x).exp()), grid(-80.0, 80.0, n), 0.0, 4e-7),
        ("erf", math::erf_slice, math::erf_f64, grid(-6.0, 6.0, n), 0.0, 3e-7),
    ];
    for tier in isa::supported() {
        for (name, f, r, xs, floor, bound) in &cases {
            // Odd length: exercises the tail path.
            let (rel, abs) = errors(tier, *f, *r, &xs[..xs.len() - 3], *floor);
            eprintln!("{tier:>8} {name:<10} max rel {rel:.2e}  max abs {abs:.2e}");
            assert!(rel <= *bound, "{tier}: {name}: max relative error {rel:e} > {bound:e}");
        }
    }
}

#[test]
fn special_values() {
    for tier in isa::supported() {
        let mut v = [f32::NEG_INFINITY, -200.0, 0.0, 200.0, f32::INFINITY, f32::NAN];
        math::exp_slice(tier, &mut v);
        assert_eq!(&v[..5], &[0.0, 0.0, 1.0, f32::INFINITY, f32::INFINITY], "{tier}");
        assert!(v[5].is_nan(), "{tier}: exp(NaN)");
        let mut v = [0.0, -1.0, 1.0, f32::INFINITY, f32::NAN];
        math::log_slice(tier, &mut v);
        assert_eq!(v[0], f32::NEG_INFINITY, "{tier}");
        assert!(v[1].is_nan() && v[4].is_nan(), "{tier}");
        assert_eq!(v[2], 0.0, "{tier}");
        assert_eq!(v[3], f32::INFINITY, "{tier}");
        let mut v = [f32::NEG_INFINITY, -30.0, -0.0, 30.0, f32::INFINITY, f32::NAN];
        math::tanh_slice(tier, &mut v);
        assert_eq!(&v[..5], &[-1.0, -1.0, -0.0, 1.0, 1.0], "{tier}");
        assert!(v[5].is_nan(), "{tier}: tanh(NaN)");
        let mut v = [f32::NEG_INFINITY, -200.0, 0.0, 200.0, f32::INFINITY];
        math::sigmoid_slice(tier, &mut v);
        assert_eq!(&v, &[0.0, 0.0, 0.5, 1.0, 1.0], "{tier}");
        let mut v = [f32::NEG_INFINITY, -10.0, 0.0, 10.0, f32::INFINITY];
        math::erf_slice(tier, &mut v);
        assert_eq!(&v, &[-1.0, -1.0, 0.0, 1.0, 1.0], "{tier}");
    }
}

#[test]
fn scalar_versions_agree_with_slices() {
    let xs = grid(-9.0, 9.0, 1001);
    let pairs: [(fn(f32) -> f32, SliceFn); 4] =
        [(math::exp, math::exp_slice), (math::tanh, math::tanh_slice), (math::sigmoid, math::sigmoid_slice), (math::erf, math::erf_slice)];
    for (s, f) in pairs {
        let mut y = xs.clone();
        f(runtime::Tier::Portable, &mut y);
        for (&x, &v) in xs.iter().zip(&y) {
            let w = s(x);
            assert!((w - v).abs() <= 4e-7 * v.abs().max(1e-30), "x = {x}: scalar {w} vs portable {v}");
        }
    }
}

// Reference values from scipy.special (erfc, ndtri), f64.
const ERFC_REF: [(f64, f64); 16] = [
    (1e-10, 0.999999999887162),
    (0.1, 0.8875370839817152),
    (0.5, 0.4795001221869535),
    (0.9, 0.20309178757716784),
    (1.0, 0.15729920705028516),
    (1.5, 0.03389485352468927),
    (1.99, 0.004888586800383002),
    (2.0, 0.004677734981047266),
    (2.5, 0.00040695201744495886),
    (3.0, 2.2090496998585445e-05),
    (3.68, 1.9472301716620202e-07),
    (4.5, 1.9661604415428878e-10),
    (6.0, 2.1519736712498913e-17),
    (10.0, 2.0884875837625446e-45),
    (20.0, 5.395865611607901e-176),
    (26.0, 5.663192408856145e-296),
];
const PPF_REF: [(f64, f64); 17] = [
    (1e-300, -37.0470962993612),
    (1e-100, -21.273453560965322),
    (1e-20, -9.262340089798409),
    (1e-10, -6.361340902404056),
    (9.999999977795539e-08, -5.199337582605575),
    (1e-07, -5.1993375821928165),
    (0.0001, -3.7190164854556804),
    (0.01, -2.3263478740408408),
    (0.02425, -1.972961051311885),
    (0.1, -1.2815515655446004),
    (0.3, -0.5244005127080409),
    (0.5, 0.0),
    (0.7, 0.5244005127080407),
    (0.97575, 1.972961051311885),
    (0.999, 3.090232306167813),
    (0.9999999, 5.199337582290661),
    (0.999999999999, 7.0344869100478356),
];

#[test]
fn f64_special_functions_match_scipy() {
    for (x, r) in ERFC_REF {
        let v = math::erfc_f64(x);
        assert!(((v - r) / r).abs() < 2e-14, "erfc({x}) = {v:e}, scipy {r:e}");
        let e = math::erf_f64(x);
        assert!((e - (1.0 - r)).abs() < 2e-16 * 4.0, "erf({x}) = {e:e}");
        assert!((math::erf_f64(-x) + e).abs() == 0.0, "erf is odd");
        assert!((math::erfc_f64(-x) - (2.0 - r)).abs() < 1e-15);
    }
    for (p, r) in PPF_REF {
        let v = math::norm_ppf(p);
        let tol = 1e-14 * r.abs().max(1.0);
        assert!((v - r).abs() < tol, "norm_ppf({p:e}) = {v:.17}, scipy {r:.17}");
    }
    assert_eq!(math::norm_ppf(0.0), f64::NEG_INFINITY);
    assert_eq!(math::norm_ppf(1.0), f64::INFINITY);
    // ppf ∘ cdf round trip on a grid.
    for i in 0..=2000 {
        let x = -8.0 + 16.0 * i as f64 / 2000.0;
        let back = math::norm_ppf(math::norm_cdf_f64(x));
        // In the upper tail cdf(x) is within 1e-16 of 1 only in absolute terms: the round trip
        // loses 1e-16/φ(x) there.
        let phi = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let tol = if x > 0.0 { 1e-12 + 4e-16 / phi } else { 1e-12 * x.abs().max(1.0) };
        assert!((back - x).abs() < tol, "ppf(cdf({x})) = {back}");
    }
}
