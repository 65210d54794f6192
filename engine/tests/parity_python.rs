//! Fresh random cases from the PyTorch model: the full (paper-size) AV config, and the tiny visual-only
//! variant (the committed case is AV). Needs the python venv (`DTFSAL_PYTHON`, set by scripts/test.sh,
//! or python/.venv); skips with a message without it. `DTFSAL_FULL_CASE_DIR` reuses an existing
//! `full-av.{weights,case}.safetensors` pair instead of generating one.

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

/// Writes a fresh case with `python -m dtfsal.fixtures` into a temp dir; None (test skipped) without python.
fn generate(config: &str, variant: &str, test: &str) -> Option<PathBuf> {
    let Some(py) = python() else {
        eprintln!("SKIPPED {test}: no python venv (run scripts/setup.sh)");
        return None;
    };
    let dir = std::env::temp_dir().join(format!("dtfsal-{config}-{variant}-case-{}", std::process::id()));
    let st = Command::new(py)
        .args(["-m", "dtfsal.fixtures", "--config", config, "--variant", variant, "--seed", "1", "--out-dir"])
        .arg(&dir)
        .env("PYTHONPATH", repo().join("python"))
        .status()
        .expect("run python");
    assert!(st.success(), "python -m dtfsal.fixtures failed");
    Some(dir)
}

#[test]
fn tiny_v_matches_pytorch_reference() {
    let Some(dir) = generate("tiny", "v", "tiny_v_matches_pytorch_reference") else { return };
    let checked = common::check_case(&dir.join("tiny-v.weights.safetensors"), &dir.join("tiny-v.case.safetensors"), 1e-5);
    assert!(checked >= 15, "only {checked} tensors compared");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn full_av_matches_pytorch_reference() {
    let dir = match std::env::var_os("DTFSAL_FULL_CASE_DIR") {
        Some(d) => PathBuf::from(d),
        None => match generate("full", "av", "full_av_matches_pytorch_reference") {
            Some(d) => d,
            None => return,
        },
    };
    let checked = common::check_case(&dir.join("full-av.weights.safetensors"), &dir.join("full-av.case.safetensors"), 1e-5);
    assert!(checked >= 30, "only {checked} tensors compared");
    if std::env::var_os("DTFSAL_FULL_CASE_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
