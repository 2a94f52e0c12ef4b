//! A `flashc simulate` killed with SIGKILL while it writes leaves no file at the output path
//! (only its hidden temporary file `.NAME.tmp-PID-N`), and running the same shard again gives
//! the same file as a run that was never interrupted: the same rows bit for bit and the same
//! metadata.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ntuple::{read_metadata, ColumnData, Reader};

fn columns(path: &Path) -> Vec<ColumnData> {
    Reader::open(path)
        .and_then(|r| r.read_all())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .columns()
        .to_vec()
}

/// The hidden temporary files of the writer in `dir`.
fn temporaries(dir: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.tmp-");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

#[test]
fn sigkill_leaves_no_output_and_the_rerun_equals_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Shard 2 of 3 of a production of 60000 events: several seconds on one thread.
    let args = |out: &str| -> Vec<String> {
        [
            "simulate",
            "--quiet",
            "--seed",
            "11",
            "--n-events",
            "60000",
            "--shard",
            "2/3",
            "--threads",
            "1",
            "--output",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    for name in ["killed.root", "killed.parquet"] {
        let out = d.join(name);
        let mut child = Command::new(env!("CARGO_BIN_EXE_flashc"))
            .current_dir(d)
            .args(args(name))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts flashc");
        // Wait until it writes: the temporary file exists and has grown past its first bytes.
        let start = Instant::now();
        let tmp = loop {
            if let Some(t) = temporaries(d, name).pop() {
                if std::fs::metadata(&t).map_or(0, |m| m.len()) > 4096 {
                    break t;
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name}: flashc ended ({status}) before it was killed; make the workload larger");
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{name}: no temporary file after 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // SIGKILL (std's Child::kill sends SIGKILL on Unix): no destructor, no cleanup runs.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "{name}: {status}");
        assert!(
            !out.exists(),
            "{name}: a file appeared at the output path after SIGKILL"
        );
        let pid = child.id();
        let tmp_name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            tmp_name.starts_with(&format!(".{name}.tmp-{pid}-")),
            "{tmp_name} (pid {pid})"
        );
        assert!(
            tmp.exists(),
            "{name}: the killed run's temporary file stays, to be deleted by hand"
        );

        // The same shard again, to completion, and a clean run elsewhere.
        let o = Command::new(env!("CARGO_BIN_EXE_flashc"))
            .current_dir(d)
            .args(args(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let clean_dir = tempfile::tempdir().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_flashc"))
            .current_dir(clean_dir.path())
            .args(args(name))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let clean = clean_dir.path().join(name);

        let (a, b) = (columns(&out), columns(&clean));
        assert!(a[0].len() > 10_000, "{} rows", a[0].len());
        assert!(
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.bits_eq(y)),
            "{name}: rows differ"
        );
        let meta = read_metadata(&out).unwrap();
        assert_eq!(
            meta,
            read_metadata(&clean).unwrap(),
            "{name}: metadata differs"
        );
        assert_eq!(meta.get("shard"), Some("2/3"));
        assert_eq!(meta.get("n_events_simulated"), Some("20000"));
        // Only the killed run's temporary file is left over, and it can simply be deleted.
        assert_eq!(temporaries(d, name), std::slice::from_ref(&tmp));
        std::fs::remove_file(&tmp).unwrap();
    }
}
