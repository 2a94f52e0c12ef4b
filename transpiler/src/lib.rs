//! flashc transpiler: model spec + safetensors → validated IR → optimised IR → Rust code.
//!
//! # Use from a build script
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), transpiler::Error> {
//!     transpiler::compile_models(&["models/tracking_resolution.json"])
//! }
//! ```
//! writes `$OUT_DIR/tracking_resolution.rs`, `$OUT_DIR/tracking_resolution.weights.bin` and
//! `$OUT_DIR/flashc_models.rs`; the crate then does
//! `include!(concat!(env!("OUT_DIR"), "/flashc_models.rs"));` and gets
//! `TrackingResolution`, `TRACKING_RESOLUTION`, `MODELS` and `by_name`, which implement and
//! list the runtime's `Model` trait. [`Config`] is the builder form (output directory, runtime
//! crate path, `cargo:rerun-if-changed` lines).
//!
//! # Bird's-eye view
//!
//! ```text
//! NAME.json ──spec::read──► spec::Spec ─┐
//! NAME.safetensors ──weights──► Weights ┴─ir::lower──► ir::Model ──ir::validate──► ValidModel
//!     ──passes::optimise──► ValidModel (folded, fused) ──passes::plan──► Program
//!     ──codegen::rust──► NAME.rs + NAME.weights.bin (+ flashc_models.rs for a set of models)
//! ```
//!
//! Each stage has one job and the types enforce the order: [`ir::ValidModel`] can only be made by
//! validation, the passes and codegen take only validated input and cannot fail or panic, and all
//! problems of a spec are found before any code is written ([`Error::Invalid`] lists them all,
//! each naming file, node, tensor and a hint).
//!
//! # Code map
//!
//! * [`spec`]: serde structs of the JSON spec (`docs/spec.md`), errors with line and column.
//! * [`weights`]: safetensors via `memmap2`; F32/F16/BF16 decoded to f32 (unaligned-safe).
//! * [`ir`]: the IR (`ir::Op` is the one list of ops), [`ir::lower`] from the spec,
//!   [`ir::validate`] to [`ValidModel`] (also the public *unoptimised* IR, for baselines).
//! * [`passes`]: [`passes::fold`] (rewrites of the IR) and [`passes::plan`] (kernel packing,
//!   buffer slots, weight blob).
//! * [`codegen::rust`]: `quote` → `syn` → `prettyplease` Rust source.
//! * [`reference`]: an f64 evaluator of the IR, the oracle for pass and kernel tests.
//! * [`baseline`]: a plain C emitter working from the unoptimised IR (the benchmark baseline).
//! * [`Config`], [`compile_models`], [`load`]: the public entry points; [`Error`]: the one
//!   error type.
//!
//! # Invariants
//!
//! * This crate does not depend on the runtime crate: generated code names its items
//!   (`::runtime::...` by default, see [`Config::runtime_crate`]) and is compiled in the user's
//!   crate. The runtime's API is the contract between the two.
//! * Generated code holds shapes as constants, weights in one aligned blob, and a straight-line
//!   chain of runtime kernel calls per tile of rows: no unrolled loops, no literal weight arrays.
//! * Output is deterministic (same input → same bytes) and files are only written when their
//!   content changes, so incremental builds stay cheap.
//! * No input makes this crate panic: untrusted data is read with checked accessors.

// Checks are written `!(a <= b)` on purpose: they must also reject NaN.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
// `usize::is_multiple_of` needs a newer Rust than the workspace's rust-version.
#![allow(clippy::manual_is_multiple_of)]

pub mod baseline;
pub mod capi;
pub mod codegen;
mod error;
pub mod ir;
mod linalg;
pub mod passes;
pub mod reference;
pub mod spec;
pub mod weights;

use std::path::{Path, PathBuf};

pub use error::{Error, Problem};
pub use ir::ValidModel;

/// Reads, lowers and validates a spec and its weights. The result is the unoptimised IR.
pub fn load(path: impl AsRef<Path>) -> Result<ValidModel, Error> {
    load_with(path.as_ref(), &mut |_| {})
}

/// [`load`], telling `seen` about every file read (for `rerun-if-changed`).
fn load_with(path: &Path, seen: &mut dyn FnMut(&Path)) -> Result<ValidModel, Error> {
    seen(path);
    let spec = spec::read(path)?;
    let weights_path = path.parent().unwrap_or(Path::new("")).join(&spec.weights);
    seen(&weights_path);
    let weights = weights::Weights::open(&weights_path, path)?;
    let file = path.display().to_string();
    let lowered = ir::lower::lower(&spec, &weights, &file);
    ir::validate::validate_with(lowered.model, lowered.problems, &lowered.broken, lowered.warnings)
}

/// Generated code of one validated model: `(rust source, weight blob bytes)`. `runtime` is the
/// path of the runtime crate as emitted (e.g. `::runtime`).
pub fn generate(model: &ValidModel, runtime: &proc_macro2::TokenStream) -> (String, Vec<u8>) {
    let program = passes::plan(&passes::optimise(model));
    (codegen::rust::model_file(&program, runtime), codegen::rust::blob_bytes(&program))
}

/// What [`Config::compile`] produced for one spec.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Model name.
    pub name: String,
    /// The spec, as given.
    pub spec: PathBuf,
    /// The generated Rust file.
    pub rust_file: PathBuf,
    /// The weight blob.
    pub weights_file: PathBuf,
    /// Summary of the (unoptimised) model: ops, parameters, MACs per row.
    pub summary: String,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
    /// With [`Config::ptx`]: the PTX backend's error for a model it does not support (the model
    /// then has no PTX; its generated module has `PTX_UNSUPPORTED` and `ptx_by_name` returns the
    /// error).
    pub ptx_skipped: Option<String>,
}

/// Builder for compiling a set of specs (the `prost-build` shape).
#[derive(Debug, Clone, Default)]
pub struct Config {
    out_dir: Option<PathBuf>,
    runtime_crate: Option<String>,
    emit_rerun_if_changed: Option<bool>,
    ptx: bool,
}

/// Name of the registry file written next to the models.
pub const REGISTRY_FILE: &str = "flashc_models.rs";

impl Config {
    /// Defaults: output to `$OUT_DIR`, runtime crate `runtime`, `cargo:rerun-if-changed` lines
    /// printed when `$OUT_DIR` is set (i.e. in a build script).
    pub fn new() -> Config {
        Config::default()
    }

    /// Writes the generated files to `dir` instead of `$OUT_DIR`.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Config {
        self.out_dir = Some(dir.into());
        self
    }

    /// The runtime crate as generated code names it: a crate name (`"runtime"` →
    /// `::runtime::...`) or a path (`"crate::rt"`).
    pub fn runtime_crate(&mut self, path: impl Into<String>) -> &mut Config {
        self.runtime_crate = Some(path.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed=` for every spec and weights file read (and
    /// `cargo:warning=` for warnings).
    pub fn emit_rerun_if_changed(&mut self, on: bool) -> &mut Config {
        self.emit_rerun_if_changed = Some(on);
        self
    }

    /// Also writes `<name>.ptx` (the CUDA backend, [`codegen::ptx`]) next to each `<name>.rs`,
    /// and makes the generated Rust expose it as `PTX`, `PTX_ENTRY` and `ptx_weights()`; the
    /// registry gets `ptx_by_name`. A model the PTX backend does not support (an op it lacks,
    /// rows too wide) is still compiled for the CPU: its module gets `PTX_UNSUPPORTED`, the
    /// backend's error naming the node, which `ptx_by_name` returns (and
    /// [`Compiled::ptx_skipped`] reports).
    pub fn ptx(&mut self, on: bool) -> &mut Config {
        self.ptx = on;
        self
    }

    fn runtime_tokens(&self) -> Result<proc_macro2::TokenStream, Error> {
        let text = self.runtime_crate.as_deref().unwrap_or("runtime");
        let bad = || Error::Config {
            message: format!("runtime crate path \"{text}\" is not a Rust path"),
            hint: "give a crate name such as \"runtime\" or a path such as \"crate::rt\"".into(),
        };
        let path: syn::Path = syn::parse_str(text).map_err(|_| bad())?;
        let relative = path.leading_colon.is_none()
            && path.segments.first().is_some_and(|s| s.ident == "crate" || s.ident == "self" || s.ident == "super");
        let single = path.leading_colon.is_none() && !relative;
        Ok(if single { quote::quote!(::#path) } else { quote::quote!(#path) })
    }

    /// Compiles every spec; writes `<name>.rs`, `<name>.weights.bin` per model and
    /// [`REGISTRY_FILE`]. Files whose content is unchanged are not rewritten.
    pub fn compile(&self, specs: &[impl AsRef<Path>]) -> Result<Vec<Compiled>, Error> {
        let env_out = std::env::var_os("OUT_DIR").map(PathBuf::from);
        let (out_dir, from_env) = match (&self.out_dir, &env_out) {
            (Some(d), _) => (d.clone(), env_out.as_ref() == Some(d)),
            (None, Some(d)) => (d.clone(), true),
            (None, None) => {
                return Err(Error::Config {
                    message: "no output directory: OUT_DIR is not set and Config::out_dir was not called".into(),
                    hint: "call transpiler::compile_models from a build script (cargo sets OUT_DIR), or use Config::new().out_dir(dir)".into(),
                })
            }
        };
        let emit = self.emit_rerun_if_changed.unwrap_or(env_out.is_some());
        let rt = self.runtime_tokens()?;
        std::fs::create_dir_all(&out_dir).map_err(|source| Error::Io {
            path: out_dir.clone(),
            action: "create the output directory",
            source,
            hint: "check permissions, or choose another directory with Config::out_dir".into(),
        })?;
        let abs_out = std::fs::canonicalize(&out_dir).unwrap_or_else(|_| out_dir.clone());
        let mut done: Vec<Compiled> = Vec::new();
        let mut entries = Vec::new();
        for spec in specs {
            let spec = spec.as_ref();
            let mut seen = |p: &Path| {
                if emit {
                    println!("cargo:rerun-if-changed={}", p.display());
                }
            };
            let model = load_with(spec, &mut seen)?;
            let name = model.model().name.clone();
            if let Some(prev) = done.iter().find(|c| c.name == name) {
                return Err(Error::Config {
                    message: format!("{} and {} both define model \"{name}\"", prev.spec.display(), spec.display()),
                    hint: "model names must be unique within one build; rename one (field \"name\")".into(),
                });
            }
            let mut ptx_skipped = None;
            let (code, blob) = if self.ptx {
                let program = passes::plan(&passes::optimise(&model));
                let code = match codegen::ptx::generate(&model) {
                    Ok(ptx) => {
                        write_if_changed(&out_dir.join(codegen::ptx::ptx_file_name(&name)), ptx.as_bytes())?;
                        codegen::rust::model_file_with(&program, &rt, true)
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        let code = codegen::rust::model_file_without_ptx(&program, &rt, &reason);
                        ptx_skipped = Some(reason);
                        code
                    }
                };
                (code, codegen::rust::blob_bytes(&program))
            } else {
                generate(&model, &rt)
            };
            let rust_file = out_dir.join(format!("{name}.rs"));
            let weights_file = out_dir.join(codegen::rust::blob_file_name(&name));
            write_if_changed(&rust_file, code.as_bytes())?;
            write_if_changed(&weights_file, &blob)?;
            if emit {
                for w in model.warnings() {
                    println!("cargo:warning={w}");
                }
            }
            entries.push(codegen::rust::RegistryEntry {
                name: name.clone(),
                out_dir_file: from_env.then(|| format!("{name}.rs")),
                path: abs_out.join(format!("{name}.rs")).display().to_string(),
                // The same condition under which the model's file defines `ODE` (plan::Ode).
                ode: model.model().ode.as_ref().is_some_and(|o| ir::ode::columns(model.model(), o).is_some()),
                has_ptx: self.ptx && ptx_skipped.is_none(),
            });
            done.push(Compiled {
                name,
                spec: spec.to_owned(),
                rust_file,
                weights_file,
                summary: model.to_string(),
                warnings: model.warnings().to_vec(),
                ptx_skipped,
            });
        }
        write_if_changed(&out_dir.join(REGISTRY_FILE), codegen::rust::registry_file_with(&entries, &rt, self.ptx).as_bytes())?;
        Ok(done)
    }
}

/// Compiles `specs` into `$OUT_DIR` with the defaults of [`Config::new`]: the one-liner for a
/// build script.
pub fn compile_models(specs: &[impl AsRef<Path>]) -> Result<(), Error> {
    Config::new().compile(specs).map(|_| ())
}

/// Writes `bytes` to `path` unless it already holds exactly them (so its mtime, and cargo's
/// rebuild decisions, stay untouched). Writes through a temporary file and a rename.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, Error> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let io = |source| Error::Io {
        path: path.to_owned(),
        action: "write generated code",
        source,
        hint: "check that the output directory is writable".into(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(true)
}
