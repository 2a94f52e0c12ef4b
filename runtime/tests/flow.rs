//! The MAF kernel (`runtime::flow`) on every supported tier, against a scalar f64 reference of an
//! nflows MADE (residual blocks, context, batch norm) written here on the *unsorted* weights:
//! the forward direction and its log-det, the one-sweep inverse, and the D-pass inverse.
//!
//! * one-sweep inverse vs the D-pass inverse ([`flow::maf_naive`]): **bit-identical** on every
//!   tier (the sweep performs the same operations minus exact zeros);
//! * batch path vs row-by-row path, and any batch size / row position: bit-identical;
//! * AVX2 vs AVX-512: bit-identical;
//! * vs the f64 reference: `|x − x_ref| ≤ 2e-5·(1 + |x_ref|)` (inverse), `|y − y_ref| ≤
//!   1e-5·(1 + |y_ref|)` and `|logdet − ref| ≤ 2e-5·(1 + |ref|)` (forward).
mod common;
use common::Rng;
use runtime::flow::{
    self, Affine, ContextLayer, Elementwise, Made, MadeOp, Output, Scale, Shift, Src, Value,
};
use runtime::{isa, Activation, Tier};

/// An nflows-style MADE in its natural (unsorted) form.
struct Net {
    d: usize,
    c: usize,
    h: usize,
    deg: Vec<usize>, // hidden degrees
    w0: Vec<f32>,    // [h][d] masked
    b0: Vec<f32>,
    wc: Vec<f32>, // [h][c]
    bc: Vec<f32>,
    blocks: Vec<Block>,
    wf: Vec<f32>, // [m·d][h] masked
    bf: Vec<f32>,
    act: Activation,
    /// Parameters per feature.
    m: usize,
}

struct Block {
    bn0: (Vec<f32>, Vec<f32>), // (mul, add)
    w1: Vec<f32>,
    b1: Vec<f32>,
    wc: Vec<f32>,
    bc: Vec<f32>,
    bn1: (Vec<f32>, Vec<f32>),
    w2: Vec<f32>,
    b2: Vec<f32>,
}

fn net(rng: &mut Rng, d: usize, c: usize, h: usize, n_blocks: usize, act: Activation) -> Net {
    net_m(rng, d, c, h, n_blocks, act, 2)
}

/// A MADE giving `m` parameters per feature.
fn net_m(
    rng: &mut Rng,
    d: usize,
    c: usize,
    h: usize,
    n_blocks: usize,
    act: Activation,
    m: usize,
) -> Net {
    let deg: Vec<usize> = (0..h)
        .map(|i| i % (d - 1).max(1) + (d - 1).min(1))
        .collect();
    let masked = |rng: &mut Rng,
                  rows: usize,
                  cols: usize,
                  ok: &dyn Fn(usize, usize) -> bool,
                  s: f32|
     -> Vec<f32> {
        let mut w = rng.vec(rows * cols, -s, s);
        for r in 0..rows {
            for q in 0..cols {
                if !ok(r, q) {
                    w[r * cols + q] = 0.0;
                }
            }
        }
        w
    };
    let sh = 1.5 / (h as f32).sqrt();
    let w0 = masked(rng, h, d, &|r, q| deg[r] > q, 1.0);
    let mut blocks = Vec::new();
    for _ in 0..n_blocks {
        let bn = |rng: &mut Rng| (rng.vec(h, 0.6, 1.4), rng.vec(h, -0.3, 0.3));
        blocks.push(Block {
            bn0: bn(rng),
            w1: masked(rng, h, h, &|r, q| deg[r] >= deg[q], sh),
            b1: rng.vec(h, -0.2, 0.2),
            wc: rng.vec(h * c, -0.4, 0.4),
            bc: rng.vec(h, -0.2, 0.2),
            bn1: bn(rng),
            w2: masked(rng, h, h, &|r, q| deg[r] >= deg[q], sh),
            b2: rng.vec(h, -0.2, 0.2),
        });
    }
    Net {
        d,
        c,
        h,
        w0,
        b0: rng.vec(h, -0.2, 0.2),
        wc: rng.vec(h * c, -0.4, 0.4),
        bc: rng.vec(h, -0.2, 0.2),
        blocks,
        wf: masked(
            rng,
            m * d,
            h,
            &|r, q| r / m + 1 > deg[q],
            0.5 / (h as f32).sqrt(),
        ),
        bf: rng.vec(m * d, -0.3, 0.3),
        deg,
        act,
        m,
    }
}

fn act64(a: Activation, x: f64) -> f64 {
    runtime::act::scalar_f64(a, x)
}

fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f64], b: &[f32]) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|q| w[r * cols + q] as f64 * x[q])
                .sum::<f64>()
                + b[r] as f64
        })
        .collect()
}

/// The MADE's parameters `(u, shift)` per feature, in f64.
fn made64(n: &Net, x: &[f64], c: &[f64]) -> Vec<(f64, f64)> {
    let (h, d) = (n.h, n.d);
    let ctx0 = matvec(&n.wc, h, n.c, c, &n.bc);
    let mut hv: Vec<f64> = matvec(&n.w0, h, d, x, &n.b0)
        .iter()
        .zip(&ctx0)
        .map(|(a, b)| a + act64(n.act, *b))
        .collect();
    for b in &n.blocks {
        let t: Vec<f64> = (0..h)
            .map(|i| act64(n.act, hv[i] * b.bn0.0[i] as f64 + b.bn0.1[i] as f64))
            .collect();
        let cb = matvec(&b.wc, h, n.c, c, &b.bc);
        let t: Vec<f64> = matvec(&b.w1, h, h, &t, &b.b1)
            .iter()
            .zip(&cb)
            .map(|(a, b)| a + b)
            .collect();
        let t: Vec<f64> = (0..h)
            .map(|i| act64(n.act, t[i] * b.bn1.0[i] as f64 + b.bn1.1[i] as f64))
            .collect();
        let u = matvec(&b.w2, h, h, &t, &b.b2);
        hv = hv.iter().zip(&u).map(|(a, b)| a + b).collect();
    }
    let out = matvec(&n.wf, 2 * d, h, &hv, &n.bf);
    (0..d).map(|i| (out[2 * i], out[2 * i + 1])).collect()
}

fn scale64(u: f64) -> f64 {
    let sp = if u > 20.0 {
        u
    } else {
        u.max(0.0) + (-u.abs()).exp().ln_1p()
    };
    sp + 1e-3
}

/// The elementwise affine transform in f64: `s(u)` and `shift(t, inverse)`.
struct Affine64<'a> {
    scale: &'a dyn Fn(f64) -> f64,
    shift: &'a dyn Fn(f64, bool) -> f64,
}

const NFLOWS64: Affine64 = Affine64 {
    scale: &scale64,
    shift: &|t, _| t,
};

fn forward64(n: &Net, x: &[f64], c: &[f64]) -> (Vec<f64>, f64) {
    forward64_with(n, x, c, &NFLOWS64)
}

fn forward64_with(n: &Net, x: &[f64], c: &[f64], a: &Affine64) -> (Vec<f64>, f64) {
    let p = made64(n, x, c);
    let mut ld = 0.0;
    let y = (0..n.d)
        .map(|i| {
            let s = (a.scale)(p[i].0);
            ld += s.ln();
            s * x[i] + (a.shift)(p[i].1, false)
        })
        .collect();
    (y, ld)
}

fn inverse64(n: &Net, z: &[f64], c: &[f64]) -> Vec<f64> {
    inverse64_with(n, z, c, &NFLOWS64)
}

fn inverse64_with(n: &Net, z: &[f64], c: &[f64], a: &Affine64) -> Vec<f64> {
    let mut x = vec![0.0; n.d];
    for _ in 0..n.d {
        let p = made64(n, &x, c);
        x = (0..n.d)
            .map(|i| (z[i] - (a.shift)(p[i].1, true)) / (a.scale)(p[i].0))
            .collect();
    }
    x
}

/// The program: units sorted by degree, weights packed.
struct Packed {
    bounds: Vec<u32>,
    arrays: Vec<Vec<f32>>,
}

fn pack(n: &Net) -> Packed {
    let (h, d, c) = (n.h, n.d, n.c);
    let mut perm: Vec<usize> = (0..h).collect();
    perm.sort_by_key(|&u| n.deg[u]);
    let bounds: Vec<u32> = (0..d)
        .map(|k| n.deg.iter().filter(|&&g| g <= k).count() as u32)
        .collect();
    let value = Value { bounds: &bounds };
    let input_bounds: Vec<u32> = (0..d as u32).collect();
    let rows = |w: &[f32], cols: usize| -> Vec<f32> {
        perm.iter()
            .flat_map(|&u| w[u * cols..(u + 1) * cols].to_vec())
            .collect()
    };
    let both = |w: &[f32]| -> Vec<f32> {
        perm.iter()
            .flat_map(|&u| perm.iter().map(move |&v| w[u * h + v]))
            .collect()
    };
    let vec_p = |b: &[f32]| -> Vec<f32> {
        flow::with_slack(&perm.iter().map(|&u| b[u]).collect::<Vec<f32>>())
    };
    let mut arrays = vec![
        flow::pack_masked(&rows(&n.w0, d), d, &value, &input_bounds),
        vec_p(&n.b0),
        flow::pack_context(&rows(&n.wc, c), h, c),
        vec_p(&n.bc),
    ];
    for b in &n.blocks {
        arrays.push(vec_p(&b.bn0.0));
        arrays.push(vec_p(&b.bn0.1));
        arrays.push(flow::pack_masked(&both(&b.w1), h, &value, &bounds));
        arrays.push(vec_p(&b.b1));
        arrays.push(flow::pack_context(&rows(&b.wc, c), h, c));
        arrays.push(vec_p(&b.bc));
        arrays.push(vec_p(&b.bn1.0));
        arrays.push(vec_p(&b.bn1.1));
        arrays.push(flow::pack_masked(&both(&b.w2), h, &value, &bounds));
        arrays.push(vec_p(&b.b2));
    }
    let wf: Vec<f32> = (0..n.m * d)
        .flat_map(|r| perm.iter().map(move |&v| n.wf[r * h + v]))
        .collect();
    arrays.push(flow::pack_output(&wf, n.m, &value));
    arrays.push(flow::with_slack(&n.bf));
    Packed { bounds, arrays }
}

/// Runs `f` with the program of `n` (values: 0 = h, 1 = initial context term, then per block
/// a, t, context term).
fn with_made<R>(n: &Net, p: &Packed, f: impl FnOnce(&Made) -> R) -> R {
    let a = &p.arrays;
    let nb = n.blocks.len();
    let values: Vec<Value> = (0..2 + 3 * nb)
        .map(|_| Value { bounds: &p.bounds })
        .collect();
    let mut ctx_layers = vec![ContextLayer {
        dst: 1,
        weight: &a[2],
        bias: &a[3],
        act: n.act,
    }];
    let mut ops = vec![MadeOp::Masked {
        src: Src::Input,
        dst: 0,
        weight: &a[0],
        bias: &a[1],
        add: Some(1),
    }];
    for j in 0..nb {
        let o = 4 + 10 * j;
        let (va, vt, vc) = (2 + 3 * j, 3 + 3 * j, 4 + 3 * j);
        ctx_layers.push(ContextLayer {
            dst: vc,
            weight: &a[o + 4],
            bias: &a[o + 5],
            act: Activation::Linear,
        });
        ops.push(MadeOp::Map {
            src: 0,
            dst: va,
            affine: Some((&a[o], &a[o + 1])),
            act: n.act,
        });
        ops.push(MadeOp::Masked {
            src: Src::Value(va),
            dst: vt,
            weight: &a[o + 2],
            bias: &a[o + 3],
            add: Some(vc),
        });
        ops.push(MadeOp::Map {
            src: vt,
            dst: vt,
            affine: Some((&a[o + 6], &a[o + 7])),
            act: n.act,
        });
        ops.push(MadeOp::Masked {
            src: Src::Value(vt),
            dst: 0,
            weight: &a[o + 8],
            bias: &a[o + 9],
            add: Some(0),
        });
    }
    let out = Output {
        src: 0,
        params: n.m,
        weight: &a[4 + 10 * nb],
        bias: &a[5 + 10 * nb],
    };
    let made = Made {
        features: n.d,
        context: n.c,
        order: None,
        values: &values,
        context_layers: &ctx_layers,
        ops: &ops,
        output: out,
    };
    f(&made)
}

const NFLOWS: Elementwise = Elementwise::Affine(Affine {
    scale: Scale::Softplus {
        threshold: 20.0,
        eps: 1e-3,
    },
    scale_param: 0,
    shift_param: 1,
    clamp: None,
    shift: Shift::NONE,
});

fn run(
    tier: Tier,
    made: &Made,
    inverse: bool,
    rows: usize,
    x: &[f32],
    c: &[f32],
    scratch_rows: usize,
) -> (Vec<f32>, Vec<f32>) {
    run_with(tier, made, &NFLOWS, inverse, rows, x, c, scratch_rows)
}

#[allow(clippy::too_many_arguments)]
fn run_with(
    tier: Tier,
    made: &Made,
    t: &Elementwise,
    inverse: bool,
    rows: usize,
    x: &[f32],
    c: &[f32],
    scratch_rows: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (d, cc) = (made.features, made.context);
    let mut out = vec![f32::NAN; rows * (d + 1)];
    let mut ld = vec![0.25f32; rows * 2];
    let mut scratch = vec![f32::NAN; flow::scratch_len(made, scratch_rows)];
    flow::maf(
        tier,
        made,
        t,
        inverse,
        rows,
        x,
        d + 2,
        c,
        cc + 1,
        &mut out,
        d + 1,
        Some((&mut ld, 2)),
        &mut scratch,
    );
    let out = (0..rows)
        .flat_map(|r| out[r * (d + 1)..r * (d + 1) + d].to_vec())
        .collect();
    let ld = (0..rows).map(|r| ld[2 * r] - 0.25).collect();
    (out, ld)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// AVX2 and AVX-512 results (`(tier, first, second)` per tier) agree bit for bit, when the
/// machine has both; `what` names the two results.
fn avx_tiers_agree(by_tier: &[(Tier, Vec<f32>, Vec<f32>)], what: [&str; 2]) {
    let avx = |t: Tier| by_tier.iter().find(|b| b.0 == t);
    if let (Some(a), Some(b)) = (avx(Tier::Avx512), avx(Tier::Avx2Fma)) {
        assert_eq!(
            bits(&a.1),
            bits(&b.1),
            "AVX2 and AVX-512 {} differ",
            what[0]
        );
        assert_eq!(
            bits(&a.2),
            bits(&b.2),
            "AVX2 and AVX-512 {} differ",
            what[1]
        );
    }
}

#[test]
fn maf_matches_f64_reference_and_sweep_equals_d_passes_on_every_tier() {
    let mut rng = Rng::new(7);
    for (d, c, h, nb, act) in [
        (5, 3, 11, 1, Activation::Relu),
        (16, 12, 64, 2, Activation::Relu),
        (7, 2, 40, 2, Activation::Tanh),
        (3, 1, 9, 0, Activation::Silu),
    ] {
        let n = net(&mut rng, d, c, h, nb, act);
        let p = pack(&n);
        let rows = 37;
        let x = rng.vec(rows * (d + 2), -2.0, 2.0);
        let cv = rng.vec(rows * (c + 1), -1.0, 1.0);
        let f64s = |v: &[f32], r: usize, w: usize, s: usize| -> Vec<f64> {
            v[r * s..r * s + w].iter().map(|&a| a as f64).collect()
        };
        with_made(&n, &p, |made| {
            let mut by_tier = Vec::new();
            for tier in isa::supported() {
                let (y, ld) = run(tier, made, false, rows, &x, &cv, 32);
                let (xi, ldi) = run(tier, made, true, rows, &x, &cv, 32);
                let (mut worst_f, mut worst_l, mut worst_i) = (0.0f64, 0.0f64, 0.0f64);
                for r in 0..rows {
                    let (xr, cr) = (f64s(&x, r, d, d + 2), f64s(&cv, r, c, c + 1));
                    let (yr, ldr) = forward64(&n, &xr, &cr);
                    for i in 0..d {
                        worst_f =
                            worst_f.max((y[r * d + i] as f64 - yr[i]).abs() / (1.0 + yr[i].abs()));
                    }
                    worst_l = worst_l.max((ld[r] as f64 - ldr).abs() / (1.0 + ldr.abs()));
                    let xr_inv = inverse64(&n, &xr, &cr);
                    for i in 0..d {
                        worst_i = worst_i.max(
                            (xi[r * d + i] as f64 - xr_inv[i]).abs() / (1.0 + xr_inv[i].abs()),
                        );
                    }
                    // The inverse's log-det is minus the forward's at the result.
                    let (_, ld_at) = forward64(&n, &xr_inv, &cr);
                    assert!(
                        (ldi[r] as f64 + ld_at).abs() <= 2e-5 * (1.0 + ld_at.abs()),
                        "{tier} d={d}: inverse logdet {} vs {}",
                        ldi[r],
                        -ld_at
                    );
                }
                println!("{tier:<9} D={d:<2} H={h:<3} blocks={nb}: forward {worst_f:.1e}, logdet {worst_l:.1e}, inverse {worst_i:.1e}");
                assert!(
                    worst_f <= 1e-5 && worst_l <= 2e-5 && worst_i <= 2e-5,
                    "{tier} D={d}: forward {worst_f:e}, logdet {worst_l:e}, inverse {worst_i:e}"
                );

                // The sweep equals the D-pass inverse bit for bit.
                let mut naive = vec![f32::NAN; rows * (d + 1)];
                let mut scratch = vec![f32::NAN; flow::scratch_len(made, 16)];
                flow::maf_naive(
                    tier,
                    made,
                    &NFLOWS,
                    rows,
                    &x,
                    d + 2,
                    &cv,
                    c + 1,
                    &mut naive,
                    d + 1,
                    &mut scratch,
                );
                let naive: Vec<f32> = (0..rows)
                    .flat_map(|r| naive[r * (d + 1)..r * (d + 1) + d].to_vec())
                    .collect();
                assert_eq!(
                    bits(&naive),
                    bits(&xi),
                    "{tier} D={d}: one-sweep and D-pass inverses differ"
                );

                // Row by row, other batch sizes and sub-tiles: the same bits.
                for inverse in [false, true] {
                    let (full, full_ld) = if inverse { (&xi, &ldi) } else { (&y, &ld) };
                    for (r0, nr, sr) in [
                        (0, 1, 1),
                        (5, 3, 32),
                        (3, 17, 16),
                        (1, 36, 32),
                        (0, 37, 1),
                        (2, 20, 16),
                    ] {
                        let (part, part_ld) = run(
                            tier,
                            made,
                            inverse,
                            nr,
                            &x[r0 * (d + 2)..],
                            &cv[r0 * (c + 1)..],
                            sr,
                        );
                        assert_eq!(
                            bits(&part),
                            bits(&full[r0 * d..(r0 + nr) * d]),
                            "{tier} D={d} inverse={inverse}: rows {r0}+{nr} (scratch {sr})"
                        );
                        assert_eq!(
                            bits(&part_ld),
                            bits(&full_ld[r0..r0 + nr]),
                            "{tier} D={d} inverse={inverse}: logdet rows {r0}+{nr}"
                        );
                    }
                }
                by_tier.push((tier, y, xi));
            }
            avx_tiers_agree(&by_tier, ["forward", "inverse"]);
        });
    }
}

/// Rational-quadratic splines (nflows and zuko styles): the one-sweep inverse equals the D-pass
/// inverse bit for bit, every batch split and sub-tile gives the same bits, AVX2 equals
/// AVX-512, and the inverse undoes the forward transform (values inside and outside the
/// spline's interval, log-dets opposite). The f64 comparison with the libraries is in
/// tests/flows.rs and the transpiler's reference.
#[test]
fn spline_maf_sweep_equals_d_passes_and_inverts_on_every_tier() {
    let mut rng = Rng::new(11);
    let styles = [
        flow::SplineStyle::Nflows {
            min_width: 1e-3,
            min_height: 1e-2,
            min_derivative: 1e-3,
            end_logit: ((1.0f64 - 1e-3).exp() - 1.0).ln() as f32,
        },
        flow::SplineStyle::Zuko {
            ln_slope: (1e-3f32).ln(),
        },
    ];
    for (style, (d, c, h, k)) in styles.into_iter().zip([(6, 3, 20, 5), (5, 2, 16, 8)]) {
        let sp = Elementwise::Spline(flow::Spline {
            bins: k,
            bound: 2.0,
            divisor: 1.0,
            style,
        });
        let n = net_m(&mut rng, d, c, h, 1, Activation::Relu, 3 * k - 1);
        let p = pack(&n);
        let rows = 37;
        let x = rng.vec(rows * (d + 2), -2.5, 2.5);
        let cv = rng.vec(rows * (c + 1), -1.0, 1.0);
        with_made(&n, &p, |made| {
            let mut by_tier = Vec::new();
            for tier in isa::supported() {
                let (xi, ldi) = run_with(tier, made, &sp, true, rows, &x, &cv, 32);
                // Forward of the inverse gives the input back, with the opposite log-det.
                let xi_rows: Vec<f32> = (0..rows)
                    .flat_map(|r| {
                        let mut v = xi[r * d..(r + 1) * d].to_vec();
                        v.extend([0.0, 0.0]);
                        v
                    })
                    .collect();
                let (back, ldf) = run_with(tier, made, &sp, false, rows, &xi_rows, &cv, 32);
                for r in 0..rows {
                    for i in 0..d {
                        let (want, got) = (x[r * (d + 2) + i], back[r * d + i]);
                        assert!(
                            (want - got).abs() <= 2e-4 * (1.0 + want.abs()),
                            "{tier} {style:?}: row {r} feature {i}: {got} back for {want}"
                        );
                    }
                    assert!(
                        (ldi[r] + ldf[r]).abs() <= 2e-4 * (1.0 + ldf[r].abs()),
                        "{tier} {style:?}: log-dets {} and {}",
                        ldi[r],
                        ldf[r]
                    );
                }
                let mut naive = vec![f32::NAN; rows * (d + 1)];
                let mut scratch = vec![f32::NAN; flow::scratch_len(made, 16)];
                flow::maf_naive(
                    tier,
                    made,
                    &sp,
                    rows,
                    &x,
                    d + 2,
                    &cv,
                    c + 1,
                    &mut naive,
                    d + 1,
                    &mut scratch,
                );
                let naive: Vec<f32> = (0..rows)
                    .flat_map(|r| naive[r * (d + 1)..r * (d + 1) + d].to_vec())
                    .collect();
                assert_eq!(
                    bits(&naive),
                    bits(&xi),
                    "{tier} {style:?}: one-sweep and D-pass inverses differ"
                );
                for (r0, nr, sr) in [(0, 1, 1), (5, 3, 32), (3, 17, 16), (0, 37, 1)] {
                    let (part, part_ld) = run_with(
                        tier,
                        made,
                        &sp,
                        true,
                        nr,
                        &x[r0 * (d + 2)..],
                        &cv[r0 * (c + 1)..],
                        sr,
                    );
                    assert_eq!(
                        bits(&part),
                        bits(&xi[r0 * d..(r0 + nr) * d]),
                        "{tier} rows {r0}+{nr}"
                    );
                    assert_eq!(
                        bits(&part_ld),
                        bits(&ldi[r0..r0 + nr]),
                        "{tier} log-det rows {r0}+{nr}"
                    );
                }
                by_tier.push((tier, xi, ldf));
            }
            avx_tiers_agree(&by_tier, ["spline inverse", "spline log-det"]);
        });
    }
}

#[test]
fn gather_and_normal_log_prob() {
    let src = [1.0f32, 2.0, 3.0, 9.0, 4.0, 5.0, 6.0, 9.0];
    let mut dst = [0.0f32; 6];
    flow::gather_columns(2, &src, 4, &[2, 0, 1], &mut dst, 3);
    assert_eq!(dst, [3.0, 1.0, 2.0, 6.0, 4.0, 5.0]);
    let z = [0.5f32, -1.0, 2.0, 0.0];
    let ld = [0.1f32, 0.2];
    let mut out = [0.0f32; 4];
    let log_z = (std::f64::consts::TAU.ln()) as f32; // width 2: 2/2 · ln 2π
    flow::normal_log_prob(2, 2, &z, 2, log_z, &ld, 1, &mut out, 2);
    let want0 = -0.5 * (0.25 + 1.0) - std::f64::consts::TAU.ln() + 0.1;
    let want1 = -0.5 * 4.0 - std::f64::consts::TAU.ln() + 0.2;
    assert!(
        (out[0] as f64 - want0).abs() < 1e-6 && (out[2] as f64 - want1).abs() < 1e-6,
        "{out:?}"
    );
}

#[test]
#[should_panic(expected = "masked weight length")]
fn inconsistent_programs_are_rejected() {
    let bounds = [1u32, 2];
    let values = [Value { bounds: &bounds }];
    let w = vec![0.0f32; 3];
    let b = vec![0.0f32; 32];
    let ops = [MadeOp::Masked {
        src: Src::Input,
        dst: 0,
        weight: &w,
        bias: &b,
        add: None,
    }];
    let made = Made {
        features: 2,
        context: 0,
        order: None,
        values: &values,
        context_layers: &[],
        ops: &ops,
        output: Output {
            src: 0,
            params: 2,
            weight: &w,
            bias: &b,
        },
    };
    let mut out = [0.0f32; 2];
    let mut s = vec![0.0; 1000];
    flow::maf(
        isa::active(),
        &made,
        &NFLOWS,
        true,
        1,
        &[0.0, 0.0],
        2,
        &[],
        0,
        &mut out,
        2,
        None,
        &mut s,
    );
}

/// `torch.clamp(x, min, max)` in f64.
fn clamp64(x: f64, lo: f64, hi: f64) -> f64 {
    x.max(lo).min(hi)
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// FlashSim's affine variants (`MaskedAffineAutoregressiveTransformM` in nbd and FlowSim): the
/// sigmoid, clamped-softplus and atan scales, the shift offset and the shift clamp (forward only,
/// or both directions), against the f64 reference, forward with its log-det and the one-sweep
/// inverse, on every tier; the sweep equals the D-pass inverse bit for bit and the row-by-row path
/// the batch path.
#[test]
fn affine_scale_and_shift_variants_match_f64_on_every_tier() {
    let aff = |scale: Scale, clamp: Option<(f32, f32)>, shift: Shift| {
        Elementwise::Affine(Affine {
            scale,
            scale_param: 0,
            shift_param: 1,
            clamp,
            shift,
        })
    };
    fn sp(u: f64) -> f64 {
        (if u > 20.0 {
            u
        } else {
            u.max(0.0) + (-u.abs()).exp().ln_1p()
        }) + 0.05
    }
    // (name, kernel transform, f64 scale, f64 shift, tolerance: forward, log-det, inverse)
    type Case<'a> = (
        &'a str,
        Elementwise,
        &'a dyn Fn(f64) -> f64,
        &'a dyn Fn(f64, bool) -> f64,
        [f64; 3],
    );
    let cases: Vec<Case> = vec![
        (
            "sigmoid 1000·σ(u+1)+0.05, shift +7.906 clamped ±50 forward only (nbd)",
            aff(
                Scale::Sigmoid {
                    factor: 1000.0,
                    offset: 1.0,
                    eps: 0.05,
                },
                None,
                Shift {
                    offset: 7.906,
                    clamp: Some((-50.0, 50.0)),
                    clamp_inverse: false,
                },
            ),
            &|u| 1000.0 * sigmoid64(u + 1.0) + 0.05,
            &|t, inv| {
                let v = t + 7.906f32 as f64;
                if inv {
                    v
                } else {
                    clamp64(v, -50.0, 50.0)
                }
            },
            [1e-5, 2e-5, 2e-5],
        ),
        (
            "softplus+0.05 clamped [0, 1], shift −0.5414 clamped ±0.3 both ways",
            aff(
                Scale::Softplus {
                    threshold: 20.0,
                    eps: 0.05,
                },
                Some((0.0, 1.0)),
                Shift {
                    offset: -0.5414,
                    clamp: Some((-0.3, 0.3)),
                    clamp_inverse: true,
                },
            ),
            &|u| clamp64(sp(u), 0.0, 1.0),
            &|t, _| clamp64(t + (-0.5414f32) as f64, (-0.3f32) as f64, 0.3f32 as f64),
            [1e-5, 2e-5, 2e-5],
        ),
        (
            "softplus+0.05 clamped at most 0.8, shift clamped ±0.2 forward only",
            aff(
                Scale::Softplus {
                    threshold: 20.0,
                    eps: 0.05,
                },
                Some((f32::NEG_INFINITY, 0.8)),
                Shift {
                    offset: 0.0,
                    clamp: Some((-0.2, 0.2)),
                    clamp_inverse: false,
                },
            ),
            &|u| sp(u).min(0.8f32 as f64),
            &|t, inv| {
                if inv {
                    t
                } else {
                    clamp64(t, (-0.2f32) as f64, 0.2f32 as f64)
                }
            },
            [1e-5, 2e-5, 2e-5],
        ),
        (
            "atan 1000·atan(u/1000) clamped [0.001, 50], shift −1 (FlashSim)",
            aff(
                Scale::Atan { factor: 1000.0 },
                Some((0.001, 50.0)),
                Shift {
                    offset: -1.0,
                    clamp: None,
                    clamp_inverse: false,
                },
            ),
            &|u| clamp64(1000.0 * (u / 1000.0).atan(), 0.001f32 as f64, 50.0),
            &|t, _| t - 1.0,
            [1e-5, 2e-5, 1e-4],
        ),
        (
            "atan 0.3·atan(u/0.3) clamped [0.05, 0.4] (every branch of atan)",
            aff(Scale::Atan { factor: 0.3 }, Some((0.05, 0.4)), Shift::NONE),
            &|u| {
                let f = 0.3f32 as f64;
                clamp64(f * (u / f).atan(), 0.05f32 as f64, 0.4f32 as f64)
            },
            &|t, _| t,
            [1e-5, 2e-5, 1e-4],
        ),
    ];
    let mut rng = Rng::new(11);
    for (d, c, h, nb, act) in [
        (5, 3, 11, 1, Activation::Relu),
        (16, 12, 64, 2, Activation::Relu),
    ] {
        let n = net(&mut rng, d, c, h, nb, act);
        let p = pack(&n);
        let rows = 37;
        let x = rng.vec(rows * (d + 2), -2.0, 2.0);
        let cv = rng.vec(rows * (c + 1), -1.0, 1.0);
        let f64s = |v: &[f32], r: usize, w: usize, s: usize| -> Vec<f64> {
            v[r * s..r * s + w].iter().map(|&a| a as f64).collect()
        };
        with_made(&n, &p, |made| {
            for (name, t, s64, sh64, tol) in &cases {
                let a64 = Affine64 {
                    scale: *s64,
                    shift: *sh64,
                };
                let mut by_tier = Vec::new();
                for tier in isa::supported() {
                    let (y, ld) = run_with(tier, made, t, false, rows, &x, &cv, 32);
                    let (xi, ldi) = run_with(tier, made, t, true, rows, &x, &cv, 32);
                    let (mut wf, mut wl, mut wi) = (0.0f64, 0.0f64, 0.0f64);
                    for r in 0..rows {
                        let (xr, cr) = (f64s(&x, r, d, d + 2), f64s(&cv, r, c, c + 1));
                        let (yr, ldr) = forward64_with(&n, &xr, &cr, &a64);
                        for i in 0..d {
                            wf = wf.max((y[r * d + i] as f64 - yr[i]).abs() / (1.0 + yr[i].abs()));
                        }
                        wl = wl.max((ld[r] as f64 - ldr).abs() / (1.0 + ldr.abs()));
                        let xr_inv = inverse64_with(&n, &xr, &cr, &a64);
                        for i in 0..d {
                            wi = wi.max(
                                (xi[r * d + i] as f64 - xr_inv[i]).abs() / (1.0 + xr_inv[i].abs()),
                            );
                        }
                        let _ = ldi[r];
                    }
                    println!("{tier:<9} D={d:<2} {name}: forward {wf:.1e}, logdet {wl:.1e}, inverse {wi:.1e}");
                    assert!(
                        wf <= tol[0] && wl <= tol[1] && wi <= tol[2],
                        "{tier} D={d} {name}: forward {wf:e}, logdet {wl:e}, inverse {wi:e} (tolerance {tol:?})"
                    );
                    let mut naive = vec![f32::NAN; rows * (d + 1)];
                    let mut scratch = vec![f32::NAN; flow::scratch_len(made, 16)];
                    flow::maf_naive(
                        tier,
                        made,
                        t,
                        rows,
                        &x,
                        d + 2,
                        &cv,
                        c + 1,
                        &mut naive,
                        d + 1,
                        &mut scratch,
                    );
                    let naive: Vec<f32> = (0..rows)
                        .flat_map(|r| naive[r * (d + 1)..r * (d + 1) + d].to_vec())
                        .collect();
                    assert_eq!(bits(&naive), bits(&xi), "{tier} {name}: sweep vs D passes");
                    for inverse in [false, true] {
                        let full = if inverse { &xi } else { &y };
                        let (part, _) = run_with(
                            tier,
                            made,
                            t,
                            inverse,
                            3,
                            &x[5 * (d + 2)..],
                            &cv[5 * (c + 1)..],
                            1,
                        );
                        assert_eq!(
                            bits(&part),
                            bits(&full[5 * d..8 * d]),
                            "{tier} {name}: row by row"
                        );
                    }
                    by_tier.push((tier, y, xi));
                }
                avx_tiers_agree(
                    &by_tier,
                    [&format!("{name}: forward"), &format!("{name}: inverse")],
                );
            }
        });
    }
}

/// The kernels' `atan` polynomial against f64, over a wide grid.
#[test]
fn atan_polynomial_is_accurate() {
    let mut worst = 0.0f64;
    for i in -200_000..=200_000 {
        let x = (i as f32) * 1e-4 * (1.0 + (i as f32).abs() * 1e-4);
        let want = (x as f64).atan();
        let got = runtime::math::atan(x) as f64;
        worst = worst.max((got - want).abs() / want.abs().max(1e-30));
    }
    for x in [0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e-30] {
        let (got, want) = (runtime::math::atan(x), (x as f64).atan() as f32);
        assert!(
            (got - want).abs() <= 2.0 * f32::EPSILON * want.abs(),
            "atan({x}) = {got}, want {want}"
        );
    }
    assert!(runtime::math::atan(f32::NAN).is_nan());
    println!("atan: max relative error {worst:.2e}");
    assert!(worst < 3e-7, "atan: max relative error {worst:e}");
}

/// nflows' `LULinear` kernel: forward and the two triangular solves against f64, the inverse of
/// the forward, strides.
#[test]
fn lu_linear_matches_f64_and_inverts() {
    let mut rng = Rng::new(5);
    for d in [1usize, 3, 16, 40] {
        let mut lower = vec![0.0f32; d * d];
        let mut upper = vec![0.0f32; d * d];
        for i in 0..d {
            for j in 0..d {
                if j < i {
                    lower[i * d + j] = rng.uniform(-0.5, 0.5);
                } else if j == i {
                    lower[i * d + j] = 1.0;
                    upper[i * d + j] = rng.uniform(0.5, 1.5);
                } else {
                    upper[i * d + j] = rng.uniform(-0.5, 0.5) / (d as f32).sqrt();
                }
            }
        }
        let bias = rng.vec(d, -0.5, 0.5);
        let rows = 9;
        let (is, os) = (d + 3, d + 1);
        let x = rng.vec(rows * is, -2.0, 2.0);
        let mut y = vec![f32::NAN; rows * os];
        flow::lu_linear(rows, d, &lower, &upper, &bias, false, &x, is, &mut y, os);
        let mut back = vec![f32::NAN; rows * is];
        flow::lu_linear(rows, d, &lower, &upper, &bias, true, &y, os, &mut back, is);
        let mut inv = vec![f32::NAN; rows * os];
        flow::lu_linear(rows, d, &lower, &upper, &bias, true, &x, is, &mut inv, os);
        let (mut wf, mut wi, mut wr) = (0.0f64, 0.0f64, 0.0f64);
        for r in 0..rows {
            let xr: Vec<f64> = x[r * is..r * is + d].iter().map(|&v| v as f64).collect();
            // W = L·U in f64.
            let w = |i: usize, j: usize| -> f64 {
                (0..d)
                    .map(|k| lower[i * d + k] as f64 * upper[k * d + j] as f64)
                    .sum()
            };
            for i in 0..d {
                let want: f64 = (0..d).map(|j| w(i, j) * xr[j]).sum::<f64>() + bias[i] as f64;
                wf = wf.max((y[r * os + i] as f64 - want).abs() / (1.0 + want.abs()));
                wr = wr.max((back[r * is + i] as f64 - xr[i]).abs() / (1.0 + xr[i].abs()));
            }
            // The inverse of x: W·v = x − bias, checked through the residual.
            let v: Vec<f64> = inv[r * os..r * os + d].iter().map(|&a| a as f64).collect();
            for i in 0..d {
                let got: f64 = (0..d).map(|j| w(i, j) * v[j]).sum::<f64>() + bias[i] as f64;
                wi = wi.max((got - xr[i]).abs() / (1.0 + xr[i].abs()));
            }
        }
        println!(
            "LU-linear D={d}: forward {wf:.1e}, inverse residual {wi:.1e}, round trip {wr:.1e}"
        );
        assert!(
            wf < 2e-6 && wi < 2e-6 && wr < 2e-5,
            "D={d}: {wf:e} {wi:e} {wr:e}"
        );
    }
}
