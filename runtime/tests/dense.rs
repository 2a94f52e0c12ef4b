//! The dense kernel on every supported tier against an f64 reference: odd sizes, both paths
//! (row blocks and leftover rows), every activation, every residual mode, strided buffers.
mod common;
use common::{act_tol, all_activations, Rng};
use runtime::dense::{self, Dense, Residual, PANEL};
use runtime::{act, isa, Activation};

const SENTINEL: f32 = 12345.0;

struct Case {
    n_in: usize,
    n_out: usize,
    rows: usize,
    x: Vec<f32>,
    xs: usize,
    w: Vec<f32>, // n_in × n_out row-major
    b: Vec<f32>,
    r: Vec<f32>,
    rs: usize,
}

fn case(rng: &mut Rng, n_in: usize, n_out: usize, rows: usize) -> Case {
    let xs = n_in + 3;
    let rs = n_out + 5;
    let scale = 2.0 / (n_in as f32).sqrt();
    Case {
        n_in,
        n_out,
        rows,
        x: rng.vec(rows * xs, -2.0, 2.0),
        xs,
        w: rng.vec(n_in * n_out, -scale, scale),
        b: rng.vec(n_out, -0.5, 0.5),
        r: rng.vec(rows * rs, -1.0, 1.0),
        rs,
    }
}

fn check(tier: runtime::Tier, c: &Case, act: Activation, res: Residual) {
    let packed = dense::pack(&c.w, c.n_in, c.n_out);
    let bias = dense::pack_bias(&c.b, c.n_out);
    let d = Dense { n_in: c.n_in, n_out: c.n_out, kernel: &packed, bias: &bias, act, residual: res };
    let ys = dense::padded(c.n_out) + 7;
    let mut y = vec![SENTINEL; c.rows * ys];
    let residual = if res == Residual::None { None } else { Some((&c.r[..], c.rs)) };
    dense::dense(tier, &d, c.rows, &c.x, c.xs, &mut y, ys, residual);
    let what = format!("{tier} {}x{} rows {} {act:?} {res:?}", c.n_in, c.n_out, c.rows);
    for i in 0..c.rows {
        // f64 reference of the pre-activation and its rounding scale.
        let mut z = vec![0.0f64; c.n_out];
        let mut zscale = vec![0.0f64; c.n_out];
        for j in 0..c.n_out {
            let mut s = c.b[j] as f64;
            let mut a = s.abs();
            for k in 0..c.n_in {
                let t = c.x[i * c.xs + k] as f64 * c.w[k * c.n_out + j] as f64;
                s += t;
                a += t.abs();
            }
            let r = c.r[i * c.rs + j] as f64;
            if res == Residual::BeforeAct {
                s += r;
                a += r.abs();
            }
            z[j] = s;
            zscale[j] = a;
        }
        let zt: Vec<f64> = zscale.iter().map(|a| 6e-8 * (3.0 + c.n_in as f64 / 4.0) * a).collect();
        let out: Vec<f64> = if act == Activation::Softmax {
            let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        } else {
            z.iter().map(|&v| act::scalar_f64(act, v)).collect()
        };
        let ztmax = zt.iter().cloned().fold(0.0, f64::max);
        for j in 0..c.n_out {
            let mut want = out[j];
            let mut tol = if act == Activation::Softmax {
                want * (2.0 * ztmax + 2e-6) + 1e-9
            } else {
                2.0 * zt[j] + act_tol(z[j], want)
            };
            if res == Residual::AfterAct {
                want += c.r[i * c.rs + j] as f64;
                tol += 1.2e-7 * want.abs();
            }
            let got = y[i * ys + j] as f64;
            assert!((got - want).abs() <= tol, "{what}: y[{i}][{j}] = {got}, expected {want} (tol {tol:e})");
        }
        // Columns past the padded width are untouched.
        for j in dense::padded(c.n_out)..ys {
            assert_eq!(y[i * ys + j], SENTINEL, "{what}: wrote past the padded row at [{i}][{j}]");
        }
    }
}

#[test]
fn pack_layout() {
    let (n_in, n_out) = (3, 20);
    let w: Vec<f32> = (0..n_in * n_out).map(|i| i as f32 + 1.0).collect();
    let p = dense::pack(&w, n_in, n_out);
    assert_eq!(p.len(), 2 * n_in * PANEL);
    for pnl in 0..2 {
        for k in 0..n_in {
            for j in 0..PANEL {
                let col = pnl * PANEL + j;
                let want = if col < n_out { w[k * n_out + col] } else { 0.0 };
                assert_eq!(p[(pnl * n_in + k) * PANEL + j], want);
            }
        }
    }
}

#[test]
fn dense_all_tiers_sizes_activations_residuals() {
    let mut rng = Rng::new(42);
    let sizes = [
        (1, 1, 1),
        (7, 3, 5),
        (16, 16, 6),
        (3, 17, 13),
        (17, 33, 7),
        (64, 48, 12),
        (5, 150, 25),
        (129, 31, 1),
        (128, 128, 64),
        (200, 150, 70),
        (33, 129, 37),
    ];
    for &(n_in, n_out, rows) in &sizes {
        let c = case(&mut rng, n_in, n_out, rows);
        for tier in isa::supported() {
            for act in all_activations() {
                for res in [Residual::None, Residual::AfterAct, Residual::BeforeAct] {
                    check(tier, &c, act, res);
                }
            }
        }
    }
}

#[test]
fn dense_many_row_counts() {
    // Every row count 1..=70 (all remainders of every block size), one layer shape.
    let mut rng = Rng::new(7);
    for rows in 1..=70 {
        let c = case(&mut rng, 19, 40, rows);
        for tier in isa::supported() {
            check(tier, &c, Activation::Tanh, Residual::AfterAct);
        }
    }
}

#[test]
fn tiers_agree_closely() {
    // Different tiers differ only by rounding.
    let mut rng = Rng::new(3);
    let c = case(&mut rng, 128, 128, 64);
    let packed = dense::pack(&c.w, c.n_in, c.n_out);
    let bias = dense::pack_bias(&c.b, c.n_out);
    let d = Dense { n_in: 128, n_out: 128, kernel: &packed, bias: &bias, act: Activation::Tanh, residual: Residual::None };
    let mut outs = vec![];
    for tier in isa::supported() {
        let mut y = vec![0.0; 64 * 128];
        dense::dense(tier, &d, 64, &c.x, c.xs, &mut y, 128, None);
        outs.push(y);
    }
    for o in &outs[1..] {
        for (a, b) in o.iter().zip(&outs[0]) {
            assert!((a - b).abs() <= 2e-6, "{a} vs {b}");
        }
    }
}

#[test]
fn row_result_independent_of_batch_and_position() {
    // Reproducibility: a row's output is bit-identical whether it runs alone (streaming path)
    // or at any position of a 70-row batch (register-blocked path or leftover rows).
    let mut rng = Rng::new(21);
    for (n_in, n_out) in [(128, 128), (19, 40), (7, 150)] {
        let c = case(&mut rng, n_in, n_out, 70);
        let packed = dense::pack(&c.w, n_in, n_out);
        let bias = dense::pack_bias(&c.b, n_out);
        for act in [Activation::Tanh, Activation::GeluErf, Activation::Softmax] {
            let d = Dense { n_in, n_out, kernel: &packed, bias: &bias, act, residual: Residual::AfterAct };
            let ys = dense::padded(n_out);
            let mut per_tier = vec![];
            for tier in isa::supported() {
                let mut batch = vec![0.0f32; 70 * ys];
                dense::dense(tier, &d, 70, &c.x, c.xs, &mut batch, ys, Some((&c.r, c.rs)));
                for i in 0..70 {
                    let mut one = vec![0.0f32; ys];
                    dense::dense(tier, &d, 1, &c.x[i * c.xs..], c.xs, &mut one, ys, Some((&c.r[i * c.rs..], c.rs)));
                    for j in 0..n_out {
                        assert_eq!(
                            one[j].to_bits(),
                            batch[i * ys + j].to_bits(),
                            "{tier} {n_in}x{n_out} {act:?}: row {i} col {j} differs alone ({}) and in the batch ({})",
                            one[j],
                            batch[i * ys + j]
                        );
                    }
                }
                per_tier.push((tier, batch));
            }
            // Tiers with FMA (AVX-512, AVX2) are bit-identical to each other.
            let fma: Vec<_> = per_tier.iter().filter(|(t, _)| *t != runtime::Tier::Portable).collect();
            for w in fma.windows(2) {
                for i in 0..70 {
                    for j in 0..n_out {
                        assert_eq!(
                            w[0].1[i * ys + j].to_bits(),
                            w[1].1[i * ys + j].to_bits(),
                            "{} vs {}: {act:?} row {i} col {j}",
                            w[0].0,
                            w[1].0
                        );
                    }
                }
            }
        }
    }
}
