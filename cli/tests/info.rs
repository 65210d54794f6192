//! `dtfsal info` on a tiny valid weight file and on one with a tensor missing.
use std::path::PathBuf;
use std::process::Command;

use dtfsal_engine::config::{ModelConfig, Variant};
use dtfsal_engine::weights::{Part, StorageDtype, expected_tensors, to_bytes};

/// A small audio-visual config: same structure as `full`, tiny widths, so files stay a few MB.
fn tiny_config() -> ModelConfig {
    ModelConfig {
        name: "tiny".into(),
        embed_dim: 16,
        stage_depths: [1, 1, 1, 1],
        stage_heads: [1, 1, 1, 1],
        neck_dim: 16,
        token_size: [3, 5],
        height: 96,
        width: 160,
        mvit_spatial_size: [96, 96],
        decoder_dims: [8, 4, 2],
        vggish_channels: [4, 4, 8, 8, 8, 8],
        te_dim_head: 4,
        te_mlp_dim: 8,
        ..ModelConfig::full(Variant::AudioVisual)
    }
}

/// Writes a weight file with every expected tensor except `skip`, all zeros, stored as F16.
fn write_weights(tag: &str, skip: Option<&str>) -> PathBuf {
    let config = tiny_config();
    config.validate().expect("tiny config is valid");
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = expected_tensors(&config)
        .into_iter()
        .filter(|(name, _)| Some(name.as_str()) != skip)
        .map(|(name, shape)| {
            let numel = shape.iter().product();
            (name, shape, vec![0.0; numel])
        })
        .collect();
    let bytes = to_bytes(
        &config,
        Part::Model,
        tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())),
        StorageDtype::F16,
    )
    .expect("serialises");
    let path = std::env::temp_dir().join(format!(
        "dtfsal-cli-info-{}-{tag}.safetensors",
        std::process::id()
    ));
    std::fs::write(&path, bytes).expect("writes temp file");
    path
}

fn info(path: &PathBuf) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dtfsal"))
        .args(["info", "--weights"])
        .arg(path)
        .output()
        .expect("dtfsal runs")
}

#[test]
fn info_accepts_a_complete_file() {
    let path = write_weights("ok", None);
    let out = info(&path);
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tiny (variant av)"), "{stdout}");
    assert!(stdout.contains("96x160"), "{stdout}");
    assert!(stdout.contains("F16"), "{stdout}");
    assert!(stdout.contains("check:       ok"), "{stdout}");
}

#[test]
fn info_names_a_missing_tensor() {
    let missing = "encoder.mvit.blocks.2.attn.rel_pos_t";
    let path = write_weights("missing", Some(missing));
    let out = info(&path);
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(missing), "stderr:\n{stderr}");
    assert!(stderr.contains("1 missing"), "stderr:\n{stderr}");
}

#[test]
fn info_reports_a_missing_file() {
    let path = std::env::temp_dir().join("dtfsal-cli-info-does-not-exist.safetensors");
    let out = info(&path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn info_without_weights_describes_the_embedded_model() {
    let out = Command::new(env!("CARGO_BIN_EXE_dtfsal")).arg("info").output().expect("dtfsal runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("(embedded)"), "{stdout}");
    assert!(stdout.contains("tiny (variant av)"), "{stdout}");
    assert!(stdout.contains("check:       ok"), "{stdout}");
}
