//! `flashc merge OUT IN...`: concatenates the outputs of the jobs of one production (shards of
//! `flashc simulate`, ROOT or Parquet) into one file, in event order.
//!
//! Before anything is written, every input's metadata is checked: all must come from the same
//! configuration (every key but the event range and the shard must agree, and so must the
//! columns), and their event ranges must follow each other with no gap and no overlap. Then the
//! rows are streamed chunk by chunk (memory does not grow with the files) through
//! `ntuple::Writer`, so the output appears only complete: a failed merge leaves nothing behind.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ntuple::{keys, Format, Metadata, Reader, Schema};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The merged file: `NAME.root` or `NAME.parquet` (the format follows the extension).
    pub output: PathBuf,
    /// The files to merge: outputs of `flashc simulate` (or of earlier merges) of one
    /// production, ROOT or Parquet, in any order.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// Keys that differ between the parts of one production; every other key must agree.
const PER_FILE_KEYS: [&str; 5] = [
    keys::FIRST_EVENT,
    keys::N_EVENTS,
    keys::N_EVENTS_SIMULATED,
    keys::SHARD,
    keys::MERGED_FILES,
];

/// What the merge needs to know of one input, read from its header.
struct Part {
    path: PathBuf,
    metadata: Metadata,
    schema: Schema,
    table: String,
    rows: u64,
    first: u64,
    /// Events asked for; `None` for `all` (to the end of the input file).
    asked: Option<u64>,
    /// Events simulated.
    done: u64,
}

impl Part {
    fn open(path: &Path) -> Result<Part> {
        // ntuple's errors name the file.
        let reader = Reader::open(path)?;
        let metadata = reader.metadata().clone();
        let number = |key: &str| -> Result<Option<u64>> {
            match metadata.get(key) {
                None => bail!(
                    "{}: metadata key `{key}` is missing\n  hint: only outputs of `flashc simulate` \
                     (or `flashc merge`) can be merged; a file written by an older flashc lacks \
                     the keys the merge checks: simulate it again",
                    path.display()
                ),
                Some("all") if key == keys::N_EVENTS => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) => bail!(
                        "{}: metadata key `{key}` is `{v}`, not a number of events\n  hint: the \
                         file was not written by flashc, or was edited",
                        path.display()
                    ),
                },
            }
        };
        let first = number(keys::FIRST_EVENT)?.unwrap_or(0);
        let asked = number(keys::N_EVENTS)?;
        let done = number(keys::N_EVENTS_SIMULATED)?.unwrap_or(0);
        if asked.is_some_and(|a| done > a) {
            bail!(
                "{}: metadata says {done} events were simulated of the {} asked for\n  hint: the \
                 file was not written by flashc, or was edited",
                path.display(),
                asked.unwrap_or(0)
            );
        }
        Ok(Part {
            path: path.to_path_buf(),
            schema: reader.schema().clone(),
            table: reader.name().to_string(),
            rows: reader.rows(),
            metadata,
            first,
            asked,
            done,
        })
    }

    /// The end of the events asked for (`None`: to the end of the input).
    fn end(&self) -> Option<u64> {
        self.asked.map(|n| self.first.saturating_add(n))
    }

    /// The file names this part stands for: its own, or those it was merged from.
    fn names(&self) -> Vec<String> {
        match self.metadata.get(keys::MERGED_FILES) {
            Some(list) if !list.is_empty() => list.split(',').map(str::to_string).collect(),
            _ => vec![self.path.file_name().map_or_else(
                || self.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )],
        }
    }
}

/// `events A..B` as "events A to B-1" (half-open ranges read badly in a message).
fn events(from: u64, to: u64) -> String {
    match to.saturating_sub(from) {
        0 => format!("no events (from event {from})"),
        1 => format!("event {from}"),
        n => format!("events {from} to {} ({n} events)", to - 1),
    }
}

fn show(v: Option<&str>) -> String {
    match v {
        Some(v) => format!("`{v}`"),
        None => "absent".to_string(),
    }
}

/// Checks that `b` comes from the same configuration as `a`.
fn check_same_run(a: &Part, b: &Part) -> Result<()> {
    const HINT: &str = "only the outputs of one production can be merged: the same flashc build, \
                        pipeline, seed, input, oversampling and models, split with --shard I/N or \
                        --first-event/--n-events";
    for key in a.metadata.differing_keys(&b.metadata) {
        if PER_FILE_KEYS.contains(&key) {
            continue;
        }
        bail!(
            "cannot merge {} and {}: metadata key `{key}` is {} in {} but {} in {}\n  hint: {HINT}",
            a.path.display(),
            b.path.display(),
            show(a.metadata.get(key)),
            a.path.display(),
            show(b.metadata.get(key)),
            b.path.display()
        );
    }
    if a.table != b.table {
        bail!(
            "cannot merge {} and {}: the table is `{}` in {} but `{}` in {}\n  hint: {HINT}",
            a.path.display(),
            b.path.display(),
            a.table,
            a.path.display(),
            b.table,
            b.path.display()
        );
    }
    if !a.schema.same_as(&b.schema) {
        let (fa, fb) = (a.schema.fields(), b.schema.fields());
        let what = match fa.iter().zip(fb).position(|(x, y)| x != y) {
            Some(i) => format!(
                "column {i} is `{}: {}` in {} but `{}: {}` in {}",
                fa[i].name,
                fa[i].ty,
                a.path.display(),
                fb[i].name,
                fb[i].ty,
                b.path.display()
            ),
            None => format!(
                "{} has {} columns, {} has {}",
                a.path.display(),
                fa.len(),
                b.path.display(),
                fb.len()
            ),
        };
        bail!(
            "cannot merge {} and {}: the columns differ (the schema): {what}\n  hint: {HINT}",
            a.path.display(),
            b.path.display()
        );
    }
    Ok(())
}

/// Checks that `b` starts where `a` ends.
fn check_follows(a: &Part, b: &Part) -> Result<()> {
    let (pa, pb) = (a.path.display(), b.path.display());
    let Some(end) = a.end() else {
        bail!(
            "cannot merge {pa} and {pb}: {pa} holds the events from {} to the end of its input \
             (n_events = all), so no file can follow it, but {pb} starts at event {}\n  hint: give \
             every job --n-events (the size of the production) and --shard I/N",
            a.first,
            b.first
        );
    };
    if end < b.first {
        bail!(
            "cannot merge: {} are missing: {pa} ends before event {end} and {pb} starts at event \
             {}\n  hint: merge the file(s) that hold the missing events too (a shard may have \
             failed or not been copied back), or simulate them again with the same --seed, \
             --n-events and --shard",
            events(end, b.first),
            b.first
        );
    }
    if end > b.first && b.asked == Some(0) {
        bail!(
            "cannot merge: {pb} holds no events, from event {}, which is inside the {} of {pa}\n  \
             hint: the files come from different splits of the production; merge the files of \
             one split",
            b.first,
            events(a.first, end)
        );
    }
    if end > b.first {
        let to = b.end().map_or(end, |e| e.min(end));
        bail!(
            "cannot merge: {} are in both {pa} and {pb}\n  hint: each event must be merged once: \
             a shard is given twice (perhaps under two names), or the files come from different \
             splits of the production",
            events(b.first, to)
        );
    }
    if a.asked.is_some_and(|n| a.done < n) && b.done > 0 {
        bail!(
            "cannot merge {pa} and {pb}: the input of {pa} ended after event {} (it has {} of its \
             {} events), but {pb}, which follows it, has {} events\n  hint: the files were \
             simulated from different inputs",
            a.first + a.done,
            a.done,
            a.asked.unwrap_or(0),
            b.done
        );
    }
    Ok(())
}

/// When every input is a shard `I/N` of the same N, says on stderr which shards at either end
/// are not among them: merging part of a production is allowed (e.g. in stages), but it is
/// worth a line.
fn notice_missing_shards(parts: &[Part]) {
    let shards: Option<Vec<(u64, u64)>> = parts
        .iter()
        .map(|p| {
            let (i, n) = p.metadata.get(keys::SHARD)?.split_once('/')?;
            Some((i.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    let Some(shards) = shards else { return };
    let n = shards[0].1;
    if shards.iter().any(|s| s.1 != n) {
        return;
    }
    let missing: Vec<String> = (1..=n)
        .filter(|i| !shards.iter().any(|s| s.0 == *i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "notice: merging {} of the {n} shards; not given: {} (the merged file holds part of \
             the production)",
            shards.len(),
            missing.join(", ")
        );
    }
}

/// The absolute form of `p` (of its directory when the file does not exist yet).
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), p.file_name()) {
        (Ok(d), Some(n)) => d.join(n),
        _ => p.to_path_buf(),
    }
}

pub fn run(args: &Args) -> Result<()> {
    // The error names the file and both extensions.
    let format = Format::from_path(&args.output)?;
    let out_abs = absolute(&args.output);
    let mut seen: Vec<(PathBuf, &Path)> = Vec::new();
    for p in &args.inputs {
        let abs = absolute(p);
        if abs == out_abs {
            bail!(
                "{} is both the output and an input of the merge\n  hint: write the merged file \
                 under another name",
                p.display()
            );
        }
        if let Some((_, earlier)) = seen.iter().find(|(a, _)| *a == abs) {
            let also = if *earlier == p.as_path() {
                String::new()
            } else {
                format!(" (also as {})", earlier.display())
            };
            bail!(
                "cannot merge: {} is given twice{also}\n  hint: name each file once",
                p.display()
            );
        }
        seen.push((abs, p));
    }

    let mut parts = args
        .inputs
        .iter()
        .map(|p| Part::open(p))
        .collect::<Result<Vec<_>>>()?;
    // Event order; an empty part before a part starting at the same event, open-ended last.
    parts.sort_by_key(|p| (p.first, p.asked.unwrap_or(u64::MAX)));
    for pair in parts.windows(2) {
        check_same_run(&parts[0], &pair[1])?;
        check_follows(&pair[0], &pair[1])?;
    }

    let first = &parts[0];
    let last = &parts[parts.len() - 1];
    notice_missing_shards(&parts);
    let asked = match last.end() {
        Some(end) => (end - first.first).to_string(),
        None => "all".to_string(),
    };
    let done: u64 = parts.iter().map(|p| p.done).sum();
    let names: Vec<String> = parts.iter().flat_map(Part::names).collect();
    let mut metadata = Metadata::new();
    for (k, v) in first.metadata.iter() {
        if k != keys::SHARD && k != keys::MERGED_FILES {
            metadata.insert(k, v);
        }
    }
    metadata
        .insert(keys::FIRST_EVENT, first.first.to_string())
        .insert(keys::N_EVENTS, asked)
        .insert(keys::N_EVENTS_SIMULATED, done.to_string())
        .insert(keys::MERGED_FILES, names.join(","));

    let mut writer =
        ntuple::Writer::create(&args.output, format, &first.schema, &metadata, &first.table)?;
    for part in &parts {
        let reader = Reader::open(&part.path)?;
        let before = writer.rows();
        for chunk in reader {
            let chunk = chunk?;
            writer.write(&chunk).with_context(|| {
                format!(
                    "writing {} (from {})",
                    args.output.display(),
                    part.path.display()
                )
            })?;
        }
        let read = writer.rows() - before;
        if read != part.rows {
            bail!(
                "{}: {read} rows could be read, the file says it has {}\n  hint: the file is \
                 damaged; simulate it again",
                part.path.display(),
                part.rows
            );
        }
    }
    let rows = writer.finish()?;
    println!(
        "merged {} file(s), {} from event {} ({rows} rows), into {} ({format})",
        parts.len(),
        match done {
            1 => "1 event".to_string(),
            n => format!("{n} events"),
        },
        first.first,
        args.output.display()
    );
    Ok(())
}
