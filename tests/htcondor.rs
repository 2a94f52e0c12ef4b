//! `contrib/htcondor/flashc.sub` expanded into its jobs by the HTCondor Python bindings (no pool
//! needed: `tests/htcondor/expand_jobs.py`), then each job's command line run by hand as a worker
//! node would, in its own scratch directory: job I of N is shard I/N, the outputs have distinct
//! names that are exactly the files the jobs write and the submit file transfers back, and their
//! merge equals one run of the whole production, bit for bit.
//!
//! The Python interpreter is `$FLASHC_PYTHON` if set, else `.venv/bin/python` at the repository
//! root (scripts/test.sh installs `python/requirements-ci.txt`, which pins `htcondor`, into it). A
//! missing interpreter or module fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use ntuple::{ColumnData, Reader};

const INSTALL: &str = "create it with `python3 -m venv .venv && .venv/bin/pip install -r python/requirements-ci.txt` \
     at the repository root (scripts/test.sh does this), or set FLASHC_PYTHON";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    match std::env::var_os("FLASHC_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv/bin/python"),
    }
}

/// One job of the cluster, as HTCondor would run it.
#[derive(Debug, Default)]
struct Job {
    process: u64,
    args: Vec<String>,
    /// Other submit commands, expanded for this job.
    keys: Vec<(String, String)>,
}

impl Job {
    fn get(&self, key: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The jobs of the submit file with `assignments` given first (like `condor_submit NAME=value`).
fn expand(assignments: &[&str]) -> Vec<Job> {
    let py = python();
    let o = Command::new(&py)
        .arg(root().join("tests/htcondor/expand_jobs.py"))
        .arg(root().join("contrib/htcondor/flashc.sub"))
        .args(assignments)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}\n{INSTALL}", py.display()));
    assert!(
        o.status.success(),
        "expanding the submit file failed:\n{}\n{}\n(if a module is missing: {INSTALL})",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    let mut count = None;
    let mut jobs: Vec<Job> = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once('\t').unwrap_or((line, ""));
        match key {
            "count" => count = Some(value.parse::<usize>().unwrap()),
            "job" => jobs.push(Job {
                process: value.parse().unwrap(),
                ..Job::default()
            }),
            "arg" => jobs.last_mut().unwrap().args.push(value.to_string()),
            _ => jobs
                .last_mut()
                .unwrap()
                .keys
                .push((key.to_string(), value.to_string())),
        }
    }
    assert_eq!(Some(jobs.len()), count, "{text}");
    jobs
}

/// The value following `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn columns(path: &Path) -> Vec<ColumnData> {
    Reader::open(path)
        .and_then(|r| r.read_all())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .columns()
        .to_vec()
}

fn flashc(dir: &Path, args: &[String]) {
    let o = Command::new(env!("CARGO_BIN_EXE_flashc"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs flashc");
    assert!(
        o.status.success(),
        "flashc {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs every job in its own scratch directory (with the transferred input, if any), brings the
/// transferred output back to `results/` by the job's remap, merges, and compares with `single`.
fn run_cluster(jobs: &[Job], input: Option<&Path>, single_args: &[&str], format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let mut merged_inputs = Vec::new();
    for job in jobs {
        let scratch = dir.path().join(format!("scratch{}", job.process));
        std::fs::create_dir(&scratch).unwrap();
        if let Some(input) = input {
            std::fs::copy(input, scratch.join(input.file_name().unwrap())).unwrap();
        }
        flashc(&scratch, &job.args);
        let out = job.get("transfer_output_files").unwrap();
        let mut made: Vec<String> = std::fs::read_dir(&scratch)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        made.retain(|f| input.is_none_or(|i| i.file_name().unwrap().to_string_lossy() != *f));
        assert_eq!(
            made,
            [out],
            "job {}: the file written is the one transferred back",
            job.process
        );
        let remap = job.get("transfer_output_remaps").unwrap();
        assert_eq!(
            remap,
            format!("\"{out} = results/{out}\""),
            "job {}",
            job.process
        );
        std::fs::rename(scratch.join(out), results.join(out)).unwrap();
        merged_inputs.push(format!("results/{out}"));
    }
    let mut args: Vec<String> = vec!["merge".into(), format!("all.{format}")];
    args.extend(merged_inputs.into_iter().rev()); // any order
    flashc(dir.path(), &args);
    let single: Vec<String> = single_args
        .iter()
        .map(|s| s.to_string())
        .chain(["--output".to_string(), format!("single.{format}")])
        .collect();
    if let Some(input) = input {
        std::fs::copy(input, dir.path().join(input.file_name().unwrap())).unwrap();
    }
    flashc(dir.path(), &single);
    let (a, b) = (
        columns(&dir.path().join(format!("all.{format}"))),
        columns(&dir.path().join(format!("single.{format}"))),
    );
    assert!(!a[0].is_empty());
    assert!(
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.bits_eq(y)),
        "the merged jobs differ from one run"
    );
}

#[test]
fn every_job_is_one_shard_with_its_own_output_name() {
    for n in [1u64, 4, 7] {
        let jobs = expand(&[&format!("N={n}")]);
        assert_eq!(jobs.len() as u64, n);
        let mut names = Vec::new();
        for (k, job) in jobs.iter().enumerate() {
            let i = k as u64 + 1;
            assert_eq!(job.process, k as u64);
            assert_eq!(job.args[0], "simulate", "{job:?}");
            assert_eq!(
                flag(&job.args, "--shard"),
                Some(format!("{i}/{n}").as_str()),
                "{job:?}"
            );
            // One seed and one production size for every job.
            assert_eq!(flag(&job.args, "--seed"), Some("42"), "{job:?}");
            assert_eq!(flag(&job.args, "--n-events"), Some("100000"), "{job:?}");
            assert_eq!(
                flag(&job.args, "--threads"),
                job.get("request_cpus"),
                "{job:?}"
            );
            let out = job.get("transfer_output_files").unwrap();
            assert_eq!(out, format!("flashc-lamarr.shard{i}-of-{n}.parquet"));
            assert_eq!(
                flag(&job.args, "--output"),
                Some("flashc-lamarr.{shard}.parquet"),
                "{job:?}"
            );
            // The binary is the only file sent (the models are in it), unless INPUT is given.
            assert_eq!(job.get("executable"), Some("target/release/flashc"));
            assert_eq!(job.get("transfer_input_files"), None);
            assert_eq!(job.get("should_transfer_files"), Some("YES"));
            assert_eq!(
                job.get("output"),
                Some(format!("logs/flashc.1.{k}.out").as_str())
            );
            names.push(out.to_string());
        }
        let mut distinct = names.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
    }
}

#[test]
fn the_jobs_run_by_hand_merge_into_the_single_run() {
    // The particle gun, FlashSim, 4 jobs of ROOT output.
    let jobs = expand(&[
        "N=4",
        "EVENTS=90",
        "SEED=5",
        "PIPELINE=flashsim",
        "FORMAT=root",
    ]);
    assert_eq!(jobs.len(), 4);
    for job in &jobs {
        assert_eq!(flag(&job.args, "--pipeline"), Some("flashsim"));
    }
    run_cluster(
        &jobs,
        None,
        &[
            "simulate",
            "--quiet",
            "--pipeline",
            "flashsim",
            "--seed",
            "5",
            "--n-events",
            "90",
        ],
        "root",
    );

    // A HepMC input, transferred with every job; Lamarr; Parquet.
    let input = root().join("runtime/tests/data/pyhepmc_events.hepmc3");
    let jobs = expand(&["N=2", "EVENTS=3", &format!("INPUT={}", input.display())]);
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        assert_eq!(job.get("transfer_input_files"), input.to_str());
        assert_eq!(flag(&job.args, "--input"), Some("pyhepmc_events.hepmc3"));
    }
    run_cluster(
        &jobs,
        Some(&input),
        &[
            "simulate",
            "--quiet",
            "--input",
            "pyhepmc_events.hepmc3",
            "--n-events",
            "3",
        ],
        "parquet",
    );
}
