//! The built-in particle gun: independent particles from a species mix, flat in momentum (or
//! transverse momentum), pseudorapidity and azimuth, from a smeared origin.
//!
//! Event `k` is a pure function of `(seed, k)` through [`crate::rng`], so it is identical however a
//! run is split into jobs, shards or threads. Random streams (all reserved for the inputs, see
//! [`crate::rng::RESERVED_STREAMS`]):
//!
//! | stream | particle index | draws |
//! |---|---|---|
//! | [`STREAM_EVENT`] (240) | `u32::MAX` | `f64` uniforms 0.. for the Poisson multiplicity; normals 0..4 for the origin (x, y, z, t) |
//! | [`STREAM_PARTICLE`] (241) | particle index `i` | `f64` uniforms 0..4: species, momentum, η, φ |
//!
//! Kinematics use `f64` and the standard library's `sinh`/`cosh`/`sin`/`cos`/`ln`, so events are
//! bit-identical for one build on one platform (the random numbers themselves are identical
//! everywhere).

use super::{pdg, Error, FourVector, GenEvent, GenParticle};
use crate::rng::Stream;

/// Stream of the event-level draws (multiplicity, origin).
pub const STREAM_EVENT: u8 = 240;
/// Stream of the per-particle draws.
pub const STREAM_PARTICLE: u8 = 241;
/// Largest accepted Poisson mean and fixed multiplicity.
pub const MAX_MULTIPLICITY: u32 = 100_000;

/// One species of the mix.
#[derive(Clone, Debug, PartialEq)]
pub struct Species {
    /// PDG id.
    pub pdg_id: i32,
    /// Relative weight (the weights need not sum to one).
    pub weight: f64,
    /// Mass (GeV); `None` takes it from [`pdg::mass`].
    pub mass: Option<f64>,
}

impl Species {
    /// A species with its PDG mass.
    pub fn new(pdg_id: i32, weight: f64) -> Species {
        Species {
            pdg_id,
            weight,
            mass: None,
        }
    }
}

/// The momentum spectrum: flat between `min` and `max` (GeV).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Momentum {
    /// Flat in the momentum magnitude.
    P {
        /// Lower edge (GeV).
        min: f64,
        /// Upper edge (GeV).
        max: f64,
    },
    /// Flat in the transverse momentum.
    Pt {
        /// Lower edge (GeV).
        min: f64,
        /// Upper edge (GeV).
        max: f64,
    },
}

/// Particles per event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Multiplicity {
    /// Always this many.
    Fixed(u32),
    /// Poisson distributed with this mean.
    Poisson(f64),
}

/// Particle-gun settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GunConfig {
    /// Run seed.
    pub seed: u64,
    /// Species mix.
    pub species: Vec<Species>,
    /// Momentum spectrum.
    pub momentum: Momentum,
    /// Pseudorapidity range `(min, max)`, flat.
    pub eta: (f64, f64),
    /// Particles per event.
    pub multiplicity: Multiplicity,
    /// Mean origin (mm).
    pub origin: FourVector,
    /// Gaussian width of the origin per coordinate (mm; 0 for none).
    pub origin_sigma: FourVector,
}

impl Default for GunConfig {
    /// A forward-spectrometer gun: charged pions, kaons, protons, muons and electrons of both signs
    /// plus photons, p flat in 2..100 GeV, η flat in 2..5, Poisson mean 20 per event, origin smeared
    /// by (0.04, 0.04, 45) mm.
    fn default() -> GunConfig {
        let mut species = Vec::new();
        for (id, w) in [
            (211, 0.30),
            (321, 0.08),
            (2212, 0.04),
            (13, 0.02),
            (11, 0.02),
        ] {
            species.push(Species::new(id, w));
            species.push(Species::new(-id, w));
        }
        species.push(Species::new(22, 0.08));
        GunConfig {
            seed: 0,
            species,
            momentum: Momentum::P {
                min: 2.0,
                max: 100.0,
            },
            eta: (2.0, 5.0),
            multiplicity: Multiplicity::Poisson(20.0),
            origin: FourVector::ZERO,
            origin_sigma: FourVector::new(0.04, 0.04, 45.0, 0.0),
        }
    }
}

/// A validated particle gun.
#[derive(Clone, Debug)]
pub struct ParticleGun {
    config: GunConfig,
    /// Cumulative weights, normalised to end at 1.
    cumulative: Vec<f64>,
    masses: Vec<f64>,
}

fn config_error(message: String, hint: &str) -> Error {
    Error::Config {
        message,
        hint: hint.to_string(),
    }
}

impl ParticleGun {
    /// Checks `config` and builds the gun.
    pub fn new(config: GunConfig) -> Result<ParticleGun, Error> {
        if config.species.is_empty() {
            return Err(config_error(
                "no species".into(),
                "give at least one PDG id with a positive weight",
            ));
        }
        let mut masses = Vec::with_capacity(config.species.len());
        let mut total = 0.0;
        for s in &config.species {
            if !(s.weight.is_finite() && s.weight >= 0.0) {
                return Err(config_error(
                    format!("species {} has weight {}", s.pdg_id, s.weight),
                    "weights must be finite and non-negative",
                ));
            }
            total += s.weight;
            let m = match s.mass.or_else(|| pdg::mass(s.pdg_id)) {
                Some(m) if m.is_finite() && m >= 0.0 => m,
                Some(m) => {
                    return Err(config_error(
                        format!("species {} has mass {m}", s.pdg_id),
                        "masses must be finite and non-negative (GeV)",
                    ))
                }
                None => {
                    return Err(config_error(
                        format!("no mass known for PDG id {}", s.pdg_id),
                        "give the mass explicitly (Species { mass: Some(..) }) or use a common particle",
                    ))
                }
            };
            masses.push(m);
        }
        if !(total > 0.0 && total.is_finite()) {
            return Err(config_error(
                format!("the species weights sum to {total}"),
                "give at least one positive weight",
            ));
        }
        let mut acc = 0.0;
        let mut cumulative: Vec<f64> = config
            .species
            .iter()
            .map(|s| {
                acc += s.weight;
                acc / total
            })
            .collect();
        *cumulative.last_mut().unwrap() = 1.0;
        let (lo, hi, what) = match config.momentum {
            Momentum::P { min, max } => (min, max, "p"),
            Momentum::Pt { min, max } => (min, max, "pT"),
        };
        if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && lo <= hi) {
            return Err(config_error(
                format!("{what} range {lo}..{hi}"),
                "the momentum range needs finite 0 <= min <= max (GeV)",
            ));
        }
        let (e0, e1) = config.eta;
        if !(e0.is_finite() && e1.is_finite() && e0 <= e1) {
            return Err(config_error(
                format!("eta range {e0}..{e1}"),
                "the eta range needs finite min <= max",
            ));
        }
        match config.multiplicity {
            Multiplicity::Fixed(n) if n > MAX_MULTIPLICITY => {
                return Err(config_error(
                    format!("multiplicity {n}"),
                    "use at most 100000 particles per event",
                ))
            }
            Multiplicity::Poisson(mu)
                if !(mu.is_finite() && (0.0..=MAX_MULTIPLICITY as f64).contains(&mu)) =>
            {
                return Err(config_error(
                    format!("Poisson mean {mu}"),
                    "the mean must be between 0 and 100000",
                ))
            }
            _ => {}
        }
        let o = config.origin;
        let s = config.origin_sigma;
        if ![o.x, o.y, o.z, o.t].iter().all(|v| v.is_finite())
            || ![s.x, s.y, s.z, s.t]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0)
        {
            return Err(config_error(
                format!("origin {o:?} with widths {s:?}"),
                "the origin must be finite and its widths finite and non-negative (mm)",
            ));
        }
        Ok(ParticleGun {
            config,
            cumulative,
            masses,
        })
    }

    /// The settings.
    pub fn config(&self) -> &GunConfig {
        &self.config
    }

    /// Number of particles of event `number`.
    fn multiplicity(&self, number: u64) -> usize {
        match self.config.multiplicity {
            Multiplicity::Fixed(n) => n as usize,
            Multiplicity::Poisson(mu) => {
                // Arrivals of a unit-rate Poisson process within [0, mu]: exact, no underflow.
                let st = Stream::new(self.config.seed, number, u32::MAX, STREAM_EVENT);
                let mut t = 0.0;
                let mut k = 0u32;
                loop {
                    t -= st.uniform_f64(k).ln();
                    if t > mu || k == u32::MAX - 1 {
                        return k as usize;
                    }
                    k += 1;
                }
            }
        }
    }

    /// Event `number`: a pure function of the seed and `number`.
    pub fn event(&self, number: u64) -> GenEvent {
        let c = &self.config;
        let ev = Stream::new(c.seed, number, u32::MAX, STREAM_EVENT);
        let mut z = [0f32; 4];
        ev.normals(0, &mut z);
        let vertex = FourVector::new(
            c.origin.x + c.origin_sigma.x * z[0] as f64,
            c.origin.y + c.origin_sigma.y * z[1] as f64,
            c.origin.z + c.origin_sigma.z * z[2] as f64,
            c.origin.t + c.origin_sigma.t * z[3] as f64,
        );
        let n = self.multiplicity(number);
        let mut particles = Vec::with_capacity(n);
        let mut u = [0f64; 4];
        for i in 0..n {
            Stream::new(c.seed, number, i as u32, STREAM_PARTICLE).uniforms_f64(0, &mut u);
            let k = self
                .cumulative
                .partition_point(|&cw| cw <= u[0])
                .min(self.cumulative.len() - 1);
            let (pdg_id, mass) = (c.species[k].pdg_id, self.masses[k]);
            let eta = c.eta.0 + (c.eta.1 - c.eta.0) * u[2];
            let phi = std::f64::consts::PI * (2.0 * u[3] - 1.0);
            let pt = match c.momentum {
                Momentum::P { min, max } => (min + (max - min) * u[1]) / eta.cosh(),
                Momentum::Pt { min, max } => min + (max - min) * u[1],
            };
            let (px, py, pz) = (pt * phi.cos(), pt * phi.sin(), pt * eta.sinh());
            let e = (px * px + py * py + pz * pz + mass * mass).sqrt();
            particles.push(GenParticle {
                id: i as i32 + 1,
                pdg_id,
                status: 1,
                px,
                py,
                pz,
                e,
                mass,
                vertex,
                charge: pdg::charge(pdg_id),
            });
        }
        GenEvent {
            number: number as i64,
            weights: vec![1.0],
            particles,
        }
    }

    /// Events `first .. first + n`.
    pub fn events(&self, first: u64, n: u64) -> impl Iterator<Item = GenEvent> + '_ {
        (first..first.saturating_add(n)).map(move |k| self.event(k))
    }
}
