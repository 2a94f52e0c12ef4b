//! The scikinC-style baseline: the same weights compiled the way LHCb deploys them today (one
//! scalar C function per layer, weights as literals in function-local arrays, one row per call,
//! `gcc -O3` without `-march`), linked into this binary by `build.rs` so that `flashc bench` can
//! report the speed-up measured in the same run.

/// A baseline entry point, with the scikinC calling convention.
#[derive(Clone, Copy)]
pub enum Baseline {
    /// `float* f(float* out, const float* in)`
    Plain(unsafe extern "C" fn(*mut f32, *const f32) -> *mut f32),
    /// `float* f(float* out, const float* in, const float* random)` (GAN generators)
    Generator(unsafe extern "C" fn(*mut f32, *const f32, *const f32) -> *mut f32),
}

impl Baseline {
    /// Runs one row. The slices are sized by the caller from the model's `ModelInfo`.
    pub fn call(self, out: &mut [f32], input: &[f32], random: &[f32]) {
        // SAFETY: the C functions read exactly n_inputs (and n_noise) floats and write n_outputs
        // floats, the sizes of these slices (checked by the callers through ModelInfo).
        unsafe {
            match self {
                Baseline::Plain(f) => f(out.as_mut_ptr(), input.as_ptr()),
                Baseline::Generator(f) => f(out.as_mut_ptr(), input.as_ptr(), random.as_ptr()),
            };
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/baselines.rs"));

/// The baseline of the model named `name`, if the scikinC-style emitter supports its ops.
pub fn find(name: &str) -> Option<Baseline> {
    BASELINES.iter().find(|(n, _)| *n == name).map(|&(_, b)| b)
}
