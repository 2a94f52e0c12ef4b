//! `act::apply` (every activation, softmax included) on every tier against f64 references.
mod common;
use common::{act_tol, all_activations, Rng};
use runtime::{act, isa, Activation};

#[test]
fn activations_match_f64() {
    let mut rng = Rng::new(11);
    let (rows, width, stride) = (9, 37, 41);
    let mut x = rng.vec(rows * stride, -12.0, 12.0);
    // Include special points.
    x[..8].copy_from_slice(&[0.0, -0.0, 1e-6, -1e-6, 0.3, -0.3, 20.0, -20.0]);
    for tier in isa::supported() {
        for a in all_activations() {
            let mut y = x.clone();
            act::apply(tier, a, rows, width, &mut y, stride);
            let mut worst = 0.0f64;
            for r in 0..rows {
                let row: Vec<f64> = x[r * stride..r * stride + width].iter().map(|&v| v as f64).collect();
                let want: Vec<f64> = if a == Activation::Softmax {
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.iter().map(|v| v / s).collect()
                } else {
                    row.iter().map(|&v| act::scalar_f64(a, v)).collect()
                };
                for j in 0..width {
                    let got = y[r * stride + j] as f64;
                    let tol = if a == Activation::Softmax { 2e-6 * want[j] + 1e-12 } else { act_tol(row[j], want[j]) };
                    let err = (got - want[j]).abs();
                    worst = worst.max(err / tol);
                    assert!(err <= tol, "{tier} {a:?} x = {}: got {got}, expected {} (tol {tol:e})", row[j], want[j]);
                }
                // Gap between rows untouched.
                for j in width..stride {
                    assert_eq!(y[r * stride + j], x[r * stride + j], "{tier} {a:?}: wrote outside the row");
                }
            }
            eprintln!("{tier:>8} {a:?}: worst error / tolerance {worst:.2}");
        }
    }
}

#[test]
fn activations_dense_grid() {
    // A dense grid per activation, tighter region checks.
    let n = 200_001;
    let xs: Vec<f32> = (0..n).map(|i| -15.0 + 30.0 * i as f32 / (n - 1) as f32).collect();
    for tier in isa::supported() {
        for a in all_activations().into_iter().filter(|a| *a != Activation::Softmax) {
            let mut y = xs.clone();
            act::apply(tier, a, 1, n, &mut y, n);
            for (&x, &v) in xs.iter().zip(&y) {
                let want = act::scalar_f64(a, x as f64);
                let tol = act_tol(x as f64, want);
                assert!((v as f64 - want).abs() <= tol, "{tier} {a:?}({x}) = {v}, expected {want}");
            }
        }
    }
}

#[test]
fn softmax_is_stable_and_normalised() {
    for tier in isa::supported() {
        let mut v = vec![1000.0f32, 1001.0, 999.0, -1e30, 1000.5];
        act::apply(tier, Activation::Softmax, 1, 5, &mut v, 5);
        let s: f32 = v.iter().sum();
        assert!((s - 1.0).abs() < 1e-6, "{tier}: sum {s}");
        assert!(v.iter().all(|x| x.is_finite()));
        assert_eq!(v[3], 0.0);
        // Rows of width 1 and wider than one vector.
        let mut one = vec![5.0f32];
        act::apply(tier, Activation::Softmax, 1, 1, &mut one, 1);
        assert_eq!(one[0], 1.0);
    }
}
