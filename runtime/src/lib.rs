//! flashc runtime: everything generated model code calls into.
//!
//! * [`isa`]: the instruction-set tier, detected once, overridable with `FLASHC_ISA`.
//! * [`model`]: the [`Model`] trait every compiled model implements.
//! * [`dense`]: the dense-layer kernel (packed weights, fused bias + activation + residual).
//! * [`act`]: element-wise activations and softmax over a tile of rows.
//! * [`math`]: SIMD polynomial `exp`, `log`, `tanh`, `sigmoid`, `erf` with documented error.
//! * [`prep`]: pre/post-processing kernels (scalers, quantile transform, logit, norms).
//! * [`flow`]: normalizing flows: the MADE sweep (masked autoregressive transforms, one-sweep
//!   inverse), permutations, the standard normal log density.
//! * [`weights`]: aligned static weight blobs.
//! * [`peak`]: the measured FMA peak of a tier (the dense kernel's yardstick).
//!
//! Every kernel takes a [`Tier`] and dispatches on it once per call; see [`isa`] for the
//! policy. Kernels panic only when their buffers are too short for the sizes passed, which
//! generated code (compile-time shapes) never does; user-facing size errors are [`Error`]s
//! from [`Model::run`].

pub mod act;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod dense;
pub mod flow;
pub mod isa;
pub mod math;
pub mod model;
pub mod ode;
pub mod peak;
pub mod prep;
mod simd;
pub mod weights;

pub use act::Activation;
pub use isa::Tier;
pub use model::{Error, Model, ModelInfo};
pub mod event;
pub mod rng;
pub mod sim;
