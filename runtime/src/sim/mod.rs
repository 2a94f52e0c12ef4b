//! Simulation pipelines: generator-level events in, analysis-level reconstructed quantities out.
//!
//! * [`lamarr`]: the LHCb Lamarr-style charged chain (propagation, acceptance, tracking
//!   efficiency, resolution, covariance, PID) and neutral chain (photon efficiency, resolution).
//! * [`flashsim`]: the CMS FlashSim-style object chain (per object type: efficiency, then
//!   properties from a flow-matching model conditioned on the generator object and on objects
//!   simulated earlier in the event), with oversampling.
//! * [`kinematics`]: straight-line propagation and the feature helpers both share.
//! * [`table`]: the columnar output of a pipeline ([`Table`]).
//!
//! A pipeline is plain typed Rust calling compiled models ([`crate::Model`]) on batches of
//! particles stored as structure of arrays: no per-particle dispatch, no interpretation. Models
//! are taken by trait object, so any compiled model that honours a stage's column contract (names
//! and order of its input and output columns, checked when the pipeline is built) can be plugged
//! in; `docs/pipelines.md` lists the contracts.
//!
//! # Determinism
//! Every random decision is a pure function of `(seed, event, fold, particle, stream, draw)`
//! ([`crate::rng`]); a row's model outputs do not depend on the batch it runs in; flow-matching
//! models are integrated with fixed-step methods, which act on each row independently. So a
//! pipeline's output for an event depends only on the seed, the event's index and its content,
//! however events are grouped into batches, threads or jobs.

pub mod flashsim;
pub mod kinematics;
pub mod lamarr;
pub mod table;

pub use table::{Column, Kind, Table, Values};

use crate::model::{Error, Model};

/// Rows of a pipeline output for one batch of events, with the counters of the summary.
pub trait Pipeline: Send + Sync {
    /// Short name (`lamarr`, `flashsim`).
    fn name(&self) -> &'static str;
    /// The output columns, in order.
    fn schema(&self) -> Vec<(&'static str, Kind)>;
    /// Simulates `events` (each with its index in the run, which keys the random streams) and
    /// appends one row per simulated particle or object to `out`, adding to `counts`.
    fn simulate(
        &self,
        events: &[(u64, &crate::event::GenEvent)],
        out: &mut Table,
        counts: &mut Counts,
    ) -> Result<(), Error>;
    /// The names of the models the pipeline runs, in stage order.
    fn models(&self) -> Vec<&'static str>;
}

/// Named counters for the end-of-run summary (`accepted`, `long`, ...), in first-use order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    entries: Vec<(&'static str, u64)>,
}

impl Counts {
    /// Adds `n` to counter `name`.
    pub fn add(&mut self, name: &'static str, n: u64) {
        match self.entries.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.entries.push((name, n)),
        }
    }

    /// The value of `name` (0 if never added).
    pub fn get(&self, name: &str) -> u64 {
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for &(k, v) in &other.entries {
            self.add(k, v);
        }
    }

    /// The counters in first-use order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.entries.iter().copied()
    }
}

/// The random streams of the pipelines (the `stream` of [`crate::rng::Stream`]); all below
/// [`crate::rng::RESERVED_STREAMS`]. Each decision or model noise has its own stream, so adding a
/// stage never shifts another stage's draws.
pub mod streams {
    pub const ACCEPTANCE: u8 = 1;
    pub const TRACK_TYPE: u8 = 2;
    pub const RESOLUTION: u8 = 3;
    pub const COVARIANCE: u8 = 4;
    pub const IS_MUON: u8 = 5;
    pub const RICH: u8 = 6;
    pub const MUON: u8 = 7;
    pub const GLOBAL_PID: u8 = 8;
    pub const PHOTON_EFFICIENCY: u8 = 9;
    pub const PHOTON_RESOLUTION: u8 = 10;
    pub const MUON_EFFICIENCY: u8 = 20;
    pub const MUON_FLOW: u8 = 21;
    pub const ELECTRON_EFFICIENCY: u8 = 22;
    pub const ELECTRON_FLOW: u8 = 23;
}

/// Most particles per event a pipeline takes (the particle index and the fold share the random
/// streams' 32-bit particle word: 24 bits for the index, 8 for the fold).
pub const MAX_PARTICLES_PER_EVENT: usize = 1 << 24;
/// Most oversampling folds.
pub const MAX_FOLDS: u32 = 256;

/// The particle word of the random streams for particle `index` in fold `fold`.
#[inline]
pub fn particle_key(fold: u32, index: usize) -> u32 {
    debug_assert!(fold < MAX_FOLDS && index < MAX_PARTICLES_PER_EVENT);
    fold << 24 | index as u32
}

/// A pipeline configuration problem.
pub(crate) fn config_error(pipeline: &'static str, message: String, hint: &str) -> Error {
    Error::Pipeline {
        pipeline,
        message,
        hint: hint.to_string(),
    }
}

/// Checks that `model`, used as `role` of `pipeline`, has exactly the expected input and output
/// columns (in order) and noise (`Some(true)` must have noise, `Some(false)` must not).
pub(crate) fn expect_model(
    pipeline: &'static str,
    role: &str,
    model: &dyn Model,
    inputs: &[&str],
    outputs: &[&str],
    noise: Option<bool>,
) -> Result<(), Error> {
    let info = model.info();
    let hint =
        "compile a model whose spec declares these columns in this order (see docs/pipelines.md)";
    if info.input_columns != inputs {
        return Err(config_error(
            pipeline,
            format!(
                "the {role} model `{}` takes input columns {:?}, the pipeline provides {:?}",
                info.name, info.input_columns, inputs
            ),
            hint,
        ));
    }
    if info.output_columns != outputs {
        return Err(config_error(
            pipeline,
            format!(
                "the {role} model `{}` gives output columns {:?}, the pipeline expects {:?}",
                info.name, info.output_columns, outputs
            ),
            hint,
        ));
    }
    match noise {
        Some(true) if info.n_noise == 0 => Err(config_error(
            pipeline,
            format!(
                "the {role} model `{}` draws no noise, but this stage is a generator",
                info.name
            ),
            hint,
        )),
        Some(false) if info.n_noise != 0 => Err(config_error(
            pipeline,
            format!(
                "the {role} model `{}` draws {} noise values, but this stage is deterministic",
                info.name, info.n_noise
            ),
            hint,
        )),
        _ => Ok(()),
    }
}

/// Runs `model` on `rows` rows, with noise from `stream` for the rows' `(event, particle key)`.
pub(crate) fn run_model(
    seed: u64,
    stream: u8,
    model: &dyn Model,
    inputs: &[f32],
    events: &[u64],
    keys: &[u32],
    out: &mut Vec<f32>,
) -> Result<(), Error> {
    let info = model.info();
    let rows = events.len();
    out.clear();
    out.resize(rows * info.n_outputs, 0.0);
    if rows == 0 {
        return Ok(());
    }
    let mut noise = vec![0f32; rows * info.n_noise];
    if info.n_noise > 0 {
        let dist = match info.noise {
            crate::model::Noise::Uniform => crate::rng::Distribution::Uniform,
            _ => crate::rng::Distribution::Normal,
        };
        crate::rng::fill_batch(seed, stream, dist, 0, events, keys, &mut noise);
    }
    model.run(inputs, &noise, out)?;
    Ok(())
}

/// Uniform draw `draw` of `(seed, event, key, stream)`: the Bernoulli and categorical decisions.
#[inline]
pub(crate) fn uniform(seed: u64, stream: u8, event: u64, key: u32, draw: u32) -> f32 {
    crate::rng::Stream::new(seed, event, key, stream).uniform(draw)
}

#[cfg(test)]
mod tests;
