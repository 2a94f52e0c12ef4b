//! The C ABI of compiled models: `#[no_mangle]`-style `extern "C"` wrappers (scikinC-compatible
//! row functions, batch functions, metadata) and the documented C/C++ header declaring them.
//!
//! `flashc compile` uses this module to write its library crate; a build script can use it the
//! same way to give its own `cdylib`/`staticlib` the same C ABI (see docs/c-abi.md):
//!
//! ```no_run
//! // build.rs of a crate with `crate-type = ["cdylib"]` and a dependency on the flashc runtime
//! use std::path::PathBuf;
//! use transpiler::capi;
//!
//! fn main() -> Result<(), transpiler::Error> {
//!     let specs = ["models/pid_gan.json"];
//!     transpiler::compile_models(&specs)?;              // $OUT_DIR/flashc_models.rs + models
//!     let models = specs
//!         .iter()
//!         .map(|s| Ok(capi::CModel::new(&transpiler::load(s)?, None)))
//!         .collect::<Result<Vec<_>, transpiler::Error>>()?;
//!     let out = capi::emit(&models, &capi::Options::new().header_stem("pid"))?;
//!     let dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
//!     transpiler::write_if_changed(&dir.join("flashc_capi.rs"), out.capi_rs.as_bytes())?;
//!     transpiler::write_if_changed(&dir.join("flashc_ffi.rs"), out.ffi_rs.as_bytes())?;
//!     transpiler::write_if_changed(&dir.join("pid.h"), out.header.as_bytes())?;
//!     Ok(())
//! }
//! ```
//! and in `src/lib.rs`:
//! ```text
//! pub mod models { include!(concat!(env!("OUT_DIR"), "/flashc_models.rs")); }
//! mod ffi { include!(concat!(env!("OUT_DIR"), "/flashc_ffi.rs")); }
//! pub mod capi { include!(concat!(env!("OUT_DIR"), "/flashc_capi.rs")); }
//! ```
//!
//! Everything here is a pure function of its arguments (no I/O) and deterministic. The emitted
//! Rust names runtime items through [`Options::runtime_crate`] only; this crate does not depend on
//! the runtime. The emitted files use plain `//` comments, so they can be `include!`d.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::{Error, ValidModel};

/// One exported model: everything the C side needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CModel {
    /// The C symbol (by default the model's name).
    pub symbol: String,
    /// The spec's model name, which names the Rust module and static (`NAME` upper-cased).
    pub model: String,
    /// The spec file, as given (documentation only).
    pub source: String,
    /// The spec's description, if any.
    pub description: Option<String>,
    /// Input column names, in buffer order.
    pub inputs: Vec<String>,
    /// Output column names, in buffer order.
    pub outputs: Vec<String>,
    /// Noise values per row (0 for models without noise).
    pub n_noise: usize,
    /// `"normal"`, `"uniform"`, or `"none"`.
    pub noise: String,
}

impl CModel {
    /// The C view of a validated model (see [`crate::load`]), exported under `symbol` (default:
    /// the model's name).
    pub fn new(model: &ValidModel, symbol: Option<&str>) -> CModel {
        let m = model.model();
        let noise = match &m.noise {
            Some(n) if n.dim > 0 => match n.distribution {
                crate::ir::Distribution::Normal => "normal",
                crate::ir::Distribution::Uniform => "uniform",
            },
            _ => "none",
        };
        CModel {
            symbol: symbol.unwrap_or(&m.name).to_string(),
            model: m.name.clone(),
            source: m.source.clone(),
            description: Some(m.description.clone()).filter(|d| !d.trim().is_empty()),
            inputs: m.inputs.iter().flat_map(|i| i.columns.iter().cloned()).collect(),
            outputs: m.outputs.iter().flat_map(|o| o.columns.iter().cloned()).collect(),
            n_noise: model.n_noise(),
            noise: noise.to_string(),
        }
    }
}

/// Suffixes of every symbol exported per model (the first is the scikinC entry point itself).
pub const SUFFIXES: [&str; 9] = [
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

/// Suffixes of the per-model macros of the header (appended to the upper-case symbol).
pub const MACRO_SUFFIXES: [&str; 3] = ["_N_INPUTS", "_N_NOISE", "_N_OUTPUTS"];

/// Where the emitted code finds things, and how the header is named. Builder; [`Options::new`]
/// gives the defaults.
#[derive(Clone, Debug)]
pub struct Options {
    runtime: String,
    models: String,
    ffi: String,
    header_stem: String,
    link_note: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            runtime: "runtime".into(),
            models: "crate::models".into(),
            ffi: "crate::ffi".into(),
            header_stem: "models".into(),
            link_note: "Link the library built from the crate that exports these symbols.".into(),
        }
    }
}

impl Options {
    /// Defaults: runtime crate `runtime`, models in `crate::models` (the module including
    /// `flashc_models.rs`), the shared plumbing ([`CApi::ffi_rs`]) in `crate::ffi`, header stem
    /// `models`.
    pub fn new() -> Options {
        Options::default()
    }

    /// The runtime crate as the emitted code names it (`"runtime"`, `"::flashc_runtime"`, `"crate::rt"`).
    pub fn runtime_crate(mut self, path: impl Into<String>) -> Options {
        self.runtime = path.into();
        self
    }

    /// The module holding each model's static (`NAME` upper-cased), e.g. `"crate::models"`.
    pub fn models_module(mut self, path: impl Into<String>) -> Options {
        self.models = path.into();
        self
    }

    /// The module holding [`CApi::ffi_rs`], e.g. `"crate::ffi"`.
    pub fn ffi_module(mut self, path: impl Into<String>) -> Options {
        self.ffi = path.into();
        self
    }

    /// The header's stem: names the include guard `FLASHC_<STEM>_H` and the X-macro
    /// `FLASHC_<STEM>_FOREACH(X)` (upper-cased; other characters than letters and digits become `_`).
    pub fn header_stem(mut self, stem: impl Into<String>) -> Options {
        self.header_stem = stem.into();
        self
    }

    /// One line in the header telling how to link the library.
    pub fn link_note(mut self, line: impl Into<String>) -> Options {
        self.link_note = line.into();
        self
    }
}

/// The emitted text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CApi {
    /// The entry points: one thin `extern "C"` function per symbol, with `#[export_name]`.
    pub capi_rs: String,
    /// The shared plumbing the entry points call (checks, in-place calls, panic barrier).
    pub ffi_rs: String,
    /// The C/C++ header declaring and documenting every symbol.
    pub header: String,
}

/// Emits the C ABI of `models`. Checks first that every symbol is a usable C name, that no two
/// exported names collide, that no column name holds a NUL, and that the module paths are Rust
/// paths; every problem is listed in one [`Error::Config`].
pub fn emit(models: &[CModel], options: &Options) -> Result<CApi, Error> {
    let mut problems = Vec::new();
    for (what, p) in [
        ("runtime crate", &options.runtime),
        ("models module", &options.models),
        ("ffi module", &options.ffi),
    ] {
        if syn::parse_str::<syn::Path>(p).is_err() {
            problems.push(format!("{what} path \"{p}\" is not a Rust path\n  hint: give a path such as \"runtime\" or \"crate::models\""));
        }
    }
    for m in models {
        if let Some(bad) = m.inputs.iter().chain(&m.outputs).find(|c| c.contains('\0')) {
            problems.push(format!(
                "{}: column name {bad:?} contains a NUL character, which a C string cannot hold\n  hint: rename the column in the spec",
                m.source
            ));
        }
        if !matches!(m.noise.as_str(), "normal" | "uniform" | "none") || (m.noise == "none") != (m.n_noise == 0) {
            problems.push(format!(
                "{}: noise {:?} with {} values per row\n  hint: use \"normal\" or \"uniform\" with noise values, \"none\" without",
                m.source, m.noise, m.n_noise
            ));
        }
    }
    let symbols: Vec<(String, String)> = models
        .iter()
        .map(|m| (m.symbol.clone(), format!("{} (model `{}`)", m.source, m.model)))
        .collect();
    problems.extend(check_symbols(&symbols));
    if !problems.is_empty() {
        return Err(Error::Config {
            message: format!("cannot emit the C ABI:\n\n{}", problems.join("\n\n")),
            hint: "fix the problems listed above (each names its model and how)".into(),
        });
    }
    Ok(CApi {
        capi_rs: capi_rs(models, options),
        ffi_rs: FFI.replace("__RUNTIME__", &options.runtime),
        header: header(models, options),
    })
}

/// A Rust string literal for `s` (escaped; `s` has no NUL: checked by [`emit`]).
fn rust_str(s: &str) -> String {
    format!("{s:?}")
}

/// Text safe inside a C `/* */` comment and on one line.
fn comment(s: &str) -> String {
    s.replace("*/", "* /").replace(['\n', '\r'], " ")
}

/// C and C++ keywords and standard names: a model exported under one of them would not compile
/// in C or would interpose a C library function for the whole process.
const RESERVED: &[&str] = &[
    // C99 / C11 keywords
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    // C++ keywords and alternative tokens
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "bitand",
    "bitor",
    "bool",
    "catch",
    "char16_t",
    "char32_t",
    "class",
    "compl",
    "constexpr",
    "const_cast",
    "decltype",
    "delete",
    "dynamic_cast",
    "explicit",
    "export",
    "false",
    "friend",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "static_assert",
    "static_cast",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "xor",
    "xor_eq",
    // C library functions a model name could plausibly collide with
    "main",
    "exit",
    "abort",
    "malloc",
    "calloc",
    "realloc",
    "free",
    "memcpy",
    "memmove",
    "memset",
    "strlen",
    "printf",
    "puts",
    "exp",
    "expf",
    "exp2",
    "log",
    "logf",
    "log2",
    "log10",
    "log1p",
    "pow",
    "powf",
    "sqrt",
    "sqrtf",
    "sin",
    "cos",
    "tan",
    "sinh",
    "cosh",
    "tanh",
    "tanhf",
    "erf",
    "erff",
    "erfc",
    "floor",
    "ceil",
    "round",
    "fabs",
    "fmax",
    "fmin",
    "fma",
    "atan2",
    "select",
    "signal",
    "time",
    "random",
    "rand",
    "dlopen",
    "dlsym",
];

/// Checks the C symbols (`(symbol, where it comes from)`): valid identifiers, not reserved, and no
/// two exported names (`SYMBOL`, `SYMBOL_batch`, ... and the header's `SYMBOL_N_INPUTS`, ...) equal.
/// Returns every problem found.
pub fn check_symbols(symbols: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut taken: HashMap<String, (usize, &str)> = HashMap::new();
    let mut taken_macros: HashMap<String, usize> = HashMap::new();
    for (k, (sym, origin)) in symbols.iter().enumerate() {
        let valid = sym.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && sym.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            problems.push(format!(
                "{origin}: `{sym}` is not a valid C symbol name\n  hint: use letters, digits and `_`, not starting with a digit (SYMBOL=spec.json sets it)"
            ));
            continue;
        }
        if sym.starts_with("__") || (sym.starts_with('_') && sym.chars().nth(1).is_some_and(|c| c.is_ascii_uppercase()))
        {
            problems.push(format!(
                "{origin}: `{sym}` is reserved to the C implementation (it starts with `__` or `_` and a capital)\n  hint: rename it with SYMBOL=spec.json"
            ));
            continue;
        }
        if RESERVED.contains(&sym.as_str()) {
            problems.push(format!(
                "{origin}: `{sym}` is a C/C++ keyword or a C library function name\n  hint: rename it with SYMBOL=spec.json, e.g. model_{sym}=..."
            ));
            continue;
        }
        for suffix in SUFFIXES {
            let name = format!("{sym}{suffix}");
            if let Some(&(other, other_suffix)) = taken.get(&name) {
                let what = |s: &str| {
                    if s.is_empty() {
                        "entry point".to_string()
                    } else {
                        format!("`{s}` function")
                    }
                };
                problems.push(format!(
                    "symbol clash: `{name}` would be both the {} of `{sym}` ({origin}) and the {} of `{}` ({})\n  hint: export one of them under another name with SYMBOL=spec.json",
                    what(suffix),
                    what(other_suffix),
                    symbols[other].0,
                    symbols[other].1
                ));
                break;
            }
            taken.insert(name, (k, suffix));
        }
        let up = sym.to_ascii_uppercase();
        for suffix in MACRO_SUFFIXES {
            if let Some(&other) = taken_macros.get(&format!("{up}{suffix}")) {
                if symbols[other].0 != *sym {
                    problems.push(format!(
                        "symbol clash: `{sym}` ({origin}) and `{}` ({}) differ only in case, so their header macros `{up}{suffix}` collide\n  hint: rename one with SYMBOL=spec.json",
                        symbols[other].0, symbols[other].1
                    ));
                }
                break;
            }
            taken_macros.insert(format!("{up}{suffix}"), k);
        }
    }
    problems
}

/// The `capi.rs` module: every exported symbol.
fn capi_rs(models: &[CModel], o: &Options) -> String {
    let mut s = String::new();
    s.push_str("// @generated by flashc (transpiler::capi). Do not edit.\n//\n");
    s.push_str("// The C ABI: per model, the scikinC-compatible row function, a batch function, and metadata.\n");
    s.push_str("// Symbol names are set with `#[export_name]`; the Rust names are internal.\n\n");
    let ffi = if o.ffi == "ffi" || o.ffi.ends_with("::ffi") {
        format!("use {};", o.ffi)
    } else {
        format!("use {} as ffi;", o.ffi)
    };
    let _ = write!(
        s,
        "use std::ffi::{{c_char, c_int, CStr}};\n\nuse {}::Model;\n\n{ffi}\n",
        o.runtime
    );
    for (k, m) in models.iter().enumerate() {
        let st = format!("{}::{}", o.models, m.model.to_ascii_uppercase());
        let sym = &m.symbol;
        let _ = writeln!(
            s,
            "\n// ---- {sym}: model `{}` from {} ----",
            m.model,
            m.source.replace('\n', " ")
        );
        let names = |label: &str, cols: &[String]| {
            let list: Vec<String> = cols.iter().map(|c| format!("c{}", rust_str(c))).collect();
            format!(
                "\nstatic {label}_{k}: [&CStr; {}] = [{}];\n",
                cols.len(),
                list.join(", ")
            )
        };
        s.push_str(&names("INPUTS", &m.inputs));
        s.push_str(&names("OUTPUTS", &m.outputs));
        if m.n_noise == 0 {
            let _ = write!(
                s,
                r#"
/// `float* {sym}(float* out, const float* in)`: one row ({ni} inputs → {no} outputs); returns `out`, or NULL on error.
///
/// # Safety
/// `out` points to {no} writable floats, `input` to {ni} readable floats.
#[unsafe(export_name = "{sym}")]
pub unsafe extern "C" fn row_{k}(out: *mut f32, input: *const f32) -> *mut f32 {{
    unsafe {{ ffi::row(&{st}, out, input, std::ptr::null()) }}
}}
"#,
                ni = m.inputs.len(),
                no = m.outputs.len()
            );
        } else {
            let _ = write!(
                s,
                r#"
/// `float* {sym}(float* out, const float* in, const float* random)`: one row ({ni} inputs + {nz} noise
/// values → {no} outputs); returns `out`, or NULL on error.
///
/// # Safety
/// `out` points to {no} writable floats, `input` to {ni} and `random` to {nz} readable floats.
#[unsafe(export_name = "{sym}")]
pub unsafe extern "C" fn row_{k}(out: *mut f32, input: *const f32, random: *const f32) -> *mut f32 {{
    unsafe {{ ffi::row(&{st}, out, input, random) }}
}}
"#,
                ni = m.inputs.len(),
                nz = m.n_noise,
                no = m.outputs.len()
            );
        }
        let _ = write!(
            s,
            r#"
/// `int {sym}_batch(float* out, const float* in, const float* random, size_t n)`: `n` rows, row-major.
///
/// # Safety
/// See `ffi::batch`.
#[unsafe(export_name = "{sym}_batch")]
pub unsafe extern "C" fn batch_{k}(out: *mut f32, input: *const f32, random: *const f32, n: usize) -> c_int {{
    unsafe {{ ffi::batch(&{st}, out, input, random, n, false) }}
}}

#[unsafe(export_name = "{sym}_n_inputs")]
pub extern "C" fn n_inputs_{k}() -> usize {{
    {st}.info().n_inputs
}}

#[unsafe(export_name = "{sym}_n_noise")]
pub extern "C" fn n_noise_{k}() -> usize {{
    {st}.info().n_noise
}}

#[unsafe(export_name = "{sym}_n_outputs")]
pub extern "C" fn n_outputs_{k}() -> usize {{
    {st}.info().n_outputs
}}

#[unsafe(export_name = "{sym}_input_name")]
pub extern "C" fn input_name_{k}(i: usize) -> *const c_char {{
    ffi::name(&INPUTS_{k}, i)
}}

#[unsafe(export_name = "{sym}_output_name")]
pub extern "C" fn output_name_{k}(i: usize) -> *const c_char {{
    ffi::name(&OUTPUTS_{k}, i)
}}

#[unsafe(export_name = "{sym}_noise_distribution")]
pub extern "C" fn noise_distribution_{k}() -> *const c_char {{
    c{noise}.as_ptr()
}}

#[unsafe(export_name = "{sym}_isa")]
pub extern "C" fn isa_{k}() -> *const c_char {{
    ffi::isa()
}}
"#,
            noise = rust_str(&m.noise),
        );
    }
    s
}

/// Upper-case C identifier made from a file stem (`libmodels` → `LIBMODELS`).
pub fn macro_stem(stem: &str) -> String {
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s.push_str("MODELS");
    }
    s
}

/// The C header. The stem names the include guard and the X-macro (`FLASHC_<STEM>_H`,
/// `FLASHC_<STEM>_FOREACH(X)`); the link note is the line telling how to link the library.
fn header(models: &[CModel], o: &Options) -> String {
    let stem = macro_stem(&o.header_stem);
    let link = &o.link_note;
    let guard = format!("FLASHC_{stem}_H");
    let mut s = String::new();
    let _ = write!(
        s,
        r#"/* @generated by flashc (transpiler::capi). Do not edit.
 *
 * Compiled flash-simulation models with a scikinC-compatible C ABI.
 * {link}
 *
 * Per model NAME (see the list below):
 *   float* NAME(float* out, const float* in);                      models without noise
 *   float* NAME(float* out, const float* in, const float* random); generators: random = the caller's noise draws
 *       One row. Returns out, or NULL on error (NULL pointer, internal error). out may equal in.
 *   int NAME_batch(float* out, const float* in, const float* random, size_t n);
 *       n rows, row-major (in: n * NAME_N_INPUTS, random: n * NAME_N_NOISE, out: n * NAME_N_OUTPUTS
 *       floats). random is ignored (may be NULL) when NAME_N_NOISE is 0. Returns FLASHC_OK or an error code.
 *       A row's result does not depend on n or on the other rows of the batch.
 *   size_t NAME_n_inputs(void), NAME_n_noise(void), NAME_n_outputs(void);
 *   const char* NAME_input_name(size_t i), NAME_output_name(size_t i);   column names, NULL past the end
 *   const char* NAME_noise_distribution(void);   "normal" (N(0,1)), "uniform" (U(0,1)) or "none"
 *   const char* NAME_isa(void);                  the instruction set in use: avx512, avx2, neon or portable
 *
 * Threads: every function may be called concurrently from any number of threads; none spawns threads,
 * allocates per call (except a copy when out overlaps in), or keeps mutable state. The instruction set is
 * detected once (set FLASHC_ISA=avx512|avx2|neon|portable before the first call to force one).
 */
#ifndef {guard}
#define {guard}

#include <stddef.h>

#ifdef __cplusplus
extern "C" {{
#endif

#ifndef FLASHC_OK
/** Success. */
#define FLASHC_OK 0
/** out, in or (for a model with noise) random is NULL while n > 0. */
#define FLASHC_ERR_NULL 1
/** n times a row size overflows the address space. */
#define FLASHC_ERR_SIZE 2
/** The model failed (a bug: please report it); out is unspecified. */
#define FLASHC_ERR_INTERNAL 3
#endif
"#
    );
    for m in models {
        let sym = &m.symbol;
        let up = sym.to_ascii_uppercase();
        let _ = write!(
            s,
            "\n/* ---- {sym} ----\n * model {} from {}\n",
            comment(&m.model),
            comment(&m.source)
        );
        if let Some(d) = &m.description {
            let _ = writeln!(s, " * {}", comment(d));
        }
        let _ = writeln!(s, " * inputs ({}):", m.inputs.len());
        for (i, c) in m.inputs.iter().enumerate() {
            let _ = writeln!(s, " *   {i:>3}  {}", comment(c));
        }
        if m.n_noise > 0 {
            let _ = writeln!(
                s,
                " * random ({}): independent {} draws, one set per row",
                m.n_noise,
                comment(&m.noise)
            );
        } else {
            s.push_str(" * random: none (the model is deterministic)\n");
        }
        let _ = writeln!(s, " * outputs ({}):", m.outputs.len());
        for (i, c) in m.outputs.iter().enumerate() {
            let _ = writeln!(s, " *   {i:>3}  {}", comment(c));
        }
        s.push_str(" */\n");
        let _ = writeln!(s, "#define {up}_N_INPUTS {}", m.inputs.len());
        let _ = writeln!(s, "#define {up}_N_NOISE {}", m.n_noise);
        let _ = writeln!(s, "#define {up}_N_OUTPUTS {}", m.outputs.len());
        if m.n_noise == 0 {
            let _ = writeln!(s, "float* {sym}(float* out, const float* in);");
        } else {
            let _ = writeln!(s, "float* {sym}(float* out, const float* in, const float* random);");
        }
        let _ = writeln!(
            s,
            "int {sym}_batch(float* out, const float* in, const float* random, size_t n);"
        );
        let _ = writeln!(s, "size_t {sym}_n_inputs(void);");
        let _ = writeln!(s, "size_t {sym}_n_noise(void);");
        let _ = writeln!(s, "size_t {sym}_n_outputs(void);");
        let _ = writeln!(s, "const char* {sym}_input_name(size_t i);");
        let _ = writeln!(s, "const char* {sym}_output_name(size_t i);");
        let _ = writeln!(s, "const char* {sym}_noise_distribution(void);");
        let _ = writeln!(s, "const char* {sym}_isa(void);");
    }
    let _ = write!(
        s,
        "\n/* X-macro over the models: X(NAME, N_INPUTS, N_NOISE, N_OUTPUTS) for each. */\n#define FLASHC_{stem}_FOREACH(X)"
    );
    for m in models {
        let _ = write!(
            s,
            " \\\n    X({}, {}, {}, {})",
            m.symbol,
            m.inputs.len(),
            m.n_noise,
            m.outputs.len()
        );
    }
    let _ = write!(
        s,
        "\n\n#ifdef __cplusplus\n}} /* extern \"C\" */\n#endif\n\n#endif /* {guard} */\n"
    );
    s
}

/// The shared plumbing (`__RUNTIME__` stands for the runtime crate path).
const FFI: &str = r##"// @generated by flashc (transpiler::capi). Do not edit.
//
// The C ABI plumbing shared by every exported model: pointer and size checks, in-place calls,
// and the panic barrier. Written once here; the C ABI module holds one thin entry point per symbol.

use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use __RUNTIME__::Model;

/// Success.
pub const OK: c_int = 0;
/// `out`, `in` or (for a model with noise) `random` is NULL while `n > 0`.
pub const ERR_NULL: c_int = 1;
/// `n` times a row size overflows the address space.
pub const ERR_SIZE: c_int = 2;
/// The model failed (a bug in flashc: please report it with the model); `out` is unspecified.
pub const ERR_INTERNAL: c_int = 3;

/// Whether the byte ranges of `an` floats at `a` and `bn` floats at `b` intersect.
fn overlaps(a: *const f32, an: usize, b: *const f32, bn: usize) -> bool {
    if an == 0 || bn == 0 {
        return false;
    }
    let (a, b) = (a as usize, b as usize);
    a < b.wrapping_add(bn * 4) && b < a.wrapping_add(an * 4)
}

/// A read-only view of `n` floats at `p`, or a copy when the output range overlaps it (callers may
/// pass `out == in`, as scikinC allowed).
///
/// # Safety
/// `p` points to `n` readable floats (when `n > 0`).
unsafe fn input<'a>(p: *const f32, n: usize, out: *const f32, n_out: usize, copy: &'a mut Vec<f32>) -> &'a [f32] {
    if n == 0 {
        return &[];
    }
    if overlaps(p, n, out, n_out) {
        copy.clear();
        // SAFETY: the caller guarantees `n` readable floats at `p`.
        copy.extend_from_slice(unsafe { std::slice::from_raw_parts(p, n) });
        return &copy[..];
    }
    // SAFETY: as above; nothing writes these floats while the view lives (no overlap with `out`).
    unsafe { std::slice::from_raw_parts(p, n) }
}

/// Runs `n` rows. Returns one of the codes above; never unwinds into C.
///
/// # Safety
/// When `n > 0`: `out` points to `n * n_outputs` writable floats, `inp` to `n * n_inputs` readable
/// floats, and `random` (ignored when the model takes no noise) to `n * n_noise` readable floats.
pub unsafe fn batch<M: Model>(
    m: &M,
    out: *mut f32,
    inp: *const f32,
    random: *const f32,
    n: usize,
    single: bool,
) -> c_int {
    if n == 0 {
        return OK;
    }
    let info = m.info();
    let limit = isize::MAX as usize / std::mem::size_of::<f32>();
    let (Some(ni), Some(nz), Some(no)) = (
        n.checked_mul(info.n_inputs),
        n.checked_mul(info.n_noise),
        n.checked_mul(info.n_outputs),
    ) else {
        return ERR_SIZE;
    };
    if ni > limit || nz > limit || no > limit {
        return ERR_SIZE;
    }
    if out.is_null() || (ni > 0 && inp.is_null()) || (nz > 0 && random.is_null()) {
        return ERR_NULL;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        let (mut ci, mut cz) = (Vec::new(), Vec::new());
        // SAFETY: sizes and non-NULL pointers checked above; the caller guarantees the lengths.
        let i = unsafe { input(inp, ni, out, no, &mut ci) };
        let z = unsafe { input(random, nz, out, no, &mut cz) };
        // SAFETY: `out` has `no` writable floats and no view above aliases it (overlaps are copied).
        let o = unsafe { std::slice::from_raw_parts_mut(out, no) };
        if single {
            m.run_row(i, z, o).is_ok()
        } else {
            m.run(i, z, o).is_ok()
        }
    }));
    match result {
        Ok(true) => OK,
        _ => ERR_INTERNAL,
    }
}

/// The scikinC-style single-row call: returns `out`, or NULL on error.
///
/// # Safety
/// As [`batch`] with `n = 1`.
pub unsafe fn row<M: Model>(m: &M, out: *mut f32, inp: *const f32, random: *const f32) -> *mut f32 {
    // SAFETY: forwarded from the caller.
    if unsafe { batch(m, out, inp, random, 1, true) } == OK {
        out
    } else {
        std::ptr::null_mut()
    }
}

/// Entry `i` of a name table, or NULL past its end.
pub fn name(table: &'static [&'static CStr], i: usize) -> *const c_char {
    table.get(i).map_or(std::ptr::null(), |s| s.as_ptr())
}

/// The ISA tier the runtime dispatches to (resolved once by the runtime), as a C string.
pub fn isa() -> *const c_char {
    static NAME: OnceLock<CString> = OnceLock::new();
    NAME.get_or_init(|| CString::new(__RUNTIME__::isa::active().name()).unwrap_or_default())
        .as_ptr()
}
"##;
