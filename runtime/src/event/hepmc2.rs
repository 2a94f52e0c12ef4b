//! Streaming reader of HepMC2 ASCII (`HepMC::IO_GenEvent`, HepMC 2.06 layout), plain or
//! gzip-compressed.
//!
//! Records (one per line, first field the record letter):
//! * header `HepMC::Version ...`, `HepMC::IO_GenEvent-START_EVENT_LISTING`; end
//!   `HepMC::IO_GenEvent-END_EVENT_LISTING`;
//! * `E number n_mpi scale alpha_qcd alpha_qed process_id signal_vertex n_vertices beam1 beam2
//!   n_random [random...] n_weights [weights...]`;
//! * `N` (weight names), `C` (cross section), `H` (heavy ion), `F` (PDF): accepted and ignored;
//!   `U GEV|MEV MM|CM` units (converted to GeV and mm; GeV and mm without a `U` record);
//! * `V barcode id x y z t n_orphans n_out n_weights [weights...]`, followed by its `n_orphans`
//!   incoming particles that have no production vertex in the event, then its `n_out` outgoing
//!   particles, whose production vertex it is;
//! * `P barcode pdg px py pz e m status theta phi end_vertex n_flow [flow pairs...]`.
//!
//! The counts are checked: `n_vertices` `V` records per event, exactly `n_orphans + n_out` `P`
//! records after each `V`. Orphan particles get the origin as production position. Trailing fields
//! are ignored. Memory holds one event.

use super::input::{clip, parse_units, Lines, Units};
use super::{pdg, Error, EventReader, FourVector, GenEvent, GenParticle};
use std::io::Read;
use std::path::Path;

const START: &str = "HepMC::IO_GenEvent-START_EVENT_LISTING";
const END: &str = "HepMC::IO_GenEvent-END_EVENT_LISTING";
const RECORDS: &str = "E, N, U, C, H, F, V or P";
/// Largest count a record may announce.
const MAX_COUNT: usize = 1 << 28;

/// The HepMC2 reader: an iterator of events; after the first error it yields nothing more.
pub struct Reader {
    lines: Lines,
    done: bool,
    ended: bool,
}

impl Reader {
    pub(crate) fn from_lines(lines: Lines) -> Reader {
        Reader {
            lines,
            done: false,
            ended: false,
        }
    }

    /// Reads HepMC2 from any byte source (gzip detected); `name` names it in errors. Fails if the
    /// input is HepMC3.
    pub fn new(source: impl Read + Send + 'static, name: &str) -> Result<Reader, Error> {
        match EventReader::from_reader(source, name)? {
            EventReader::HepMC2(r) => Ok(r),
            EventReader::HepMC3(r) => Err(r.lines_error(
                "this is HepMC3 (Asciiv3) input: expected HepMC2 IO_GenEvent (use event::open, which reads both)",
            )),
        }
    }

    /// Opens a HepMC2 file (plain or gzip).
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

    /// Skips to the next `E`; `None` at a proper end of input.
    fn seek_event(&mut self) -> Result<Option<()>, Error> {
        loop {
            if !self.lines.advance()? {
                if self.ended {
                    return Ok(None);
                }
                return Err(self.lines.error(format!(
                    "the input ends without `{END}`: expected more events or the END line (truncated file?)"
                )));
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
            return match t.split_ascii_whitespace().next().unwrap_or("") {
                "E" => Ok(Some(())),
                r @ ("N" | "U" | "C" | "H" | "F" | "V" | "P") => Err(self.lines.error(format!(
                    "{r} record before any E record: expected an event (E) first"
                ))),
                r => Err(self.lines.error(format!(
                    "unknown record `{}`: expected one of {RECORDS}",
                    clip(r)
                ))),
            };
        }
    }

    fn read_event(&mut self) -> Result<Option<GenEvent>, Error> {
        if self.seek_event()?.is_none() {
            return Ok(None);
        }
        let e_line = self.lines.line;
        let (number, n_vertices, weights) = {
            let mut f = self.lines.fields("E");
            let number: i64 = f.int("the event number")?;
            let _mpi: i64 = f.int("the number of multi-parton interactions")?;
            let _scale = f.any_float("the event scale")?;
            let _aqcd = f.any_float("alpha_QCD")?;
            let _aqed = f.any_float("alpha_QED")?;
            let _process: i64 = f.int("the signal process id")?;
            let _signal: i64 = f.int("the signal vertex barcode")?;
            let n_vertices = f.count("the number of vertices", MAX_COUNT)?;
            let _b1: i64 = f.int("the barcode of beam particle 1")?;
            let _b2: i64 = f.int("the barcode of beam particle 2")?;
            let n_random = f.count("the number of random-state integers", MAX_COUNT)?;
            for i in 0..n_random {
                let _: i64 = f.int(&format!("random-state integer {i}"))?;
            }
            let n_weights = f.count("the number of weights", MAX_COUNT)?;
            let mut weights = Vec::with_capacity(n_weights.min(1024));
            for i in 0..n_weights {
                weights.push(f.any_float(&format!("weight {i}"))?);
            }
            (number, n_vertices, weights)
        };
        let mut units = Units::default();
        let mut particles: Vec<GenParticle> = Vec::new();
        let mut seen_vertices = 0usize;
        // The current vertex: its line, position, orphans still expected, outgoing still expected.
        let mut current: Option<(u64, FourVector, usize, usize)> = None;
        loop {
            if !self.lines.advance()? {
                break; // the END line is missing: reported by the next call
            }
            let t = self.lines.text();
            let record = if t.starts_with("HepMC::") {
                ""
            } else {
                t.split_ascii_whitespace().next().unwrap_or("")
            };
            match record {
                "" | "E" | "V" => {
                    if let Some((vline, _, orphans, out)) = current {
                        if orphans + out > 0 {
                            return Err(self.lines.error(format!(
                                "the V record at line {vline} announces {} more P records: expected P, found `{}`",
                                orphans + out,
                                clip(t)
                            )));
                        }
                    }
                    if record != "V" {
                        self.lines.hold();
                        break;
                    }
                    let mut f = self.lines.fields("V");
                    let _barcode: i32 = f.int("the vertex barcode")?;
                    let _id: i32 = f.int("the vertex id")?;
                    let pos =
                        FourVector::new(f.float("x")?, f.float("y")?, f.float("z")?, f.float("t")?);
                    let orphans = f.count("the number of orphan incoming particles", MAX_COUNT)?;
                    let out = f.count("the number of outgoing particles", MAX_COUNT)?;
                    let n_w = f.count("the number of vertex weights", MAX_COUNT)?;
                    for i in 0..n_w {
                        f.any_float(&format!("vertex weight {i}"))?;
                    }
                    seen_vertices += 1;
                    if seen_vertices > n_vertices {
                        return Err(f.error(format!(
                            "event {number} declares {n_vertices} vertices (E record, line {e_line}) but this is V record {seen_vertices}"
                        )));
                    }
                    current = Some((self.lines.line, pos, orphans, out));
                }
                "P" => {
                    let mut f = self.lines.fields("P");
                    let barcode: i32 = f.int("the particle barcode")?;
                    let pdg_id: i32 = f.int("the PDG id")?;
                    let p = [
                        f.float("px")?,
                        f.float("py")?,
                        f.float("pz")?,
                        f.float("the energy")?,
                        f.float("the generated mass")?,
                    ];
                    let status: i32 = f.int("the status")?;
                    let _theta = f.any_float("the polarisation theta")?;
                    let _phi = f.any_float("the polarisation phi")?;
                    let _end: i32 = f.int("the end vertex barcode")?;
                    let n_flow = f.count("the number of flow entries", MAX_COUNT)?;
                    for i in 0..n_flow {
                        let _: i64 = f.int(&format!("flow code {i}"))?;
                        let _: i64 = f.int(&format!("flow index {i}"))?;
                    }
                    let vertex = match current.as_mut() {
                        None => return Err(f.error("P record before any V record: expected the vertex (V) that announces it".into())),
                        Some((vline, _, 0, 0)) => {
                            return Err(f.error(format!(
                                "the V record at line {vline} announces fewer particles: expected a V or E record"
                            )))
                        }
                        Some((_, _, orphans @ 1.., _)) => {
                            *orphans -= 1;
                            FourVector::ZERO
                        }
                        Some((_, pos, 0, out)) => {
                            *out -= 1;
                            *pos
                        }
                    };
                    let (m, l) = (units.momentum, units.length);
                    particles.push(GenParticle {
                        id: barcode,
                        pdg_id,
                        status,
                        px: p[0] * m,
                        py: p[1] * m,
                        pz: p[2] * m,
                        e: p[3] * m,
                        mass: p[4] * m,
                        vertex: FourVector::new(
                            vertex.x * l,
                            vertex.y * l,
                            vertex.z * l,
                            vertex.t * l,
                        ),
                        charge: pdg::charge(pdg_id),
                    });
                }
                "U" => {
                    if !particles.is_empty() {
                        return Err(self.lines.error("U record after the first P record: expected it right after the E record".into()));
                    }
                    units = parse_units(&self.lines)?;
                }
                "N" | "C" | "H" | "F" => {}
                r => {
                    return Err(self.lines.error(format!(
                        "unknown record `{}`: expected one of {RECORDS}",
                        clip(r)
                    )))
                }
            }
        }
        if let Some((vline, _, orphans, out)) = current {
            if orphans + out > 0 {
                return Err(self.lines.error_at(
                    vline,
                    format!("the V record announces {} more P records than the file has (truncated event?)", orphans + out),
                ));
            }
        }
        if seen_vertices != n_vertices {
            return Err(self.lines.error_at(
                e_line,
                format!("event {number} declares {n_vertices} vertices but has {seen_vertices} V records (truncated event?)"),
            ));
        }
        Ok(Some(GenEvent {
            number,
            weights,
            particles,
        }))
    }
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
