//! Write throughput of both formats on a table of f32 columns.
//!
//! `cargo run -p flashc-ntuple --release --example write_throughput -- [ROWS] [COLUMNS] [CHUNK_ROWS] [FORMATS] [DIR]`
//! (defaults: 1000000 rows, 40 columns, 65536 rows per chunk, `root,parquet`, the system's
//! temporary directory). Four distinct chunks are generated up front and written in turn, so the
//! peak resident memory printed at the end is mostly the writer's own (plus those four chunks).

use std::time::Instant;

use ntuple::{Chunk, ColumnData, ColumnType, Format, Metadata, Reader, Schema, Writer};

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (rows, cols, chunk_rows) = (arg(0, 1_000_000), arg(1, 40), arg(2, 65_536));
    let formats = args.get(3).map(String::as_str).unwrap_or("root,parquet");
    let dir = args
        .get(4)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let schema = Schema::new((0..cols).map(|c| (format!("c{c}"), ColumnType::F32)))?;
    // Values like the simulator's: smooth functions of the row plus a pseudo-random part.
    let chunk_at = |start: usize, n: usize| -> Result<Chunk, ntuple::Error> {
        let columns = (0..cols)
            .map(|c| {
                ColumnData::F32(
                    (start..start + n)
                        .map(|i| {
                            let h = (i as u32)
                                .wrapping_mul(2_654_435_761)
                                .wrapping_add(c as u32 * 40_503);
                            (i as f32) * 1e-3 + (h >> 8) as f32 / (1u32 << 24) as f32
                        })
                        .collect(),
                )
            })
            .collect();
        Chunk::from_columns(&schema, columns)
    };
    let chunks: Vec<Chunk> = (0..4)
        .map(|k| chunk_at(k * chunk_rows, chunk_rows))
        .collect::<Result<_, _>>()?;
    let meta = Metadata::new().with("bench", "write_throughput");
    for name in formats.split(',') {
        let format = Format::from_path(format!("x.{name}"))?;
        let path = dir.join(format!("ntuple_throughput.{}", format.extension()));
        let t = Instant::now();
        let mut w = Writer::create(&path, format, &schema, &meta, "bench")?;
        let mut done = 0;
        for c in chunks.iter().cycle() {
            if done == rows {
                break;
            }
            let n = chunk_rows.min(rows - done);
            if n == chunk_rows {
                w.write(c)?;
            } else {
                w.write(&Chunk::from_columns(
                    &schema,
                    c.columns()
                        .iter()
                        .map(|d| match d {
                            ColumnData::F32(v) => ColumnData::F32(v[..n].to_vec()),
                            _ => unreachable!("every column is f32"),
                        })
                        .collect(),
                )?)?;
            }
            done += n;
        }
        w.finish()?;
        let write_s = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path)?.len();
        println!(
            "peak resident memory after writing {format}: {}",
            peak_memory()
        );
        let t = Instant::now();
        let mut read_rows = 0;
        for c in Reader::open(&path)? {
            read_rows += c?.rows();
        }
        let read_s = t.elapsed().as_secs_f64();
        assert_eq!(read_rows, rows);
        println!(
            "{format:8} {rows} rows x {cols} f32: write {write_s:.2} s = {:.0} rows/s ({:.0} MB/s of data), file {:.0} MB; read {read_s:.2} s = {:.0} rows/s",
            rows as f64 / write_s,
            (rows * cols * 4) as f64 / write_s / 1e6,
            size as f64 / 1e6,
            rows as f64 / read_s,
        );
        std::fs::remove_file(&path)?;
    }
    println!("peak resident memory: {}", peak_memory());
    Ok(())
}

/// The process's peak resident memory so far (Linux), or "unknown".
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
