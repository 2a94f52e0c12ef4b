//! The C ABI end to end (`flashc compile`, docs/c-abi.md): every model under `models/` compiled
//! into one shared and one static library, then used from C and C++ programs built here with the
//! system compilers:
//!
//! * a C program `dlopen`s the shared library and resolves the symbols with `dlsym` as SQLamarr
//!   does, runs the fixture rows row by row and in batch, checks error codes and in-place calls;
//!   its outputs must equal the Rust API's bit for bit and match the framework fixtures;
//! * a C++ program links the static library through the generated header and calls it from 4
//!   threads at once;
//! * the header compiles as C99 and C++11 (`-pedantic-errors -Werror`);
//! * the shared library needs only libc/libm/libgcc_s and exports only the C ABI;
//! * bad input (unknown file, clashing symbols, invalid spec, failed build) is one clear error and
//!   leaves no file behind.
//!
//! The libraries are built once per test binary (`--crate` under `CARGO_TARGET_TMPDIR`, so a rerun
//! rebuilds incrementally). The per-row latency table (C ABI vs Rust API vs the scikinC-style
//! baseline) is `cargo test --release --test c_abi -- --ignored --nocapture latency`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use runtime::Model;
use safetensors::{Dtype, SafeTensors};

/// Max |C − fixture| per column, relative to the column's range (the criterion of tests/fixtures.rs).
const TOLERANCE: f64 = 1e-5;

/// Per-model symbol suffixes the library must export (docs/c-abi.md).
const SUFFIXES: [&str; 9] = [
    "",
    "_batch",
    "_n_inputs",
    "_n_noise",
    "_n_outputs",
    "_input_name",
    "_output_name",
    "_noise_distribution",
    "_isa",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn work() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn flashc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashc"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the flashc binary runs")
}

/// Runs a command; panics with its output unless it succeeds.
fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{text}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every spec under models/, as paths relative to the repository root.
fn specs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .map(|n| format!("models/{n}"))
        .collect();
    v.sort();
    v
}

/// The compiled models, as the Rust API sees them (same specs).
fn models() -> Vec<&'static dyn Model> {
    let models: Vec<&'static dyn Model> = generated::MODELS.to_vec();
    assert_eq!(
        models.len(),
        specs().len(),
        "generated/ compiles every spec under models/"
    );
    assert!(models.len() >= 3, "the demo models are missing from models/");
    models
}

struct Lib {
    lib: PathBuf,
    header: PathBuf,
}

/// Serialises the two builds (they share the crate directory).
static BUILD: Mutex<()> = Mutex::new(());

fn build(staticlib: bool) -> Lib {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let w = work();
    let (lib, header) = if staticlib {
        (w.join("libdemo.a"), w.join("demo_static.h"))
    } else {
        (w.join("libdemo.so"), w.join("demo_models.h"))
    };
    let _ = std::fs::remove_file(&lib);
    let crate_dir = w.join("crate");
    let mut args: Vec<String> = vec!["compile".into()];
    args.extend(specs());
    for a in [
        "-o",
        lib.to_str().unwrap(),
        "--header",
        header.to_str().unwrap(),
        "--crate",
        crate_dir.to_str().unwrap(),
        "-q",
    ] {
        args.push(a.into());
    }
    if staticlib {
        args.push("--staticlib".into());
    }
    let out = flashc(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "flashc compile failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lib.is_file() && header.is_file());
    Lib { lib, header }
}

fn shared() -> &'static Lib {
    static L: OnceLock<Lib> = OnceLock::new();
    L.get_or_init(|| build(false))
}

fn static_lib() -> &'static Lib {
    static L: OnceLock<Lib> = OnceLock::new();
    L.get_or_init(|| build(true))
}

/// The SQLamarr-like C host (tests/c/sqlamarr_like.c).
fn c_host() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let exe = work().join("sqlamarr_like");
        run_ok(
            Command::new("cc")
                .args([
                    "-std=c99",
                    "-Wall",
                    "-Wextra",
                    "-pedantic-errors",
                    "-Werror",
                    "-O2",
                    "-o",
                ])
                .arg(&exe)
                .arg(root().join("tests/c/sqlamarr_like.c"))
                .arg("-ldl"),
        );
        exe
    })
}

struct Fixture {
    inputs: Vec<f32>,
    noise: Vec<f32>,
    outputs: Vec<f64>,
    rows: usize,
}

fn tensor(st: &SafeTensors, file: &Path, name: &str) -> Option<Vec<f64>> {
    let t = st.tensor(name).ok()?;
    Some(match t.dtype() {
        Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        other => panic!("{}: tensor {name} has dtype {other:?}", file.display()),
    })
}

fn fixture(model: &dyn Model) -> Fixture {
    let info = model.info();
    let file = root().join("tests/fixtures").join(format!("{}.safetensors", info.name));
    let bytes =
        std::fs::read(&file).unwrap_or_else(|e| panic!("model {} has no fixture {}: {e}", info.name, file.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let inputs = tensor(&st, &file, "inputs").expect("fixture has inputs");
    let outputs = tensor(&st, &file, "outputs").expect("fixture has outputs");
    let rows = inputs.len() / info.n_inputs;
    assert_eq!(outputs.len(), rows * info.n_outputs, "{}", file.display());
    let noise = tensor(&st, &file, "noise").unwrap_or_default();
    assert_eq!(noise.len(), rows * info.n_noise, "{}: noise", file.display());
    Fixture {
        inputs: inputs.into_iter().map(|x| x as f32).collect(),
        noise: noise.into_iter().map(|x| x as f32).collect(),
        outputs,
        rows,
    }
}

fn write_f32(path: &Path, data: &[f32]) {
    std::fs::write(path, data.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The Rust API's outputs for the fixture rows.
fn rust_outputs(model: &dyn Model, f: &Fixture) -> Vec<f32> {
    let mut out = vec![0f32; f.rows * model.info().n_outputs];
    model.run(&f.inputs, &f.noise, &mut out).unwrap();
    out
}

/// The fixture criterion of tests/fixtures.rs: per column, |C − reference| ≤ 1e-5 × the column's
/// range, plus, per value, the reference's own rounding error |reference − exact| (exact: the model
/// in f64, `transpiler::reference`), which matters only where the model is ill-conditioned.
/// Returns (worst plain scaled error, values out of tolerance).
fn compare(got: &[f32], want: &[f64], exact: &[f64], rows: usize, cols: usize) -> (f64, usize) {
    let (mut worst, mut bad) = (0f64, 0);
    for c in 0..cols {
        let col: Vec<f64> = (0..rows).map(|r| want[r * cols + c]).collect();
        let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let scale = if hi > lo {
            hi - lo
        } else {
            col.iter().fold(1.0f64, |m, x| m.max(x.abs()))
        };
        for r in 0..rows {
            let i = r * cols + c;
            let d = (got[i] as f64 - want[i]).abs();
            assert!(d.is_finite(), "column {c} row {r}: got {} want {}", got[i], want[i]);
            worst = worst.max(d / scale);
            if d > TOLERANCE * scale + (want[i] - exact[i]).abs() {
                bad += 1;
            }
        }
    }
    (worst, bad)
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn shared_library_called_from_c_like_sqlamarr_matches_rust_and_fixtures() {
    let lib = shared();
    let host = c_host();
    let dir = work().join("c_run");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for model in models() {
        let info = model.info();
        let f = fixture(model);
        let p = |ext: &str| dir.join(format!("{}.{ext}", info.name));
        write_f32(&p("in.f32"), &f.inputs);
        write_f32(&p("noise.f32"), &f.noise);
        // Every instruction-set tier of this machine, forced with FLASHC_ISA as a user would.
        for tier in runtime::isa::supported() {
            let stdout = run_ok(
                Command::new(host)
                    .env("FLASHC_ISA", tier.name())
                    .arg("run")
                    .arg(&lib.lib)
                    .arg(info.name)
                    .arg(f.rows.to_string())
                    .args([p("in.f32"), p("noise.f32"), p("row.f32"), p("batch.f32")]),
            );
            assert!(stdout.contains("checks ok"), "{} on {tier}: {stdout}", info.name);
            // Metadata seen from C = the Rust API's.
            let head = format!(
                "model {}: {} inputs, {} noise ({}), {} outputs, isa {}",
                info.name,
                info.n_inputs,
                info.n_noise,
                if info.n_noise == 0 {
                    "none".to_string()
                } else {
                    format!("{:?}", info.noise).to_lowercase()
                },
                info.n_outputs,
                tier.name()
            );
            assert!(
                stdout.starts_with(&head),
                "{}: expected {head:?}, got\n{stdout}",
                info.name
            );
            for (i, c) in info.input_columns.iter().enumerate() {
                assert!(
                    stdout.contains(&format!("\ninput {i} {c}\n")),
                    "{}: input column {i} {c}",
                    info.name
                );
            }
            for (i, c) in info.output_columns.iter().enumerate() {
                assert!(
                    stdout.contains(&format!("\noutput {i} {c}\n")),
                    "{}: output column {i} {c}",
                    info.name
                );
            }
            let (row, batch) = (read_f32(&p("row.f32")), read_f32(&p("batch.f32")));
            let mut rust = vec![0f32; f.rows * info.n_outputs];
            model.run_on(tier, &f.inputs, &f.noise, &mut rust).unwrap();
            assert!(
                same_bits(&row, &batch),
                "{} on {tier}: row-by-row and batch results differ",
                info.name
            );
            assert!(
                same_bits(&row, &rust),
                "{} on {tier}: the C ABI and the Rust API differ",
                info.name
            );
            if tier != runtime::isa::active() {
                continue;
            }
            let spec = root().join("models").join(format!("{}.json", info.name));
            let ir = transpiler::load(&spec).unwrap_or_else(|e| panic!("{e}"));
            let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
            let exact = transpiler::reference::eval(ir.model(), f.rows, &f64s(&f.inputs), &f64s(&f.noise)).unwrap();
            let (err, bad) = compare(&row, &f.outputs, &exact, f.rows, info.n_outputs);
            println!(
                "{:<24} {} rows through dlopen/dlsym: identical to Rust on {:?}; max error vs fixture {err:.2e} of the column range, {bad} value(s) out of tolerance",
                info.name,
                f.rows,
                runtime::isa::supported().iter().map(|t| t.name()).collect::<Vec<_>>()
            );
            if bad > 0 {
                failures.push(format!(
                    "{}: {bad} value(s) out of tolerance (worst {err:.2e} of the column range); the C ABI is bit-identical to the Rust API, so this is the compiled model's accuracy (tests/fixtures.rs)",
                    info.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn static_library_linked_into_cpp_matches_rust_from_several_threads() {
    let lib = static_lib();
    let dir = work().join("cpp_run");
    std::fs::create_dir_all(&dir).unwrap();
    let mut expected = Vec::new();
    for model in models() {
        let f = fixture(model);
        let name = model.info().name;
        write_f32(&dir.join(format!("{name}.in.f32")), &f.inputs);
        write_f32(&dir.join(format!("{name}.noise.f32")), &f.noise);
        expected.push((name, rust_outputs(model, &f)));
    }
    let exe = work().join("static_link");
    run_ok(
        Command::new("c++")
            .args([
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-pedantic-errors",
                "-Werror",
                "-O2",
                "-pthread",
                "-include",
            ])
            .arg(&lib.header)
            .arg("-DFLASHC_FOREACH=FLASHC_DEMO_STATIC_FOREACH")
            .arg(root().join("tests/c/static_link.cpp"))
            .arg(&lib.lib)
            .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc", "-o"])
            .arg(&exe),
    );
    let stdout = run_ok(Command::new(&exe).arg(&dir));
    assert!(stdout.contains("checks ok"), "{stdout}");
    assert!(stdout.contains(&format!("{} models", expected.len())), "{stdout}");
    for (name, rust) in expected {
        let got = read_f32(&dir.join(format!("{name}.cpp.f32")));
        assert!(
            same_bits(&got, &rust),
            "{name}: the static library from C++ and the Rust API differ"
        );
    }
}

#[test]
fn header_compiles_as_c99_and_cpp11_and_links_against_the_shared_library() {
    let lib = shared();
    let dir = work().join("header");
    std::fs::create_dir_all(&dir).unwrap();
    // Every model through the header's X-macro: sizes from the macros and from the library.
    let src = dir.join("use_header.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include \"demo_models.h\"\n\
         #define SHOW(NAME, NI, NZ, NO) printf(\"%s %d %d %d %zu %zu %zu\\n\", #NAME, NI, NZ, NO, \\\n\
             NAME##_n_inputs(), NAME##_n_noise(), NAME##_n_outputs());\n\
         int main(void) {\n    FLASHC_DEMO_MODELS_FOREACH(SHOW)\n    return 0;\n}\n",
    )
    .unwrap();
    let include = lib.header.parent().unwrap();
    run_ok(
        Command::new("cc")
            .args(["-std=c99", "-Wall", "-Wextra", "-pedantic-errors", "-Werror", "-I"])
            .arg(include)
            .arg(&src)
            .arg("-o")
            .arg(dir.join("use_header_c"))
            .arg(format!("-L{}", include.display()))
            .arg("-l:libdemo.so")
            .arg(format!("-Wl,-rpath,{}", include.display())),
    );
    let cpp = dir.join("use_header.cpp");
    std::fs::copy(&src, &cpp).unwrap();
    run_ok(
        Command::new("c++")
            .args([
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-pedantic-errors",
                "-Werror",
                "-fsyntax-only",
                "-I",
            ])
            .arg(include)
            .arg(&cpp),
    );
    let stdout = run_ok(&mut Command::new(dir.join("use_header_c")));
    for model in models() {
        let i = model.info();
        let line = format!(
            "{} {} {} {} {} {} {}",
            i.name, i.n_inputs, i.n_noise, i.n_outputs, i.n_inputs, i.n_noise, i.n_outputs
        );
        assert!(stdout.lines().any(|l| l == line), "missing {line:?} in\n{stdout}");
    }
    // The header documents every column.
    let header = std::fs::read_to_string(&lib.header).unwrap();
    for model in models() {
        for c in model.info().input_columns.iter().chain(model.info().output_columns) {
            assert!(
                header.contains(c),
                "the header does not name column {c} of {}",
                model.info().name
            );
        }
    }
}

#[test]
fn shared_library_needs_only_libc_libm_libgcc_s_and_exports_only_the_c_abi() {
    let lib = shared();
    let dynamic = run_ok(Command::new("readelf").arg("-d").arg(&lib.lib));
    let needed: BTreeSet<String> = dynamic
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1).map(|s| s.trim_end_matches(']').to_string()))
        .collect();
    let allowed = [
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ];
    assert!(!needed.is_empty(), "{dynamic}");
    for n in &needed {
        assert!(
            allowed.contains(&n.as_str()),
            "{} needs {n}; allowed: {allowed:?}\n{dynamic}",
            lib.lib.display()
        );
    }
    assert!(dynamic.contains("Library soname: [libdemo.so]"), "{dynamic}");
    // Exactly the C ABI is exported.
    let nm = run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib.lib));
    let exported: BTreeSet<String> = nm
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace().rev();
            let name = parts.next()?;
            let kind = parts.next()?;
            (kind == "T").then(|| name.to_string())
        })
        .collect();
    let expected: BTreeSet<String> = models()
        .iter()
        .flat_map(|m| SUFFIXES.iter().map(move |s| format!("{}{s}", m.info().name)))
        .collect();
    assert_eq!(exported, expected, "exported functions of {}", lib.lib.display());
}

/// A scratch directory for one failure test; returns it empty.
fn scratch(name: &str) -> PathBuf {
    let d = work().join("bad").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a `flashc compile` that must fail; returns its stderr. `dir` must hold only `keep` after.
fn compile_fails(args: &[&str], dir: &Path, keep: &[&str]) -> String {
    let out = flashc(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "flashc compile {args:?} succeeded");
    assert!(!stderr.contains("panicked"), "a panic instead of an error:\n{stderr}");
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, keep, "files left in {} after a failed compile", dir.display());
    stderr
}

#[test]
fn unknown_rename_target_is_one_clear_error_and_writes_nothing() {
    let d = scratch("unknown");
    let (so, h) = (d.join("libx.so"), d.join("x.h"));
    let err = compile_fails(
        &[
            "compile",
            "acc=models/no_such_model.json",
            "models/tracking_acceptance.json",
            "-o",
            so.to_str().unwrap(),
            "--header",
            h.to_str().unwrap(),
        ],
        &d,
        &[],
    );
    assert!(err.contains("models/no_such_model.json: no such spec file"), "{err}");
    assert!(
        err.contains("`acc=models/no_such_model.json`"),
        "names the argument: {err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
}

#[test]
fn clashing_symbols_are_one_clear_error_and_write_nothing() {
    let d = scratch("clash");
    let so = d.join("libx.so");
    let err = compile_fails(
        &[
            "compile",
            "net=models/tracking_acceptance.json",
            "net=models/pid_gan.json",
            "-o",
            so.to_str().unwrap(),
        ],
        &d,
        &[],
    );
    assert!(err.contains("symbol clash: `net`"), "{err}");
    let err = compile_fails(
        &[
            "compile",
            "models/tracking_acceptance.json",
            "tracking_acceptance_batch=models/pid_gan.json",
            "-o",
            so.to_str().unwrap(),
        ],
        &d,
        &[],
    );
    assert!(
        err.contains("`tracking_acceptance_batch`") && err.contains("`_batch` function"),
        "{err}"
    );
    let err = compile_fails(
        &["compile", "exp=models/pid_gan.json", "-o", so.to_str().unwrap()],
        &d,
        &[],
    );
    assert!(
        err.contains("`exp` is a C/C++ keyword or a C library function name"),
        "{err}"
    );
}

#[test]
fn invalid_spec_is_a_clear_error_and_an_existing_library_is_untouched() {
    let d = scratch("invalid");
    let so = d.join("libx.so");
    std::fs::write(&so, b"previous library").unwrap();
    // A copy of a demo spec with one node's op misspelled.
    let text = std::fs::read_to_string(root().join("models/tracking_acceptance.json")).unwrap();
    let mut spec: serde_json_lite::Value = serde_json_lite::parse(&text);
    spec.break_first_op();
    let weights = root().join("models/tracking_acceptance.safetensors");
    spec.set_weights(weights.to_str().unwrap());
    let bad = d.join("broken.json");
    std::fs::write(&bad, spec.text).unwrap();
    let err = compile_fails(
        &["compile", bad.to_str().unwrap(), "-o", so.to_str().unwrap()],
        &d,
        &["broken.json", "libx.so"],
    );
    assert!(err.contains("broken.json"), "names the file: {err}");
    assert!(err.contains("no_such_op"), "names the bad op: {err}");
    assert_eq!(std::fs::read(&so).unwrap(), b"previous library");
}

#[test]
fn failed_build_leaves_no_library() {
    let d = scratch("build");
    let rt = d.join("fake_runtime");
    std::fs::create_dir_all(&rt).unwrap();
    std::fs::write(rt.join("Cargo.toml"), "this is not a manifest").unwrap();
    let so = d.join("libx.so");
    let err = compile_fails(
        &[
            "compile",
            "models/tracking_acceptance.json",
            "-o",
            so.to_str().unwrap(),
            "--runtime-path",
            rt.to_str().unwrap(),
            "-q",
        ],
        &d,
        &["fake_runtime"],
    );
    assert!(err.contains("building the generated crate failed"), "{err}");
}

/// Minimal JSON editing for the invalid-spec test (no JSON dependency needed for two edits).
mod serde_json_lite {
    pub struct Value {
        pub text: String,
    }
    pub fn parse(text: &str) -> Value {
        Value { text: text.to_string() }
    }
    impl Value {
        /// Replaces the first `"op": "..."` value by `no_such_op`.
        pub fn break_first_op(&mut self) {
            let at = self.text.find("\"op\"").expect("the spec has a node");
            let colon = at + self.text[at..].find(':').unwrap();
            let open = colon + self.text[colon..].find('"').unwrap();
            let close = open + 1 + self.text[open + 1..].find('"').unwrap();
            self.text.replace_range(open..=close, "\"no_such_op\"");
        }
        /// Points `"weights"` at an absolute path.
        pub fn set_weights(&mut self, path: &str) {
            let at = self.text.find("\"weights\"").expect("the spec names its weights");
            let colon = at + self.text[at..].find(':').unwrap();
            let open = colon + self.text[colon..].find('"').unwrap();
            let close = open + 1 + self.text[open + 1..].find('"').unwrap();
            self.text.replace_range(open..=close, &format!("{path:?}"));
        }
    }
}

/// Times `f` (one call = `rows` rows) as the C host does: a tenth of the budget to warm up, then 7
/// repetitions; returns (min, median) ns per row.
fn time_rust(budget_s: f64, rows: usize, mut f: impl FnMut()) -> (f64, f64) {
    use std::time::Instant;
    const REPS: usize = 7;
    let t0 = Instant::now();
    let mut calls = 0u64;
    while t0.elapsed().as_secs_f64() < budget_s / 10.0 || calls < 3 {
        f();
        calls += 1;
    }
    let per_rep = ((budget_s / REPS as f64) / (t0.elapsed().as_secs_f64() / calls as f64)) as u64 + 1;
    let mut times: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_rep {
                f();
            }
            t.elapsed().as_secs_f64() * 1e9 / (per_rep as f64 * rows as f64)
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[0], times[REPS / 2])
}

#[test]
#[ignore = "benchmark: cargo test --release --test c_abi -- --ignored --nocapture latency"]
fn latency_table_c_abi_vs_rust_api_vs_scikinc_style() {
    if cfg!(debug_assertions) {
        panic!("run the benchmark with --release (the Rust API column is timed in this process)");
    }
    const DEMO: [&str; 3] = ["tracking_acceptance", "tracking_resolution", "pid_gan"];
    const BATCH: usize = 256;
    let budget = 0.5;
    let lib = shared();
    let host = c_host();
    let dir = work().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    // The scikinC-style baseline, compiled as LHCb does (gcc -O3, no -march) and loaded by the same host.
    let mut sources = Vec::new();
    for name in DEMO {
        let valid = transpiler::load(root().join(format!("models/{name}.json"))).unwrap();
        let c = transpiler::baseline::scikinc_c(&valid, &format!("scikinc_{name}")).unwrap();
        let file = dir.join(format!("scikinc_{name}.c"));
        std::fs::write(&file, c).unwrap();
        sources.push(file);
    }
    let baseline = dir.join("libscikinc.so");
    run_ok(
        Command::new("cc")
            .args(["-O3", "-fno-fast-math", "-fPIC", "-shared", "-o"])
            .arg(&baseline)
            .args(&sources)
            .arg("-lm"),
    );
    let mut args: Vec<String> = vec!["bench".into(), budget.to_string()];
    let mut rust = Vec::new();
    for name in DEMO {
        let model = generated::by_name(name).unwrap_or_else(|| panic!("{name} is not compiled"));
        let info = model.info();
        let f = fixture(model);
        let rows = f.rows.min(1024);
        let (inp, noise) = (&f.inputs[..rows * info.n_inputs], &f.noise[..rows * info.n_noise]);
        let (fin, fnoise) = (
            dir.join(format!("{name}.in.f32")),
            dir.join(format!("{name}.noise.f32")),
        );
        write_f32(&fin, inp);
        write_f32(&fnoise, noise);
        let sizes = [info.n_inputs, info.n_noise, info.n_outputs].map(|n| n.to_string());
        for (lib, sym, batch) in [
            (&lib.lib, name.to_string(), 0),
            (&baseline, format!("scikinc_{name}"), 0),
            (&lib.lib, name.to_string(), BATCH.min(rows)),
        ] {
            args.push(lib.to_str().unwrap().into());
            args.push(sym);
            args.extend(sizes.iter().cloned());
            args.push(batch.to_string());
            args.push(rows.to_string());
            args.push(fin.to_str().unwrap().into());
            args.push(fnoise.to_str().unwrap().into());
        }
        // The Rust API, one row per call, cycling over the same rows.
        let mut out = vec![0f32; info.n_outputs];
        let mut r = 0usize;
        let (ni, nz) = (info.n_inputs, info.n_noise);
        rust.push(time_rust(budget, 1, || {
            model
                .run_row(
                    std::hint::black_box(&inp[r * ni..(r + 1) * ni]),
                    std::hint::black_box(&noise[r * nz..(r + 1) * nz]),
                    &mut out,
                )
                .unwrap();
            std::hint::black_box(&out);
            r = if r + 1 == rows { 0 } else { r + 1 };
        }));
    }
    let stdout = run_ok(Command::new(host).args(&args));
    let c: Vec<(String, usize, f64, f64)> = stdout
        .lines()
        .filter_map(|l| {
            let v: Vec<&str> = l.split_whitespace().collect();
            (v.len() == 5 && v[0] == "bench").then(|| {
                (
                    v[1].to_string(),
                    v[2].parse().unwrap(),
                    v[3].parse().unwrap(),
                    v[4].parse().unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(c.len(), 3 * DEMO.len(), "{stdout}");
    println!(
        "\nper-row latency, ns per row (min / median of 7 repetitions, {budget} s each cell), isa {}:\n",
        runtime::isa::active()
    );
    println!("| model | C ABI, row call via dlopen | Rust API `run_row` | scikinC-style C via dlopen | C ABI speed-up vs scikinC-style | C ABI `_batch` ({BATCH} rows/call) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (k, name) in DEMO.iter().enumerate() {
        let (row, base, batch) = (&c[3 * k], &c[3 * k + 1], &c[3 * k + 2]);
        let (rmin, rmed) = rust[k];
        println!(
            "| {name} | {:.0} / {:.0} | {rmin:.0} / {rmed:.0} | {:.0} / {:.0} | {:.1}× | {:.0} / {:.0} |",
            row.2,
            row.3,
            base.2,
            base.3,
            base.2 / row.2,
            batch.2,
            batch.3
        );
    }
}

#[test]
fn crate_only_mode_writes_a_standalone_crate_and_never_overwrites_another_directory() {
    let d = scratch("crate_only");
    let dir = d.join("capi");
    let out = flashc(&["compile", "gan=models/pid_gan.json", "--crate", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/lib.rs",
        "src/capi.rs",
        "src/ffi.rs",
        "include/flashc_capi.h",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing from the crate");
    }
    assert!(dir.join("models/pid_gan.weights.bin").is_file() && dir.join("runtime/src/lib.rs").is_file());
    let capi = std::fs::read_to_string(dir.join("src/capi.rs")).unwrap();
    assert!(
        capi.contains("#[unsafe(export_name = \"gan\")]") && capi.contains("crate::models::PID_GAN"),
        "{capi}"
    );
    assert!(!dir.join("target").exists(), "the crate-only mode does not build");
    // A directory that is not such a crate is refused, untouched.
    let other = d.join("project");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("Cargo.toml"), "[package]\nname = \"mine\"\n").unwrap();
    let out = flashc(&["compile", "models/pid_gan.json", "--crate", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a crate written by flashc compile"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(other.join("Cargo.toml")).unwrap(),
        "[package]\nname = \"mine\"\n"
    );
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}
