//! `dtfsal bench` on the tiny config, engine only: the JSON report has a positive median and peak RSS.
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn out_path() -> PathBuf {
    std::env::temp_dir().join(format!("dtfsal-cli-bench-{}.json", std::process::id()))
}

#[test]
fn bench_tiny_engine_only_writes_json() {
    let out = out_path();
    let run = Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args([
            "bench",
            "--config",
            "tiny",
            "--runs",
            "1",
            "--warmup",
            "0",
            "--no-python",
            "--json",
        ])
        .arg(&out)
        .output()
        .expect("runs dtfsal");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "dtfsal bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("tiny") && stdout.contains("engine ms/clip"),
        "no table:\n{stdout}"
    );

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("JSON written"))
        .expect("valid JSON");
    let _ = std::fs::remove_file(&out);
    let results = doc["results"].as_array().expect("results array");
    assert_eq!(results.len(), 1, "{doc:#}");
    let r = &results[0];
    assert_eq!(r["config"], "tiny");
    assert_eq!(r["variant"], "av");
    assert_eq!(r["threads"], 2);
    assert_eq!(r["runs"], 1);
    let engine = &r["engine"];
    let median = engine["median_ms"].as_f64().expect("engine median");
    assert!(median > 0.0, "{engine:#}");
    assert!(engine["min_ms"].as_f64().unwrap() > 0.0, "{engine:#}");
    assert!(engine["clips_per_s"].as_f64().unwrap() > 0.0, "{engine:#}");
    assert!(
        engine["peak_rss_mb"].as_f64().expect("peak RSS") > 1.0,
        "{engine:#}"
    );
    assert!(r["pytorch"].is_null() && r["speedup"].is_null(), "{r:#}");
}

#[test]
fn bench_rejects_zero_threads() {
    let run = Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args(["bench", "--config", "tiny", "--threads", "0", "--no-python"])
        .output()
        .expect("runs dtfsal");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--threads"));
}

/// `--backend cuda` times the CUDA engine on a GPU and, without one, the CPU engine it falls back to;
/// the report names the backend that ran and whether CUDA graphs replayed (on by default, off with
/// `--no-cuda-graphs`; never on the CPU engine).
#[test]
fn bench_cuda_backend_reports_what_ran() {
    for graphs_flag in [None, Some("--no-cuda-graphs")] {
        let out = std::env::temp_dir().join(format!("dtfsal-cli-bench-cuda-{}.json", std::process::id()));
        let run = Command::new(env!("CARGO_BIN_EXE_dtfsal"))
            .args(["bench", "--config", "tiny", "--runs", "1", "--warmup", "0", "--no-python", "--backend", "cuda", "--fp16", "--json"])
            .arg(&out)
            .args(graphs_flag)
            .output()
            .expect("runs dtfsal");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "dtfsal bench --backend cuda failed\nstderr:\n{stderr}");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("JSON written")).expect("valid JSON");
        let _ = std::fs::remove_file(&out);
        let backend = doc["results"][0]["engine"]["backend"].as_str().expect("backend named").to_string();
        let graphs = doc["results"][0]["engine"]["cuda_graphs"].as_bool().expect("cuda_graphs reported");
        assert_eq!(graphs, dtfsal_engine::kernels::cuda_available() && graphs_flag.is_none(), "{graphs_flag:?}");
        if dtfsal_engine::kernels::cuda_available() {
            assert_eq!(backend, "cuda-fp16");
        } else {
            assert_eq!(backend, "cpu");
            assert!(stderr.contains("cuda backend unavailable"), "no fallback warning:\n{stderr}");
        }
    }
}
