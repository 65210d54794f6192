//! `dtfsal triton-repo` (the repository the server loads) and `dtfsal predict --backend triton` against a
//! real Triton Inference Server on loopback (tests/triton/server.rs). The server tests skip with a message
//! only when the server is not installed.
use std::path::Path;

#[path = "../../tests/triton/server.rs"]
mod server;
use server::TritonServer;

mod common;
use common::{dtfsal, stderr};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn triton_repo_errors_name_the_file() {
    let dir = server::tempdir("cli-bad");
    // a weight file is not an ONNX model with dtfsal metadata
    let weights = server::demo_weights();
    let out = dtfsal(&["triton-repo", "--onnx", s(&weights), "--out", s(&dir)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(s(&weights)), "{}", stderr(&out));
    let out = dtfsal(&["triton-repo", "--onnx", "/nonexistent/m.onnx", "--out", s(&dir)]);
    assert!(!out.status.success() && stderr(&out).contains("/nonexistent/m.onnx"), "{}", stderr(&out));
}

#[test]
fn triton_repo_is_served_and_predict_runs_on_it() {
    if let Some(why) = server::missing() {
        eprintln!("SKIPPED triton_repo_is_served_and_predict_runs_on_it: {why}");
        return;
    }
    let onnx = server::exported_onnx(&server::demo_weights()).unwrap();
    let repo = server::tempdir("cli-repo");
    let out = dtfsal(&["triton-repo", "--onnx", s(&onnx), "--out", s(&repo), "--platform", "python", "--name", "sal", "--threads", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = std::fs::read_to_string(repo.join("sal/config.pbtxt")).unwrap();
    // the model config read back from the ONNX metadata
    assert!(config.contains("name: \"sal\"") && config.contains("dims: [ 1, 3, 32, 96, 160 ]"), "{config}");
    assert!(config.contains("\\\"name\\\":\\\"tiny\\\""), "{config}");
    assert!(repo.join("sal/1/model.onnx").is_file() && repo.join("sal/1/model.py").is_file());

    let srv = TritonServer::start(&repo).expect("server");
    let maps = server::tempdir("cli-maps");
    let out = dtfsal(&[
        "predict",
        "media/bigbuckbunny.mp4",
        "--backend",
        "triton",
        "--server-url",
        &srv.url(),
        "--model-name",
        "sal",
        "--interval",
        "16",
        "--out",
        s(&maps),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pngs = std::fs::read_dir(&maps).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png")).count();
    assert_eq!(pngs, 132, "one map per frame of the sample");
    // an unknown model name fails, naming it
    let out = dtfsal(&["predict", "media/bigbuckbunny.mp4", "--backend", "triton", "--server-url", &srv.url(), "--out", s(&maps)]);
    assert!(!out.status.success() && stderr(&out).contains("`dtfsal`"), "{}", stderr(&out));
}
