//! `flashc`: compile flash-simulation models to native code, and run them.

mod baseline;
mod bench;
mod compile;
mod device;
mod merge;
mod output;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use runtime::Tier;

#[derive(Parser)]
#[command(name = "flashc", version, about = "Compile flash-simulation models to native code, and run them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark the embedded models: ns per sample, % of the measured FMA peak, and the
    /// speed-up over a scikinC-style scalar C build of the same weights.
    Bench(bench::Args),
    /// List the models embedded in this binary.
    Models,
    /// Load and validate a model spec, then print what it computes.
    Inspect {
        /// The model spec (`NAME.json`; the weights file is named inside it).
        spec: PathBuf,
    },
    /// Print the ISA tiers this machine supports and the one in use (`FLASHC_ISA` forces one).
    Isa,
    /// Run every embedded model on the GPU and compare it with the CPU (docs/cuda.md).
    CudaCheck {
        /// Rows per model.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
    },
    /// Simulate events through a pipeline of compiled models (the embedded demo models) and
    /// write a ROOT or Parquet ntuple. With no arguments: the Lamarr pipeline on 1000
    /// particle-gun events, into flashc-lamarr.root.
    Simulate(simulate::Args),
    /// Merge the outputs of the jobs of one production (`--shard I/N` or
    /// `--first-event/--n-events` splits; ROOT or Parquet, in any order) into one file, in event
    /// order, after checking that they come from one configuration and that their events follow
    /// each other with no gap and no overlap (docs/production.md).
    Merge(merge::Args),
    /// Compile model specs into a shared or static library with a scikinC-compatible C ABI
    /// and a C/C++ header (docs/c-abi.md).
    Compile(compile::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The library errors carry their own "error: ..." lines and hints; add the context
            // lines around them, without a backtrace.
            let mut chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            // An error whose message already quotes its source (e.g. an I/O error) is printed once.
            chain.dedup_by(|source, outer| outer.contains(source.as_str()));
            for (i, line) in chain.iter().enumerate() {
                if i == 0 && !line.starts_with("error") {
                    eprintln!("error: {line}");
                } else {
                    eprintln!("{line}");
                }
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Compile(args) => compile::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Models => {
            println!("{:<24} {:>7} {:>6} {:>8} {:>12}  source", "name", "inputs", "noise", "outputs", "MAC/row");
            for m in generated::MODELS {
                let i = m.info();
                println!(
                    "{:<24} {:>7} {:>6} {:>8} {:>12}  {}",
                    i.name, i.n_inputs, i.n_noise, i.n_outputs, i.macs_per_row, i.source
                );
            }
            Ok(())
        }
        Command::Inspect { spec } => {
            let model = transpiler::load(&spec).with_context(|| format!("inspecting {}", spec.display()))?;
            println!("{model}");
            Ok(())
        }
        Command::CudaCheck { rows } => device::check(generated::MODELS, rows),
        Command::Isa => {
            let supported = runtime::isa::supported();
            println!("active: {}", runtime::isa::active());
            let names: Vec<_> = supported.iter().map(|t| t.name()).collect();
            println!("supported: {}", names.join(", "));
            Ok(())
        }
    }
}

/// Parses a tier list: `all` (every supported tier), `active`, or comma-separated names.
pub(crate) fn parse_tiers(s: &str) -> Result<Vec<Tier>> {
    match s {
        "all" => Ok(runtime::isa::supported()),
        "active" => Ok(vec![runtime::isa::active()]),
        _ => s
            .split(',')
            .map(|name| {
                let tier = Tier::parse(name.trim()).with_context(|| {
                    format!("unknown ISA tier {name:?}; expected avx512, avx2, neon, portable, all or active")
                })?;
                if !tier.is_supported() {
                    bail!("ISA tier {tier} is not supported on this machine (run `flashc isa`)");
                }
                Ok(tier)
            })
            .collect(),
    }
}
