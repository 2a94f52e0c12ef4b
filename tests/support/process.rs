//! Running a command with a time limit, for the tests that drive external programs.
#![allow(dead_code)] // each test uses a part

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a command ended: its status (`None`: killed at the time limit) and its output.
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs `cmd` with stdin closed until it exits or `limit` has passed (then kills it).
pub fn run_for(cmd: &mut Command, limit: Duration) -> std::io::Result<Ran> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Drain both pipes on threads, so that a chatty child cannot block on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `cmd` (see [`run_for`]) and returns its stdout; panics with both streams, naming it
/// `what`, if it cannot start, fails or runs past `limit`.
pub fn run(mut cmd: Command, limit: Duration, what: &str) -> String {
    let r =
        run_for(&mut cmd, limit).unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    match r.status {
        Some(s) if s.success() => r.stdout,
        Some(s) => panic!("{what} failed ({s}):\n{}\n{}", r.stdout, r.stderr),
        None => panic!(
            "{what} did not finish within {limit:?}; killed:\n{}\n{}",
            r.stdout, r.stderr
        ),
    }
}
