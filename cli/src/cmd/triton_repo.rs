//! `dtfsal triton-repo`: a Triton Inference Server model repository for an exported DTFSal ONNX file
//! (`dtfsal_engine::triton_repo` writes it; the model config comes from the file's ONNX metadata).
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use dtfsal_engine::config::ModelConfig;
use dtfsal_engine::triton_repo::{self, RepoOptions};

use super::onnx_meta;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Platform {
    /// Triton's ONNX Runtime backend serves model.onnx (`platform: "onnxruntime_onnx"`).
    Onnxruntime,
    /// Triton's python backend runs model.py, which runs model.onnx with the onnxruntime package
    /// (servers without the onnxruntime backend, e.g. the nvidia-pytriton wheel's CPU server).
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

pub fn run(a: Args) -> anyhow::Result<()> {
    let cfg = onnx_config(&a.onnx)?;
    let o = RepoOptions {
        name: a.name.clone(),
        version: a.version,
        platform: match a.platform {
            Platform::Onnxruntime => triton_repo::Platform::Onnxruntime,
            Platform::Python => triton_repo::Platform::Python,
        },
        instances: a.instances,
        gpu: a.gpu,
        threads: a.threads,
        trt_fp16: a.trt_fp16,
    };
    let dir = triton_repo::write(&a.out, &a.onnx, &cfg, &o).map_err(|e| anyhow!(e))?;
    println!("wrote {} ({} {} model `{}`, version {}, {:?} platform)", dir.display(), cfg.name, cfg.variant, a.name, a.version, a.platform);
    Ok(())
}
