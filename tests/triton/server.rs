//! A real Triton Inference Server for integration tests (included with `#[path]` by the engine, element
//! and CLI tests): the CPU tritonserver of the nvidia-pytriton wheel that scripts/setup.sh installs in
//! python/.venv-triton, on loopback only, serving the embedded demo model exported to ONNX and run by a
//! python-backend model.py (`dtfsal_engine::triton_repo`, platform python).
//!
//! [`TritonServer::start`] returns `Err(why)` (the test then prints `SKIPPED ...` and returns) only when
//! the server is not installed or the python venv cannot export; a server that is installed but does not
//! come up is a test failure. Dropping the handle stops the server (by its PID).
#![allow(dead_code)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use dtfsal_engine::triton_repo::{self, Platform, RepoOptions};
use dtfsal_engine::weights::WeightFile;

pub fn repo_root() -> PathBuf {
    // every including crate sits one level below the workspace root
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The embedded demo model's weight file (the element's default model).
pub fn demo_weights() -> PathBuf {
    repo_root().join("models/dtfsal-tiny-av-synth.safetensors")
}

fn triton_venv() -> PathBuf {
    std::env::var_os("DTFSAL_TRITON_VENV").map(PathBuf::from).unwrap_or_else(|| repo_root().join("python/.venv-triton"))
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DTFSAL_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo_root().join("python/.venv/bin/python"));
    p.is_file().then_some(p)
}

/// Why the server cannot run here (not installed), or None.
pub fn missing() -> Option<String> {
    let venv = triton_venv();
    let found = std::fs::read_dir(venv.join("lib")).ok().and_then(|mut d| {
        d.find_map(|e| {
            let p = e.ok()?.path().join("site-packages/pytriton/tritonserver/bin/tritonserver");
            p.is_file().then_some(p)
        })
    });
    if found.is_none() {
        return Some(format!("no tritonserver in {} (scripts/setup.sh installs nvidia-pytriton there)", venv.display()));
    }
    if python().is_none() {
        return Some("no python venv to export the ONNX model (run scripts/setup.sh)".into());
    }
    None
}

/// `weights` exported to ONNX once, cached under the target's tmp dir by the content of the weights and
/// the exporter (shared by every test binary of the workspace).
pub fn exported_onnx(weights: &Path) -> Result<PathBuf, String> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut h = DefaultHasher::new();
    for f in [weights.to_path_buf(), repo_root().join("python/dtfsal/export_onnx.py")] {
        std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?.hash(&mut h);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dtfsal-triton-onnx");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = dir.join(format!("{:016x}.onnx", h.finish()));
    if onnx.is_file() {
        return Ok(onnx);
    }
    let py = python().ok_or("no python venv")?;
    let tmp = dir.join(format!("{}.partial.onnx", std::process::id()));
    let st = Command::new(&py)
        .env("PYTHONPATH", repo_root().join("python"))
        .args(["-m", "dtfsal.export_onnx", "--weights"])
        .arg(weights)
        .arg("--out")
        .arg(&tmp)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", py.display()))?;
    assert!(st.success(), "python -m dtfsal.export_onnx failed for {}", weights.display());
    std::fs::rename(&tmp, &onnx).unwrap();
    Ok(onnx)
}

/// A model repository with the demo model as `name` (python platform, 1 instance, 1 ORT thread).
pub fn demo_repo(name: &str) -> Result<PathBuf, String> {
    let onnx = exported_onnx(&demo_weights())?;
    let cfg = WeightFile::open(demo_weights()).unwrap().config().clone();
    let dir = tempdir("repo");
    let o = RepoOptions { name: name.into(), platform: Platform::Python, threads: 1, ..Default::default() };
    triton_repo::write(&dir, &onnx, &cfg, &o).unwrap();
    Ok(dir)
}

/// A fresh directory under the target's tmp dir.
pub fn tempdir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dtfsal-triton-{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct TritonServer {
    pub pid: u32,
    pub grpc_port: u16,
    pub http_port: u16,
    pub repo: PathBuf,
    pub log: PathBuf,
}

impl TritonServer {
    /// Starts a server on free loopback ports serving `repo`; waits until it is ready.
    pub fn start(repo: &Path) -> Result<Self, String> {
        Self::start_on(repo, None)
    }

    /// As [`TritonServer::start`], on given ports (a restart on the same address).
    pub fn start_on(repo: &Path, ports: Option<(u16, u16)>) -> Result<Self, String> {
        if let Some(why) = missing() {
            return Err(why);
        }
        let log = repo.with_extension(format!("log{}", ports.map_or(0, |p| p.0)));
        let mut cmd = Command::new(repo_root().join("scripts/triton-server.sh"));
        cmd.arg(repo).env("TRITON_VENV", triton_venv()).env("TRITON_LOG", &log).env("TRITON_READY_S", "120");
        if let Some((g, h)) = ports {
            cmd.arg(g.to_string()).arg(h.to_string());
        }
        let out = cmd.output().map_err(|e| format!("cannot run scripts/triton-server.sh: {e}"))?;
        assert!(
            out.status.success(),
            "tritonserver did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let field = |k: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(k))
                .unwrap_or_else(|| panic!("no {k} in {line:?}"))
                .to_string()
        };
        let port = |k: &str| field(k).rsplit(':').next().unwrap().parse::<u16>().unwrap();
        Ok(Self { pid: field("pid=").parse().unwrap(), grpc_port: port("grpc="), http_port: port("http="), repo: repo.into(), log })
    }

    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// Kills the server at once (SIGKILL, as a crash) and waits until it is gone. Its python-backend stubs
    /// are killed too (a crashed server leaves them running).
    pub fn kill(&mut self) {
        let stubs = children(self.pid);
        signal(self.pid, "-KILL");
        for c in stubs {
            signal(c, "-KILL"); // stubs ignore SIGTERM
        }
        wait_gone(self.pid);
    }

    /// Starts a server again on the same ports.
    pub fn restart(&mut self) {
        let again = Self::start_on(&self.repo, Some((self.grpc_port, self.http_port))).expect("restart");
        self.pid = again.pid;
        self.log = again.log.clone();
        std::mem::forget(again);
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(sig).arg(pid.to_string()).status();
}

/// PIDs of the direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat")).ok().is_some_and(|s| {
                s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok()) == Some(pid)
            })
        })
        .collect()
}

/// The process exists and is not a zombie (the server is not our child: init reaps it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"))
}

fn wait_gone(pid: u32) {
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for TritonServer {
    fn drop(&mut self) {
        let stubs = children(self.pid);
        signal(self.pid, "-TERM");
        for _ in 0..100 {
            if !alive(self.pid) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        signal(self.pid, "-KILL");
        for c in stubs {
            signal(c, "-KILL"); // stubs ignore SIGTERM
        }
    }
}
