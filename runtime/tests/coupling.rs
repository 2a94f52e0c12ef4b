//! The coupling kernel (`runtime::flow::coupling`) on every supported tier: a ResidualNet
//! conditioner (batch norm, context gate, a block without either) with the affine and the
//! rational-quadratic spline elementwise transforms, against a scalar f64 reference of nflows'
//! coupling layer written here (affine), and the spline's forward and inverse against each
//! other. Any batch size and row position give the same bits, and AVX2 and AVX-512 agree bit for
//! bit.
mod common;
use common::Rng;
use runtime::flow::{
    self, padded, Affine, Coupling, Dense, Elementwise, NetBlock, Scale, Shift, Spline,
    SplineStyle, SLACK,
};
use runtime::{isa, Activation, Tier};

const D: usize = 7;
const C: usize = 3;
const H: usize = 10;
const ID: [u32; 3] = [1, 4, 6];
const TR: [u32; 4] = [0, 2, 5, 3];

/// `[n_out][n_in]` weights and their packed form.
struct Layer {
    w: Vec<f32>,
    b: Vec<f32>,
    packed: Vec<f32>,
    bias: Vec<f32>,
    n_in: usize,
}

fn layer(rng: &mut Rng, n_out: usize, n_in: usize, scale: f32) -> Layer {
    let w = rng.vec(n_out * n_in, -scale, scale);
    let b = rng.vec(n_out, -0.2, 0.2);
    let gp = padded(n_out);
    let mut packed = vec![0.0; n_in * gp + SLACK];
    for o in 0..n_out {
        for v in 0..n_in {
            packed[v * gp + o] = w[o * n_in + v];
        }
    }
    let bias = b.iter().copied().chain([0.0; SLACK]).collect();
    Layer {
        w,
        b,
        packed,
        bias,
        n_in,
    }
}

impl Layer {
    fn dense(&self) -> Dense<'_> {
        Dense {
            weight: &self.packed,
            bias: &self.bias,
        }
    }
    fn f64(&self, x: &[f64]) -> Vec<f64> {
        (0..self.b.len())
            .map(|o| {
                let row = &self.w[o * self.n_in..(o + 1) * self.n_in];
                row.iter()
                    .zip(x)
                    .fold(self.b[o] as f64, |y, (&w, &x)| y + w as f64 * x)
            })
            .collect()
    }
}

/// A block: `(batch norms (mul, add), linear layers, gate)`.
type Block = (Option<[(Vec<f32>, Vec<f32>); 2]>, [Layer; 2], Option<Layer>);

struct Net {
    initial: Layer,
    blocks: Vec<Block>,
    final_layer: Layer,
    /// Per transformed column packed `[H][padded(m)]`, rows `row(j, q)`.
    fpacked: Vec<f32>,
    fbias: Vec<f32>,
}

fn net(rng: &mut Rng, m: usize, row: impl Fn(usize, usize) -> usize) -> Net {
    let initial = layer(rng, H, ID.len() + C, 0.6);
    let mut blocks = Vec::new();
    for b in 0..2 {
        let norms = (b == 0).then(|| {
            let mut bn = || {
                let mul: Vec<f32> = rng.vec(H, 0.7, 1.3);
                let add: Vec<f32> = rng.vec(H, -0.2, 0.2);
                (
                    mul.into_iter().chain([0.0; SLACK]).collect(),
                    add.into_iter().chain([0.0; SLACK]).collect(),
                )
            };
            [bn(), bn()]
        });
        let l = [layer(rng, H, H, 0.5), layer(rng, H, H, 0.5)];
        let gate = (b == 0).then(|| layer(rng, H, C, 0.8));
        blocks.push((norms, l, gate));
    }
    let final_layer = layer(rng, TR.len() * m, H, 0.4);
    let gp = padded(m);
    let mut fpacked = Vec::new();
    let mut fbias = Vec::new();
    for j in 0..TR.len() {
        for v in 0..H {
            for q in 0..gp {
                fpacked.push(if q < m {
                    final_layer.w[row(j, q) * H + v]
                } else {
                    0.0
                });
            }
        }
        fbias.extend((0..m).map(|q| final_layer.b[row(j, q)]));
    }
    fpacked.extend([0.0; SLACK]);
    fbias.extend([0.0; SLACK]);
    Net {
        initial,
        blocks,
        final_layer,
        fpacked,
        fbias,
    }
}

fn with_coupling<R>(n: &Net, f: impl FnOnce(&Coupling) -> R) -> R {
    let blocks: Vec<NetBlock> = n
        .blocks
        .iter()
        .map(|(norms, l, gate)| NetBlock {
            norms: norms
                .as_ref()
                .map(|nm| [(&nm[0].0[..], &nm[0].1[..]), (&nm[1].0[..], &nm[1].1[..])]),
            linear: [l[0].dense(), l[1].dense()],
            context: gate.as_ref().map(Layer::dense),
        })
        .collect();
    let c = Coupling {
        features: D,
        context: C,
        identity: &ID,
        transform: &TR,
        hidden: H,
        activation: Activation::Tanh,
        initial: n.initial.dense(),
        blocks: &blocks,
        final_layer: Dense {
            weight: &n.fpacked,
            bias: &n.fbias,
        },
    };
    f(&c)
}

/// The net's outputs in f64 at one row.
fn net64(n: &Net, x: &[f64], c: &[f64]) -> Vec<f64> {
    let mut input: Vec<f64> = ID.iter().map(|&i| x[i as usize]).collect();
    input.extend_from_slice(c);
    let mut h = n.initial.f64(&input);
    for (norms, l, gate) in &n.blocks {
        let bn = |q: usize, v: &[f64]| -> Vec<f64> {
            match norms {
                Some(nm) => v
                    .iter()
                    .enumerate()
                    .map(|(u, x)| x * nm[q].0[u] as f64 + nm[q].1[u] as f64)
                    .collect(),
                None => v.to_vec(),
            }
        };
        let t: Vec<f64> = bn(0, &h).iter().map(|v| v.tanh()).collect();
        let t: Vec<f64> = bn(1, &l[0].f64(&t)).iter().map(|v| v.tanh()).collect();
        let mut t = l[1].f64(&t);
        if let Some(g) = gate {
            for (t, g) in t.iter_mut().zip(g.f64(c)) {
                *t /= 1.0 + (-g).exp();
            }
        }
        for (h, t) in h.iter_mut().zip(t) {
            *h += t;
        }
    }
    n.final_layer.f64(&h)
}

const AFFINE: Elementwise = Elementwise::Affine(Affine {
    scale: Scale::Sigmoid {
        factor: 1.0,
        offset: 2.0,
        eps: 1e-3,
    },
    scale_param: 1,
    shift_param: 0,
    clamp: None,
    shift: Shift::NONE,
});

const SPLINE: Elementwise = Elementwise::Spline(Spline {
    bins: 5,
    bound: 2.0,
    divisor: 3.162_277_7,
    style: SplineStyle::Nflows {
        min_width: 1e-3,
        min_height: 1e-3,
        min_derivative: 1e-3,
        end_logit: 0.539_742_4,
    },
});

/// Runs the kernel on `rows` rows; `(output, logdet)`.
fn run(
    tier: Tier,
    cp: &Coupling,
    t: &Elementwise,
    inverse: bool,
    x: &[f32],
    c: &[f32],
    scratch_rows: usize,
) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / D;
    let mut out = vec![0.0; rows * D];
    let mut ld = vec![0.0; rows];
    let mut s = vec![0.0; flow::coupling_scratch_len(cp, t, scratch_rows)];
    flow::coupling(
        tier,
        cp,
        t,
        inverse,
        rows,
        x,
        D,
        c,
        C,
        &mut out,
        D,
        Some((&mut ld, 1)),
        &mut s,
    );
    (out, ld)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn coupling_matches_f64_and_is_batch_independent_on_every_tier() {
    let mut rng = Rng::new(11);
    let n_aff = net(&mut rng, 2, |j, q| q * TR.len() + j);
    let n_sp = net(&mut rng, 14, |j, q| j * 14 + q);
    let rows = 37;
    let x: Vec<f32> = rng.vec(rows * D, -2.5, 2.5);
    let c: Vec<f32> = rng.vec(rows * C, -1.5, 1.5);
    let mut by_tier: Vec<(Tier, Vec<u32>)> = Vec::new();
    for tier in isa::supported() {
        // Affine: forward and inverse against f64.
        with_coupling(&n_aff, |cp| {
            let (y, ld) = run(tier, cp, &AFFINE, false, &x, &c, 16);
            let (xi, ldi) = run(tier, cp, &AFFINE, true, &x, &c, 16);
            for r in 0..rows {
                let xr: Vec<f64> = x[r * D..(r + 1) * D].iter().map(|&v| v as f64).collect();
                let cr: Vec<f64> = c[r * C..(r + 1) * C].iter().map(|&v| v as f64).collect();
                let p = net64(&n_aff, &xr, &cr);
                let mut ld64 = 0.0;
                for k in 0..D {
                    let (want, want_inv) = match TR.iter().position(|&t| t as usize == k) {
                        Some(j) => {
                            let (shift, u) = (p[j], p[TR.len() + j]);
                            let s = 1.0 / (1.0 + (-(u + 2.0)).exp()) + 1e-3;
                            ld64 += s.ln();
                            (s * xr[k] + shift, (xr[k] - shift) / s)
                        }
                        None => (xr[k], xr[k]),
                    };
                    let (got, got_inv) = (y[r * D + k] as f64, xi[r * D + k] as f64);
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{tier:?} row {r} col {k}: forward {got} vs {want}"
                    );
                    assert!(
                        (got_inv - want_inv).abs() <= 1e-4 * (1.0 + want_inv.abs()),
                        "{tier:?} row {r} col {k}: inverse {got_inv} vs {want_inv}"
                    );
                }
                assert!(
                    (ld[r] as f64 - ld64).abs() <= 2e-5 * (1.0 + ld64.abs()),
                    "{tier:?} row {r}: logdet {} vs {ld64}",
                    ld[r]
                );
                assert!((ldi[r] as f64 + ld64).abs() <= 2e-5 * (1.0 + ld64.abs()));
            }
            by_tier.push((tier, bits(&y)));
        });
        // Spline: the inverse undoes the forward, log-dets opposite; and the bits do not depend
        // on the batch size, the row position or the sub-tile.
        with_coupling(&n_sp, |cp| {
            let (y, ld) = run(tier, cp, &SPLINE, false, &x, &c, 16);
            let (back, ldb) = run(tier, cp, &SPLINE, true, &y, &c, 16);
            for i in 0..rows * D {
                assert!(
                    (back[i] - x[i]).abs() <= 1e-4 * (1.0 + x[i].abs()),
                    "{tier:?} value {i}: inverse(forward) {} vs {}",
                    back[i],
                    x[i]
                );
            }
            for r in 0..rows {
                assert!((ld[r] + ldb[r]).abs() <= 1e-4 * (1.0 + ld[r].abs()));
            }
            for inverse in [false, true] {
                let (full, full_ld) = run(tier, cp, &SPLINE, inverse, &x, &c, 16);
                let (one, one_ld) = run(tier, cp, &SPLINE, inverse, &x, &c, 1);
                assert_eq!(bits(&full), bits(&one), "{tier:?}: batch vs row by row");
                assert_eq!(bits(&full_ld), bits(&one_ld));
                for (a, b) in [(0, 5), (3, 20), (17, 37), (36, 37)] {
                    let (part, part_ld) = run(
                        tier,
                        cp,
                        &SPLINE,
                        inverse,
                        &x[a * D..b * D],
                        &c[a * C..b * C],
                        16,
                    );
                    assert_eq!(
                        bits(&part),
                        bits(&full[a * D..b * D]),
                        "{tier:?} rows {a}..{b}"
                    );
                    assert_eq!(bits(&part_ld), bits(&full_ld[a..b]));
                }
            }
            by_tier.push((tier, bits(&y)));
        });
    }
    let simd: Vec<_> = by_tier
        .iter()
        .filter(|(t, _)| matches!(t, Tier::Avx2Fma | Tier::Avx512))
        .collect();
    // Entries alternate affine, spline per tier: compare each transform across the tiers.
    for kind in 0..2 {
        let v: Vec<&Vec<u32>> = simd.iter().skip(kind).step_by(2).map(|(_, b)| b).collect();
        for p in v.windows(2) {
            assert_eq!(p[0], p[1], "AVX2 and AVX-512 differ");
        }
    }
}
