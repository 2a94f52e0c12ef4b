//! Optimisation passes: validated IR → optimised IR → [`Program`] for codegen.
//!
//! * [`fold`]: algebraic rewrites of the IR that keep it an `ir::Model` (so the reference
//!   evaluator can check them): dead-node removal, affine pre-processing and batch norms folded
//!   into the neighbouring dense layer, activations and residual adds fused into the dense
//!   epilogue;
//! * [`plan`]: lowering to a straight-line [`Program`]: kernels packed in the runtime's panel
//!   layout, every value given a tile buffer slot (slots reused once a value is dead, in-place
//!   ops reuse their input's slot), all constants placed in one aligned weight blob.
//!
//! Every pass takes validated input and cannot fail.

pub mod fold;
pub mod plan;

pub use plan::{plan, Program};

use crate::ir::ValidModel;

/// Runs the IR rewrites of [`fold`] to a fixed point.
pub fn optimise(model: &ValidModel) -> ValidModel {
    let optimised = fold::run(model.model().clone());
    model.replace_model(optimised, model.widths().clone())
}
