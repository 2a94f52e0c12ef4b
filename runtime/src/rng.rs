//! Counter-based random numbers: Philox4x32-10, uniforms and Box-Muller normals.
//!
//! Every draw is a pure function of `(seed, event, particle, stream, draw index)`. There is no
//! generator state anywhere: a run split over threads, batches or jobs draws exactly the same
//! numbers for the same particle, whatever the split.
//!
//! # Philox4x32-10
//!
//! [`philox4x32_10`] is the Philox 4×32 bijection with 10 rounds (Salmon et al., "Parallel random
//! numbers: as easy as 1, 2, 3", SC 2011), checked against the Random123 known-answer vectors.
//! One call maps a 128-bit counter and a 64-bit key to 128 random bits, four `u32` words.
//!
//! # Mapping of a draw to counter and key
//!
//! | Philox input | bits | content |
//! |---|---|---|
//! | key word 0 | 32 | seed bits 0..32 |
//! | key word 1 | 32 | seed bits 32..64 |
//! | counter word 0 | 32 | block = draw index / 4 (draw index < 2^32, so block < 2^30) |
//! | counter word 1 | 32 | particle index (< 2^32) |
//! | counter word 2 | 32 | event number bits 0..32 |
//! | counter word 3 | 16 + 8 + 8 | event bits 32..48, then stream (bits 16..24), then domain (bits 24..32) |
//!
//! The *domain* separates the distributions, so uniforms and normals drawn on the same stream are
//! independent: [`Domain::Uniform`] (0: raw `u32` words and `f32` uniforms), [`Domain::Normal`]
//! (1: `f32` normals), [`Domain::UniformF64`] (2: `f64` uniforms); the other values are reserved.
//! The mapping is injective for event < 2^48 ([`MAX_EVENT`]), every `u32` particle index, every `u8`
//! stream and every `u32` draw index, and Philox is a bijection of the counter for a fixed key, so
//! two different tuples never share a block. Event numbers at or above 2^48 are reduced modulo 2^48
//! (documented aliasing, far beyond any real production).
//!
//! Draw `i` of a stream is word `i % 4` of block `i / 4` (uniforms, normals); `f64` uniform `i`
//! uses words `2(i % 2)` and `2(i % 2) + 1` of block `i / 2`.
//!
//! Streams 240..=255 are reserved for the event inputs (the particle gun, see
//! [`crate::event::gun`]); pipelines use streams 0..240.
//!
//! # Uniforms
//!
//! A word `x` becomes `u = (2·(x >> 9) + 1) · 2^-24`: 2^23 equally spaced values, symmetric about
//! 1/2, from 2^-24 to 1 − 2^-24, never exactly 0 or 1. The conversion is exact (no rounding), so every
//! tier agrees trivially. `f64` uniforms use 52 bits of two words: `(2k + 1) · 2^-53`, in (0, 1).
//!
//! # Normals (Box-Muller)
//!
//! Words `(x0, x1)` give `r = sqrt(-2 ln u0)` and `θ = 2π u1`, normals `r cos θ` and `r sin θ`;
//! block words `(0, 1)` give draws `4b, 4b+1`, words `(2, 3)` give draws `4b+2, 4b+3`. The
//! largest |z| is `sqrt(2·24·ln 2) ≈ 5.77` (`u0 ≥ 2^-24`).
//!
//! `ln` and `sin`/`cos` are this module's own `f32` polynomials (no libm):
//! * `ln u`: `u = 2^k m` with `m ∈ [√½, √2)` (integer bit manipulation), `s = (m−1)/(m+1)`,
//!   `ln m = 2s + 2s·z·P(z)`, `z = s²`, `P` the atanh series to `z^3` (coefficients 1/3, 1/5, 1/7,
//!   1/9), plus `k·ln2` with ln 2 split in a 15-bit head and a tail.
//! * `sin`, `cos` of `θ`: the quadrant `q` and the fraction `f ∈ [−½, ½]` of `4u1` are computed
//!   exactly in integer arithmetic; `sin(πf/2)` (odd Taylor polynomial to `f^9`) and `cos(πf/2)` (even,
//!   to `f^10`) are then rotated by `q` quarter turns with exact swaps and sign flips.
//!
//! Measured accuracy (test `normal_accuracy` in `tests/rng.rs`, over all 2^23 possible inputs):
//! `ln u` within 1.6e-7 relative, `sin`/`cos` within 9.0e-8 absolute (the test asserts 2.5e-7 and
//! 1.5e-7), and a normal within 3e-7 · (1 + r) of the exact Box-Muller value of the same words.
//!
//! # Bit-identical tiers
//!
//! The scalar path and the AVX2 path execute the same sequence of IEEE-754 operations on `f32`: add,
//! sub, mul, div and sqrt, each rounded individually, plus exact integer bit manipulation. No fused
//! multiply-add is used anywhere (Rust never contracts `a * b + c`, and the vector code uses separate
//! `mul`/`add` instructions), because a software `fma` would make the portable path several times
//! slower. Division and square root are correctly rounded on every IEEE-754 machine, so the results
//! are bit-identical on every tier and on any platform (a GPU port must use `mul.rn`/`add.rn`,
//! `div.rn`, `sqrt.rn`). Tests compare the tiers lane by lane.

use crate::isa::{self, Tier};

/// Philox4x32 multiplier for counter word 0.
pub const PHILOX_M0: u32 = 0xD251_1F53;
/// Philox4x32 multiplier for counter word 2.
pub const PHILOX_M1: u32 = 0xCD9E_8D57;
/// Weyl increment of key word 0 (golden ratio).
pub const PHILOX_W0: u32 = 0x9E37_79B9;
/// Weyl increment of key word 1 (√3 − 1).
pub const PHILOX_W1: u32 = 0xBB67_AE85;

/// Event numbers are taken modulo this value (2^48) in the counter.
pub const MAX_EVENT: u64 = 1 << 48;

/// First stream number reserved for the event inputs (particle gun); pipelines use `0..RESERVED_STREAMS`.
pub const RESERVED_STREAMS: u8 = 240;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// The Philox4x32-10 bijection: 10 rounds on `ctr` under `key`.
#[inline]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_W0);
            k[1] = k[1].wrapping_add(PHILOX_W1);
        }
        let (hi0, lo0) = mulhilo(PHILOX_M0, c[0]);
        let (hi1, lo1) = mulhilo(PHILOX_M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Which distribution a block feeds (counter word 3, bits 24..32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Domain {
    /// Raw `u32` words and `f32` uniforms.
    Uniform = 0,
    /// `f32` normals.
    Normal = 1,
    /// `f64` uniforms.
    UniformF64 = 2,
}

/// The distribution of `f32` noise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// U(0, 1), never exactly 0 or 1.
    Uniform,
    /// N(0, 1).
    Normal,
}

impl Distribution {
    fn domain(self) -> Domain {
        match self {
            Distribution::Uniform => Domain::Uniform,
            Distribution::Normal => Domain::Normal,
        }
    }
}

/// Philox key of a seed.
#[inline(always)]
fn key_of(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Counter words 1..4 of `(event, particle, stream, domain)`; word 0 is the block.
#[inline(always)]
fn counter_tail(event: u64, particle: u32, stream: u8, domain: Domain) -> [u32; 3] {
    [
        particle,
        event as u32,
        ((event >> 32) as u32 & 0xFFFF) | (stream as u32) << 16 | (domain as u32) << 24,
    ]
}

/// One random stream: every draw of `(seed, event, particle, stream)`, addressed by draw index.
///
/// A `Stream` is a plain value (no state): `stream.normals(37, &mut out)` gives draws 37.. whenever
/// and wherever it is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stream {
    /// Run seed (the Philox key).
    pub seed: u64,
    /// Event number (taken modulo [`MAX_EVENT`]).
    pub event: u64,
    /// Particle (or object, or row) index within the event.
    pub particle: u32,
    /// Stream number: one per independent use (model, decision); see [`RESERVED_STREAMS`].
    pub stream: u8,
}

impl Stream {
    /// The stream of `(seed, event, particle, stream)`.
    pub fn new(seed: u64, event: u64, particle: u32, stream: u8) -> Stream {
        Stream {
            seed,
            event,
            particle,
            stream,
        }
    }

    /// The four raw words of `block` in `domain`.
    #[inline]
    pub fn block(&self, domain: Domain, block: u32) -> [u32; 4] {
        let t = counter_tail(self.event, self.particle, self.stream, domain);
        philox4x32_10([block, t[0], t[1], t[2]], key_of(self.seed))
    }

    /// Raw word `draw` (the word behind `f32` uniform `draw`).
    pub fn u32_at(&self, draw: u32) -> u32 {
        self.block(Domain::Uniform, draw / 4)[(draw % 4) as usize]
    }

    /// `f32` uniform `draw`, in (0, 1).
    pub fn uniform(&self, draw: u32) -> f32 {
        word_to_uniform(self.u32_at(draw))
    }

    /// `f32` normal `draw`.
    pub fn normal(&self, draw: u32) -> f32 {
        let n = normal_block(self.block(Domain::Normal, draw / 4));
        n[(draw % 4) as usize]
    }

    /// `f64` uniform `draw`, in (0, 1), 52 random bits.
    pub fn uniform_f64(&self, draw: u32) -> f64 {
        let w = self.block(Domain::UniformF64, draw / 2);
        let j = 2 * (draw % 2) as usize;
        words_to_uniform_f64(w[j], w[j + 1])
    }

    /// Raw words `offset .. offset + out.len()`.
    ///
    /// # Panics
    /// If `offset + out.len()` exceeds 2^32 (the draw-index range).
    pub fn u32s(&self, offset: u32, out: &mut [u32]) {
        check_range(offset, out.len());
        let mut d = offset as u64;
        let mut i = 0;
        while i < out.len() {
            let w = self.block(Domain::Uniform, (d / 4) as u32);
            let j = (d % 4) as usize;
            let n = (4 - j).min(out.len() - i);
            out[i..i + n].copy_from_slice(&w[j..j + n]);
            i += n;
            d += n as u64;
        }
    }

    /// `f64` uniforms `offset .. offset + out.len()`.
    ///
    /// # Panics
    /// If `offset + out.len()` exceeds 2^32.
    pub fn uniforms_f64(&self, offset: u32, out: &mut [f64]) {
        check_range(offset, out.len());
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.uniform_f64(offset + i as u32);
        }
    }

    /// `f32` uniforms `offset .. offset + out.len()`, on the active tier.
    pub fn uniforms(&self, offset: u32, out: &mut [f32]) {
        self.fill_on(isa::active(), Distribution::Uniform, offset, out)
    }

    /// `f32` normals `offset .. offset + out.len()`, on the active tier.
    pub fn normals(&self, offset: u32, out: &mut [f32]) {
        self.fill_on(isa::active(), Distribution::Normal, offset, out)
    }

    /// Draws `offset .. offset + out.len()` of `dist`, on the active tier.
    pub fn fill(&self, dist: Distribution, offset: u32, out: &mut [f32]) {
        self.fill_on(isa::active(), dist, offset, out)
    }

    /// Draws `offset .. offset + out.len()` of `dist` on `tier` (an unsupported tier runs the
    /// portable code; every tier gives the same bits).
    ///
    /// # Panics
    /// If `offset + out.len()` exceeds 2^32.
    pub fn fill_on(&self, tier: Tier, dist: Distribution, offset: u32, out: &mut [f32]) {
        check_range(offset, out.len());
        let key = key_of(self.seed);
        let tail = counter_tail(self.event, self.particle, self.stream, dist.domain());
        fill_contiguous(use_avx2(tier), key, tail, dist, offset, out);
    }
}

#[inline]
fn check_range(offset: u32, len: usize) {
    assert!(
        offset as u64 + len as u64 <= 1 << 32,
        "rng: draws {offset}..{offset}+{len} leave the draw-index range 0..2^32"
    );
}

/// Whether `tier` runs the AVX2 code on this machine.
#[inline]
fn use_avx2(tier: Tier) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(tier, Tier::Avx512 | Tier::Avx2Fma) && tier.is_supported()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = tier;
        false
    }
}

/// Fills draws `offset..` of one stream (counter words 1..4 = `tail`).
fn fill_contiguous(
    avx2: bool,
    key: [u32; 2],
    tail: [u32; 3],
    dist: Distribution,
    offset: u32,
    out: &mut [f32],
) {
    let mut d = offset as u64;
    let mut i = 0usize;
    let len = out.len();
    // Leading partial block.
    if d & 3 != 0 && i < len {
        let w = scalar_block(key, [(d / 4) as u32, tail[0], tail[1], tail[2]], dist);
        let j = (d % 4) as usize;
        let n = (4 - j).min(len - i);
        out[i..i + n].copy_from_slice(&w[j..j + n]);
        i += n;
        d += n as u64;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        let rk = round_keys(key);
        while len - i >= 64 {
            // SAFETY: `avx2` is true only when the CPU supports AVX2; 64 values fit.
            unsafe { avx2::consecutive::<2>(&rk, (d / 4) as u32, tail, dist, &mut out[i..i + 64]) };
            i += 64;
            d += 64;
        }
        if len - i >= 32 {
            // SAFETY: as above.
            unsafe { avx2::consecutive::<1>(&rk, (d / 4) as u32, tail, dist, &mut out[i..i + 32]) };
            i += 32;
            d += 32;
        }
        if i < len {
            let b = (d / 4) as u32;
            let c0 = std::array::from_fn(|j| b.wrapping_add(j as u32));
            let mut tmp = [0f32; 32];
            // SAFETY: as above.
            unsafe {
                avx2::blocks8(
                    &rk,
                    &c0,
                    &[tail[0]; 8],
                    &[tail[1]; 8],
                    &[tail[2]; 8],
                    dist,
                    &mut tmp,
                )
            };
            let n = len - i;
            out[i..].copy_from_slice(&tmp[..n]);
        }
        return;
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx2;
    while i < len {
        let w = scalar_block(key, [(d / 4) as u32, tail[0], tail[1], tail[2]], dist);
        let n = 4.min(len - i);
        out[i..i + n].copy_from_slice(&w[..n]);
        i += n;
        d += n as u64;
    }
}

/// Fills `f32` noise for a structure-of-arrays batch: row `r` is particle `particles[r]` of event
/// `events[r]`, and gets draws `offset .. offset + n` of `(seed, events[r], particles[r], stream)`,
/// stored row-major at `out[r * n .. (r + 1) * n]` with `n = out.len() / rows` (the noise layout of
/// [`crate::Model`]). Runs on the active tier; row `r` gets exactly what
/// `Stream::new(seed, events[r], particles[r], stream).fill(dist, offset, ..)` gives, whatever the
/// batch.
///
/// # Panics
/// If `events` and `particles` differ in length, `out.len()` is not a multiple of the number of
/// rows, or the draws leave the range 0..2^32.
pub fn fill_batch(
    seed: u64,
    stream: u8,
    dist: Distribution,
    offset: u32,
    events: &[u64],
    particles: &[u32],
    out: &mut [f32],
) {
    fill_batch_on(
        isa::active(),
        seed,
        stream,
        dist,
        offset,
        events,
        particles,
        out,
    )
}

/// [`fill_batch`] on a given tier.
#[allow(clippy::too_many_arguments)]
pub fn fill_batch_on(
    tier: Tier,
    seed: u64,
    stream: u8,
    dist: Distribution,
    offset: u32,
    events: &[u64],
    particles: &[u32],
    out: &mut [f32],
) {
    let rows = particles.len();
    assert_eq!(
        events.len(),
        rows,
        "rng::fill_batch: events and particles must have one entry per row"
    );
    if rows == 0 {
        assert!(
            out.is_empty(),
            "rng::fill_batch: no rows but {} output values",
            out.len()
        );
        return;
    }
    assert_eq!(
        out.len() % rows,
        0,
        "rng::fill_batch: out.len() = {} is not a multiple of {rows} rows",
        out.len()
    );
    let n = out.len() / rows;
    if n == 0 {
        return;
    }
    check_range(offset, n);
    let key = key_of(seed);
    let domain = dist.domain();
    let avx2 = use_avx2(tier);
    #[cfg(target_arch = "x86_64")]
    if avx2 && n < 32 {
        // Few draws per row: gather (row, block) pairs sixteen at a time, one per lane.
        let rk = round_keys(key);
        let first = offset / 4;
        let last = ((offset as u64 + n as u64 - 1) / 4) as u32;
        let mut lanes: [(usize, u32); 16] = [(0, 0); 16];
        let mut c = [[0u32; 16]; 4];
        let mut used = 0;
        let mut tmp = [0f32; 64];
        let mut flush = |lanes: &[(usize, u32)], c: &[[u32; 16]; 4], out: &mut [f32]| {
            // SAFETY: `avx2` is true only when the CPU supports AVX2.
            unsafe { avx2::blocks16(&rk, c, dist, &mut tmp) };
            for (j, &(r, b)) in lanes.iter().enumerate() {
                // Draws 4b .. 4b + 4 clipped to offset .. offset + n.
                let lo = (4 * b as u64).max(offset as u64);
                let hi = (4 * b as u64 + 4).min(offset as u64 + n as u64);
                let (w0, w1) = ((lo - 4 * b as u64) as usize, (hi - 4 * b as u64) as usize);
                let dst = r * n + (lo - offset as u64) as usize;
                out[dst..dst + (w1 - w0)].copy_from_slice(&tmp[4 * j + w0..4 * j + w1]);
            }
        };
        for r in 0..rows {
            let t = counter_tail(events[r], particles[r], stream, domain);
            for b in first..=last {
                lanes[used] = (r, b);
                c[0][used] = b;
                c[1][used] = t[0];
                c[2][used] = t[1];
                c[3][used] = t[2];
                used += 1;
                if used == 16 {
                    flush(&lanes, &c, out);
                    used = 0;
                }
            }
        }
        if used > 0 {
            flush(&lanes[..used], &c, out);
        }
        return;
    }
    for r in 0..rows {
        let t = counter_tail(events[r], particles[r], stream, domain);
        fill_contiguous(avx2, key, t, dist, offset, &mut out[r * n..(r + 1) * n]);
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar reference (the portable tier). Every operation is mirrored one for one by the AVX2 code.
// ---------------------------------------------------------------------------------------------

const TWO_M24: f32 = 1.0 / 16_777_216.0; // 2^-24
const TWO_M22: f32 = 1.0 / 4_194_304.0; // 2^-22
const LN2_HI: f32 = 0.693_145_75; // 0x3f317200: 15 significant bits, k·LN2_HI is exact
const LN2_LO: f32 = 1.428_606_8e-6; // ln 2 − LN2_HI
const SQRT_HALF_BITS: u32 = 0x3f35_04f3; // √½
/// atanh series coefficients 1/3, 1/5, 1/7, 1/9.
const L3: f32 = 0.333_333_34;
const L5: f32 = 0.2;
const L7: f32 = 0.142_857_15;
const L9: f32 = 0.111_111_11;
/// sin(π f / 2) = f (S1 + S3 f² + S5 f⁴ + S7 f⁶ + S9 f⁸): Taylor coefficients (π/2)^k / k! with signs.
const S1: f32 = f32::from_bits(0x3fc9_0fdb);
const S3: f32 = f32::from_bits(0xbf25_5de7);
const S5: f32 = f32::from_bits(0x3da3_35e3);
const S7: f32 = f32::from_bits(0xbb99_6966);
const S9: f32 = f32::from_bits(0x3928_3c1a);
/// cos(π f / 2) = 1 + C2 f² + C4 f⁴ + C6 f⁶ + C8 f⁸ + C10 f¹⁰.
const C2: f32 = f32::from_bits(0xbf9d_e9e6);
const C4: f32 = f32::from_bits(0x3e81_e0f8);
const C6: f32 = f32::from_bits(0xbcaa_e9e4);
const C8: f32 = f32::from_bits(0x3a70_fa83);
const C10: f32 = f32::from_bits(0xb7d3_68f9);

/// The odd 24-bit integer `2·(x >> 9) + 1` behind the uniform of word `x`.
#[inline(always)]
fn odd24(x: u32) -> u32 {
    ((x >> 9) << 1) | 1
}

/// `f32` uniform of a raw word: `(2·(x >> 9) + 1) · 2^-24` (exact).
#[inline(always)]
pub fn word_to_uniform(x: u32) -> f32 {
    odd24(x) as f32 * TWO_M24
}

/// `f64` uniform of two raw words: 52 bits `k`, `(2k + 1) · 2^-53` (exact).
#[inline(always)]
pub fn words_to_uniform_f64(hi: u32, lo: u32) -> f64 {
    let k = ((hi as u64) << 20) | (lo as u64 >> 12);
    ((k << 1) | 1) as f64 * (1.0 / 9_007_199_254_740_992.0)
}

/// `ln` of the uniform of word `x`, with this module's polynomial.
#[inline(always)]
pub fn ln_uniform(x: u32) -> f32 {
    let m = odd24(x) as f32; // exact; u = m · 2^-24
    let ix = m.to_bits().wrapping_add(0x3f80_0000 - SQRT_HALF_BITS);
    let k = (ix >> 23) as i32 - (127 + 24);
    let mm = f32::from_bits((ix & 0x007f_ffff) + SQRT_HALF_BITS); // in [√½, √2)
    let f = mm - 1.0;
    let s = f / (mm + 1.0);
    let z = s * s;
    let mut p = L9;
    p = p * z + L7;
    p = p * z + L5;
    p = p * z + L3;
    let r = p * z;
    let s2 = s + s;
    let lnm = s2 + s2 * r;
    let kf = k as f32;
    kf * LN2_HI + (kf * LN2_LO + lnm)
}

/// `(cos 2πu, sin 2πu)` for the uniform `u` of word `x`, with this module's polynomials.
#[inline(always)]
pub fn sincos_turn(x: u32) -> (f32, f32) {
    let m = odd24(x); // 4u = m · 2^-22
    let q = (m + (1 << 21)) >> 22; // nearest integer to 4u (never a tie: m is odd)
    let d = m as i32 - (q << 22) as i32; // |d| ≤ 2^21
    let f = d as f32 * TWO_M22; // exact, in [-1/2, 1/2]
    let z = f * f;
    let mut ps = S9;
    ps = ps * z + S7;
    ps = ps * z + S5;
    ps = ps * z + S3;
    ps = ps * z + S1;
    let s = ps * f;
    let mut pc = C10;
    pc = pc * z + C8;
    pc = pc * z + C6;
    pc = pc * z + C4;
    pc = pc * z + C2;
    let c = pc * z + 1.0;
    // Rotate by q quarter turns: swap for odd q, then flip signs.
    let (x0, y0) = if q & 1 != 0 { (s, c) } else { (c, s) };
    let cs = ((q + 1) & 2) << 30;
    let ss = (q & 2) << 30;
    (
        f32::from_bits(x0.to_bits() ^ cs),
        f32::from_bits(y0.to_bits() ^ ss),
    )
}

/// Box-Muller on two words: `(r cos θ, r sin θ)`.
#[inline(always)]
pub fn box_muller(x0: u32, x1: u32) -> (f32, f32) {
    let r = (ln_uniform(x0) * -2.0).sqrt();
    let (c, s) = sincos_turn(x1);
    (r * c, r * s)
}

#[inline(always)]
fn normal_block(w: [u32; 4]) -> [f32; 4] {
    let (a, b) = box_muller(w[0], w[1]);
    let (c, d) = box_muller(w[2], w[3]);
    [a, b, c, d]
}

#[inline(always)]
fn scalar_block(key: [u32; 2], ctr: [u32; 4], dist: Distribution) -> [f32; 4] {
    let w = philox4x32_10(ctr, key);
    match dist {
        Distribution::Uniform => w.map(word_to_uniform),
        Distribution::Normal => normal_block(w),
    }
}

/// The ten round keys of `key`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn round_keys(key: [u32; 2]) -> [[u32; 2]; 10] {
    let mut rk = [key; 10];
    for r in 1..10 {
        rk[r] = [
            rk[r - 1][0].wrapping_add(PHILOX_W0),
            rk[r - 1][1].wrapping_add(PHILOX_W1),
        ];
    }
    rk
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Eight Philox blocks per call, one per 32-bit lane; the same operations as the scalar code.
    use super::*;
    use core::arch::x86_64::*;

    #[inline(always)]
    unsafe fn mulhilo(a: __m256i, m: __m256i) -> (__m256i, __m256i) {
        let even = _mm256_mul_epu32(a, m);
        let odd = _mm256_mul_epu32(_mm256_srli_epi64::<32>(a), m);
        let lo = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        (hi, lo)
    }

    #[inline(always)]
    unsafe fn odd24(x: __m256i) -> __m256i {
        _mm256_or_si256(
            _mm256_slli_epi32::<1>(_mm256_srli_epi32::<9>(x)),
            _mm256_set1_epi32(1),
        )
    }

    #[inline(always)]
    unsafe fn uniform(x: __m256i) -> __m256 {
        _mm256_mul_ps(_mm256_cvtepi32_ps(odd24(x)), _mm256_set1_ps(TWO_M24))
    }

    #[inline(always)]
    unsafe fn ln_uniform(x: __m256i) -> __m256 {
        let m = _mm256_cvtepi32_ps(odd24(x));
        let ix = _mm256_add_epi32(
            _mm256_castps_si256(m),
            _mm256_set1_epi32((0x3f80_0000 - SQRT_HALF_BITS) as i32),
        );
        let k = _mm256_sub_epi32(_mm256_srli_epi32::<23>(ix), _mm256_set1_epi32(127 + 24));
        let mm = _mm256_castsi256_ps(_mm256_add_epi32(
            _mm256_and_si256(ix, _mm256_set1_epi32(0x007f_ffff)),
            _mm256_set1_epi32(SQRT_HALF_BITS as i32),
        ));
        let one = _mm256_set1_ps(1.0);
        let f = _mm256_sub_ps(mm, one);
        let s = _mm256_div_ps(f, _mm256_add_ps(mm, one));
        let z = _mm256_mul_ps(s, s);
        let mut p = _mm256_set1_ps(L9);
        p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(L7));
        p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(L5));
        p = _mm256_add_ps(_mm256_mul_ps(p, z), _mm256_set1_ps(L3));
        let r = _mm256_mul_ps(p, z);
        let s2 = _mm256_add_ps(s, s);
        let lnm = _mm256_add_ps(s2, _mm256_mul_ps(s2, r));
        let kf = _mm256_cvtepi32_ps(k);
        _mm256_add_ps(
            _mm256_mul_ps(kf, _mm256_set1_ps(LN2_HI)),
            _mm256_add_ps(_mm256_mul_ps(kf, _mm256_set1_ps(LN2_LO)), lnm),
        )
    }

    #[inline(always)]
    unsafe fn sincos_turn(x: __m256i) -> (__m256, __m256) {
        let m = odd24(x);
        let q = _mm256_srli_epi32::<22>(_mm256_add_epi32(m, _mm256_set1_epi32(1 << 21)));
        let d = _mm256_sub_epi32(m, _mm256_slli_epi32::<22>(q));
        let f = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(TWO_M22));
        let z = _mm256_mul_ps(f, f);
        let mut ps = _mm256_set1_ps(S9);
        ps = _mm256_add_ps(_mm256_mul_ps(ps, z), _mm256_set1_ps(S7));
        ps = _mm256_add_ps(_mm256_mul_ps(ps, z), _mm256_set1_ps(S5));
        ps = _mm256_add_ps(_mm256_mul_ps(ps, z), _mm256_set1_ps(S3));
        ps = _mm256_add_ps(_mm256_mul_ps(ps, z), _mm256_set1_ps(S1));
        let s = _mm256_mul_ps(ps, f);
        let mut pc = _mm256_set1_ps(C10);
        pc = _mm256_add_ps(_mm256_mul_ps(pc, z), _mm256_set1_ps(C8));
        pc = _mm256_add_ps(_mm256_mul_ps(pc, z), _mm256_set1_ps(C6));
        pc = _mm256_add_ps(_mm256_mul_ps(pc, z), _mm256_set1_ps(C4));
        pc = _mm256_add_ps(_mm256_mul_ps(pc, z), _mm256_set1_ps(C2));
        let c = _mm256_add_ps(_mm256_mul_ps(pc, z), _mm256_set1_ps(1.0));
        let one = _mm256_set1_epi32(1);
        let two = _mm256_set1_epi32(2);
        let swap = _mm256_castsi256_ps(_mm256_slli_epi32::<31>(_mm256_and_si256(q, one)));
        let x0 = _mm256_blendv_ps(c, s, swap);
        let y0 = _mm256_blendv_ps(s, c, swap);
        let cs = _mm256_slli_epi32::<30>(_mm256_and_si256(_mm256_add_epi32(q, one), two));
        let ss = _mm256_slli_epi32::<30>(_mm256_and_si256(q, two));
        (
            _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(x0), cs)),
            _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(y0), ss)),
        )
    }

    #[inline(always)]
    unsafe fn box_muller(x0: __m256i, x1: __m256i) -> (__m256, __m256) {
        let r = _mm256_sqrt_ps(_mm256_mul_ps(ln_uniform(x0), _mm256_set1_ps(-2.0)));
        let (c, s) = sincos_turn(x1);
        (_mm256_mul_ps(r, c), _mm256_mul_ps(r, s))
    }

    /// Stores four 8-lane vectors block-major: `out[4j + w] = v[w][j]`.
    #[inline(always)]
    unsafe fn store_transposed(a: __m256, b: __m256, c: __m256, d: __m256, out: &mut [f32; 32]) {
        let t0 = _mm256_unpacklo_ps(a, b);
        let t1 = _mm256_unpackhi_ps(a, b);
        let t2 = _mm256_unpacklo_ps(c, d);
        let t3 = _mm256_unpackhi_ps(c, d);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let p = out.as_mut_ptr();
        _mm256_storeu_ps(p, _mm256_permute2f128_ps::<0x20>(u0, u1));
        _mm256_storeu_ps(p.add(8), _mm256_permute2f128_ps::<0x20>(u2, u3));
        _mm256_storeu_ps(p.add(16), _mm256_permute2f128_ps::<0x31>(u0, u1));
        _mm256_storeu_ps(p.add(24), _mm256_permute2f128_ps::<0x31>(u2, u3));
    }

    /// Eight blocks: lane `j` has counter `(c0[j], c1[j], c2[j], c3[j])`; `out[4j + w]` gets
    /// value `w` of block `j`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks8(
        rk: &[[u32; 2]; 10],
        c0: &[u32; 8],
        c1: &[u32; 8],
        c2: &[u32; 8],
        c3: &[u32; 8],
        dist: Distribution,
        out: &mut [f32; 32],
    ) {
        let load = |c: &[u32; 8]| _mm256_loadu_si256(c.as_ptr() as *const __m256i);
        blocks::<1>(
            rk,
            [[load(c0)], [load(c1)], [load(c2)], [load(c3)]],
            dist,
            out,
        );
    }

    /// Sixteen blocks, lane `j` with counter `(c[0][j], c[1][j], c[2][j], c[3][j])`; `out[4j + w]`
    /// gets value `w` of block `j`.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks16(
        rk: &[[u32; 2]; 10],
        c: &[[u32; 16]; 4],
        dist: Distribution,
        out: &mut [f32; 64],
    ) {
        let load =
            |w: usize, h: usize| _mm256_loadu_si256(c[w][8 * h..].as_ptr() as *const __m256i);
        let v = [
            [load(0, 0), load(0, 1)],
            [load(1, 0), load(1, 1)],
            [load(2, 0), load(2, 1)],
            [load(3, 0), load(3, 1)],
        ];
        blocks::<2>(rk, v, dist, out);
    }

    /// `8 S` consecutive blocks `b, b + 1, ...` of one stream (counter words 1..4 = `tail`), into
    /// `out[..32 S]`, block-major. `S` independent vector sets run interleaved for instruction-level
    /// parallelism.
    ///
    /// # Safety
    /// The CPU must support AVX2; `out.len() >= 32 S`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn consecutive<const S: usize>(
        rk: &[[u32; 2]; 10],
        b: u32,
        tail: [u32; 3],
        dist: Distribution,
        out: &mut [f32],
    ) {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let c0: [__m256i; S] = core::array::from_fn(|s| {
            _mm256_add_epi32(
                _mm256_set1_epi32(b.wrapping_add(8 * s as u32) as i32),
                lanes,
            )
        });
        let c1 = [_mm256_set1_epi32(tail[0] as i32); S];
        let c2 = [_mm256_set1_epi32(tail[1] as i32); S];
        let c3 = [_mm256_set1_epi32(tail[2] as i32); S];
        blocks::<S>(rk, [c0, c1, c2, c3], dist, out);
    }

    #[inline(always)]
    unsafe fn blocks<const S: usize>(
        rk: &[[u32; 2]; 10],
        c: [[__m256i; S]; 4],
        dist: Distribution,
        out: &mut [f32],
    ) {
        assert!(out.len() >= 32 * S);
        let [mut x0, mut x1, mut x2, mut x3] = c;
        let m0 = _mm256_set1_epi32(PHILOX_M0 as i32);
        let m1 = _mm256_set1_epi32(PHILOX_M1 as i32);
        for k in rk.iter() {
            let k0 = _mm256_set1_epi32(k[0] as i32);
            let k1 = _mm256_set1_epi32(k[1] as i32);
            for s in 0..S {
                let (hi0, lo0) = mulhilo(x0[s], m0);
                let (hi1, lo1) = mulhilo(x2[s], m1);
                x0[s] = _mm256_xor_si256(_mm256_xor_si256(hi1, x1[s]), k0);
                x1[s] = lo1;
                x2[s] = _mm256_xor_si256(_mm256_xor_si256(hi0, x3[s]), k1);
                x3[s] = lo0;
            }
        }
        for s in 0..S {
            let dst: &mut [f32; 32] = (&mut out[32 * s..32 * s + 32]).try_into().unwrap();
            match dist {
                Distribution::Uniform => store_transposed(
                    uniform(x0[s]),
                    uniform(x1[s]),
                    uniform(x2[s]),
                    uniform(x3[s]),
                    dst,
                ),
                Distribution::Normal => {
                    let (a, b) = box_muller(x0[s], x1[s]);
                    let (c, d) = box_muller(x2[s], x3[s]);
                    store_transposed(a, b, c, d, dst)
                }
            }
        }
    }
}
