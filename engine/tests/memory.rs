//! Repeated predictions do not grow the process: buffers are freed or reused between calls.

use std::path::PathBuf;

use dtfsal_engine::model::{Backend, Clip, Model};
use dtfsal_engine::tensor_file::read_tensors;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn predict_does_not_grow_memory() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let model = Model::load_with_threads(data.join("tiny-av.weights.safetensors"), Backend::Cpu, 2).unwrap();
    let case = read_tensors(data.join("tiny-av.case.safetensors")).unwrap();
    let sq = |t: &dtfsal_engine::tensor::Tensor| t.clone().reshape(&t.shape()[1..]);
    let clip = Clip { video: sq(&case["input/video"]), audio: Some(sq(&case["input/audio"])) };
    drop(case);
    let first = model.predict(&clip).unwrap();
    model.predict(&clip).unwrap();
    let Some(warm) = rss_kib() else {
        eprintln!("SKIPPED: no /proc/self/status");
        return;
    };
    for _ in 0..8 {
        assert_eq!(model.predict(&clip).unwrap(), first, "predictions must be deterministic");
    }
    let after = rss_kib().unwrap();
    let growth = after as i64 - warm as i64;
    eprintln!("VmRSS warm {warm} KiB, after 8 more clips {after} KiB");
    assert!(growth < 8 * 1024, "RSS grew by {growth} KiB over 8 clips");
}
