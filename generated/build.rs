//! Compiles every model spec under `models/` into Rust (see `transpiler::Config`).
use std::path::Path;

fn main() {
    // Relative to this crate (build scripts run in the package directory), so that the paths named
    // in generated code and messages do not depend on where the checkout lives.
    let models = Path::new("../models");
    println!("cargo:rerun-if-changed={}", models.display());
    let mut specs: Vec<_> = match std::fs::read_dir(models) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", models.display());
            std::process::exit(1);
        }
    };
    specs.sort();
    // Also the PTX of each model, for `--device cuda` (it is only text in the binary).
    if let Err(e) = transpiler::Config::new().ptx(true).compile(&specs) {
        // One clear message, no panic backtrace: cargo shows stderr of a failed build script.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
