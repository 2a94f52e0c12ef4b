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
//! rebuilds incrementally; the helpers are shared with the benchmark, `c_abi_support/`). The
//! per-row latency table (C ABI vs Rust API vs the scikinC-style baseline) is a benchmark:
//! `cargo bench --bench c_abi` (benches/c_abi.rs).

#[path = "c_abi_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::Model;
use support::{c_host, fixture, flashc, models, read_f32, root, run_ok, shared, static_lib, work, write_f32, Fixture};

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

/// The build-script route (docs/c-abi.md, "From a build script"): a crate of its own whose
/// build.rs calls `transpiler::compile_models` and `transpiler::capi::emit`, as the module's
/// documentation shows, builds a cdylib exporting the same C ABI, which the C host runs with
/// results bit-identical to the Rust API.
#[test]
fn a_build_script_emits_the_same_c_abi_for_its_own_cdylib() {
    let d = work().join("build_rs");
    std::fs::create_dir_all(d.join("src")).unwrap();
    let path = |p: &str| format!("{:?}", root().join(p).display().to_string());
    let manifest = format!(
        "[package]\nname = \"capi-from-build-rs\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         [lib]\nname = \"frombuild\"\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nruntime = {{ package = \"flashc-runtime\", path = {}, default-features = false }}\n\n\
         [build-dependencies]\ntranspiler = {{ package = \"flashc-transpiler\", path = {} }}\n\n\
         [workspace]\n\n[profile.release]\npanic = \"unwind\"\n",
        path("runtime"),
        path("transpiler")
    );
    let spec = root().join("models/pid_gan.json");
    let build_rs = format!(
        r#"use std::path::PathBuf;
use transpiler::capi;

fn main() -> Result<(), transpiler::Error> {{
    let specs = [{spec:?}];
    transpiler::compile_models(&specs)?;
    let models = specs
        .iter()
        .map(|s| Ok(capi::CModel::new(&transpiler::load(s)?, Some("gan"))))
        .collect::<Result<Vec<_>, transpiler::Error>>()?;
    let out = capi::emit(&models, &capi::Options::new().header_stem("gan"))?;
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    transpiler::write_if_changed(&dir.join("flashc_capi.rs"), out.capi_rs.as_bytes())?;
    transpiler::write_if_changed(&dir.join("flashc_ffi.rs"), out.ffi_rs.as_bytes())?;
    transpiler::write_if_changed(&dir.join("gan.h"), out.header.as_bytes())?;
    Ok(())
}}
"#,
        spec = spec.display().to_string()
    );
    let lib_rs = "#[allow(dead_code)]\npub mod models { include!(concat!(env!(\"OUT_DIR\"), \"/flashc_models.rs\")); }\n\
                  mod ffi { include!(concat!(env!(\"OUT_DIR\"), \"/flashc_ffi.rs\")); }\n\
                  pub mod capi { include!(concat!(env!(\"OUT_DIR\"), \"/flashc_capi.rs\")); }\n";
    for (file, text) in [("Cargo.toml", manifest.as_str()), ("build.rs", &build_rs), ("src/lib.rs", lib_rs)] {
        if std::fs::read_to_string(d.join(file)).ok().as_deref() != Some(text) {
            std::fs::write(d.join(file), text).unwrap();
        }
    }
    if !d.join("Cargo.lock").exists() {
        // The workspace's lock file: the same dependency versions as flashc itself.
        std::fs::copy(root().join("Cargo.lock"), d.join("Cargo.lock")).unwrap();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_ok(
        Command::new(cargo)
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(d.join("Cargo.toml"))
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR"),
    );
    let lib = d.join("target/release/libfrombuild.so");
    let nm = run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    let exported: BTreeSet<&str> = nm
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace().rev();
            let name = parts.next()?;
            (parts.next()? == "T").then_some(name)
        })
        .collect();
    let expected: BTreeSet<String> = SUFFIXES.iter().map(|s| format!("gan{s}")).collect();
    assert_eq!(
        exported,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "{}",
        lib.display()
    );
    // Run by the C host: its checks pass and the results are the Rust API's, bit for bit.
    let model = generated::by_name("pid_gan").expect("pid_gan is compiled");
    let f = fixture(model);
    let p = |ext: &str| d.join(format!("pid_gan.{ext}"));
    write_f32(&p("in.f32"), &f.inputs);
    write_f32(&p("noise.f32"), &f.noise);
    let stdout = run_ok(
        Command::new(c_host())
            .arg("run")
            .arg(&lib)
            .arg("gan")
            .arg(f.rows.to_string())
            .args([p("in.f32"), p("noise.f32"), p("row.f32"), p("batch.f32")]),
    );
    assert!(stdout.contains("checks ok"), "{stdout}");
    let rust = rust_outputs(model, &f);
    assert!(same_bits(&read_f32(&p("row.f32")), &rust), "the build-script library and the Rust API differ");
    assert!(same_bits(&read_f32(&p("batch.f32")), &rust));
}
