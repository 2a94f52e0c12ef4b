//! Single-core FMA peak of a tier, the yardstick for the dense kernel's efficiency.
//!
//! Independent accumulators (`acc = acc·a + b`): 12 `__m256` on AVX2 (fits 16 registers with
//! the two constants), 24 `__m512` on AVX-512, 16 `float32x4_t` on NEON, 8 16-lane arrays on the
//! portable tier (multiply + add, as that tier computes). The iteration count goes through
//! `std::hint::black_box` on every call so the loop cannot be hoisted; the result is the best
//! of several short runs. Counts 2 FLOP per lane per multiply-add.
use crate::isa::Tier;
use crate::simd::Simd;
use std::hint::black_box;
use std::time::Instant;

#[inline(always)]
unsafe fn spin<S: Simd, const N: usize>(iters: usize) -> f32 {
    let a = S::splat(0.999_999);
    let b = S::splat(1e-6);
    let mut acc = [S::splat(0.0); N];
    for (i, v) in acc.iter_mut().enumerate() {
        *v = S::splat(i as f32);
    }
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = S::fma(*v, a, b);
        }
    }
    // Every lane of every accumulator is used, so none of the work can be dropped.
    let mut total = 0.0f32;
    let mut buf = [0.0f32; 16];
    for v in acc {
        S::store(buf.as_mut_ptr(), v);
        total += buf[..S::LANES].iter().sum::<f32>();
    }
    total
}

/// Runs `iters` iterations on `tier`; returns (FLOP per iteration, a value to keep alive).
fn run(tier: Tier, iters: usize) -> (f64, f32) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn avx512(n: usize) -> f32 {
        unsafe { spin::<crate::simd::Avx512, 24>(n) }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(n: usize) -> f32 {
        unsafe { spin::<crate::simd::Avx2, 12>(n) }
    }
    #[cfg(target_arch = "aarch64")]
    #[target_feature(enable = "neon")]
    unsafe fn neon(n: usize) -> f32 {
        unsafe { spin::<crate::simd::Neon, 16>(n) }
    }
    let n = black_box(iters);
    match crate::isa::checked(tier) {
        #[cfg(target_arch = "x86_64")]
        Tier::Avx512 => (2.0 * 24.0 * 16.0, unsafe { avx512(n) }),
        #[cfg(target_arch = "x86_64")]
        Tier::Avx2Fma => (2.0 * 12.0 * 8.0, unsafe { avx2(n) }),
        #[cfg(target_arch = "aarch64")]
        Tier::Neon => (2.0 * 16.0 * 4.0, unsafe { neon(n) }),
        _ => (2.0 * 8.0 * 16.0, unsafe { spin::<crate::simd::Portable, 8>(n) }),
    }
}

/// Measured single-core f32 FMA peak of `tier` in GFLOP/s (about 0.1 s of work). An
/// unsupported tier measures [`crate::isa::active`] instead.
pub fn fma_peak_gflops(tier: Tier) -> f64 {
    let iters = 2_000_000;
    let mut best = 0.0f64;
    for _ in 0..7 {
        let t = Instant::now();
        let (flop, v) = run(tier, iters);
        black_box(v);
        let s = t.elapsed().as_secs_f64();
        best = best.max(flop * iters as f64 / s / 1e9);
    }
    best
}
