//! `dtfsal forward` contract: reproduces the committed parity case; bad inputs and weights fail naming
//! the tensor.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::tensor_file::{read_tensors, write_tensors};
use safetensors::SafeTensors;
use safetensors::tensor::TensorView;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dtfsal-cli-forward-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn forward(weights: &Path, input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args(["forward", "--weights"])
        .arg(weights)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .expect("run dtfsal")
}

#[test]
fn reproduces_the_tiny_case_map_and_intermediates() {
    let out = tmp("sal.safetensors");
    let r = forward(&data("tiny-av.weights.safetensors"), &data("tiny-av.case.safetensors"), &out, &["--intermediates", "--threads", "2"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let got = read_tensors(&out).unwrap();
    let case = read_tensors(data("tiny-av.case.safetensors")).unwrap();
    let (a, b) = (&got["output/sal"], &case["output/sal"]);
    assert_eq!(a.shape(), &[1, 96, 160]);
    let max = a.data().iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(max <= 1e-5, "max |diff| {max}");
    for name in ["encoder/f4", "amfb/f1", "audio/te", "decoder/s2"] {
        assert_eq!(got[name].shape(), case[name].shape(), "{name}");
    }
}

#[test]
fn wrong_input_shape_names_the_tensor() {
    let mut case = read_tensors(data("tiny-av.case.safetensors")).unwrap();
    case.retain(|k, _| k.starts_with("input/"));
    case.insert("input/audio".into(), Tensor::zeros(&[1, 8, 1, 112, 192]));
    let input = tmp("bad-audio.safetensors");
    write_tensors(&input, &case, None).unwrap();
    let r = forward(&data("tiny-av.weights.safetensors"), &input, &tmp("o.safetensors"), &[]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("input/audio") && err.contains("[1, 8, 1, 112, 192]"), "{err}");

    case.remove("input/video");
    write_tensors(&input, &case, None).unwrap();
    let r = forward(&data("tiny-av.weights.safetensors"), &input, &tmp("o.safetensors"), &[]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("input/video: not found"));
}

#[test]
fn missing_weight_names_the_tensor() {
    let bytes = std::fs::read(data("tiny-av.weights.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let views: BTreeMap<String, TensorView> = st.tensors().into_iter().filter(|(k, _)| k != "amfb.1.score.bias").collect();
    let meta: Option<HashMap<String, String>> = meta.metadata().clone();
    let weights = tmp("missing.safetensors");
    safetensors::serialize_to_file(views, meta, &weights).unwrap();
    let r = forward(&weights, &data("tiny-av.case.safetensors"), &tmp("o.safetensors"), &[]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("amfb.1.score.bias"), "{err}");
}
