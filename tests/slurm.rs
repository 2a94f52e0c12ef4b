//! flashc under Slurm: a single-node cluster on localhost runs `contrib/slurm/flashc-array.sbatch`
//! as a 4-task job array, and the 4 shard outputs, merged in shard order, must be bit-identical
//! to one `flashc simulate` of the same events.
//!
//! The test installs Slurm and MUNGE from the Debian packages if they are missing (`apt-get`, as
//! root or through passwordless `sudo`; `.ci/run` installs them beforehand on CI), and fails with
//! instructions where it cannot. It then starts its own `munged`, `slurmctld` and `slurmd` as the
//! current user (no systemd, no root needed), in the foreground, with their own key, socket,
//! state, spool and log directories in a temporary directory, and free ports; the system's
//! Slurm or MUNGE configuration, if any, is neither read nor touched. It stops the daemons it
//! started by their process ids and removes its directory, also when it fails. It polls `squeue`
//! (`sbatch --wait` sleeps up to 32 s between its checks) and gives up after 5 minutes in all.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ntuple::{Chunk, Reader};

#[path = "support/process.rs"]
mod process;
use process::{run, run_for};

/// The whole test, installation included.
const LIMIT: Duration = Duration::from_secs(300);
const EVENTS: u64 = 2000;
const SHARDS: u64 = 4;
const SEED: &str = "11";

/// The Debian packages, and the programs of each that the test runs.
const PACKAGES: &[(&str, &[&str])] = &[
    ("slurmctld", &["slurmctld"]),
    ("slurmd", &["slurmd"]),
    (
        "slurm-client",
        &["sbatch", "squeue", "scontrol", "sinfo", "scancel"],
    ),
    ("munge", &["munged", "mungekey", "munge"]),
];

const INSTALL: &str =
    "install them with `sudo apt-get install --no-install-recommends slurmctld slurmd \
     slurm-client munge` (Debian/Ubuntu; .ci/run does this on CI)";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `prog` on PATH or in the system directories (where the daemons live, often not on a user's PATH).
fn find(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn program(prog: &str) -> PathBuf {
    find(prog).unwrap_or_else(|| panic!("`{prog}` is not installed; {INSTALL}"))
}

fn user() -> (String, bool) {
    let id = |a: &str| {
        let o = Command::new("id").arg(a).output().expect("runs `id`");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    (id("-un"), id("-u") == "0")
}

/// Installs the missing packages with apt-get, as root or through `sudo -n`.
fn install_missing(deadline: Instant) {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, progs)| progs.iter().any(|p| find(p).is_none()))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return;
    }
    let (_, is_root) = user();
    let sudo = !is_root;
    if sudo
        && !Command::new("sudo")
            .args(["-n", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        panic!(
            "Slurm packages missing ({}), and this user can install nothing (not root, no passwordless sudo): {INSTALL}",
            missing.join(" ")
        );
    }
    if find("apt-get").is_none() {
        panic!(
            "Slurm packages missing ({}) and no apt-get on this machine: install Slurm (slurmctld, slurmd, \
             client commands) and MUNGE with the system's package manager",
            missing.join(" ")
        );
    }
    eprintln!("installing {} with apt-get", missing.join(" "));
    let apt = |args: &[&str]| {
        // sudo resets the environment: the variable goes through `env`.
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "env"]);
            c
        } else {
            Command::new("env")
        };
        c.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"])
            .args(args);
        let left = deadline.saturating_duration_since(Instant::now());
        run(c, left, &format!("apt-get {} ({INSTALL})", args.join(" ")));
    };
    apt(&["update", "-q"]);
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install);
    for (pkg, progs) in PACKAGES {
        for p in *progs {
            assert!(
                find(p).is_some(),
                "apt-get installed {pkg} but `{p}` is not there"
            );
        }
    }
}

/// A daemon this test started.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// A single-node Slurm cluster on localhost, and the directory holding its files. Dropping it
/// cancels the job, stops the daemons (by their process ids) and removes the directory.
struct Cluster {
    conf: PathBuf,
    munge_socket: PathBuf,
    daemons: Vec<Daemon>,
    job: Option<String>,
    deadline: Instant,
    // Last: removed after `drop` stopped the daemons.
    dir: tempfile::TempDir,
}

/// A Slurm client command for the cluster configured by `conf`.
fn client(conf: &Path, prog: &str) -> Command {
    let mut c = Command::new(program(prog));
    c.env("SLURM_CONF", conf);
    c
}

fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn tail(path: &Path, lines: usize) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

impl Cluster {
    fn start(deadline: Instant) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("flashc-slurm-")
            .tempdir()
            .unwrap();
        let d = dir.path().to_path_buf();
        // munged wants every directory above its socket searchable by all, and none writable
        // by others (the temporary directory is private by default).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["munge", "state", "spool", "log", "jobs"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let mut c = Cluster {
            conf: d.join("slurm.conf"),
            munge_socket: d.join("munge/socket"),
            daemons: Vec::new(),
            job: None,
            deadline,
            dir,
        };

        // MUNGE, with a key of its own.
        let key = d.join("munge/munge.key");
        let mut k = Command::new(program("mungekey"));
        k.arg("--create")
            .arg(format!("--keyfile={}", key.display()));
        run(k, Duration::from_secs(30), "mungekey --create");
        let mut m = Command::new(program("munged"));
        m.arg("--foreground")
            .arg(format!("--socket={}", c.munge_socket.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!(
                "--pid-file={}",
                d.join("munge/munged.pid").display()
            ))
            .arg(format!(
                "--seed-file={}",
                d.join("munge/munged.seed").display()
            ));
        c.spawn("munged", m);
        let socket = c.munge_socket.clone();
        c.wait_for("munged to answer", || {
            Command::new(program("munge"))
                .arg("--no-input")
                .arg(format!("--socket={}", socket.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });

        // slurm.conf: one node, `localhost`, with the hardware slurmd sees.
        let (user, _) = user();
        let hw = Command::new(program("slurmd"))
            .arg("-C")
            .output()
            .ok()
            .and_then(|o| {
                let s = String::from_utf8_lossy(&o.stdout).into_owned();
                let line = s.lines().next()?.to_string();
                let (_, rest) = line.split_once(' ')?;
                line.starts_with("NodeName=").then(|| rest.to_string())
            })
            .unwrap_or_else(|| {
                format!(
                    "CPUs={}",
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                )
            });
        let (ctld_port, slurmd_port) = free_ports();
        let conf = format!(
            "# written by tests/slurm.rs: a single-node cluster for one test\n\
             ClusterName=flashctest\n\
             SlurmctldHost=localhost\n\
             SlurmUser={user}\n\
             SlurmdUser={user}\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={sock}\n\
             StateSaveLocation={d}/state\n\
             SlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/state/slurmctld.pid\n\
             SlurmdPidFile={d}/spool/slurmd.pid\n\
             MpiDefault=none\n\
             MailProg=/bin/true\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             SchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             ReturnToService=2\n\
             SlurmdParameters=config_overrides\n\
             MinJobAge=300\n\
             NodeName=localhost NodeAddr=127.0.0.1 {hw} State=UNKNOWN\n\
             PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
            sock = c.munge_socket.display(),
            d = d.display(),
        );
        std::fs::write(&c.conf, conf).unwrap();

        // The daemons, in the foreground (-D), so that their ids are the children's.
        let mut ctld = Command::new(program("slurmctld"));
        ctld.arg("-D").arg("-c").arg("-f").arg(&c.conf);
        c.spawn("slurmctld", ctld);
        let mut slurmd = Command::new(program("slurmd"));
        slurmd.args(["-D", "-N", "localhost", "-f"]).arg(&c.conf);
        c.spawn("slurmd", slurmd);
        let conf = c.conf.clone();
        c.wait_for("slurmctld to answer `scontrol ping`", || {
            client(&conf, "scontrol")
                .arg("ping")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("UP"))
        });
        c.wait_for("the node to be idle", || {
            let o = client(&conf, "sinfo")
                .args(["-h", "-n", "localhost", "-o", "%T"])
                .output();
            let state = o.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
            state.is_ok_and(|s| s == "idle")
        });
        c
    }

    /// Starts a daemon in the cluster's directory, its stdout and stderr into `log/NAME.log`.
    fn spawn(&mut self, name: &'static str, mut cmd: Command) {
        let log = self.dir.path().join(format!("log/{name}.log"));
        let f = File::create(&log).unwrap();
        let child = cmd
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push(Daemon { name, child, log });
    }

    /// A Slurm client command for this cluster.
    fn client(&self, prog: &str) -> Command {
        client(&self.conf, prog)
    }

    /// Polls `ready` every 0.2 s until it holds; panics with the daemons' logs if a daemon
    /// exits or the deadline passes.
    fn wait_for(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        loop {
            if ready() {
                return;
            }
            for dm in &mut self.daemons {
                if let Ok(Some(s)) = dm.child.try_wait() {
                    panic!(
                        "{} exited ({s}) while waiting for {what}:\n{}",
                        dm.name,
                        tail(&dm.log, 30)
                    );
                }
            }
            if Instant::now() > self.deadline {
                panic!("gave up waiting for {what}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        self.daemons
            .iter()
            .map(|dm| format!("--- {} ---\n{}", dm.name, tail(&dm.log, 20)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Waits up to `limit` for the daemons that `which` names to exit.
    fn wait_exit(&mut self, which: impl Fn(&str) -> bool, limit: Duration) {
        let end = Instant::now() + limit;
        while Instant::now() < end
            && self
                .daemons
                .iter_mut()
                .any(|dm| which(dm.name) && matches!(dm.child.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Cluster {
    /// Processes other than this test and its daemons working in the cluster's directory: the
    /// daemons run there (see `spawn`), and their job steps inherit it.
    fn leftovers(&self) -> Vec<u32> {
        let dir = self.dir.path();
        let ours: Vec<u32> = self.daemons.iter().map(|dm| dm.child.id()).collect();
        let me = std::process::id();
        let Ok(proc) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        proc.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| *pid != me && !ours.contains(pid))
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
            })
            .collect()
    }

    /// SIGTERM to the running daemons that `which` names, SIGKILL after 5 s; then reaps them.
    fn stop(&mut self, which: impl Fn(&str) -> bool + Copy) {
        for dm in self.daemons.iter_mut().filter(|dm| which(dm.name)) {
            if matches!(dm.child.try_wait(), Ok(None)) {
                let _ = Command::new("kill")
                    .args(["-TERM", &dm.child.id().to_string()])
                    .status();
            }
        }
        self.wait_exit(which, Duration::from_secs(5));
        for dm in self.daemons.iter_mut().filter(|dm| which(dm.name)) {
            if matches!(dm.child.try_wait(), Ok(None)) {
                eprintln!(
                    "{} (pid {}) ignored SIGTERM: SIGKILL",
                    dm.name,
                    dm.child.id()
                );
                let _ = dm.child.kill();
            }
            let _ = dm.child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let quick = Duration::from_secs(10);
        if let Some(job) = self.job.take() {
            let _ = run_for(self.client("scancel").arg(&job), quick);
        }
        // slurmctld and slurmd stop on `scontrol shutdown`; any left get SIGTERM, then SIGKILL,
        // by process id; munged last.
        let _ = run_for(self.client("scontrol").arg("shutdown"), quick);
        self.wait_exit(|name| name != "munged", quick);
        self.stop(|name| name != "munged");
        // Job steps (slurmstepd, and a cancelled job's processes) can outlive slurmd briefly:
        // wait for them, then stop them by process id.
        let end = Instant::now() + quick;
        while !self.leftovers().is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        for signal in ["-TERM", "-KILL"] {
            let left = self.leftovers();
            if left.is_empty() {
                break;
            }
            eprintln!("job processes left: {left:?}: kill {signal}");
            for pid in left {
                let _ = Command::new("kill")
                    .args([signal, &pid.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        self.stop(|name| name == "munged");
    }
}

fn flashc(dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flashc"));
    c.current_dir(dir).args(args);
    run(c, Duration::from_secs(120), &format!("flashc {args:?}"))
}

fn read(path: &Path) -> Chunk {
    Reader::open(path)
        .and_then(|r| r.read_all())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The shard outputs merged by `flashc merge` (given in reverse order: the command sorts them
/// by their first event), read back.
fn merge(shards: &[PathBuf], dir: &Path) -> Chunk {
    let out = dir.join("merged.root");
    let mut args: Vec<&str> = vec!["merge", out.to_str().unwrap()];
    args.extend(shards.iter().rev().map(|s| s.to_str().unwrap()));
    flashc(dir, &args);
    read(&out)
}

#[test]
fn slurm_job_array_shards_merge_into_the_single_run() {
    let deadline = Instant::now() + LIMIT;
    let t0 = Instant::now();
    install_missing(deadline);
    let t_install = t0.elapsed();
    let mut cluster = Cluster::start(deadline);
    let t_up = t0.elapsed();
    let jobs = cluster.dir.path().join("jobs");

    // The production: 4 array tasks of the committed batch script.
    let n = EVENTS.to_string();
    let output = jobs.join("lamarr.root");
    let mut sbatch = cluster.client("sbatch");
    sbatch
        .env("FLASHC", env!("CARGO_BIN_EXE_flashc"))
        .arg("--parsable")
        .arg(format!("--array=1-{SHARDS}"))
        .arg("--time=5")
        .arg("--chdir")
        .arg(&jobs)
        .arg("--output")
        .arg(jobs.join("slurm-%A_%a.out"))
        .arg(root().join("contrib/slurm/flashc-array.sbatch"))
        .arg(&output)
        .args(["--quiet", "--seed", SEED, "--n-events", &n]);
    let submitted = run(sbatch, Duration::from_secs(30), "sbatch");
    let job = submitted.trim().split(';').next().unwrap().to_string();
    assert!(
        !job.is_empty() && job.chars().all(|c| c.is_ascii_digit()),
        "sbatch: {submitted}"
    );
    cluster.job = Some(job.clone());

    // The single-process run of the same events, meanwhile.
    let single = cluster.dir.path().join("single.root");
    flashc(
        cluster.dir.path(),
        &[
            "simulate",
            "--quiet",
            "--seed",
            SEED,
            "--n-events",
            &n,
            "--output",
            single.to_str().unwrap(),
        ],
    );

    let job_logs = |jobs: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(jobs)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "out"))
            .collect();
        v.sort();
        v.iter()
            .map(|p| format!("--- {} ---\n{}", p.display(), tail(p, 20)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut squeue = cluster.client("squeue");
    squeue.args(["-h", "-j", &job]);
    cluster.wait_for("the job array to finish (squeue)", || {
        run_for(&mut squeue, Duration::from_secs(10))
            .is_ok_and(|r| r.success() && r.stdout.trim().is_empty())
    });
    cluster.job = None;
    let t_done = t0.elapsed();

    // Every task completed with exit code 0 (records are kept for MinJobAge = 300 s).
    let show = run(
        {
            let mut c = cluster.client("scontrol");
            c.args(["-o", "show", "job", &job]);
            c
        },
        Duration::from_secs(10),
        "scontrol show job",
    );
    let tasks: Vec<&str> = show
        .lines()
        .filter(|l| l.contains("ArrayTaskId="))
        .collect();
    assert_eq!(tasks.len() as u64, SHARDS, "{show}");
    for t in &tasks {
        assert!(
            t.contains("JobState=COMPLETED") && t.contains(" ExitCode=0:0"),
            "a task failed: {t}\n{}",
            job_logs(&jobs)
        );
    }

    // Outputs named by shard, each with its shard in the metadata; merged, they are the single run.
    let shards: Vec<PathBuf> = (1..=SHARDS)
        .map(|i| jobs.join(format!("lamarr.shard{i}-of-{SHARDS}.root")))
        .collect();
    for (i, s) in shards.iter().enumerate() {
        assert!(s.is_file(), "no {}:\n{}", s.display(), job_logs(&jobs));
        let meta = Reader::open(s).unwrap().metadata().clone();
        assert_eq!(
            meta.get("shard"),
            Some(format!("{}/{SHARDS}", i + 1).as_str())
        );
    }
    let log1 = std::fs::read_to_string(jobs.join(format!("slurm-{job}_1.out"))).unwrap_or_default();
    assert!(
        log1.contains(&format!("job {job} task 1 of {SHARDS}")),
        "the batch script's log: {log1}"
    );
    let merged = merge(&shards, cluster.dir.path());
    let reference = read(&single);
    assert_eq!(merged.rows(), reference.rows());
    assert!(reference.rows() > 10_000, "{} rows", reference.rows());
    assert!(
        merged.bits_eq(&reference),
        "the merged shards differ from the single run"
    );

    drop(cluster);
    println!(
        "Slurm: installed in {:.1} s, cluster up at {:.1} s, {SHARDS}-task array done at {:.1} s, \
         stopped at {:.1} s",
        t_install.as_secs_f64(),
        t_up.as_secs_f64(),
        t_done.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
