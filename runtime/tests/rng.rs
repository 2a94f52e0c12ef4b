//! Counter-based RNG: known answers, distributions, determinism of splits, tier bit equality.

use runtime::isa::{self, Tier};
use runtime::rng::{self, philox4x32_10, Distribution, Domain, Stream};

#[test]
fn philox_known_answers() {
    // Random123 kat_vectors, philox4x32_10.
    assert_eq!(
        philox4x32_10([0; 4], [0; 2]),
        [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
    );
    assert_eq!(
        philox4x32_10([0xffffffff; 4], [0xffffffff; 2]),
        [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
    );
    assert_eq!(
        philox4x32_10(
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0]
        ),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn counter_mapping_is_as_documented() {
    let seed = 0x0123_4567_89ab_cdef_u64;
    let event = 0x0000_7654_3210_fedc_u64; // < 2^48
    let st = Stream::new(seed, event, 0x00ab_cdef, 0x5a);
    for (domain, tag) in [
        (Domain::Uniform, 0u32),
        (Domain::Normal, 1),
        (Domain::UniformF64, 2),
    ] {
        let expect = philox4x32_10(
            [
                17,
                0x00ab_cdef,
                0x3210_fedc,
                0x7654 | 0x5a << 16 | tag << 24,
            ],
            [0x89ab_cdef, 0x0123_4567],
        );
        assert_eq!(st.block(domain, 17), expect, "{domain:?}");
    }
    // Word i % 4 of block i / 4.
    let w = st.block(Domain::Uniform, 5);
    for j in 0..4 {
        assert_eq!(st.u32_at(20 + j), w[j as usize]);
        assert_eq!(st.uniform(20 + j), rng::word_to_uniform(w[j as usize]));
    }
    // Events are taken modulo 2^48.
    let a = Stream::new(seed, 12, 3, 4);
    let b = Stream::new(seed, 12 + rng::MAX_EVENT, 3, 4);
    assert_eq!(a.block(Domain::Normal, 0), b.block(Domain::Normal, 0));
}

#[test]
fn neighbouring_tuples_never_share_a_block() {
    // Every component change gives a different block (the mapping is injective; Philox is a bijection).
    let base = Stream::new(7, (1 << 40) - 1, (1 << 24) - 1, 255);
    let b0 = base.block(Domain::Normal, (1 << 30) - 1);
    let variants = [
        Stream { seed: 8, ..base },
        Stream {
            event: base.event - 1,
            ..base
        },
        Stream {
            event: base.event ^ (1 << 39),
            ..base
        },
        Stream {
            particle: base.particle - 1,
            ..base
        },
        Stream {
            particle: base.particle ^ (1 << 23),
            ..base
        },
        Stream {
            stream: 254,
            ..base
        },
        Stream {
            stream: 127,
            ..base
        },
    ];
    for v in variants {
        assert_ne!(v.block(Domain::Normal, (1 << 30) - 1), b0, "{v:?}");
    }
    assert_ne!(base.block(Domain::Normal, (1 << 30) - 2), b0);
    assert_ne!(base.block(Domain::Uniform, (1 << 30) - 1), b0);
}

#[test]
fn uniform_range_ends() {
    assert_eq!(rng::word_to_uniform(0), 1.0 / 16_777_216.0);
    assert_eq!(rng::word_to_uniform(u32::MAX), 1.0 - 1.0 / 16_777_216.0);
    assert!(rng::words_to_uniform_f64(0, 0) > 0.0);
    assert!(rng::words_to_uniform_f64(u32::MAX, u32::MAX) < 1.0);
    // Symmetric about 1/2.
    for x in [0u32, 1 << 9, 12345 << 9, u32::MAX] {
        assert_eq!(rng::word_to_uniform(x) + rng::word_to_uniform(!x), 1.0);
    }
}

fn moments(v: &[f64]) -> (f64, f64, f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let m3 = v.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n;
    let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
    (mean, m2, m3 / m2.powf(1.5), m4 / (m2 * m2))
}

/// Kolmogorov-Smirnov statistic of a sample against a CDF.
fn ks(mut v: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len() as f64;
    let mut d: f64 = 0.0;
    for (i, x) in v.iter().enumerate() {
        let f = cdf(*x);
        d = d.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n);
    }
    d
}

/// erfc with relative error below 1.2e-7 (Chebyshev fit, Numerical Recipes style constants).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

fn phi(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

const N_STAT: usize = 1 << 20;

#[test]
fn uniform_moments_and_ks() {
    let mut v = vec![0f32; N_STAT];
    Stream::new(2024, 5, 11, 3).uniforms(0, &mut v);
    assert!(v.iter().all(|&u| u > 0.0 && u < 1.0));
    let x: Vec<f64> = v.iter().map(|&u| u as f64).collect();
    let (mean, var, skew, _) = moments(&x);
    let n = N_STAT as f64;
    // 5 standard errors: σ(mean) = sqrt(1/12/n), σ(var) = sqrt(1/180/n).
    assert!(
        (mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n).sqrt(),
        "mean {mean}"
    );
    assert!(
        (var - 1.0 / 12.0).abs() < 5.0 * (1.0 / 180.0 / n).sqrt(),
        "var {var}"
    );
    assert!(skew.abs() < 0.02, "skew {skew}");
    let d = ks(x, |u| u.clamp(0.0, 1.0));
    // KS critical value at 99.9%: 1.95 / sqrt(n).
    assert!(d < 1.95 / n.sqrt(), "KS D = {d}");
    // f64 uniforms too.
    let mut w = vec![0f64; 1 << 16];
    Stream::new(2024, 5, 11, 3).uniforms_f64(0, &mut w);
    assert!(w.iter().all(|&u| u > 0.0 && u < 1.0));
    let d = ks(w, |u| u);
    assert!(d < 1.95 / ((1 << 16) as f64).sqrt(), "KS D (f64) = {d}");
}

#[test]
fn normal_moments_and_ks() {
    let mut v = vec![0f32; N_STAT];
    Stream::new(99, 1 << 33, 7, 0).normals(0, &mut v);
    assert!(v.iter().all(|z| z.is_finite() && z.abs() < 5.8));
    let x: Vec<f64> = v.iter().map(|&z| z as f64).collect();
    let (mean, var, skew, kurt) = moments(&x);
    let n = N_STAT as f64;
    assert!(mean.abs() < 5.0 / n.sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "var {var}");
    assert!(skew.abs() < 5.0 * (6.0 / n).sqrt(), "skew {skew}");
    assert!(
        (kurt - 3.0).abs() < 5.0 * (24.0 / n).sqrt(),
        "kurtosis {kurt}"
    );
    let d = ks(x.clone(), phi);
    assert!(d < 1.95 / n.sqrt(), "KS D = {d}");
    // Both halves of each Box-Muller pair are normal and uncorrelated with each other.
    let even: Vec<f64> = x.iter().step_by(2).copied().collect();
    let odd: Vec<f64> = x.iter().skip(1).step_by(2).copied().collect();
    let m = even.len() as f64;
    assert!(ks(even.clone(), phi) < 1.95 / m.sqrt());
    assert!(ks(odd.clone(), phi) < 1.95 / m.sqrt());
    let corr = even.iter().zip(&odd).map(|(a, b)| a * b).sum::<f64>() / m;
    assert!(corr.abs() < 5.0 / m.sqrt(), "pair correlation {corr}");
}

#[test]
fn streams_are_uncorrelated() {
    // Neighbouring particles, streams, events and the two domains of one stream.
    let n = 1 << 16;
    let draw = |s: Stream, d: Distribution| {
        let mut v = vec![0f32; n];
        s.fill(d, 0, &mut v);
        v
    };
    let base = Stream::new(5, 10, 20, 1);
    let a = draw(base, Distribution::Normal);
    let others = [
        draw(
            Stream {
                particle: 21,
                ..base
            },
            Distribution::Normal,
        ),
        draw(Stream { stream: 2, ..base }, Distribution::Normal),
        draw(Stream { event: 11, ..base }, Distribution::Normal),
        draw(Stream { seed: 6, ..base }, Distribution::Normal),
        draw(base, Distribution::Uniform)
            .iter()
            .map(|u| (u - 0.5) * 12f32.sqrt())
            .collect(),
    ];
    for (i, b) in others.iter().enumerate() {
        let corr = a
            .iter()
            .zip(b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum::<f64>()
            / n as f64;
        assert!(
            corr.abs() < 5.0 / (n as f64).sqrt(),
            "case {i}: correlation {corr}"
        );
    }
}

/// Max error of the polynomials over every possible input (2^23 values each).
#[test]
fn normal_accuracy() {
    let mut max_ln_rel: f64 = 0.0;
    let mut max_sc: f64 = 0.0;
    for k in 0..(1u32 << 23) {
        let x = k << 9;
        let u = rng::word_to_uniform(x) as f64;
        let l = rng::ln_uniform(x) as f64;
        let exact = u.ln();
        max_ln_rel = max_ln_rel.max(((l - exact) / exact).abs());
        let (c, s) = rng::sincos_turn(x);
        let th = 2.0 * std::f64::consts::PI * u;
        max_sc = max_sc
            .max((c as f64 - th.cos()).abs())
            .max((s as f64 - th.sin()).abs());
    }
    assert!(max_ln_rel < 2.5e-7, "ln relative error {max_ln_rel:e}");
    assert!(max_sc < 1.5e-7, "sin/cos absolute error {max_sc:e}");
    eprintln!("ln max relative error {max_ln_rel:e}, sin/cos max absolute error {max_sc:e}");
    // Spot-check whole normals against f64 Box-Muller.
    let st = Stream::new(1, 2, 3, 4);
    let mut max_n: f64 = 0.0;
    for b in 0..20000 {
        let w = st.block(Domain::Normal, b);
        let (z0, z1) = rng::box_muller(w[0], w[1]);
        let r = (-2.0 * (rng::word_to_uniform(w[0]) as f64).ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * rng::word_to_uniform(w[1]) as f64;
        let e0 = (z0 as f64 - r * th.cos()).abs() / (1.0 + r);
        let e1 = (z1 as f64 - r * th.sin()).abs() / (1.0 + r);
        max_n = max_n.max(e0).max(e1);
        assert_eq!(st.normal(4 * b), z0);
        assert_eq!(st.normal(4 * b + 1), z1);
    }
    assert!(max_n < 3e-7, "normal error {max_n:e}");
}

fn tiers() -> Vec<Tier> {
    let t = isa::supported();
    assert!(t.contains(&Tier::Portable));
    if cfg!(target_arch = "x86_64")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        assert!(
            t.contains(&Tier::Avx2Fma),
            "AVX2 machine without the avx2 tier: the SIMD path would go untested"
        );
    }
    t
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn split_fills_equal_one_fill() {
    for tier in tiers() {
        for dist in [Distribution::Uniform, Distribution::Normal] {
            let st = Stream::new(31, 4, 159, 26);
            let mut all = vec![0f32; 100];
            st.fill_on(tier, dist, 0, &mut all);
            let mut parts = vec![0f32; 100];
            st.fill_on(tier, dist, 0, &mut parts[..37]);
            st.fill_on(tier, dist, 37, &mut parts[37..]);
            assert_eq!(bits(&all), bits(&parts), "{tier} {dist:?}");
            // Every split point, and single draws.
            for cut in 0..100 {
                let mut p = vec![0f32; 100];
                st.fill_on(tier, dist, 0, &mut p[..cut]);
                st.fill_on(tier, dist, cut as u32, &mut p[cut..]);
                assert_eq!(bits(&all), bits(&p), "{tier} {dist:?} cut {cut}");
            }
            for (i, v) in all.iter().enumerate() {
                let one = match dist {
                    Distribution::Uniform => st.uniform(i as u32),
                    Distribution::Normal => st.normal(i as u32),
                };
                assert_eq!(v.to_bits(), one.to_bits());
            }
        }
    }
}

#[test]
fn tiers_are_bit_identical() {
    let all = tiers();
    for dist in [Distribution::Uniform, Distribution::Normal] {
        // Long fills: 4 Mi values lane by lane.
        let st = Stream::new(0xdead_beef, 77, 1, 9);
        let mut reference = vec![0f32; 1 << 22];
        st.fill_on(Tier::Portable, dist, 0, &mut reference);
        for &tier in &all {
            let mut v = vec![0f32; 1 << 22];
            st.fill_on(tier, dist, 0, &mut v);
            for (i, (a, b)) in reference.iter().zip(&v).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{tier} {dist:?} draw {i}: {a} vs {b}"
                );
            }
        }
        // Odd offsets and lengths.
        for offset in [0u32, 1, 2, 3, 5, 31, 33, 1000] {
            for len in [0usize, 1, 3, 4, 7, 31, 32, 33, 64, 65, 130] {
                let mut r = vec![0f32; len];
                st.fill_on(Tier::Portable, dist, offset, &mut r);
                for &tier in &all {
                    let mut v = vec![0f32; len];
                    st.fill_on(tier, dist, offset, &mut v);
                    assert_eq!(
                        bits(&r),
                        bits(&v),
                        "{tier} {dist:?} offset {offset} len {len}"
                    );
                }
            }
        }
    }
}

#[test]
fn batch_rows_equal_single_streams() {
    let rows = 37;
    let events: Vec<u64> = (0..rows).map(|r| 1000 + (r as u64 / 5)).collect();
    let particles: Vec<u32> = (0..rows).map(|r| (r * 7 % 11) as u32).collect();
    for tier in tiers() {
        for dist in [Distribution::Uniform, Distribution::Normal] {
            for n in [1usize, 3, 4, 8, 13, 31, 32, 40, 128] {
                for offset in [0u32, 2, 9] {
                    let mut out = vec![f32::NAN; rows * n];
                    rng::fill_batch_on(tier, 8, 17, dist, offset, &events, &particles, &mut out);
                    for r in 0..rows {
                        let mut one = vec![0f32; n];
                        Stream::new(8, events[r], particles[r], 17).fill_on(
                            Tier::Portable,
                            dist,
                            offset,
                            &mut one,
                        );
                        assert_eq!(
                            bits(&out[r * n..(r + 1) * n]),
                            bits(&one),
                            "{tier} {dist:?} n {n} offset {offset} row {r}"
                        );
                    }
                }
            }
        }
        // A row's noise does not depend on which rows share the batch.
        let mut whole = vec![0f32; rows * 6];
        rng::fill_batch_on(
            tier,
            8,
            17,
            Distribution::Normal,
            0,
            &events,
            &particles,
            &mut whole,
        );
        let mut part = vec![0f32; 5 * 6];
        rng::fill_batch_on(
            tier,
            8,
            17,
            Distribution::Normal,
            0,
            &events[10..15],
            &particles[10..15],
            &mut part,
        );
        assert_eq!(bits(&whole[60..90]), bits(&part));
    }
}

#[test]
fn empty_batch_is_fine() {
    rng::fill_batch(1, 0, Distribution::Normal, 0, &[], &[], &mut []);
    let mut out = [0f32; 0];
    rng::fill_batch(1, 0, Distribution::Normal, 0, &[1, 2], &[3, 4], &mut out);
}

#[test]
#[should_panic(expected = "not a multiple")]
fn batch_shape_mismatch_panics_with_message() {
    let mut out = [0f32; 5];
    rng::fill_batch(1, 0, Distribution::Normal, 0, &[1, 2], &[3, 4], &mut out);
}
