//! Preprocessing kernels: sklearn quantile fixtures, semantics cases, and f64 references.
mod common;
use common::Rng;
use runtime::prep::{self, Quantile};

struct QCase {
    name: String,
    normal: bool,
    nq: usize,
    n_cols: usize,
    n_rows: usize,
    fields: std::collections::HashMap<String, Vec<f64>>,
}

fn load_fixture() -> Vec<QCase> {
    let text = include_str!("fixtures/quantile.txt");
    let mut cases: Vec<QCase> = vec![];
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let key = it.next().unwrap();
        if key == "case" {
            let v: Vec<&str> = it.collect();
            cases.push(QCase {
                name: v[0].to_string(),
                normal: v[1] == "normal",
                nq: v[2].parse().unwrap(),
                n_cols: v[3].parse().unwrap(),
                n_rows: v[4].parse().unwrap(),
                fields: Default::default(),
            });
        } else {
            let vals = it.map(|s| s.parse::<f64>().unwrap()).collect();
            cases.last_mut().unwrap().fields.insert(key.to_string(), vals);
        }
    }
    cases
}

#[test]
fn quantile_matches_sklearn_fixtures() {
    let cases = load_fixture();
    assert_eq!(cases.len(), 4);
    for c in &cases {
        let f = |k: &str| c.fields[k].iter().map(|&v| v as f32).collect::<Vec<f32>>();
        let (quantiles, references) = (f("quantiles"), f("references"));
        let q = Quantile { n_quantiles: c.nq, quantiles: &quantiles, references: &references, normal: c.normal, bounds_threshold: 1e-7 };
        // Put the columns at offsets 1, 2, 4 of a 5-wide row to exercise `cols`.
        let cols = [1u32, 2, 4];
        let stride = 5;
        for (input, expect, inverse) in [("x", "fwd", false), ("y", "inv", true)] {
            let src = &c.fields[input];
            let want = &c.fields[expect];
            let mut data = vec![-7.0f32; c.n_rows * stride];
            for r in 0..c.n_rows {
                for (i, &col) in cols.iter().enumerate() {
                    data[r * stride + col as usize] = src[r * c.n_cols + i] as f32;
                }
            }
            if inverse {
                prep::quantile_inverse(&q, c.n_rows, &mut data, stride, &cols);
            } else {
                prep::quantile_forward(&q, c.n_rows, &mut data, stride, &cols);
            }
            for r in 0..c.n_rows {
                assert_eq!(data[r * stride], -7.0);
                assert_eq!(data[r * stride + 3], -7.0);
                for (i, &col) in cols.iter().enumerate() {
                    let got = data[r * stride + col as usize] as f64;
                    let w = want[r * c.n_cols + i];
                    let tol = 1.2e-7 * w.abs() + 1e-12;
                    assert!(
                        (got - w).abs() <= tol,
                        "{} {expect} row {r} col {i}: input {} → {got}, sklearn {w}",
                        c.name,
                        src[r * c.n_cols + i]
                    );
                }
            }
        }
    }
}

#[test]
fn quantile_semantics() {
    // Tied quantiles map to the midpoint of the tie; the ends are exact; beyond is clamped.
    let qs = [0.0f32, 1.0, 1.0, 1.0, 2.0];
    let refs = [0.0f32, 0.25, 0.5, 0.75, 1.0];
    let uni = Quantile { n_quantiles: 5, quantiles: &qs, references: &refs, normal: false, bounds_threshold: 1e-7 };
    let mut d = [1.0f32, 0.0, 2.0, -5.0, 9.0, 0.5, 1.5];
    prep::quantile_forward(&uni, 7, &mut d, 1, &[0]);
    assert_eq!(d, [0.5, 0.0, 1.0, 0.0, 1.0, 0.125, 0.875]);
    let mut d = [0.0f32, 1.0, 0.5, 0.125, 0.875];
    prep::quantile_inverse(&uni, 5, &mut d, 1, &[0]);
    assert_eq!(d, [0.0, 2.0, 1.0, 0.5, 1.5]);

    let nrm = Quantile { normal: true, ..uni };
    let (lo, hi) = prep::quantile_clip(1e-7);
    assert!((lo + 5.199337582).abs() < 1e-8 && (hi - 5.199337582).abs() < 1e-8, "{lo} {hi}");
    let mut d = [1.0f32, -5.0, 9.0, 0.0, 2.0, 0.5];
    prep::quantile_forward(&nrm, 6, &mut d, 1, &[0]);
    assert_eq!(d[0], 0.0);
    assert_eq!(&d[1..5], &[lo as f32, hi as f32, lo as f32, hi as f32]);
    assert!((d[5] as f64 - runtime::math::norm_ppf(0.125)).abs() < 1e-6);
    // Inverse: u = Φ(y); u within the threshold of 0 or 1 → first / last quantile.
    let mut d = [-6.0f32, 6.0, 0.0, -5.3];
    prep::quantile_inverse(&nrm, 4, &mut d, 1, &[0]);
    assert_eq!(d, [0.0, 2.0, 1.0, 0.0]);
    // NaN passes through.
    let mut d = [f32::NAN];
    prep::quantile_forward(&nrm, 1, &mut d, 1, &[0]);
    assert!(d[0].is_nan());
}

#[test]
fn logit_roundtrip_and_reference() {
    let mut rng = Rng::new(5);
    let x = rng.vec(200, 0.001, 0.999);
    for scale in [1.0f32, 0.5, 3.0] {
        let mut d = x.clone();
        prep::logit_forward(scale, 100, &mut d, 2, &[1]);
        for i in 0..200 {
            let want = if i % 2 == 1 { scale as f64 * ((x[i] as f64) / (1.0 - x[i] as f64)).ln() } else { x[i] as f64 };
            assert!((d[i] as f64 - want).abs() <= 1e-7 * want.abs().max(1e-6), "{} vs {want}", d[i]);
        }
        prep::logit_inverse(scale, 100, &mut d, 2, &[1]);
        for i in 0..200 {
            assert!((d[i] - x[i]).abs() <= 2e-7, "{} vs {}", d[i], x[i]);
        }
    }
}

#[test]
fn layernorm_reference() {
    let mut rng = Rng::new(9);
    let (rows, width, stride) = (5, 23, 27);
    let x = rng.vec(rows * stride, -3.0, 5.0);
    let g = rng.vec(width, 0.5, 1.5);
    let b = rng.vec(width, -1.0, 1.0);
    for (gamma, beta) in [(None, None), (Some(&g[..]), Some(&b[..]))] {
        let mut d = x.clone();
        prep::layernorm(rows, width, &mut d, stride, gamma, beta, 1e-5);
        for r in 0..rows {
            let row: Vec<f64> = x[r * stride..r * stride + width].iter().map(|&v| v as f64).collect();
            let m = row.iter().sum::<f64>() / width as f64;
            let v = row.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / width as f64;
            for j in 0..width {
                let mut want = (row[j] - m) / (v + 1e-5).sqrt();
                if gamma.is_some() {
                    want = want * g[j] as f64 + b[j] as f64;
                }
                assert!((d[r * stride + j] as f64 - want).abs() < 1e-6 * want.abs().max(1.0));
            }
            for j in width..stride {
                assert_eq!(d[r * stride + j], x[r * stride + j]);
            }
        }
    }
}

#[test]
fn small_ops() {
    // affine_columns
    let mut d = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    prep::affine_columns(2, &mut d, 3, &[0, 2], &[2.0, -1.0], &[1.0, 0.5]);
    assert_eq!(d, [3.0, 2.0, -2.5, 9.0, 5.0, -5.5]);
    // matmul_small with subtraction: y = (x − s)·m
    let x = [1.0f32, 2.0, 9.0, 3.0, 4.0, 9.0];
    let m = [1.0f32, 2.0, 3.0, 4.0];
    let mut y = [0.0f32; 4];
    prep::matmul_small(2, &x, 3, 2, &m, Some(&[1.0, 1.0]), &mut y, 2);
    assert_eq!(y, [0.0 * 1.0 + 1.0 * 3.0, 0.0 * 2.0 + 1.0 * 4.0, 2.0 * 1.0 + 3.0 * 3.0, 2.0 * 2.0 + 3.0 * 4.0]);
    // copy_columns
    let src = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut dst = [0.0f32; 8];
    prep::copy_columns(2, &src, 3, 1, 2, &mut dst, 4, 2);
    assert_eq!(dst, [0.0, 0.0, 2.0, 3.0, 0.0, 0.0, 5.0, 6.0]);
    // add
    let mut y = [0.0f32; 4];
    prep::add(2, 2, &src, 3, &[10.0, 20.0, 30.0, 40.0], 2, &mut y, 2);
    assert_eq!(y, [11.0, 22.0, 34.0, 45.0]);
    // scale_shift
    let mut d = [1.0f32, 2.0, 7.0, 3.0, 4.0, 7.0];
    prep::scale_shift(2, 2, &mut d, 3, &[2.0, 3.0], &[1.0, -1.0]);
    assert_eq!(d, [3.0, 5.0, 7.0, 7.0, 11.0, 7.0]);
}

/// `mul` against the f64 product rounded once to f32: the product of two f32 values is exact in
/// f64, so the two must agree bit for bit (the kernel has no tier-specific path: plain f32
/// multiplications, one per value, the same on every tier).
#[test]
fn mul_matches_the_f64_product_bit_for_bit() {
    let specials = [0.0f32, -0.0, 1.0, -1.0, f32::MIN_POSITIVE, 1e-40, -3.0e38, f32::INFINITY, f32::NAN, 0.5, 3.0];
    let (rows, width, a_stride, b_stride, y_stride) = (37, 19, 21, 19, 32);
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let e = (s % 60) as i32 - 30;
        let m = ((s >> 20) % 2_000_001) as f32 / 1e6 - 1.0;
        m * 2f32.powi(e)
    };
    let mut a = vec![7.0f32; rows * a_stride];
    let mut b = vec![7.0f32; rows * b_stride];
    for r in 0..rows {
        for j in 0..width {
            a[r * a_stride + j] = next();
            b[r * b_stride + j] = next();
        }
    }
    for (i, &v) in specials.iter().enumerate() {
        a[i] = v;
        b[b_stride + i] = v;
        b[i] = specials[specials.len() - 1 - i];
    }
    let mut y = vec![-9.0f32; rows * y_stride];
    prep::mul(rows, width, &a, a_stride, &b, b_stride, &mut y, y_stride);
    for r in 0..rows {
        for j in 0..width {
            let (u, v) = (a[r * a_stride + j], b[r * b_stride + j]);
            let want = (f64::from(u) * f64::from(v)) as f32;
            let got = y[r * y_stride + j];
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "row {r} col {j}: {u:e} * {v:e} = {got:e}, f64 reference {want:e}"
            );
        }
        // Padding columns of the output row are not written.
        assert!(y[r * y_stride + width..(r + 1) * y_stride].iter().all(|&x| x == -9.0));
    }
}
