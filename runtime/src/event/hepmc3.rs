//! Streaming reader of HepMC3 ASCII (`HepMC::Asciiv3`), plain or gzip-compressed.
//!
//! Records (one per line, first field the record letter):
//! * header: `HepMC::Version ...`, `HepMC::Asciiv3-START_EVENT_LISTING`; run level: `W` (weight
//!   names), `T` (tool), `A` (attribute); end: `HepMC::Asciiv3-END_EVENT_LISTING`;
//! * `E number n_vertices n_particles [@ x y z t]` starts an event (the optional position is the
//!   event position);
//! * `U GEV|MEV MM|CM` units (converted to GeV and mm), `W w1 w2 ...` weights, `A`/`T` ignored;
//! * `V id status [p1,p2,...] [@ x y z t]`: a vertex (negative id) with its incoming particles;
//! * `P id mother pdg px py pz e m status`: `mother` is 0 (no production vertex), a vertex id
//!   (negative), or a particle id (positive: the production vertex is the end vertex of that
//!   particle, not written because it has one incoming particle and no position).
//!
//! A vertex without a position takes the position of the production vertex of its first incoming
//! particle that has one (recursively), else the event position; so does the implicit end vertex
//! of a parent particle. Each event must have as many `P` records as its `E` record declares, and the
//! listing must end with the END line. Trailing fields of a record are ignored. Memory holds one
//! event.

use super::input::{clip, parse_units, Lines, Units};
use super::{pdg, Error, EventReader, FourVector, GenEvent, GenParticle};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

const START: &str = "HepMC::Asciiv3-START_EVENT_LISTING";
const END: &str = "HepMC::Asciiv3-END_EVENT_LISTING";
const RECORDS: &str = "E, U, W, A, T, V or P";
/// Largest count an `E` record may announce.
const MAX_COUNT: usize = 1 << 28;

/// The HepMC3 reader: an iterator of events; after the first error it yields nothing more.
pub struct Reader {
    lines: Lines,
    done: bool,
    /// The END line was seen (a new START may follow).
    ended: bool,
}

struct PRec {
    line: u64,
    id: i32,
    mother: i32,
    pdg_id: i32,
    p: [f64; 5],
    status: i32,
}

struct VRec {
    line: u64,
    position: Option<FourVector>,
    incoming: Vec<i32>,
}

impl Reader {
    pub(crate) fn from_lines(lines: Lines) -> Reader {
        Reader {
            lines,
            done: false,
            ended: false,
        }
    }

    /// Reads HepMC3 from any byte source (gzip detected); `name` names it in errors. Fails if the
    /// input is HepMC2.
    pub fn new(source: impl Read + Send + 'static, name: &str) -> Result<Reader, Error> {
        match EventReader::from_reader(source, name)? {
            EventReader::HepMC3(r) => Ok(r),
            EventReader::HepMC2(r) => Err(r.lines_error(
                "this is HepMC2 (IO_GenEvent) input: expected HepMC3 Asciiv3 (use event::open, which reads both)",
            )),
        }
    }

    /// Opens a HepMC3 file (plain or gzip).
    pub fn open(path: impl AsRef<Path>) -> Result<Reader, Error> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let f = std::fs::File::open(path).map_err(|source| Error::Io {
            file: name.clone(),
            line: 0,
            source,
        })?;
        Reader::new(f, &name)
    }

    pub(crate) fn lines_error(&self, message: &str) -> Error {
        self.lines.error(message.to_string())
    }

    /// Skips run-level records up to the next `E`; `None` at a proper end of input.
    fn seek_event(&mut self) -> Result<Option<()>, Error> {
        loop {
            if !self.lines.advance()? {
                if self.ended {
                    return Ok(None);
                }
                return Err(self.lines.error(format!("the input ends without `{END}`: expected more events or the END line (truncated file?)")));
            }
            let t = self.lines.text();
            if t.starts_with("HepMC::") {
                if t == END && !self.ended {
                    self.ended = true;
                } else if t == START && self.ended {
                    self.ended = false;
                } else if !t.starts_with("HepMC::Version") {
                    let want = if self.ended { START } else { END };
                    return Err(self.lines.error(format!(
                        "unexpected `{}`: expected `{want}` or a record",
                        clip(t)
                    )));
                }
                continue;
            }
            if self.ended {
                return Err(self.lines.error(format!(
                    "record after `{END}`: expected the end of the input or a new `{START}`"
                )));
            }
            match t.split_ascii_whitespace().next().unwrap_or("") {
                "E" => return Ok(Some(())),
                "W" | "T" | "A" => continue,
                r @ ("U" | "V" | "P") => {
                    return Err(self.lines.error(format!(
                        "{r} record before any E record: expected an event (E) first"
                    )))
                }
                r => {
                    return Err(self.lines.error(format!(
                        "unknown record `{}`: expected one of {RECORDS}",
                        clip(r)
                    )));
                }
            }
        }
    }

    fn read_event(&mut self) -> Result<Option<GenEvent>, Error> {
        if self.seek_event()?.is_none() {
            return Ok(None);
        }
        let e_line = self.lines.line;
        let (number, n_particles, event_pos) = {
            let mut f = self.lines.fields("E");
            let number: i64 = f.int("the event number")?;
            let _n_vertices = f.count("the number of vertices", MAX_COUNT)?;
            let n_particles = f.count("the number of particles", MAX_COUNT)?;
            let pos = match f.next_word() {
                None => FourVector::ZERO,
                Some("@") => position(&mut f)?,
                Some(w) => {
                    return Err(f.error(format!(
                        "expected `@ x y z t` or the end of the E record, found `{}`",
                        clip(w)
                    )))
                }
            };
            (number, n_particles, pos)
        };
        let mut units = Units::default();
        let mut weights = Vec::new();
        let mut particles: Vec<PRec> = Vec::with_capacity(n_particles.min(1 << 16));
        let mut vertices: HashMap<i32, VRec> = HashMap::new();
        loop {
            if !self.lines.advance()? {
                break; // the END line is missing: reported by the next call
            }
            let t = self.lines.text();
            if t.starts_with("HepMC::") {
                self.lines.hold();
                break;
            }
            match t.split_ascii_whitespace().next().unwrap_or("") {
                "E" => {
                    self.lines.hold();
                    break;
                }
                "U" => units = parse_units(&self.lines)?,
                "W" => {
                    weights.clear();
                    let mut f = self.lines.fields("W");
                    let n = t.split_ascii_whitespace().count() - 1;
                    for i in 0..n {
                        weights.push(f.any_float(&format!("weight {i}"))?);
                    }
                }
                "A" | "T" => {}
                "V" => {
                    let line = self.lines.line;
                    let mut f = self.lines.fields("V");
                    let id: i32 = f.int("the vertex id")?;
                    if id >= 0 {
                        return Err(f.error(format!(
                            "expected a negative vertex id in the V record, found {id}"
                        )));
                    }
                    let _status: i32 = f.int("the vertex status")?;
                    let mut incoming = Vec::new();
                    let mut position_ = None;
                    if let Some(w) = f.next_word() {
                        let mut next = Some(w);
                        if w.starts_with('[') {
                            let mut list = String::from(w);
                            while !list.ends_with(']') {
                                match f.next_word() {
                                    Some(more) => list.push_str(more),
                                    None => return Err(f.error("the incoming-particle list of the V record has no closing `]`".into())),
                                }
                            }
                            for item in list[1..list.len() - 1]
                                .split(',')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                            {
                                let p: i32 = item.parse().map_err(|_| {
                                    f.error(format!("expected a particle id (an integer) in the V record's list, found `{}`", clip(item)))
                                })?;
                                incoming.push(p);
                            }
                            next = f.next_word();
                        }
                        match next {
                            None => {}
                            Some("@") => position_ = Some(position(&mut f)?),
                            Some(w) => {
                                return Err(f.error(format!(
                                    "expected `[incoming ids]` or `@ x y z t` in the V record, found `{}`",
                                    clip(w)
                                )))
                            }
                        }
                    }
                    if vertices
                        .insert(
                            id,
                            VRec {
                                line,
                                position: position_,
                                incoming,
                            },
                        )
                        .is_some()
                    {
                        return Err(self
                            .lines
                            .error(format!("vertex {id} appears twice in event {number}")));
                    }
                }
                "P" => {
                    let line = self.lines.line;
                    let mut f = self.lines.fields("P");
                    let id: i32 = f.int("the particle id")?;
                    let mother: i32 = f.int("the production vertex or mother particle id")?;
                    let pdg_id: i32 = f.int("the PDG id")?;
                    let p = [
                        f.float("px")?,
                        f.float("py")?,
                        f.float("pz")?,
                        f.float("the energy")?,
                        f.float("the generated mass")?,
                    ];
                    let status: i32 = f.int("the status")?;
                    if particles.len() >= n_particles {
                        return Err(f.error(format!(
                            "event {number} declares {n_particles} particles (E record, line {e_line}) but this is P record {}",
                            particles.len() + 1
                        )));
                    }
                    particles.push(PRec {
                        line,
                        id,
                        mother,
                        pdg_id,
                        p,
                        status,
                    });
                }
                r => {
                    return Err(self.lines.error(format!(
                        "unknown record `{}`: expected one of {RECORDS}",
                        clip(r)
                    )))
                }
            }
        }
        if particles.len() != n_particles {
            return Err(self.lines.error_at(
                e_line,
                format!(
                    "event {number} declares {n_particles} particles but has {} P records (truncated event?)",
                    particles.len()
                ),
            ));
        }
        self.build(number, event_pos, units, weights, particles, vertices)
            .map(Some)
    }

    fn build(
        &self,
        number: i64,
        event_pos: FourVector,
        units: Units,
        weights: Vec<f64>,
        particles: Vec<PRec>,
        vertices: HashMap<i32, VRec>,
    ) -> Result<GenEvent, Error> {
        let mut index: HashMap<i32, usize> = HashMap::with_capacity(particles.len());
        for (i, p) in particles.iter().enumerate() {
            if p.id <= 0 {
                return Err(self.lines.error_at(
                    p.line,
                    format!("expected a positive particle id, found {}", p.id),
                ));
            }
            if index.insert(p.id, i).is_some() {
                return Err(self.lines.error_at(
                    p.line,
                    format!("particle {} appears twice in event {number}", p.id),
                ));
            }
        }
        for v in vertices.values() {
            if let Some(bad) = v.incoming.iter().find(|id| !index.contains_key(id)) {
                return Err(self.lines.error_at(
                    v.line,
                    format!("the vertex lists particle {bad}, which event {number} does not have"),
                ));
            }
        }
        for p in &particles {
            if p.mother < 0 && !vertices.contains_key(&p.mother) {
                return Err(self.lines.error_at(
                    p.line,
                    format!("particle {} comes from vertex {}, which event {number} does not have (expected a V record)", p.id, p.mother),
                ));
            }
            if p.mother > 0 && !index.contains_key(&p.mother) {
                return Err(self.lines.error_at(
                    p.line,
                    format!(
                        "particle {} has mother particle {}, which event {number} does not have",
                        p.id, p.mother
                    ),
                ));
            }
        }
        // Production positions, resolved through ancestors with memoisation.
        let mut memo: Vec<Option<FourVector>> = vec![None; particles.len()];
        let ctx = Resolve {
            particles: &particles,
            vertices: &vertices,
            index: &index,
            event_pos,
        };
        let mut out = Vec::with_capacity(particles.len());
        for (i, p) in particles.iter().enumerate() {
            let pos = ctx.particle(i, &mut memo).ok_or_else(|| {
                self.lines.error_at(
                    p.line,
                    format!("the ancestry of particle {} loops back to itself", p.id),
                )
            })?;
            let m = units.momentum;
            let l = units.length;
            out.push(GenParticle {
                id: p.id,
                pdg_id: p.pdg_id,
                status: p.status,
                px: p.p[0] * m,
                py: p.p[1] * m,
                pz: p.p[2] * m,
                e: p.p[3] * m,
                mass: p.p[4] * m,
                vertex: FourVector::new(pos.x * l, pos.y * l, pos.z * l, pos.t * l),
                charge: pdg::charge(p.pdg_id),
            });
        }
        Ok(GenEvent {
            number,
            weights,
            particles: out,
        })
    }
}

struct Resolve<'a> {
    particles: &'a [PRec],
    vertices: &'a HashMap<i32, VRec>,
    index: &'a HashMap<i32, usize>,
    event_pos: FourVector,
}

impl Resolve<'_> {
    /// Production position of particle `i`, following the ancestry iteratively (no recursion, so
    /// deep decay chains cannot exhaust the stack); `None` when the ancestry loops. Every particle
    /// on the walked chain is memoised.
    fn particle(&self, i: usize, memo: &mut [Option<FourVector>]) -> Option<FourVector> {
        let mut path = Vec::new();
        let mut cur = i;
        let pos = loop {
            if let Some(p) = memo[cur] {
                break p;
            }
            if path.len() > self.particles.len() {
                return None; // more steps than particles: a loop
            }
            path.push(cur);
            let mother = self.particles[cur].mother;
            if mother == 0 {
                break self.event_pos;
            } else if mother > 0 {
                // Implicit end vertex of the parent, without a position: the parent's production position.
                cur = self.index[&mother];
            } else {
                let v = &self.vertices[&mother];
                match v.position {
                    Some(p) if p != FourVector::ZERO => break p,
                    _ => {}
                }
                // The first incoming particle that has a production vertex.
                match v
                    .incoming
                    .iter()
                    .map(|id| self.index[id])
                    .find(|&j| self.particles[j].mother != 0)
                {
                    Some(j) => cur = j,
                    None => break self.event_pos,
                }
            }
        };
        for k in path {
            memo[k] = Some(pos);
        }
        Some(pos)
    }
}

/// Parses `x y z t` after an `@`.
fn position(f: &mut super::input::Fields<'_>) -> Result<FourVector, Error> {
    Ok(FourVector::new(
        f.float("x")?,
        f.float("y")?,
        f.float("z")?,
        f.float("t")?,
    ))
}

impl Iterator for Reader {
    type Item = Result<GenEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_event() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
