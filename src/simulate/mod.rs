//! `flashc simulate`: generator-level events (the particle gun, or a HepMC file) through a
//! pipeline of compiled models, into a ROOT or Parquet ntuple.
//!
//! Events are read in blocks on the main thread; each block is cut into chunks of a few events
//! that worker threads simulate in parallel; the chunks' rows are written in event order. A row
//! depends only on the seed, its event's index and content (see `runtime::sim`), so the output
//! is bit-identical whatever `--threads` and however a run is split with `--first-event`,
//! `--n-events` or `--shard`.

pub mod models;
mod source;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use runtime::event::GenEvent;
use runtime::sim::{Counts, Pipeline, Table};

use crate::device::Device;
pub use models::PipelineKind;
use source::Source;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    /// ROOT file with one TTree (readable by ROOT and uproot).
    Root,
    /// Parquet file, zstd-compressed (readable by pyarrow, pandas, polars).
    Parquet,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Which pipeline: `lamarr` (charged + neutral, LHCb-like) or `flashsim` (objects, CMS-like).
    #[arg(long, value_enum, default_value_t = PipelineKind::Lamarr)]
    pub pipeline: PipelineKind,
    /// Generator events: a HepMC3 or HepMC2 ASCII file (`.gz` accepted). Default: the built-in
    /// particle gun.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Run seed (every random draw is a function of it, the event index and the particle).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Index of the first event to simulate (events before it are skipped).
    #[arg(long, default_value_t = 0)]
    pub first_event: u64,
    /// Events to simulate (default: 1000 from the particle gun; every event of an input file).
    #[arg(long)]
    pub n_events: Option<u64>,
    /// Simulate shard I of N (1-based `I/N`) of the `--n-events` events: shard I gets a
    /// contiguous, deterministic slice, and the default output name carries `.shardI-of-N`.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Oversampling: simulate each event this many times, writing the fold index.
    #[arg(long, default_value_t = 1)]
    pub oversample: u32,
    /// Output file (default `flashc-PIPELINE.root` or `.parquet`, `flashc-PIPELINE.shardI-of-N.EXT`
    /// with --shard). `{shard}` in it becomes `shardI-of-N`, e.g. `out/run.{shard}.parquet`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Output format (default: from the output's extension, else `root`).
    #[arg(long, value_enum)]
    pub format: Option<OutFormat>,
    /// Where the models run (`cuda` falls back to the CPU with a notice when no GPU can be used).
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// Events per work chunk (a batch of the models); results do not depend on it.
    #[arg(long, default_value_t = 32)]
    pub chunk: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_shard(s: &str) -> std::result::Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected I/N, e.g. 3/10"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: I is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: N is not a number"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("`{s}`: need 1 <= I <= N"));
    }
    Ok((i, n))
}

/// The events `[first, first + n)` of shard `i` of `n_shards` over `[first_event, first_event + total)`.
pub fn shard_range(first_event: u64, total: u64, i: u64, n_shards: u64) -> (u64, u64) {
    let lo = total * (i - 1) / n_shards;
    let hi = total * i / n_shards;
    (first_event + lo, hi - lo)
}

/// A destination for the rows, in event order.
pub trait Sink {
    fn write(&mut self, table: &Table) -> Result<()>;
}

/// What a run did.
pub struct Summary {
    pub events: u64,
    pub rows: u64,
    pub counts: Counts,
    pub seconds: f64,
}

/// The run's description, written as metadata into the output (`n_events_simulated` is added
/// when the run ends). `flashc merge` relies on these keys; docs/production.md lists them.
pub fn metadata(
    args: &Args,
    pipeline: &dyn Pipeline,
    first: u64,
    n: Option<u64>,
) -> Result<Vec<(String, String)>> {
    use ntuple::keys;
    let mut m = vec![
        (
            keys::FLASHC_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (keys::PIPELINE.to_string(), pipeline.name().to_string()),
        (keys::SEED.to_string(), args.seed.to_string()),
        (keys::FIRST_EVENT.to_string(), first.to_string()),
        (
            keys::N_EVENTS.to_string(),
            n.map_or("all".into(), |n| n.to_string()),
        ),
        (keys::OVERSAMPLE.to_string(), args.oversample.to_string()),
        (
            keys::INPUT.to_string(),
            match &args.input {
                Some(p) => p.display().to_string(),
                None => format!("particle gun ({})", models::gun_name(args.pipeline)),
            },
        ),
        (keys::MODELS.to_string(), pipeline.models().join(",")),
    ];
    for name in pipeline.models() {
        let digest = generated::digest(name).with_context(|| {
            format!("this flashc has no digest of model `{name}`; hint: rebuild it with cargo build --release")
        })?;
        m.push((format!("{}{name}", keys::MODEL_PREFIX), digest.to_string()));
    }
    if let Some((i, n)) = args.shard {
        m.push((keys::SHARD.to_string(), format!("{i}/{n}")));
    }
    Ok(m)
}

/// One work chunk's rows and counters, filled in by the worker thread that simulated it.
type ChunkResult = Mutex<Option<Result<(Table, Counts)>>>;

/// Simulates `source`'s events with `pipeline` on `threads` threads, writing rows into `sink`.
pub fn run_pipeline(
    pipeline: &dyn Pipeline,
    source: &mut Source,
    threads: usize,
    chunk: usize,
    progress: Option<&indicatif::ProgressBar>,
    sink: &mut dyn Sink,
) -> Result<Summary> {
    let start = Instant::now();
    let threads = threads.max(1);
    let chunk = chunk.max(1);
    let schema = pipeline.schema();
    let mut counts = Counts::default();
    let (mut events, mut rows) = (0u64, 0u64);
    loop {
        let block: Vec<(u64, GenEvent)> = source.next_block(threads * chunk * 4)?;
        if block.is_empty() {
            break;
        }
        let chunks: Vec<&[(u64, GenEvent)]> = block.chunks(chunk).collect();
        let results: Vec<ChunkResult> = chunks.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let work = || loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= chunks.len() {
                break;
            }
            let evs: Vec<(u64, &GenEvent)> = chunks[c].iter().map(|(i, e)| (*i, e)).collect();
            let mut t = Table::new(&schema);
            let mut k = Counts::default();
            let r = pipeline
                .simulate(&evs, &mut t, &mut k)
                .map(|()| (t, k))
                .map_err(|e| {
                    anyhow::Error::new(e).context(format!(
                        "simulating events {}..={}",
                        evs.first().map_or(0, |e| e.0),
                        evs.last().map_or(0, |e| e.0)
                    ))
                });
            *results[c].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        };
        std::thread::scope(|s| {
            for _ in 1..threads.min(chunks.len()) {
                s.spawn(work);
            }
            work();
        });
        for (c, r) in results.into_iter().enumerate() {
            let r = r.into_inner().unwrap_or_else(|p| p.into_inner());
            let (t, k) = r.context("a worker thread stopped without a result")??;
            sink.write(&t)?;
            rows += t.rows() as u64;
            counts.merge(&k);
            events += chunks[c].len() as u64;
            if let Some(pb) = progress {
                pb.inc(chunks[c].len() as u64);
            }
        }
    }
    Ok(Summary {
        events,
        rows,
        counts,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `--output` with `{shard}` replaced by `shardI-of-N` (e.g. `out/run.{shard}.root` →
/// `out/run.shard3-of-10.root`), so that every job of a batch array can be given the same
/// `--output`.
fn with_shard(path: &Path, shard: Option<(u64, u64)>) -> Result<PathBuf> {
    const TOKEN: &str = "{shard}";
    let Some(text) = path.to_str().filter(|t| t.contains(TOKEN)) else {
        return Ok(path.to_path_buf());
    };
    match shard {
        Some((i, n)) => Ok(PathBuf::from(
            text.replace(TOKEN, &format!("shard{i}-of-{n}")),
        )),
        None => bail!(
            "--output `{text}` contains {TOKEN}, but no --shard I/N was given\n  hint: add \
             --shard I/N, or write the file name without {TOKEN}"
        ),
    }
}

/// The output path and format of a run.
fn output_of(args: &Args) -> Result<(PathBuf, OutFormat)> {
    let by_ext = |p: &Path| match p.extension().and_then(|e| e.to_str()) {
        Some("root") => Some(OutFormat::Root),
        Some("parquet") | Some("pq") => Some(OutFormat::Parquet),
        _ => None,
    };
    let format = match (&args.output, args.format) {
        (_, Some(f)) => f,
        (Some(p), None) => match by_ext(p) {
            Some(f) => f,
            None => bail!(
                "cannot tell the format of `{}` from its extension; hint: name it .root or .parquet, or pass --format",
                p.display()
            ),
        },
        (None, None) => OutFormat::Root,
    };
    let path = match &args.output {
        Some(p) => with_shard(p, args.shard)?,
        None => {
            let ext = match format {
                OutFormat::Root => "root",
                OutFormat::Parquet => "parquet",
            };
            let shard = args
                .shard
                .map_or(String::new(), |(i, n)| format!(".shard{i}-of-{n}"));
            PathBuf::from(format!("flashc-{}{shard}.{ext}", args.pipeline.name()))
        }
    };
    Ok((path, format))
}

pub fn run(args: &Args) -> Result<()> {
    if args.oversample == 0 {
        bail!("--oversample must be at least 1");
    }
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(t) => t,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let (first, n) = match (args.shard, args.n_events, &args.input) {
        (Some((i, k)), Some(total), _) => {
            let (f, n) = shard_range(args.first_event, total, i, k);
            (f, Some(n))
        }
        (Some(_), None, _) => {
            bail!("--shard I/N needs --n-events (the size of the whole production)")
        }
        (None, Some(n), _) => (args.first_event, Some(n)),
        (None, None, None) => (args.first_event, Some(1000)),
        (None, None, Some(_)) => (args.first_event, None),
    };
    let models = models::Models::new(args.device, &[args.pipeline])?;
    let pipeline = models.pipeline(args.pipeline, args.seed, args.oversample)?;
    let mut source = Source::open(args, first, n)?;
    let (path, format) = output_of(args)?;
    let meta = metadata(args, pipeline.as_ref(), first, n)?;
    let mut writer =
        crate::output::Writer::create(&path, format, pipeline.name(), &pipeline.schema(), &meta)?;

    let pb = if args.quiet {
        None
    } else {
        let pb = match n {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(pb)
    };
    let summary = run_pipeline(
        pipeline.as_ref(),
        &mut source,
        threads,
        args.chunk,
        pb.as_ref(),
        &mut writer,
    )?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    if let Some(n) = n {
        if summary.events < n {
            eprintln!(
                "notice: the input ended after {} of the {n} events asked for (events {first}..{})",
                summary.events,
                first + summary.events
            );
        }
    }
    writer.set_metadata(ntuple::keys::N_EVENTS_SIMULATED, summary.events.to_string())?;
    let rows = writer.finish()?;
    debug_assert_eq!(rows, summary.rows);
    print_summary(
        args,
        pipeline.as_ref(),
        &summary,
        threads,
        &path,
        format,
        rows,
    );
    Ok(())
}

/// `writeln!` that ignores a closed stdout.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

/// Ratios printed in the summary: (label, numerator, denominator).
const RATIOS: &[(&str, &str, &str)] = &[
    ("acceptance", "accepted", "charged particles"),
    ("long-track efficiency", "long tracks", "accepted"),
    ("isMuon rate", "isMuon", "tracks with PID"),
    ("photon efficiency", "reconstructed photons", "photons"),
    ("muon efficiency", "reconstructed muons", "generator muons"),
    (
        "electron efficiency",
        "reconstructed electrons",
        "generator electrons",
    ),
];

fn print_summary(
    args: &Args,
    pipeline: &dyn Pipeline,
    s: &Summary,
    threads: usize,
    path: &Path,
    format: OutFormat,
    rows: u64,
) {
    use std::io::Write;
    // A closed stdout (`flashc simulate | head`) must not fail a run whose output is written.
    let mut out = std::io::stdout().lock();
    outln!(
        out,
        "flashc simulate: {} pipeline, seed {}, {} events x {} fold(s), {} thread(s)",
        pipeline.name(),
        args.seed,
        s.events,
        args.oversample,
        threads
    );
    for (k, v) in s.counts.iter() {
        outln!(out, "  {k:<26} {v:>12}");
    }
    for (label, num, den) in RATIOS {
        let d = s.counts.get(den);
        if d > 0 {
            outln!(
                out,
                "  {label:<26} {:>11.1} %",
                100.0 * s.counts.get(num) as f64 / d as f64
            );
        }
    }
    let particles: u64 = [
        "charged particles",
        "photons",
        "generator muons",
        "generator electrons",
    ]
    .iter()
    .map(|k| s.counts.get(k))
    .sum();
    outln!(
        out,
        "  time {:.2} s: {:.0} events/s, {:.0} particles/s ({:.0} per thread)",
        s.seconds,
        s.events as f64 / s.seconds,
        particles as f64 / s.seconds,
        particles as f64 / s.seconds / threads as f64
    );
    outln!(
        out,
        "wrote {} ({}, {rows} rows, {} columns)",
        path.display(),
        match format {
            OutFormat::Root => "ROOT",
            OutFormat::Parquet => "Parquet",
        },
        pipeline.schema().len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_range_once() {
        for total in [0u64, 1, 7, 100, 1001] {
            for n in 1..=9 {
                let mut next = 5;
                for i in 1..=n {
                    let (f, k) = shard_range(5, total, i, n);
                    assert_eq!(f, next);
                    next += k;
                }
                assert_eq!(next, 5 + total);
            }
        }
        assert!(parse_shard("0/3").is_err());
        assert!(parse_shard("4/3").is_err());
        assert_eq!(parse_shard("2/3"), Ok((2, 3)));
    }
}
