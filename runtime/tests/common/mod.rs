#![allow(dead_code)]
/// Small deterministic generator (xorshift64*), so tests need no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Every activation the runtime knows, with typical parameters.
pub fn all_activations() -> Vec<runtime::Activation> {
    use runtime::Activation::*;
    vec![
        Linear,
        Relu,
        LeakyRelu { alpha: 0.1 },
        Elu { alpha: 1.3 },
        Selu { alpha: 1.673_263_2, scale: 1.050_701 },
        Silu,
        GeluErf,
        GeluTanh,
        Tanh,
        Sigmoid,
        Softplus { beta: 1.0, threshold: f32::INFINITY },
        Softplus { beta: 2.0, threshold: 20.0 },
        Softmax,
    ]
}

/// Tolerance of an element-wise activation result at input `x` with f64 reference `r`: a few
/// f32 ulps, growing with |x| where the function's argument is itself a rounded product.
pub fn act_tol(x: f64, r: f64) -> f64 {
    1.5e-7 + 6e-7 * r.abs() * (1.0 + 0.25 * x.abs())
}
