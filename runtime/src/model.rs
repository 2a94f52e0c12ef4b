//! The [`Model`] trait every compiled model implements, its static description
//! ([`ModelInfo`]) and the crate's error type ([`Error`]).
use crate::isa::{self, Tier};
use std::fmt;

/// The noise a generative model draws per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// A deterministic model.
    None,
    /// Standard normal noise.
    Normal,
    /// Uniform noise on `[0, 1)`.
    Uniform,
}

/// Static description of a compiled model.
#[derive(Clone, Copy, Debug)]
pub struct ModelInfo {
    /// Spec name.
    pub name: &'static str,
    /// Spec path as given to the transpiler.
    pub source: &'static str,
    pub n_inputs: usize,
    pub n_noise: usize,
    pub n_outputs: usize,
    pub input_columns: &'static [&'static str],
    pub output_columns: &'static [&'static str],
    pub noise: Noise,
    /// Multiply-adds per row in the dense layers (after folding); the bench derives GFLOP/s
    /// (2 FLOP per multiply-add) and the fraction of the FMA peak from it.
    pub macs_per_row: u64,
}

/// The runtime's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A buffer has the wrong number of values.
    Shape {
        model: &'static str,
        /// `"inputs"`, `"noise"` or `"outputs"`.
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A batch buffer's length is not a whole number of rows.
    Ragged {
        model: &'static str,
        what: &'static str,
        len: usize,
        width: usize,
    },
    /// A model running on an accelerator failed (the message says why).
    Device {
        model: &'static str,
        message: String,
    },
    /// A simulation pipeline cannot be built or run as configured (a model that does not honour
    /// its stage's column contract, too many particles or folds, a diverging flow integration).
    Pipeline {
        /// `lamarr` or `flashsim`.
        pipeline: &'static str,
        message: String,
        hint: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape {
                model,
                what,
                expected,
                got,
            } => write!(
                f,
                "model `{model}`: the {what} buffer has {got} values, expected {expected}; \
                 hint: batch buffers are row-major, rows × width, and inputs, noise and outputs \
                 must describe the same number of rows"
            ),
            Error::Ragged {
                model,
                what,
                len,
                width,
            } => write!(
                f,
                "model `{model}`: the {what} buffer has {len} values, not a multiple of the row \
                 width {width}; hint: pass whole rows (row-major, {width} values per row)"
            ),
            Error::Device { model, message } => write!(f, "model `{model}` on the GPU: {message}"),
            Error::Pipeline {
                pipeline,
                message,
                hint,
            } => {
                write!(f, "{pipeline} pipeline: {message}; hint: {hint}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// A compiled model.
pub trait Model: Send + Sync {
    /// The static description.
    fn info(&self) -> &'static ModelInfo;

    /// Runs `rows` rows. Sizes are already checked: `inputs.len() == rows * n_inputs`,
    /// `noise.len() == rows * n_noise`, `out.len() == rows * n_outputs`. Must not allocate
    /// (generated code keeps its row tiles on the stack).
    fn run_unchecked(
        &self,
        tier: Tier,
        rows: usize,
        inputs: &[f32],
        noise: &[f32],
        out: &mut [f32],
    );

    /// Checks the sizes and runs on [`isa::active`]. Returns the number of rows.
    fn run(&self, inputs: &[f32], noise: &[f32], out: &mut [f32]) -> Result<usize, Error> {
        self.run_on(isa::active(), inputs, noise, out)
    }

    /// Checks the sizes and runs on `tier` (an unsupported tier falls back to [`isa::active`]).
    /// The number of rows is inferred from `out.len() / n_outputs` (or from the inputs, then
    /// the noise, for a model without outputs); all three buffers must agree.
    fn run_on(
        &self,
        tier: Tier,
        inputs: &[f32],
        noise: &[f32],
        out: &mut [f32],
    ) -> Result<usize, Error> {
        let info = self.info();
        let rows = check_rows(info, inputs.len(), noise.len(), out.len())?;
        if rows > 0 {
            self.run_unchecked(tier, rows, inputs, noise, out);
        }
        Ok(rows)
    }

    /// One row: `input.len() == n_inputs`, `noise.len() == n_noise`, `out.len() == n_outputs`.
    fn run_row(&self, input: &[f32], noise: &[f32], out: &mut [f32]) -> Result<(), Error> {
        let info = self.info();
        let m = info.name;
        for (what, expected, got) in [
            ("inputs", info.n_inputs, input.len()),
            ("noise", info.n_noise, noise.len()),
            ("outputs", info.n_outputs, out.len()),
        ] {
            if expected != got {
                return Err(Error::Shape {
                    model: m,
                    what,
                    expected,
                    got,
                });
            }
        }
        self.run_unchecked(isa::active(), 1, input, noise, out);
        Ok(())
    }
}

/// The number of rows described by three buffer lengths, or the first inconsistency.
pub fn check_rows(
    info: &ModelInfo,
    n_in: usize,
    n_noise: usize,
    n_out: usize,
) -> Result<usize, Error> {
    let m = info.name;
    let bufs = [
        ("outputs", n_out, info.n_outputs),
        ("inputs", n_in, info.n_inputs),
        ("noise", n_noise, info.n_noise),
    ];
    // The first buffer with a non-zero width defines the rows.
    let mut rows = None;
    for (what, len, width) in bufs {
        if width == 0 {
            continue;
        }
        if len % width != 0 {
            return Err(Error::Ragged {
                model: m,
                what,
                len,
                width,
            });
        }
        if rows.is_none() {
            rows = Some(len / width);
        }
    }
    let rows = rows.unwrap_or(0);
    for (what, len, width) in bufs {
        if len != rows * width {
            return Err(Error::Shape {
                model: m,
                what,
                expected: rows * width,
                got: len,
            });
        }
    }
    Ok(rows)
}
