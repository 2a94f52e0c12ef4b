//! Generator-level events: the event model, the built-in particle gun and the HepMC readers.
//!
//! * [`GenEvent`] / [`GenParticle`]: one generator event, every particle with PDG id, status,
//!   four-momentum (GeV), generated mass (GeV), production vertex (mm, time in mm/c) and the charge
//!   derived from the PDG id ([`pdg`]).
//! * [`gun`]: a particle gun, deterministic per event number through the counter-based RNG.
//! * [`hepmc3`], [`hepmc2`]: streaming readers of HepMC3 `Asciiv3` and HepMC2 `IO_GenEvent` text,
//!   plain or gzip-compressed; [`open`] detects both. Memory is bounded by one event.
//!
//! Every failure is an [`Error`] naming the file, the line and what was expected.

pub mod gun;
pub mod hepmc2;
pub mod hepmc3;
mod input;
pub mod pdg;

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

pub use gun::{GunConfig, Momentum, Multiplicity, ParticleGun, Species};

/// A space-time point: `x`, `y`, `z` in mm, `t` in mm/c.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FourVector {
    /// x (mm).
    pub x: f64,
    /// y (mm).
    pub y: f64,
    /// z (mm).
    pub z: f64,
    /// c·t (mm).
    pub t: f64,
}

impl FourVector {
    /// The point `(x, y, z, t)`.
    pub const fn new(x: f64, y: f64, z: f64, t: f64) -> FourVector {
        FourVector { x, y, z, t }
    }

    /// The origin.
    pub const ZERO: FourVector = FourVector::new(0.0, 0.0, 0.0, 0.0);
}

/// One generator-level particle.
#[derive(Clone, Debug, PartialEq)]
pub struct GenParticle {
    /// Identifier within the event: the HepMC3 particle id, the HepMC2 barcode, or the particle-gun
    /// index plus one.
    pub id: i32,
    /// PDG Monte Carlo particle code.
    pub pdg_id: i32,
    /// Generator status (1: final state).
    pub status: i32,
    /// Momentum x component (GeV).
    pub px: f64,
    /// Momentum y component (GeV).
    pub py: f64,
    /// Momentum z component (GeV).
    pub pz: f64,
    /// Energy (GeV).
    pub e: f64,
    /// Generated mass (GeV), as stored by the generator.
    pub mass: f64,
    /// Production vertex (mm, mm/c). Particles without a production vertex (beams) get the event
    /// position, which is the origin unless the input gives one.
    pub vertex: FourVector,
    /// Electric charge in units of e, from [`pdg::charge`] (0 for codes it does not know).
    pub charge: f64,
}

impl GenParticle {
    /// Transverse momentum (GeV).
    pub fn pt(&self) -> f64 {
        self.px.hypot(self.py)
    }

    /// Momentum magnitude (GeV).
    pub fn p(&self) -> f64 {
        (self.px * self.px + self.py * self.py + self.pz * self.pz).sqrt()
    }

    /// Pseudorapidity (±infinity along the beam).
    pub fn eta(&self) -> f64 {
        let pt = self.pt();
        if pt == 0.0 {
            return if self.pz >= 0.0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            };
        }
        (self.pz / pt).asinh()
    }

    /// Azimuth in (−π, π].
    pub fn phi(&self) -> f64 {
        self.py.atan2(self.px)
    }

    /// Whether the particle is in the final state (status 1).
    pub fn is_final(&self) -> bool {
        self.status == 1
    }
}

/// One generator event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenEvent {
    /// Event number, as written by the generator (or given to the gun).
    pub number: i64,
    /// Event weights (empty when the input gives none).
    pub weights: Vec<f64>,
    /// Every particle of the event, in input order.
    pub particles: Vec<GenParticle>,
}

impl GenEvent {
    /// The final-state particles (status 1).
    pub fn final_state(&self) -> impl Iterator<Item = &GenParticle> {
        self.particles.iter().filter(|p| p.is_final())
    }
}

/// The error of the event module: I/O, malformed input, or a bad particle-gun configuration.
#[derive(Debug)]
pub enum Error {
    /// The file could not be opened or read.
    Io {
        /// File name (or the name given to an in-memory reader).
        file: String,
        /// Line being read when it failed (0: before the first line).
        line: u64,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input is not what the format expects.
    Parse {
        /// File name.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What was found and what was expected instead.
        message: String,
    },
    /// A particle-gun setting is invalid.
    Config {
        /// The setting and its value.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                file,
                line: 0,
                source,
            } => write!(f, "{file}: cannot read: {source}"),
            Error::Io { file, line, source } => write!(f, "{file}:{line}: cannot read: {source}"),
            Error::Parse {
                file,
                line: 0,
                message,
            } => write!(f, "{file}: {message}"),
            Error::Parse {
                file,
                line,
                message,
            } => write!(f, "{file}:{line}: {message}"),
            Error::Config { message, hint } => write!(f, "particle gun: {message} (hint: {hint})"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// HepMC3 ASCII (`HepMC::Asciiv3`).
    HepMC3,
    /// HepMC2 ASCII (`HepMC::IO_GenEvent`).
    HepMC2,
}

/// A streaming reader of either HepMC format: an iterator of events. After the first error it
/// yields nothing more.
pub enum EventReader {
    /// HepMC3 input.
    HepMC3(hepmc3::Reader),
    /// HepMC2 input.
    HepMC2(hepmc2::Reader),
}

impl EventReader {
    /// The detected format.
    pub fn format(&self) -> Format {
        match self {
            EventReader::HepMC3(_) => Format::HepMC3,
            EventReader::HepMC2(_) => Format::HepMC2,
        }
    }

    /// Reads from any byte source (gzip detected by its magic bytes); `name` names it in errors.
    pub fn from_reader(
        source: impl Read + Send + 'static,
        name: &str,
    ) -> Result<EventReader, Error> {
        let mut lines = input::Lines::new(input::decompress(source, name)?, name);
        match input::detect(&mut lines)? {
            Format::HepMC3 => Ok(EventReader::HepMC3(hepmc3::Reader::from_lines(lines))),
            Format::HepMC2 => Ok(EventReader::HepMC2(hepmc2::Reader::from_lines(lines))),
        }
    }
}

impl Iterator for EventReader {
    type Item = Result<GenEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EventReader::HepMC3(r) => r.next(),
            EventReader::HepMC2(r) => r.next(),
        }
    }
}

/// Opens a HepMC3 or HepMC2 ASCII file, plain or gzip-compressed (detected from the content, not
/// the name).
pub fn open(path: impl AsRef<Path>) -> Result<EventReader, Error> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        file: name.clone(),
        line: 0,
        source,
    })?;
    EventReader::from_reader(file, &name)
}

/// A byte source with gzip already undone.
pub(crate) type Source = Box<dyn BufRead + Send>;

pub(crate) fn buffered(source: impl Read + Send + 'static) -> BufReader<Box<dyn Read + Send>> {
    BufReader::with_capacity(1 << 16, Box::new(source) as Box<dyn Read + Send>)
}
