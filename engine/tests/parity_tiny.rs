//! The CPU engine reproduces the committed tiny parity case (tests/data, written by
//! `python -m dtfsal.fixtures --config tiny`): every intermediate to rtol 1e-4 / atol 1e-5, the map to 1e-5.

mod common;

use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(name)
}

#[test]
fn tiny_av_matches_pytorch_reference() {
    let checked = common::check_case(&data("tiny-av.weights.safetensors"), &data("tiny-av.case.safetensors"), 1e-5);
    assert!(checked >= 25, "only {checked} tensors compared");
}
