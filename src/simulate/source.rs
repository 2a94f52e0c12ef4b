//! Where the events come from: the built-in particle gun (random access: event `k` is a pure
//! function of the seed and `k`) or a HepMC file (sequential: events before `--first-event` are
//! read and skipped). Either way an event's index in the run keys its random streams.

use anyhow::{Context, Result};
use runtime::event::{self, EventReader, GenEvent, ParticleGun};

use super::Args;

pub enum Source {
    Gun {
        gun: ParticleGun,
        next: u64,
        end: u64,
    },
    File {
        reader: EventReader,
        next: u64,
        end: Option<u64>,
    },
}

impl Source {
    /// Events `first .. first + n` (`n = None`: to the end of the input).
    pub fn open(args: &Args, first: u64, n: Option<u64>) -> Result<Source> {
        match &args.input {
            None => {
                let gun = ParticleGun::new(super::models::gun_config(args.pipeline, args.seed))
                    .context("configuring the particle gun")?;
                let n = n.unwrap_or(1000);
                Ok(Source::Gun {
                    gun,
                    next: first,
                    end: first.saturating_add(n),
                })
            }
            Some(path) => {
                let mut reader = event::open(path)?;
                for k in 0..first {
                    match reader.next() {
                        Some(r) => {
                            r.with_context(|| {
                                format!("skipping to event {first} (event {k} is unreadable)")
                            })?;
                        }
                        None => break,
                    }
                }
                Ok(Source::File {
                    reader,
                    next: first,
                    end: n.map(|n| first.saturating_add(n)),
                })
            }
        }
    }

    /// Up to `max` next events with their indices; empty at the end.
    pub fn next_block(&mut self, max: usize) -> Result<Vec<(u64, GenEvent)>> {
        let mut out = Vec::with_capacity(max);
        match self {
            Source::Gun { gun, next, end } => {
                while out.len() < max && *next < *end {
                    out.push((*next, gun.event(*next)));
                    *next += 1;
                }
            }
            Source::File { reader, next, end } => {
                while out.len() < max && end.is_none_or(|e| *next < e) {
                    match reader.next() {
                        Some(ev) => {
                            out.push((*next, ev?));
                            *next += 1;
                        }
                        None => break,
                    }
                }
            }
        }
        Ok(out)
    }
}
