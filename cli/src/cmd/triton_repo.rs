//! `dtfsal triton-repo`: a Triton Inference Server model repository for an exported DTFSal ONNX file.
//!
//! Writes `OUT/NAME/config.pbtxt` and `OUT/NAME/VERSION/` holding the model:
//! - `--platform onnxruntime` (production: Triton's ONNX Runtime backend, CPU or GPU, optionally its
//!   TensorRT accelerator with `--trt-fp16`): `model.onnx`;
//! - `--platform python` (Triton builds without the onnxruntime backend, like the CPU test server from
//!   the nvidia-pytriton wheel): `model.py`, which runs `model.onnx` beside it with the onnxruntime
//!   Python package.
//!
//! The config declares the exact tensors of the file (`video` [1,3,T,H,W], `audio` [1,9,1,112,192] for
//! AV models, output `sal` [1,H,W], `max_batch_size: 0`) and carries the model config JSON as the
//! parameter `dtfsal_config`, which the element's triton backend reads back with the ModelConfig RPC
//! to size its clips.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use dtfsal_engine::config::ModelConfig;

use super::onnx_meta;

/// The python-backend model (runs model.onnx with onnxruntime).
pub const MODEL_PY: &str = include_str!("triton_model.py");

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Triton's ONNX Runtime backend serves model.onnx (`platform: "onnxruntime_onnx"`).
    Onnxruntime,
    /// Triton's python backend runs model.py, which runs model.onnx with the onnxruntime package.
    Python,
}

#[derive(clap::Args)]
pub struct Args {
    /// The exported model (`python -m dtfsal.export_onnx`).
    #[arg(long)]
    pub onnx: PathBuf,
    /// Model repository directory (created; an existing model of the same name is replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Model name in the repository (the element's `model-name`).
    #[arg(long, default_value = "dtfsal")]
    pub name: String,
    /// Version directory.
    #[arg(long, default_value_t = 1)]
    pub version: u32,
    #[arg(long, value_enum, default_value = "onnxruntime")]
    pub platform: Platform,
    /// Model instances (parallel executions on the server).
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// Instances on GPUs (KIND_GPU) instead of CPUs.
    #[arg(long)]
    pub gpu: bool,
    /// ONNX Runtime intra-op threads per instance (0: its default).
    #[arg(long, default_value_t = 0)]
    pub threads: u32,
    /// `--platform onnxruntime --gpu`: run through ONNX Runtime's TensorRT execution provider in fp16.
    #[arg(long)]
    pub trt_fp16: bool,
}

/// The model config stored in the file's ONNX metadata.
pub fn onnx_config(path: &Path) -> anyhow::Result<ModelConfig> {
    let meta = onnx_meta::read(path)?;
    let json = meta.get("dtfsal_config").with_context(|| {
        format!("{}: no `dtfsal_config` in its metadata (export it with `python -m dtfsal.export_onnx`)", path.display())
    })?;
    ModelConfig::from_json(json).with_context(|| format!("{}: metadata `dtfsal_config`", path.display()))
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

/// The `config.pbtxt` text.
pub fn config_pbtxt(a: &Args, cfg: &ModelConfig) -> anyhow::Result<String> {
    if a.trt_fp16 && !(a.gpu && a.platform == Platform::Onnxruntime) {
        bail!("--trt-fp16 needs --platform onnxruntime --gpu");
    }
    let dims = |d: &[usize]| d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
    let mut s = String::new();
    writeln!(s, "# Written by `dtfsal triton-repo` for {} ({} {}).", a.onnx.display(), cfg.name, cfg.variant)?;
    writeln!(s, "name: {}", quote(&a.name))?;
    match a.platform {
        Platform::Onnxruntime => writeln!(s, "platform: \"onnxruntime_onnx\"")?,
        Platform::Python => writeln!(s, "backend: \"python\"")?,
    }
    writeln!(s, "max_batch_size: 0")?;
    writeln!(s, "input [")?;
    let video = dims(&[1, 3, cfg.clip_len, cfg.height, cfg.width]);
    write!(s, "  {{ name: \"video\" data_type: TYPE_FP32 dims: [ {video} ] }}")?;
    if cfg.variant.has_audio() {
        let audio = dims(&[1, cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width]);
        write!(s, ",\n  {{ name: \"audio\" data_type: TYPE_FP32 dims: [ {audio} ] }}")?;
    }
    writeln!(s, "\n]")?;
    writeln!(s, "output [\n  {{ name: \"sal\" data_type: TYPE_FP32 dims: [ {} ] }}\n]", dims(&[1, cfg.height, cfg.width]))?;
    let kind = if a.gpu { "KIND_GPU" } else { "KIND_CPU" };
    writeln!(s, "instance_group [ {{ kind: {kind} count: {} }} ]", a.instances)?;
    let threads_key = match a.platform {
        Platform::Onnxruntime => "intra_op_thread_count",
        Platform::Python => "intra_op_threads",
    };
    writeln!(s, "parameters [")?;
    writeln!(s, "  {{ key: \"dtfsal_config\" value: {{ string_value: {} }} }},", quote(&cfg.to_json()))?;
    writeln!(s, "  {{ key: \"{threads_key}\" value: {{ string_value: \"{}\" }} }}", a.threads)?;
    writeln!(s, "]")?;
    if a.trt_fp16 {
        writeln!(
            s,
            "optimization {{ execution_accelerators {{ gpu_execution_accelerator: [ {{ name: \"tensorrt\" \
             parameters {{ key: \"precision_mode\" value: \"FP16\" }} }} ] }} }}"
        )?;
    }
    Ok(s)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.name.is_empty() || a.name.contains(['/', '\\']) || a.name == "." || a.name == ".." {
        bail!("--name {:?}: not a valid model directory name", a.name);
    }
    let cfg = onnx_config(&a.onnx)?;
    let config = config_pbtxt(&a, &cfg)?;
    let model_dir = a.out.join(&a.name);
    let version_dir = model_dir.join(a.version.to_string());
    if model_dir.exists() {
        std::fs::remove_dir_all(&model_dir).with_context(|| format!("cannot replace {}", model_dir.display()))?;
    }
    std::fs::create_dir_all(&version_dir).with_context(|| format!("cannot create {}", version_dir.display()))?;
    std::fs::write(model_dir.join("config.pbtxt"), config)?;
    std::fs::copy(&a.onnx, version_dir.join("model.onnx"))
        .with_context(|| format!("cannot copy {} into {}", a.onnx.display(), version_dir.display()))?;
    if a.platform == Platform::Python {
        std::fs::write(version_dir.join("model.py"), MODEL_PY)?;
    }
    println!(
        "wrote {} ({} {} model `{}`, version {}, {:?} platform)",
        model_dir.display(),
        cfg.name,
        cfg.variant,
        a.name,
        a.version,
        a.platform
    );
    Ok(())
}
