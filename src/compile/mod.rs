//! `flashc compile`: model specs → a shared or static library with a scikinC-compatible C ABI, a C
//! header, and (with `--crate`) the standalone Rust crate it is built from. See docs/c-abi.md.
//!
//! Steps: every spec is loaded and validated and every symbol checked before anything is written;
//! then the crate is written (models transpiled into `models/`, the runtime sources embedded in this
//! binary into `runtime/`, `src/capi.rs` with one `extern "C"` entry point per symbol, written by
//! `transpiler::capi` as a build script would); then
//! `cargo rustc --release` builds it; finally the library and the header are written next to their
//! destinations under temporary names and renamed, so a failure never leaves a partial file.

mod emit;
mod runtime_src;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use transpiler::capi::{self, CModel};

#[derive(clap::Args)]
pub struct Args {
    /// Model specs to export: `MODEL.json`, or `SYMBOL=MODEL.json` to export a model under another
    /// C symbol (the default symbol is the model's name).
    #[arg(required = true, value_name = "[SYMBOL=]SPEC")]
    models: Vec<String>,
    /// The library to write: a shared library (`libmodels.so`), or with `--staticlib` an archive
    /// (`libmodels.a`). Written only if everything succeeds.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Build a static library instead of a shared one.
    #[arg(long)]
    staticlib: bool,
    /// Also write the C/C++ header declaring and documenting every symbol.
    #[arg(long, value_name = "FILE")]
    header: Option<PathBuf>,
    /// Write the standalone Rust crate the library is built from into DIR and keep it (later runs
    /// reuse its build). Without `-o`, only the crate is written.
    #[arg(long = "crate", value_name = "DIR")]
    crate_dir: Option<PathBuf>,
    /// Depend on the runtime crate of a flashc source tree (`.../flashc/runtime`) instead of
    /// writing the copy embedded in this binary into the crate.
    #[arg(long, value_name = "DIR")]
    runtime_path: Option<PathBuf>,
    /// Cross-compile for this target triple (e.g. `aarch64-unknown-linux-gnu`; see docs/c-abi.md).
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// Cargo's target directory for the build (default: `target/` inside the crate).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Do not show cargo's progress.
    #[arg(short, long)]
    quiet: bool,
}

/// One `[SYMBOL=]SPEC` argument.
#[derive(Debug, PartialEq)]
struct ModelArg {
    symbol: Option<String>,
    spec: PathBuf,
    arg: String,
}

/// Splits `SYMBOL=path` (the part before the first `=` has no path separator) from a plain path.
fn parse_model_arg(arg: &str) -> ModelArg {
    match arg.split_once('=') {
        Some((sym, path)) if !sym.contains(['/', '\\']) => ModelArg {
            symbol: Some(sym.to_string()),
            spec: PathBuf::from(path),
            arg: arg.to_string(),
        },
        _ => ModelArg {
            symbol: None,
            spec: PathBuf::from(arg),
            arg: arg.to_string(),
        },
    }
}

/// A validated model to export.
struct Export {
    c: CModel,
    spec: PathBuf,
}

/// Loads and validates every spec and checks every symbol; one error listing all problems.
fn plan(args: &[String]) -> Result<Vec<Export>> {
    let mut problems = Vec::new();
    let mut exports = Vec::new();
    for arg in args.iter().map(|a| parse_model_arg(a)) {
        let named_by = if arg.symbol.is_some() {
            format!(" (named by `{}`)", arg.arg)
        } else {
            String::new()
        };
        if !arg.spec.is_file() {
            problems.push(format!(
                "{}: no such spec file{named_by}\n  hint: give the path of a model's .json spec; relative paths are relative to the current directory",
                arg.spec.display()
            ));
            continue;
        }
        let model = match transpiler::load(&arg.spec) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{e}"));
                continue;
            }
        };
        let mut c = CModel::new(&model, arg.symbol.as_deref());
        c.source = arg.spec.display().to_string();
        if let Some(bad) = c.inputs.iter().chain(&c.outputs).find(|c| c.contains('\0')) {
            problems.push(format!(
                "{}: column name {bad:?} contains a NUL character, which a C string cannot hold\n  hint: rename the column in the spec",
                arg.spec.display()
            ));
            continue;
        }
        exports.push(Export {
            c,
            spec: arg.spec.clone(),
        });
    }
    // The Rust module of a model is named after the model: two different files with the same model
    // name cannot be compiled together (the same file under two symbols can).
    let mut by_model: BTreeMap<&str, &Export> = BTreeMap::new();
    for e in &exports {
        if let Some(first) = by_model.get(e.c.model.as_str()) {
            let same = std::fs::canonicalize(&first.spec).ok() == std::fs::canonicalize(&e.spec).ok();
            if !same {
                problems.push(format!(
                    "{} and {} both define a model named `{}`\n  hint: models compiled together need distinct `name`s in their specs (the C symbol can still be chosen with SYMBOL=spec.json)",
                    first.spec.display(), e.spec.display(), e.c.model
                ));
            }
        } else {
            by_model.insert(&e.c.model, e);
        }
    }
    let symbols: Vec<(String, String)> = exports
        .iter()
        .map(|e| {
            (
                e.c.symbol.clone(),
                format!("{} (model `{}`)", e.spec.display(), e.c.model),
            )
        })
        .collect();
    problems.extend(capi::check_symbols(&symbols));
    if !problems.is_empty() {
        bail!(
            "nothing was written: {} problem{} found\n\n{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("\n\n")
        );
    }
    Ok(exports)
}

/// Writes `text` to `path` unless it already holds exactly that (keeps cargo's incremental state).
fn write_if_changed(path: &Path, text: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Makes `dst` hold exactly the files of `src` (flat directories), touching only what changed.
fn sync_dir(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("cannot create directory {}", dst.display()))?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("cannot read {}", src.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        write_if_changed(&dst.join(&name), &std::fs::read(entry.path())?)?;
        names.push(name);
    }
    for entry in std::fs::read_dir(dst)? {
        let entry = entry?;
        if !names.contains(&entry.file_name()) && entry.path().is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove stale {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A directory removed when dropped (the default crate location when `--crate` is not given).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("flashc-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create temporary directory {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The registry of the models, included by the crate's `lib.rs`.
const REGISTRY: &str = "flashc_models.rs";

/// The marker line that tells a crate written by `flashc compile` (so `--crate` never overwrites
/// anything else).
const MARKER: &str = "# @generated by flashc compile";

/// Writes the whole crate into `dir`.
fn write_crate(dir: &Path, exports: &[Export], args: &Args, soname: Option<&str>, c_abi: &capi::CApi) -> Result<()> {
    let manifest = dir.join("Cargo.toml");
    if dir.exists() {
        let ours = std::fs::read_to_string(&manifest).is_ok_and(|m| m.starts_with(MARKER));
        let empty = std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !ours && !empty {
            bail!(
                "{} exists and is not a crate written by flashc compile\n  hint: give --crate a new or empty directory",
                dir.display()
            );
        }
    }
    // Models: transpiled into a scratch directory, then synchronised into models/.
    let scratch = TempDir::new("models")?;
    let mut specs: Vec<&Path> = Vec::new();
    for e in exports {
        if !specs
            .iter()
            .any(|s| std::fs::canonicalize(s).ok() == std::fs::canonicalize(&e.spec).ok())
        {
            specs.push(&e.spec);
        }
    }
    let compiled = transpiler::Config::new()
        .out_dir(&scratch.0)
        .runtime_crate("runtime")
        .emit_rerun_if_changed(false)
        .compile(&specs)
        .context("transpiling the models")?;
    // The transpiler's registry includes the model files by absolute path when it does not write
    // to OUT_DIR; this crate's registry includes them from OUT_DIR, so the crate can be moved.
    let files: Vec<(String, String)> = compiled
        .iter()
        .map(|c| {
            let file = c.rust_file.file_name().map(|f| f.to_string_lossy().into_owned());
            (c.name.clone(), file.unwrap_or_else(|| format!("{}.rs", c.name)))
        })
        .collect();
    std::fs::write(scratch.0.join(REGISTRY), emit::registry_rs(&files))
        .with_context(|| format!("cannot write {}", scratch.0.join(REGISTRY).display()))?;
    sync_dir(&scratch.0, &dir.join("models"))?;

    let runtime = match &args.runtime_path {
        Some(p) => {
            let p = std::fs::canonicalize(p)
                .with_context(|| format!("--runtime-path {}: no such directory", p.display()))?;
            if !p.join("Cargo.toml").is_file() {
                bail!("--runtime-path {}: no Cargo.toml there\n  hint: point it at the `runtime` directory of a flashc source tree", p.display());
            }
            Some(p.display().to_string())
        }
        None => None,
    };
    match &runtime {
        Some(_) => {
            let _ = std::fs::remove_dir_all(dir.join("runtime"));
        }
        None => {
            let rt = dir.join("runtime");
            write_if_changed(&rt.join("Cargo.toml"), runtime_src::manifest()?.as_bytes())?;
            for (path, text) in runtime_src::FILES {
                write_if_changed(&rt.join(path), text.as_bytes())?;
            }
        }
    }
    let dep = match &runtime {
        Some(p) => emit::RuntimeDep::Path(p),
        None => emit::RuntimeDep::Embedded,
    };
    let models: Vec<CModel> = exports.iter().map(|e| e.c.clone()).collect();
    write_if_changed(&manifest, emit::cargo_toml(&runtime_src::edition(), dep).as_bytes())?;
    if !dir.join("Cargo.lock").exists() {
        write_if_changed(&dir.join("Cargo.lock"), runtime_src::WORKSPACE_LOCK.as_bytes())?;
    }
    write_if_changed(&dir.join("build.rs"), emit::build_rs(soname).as_bytes())?;
    write_if_changed(&dir.join("src/lib.rs"), emit::lib_rs(&models).as_bytes())?;
    write_if_changed(&dir.join("src/capi.rs"), c_abi.capi_rs.as_bytes())?;
    write_if_changed(&dir.join("src/ffi.rs"), c_abi.ffi_rs.as_bytes())?;
    write_if_changed(&dir.join("include/flashc_capi.h"), c_abi.header.as_bytes())?;
    write_if_changed(&dir.join(".gitignore"), b"/target\n")?;
    Ok(())
}

/// File name of the built artefact for `target` (None: the host).
fn artefact_name(target: Option<&str>, staticlib: bool) -> String {
    let t = target.unwrap_or(if cfg!(windows) {
        "windows"
    } else if cfg!(target_vendor = "apple") {
        "apple"
    } else {
        "linux"
    });
    let lib = emit::LIB_NAME;
    match (t.contains("windows"), t.contains("apple"), staticlib) {
        (true, _, false) => format!("{lib}.dll"),
        (true, _, true) if t.contains("msvc") || target.is_none() => format!("{lib}.lib"),
        (_, true, false) => format!("lib{lib}.dylib"),
        (_, _, false) => format!("lib{lib}.so"),
        (_, _, true) => format!("lib{lib}.a"),
    }
}

/// Native libraries a program linking the static library needs (Rust's std on each OS).
fn static_link_libs(target: Option<&str>) -> &'static str {
    let t = target.unwrap_or(if cfg!(target_vendor = "apple") {
        "apple"
    } else {
        "linux"
    });
    if t.contains("apple") {
        "-lSystem -lc -lm"
    } else if t.contains("windows") {
        "(see `cargo rustc -- --print native-static-libs`)"
    } else {
        "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
    }
}

/// Builds the crate in `dir`; returns the path of the artefact.
fn build(dir: &Path, args: &Args) -> Result<PathBuf> {
    let target_dir = args.target_dir.clone().unwrap_or_else(|| dir.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("rustc")
        .arg("--release")
        .arg("--lib")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--crate-type")
        .arg(if args.staticlib { "staticlib" } else { "cdylib" });
    if let Some(t) = &args.target {
        cmd.arg("--target").arg(t);
    }
    if args.quiet {
        cmd.arg("--quiet");
    }
    // The build must not inherit the settings of a cargo that may be running flashc.
    cmd.env_remove("CARGO_TARGET_DIR").env_remove("CARGO_BUILD_TARGET_DIR");
    let status = cmd.status().with_context(|| {
        format!("cannot run {:?}\n  hint: flashc compile needs a Rust toolchain (cargo) on PATH, or CARGO set to cargo's path", cargo)
    })?;
    if !status.success() {
        bail!(
            "building the generated crate failed ({status}); cargo's messages above say why\n  hint: rerun with --crate DIR to keep the crate and build it by hand (cargo build --release --manifest-path DIR/Cargo.toml)"
        );
    }
    let mut out = target_dir;
    if let Some(t) = &args.target {
        out.push(t);
    }
    out.push("release");
    out.push(artefact_name(args.target.as_deref(), args.staticlib));
    if !out.is_file() {
        bail!(
            "cargo succeeded but {} is missing\n  hint: this is a bug in flashc; please report it",
            out.display()
        );
    }
    Ok(out)
}

/// A file written under a temporary name next to its destination, renamed by [`Staged::commit`]
/// and removed if dropped before that.
struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
}

impl Staged {
    fn new(dest: &Path, bytes: &[u8]) -> Result<Staged> {
        let name = dest
            .file_name()
            .with_context(|| format!("{}: not a file name", dest.display()))?;
        let tmp = dest.with_file_name(format!(".{}.flashc-tmp-{}", name.to_string_lossy(), std::process::id()));
        let staged = Staged {
            tmp,
            dest: dest.to_owned(),
        };
        std::fs::write(&staged.tmp, bytes).with_context(|| format!("cannot write {}", staged.tmp.display()))?;
        Ok(staged)
    }

    fn commit(self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.dest)
            .with_context(|| format!("cannot rename {} to {}", self.tmp.display(), self.dest.display()))?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Checks that `path`'s directory exists, before any long work.
fn check_destination(path: &Path, what: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "{what} {}: directory {} does not exist\n  hint: create it first",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        bail!("{what} {} is a directory\n  hint: give a file name", path.display());
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    if args.output.is_none() && args.crate_dir.is_none() {
        bail!("nothing to do: give -o LIBRARY (and optionally --header FILE), or --crate DIR to write the crate only");
    }
    if args.output.is_none() && args.header.is_some() {
        bail!("--header needs -o LIBRARY: the header describes the library being built");
    }
    if let Some(o) = &args.output {
        check_destination(o, "-o")?;
    }
    if let Some(h) = &args.header {
        check_destination(h, "--header")?;
    }
    let exports = plan(&args.models)?;
    let models: Vec<CModel> = exports.iter().map(|e| e.c.clone()).collect();

    let out_name = args
        .output
        .as_ref()
        .and_then(|o| o.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let stem_source = args.header.as_ref().or(args.output.as_ref());
    let stem = stem_source
        .and_then(|p| p.file_stem())
        .map_or_else(|| "models".to_string(), |s| s.to_string_lossy().into_owned());
    let link = match (&out_name, args.staticlib) {
        (Some(n), true) => format!(
            "Static library {n}: link with  c++ prog.cpp {n} {}",
            static_link_libs(args.target.as_deref())
        ),
        (Some(n), false) => format!("Shared library {n}: dlopen() it, or link with  cc prog.c -L. -l:{n}"),
        (None, _) => "Build the crate with  cargo build --release  (cdylib and staticlib).".to_string(),
    };
    // The crate's runtime dependency is named `runtime`; its models module is `crate::models`
    // and the plumbing `crate::ffi` (emit::lib_rs): the defaults of `capi::Options`.
    let c_abi = capi::emit(&models, &capi::Options::new().header_stem(stem).link_note(link))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let soname = out_name.as_deref().filter(|_| {
        !args.staticlib
            && !args
                .target
                .as_deref()
                .is_some_and(|t| t.contains("apple") || t.contains("windows"))
    });

    let temp;
    let dir = match &args.crate_dir {
        Some(d) => d.clone(),
        None => {
            temp = TempDir::new("compile")?;
            temp.0.clone()
        }
    };
    write_crate(&dir, &exports, args, soname, &c_abi)?;
    let Some(output) = &args.output else {
        eprintln!(
            "wrote the crate {} ({} model{})",
            dir.display(),
            models.len(),
            if models.len() == 1 { "" } else { "s" }
        );
        return Ok(());
    };
    let built = build(&dir, args)?;
    let lib = std::fs::read(&built).with_context(|| format!("cannot read {}", built.display()))?;
    let staged_lib = Staged::new(output, &lib)?;
    let staged_header = match &args.header {
        Some(h) => Some(Staged::new(h, c_abi.header.as_bytes())?),
        None => None,
    };
    if !args.staticlib {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&staged_lib.tmp, std::fs::Permissions::from_mode(0o755));
        }
    }
    if let Some(h) = staged_header {
        h.commit()?;
    }
    staged_lib.commit()?;
    let symbols: Vec<&str> = models.iter().map(|m| m.symbol.as_str()).collect();
    eprintln!("wrote {} ({})", output.display(), symbols.join(", "));
    if let Some(h) = &args.header {
        eprintln!("wrote {}", h.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artefact_names_follow_the_platform() {
        assert_eq!(
            artefact_name(Some("aarch64-unknown-linux-gnu"), false),
            "libflashc_capi.so"
        );
        assert_eq!(
            artefact_name(Some("x86_64-unknown-linux-gnu"), true),
            "libflashc_capi.a"
        );
        assert_eq!(
            artefact_name(Some("aarch64-apple-darwin"), false),
            "libflashc_capi.dylib"
        );
        assert_eq!(artefact_name(Some("x86_64-pc-windows-msvc"), true), "flashc_capi.lib");
    }
}
