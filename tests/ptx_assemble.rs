//! Assembles the PTX of every model under `models/` with NVIDIA's `ptxas`, for sm_80 and
//! sm_90. No GPU is needed; ptxas comes from the PyPI wheel `nvidia-cuda-nvcc-cu12`
//! (`scripts/install-ptxas.sh`). The test fails, with the install command, when ptxas is
//! missing: it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

const INSTALL: &str = "scripts/install-ptxas.sh (installs nvidia-cuda-nvcc-cu12 into .venv), or set FLASHC_PTXAS=/path/to/ptxas";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$FLASHC_PTXAS`, else the project's `.venv`, else `ptxas` on `PATH`.
fn ptxas() -> PathBuf {
    if let Some(p) = std::env::var_os("FLASHC_PTXAS") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "FLASHC_PTXAS={} is not a file; install ptxas with {INSTALL}",
            p.display()
        );
        return p;
    }
    let lib = root().join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&lib) {
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages/nvidia/cuda_nvcc/bin/ptxas"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return p;
        }
    }
    if Command::new("ptxas")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("ptxas");
    }
    panic!("ptxas not found: the PTX assembly test needs it (no GPU required). Install it with {INSTALL}");
}

/// Assembles `ptx` for `arch`; `Err(ptxas output)` on failure.
fn assemble(ptxas: &Path, ptx: &Path, arch: &str, out: &Path) -> Result<(), String> {
    let o = Command::new(ptxas)
        .arg(format!("-arch={arch}"))
        .arg("--warning-as-error")
        .arg("-o")
        .arg(out)
        .arg(ptx)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install ptxas with {INSTALL}",
                ptxas.display()
            )
        });
    if o.status.success() && out.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn specs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no model specs under models/");
    v
}

#[test]
fn every_model_ptx_assembles_for_sm80_and_sm90() {
    let ptxas = ptxas();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut done = 0;
    let mut skipped = 0;
    for spec in specs() {
        let model = transpiler::load(&spec).unwrap_or_else(|e| panic!("{e}"));
        let name = model.model().name.clone();
        // Models with an op the PTX backend lacks (flows) get no PTX: the error must name it.
        let unsupported = transpiler::codegen::ptx::unsupported_nodes(&model);
        if let Some((node, op)) = unsupported.first() {
            let err = transpiler::codegen::ptx::generate(&model).unwrap_err().to_string();
            assert!(err.contains(&format!("node \"{node}\" (op {op})")) && err.contains("does not support"), "{err}");
            skipped += 1;
            continue;
        }
        let text = transpiler::codegen::ptx::generate(&model)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.display()));
        let ptx = dir.path().join(format!("{name}.ptx"));
        std::fs::write(&ptx, &text).unwrap();
        for arch in ["sm_80", "sm_90"] {
            let cubin = dir.path().join(format!("{name}.{arch}.cubin"));
            match assemble(&ptxas, &ptx, arch, &cubin) {
                Ok(()) => done += 1,
                Err(msg) => failures.push(format!("{} ({arch}):\n{msg}", spec.display())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "ptxas rejected generated PTX:\n{}",
        failures.join("\n")
    );
    assert_eq!(done, 2 * (specs().len() - skipped));
}

/// The harness itself detects bad PTX (so the test above can fail).
#[test]
fn ptxas_rejects_broken_ptx() {
    let ptxas = ptxas();
    let dir = tempfile::tempdir().unwrap();
    let spec = root().join("models/zoo_keras_f16.json");
    let model = transpiler::load(&spec).unwrap();
    let text = transpiler::codegen::ptx::generate(&model).unwrap();
    let broken = text.replacen("fma.rn.f32", "fma.rn.f33", 1);
    assert_ne!(broken, text);
    let ptx = dir.path().join("broken.ptx");
    std::fs::write(&ptx, broken).unwrap();
    let err = assemble(&ptxas, &ptx, "sm_80", &dir.path().join("broken.cubin")).unwrap_err();
    assert!(err.to_lowercase().contains("error"), "{err}");
}
