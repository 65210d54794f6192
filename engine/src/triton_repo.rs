//! Triton Inference Server model repositories for exported DTFSal ONNX files (`dtfsal triton-repo`).
//!
//! [`write`] creates `REPO/NAME/config.pbtxt` and `REPO/NAME/VERSION/` holding the model:
//! - [`Platform::Onnxruntime`] (production: Triton's ONNX Runtime backend on CPU or GPU, optionally its
//!   TensorRT accelerator in fp16): `model.onnx`;
//! - [`Platform::Python`] (Triton builds without the onnxruntime backend, like the CPU test server of the
//!   nvidia-pytriton wheel): `model.py` ([`MODEL_PY`]), which runs `model.onnx` beside it with the
//!   onnxruntime Python package.
//!
//! The config declares the file's exact tensors (`video` [1,3,T,H,W], `audio` [1,9,1,112,192] for AV
//! models, output `sal` [1,H,W], `max_batch_size: 0`) and carries the model config JSON as the parameter
//! `dtfsal_config`, which the triton backend reads back with the ModelConfig RPC to size its clips.
use std::path::{Path, PathBuf};

use crate::config::ModelConfig;

/// The python-backend model: runs model.onnx with onnxruntime's CPU provider.
pub const MODEL_PY: &str = include_str!("triton_model.py");

/// Which Triton backend serves the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Platform {
    /// Triton's ONNX Runtime backend serves model.onnx (`platform: "onnxruntime_onnx"`).
    #[default]
    Onnxruntime,
    /// Triton's python backend runs model.py, which runs model.onnx with the onnxruntime package.
    Python,
}

/// How to write the repository entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoOptions {
    /// Model name (directory and `name:`; the element's `model-name`).
    pub name: String,
    pub version: u32,
    pub platform: Platform,
    /// Model instances (parallel executions on the server).
    pub instances: u32,
    /// Instances on GPUs (KIND_GPU) instead of CPUs.
    pub gpu: bool,
    /// ONNX Runtime intra-op threads per instance (0: its default).
    pub threads: u32,
    /// Onnxruntime platform on GPUs: ONNX Runtime's TensorRT execution provider in fp16.
    pub trt_fp16: bool,
}

impl Default for RepoOptions {
    fn default() -> Self {
        Self { name: "dtfsal".into(), version: 1, platform: Platform::Onnxruntime, instances: 1, gpu: false, threads: 0, trt_fp16: false }
    }
}

/// A string as a protobuf text-format literal.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The `config.pbtxt` of a model with config `cfg`.
pub fn config_pbtxt(cfg: &ModelConfig, o: &RepoOptions) -> Result<String, String> {
    if o.trt_fp16 && !(o.gpu && o.platform == Platform::Onnxruntime) {
        return Err("TensorRT fp16 needs the onnxruntime platform on GPU instances".into());
    }
    if o.instances == 0 {
        return Err("a model needs at least one instance".into());
    }
    let dims = |d: &[usize]| d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
    let mut s = String::new();
    let w = |s: &mut String, line: String| {
        s.push_str(&line);
        s.push('\n');
    };
    w(&mut s, format!("# Written by `dtfsal triton-repo` ({} {} DTFSal).", cfg.name, cfg.variant));
    w(&mut s, format!("name: {}", quote(&o.name)));
    w(&mut s, match o.platform {
        Platform::Onnxruntime => "platform: \"onnxruntime_onnx\"".into(),
        Platform::Python => "backend: \"python\"".into(),
    });
    w(&mut s, "max_batch_size: 0".into());
    let mut inputs = vec![format!(
        "  {{ name: \"video\" data_type: TYPE_FP32 dims: [ {} ] }}",
        dims(&[1, 3, cfg.clip_len, cfg.height, cfg.width])
    )];
    if cfg.variant.has_audio() {
        inputs.push(format!(
            "  {{ name: \"audio\" data_type: TYPE_FP32 dims: [ {} ] }}",
            dims(&[1, cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width])
        ));
    }
    w(&mut s, format!("input [\n{}\n]", inputs.join(",\n")));
    w(&mut s, format!("output [\n  {{ name: \"sal\" data_type: TYPE_FP32 dims: [ {} ] }}\n]", dims(&[1, cfg.height, cfg.width])));
    let kind = if o.gpu { "KIND_GPU" } else { "KIND_CPU" };
    w(&mut s, format!("instance_group [ {{ kind: {kind} count: {} }} ]", o.instances));
    let threads_key = match o.platform {
        Platform::Onnxruntime => "intra_op_thread_count",
        Platform::Python => "intra_op_threads",
    };
    w(&mut s, "parameters [".into());
    w(&mut s, format!("  {{ key: \"dtfsal_config\" value: {{ string_value: {} }} }},", quote(&cfg.to_json())));
    w(&mut s, format!("  {{ key: \"{threads_key}\" value: {{ string_value: \"{}\" }} }}", o.threads));
    w(&mut s, "]".into());
    if o.trt_fp16 {
        w(
            &mut s,
            "optimization { execution_accelerators { gpu_execution_accelerator: [ { name: \"tensorrt\" \
             parameters { key: \"precision_mode\" value: \"FP16\" } } ] } }"
                .into(),
        );
    }
    Ok(s)
}

/// Writes the entry for the exported file `onnx` (config `cfg`) under `repo`, replacing an existing
/// model of the same name. Returns the model directory.
pub fn write(repo: &Path, onnx: &Path, cfg: &ModelConfig, o: &RepoOptions) -> Result<PathBuf, String> {
    if o.name.is_empty() || o.name.contains(['/', '\\']) || o.name == "." || o.name == ".." {
        return Err(format!("model name {:?}: not a valid directory name", o.name));
    }
    let config = config_pbtxt(cfg, o)?;
    let model_dir = repo.join(&o.name);
    let version_dir = model_dir.join(o.version.to_string());
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    if model_dir.exists() {
        std::fs::remove_dir_all(&model_dir).map_err(|e| io("cannot replace", &model_dir, e))?;
    }
    std::fs::create_dir_all(&version_dir).map_err(|e| io("cannot create", &version_dir, e))?;
    let cp = model_dir.join("config.pbtxt");
    std::fs::write(&cp, config).map_err(|e| io("cannot write", &cp, e))?;
    std::fs::copy(onnx, version_dir.join("model.onnx")).map_err(|e| io("cannot copy", onnx, e))?;
    if o.platform == Platform::Python {
        let py = version_dir.join("model.py");
        std::fs::write(&py, MODEL_PY).map_err(|e| io("cannot write", &py, e))?;
    }
    Ok(model_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Variant;

    #[test]
    fn config_declares_the_tensors_and_carries_the_model_config() {
        let cfg = ModelConfig::tiny(Variant::AudioVisual);
        let o = RepoOptions { platform: Platform::Python, threads: 2, ..Default::default() };
        let s = config_pbtxt(&cfg, &o).unwrap();
        assert!(s.contains("backend: \"python\""), "{s}");
        assert!(s.contains("name: \"video\" data_type: TYPE_FP32 dims: [ 1, 3, 32, 96, 160 ]"), "{s}");
        assert!(s.contains("name: \"audio\" data_type: TYPE_FP32 dims: [ 1, 9, 1, 112, 192 ]"), "{s}");
        assert!(s.contains("name: \"sal\" data_type: TYPE_FP32 dims: [ 1, 96, 160 ]"), "{s}");
        assert!(s.contains("key: \"intra_op_threads\" value: { string_value: \"2\" }"), "{s}");
        // the JSON survives text-format quoting
        let line = s.lines().find(|l| l.contains("dtfsal_config")).unwrap();
        let lit = &line[line.find("string_value: \"").unwrap() + 15..line.rfind("\" }").unwrap()];
        let json = lit.replace("\\\"", "\"").replace("\\\\", "\\");
        assert_eq!(ModelConfig::from_json(&json).unwrap(), cfg);

        let v = config_pbtxt(&ModelConfig::tiny(Variant::Visual), &RepoOptions::default()).unwrap();
        assert!(v.contains("platform: \"onnxruntime_onnx\"") && !v.contains("\"audio\""), "{v}");
        assert!(config_pbtxt(&cfg, &RepoOptions { trt_fp16: true, ..Default::default() }).is_err());
        let trt = config_pbtxt(&cfg, &RepoOptions { trt_fp16: true, gpu: true, ..Default::default() }).unwrap();
        assert!(trt.contains("KIND_GPU") && trt.contains("precision_mode"), "{trt}");
    }
}
