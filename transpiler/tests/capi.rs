//! `transpiler::capi`: the C ABI text (entry points, plumbing, header) that `flashc compile` and
//! build scripts emit. Built and called from C in tests/c_abi.rs of the workspace; here: its
//! content, determinism, options and checks.

use std::path::PathBuf;

use transpiler::capi::{self, CModel, Options, MACRO_SUFFIXES, SUFFIXES};

fn spec(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models").join(format!("{name}.json"))
}

/// A deterministic model and a generator, the second exported under another symbol.
fn demo() -> Vec<CModel> {
    let acc = transpiler::load(spec("tracking_acceptance")).unwrap_or_else(|e| panic!("{e}"));
    let gan = transpiler::load(spec("pid_gan")).unwrap_or_else(|e| panic!("{e}"));
    vec![CModel::new(&acc, None), CModel::new(&gan, Some("gan"))]
}

fn emit(models: &[CModel], options: &Options) -> capi::CApi {
    capi::emit(models, options).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn models_are_described_from_the_ir() {
    let m = demo();
    assert_eq!(m[0].symbol, "tracking_acceptance");
    assert_eq!(m[0].model, "tracking_acceptance");
    assert_eq!((m[0].n_noise, m[0].noise.as_str()), (0, "none"));
    assert_eq!(m[1].symbol, "gan");
    assert_eq!(m[1].model, "pid_gan");
    assert!(m[1].n_noise > 0 && m[1].noise == "normal", "{:?}", m[1]);
    let valid = transpiler::load(spec("pid_gan")).unwrap();
    assert_eq!(m[1].inputs.len(), valid.n_inputs());
    assert_eq!(m[1].outputs.len(), valid.n_outputs());
}

#[test]
fn emitted_text_is_deterministic_and_independent_of_other_calls() {
    let models = demo();
    let a = emit(&models, &Options::new().header_stem("libdemo"));
    let _other = emit(&models[1..], &Options::new().runtime_crate("crate::rt"));
    let b = emit(&demo(), &Options::new().header_stem("libdemo"));
    assert_eq!(a, b);
    for text in [&a.capi_rs, &a.ffi_rs, &a.header] {
        assert!(text.contains("@generated"), "stamped @generated");
        assert!(!text.contains("//!"), "no inner doc comments: the files can be include!d");
    }
}

#[test]
fn every_symbol_is_exported_once_and_declared_in_the_header() {
    let models = demo();
    let out = emit(&models, &Options::new().header_stem("libdemo").link_note("Link: cc prog.c -ldemo"));
    for m in &models {
        for suffix in SUFFIXES {
            let needle = format!("#[unsafe(export_name = \"{}{suffix}\")]", m.symbol);
            assert_eq!(out.capi_rs.matches(&needle).count(), 1, "{needle}");
        }
        let up = m.symbol.to_ascii_uppercase();
        for suffix in MACRO_SUFFIXES {
            assert_eq!(out.header.matches(&format!("#define {up}{suffix} ")).count(), 1, "{up}{suffix}");
        }
        for c in m.inputs.iter().chain(&m.outputs) {
            assert!(out.header.contains(c.as_str()), "the header documents column {c}");
            assert!(out.capi_rs.contains(&format!("c{c:?}")), "capi.rs names column {c}");
        }
        for f in ["_batch(float* out, const float* in, const float* random, size_t n);", "_n_inputs(void);", "_isa(void);"] {
            assert!(out.header.contains(&format!("{}{f}", m.symbol)), "{}{f}", m.symbol);
        }
    }
    let h = &out.header;
    assert!(h.contains("#ifndef FLASHC_LIBDEMO_H") && h.contains("#endif /* FLASHC_LIBDEMO_H */"));
    assert!(h.contains(" * Link: cc prog.c -ldemo\n"));
    assert!(h.contains("float* tracking_acceptance(float* out, const float* in);"));
    assert!(h.contains("float* gan(float* out, const float* in, const float* random);"));
    let (gan, acc) = (&demo()[1], &demo()[0]);
    assert!(h.contains(&format!(
        "X(gan, {}, {}, {})",
        gan.inputs.len(),
        gan.n_noise,
        gan.outputs.len()
    )));
    assert!(h.contains(&format!("X(tracking_acceptance, {}, 0, {})", acc.inputs.len(), acc.outputs.len())));
    assert!(h.contains("#define FLASHC_LIBDEMO_FOREACH(X)"));
    assert!(h.contains("extern \"C\" {"));
    // The entry points call the model statics and the plumbing through the default paths.
    assert!(out.capi_rs.contains("ffi::row(&crate::models::TRACKING_ACCEPTANCE, out, input, std::ptr::null())"));
    assert!(out.capi_rs.contains("ffi::row(&crate::models::PID_GAN, out, input, random)"));
    assert!(out.capi_rs.contains("use runtime::Model;") && out.capi_rs.contains("use crate::ffi;"));
    assert!(out.ffi_rs.contains("use runtime::Model;") && out.ffi_rs.contains("runtime::isa::active()"));
}

#[test]
fn emitted_rust_parses() {
    let out = emit(&demo(), &Options::new());
    for (what, text) in [("capi.rs", &out.capi_rs), ("ffi.rs", &out.ffi_rs)] {
        if let Err(e) = syn::parse_file(text) {
            panic!("{what} is not valid Rust: {e}\n{text}");
        }
    }
}

#[test]
fn options_set_the_paths_of_the_emitted_code() {
    let o = Options::new()
        .runtime_crate("::flashc_runtime")
        .models_module("crate::compiled")
        .ffi_module("crate::plumbing");
    let out = emit(&demo(), &o);
    assert!(out.capi_rs.contains("use ::flashc_runtime::Model;"));
    assert!(out.capi_rs.contains("use crate::plumbing as ffi;"));
    assert!(out.capi_rs.contains("&crate::compiled::PID_GAN"));
    assert!(!out.capi_rs.contains("crate::models"));
    assert!(out.ffi_rs.contains("use ::flashc_runtime::Model;") && out.ffi_rs.contains("::flashc_runtime::isa::active()"));
    assert!(!out.ffi_rs.contains("__RUNTIME__"));
    let err = capi::emit(&demo(), &Options::new().runtime_crate("not a path")).unwrap_err().to_string();
    assert!(err.contains("runtime crate path \"not a path\" is not a Rust path"), "{err}");
}

#[test]
fn problems_are_one_error_listing_each() {
    let mut models = demo();
    models[1].symbol = "tracking_acceptance_batch".into();
    models[0].outputs[0] = "bad\0name".into();
    let err = capi::emit(&models, &Options::new()).unwrap_err().to_string();
    assert!(err.contains("`tracking_acceptance_batch`") && err.contains("`_batch` function"), "{err}");
    assert!(err.contains("contains a NUL character"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

fn syms(list: &[&str]) -> Vec<(String, String)> {
    list.iter().map(|s| (s.to_string(), format!("{s}.json"))).collect()
}

#[test]
fn valid_distinct_symbols_pass() {
    assert!(capi::check_symbols(&syms(&["tracking_acceptance", "pid_gan", "Res2"])).is_empty());
}

#[test]
fn clashes_are_found_including_derived_names_and_case() {
    let p = capi::check_symbols(&syms(&["a", "a"]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("symbol clash: `a`"), "{p:?}");
    let p = capi::check_symbols(&syms(&["a", "a_batch"]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("`a_batch`") && p[0].contains("`_batch` function"), "{p:?}");
    let p = capi::check_symbols(&syms(&["net", "NET"]));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("differ only in case"), "{p:?}");
}

#[test]
fn bad_names_are_rejected() {
    for bad in ["9lives", "a-b", "", "__x", "_X", "int", "class", "exp", "tanh"] {
        let p = capi::check_symbols(&syms(&[bad]));
        assert_eq!(p.len(), 1, "{bad}: {p:?}");
    }
}

#[test]
fn header_comments_cannot_be_closed_by_model_text() {
    let mut models = demo();
    models[0].description = Some("a */ tricky\ndescription".into());
    let out = emit(&models, &Options::new());
    assert!(!out.header.contains("a */ tricky"), "a description cannot close a comment");
    assert!(out.header.contains("a * / tricky description"));
}
