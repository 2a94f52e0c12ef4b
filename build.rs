//! Builds the scikinC-style baselines of the demo models (C, `gcc -O3`, as LHCb deploys them) and
//! links them into the `flashc` binary for `flashc bench`.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Models that get a baseline; the others are benchmarked without one.
const BASELINE_MODELS: [&str; 3] = ["tracking_acceptance", "tracking_resolution", "pid_gan"];

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut table = String::from("/// Every baseline linked into this binary, by model name.\npub static BASELINES: &[(&str, Baseline)] = &[\n");
    let mut externs = String::from("extern \"C\" {\n");
    let mut build = cc::Build::new();
    build.opt_level(3).flag_if_supported("-fno-fast-math").warnings(false);
    let mut any = false;
    for name in BASELINE_MODELS {
        let spec = root.join("models").join(format!("{name}.json"));
        println!("cargo:rerun-if-changed={}", spec.display());
        if !spec.exists() {
            continue;
        }
        let model = match transpiler::load(&spec) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        let symbol = format!("scikinc_{name}");
        let c = match transpiler::baseline::scikinc_c(&model, &symbol) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        let file = out.join(format!("{symbol}.c"));
        write_if_changed(&file, &c);
        build.file(&file);
        any = true;
        let noise = model.n_noise() > 0;
        if noise {
            let _ = writeln!(externs, "    fn {symbol}(out: *mut f32, input: *const f32, random: *const f32) -> *mut f32;");
            let _ = writeln!(table, "    ({name:?}, Baseline::Generator({symbol})),");
        } else {
            let _ = writeln!(externs, "    fn {symbol}(out: *mut f32, input: *const f32) -> *mut f32;");
            let _ = writeln!(table, "    ({name:?}, Baseline::Plain({symbol})),");
        }
    }
    externs.push_str("}\n");
    table.push_str("];\n");
    if any {
        build.compile("flashc_baselines");
        println!("cargo:rustc-link-lib=m");
    }
    write_if_changed(&out.join("baselines.rs"), &format!("{externs}\n{table}"));
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}
