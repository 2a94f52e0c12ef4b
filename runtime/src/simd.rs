//! The small vector abstraction the kernels are written against (one generic body per kernel,
//! monomorphised per tier inside `#[target_feature]` entry points).
//!
//! Every method is `#[inline(always)]`: it is inlined into the tier's entry point and so
//! compiled with that entry point's target features. Calling a method outside such an entry
//! point on a machine without the features is undefined behaviour, hence `unsafe`.
//!
//! `max(a, b)` and `min(a, b)` follow the x86 convention: when either operand is NaN the
//! second one is returned (the kernels pass the data as second operand so NaN propagates).
#![allow(clippy::missing_safety_doc)]

pub(crate) trait Simd: Copy {
    type V: Copy;
    const LANES: usize;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` (fused where the tier has FMA).
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn min(a: Self::V, b: Self::V) -> Self::V;
    /// `a < b ? t : f`, lane-wise (false for NaN).
    unsafe fn lt_select(a: Self::V, b: Self::V, t: Self::V, f: Self::V) -> Self::V;
    /// `2^n` for integer-valued `n` in `-126..=127`.
    unsafe fn pow2i(n: Self::V) -> Self::V;
    /// For positive normal `x`: `(m, e)` with `x = m · 2^e`, `m` in `[0.5, 1)`.
    unsafe fn frexp(x: Self::V) -> (Self::V, Self::V);
    unsafe fn abs(x: Self::V) -> Self::V;
    /// Correctly rounded square root (IEEE `sqrt`).
    unsafe fn sqrt(x: Self::V) -> Self::V;
    /// `|mag|` with the sign of `sign`.
    unsafe fn copysign(mag: Self::V, sign: Self::V) -> Self::V;
}

/// Rounds to the nearest integer (ties to even) for `|x| < 2^22`.
#[inline(always)]
pub(crate) unsafe fn round<S: Simd>(x: S::V) -> S::V {
    const MAGIC: f32 = 12582912.0; // 1.5 · 2^23
    S::sub(S::add(x, S::splat(MAGIC)), S::splat(MAGIC))
}

/// Applies an expression to a slice, vector by vector; the tail goes through a zero-padded
/// buffer. A macro (not a closure) so the body is always inlined into the tier entry point.
macro_rules! map_slice {
    ($S:ty, $data:expr, |$v:ident| $body:expr) => {{
        let data: &mut [f32] = $data;
        let n = data.len();
        let p = data.as_mut_ptr();
        let mut i = 0;
        while i + <$S>::LANES <= n {
            let $v = <$S>::load(p.add(i));
            <$S>::store(p.add(i), $body);
            i += <$S>::LANES;
        }
        if i < n {
            let mut buf = [0.0f32; 16];
            buf[..n - i].copy_from_slice(&data[i..]);
            let $v = <$S>::load(buf.as_ptr());
            <$S>::store(buf.as_mut_ptr(), $body);
            data[i..].copy_from_slice(&buf[..n - i]);
        }
    }};
}
pub(crate) use map_slice;

// ---------------------------------------------------------------------------------------------
// Scalar: one f32 per "vector" (the reference for the polynomials, used by the scalar API).

#[derive(Clone, Copy)]
pub(crate) struct Scalar;

impl Simd for Scalar {
    type V = f32;
    const LANES: usize = 1;
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32 {
        x
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        *p
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        *p = v
    }
    #[inline(always)]
    unsafe fn add(a: f32, b: f32) -> f32 {
        a + b
    }
    #[inline(always)]
    unsafe fn sub(a: f32, b: f32) -> f32 {
        a - b
    }
    #[inline(always)]
    unsafe fn mul(a: f32, b: f32) -> f32 {
        a * b
    }
    #[inline(always)]
    unsafe fn div(a: f32, b: f32) -> f32 {
        a / b
    }
    #[inline(always)]
    unsafe fn fma(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
    #[inline(always)]
    unsafe fn max(a: f32, b: f32) -> f32 {
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn min(a: f32, b: f32) -> f32 {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    unsafe fn lt_select(a: f32, b: f32, t: f32, f: f32) -> f32 {
        if a < b {
            t
        } else {
            f
        }
    }
    #[inline(always)]
    unsafe fn pow2i(n: f32) -> f32 {
        f32::from_bits(((n as i32 + 127) << 23) as u32)
    }
    #[inline(always)]
    unsafe fn frexp(x: f32) -> (f32, f32) {
        let b = x.to_bits();
        let e = ((b >> 23) & 0xff) as i32 - 126;
        (f32::from_bits((b & 0x807f_ffff) | 0x3f00_0000), e as f32)
    }
    #[inline(always)]
    unsafe fn sqrt(x: f32) -> f32 {
        x.sqrt()
    }
    #[inline(always)]
    unsafe fn abs(x: f32) -> f32 {
        f32::from_bits(x.to_bits() & 0x7fff_ffff)
    }
    #[inline(always)]
    unsafe fn copysign(mag: f32, sign: f32) -> f32 {
        f32::from_bits((mag.to_bits() & 0x7fff_ffff) | (sign.to_bits() & 0x8000_0000))
    }
}

// ---------------------------------------------------------------------------------------------
// Portable: 16-lane arrays; simple loops that LLVM vectorises for the baseline target.

#[derive(Clone, Copy)]
pub(crate) struct Portable;

type A16 = [f32; 16];

macro_rules! lanes {
    (|$i:ident| $e:expr) => {{
        let mut r = [0.0f32; 16];
        for $i in 0..16 {
            r[$i] = $e;
        }
        r
    }};
}

impl Simd for Portable {
    type V = A16;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn splat(x: f32) -> A16 {
        [x; 16]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> A16 {
        core::ptr::read_unaligned(p as *const A16)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: A16) {
        core::ptr::write_unaligned(p as *mut A16, v)
    }
    #[inline(always)]
    unsafe fn add(a: A16, b: A16) -> A16 {
        lanes!(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn sub(a: A16, b: A16) -> A16 {
        lanes!(|i| a[i] - b[i])
    }
    #[inline(always)]
    unsafe fn mul(a: A16, b: A16) -> A16 {
        lanes!(|i| a[i] * b[i])
    }
    #[inline(always)]
    unsafe fn div(a: A16, b: A16) -> A16 {
        lanes!(|i| a[i] / b[i])
    }
    #[inline(always)]
    unsafe fn fma(a: A16, b: A16, c: A16) -> A16 {
        lanes!(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn max(a: A16, b: A16) -> A16 {
        lanes!(|i| if a[i] > b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    unsafe fn min(a: A16, b: A16) -> A16 {
        lanes!(|i| if a[i] < b[i] { a[i] } else { b[i] })
    }
    #[inline(always)]
    unsafe fn lt_select(a: A16, b: A16, t: A16, f: A16) -> A16 {
        lanes!(|i| if a[i] < b[i] { t[i] } else { f[i] })
    }
    #[inline(always)]
    unsafe fn pow2i(n: A16) -> A16 {
        lanes!(|i| f32::from_bits(((n[i] as i32 + 127) << 23) as u32))
    }
    #[inline(always)]
    unsafe fn frexp(x: A16) -> (A16, A16) {
        let m = lanes!(|i| f32::from_bits((x[i].to_bits() & 0x807f_ffff) | 0x3f00_0000));
        let e = lanes!(|i| (((x[i].to_bits() >> 23) & 0xff) as i32 - 126) as f32);
        (m, e)
    }
    #[inline(always)]
    unsafe fn sqrt(x: A16) -> A16 {
        lanes!(|i| x[i].sqrt())
    }
    #[inline(always)]
    unsafe fn abs(x: A16) -> A16 {
        lanes!(|i| f32::from_bits(x[i].to_bits() & 0x7fff_ffff))
    }
    #[inline(always)]
    unsafe fn copysign(mag: A16, sign: A16) -> A16 {
        lanes!(|i| f32::from_bits(
            (mag[i].to_bits() & 0x7fff_ffff) | (sign[i].to_bits() & 0x8000_0000)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// x86-64: AVX2 + FMA and AVX-512F.

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use core::arch::x86_64::*;

    #[derive(Clone, Copy)]
    pub(crate) struct Avx2;

    impl Simd for Avx2 {
        type V = __m256;
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: __m256, b: __m256) -> __m256 {
            _mm256_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m256, b: __m256) -> __m256 {
            _mm256_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m256, b: __m256) -> __m256 {
            _mm256_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn div(a: __m256, b: __m256) -> __m256 {
            _mm256_div_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn max(a: __m256, b: __m256) -> __m256 {
            _mm256_max_ps(a, b)
        }
        #[inline(always)]
        unsafe fn min(a: __m256, b: __m256) -> __m256 {
            _mm256_min_ps(a, b)
        }
        #[inline(always)]
        unsafe fn lt_select(a: __m256, b: __m256, t: __m256, f: __m256) -> __m256 {
            _mm256_blendv_ps(f, t, _mm256_cmp_ps::<_CMP_LT_OQ>(a, b))
        }
        #[inline(always)]
        unsafe fn pow2i(n: __m256) -> __m256 {
            let i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(i))
        }
        #[inline(always)]
        unsafe fn frexp(x: __m256) -> (__m256, __m256) {
            let b = _mm256_castps_si256(x);
            let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(b), _mm256_set1_epi32(126));
            let m = _mm256_or_si256(
                _mm256_and_si256(b, _mm256_set1_epi32(0x807f_ffffu32 as i32)),
                _mm256_set1_epi32(0x3f00_0000),
            );
            (_mm256_castsi256_ps(m), _mm256_cvtepi32_ps(e))
        }
        #[inline(always)]
        unsafe fn sqrt(x: __m256) -> __m256 {
            _mm256_sqrt_ps(x)
        }
        #[inline(always)]
        unsafe fn abs(x: __m256) -> __m256 {
            _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff)))
        }
        #[inline(always)]
        unsafe fn copysign(mag: __m256, sign: __m256) -> __m256 {
            let s = _mm256_castsi256_ps(_mm256_set1_epi32(0x8000_0000u32 as i32));
            _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sign))
        }
    }

    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    impl Simd for Avx512 {
        type V = __m512;
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m512, b: __m512) -> __m512 {
            _mm512_sub_ps(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn div(a: __m512, b: __m512) -> __m512 {
            _mm512_div_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn max(a: __m512, b: __m512) -> __m512 {
            _mm512_max_ps(a, b)
        }
        #[inline(always)]
        unsafe fn min(a: __m512, b: __m512) -> __m512 {
            _mm512_min_ps(a, b)
        }
        #[inline(always)]
        unsafe fn lt_select(a: __m512, b: __m512, t: __m512, f: __m512) -> __m512 {
            _mm512_mask_blend_ps(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b), f, t)
        }
        #[inline(always)]
        unsafe fn pow2i(n: __m512) -> __m512 {
            let i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(i))
        }
        #[inline(always)]
        unsafe fn frexp(x: __m512) -> (__m512, __m512) {
            let b = _mm512_castps_si512(x);
            let e = _mm512_sub_epi32(_mm512_srli_epi32::<23>(b), _mm512_set1_epi32(126));
            let m = _mm512_or_si512(
                _mm512_and_si512(b, _mm512_set1_epi32(0x807f_ffffu32 as i32)),
                _mm512_set1_epi32(0x3f00_0000),
            );
            (_mm512_castsi512_ps(m), _mm512_cvtepi32_ps(e))
        }
        #[inline(always)]
        unsafe fn sqrt(x: __m512) -> __m512 {
            _mm512_sqrt_ps(x)
        }
        #[inline(always)]
        unsafe fn abs(x: __m512) -> __m512 {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(x),
                _mm512_set1_epi32(0x7fff_ffff),
            ))
        }
        #[inline(always)]
        unsafe fn copysign(mag: __m512, sign: __m512) -> __m512 {
            let m = _mm512_and_si512(_mm512_castps_si512(mag), _mm512_set1_epi32(0x7fff_ffff));
            let s = _mm512_and_si512(
                _mm512_castps_si512(sign),
                _mm512_set1_epi32(0x8000_0000u32 as i32),
            );
            _mm512_castsi512_ps(_mm512_or_si512(m, s))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// aarch64: NEON (4 × f32). Compiled only on aarch64; it is written against the documented
// `core::arch::aarch64` signatures but cannot be exercised on the x86-64 development machines.

#[cfg(target_arch = "aarch64")]
pub(crate) use arm::Neon;

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::Simd;
    use core::arch::aarch64::*;

    #[derive(Clone, Copy)]
    pub(crate) struct Neon;

    impl Simd for Neon {
        type V = float32x4_t;
        const LANES: usize = 4;
        #[inline(always)]
        unsafe fn splat(x: f32) -> float32x4_t {
            vdupq_n_f32(x)
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> float32x4_t {
            vld1q_f32(p)
        }
        #[inline(always)]
        unsafe fn store(p: *mut f32, v: float32x4_t) {
            vst1q_f32(p, v)
        }
        #[inline(always)]
        unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vaddq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vsubq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vmulq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn div(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vdivq_f32(a, b)
        }
        #[inline(always)]
        unsafe fn fma(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
            vfmaq_f32(c, a, b)
        }
        #[inline(always)]
        unsafe fn max(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // x86 convention: b when unordered.
            vbslq_f32(vcgtq_f32(a, b), a, b)
        }
        #[inline(always)]
        unsafe fn min(a: float32x4_t, b: float32x4_t) -> float32x4_t {
            vbslq_f32(vcltq_f32(a, b), a, b)
        }
        #[inline(always)]
        unsafe fn lt_select(
            a: float32x4_t,
            b: float32x4_t,
            t: float32x4_t,
            f: float32x4_t,
        ) -> float32x4_t {
            vbslq_f32(vcltq_f32(a, b), t, f)
        }
        #[inline(always)]
        unsafe fn pow2i(n: float32x4_t) -> float32x4_t {
            let i = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
            vreinterpretq_f32_s32(vshlq_n_s32::<23>(i))
        }
        #[inline(always)]
        unsafe fn frexp(x: float32x4_t) -> (float32x4_t, float32x4_t) {
            let b = vreinterpretq_u32_f32(x);
            let e = vsubq_s32(
                vreinterpretq_s32_u32(vshrq_n_u32::<23>(b)),
                vdupq_n_s32(126),
            );
            let m = vorrq_u32(
                vandq_u32(b, vdupq_n_u32(0x807f_ffff)),
                vdupq_n_u32(0x3f00_0000),
            );
            (vreinterpretq_f32_u32(m), vcvtq_f32_s32(e))
        }
        #[inline(always)]
        unsafe fn sqrt(x: float32x4_t) -> float32x4_t {
            vsqrtq_f32(x)
        }
        #[inline(always)]
        unsafe fn abs(x: float32x4_t) -> float32x4_t {
            vabsq_f32(x)
        }
        #[inline(always)]
        unsafe fn copysign(mag: float32x4_t, sign: float32x4_t) -> float32x4_t {
            vbslq_f32(vdupq_n_u32(0x8000_0000), sign, mag)
        }
    }
}

/// Generates a public function that dispatches `$imp::<S>` on the tier, one
/// `#[target_feature]` entry point per tier.
macro_rules! tiered {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident : $t:ty),* $(,)?) => $imp:ident) => {
        $(#[$m])*
        $vis fn $name(tier: $crate::isa::Tier, $($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512($($a: $t),*) {
                unsafe { $imp::<$crate::simd::Avx512>($($a),*) }
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($a: $t),*) {
                unsafe { $imp::<$crate::simd::Avx2>($($a),*) }
            }
            #[cfg(target_arch = "aarch64")]
            #[target_feature(enable = "neon")]
            unsafe fn neon($($a: $t),*) {
                unsafe { $imp::<$crate::simd::Neon>($($a),*) }
            }
            // SAFETY: `checked` only returns tiers whose features this machine has.
            match $crate::isa::checked(tier) {
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Tier::Avx512 => unsafe { avx512($($a),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::isa::Tier::Avx2Fma => unsafe { avx2($($a),*) },
                #[cfg(target_arch = "aarch64")]
                $crate::isa::Tier::Neon => unsafe { neon($($a),*) },
                _ => unsafe { $imp::<$crate::simd::Portable>($($a),*) },
            }
        }
    };
}
pub(crate) use tiered;
