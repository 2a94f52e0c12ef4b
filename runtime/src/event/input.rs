//! Line-oriented input shared by the HepMC readers: gzip detection, numbered lines, field parsing
//! with errors that name the file, the line and what was expected.

use super::{buffered, Error, Format, Source};
use std::io::{BufRead, BufReader, Read};
use std::str::FromStr;

/// Longest accepted line: a text HepMC line is far shorter; this stops a binary file from being
/// read into memory as one line.
const MAX_LINE: u64 = 1 << 24;

/// Wraps `source` in a buffer and, when it starts with the gzip magic bytes, a gzip decoder
/// (multi-member, as written by `gzip` and by concatenating `.gz` files).
pub(crate) fn decompress(source: impl Read + Send + 'static, name: &str) -> Result<Source, Error> {
    let mut buf = buffered(source);
    let head = buf.fill_buf().map_err(|source| Error::Io {
        file: name.to_string(),
        line: 0,
        source,
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(buf),
        )))
    } else {
        Ok(Box::new(buf))
    }
}

/// Numbered lines of a source, one at a time (never the whole file).
pub(crate) struct Lines {
    src: Source,
    /// File name for errors.
    pub file: String,
    /// 1-based number of the current line.
    pub line: u64,
    buf: String,
    held: bool,
}

impl Lines {
    pub(crate) fn new(src: Source, file: &str) -> Lines {
        Lines {
            src,
            file: file.to_string(),
            line: 0,
            buf: String::new(),
            held: false,
        }
    }

    /// Advances to the next non-blank line; `false` at the end of the input.
    pub(crate) fn advance(&mut self) -> Result<bool, Error> {
        if self.held {
            self.held = false;
            return Ok(true);
        }
        loop {
            self.buf.clear();
            let n = match (&mut self.src).take(MAX_LINE).read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.line += 1;
                    return Err(self
                        .error("the line is not UTF-8 text: expected a HepMC ASCII file".into()));
                }
                Err(source) => {
                    return Err(Error::Io {
                        file: self.file.clone(),
                        line: self.line + 1,
                        source,
                    })
                }
            };
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            if n as u64 == MAX_LINE && !self.buf.ends_with('\n') {
                return Err(self.error(format!(
                    "line longer than {MAX_LINE} bytes: expected a HepMC ASCII file"
                )));
            }
            if !self.buf.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    /// The current line without surrounding white space.
    pub(crate) fn text(&self) -> &str {
        self.buf.trim()
    }

    /// Makes the next [`advance`](Self::advance) return the current line again.
    pub(crate) fn hold(&mut self) {
        self.held = true;
    }

    /// A parse error at the current line.
    pub(crate) fn error(&self, message: String) -> Error {
        Error::Parse {
            file: self.file.clone(),
            line: self.line,
            message,
        }
    }

    /// A parse error at another line.
    pub(crate) fn error_at(&self, line: u64, message: String) -> Error {
        Error::Parse {
            file: self.file.clone(),
            line,
            message,
        }
    }

    /// The fields of the current line after its record letter.
    pub(crate) fn fields(&self, record: &'static str) -> Fields<'_> {
        let mut it = self.text().split_ascii_whitespace();
        it.next();
        Fields {
            it,
            lines: self,
            record,
        }
    }
}

/// Reads the header up to the START_EVENT_LISTING line and returns the format.
pub(crate) fn detect(lines: &mut Lines) -> Result<Format, Error> {
    loop {
        if !lines.advance()? {
            return Err(lines.error(
                "the input ends before any header: expected `HepMC::Version` and a START_EVENT_LISTING line".into(),
            ));
        }
        let t = lines.text();
        if t.starts_with("HepMC::Version") {
            continue;
        }
        return match t {
            "HepMC::Asciiv3-START_EVENT_LISTING" => Ok(Format::HepMC3),
            "HepMC::IO_GenEvent-START_EVENT_LISTING" => Ok(Format::HepMC2),
            _ if t.starts_with("HepMC::") => Err(lines.error(format!(
                "unsupported listing `{}`: expected HepMC::Asciiv3-START_EVENT_LISTING (HepMC3) or \
                 HepMC::IO_GenEvent-START_EVENT_LISTING (HepMC2); convert other formats with HepMC's own tools",
                clip(t)
            ))),
            _ => Err(lines.error(format!(
                "not a HepMC ASCII file: expected a `HepMC::Version` or START_EVENT_LISTING line, found `{}`",
                clip(t)
            ))),
        };
    }
}

/// At most 60 characters of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(60).collect::<String>())
    }
}

/// The fields of one record, parsed left to right.
pub(crate) struct Fields<'a> {
    it: std::str::SplitAsciiWhitespace<'a>,
    lines: &'a Lines,
    record: &'static str,
}

impl<'a> Fields<'a> {
    /// The next field, which must exist.
    pub(crate) fn word(&mut self, what: &str) -> Result<&'a str, Error> {
        self.it.next().ok_or_else(|| {
            self.lines.error(format!(
                "the {} record ends early: expected {what}",
                self.record
            ))
        })
    }

    /// The next field if any.
    pub(crate) fn next_word(&mut self) -> Option<&'a str> {
        self.it.next()
    }

    /// The next field as an integer.
    pub(crate) fn int<T: FromStr>(&mut self, what: &str) -> Result<T, Error> {
        let w = self.word(what)?;
        w.parse().map_err(|_| {
            self.lines.error(format!(
                "expected {what} (an integer) in the {} record, found `{}`",
                self.record,
                clip(w)
            ))
        })
    }

    /// The next field as a finite number.
    pub(crate) fn float(&mut self, what: &str) -> Result<f64, Error> {
        let w = self.word(what)?;
        match w.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.lines.error(format!(
                "expected {what} (a finite number) in the {} record, found `{}`",
                self.record,
                clip(w)
            ))),
        }
    }

    /// The next field as any number (weights may be non-finite).
    pub(crate) fn any_float(&mut self, what: &str) -> Result<f64, Error> {
        let w = self.word(what)?;
        w.parse::<f64>().map_err(|_| {
            self.lines.error(format!(
                "expected {what} (a number) in the {} record, found `{}`",
                self.record,
                clip(w)
            ))
        })
    }

    /// A count announced by the record, bounded so a corrupt value cannot exhaust memory.
    pub(crate) fn count(&mut self, what: &str, max: usize) -> Result<usize, Error> {
        let w = self.word(what)?;
        match w.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(self.lines.error(format!(
                "expected {what} (an integer from 0 to {max}) in the {} record, found `{}`",
                self.record,
                clip(w)
            ))),
        }
    }

    /// A parse error at this record's line.
    pub(crate) fn error(&self, message: String) -> Error {
        self.lines.error(message)
    }
}

/// Momentum and length units of an event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Units {
    /// Factor to GeV.
    pub momentum: f64,
    /// Factor to mm.
    pub length: f64,
}

impl Default for Units {
    fn default() -> Units {
        Units {
            momentum: 1.0,
            length: 1.0,
        }
    }
}

/// Parses a `U` record: `U GEV|MEV MM|CM`.
pub(crate) fn parse_units(lines: &Lines) -> Result<Units, Error> {
    let mut f = lines.fields("U");
    let m = f.word("the momentum unit (GEV or MEV)")?;
    let momentum = match m {
        "GEV" => 1.0,
        "MEV" => 1e-3,
        _ => {
            return Err(f.error(format!(
                "expected the momentum unit GEV or MEV in the U record, found `{}`",
                clip(m)
            )))
        }
    };
    let l = f.word("the length unit (MM or CM)")?;
    let length = match l {
        "MM" => 1.0,
        "CM" => 10.0,
        _ => {
            return Err(f.error(format!(
                "expected the length unit MM or CM in the U record, found `{}`",
                clip(l)
            )))
        }
    };
    Ok(Units { momentum, length })
}
