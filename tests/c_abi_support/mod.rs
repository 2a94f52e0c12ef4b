//! Shared by the C ABI test (tests/c_abi.rs) and benchmark (benches/c_abi.rs): building the demo
//! libraries with `flashc compile`, the C host program, and the framework fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use runtime::Model;
use safetensors::{Dtype, SafeTensors};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn work() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_abi");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn flashc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flashc"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the flashc binary runs")
}

/// Runs a command; panics with its output unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> String {
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
pub fn specs() -> Vec<String> {
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
pub fn models() -> Vec<&'static dyn Model> {
    let models: Vec<&'static dyn Model> = generated::MODELS.to_vec();
    assert_eq!(
        models.len(),
        specs().len(),
        "generated/ compiles every spec under models/"
    );
    assert!(models.len() >= 3, "the demo models are missing from models/");
    models
}

pub struct Lib {
    pub lib: PathBuf,
    pub header: PathBuf,
}

/// Serialises the two builds (they share the crate directory).
pub static BUILD: Mutex<()> = Mutex::new(());

pub fn build(staticlib: bool) -> Lib {
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

pub fn shared() -> &'static Lib {
    static L: OnceLock<Lib> = OnceLock::new();
    L.get_or_init(|| build(false))
}

pub fn static_lib() -> &'static Lib {
    static L: OnceLock<Lib> = OnceLock::new();
    L.get_or_init(|| build(true))
}

/// The SQLamarr-like C host (tests/c/sqlamarr_like.c).
pub fn c_host() -> &'static Path {
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

pub struct Fixture {
    pub inputs: Vec<f32>,
    pub noise: Vec<f32>,
    pub outputs: Vec<f64>,
    pub rows: usize,
}

pub fn tensor(st: &SafeTensors, file: &Path, name: &str) -> Option<Vec<f64>> {
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

pub fn fixture(model: &dyn Model) -> Fixture {
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

pub fn write_f32(path: &Path, data: &[f32]) {
    std::fs::write(path, data.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

