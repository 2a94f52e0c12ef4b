//! Instruction-set tiers and run-time selection.
//!
//! # Tier policy
//!
//! The crate is compiled for the x86-64 (or aarch64) baseline, so one binary runs on every
//! machine of a grid site (x86-64-v2 included). Faster code paths are compiled into the same
//! binary inside `#[target_feature]` functions and selected at run time:
//!
//! | tier | needs | vector | notes |
//! |---|---|---|---|
//! | [`Tier::Avx512`] | `avx512f` + `avx2` + `fma` | 16 × f32 (`__m512`) | 32 registers, larger register blocks |
//! | [`Tier::Avx2Fma`] | `avx2` + `fma` | 8 × f32 (`__m256`) | fused multiply-add |
//! | [`Tier::Neon`] | aarch64 (NEON is architectural) | 4 × f32 (`float32x4_t`) | compiled only on aarch64 |
//! | [`Tier::Portable`] | nothing | 16-lane arrays | plain Rust; LLVM vectorises it for the baseline (SSE2) |
//!
//! The tier is detected once ([`active`], cached in a `OnceLock`). The environment variable
//! `FLASHC_ISA=avx512|avx2|neon|portable` forces a tier (CI uses it to test every tier the machine
//! has). Forcing a tier this machine cannot run prints one warning on stderr and falls back to
//! detection; it never crashes. Kernels take the tier as an argument and dispatch with one
//! `match` per call; a tier the machine does not support is replaced by [`active`], so passing
//! any tier is memory safe.
//!
//! Different tiers round differently (FMA versus separate multiply and add, different
//! polynomial evaluation order), so their results agree within the documented tolerances, not
//! bit for bit. Within one tier results are deterministic.
use std::fmt;
use std::sync::OnceLock;

/// An instruction-set tier, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// AVX-512F (with AVX2 and FMA), x86-64.
    Avx512,
    /// AVX2 with FMA3, x86-64 (x86-64-v3).
    Avx2Fma,
    /// NEON, aarch64.
    Neon,
    /// Plain Rust for the compilation target's baseline.
    Portable,
}

impl Tier {
    /// Every tier, best first.
    pub const ALL: [Tier; 4] = [Tier::Avx512, Tier::Avx2Fma, Tier::Neon, Tier::Portable];

    /// Whether this machine can run the tier.
    pub fn is_supported(self) -> bool {
        match self {
            Tier::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Tier::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Lower-case name, as accepted by `FLASHC_ISA`: `avx512`, `avx2`, `neon`, `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Avx512 => "avx512",
            Tier::Avx2Fma => "avx2",
            Tier::Neon => "neon",
            Tier::Portable => "portable",
        }
    }

    /// Parses a tier name (case-insensitive, surrounding blanks ignored). Accepts the names of
    /// [`Tier::name`] and the aliases `avx2fma`, `avx2+fma`, `scalar`.
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" | "avx-512" => Some(Tier::Avx512),
            "avx2" | "avx2fma" | "avx2+fma" | "avx2,fma" => Some(Tier::Avx2Fma),
            "neon" => Some(Tier::Neon),
            "portable" | "scalar" => Some(Tier::Portable),
            _ => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every tier this machine can run, best first; [`Tier::Portable`] is always last.
pub fn supported() -> Vec<Tier> {
    Tier::ALL.into_iter().filter(|t| t.is_supported()).collect()
}

/// The best tier this machine supports (ignores `FLASHC_ISA`).
pub fn detect() -> Tier {
    supported()[0]
}

/// Resolves the tier for an optional `FLASHC_ISA` value: the forced tier when it is valid and
/// supported, detection otherwise. The second value is the warning to print, if any.
pub fn resolve(forced: Option<&str>) -> (Tier, Option<String>) {
    let best = detect();
    match forced {
        None => (best, None),
        Some(s) if s.trim().is_empty() => (best, None),
        Some(s) => match Tier::parse(s) {
            Some(t) if t.is_supported() => (t, None),
            Some(t) => (
                best,
                Some(format!(
                    "flashc: FLASHC_ISA={s}: this machine cannot run the {t} tier; using {best} \
                     (supported: {})",
                    supported().iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                )),
            ),
            None => (
                best,
                Some(format!(
                    "flashc: FLASHC_ISA={s} is not a tier name (use avx512, avx2, neon or portable); using {best}"
                )),
            ),
        },
    }
}

/// The tier used by default: detected once, overridable with `FLASHC_ISA`.
pub fn active() -> Tier {
    static ACTIVE: OnceLock<Tier> = OnceLock::new();
    *ACTIVE.get_or_init(|| {
        let var = std::env::var("FLASHC_ISA").ok();
        let (tier, warning) = resolve(var.as_deref());
        if let Some(w) = warning {
            eprintln!("{w}");
        }
        tier
    })
}

/// `tier` if this machine supports it, else [`active`]. Kernels call this before entering
/// `#[target_feature]` code, which makes every public kernel safe to call with any tier.
#[inline]
pub(crate) fn checked(tier: Tier) -> Tier {
    if tier.is_supported() {
        tier
    } else {
        active()
    }
}
