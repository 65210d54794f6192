//! The full (paper-size) config on a fresh random case from the PyTorch model. Needs the python venv
//! (`DTFSAL_PYTHON`, set by scripts/test.sh, or python/.venv); skips with a message without it.
//! `DTFSAL_FULL_CASE_DIR` reuses an existing `full-av.{weights,case}.safetensors` pair instead.

mod common;

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DTFSAL_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join("python/.venv/bin/python"));
    p.is_file().then_some(p)
}

#[test]
fn full_av_matches_pytorch_reference() {
    let dir = match std::env::var_os("DTFSAL_FULL_CASE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let Some(py) = python() else {
                eprintln!("SKIPPED full_av_matches_pytorch_reference: no python venv (run scripts/setup.sh)");
                return;
            };
            let dir = std::env::temp_dir().join(format!("dtfsal-full-case-{}", std::process::id()));
            let st = Command::new(py)
                .args(["-m", "dtfsal.fixtures", "--config", "full", "--variant", "av", "--seed", "1", "--out-dir"])
                .arg(&dir)
                .env("PYTHONPATH", repo().join("python"))
                .status()
                .expect("run python");
            assert!(st.success(), "python -m dtfsal.fixtures failed");
            dir
        }
    };
    let checked = common::check_case(&dir.join("full-av.weights.safetensors"), &dir.join("full-av.case.safetensors"), 1e-5);
    assert!(checked >= 30, "only {checked} tensors compared");
    if std::env::var_os("DTFSAL_FULL_CASE_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
