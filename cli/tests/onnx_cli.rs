//! `dtfsal predict --backend onnx` and `dtfsal bench --onnx`: flags and error paths (no ONNX Runtime
//! needed; the backend itself is checked in engine/tests/onnx_backend.rs).

mod common;
use common::{dtfsal, stderr};

#[test]
fn predict_help_lists_the_onnx_flags() {
    let out = dtfsal(&["predict", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--backend", "--onnx-provider", "--trt-fp16", "--trt-cache-dir", "--trt-workspace-mb", "tensorrt"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let out = dtfsal(&["bench", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("--onnx"));
}

#[test]
fn predict_onnx_needs_an_exported_model() {
    let out = dtfsal(&["predict", "media/bigbuckbunny.mp4", "--backend", "onnx"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--weights M.onnx"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("maps");
    let out = dtfsal(&[
        "predict",
        "media/bigbuckbunny.mp4",
        "--backend",
        "onnx",
        "--weights",
        "tests/data/tiny-av.weights.safetensors",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("export_onnx"), "{}", stderr(&out));
}
