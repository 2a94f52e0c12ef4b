//! The CMS FlashSim-style object pipeline.
//!
//! For each object type, in order (muons, then electrons), and each source object (generator
//! muons, generator electrons with `pT > min_pt` and `|η| < max_abs_eta`):
//! 1. an efficiency model (classifier) gives `p`; the object is kept if `p > U`, `U ~ U(0, 1)`;
//! 2. a property model samples the reconstructed object: a flow-matching vector field
//!    `v(x, context, t)` (a compiled model on `cat(x, context, t)`) integrated from `t = 0`
//!    (standard normal noise `z`) to `t = 1` with a fixed-step method
//!    ([`crate::ode`], RK4 with 8 steps by default), then a deterministic targets model maps the
//!    standardised sample to physical quantities (`pt_ratio`, `d_eta`, `d_phi`, `iso`; the
//!    isolation is clamped at 0, which a sample can undershoot slightly).
//!
//! Electrons are conditioned on the muons simulated before them in the same event and fold:
//! the number of reconstructed muons and the ΔR to the nearest one (5 when there is none).
//!
//! Oversampling: each event is simulated `folds` times with independent random streams and the
//! fold index is written, so analyses can treat the folds of one event as correlated.
//!
//! One output row per source object and fold, in event, fold, particle order.
use super::kinematics::{delta_r, wrap_phi};
use super::{
    expect_model, particle_key, run_model, streams, uniform, Counts, Kind, Pipeline, Table,
};
use crate::event::GenEvent;
use crate::model::{Error, Model};
use crate::ode::{self, Method};

/// Dimension of the sampled target vector.
pub const DIM: usize = 4;
/// Muon context (generator muon).
pub const MUON_CONTEXT: [&str; 4] = ["gen_log10_pt", "gen_eta", "gen_phi", "gen_charge"];
/// Electron context (generator electron and the muons simulated before).
pub const ELECTRON_CONTEXT: [&str; 6] = [
    "gen_log10_pt",
    "gen_eta",
    "gen_phi",
    "gen_charge",
    "n_reco_muons",
    "dr_muon",
];
/// The integrated state.
pub const STATE: [&str; DIM] = ["x0", "x1", "x2", "x3"];
/// The vector field's outputs.
pub const VELOCITY: [&str; DIM] = ["v0", "v1", "v2", "v3"];
/// The targets model's outputs.
pub const TARGETS: [&str; DIM] = ["pt_ratio", "d_eta", "d_phi", "iso"];
/// ΔR written for an electron in an event without reconstructed muons.
pub const NO_MUON_DR: f32 = 5.0;

/// The models of one object type.
#[derive(Clone, Copy)]
pub struct ObjectModels<'a> {
    /// Context → `p_reco`.
    pub efficiency: &'a dyn Model,
    /// `cat(x, context, t)` → `dx/dt`.
    pub flow: &'a dyn Model,
    /// Standardised sample `x` → physical targets.
    pub targets: &'a dyn Model,
}

/// The models of the FlashSim pipeline.
#[derive(Clone, Copy)]
pub struct FlashSimModels<'a> {
    pub muon: ObjectModels<'a>,
    pub electron: ObjectModels<'a>,
}

/// What to simulate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlashSimConfig {
    /// Run seed.
    pub seed: u64,
    /// Oversampling factor: times each event is simulated (fold index 0..folds).
    pub folds: u32,
    /// ODE method of the property models (fixed-step only: adaptive step control couples the
    /// rows of a batch, which would make results depend on batching).
    pub method: Method,
    /// Source selection: generator objects with pT above this (GeV)...
    pub min_pt: f64,
    /// ... and |η| below this.
    pub max_abs_eta: f64,
}

impl Default for FlashSimConfig {
    fn default() -> Self {
        FlashSimConfig {
            seed: 0,
            folds: 1,
            method: Method::Rk4 { steps: 8 },
            min_pt: 3.0,
            max_abs_eta: 2.5,
        }
    }
}

/// The FlashSim pipeline with its models.
pub struct FlashSim<'a> {
    models: FlashSimModels<'a>,
    config: FlashSimConfig,
}

const NAME: &str = "flashsim";

impl<'a> FlashSim<'a> {
    /// Checks the models against their column contracts and the configuration.
    pub fn new(models: FlashSimModels<'a>, config: FlashSimConfig) -> Result<FlashSim<'a>, Error> {
        for (obj, m, ctx) in [
            ("muon", &models.muon, &MUON_CONTEXT[..]),
            ("electron", &models.electron, &ELECTRON_CONTEXT[..]),
        ] {
            let mut flow_in: Vec<&str> = STATE.to_vec();
            flow_in.extend_from_slice(ctx);
            flow_in.push("t");
            expect_model(
                NAME,
                &format!("{obj} efficiency"),
                m.efficiency,
                ctx,
                &["p_reco"],
                Some(false),
            )?;
            expect_model(
                NAME,
                &format!("{obj} flow"),
                m.flow,
                &flow_in,
                &VELOCITY,
                Some(false),
            )?;
            expect_model(
                NAME,
                &format!("{obj} targets"),
                m.targets,
                &STATE,
                &TARGETS,
                Some(false),
            )?;
        }
        if config.folds == 0 || config.folds > super::MAX_FOLDS {
            return Err(super::config_error(
                NAME,
                format!("{} folds", config.folds),
                "the oversampling factor must be between 1 and 256",
            ));
        }
        let steps = match config.method {
            Method::Euler { steps }
            | Method::Midpoint { steps }
            | Method::Rk4 { steps }
            | Method::Rk4ThreeEighths { steps } => steps,
            Method::Dopri5(_) => 0,
        };
        if steps == 0 {
            return Err(super::config_error(
                NAME,
                format!("ODE method {} with {steps} steps", config.method.name()),
                "use a fixed-step method (euler, midpoint, rk4, rk4 3/8) with at least one step: \
                 adaptive steps couple the rows of a batch and would break reproducibility",
            ));
        }
        Ok(FlashSim { models, config })
    }

    /// The configuration.
    pub fn config(&self) -> &FlashSimConfig {
        &self.config
    }

    /// Efficiency, then flow sampling, of the objects with contexts `ctx` (row-major, `w` wide).
    /// Returns the kept objects (indices into the rows) and their physical targets.
    #[allow(clippy::too_many_arguments)]
    fn objects(
        &self,
        m: &ObjectModels,
        eff_stream: u8,
        flow_stream: u8,
        ctx: &[f32],
        w: usize,
        events: &[u64],
        keys: &[u32],
    ) -> Result<(Vec<usize>, Vec<f32>), Error> {
        let seed = self.config.seed;
        let mut p = Vec::new();
        run_model(seed, eff_stream, m.efficiency, ctx, events, keys, &mut p)?;
        let kept: Vec<usize> = (0..events.len())
            .filter(|&k| p[k] > uniform(seed, eff_stream, events[k], keys[k], 0))
            .collect();
        let n = kept.len();
        let ev: Vec<u64> = kept.iter().map(|&k| events[k]).collect();
        let ky: Vec<u32> = kept.iter().map(|&k| keys[k]).collect();
        let mut x = vec![0f32; n * DIM];
        crate::rng::fill_batch(
            seed,
            flow_stream,
            crate::rng::Distribution::Normal,
            0,
            &ev,
            &ky,
            &mut x,
        );
        if n > 0 {
            let width = DIM + w + 1;
            let mut inp = vec![0f32; n * width];
            for (i, &k) in kept.iter().enumerate() {
                inp[i * width + DIM..i * width + DIM + w].copy_from_slice(&ctx[k * w..k * w + w]);
            }
            let mut ws = ode::Workspace::<f32>::new(n, DIM).map_err(|e| flow_error(m, e))?;
            let mut failed = None;
            ode::integrate(&self.config.method, &mut x, &mut ws, |t, state, out| {
                for i in 0..n {
                    inp[i * width..i * width + DIM].copy_from_slice(&state[i * DIM..i * DIM + DIM]);
                    inp[i * width + width - 1] = t;
                }
                if let Err(e) = m.flow.run(&inp, &[], out) {
                    failed.get_or_insert(e);
                }
            })
            .map_err(|e| flow_error(m, e))?;
            if let Some(e) = failed {
                return Err(e);
            }
        }
        let mut y = vec![0f32; n * DIM];
        if n > 0 {
            m.targets.run(&x, &[], &mut y)?;
        }
        Ok((kept, y))
    }
}

fn flow_error(m: &ObjectModels, e: ode::Error) -> Error {
    super::config_error(
        NAME,
        format!("sampling with `{}` failed: {e}", m.flow.info().name),
        "check the vector-field model and the context values",
    )
}

/// The output columns.
pub fn schema() -> Vec<(&'static str, Kind)> {
    use Kind::*;
    vec![
        ("event", I64),
        ("gen_event_number", I64),
        ("fold", I32),
        ("particle", I32),
        ("pdg", I32),
        ("gen_pt", F32),
        ("gen_eta", F32),
        ("gen_phi", F32),
        ("gen_charge", F32),
        ("reco", U8),
        ("reco_pt", F32),
        ("reco_eta", F32),
        ("reco_phi", F32),
        ("iso", F32),
        ("n_reco_muons", I32),
        ("dr_muon", F32),
    ]
}

impl Pipeline for FlashSim<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn schema(&self) -> Vec<(&'static str, Kind)> {
        schema()
    }

    fn models(&self) -> Vec<&'static str> {
        let (a, b) = (&self.models.muon, &self.models.electron);
        [
            a.efficiency,
            a.flow,
            a.targets,
            b.efficiency,
            b.flow,
            b.targets,
        ]
        .iter()
        .map(|m| m.info().name)
        .collect()
    }

    fn simulate(
        &self,
        events: &[(u64, &GenEvent)],
        out: &mut Table,
        counts: &mut Counts,
    ) -> Result<(), Error> {
        let cfg = &self.config;
        // Rows: (index into events, fold, particle index, |pdg|).
        let mut rows: Vec<(usize, u32, usize)> = Vec::new();
        for (e, (_, ev)) in events.iter().enumerate() {
            if ev.particles.len() > super::MAX_PARTICLES_PER_EVENT {
                return Err(super::config_error(
                    NAME,
                    format!("event {} has {} particles", ev.number, ev.particles.len()),
                    "events may have at most 2^24 particles",
                ));
            }
            for f in 0..cfg.folds {
                for (i, p) in ev.particles.iter().enumerate() {
                    let a = p.pdg_id.unsigned_abs();
                    if p.is_final()
                        && (a == 11 || a == 13)
                        && p.pt() > cfg.min_pt
                        && p.eta().abs() < cfg.max_abs_eta
                    {
                        rows.push((e, f, i));
                    }
                }
            }
        }
        let n = rows.len();
        counts.add("events", events.len() as u64 * cfg.folds as u64);
        let part = |r: usize| &events[rows[r].0].1.particles[rows[r].2];
        let event_of = |r: usize| events[rows[r].0].0;
        let key_of = |r: usize| particle_key(rows[r].1, rows[r].2);
        let gen = |r: usize| {
            let p = part(r);
            [
                p.pt().log10() as f32,
                p.eta() as f32,
                p.phi() as f32,
                if p.charge < 0.0 { -1.0 } else { 1.0 },
            ]
        };
        let mut reco = vec![0u8; n];
        let mut t = vec![[f32::NAN; 4]; n]; // pt, eta, phi, iso
        let mut n_mu = vec![-1i32; n];
        let mut dr = vec![f32::NAN; n];

        // Muons.
        let mu: Vec<usize> = (0..n)
            .filter(|&r| part(r).pdg_id.unsigned_abs() == 13)
            .collect();
        let ctx: Vec<f32> = mu.iter().flat_map(|&r| gen(r)).collect();
        let ev: Vec<u64> = mu.iter().map(|&r| event_of(r)).collect();
        let ky: Vec<u32> = mu.iter().map(|&r| key_of(r)).collect();
        let (kept, y) = self.objects(
            &self.models.muon,
            streams::MUON_EFFICIENCY,
            streams::MUON_FLOW,
            &ctx,
            4,
            &ev,
            &ky,
        )?;
        counts.add("generator muons", mu.len() as u64);
        counts.add("reconstructed muons", kept.len() as u64);
        // Reconstructed muons per (event, fold): (η, φ).
        let mut reco_mu: std::collections::BTreeMap<(usize, u32), Vec<(f64, f64)>> =
            Default::default();
        for (i, &k) in kept.iter().enumerate() {
            let r = mu[k];
            let p = part(r);
            let y = &y[i * DIM..i * DIM + DIM];
            let eta = p.eta() + y[1] as f64;
            let phi = wrap_phi(p.phi() + y[2] as f64);
            reco[r] = 1;
            t[r] = [(p.pt() * y[0] as f64) as f32, eta as f32, phi as f32, y[3].max(0.0)];
            reco_mu
                .entry((rows[r].0, rows[r].1))
                .or_default()
                .push((eta, phi));
        }

        // Electrons, conditioned on the muons.
        let el: Vec<usize> = (0..n)
            .filter(|&r| part(r).pdg_id.unsigned_abs() == 11)
            .collect();
        let mut ctx = Vec::with_capacity(el.len() * 6);
        for &r in &el {
            let p = part(r);
            let muons = reco_mu
                .get(&(rows[r].0, rows[r].1))
                .map_or(&[][..], |v| &v[..]);
            let d = muons
                .iter()
                .map(|&(e, f)| delta_r(p.eta(), p.phi(), e, f))
                .fold(f64::INFINITY, f64::min);
            let d = if d.is_finite() {
                (d as f32).min(NO_MUON_DR)
            } else {
                NO_MUON_DR
            };
            n_mu[r] = muons.len() as i32;
            dr[r] = d;
            ctx.extend(gen(r));
            ctx.extend([muons.len() as f32, d]);
        }
        let ev: Vec<u64> = el.iter().map(|&r| event_of(r)).collect();
        let ky: Vec<u32> = el.iter().map(|&r| key_of(r)).collect();
        let (kept, y) = self.objects(
            &self.models.electron,
            streams::ELECTRON_EFFICIENCY,
            streams::ELECTRON_FLOW,
            &ctx,
            6,
            &ev,
            &ky,
        )?;
        counts.add("generator electrons", el.len() as u64);
        counts.add("reconstructed electrons", kept.len() as u64);
        for (i, &k) in kept.iter().enumerate() {
            let r = el[k];
            let p = part(r);
            let y = &y[i * DIM..i * DIM + DIM];
            reco[r] = 1;
            t[r] = [
                (p.pt() * y[0] as f64) as f32,
                (p.eta() + y[1] as f64) as f32,
                wrap_phi(p.phi() + y[2] as f64) as f32,
                y[3].max(0.0),
            ];
        }

        out.push_i64("event", (0..n).map(|r| event_of(r) as i64));
        out.push_i64(
            "gen_event_number",
            rows.iter().map(|r| events[r.0].1.number),
        );
        out.push_i32("fold", rows.iter().map(|r| r.1 as i32));
        out.push_i32("particle", rows.iter().map(|r| r.2 as i32));
        out.push_i32("pdg", (0..n).map(|r| part(r).pdg_id));
        let g: Vec<[f32; 4]> = (0..n).map(gen).collect();
        out.push_f32("gen_pt", (0..n).map(|r| part(r).pt() as f32));
        out.push_f32("gen_eta", g.iter().map(|g| g[1]));
        out.push_f32("gen_phi", g.iter().map(|g| g[2]));
        out.push_f32("gen_charge", g.iter().map(|g| g[3]));
        out.push_u8("reco", reco);
        for (j, name) in ["reco_pt", "reco_eta", "reco_phi", "iso"]
            .iter()
            .enumerate()
        {
            out.push_f32(name, t.iter().map(|v| v[j]));
        }
        out.push_i32("n_reco_muons", n_mu);
        out.push_f32("dr_muon", dr);
        debug_assert_eq!(out.check(), Ok(()));
        Ok(())
    }
}
