//! `dtfsal bench-triton`: what the Triton backend costs per clip against the local CPU engine, and what
//! one server gives several pipelines at once.
//!
//! Model round trips only (no decoding): a deterministic clip of the served model's config is
//! 1. predicted `--runs` times by the local CPU engine (`--weights`, default the embedded demo model; it
//!    should be the model the server holds, e.g. from `dtfsal triton-repo` on its ONNX export),
//! 2. sent `--runs` times to the server, one request at a time (the per-clip round trip),
//! 3. sent `--runs` times by each of `--streams` clients at once, each with its own connection (the
//!    element's `backend=triton` with max-in-flight 1 in that many pipelines): aggregate clips/s.
//!
//! Also checks the server's map against the local one (max |diff|). Prints one JSON object.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use dtfsal_engine::model::{Backend, Clip, Model, TritonOptions};
use dtfsal_engine::tensor::Tensor;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// gRPC endpoint of the Triton server.
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub server_url: String,
    #[arg(long, default_value = "dtfsal")]
    pub model_name: String,
    #[arg(long, default_value = "")]
    pub model_version: String,
    /// The same model for the local CPU engine (default: the embedded demo model).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Local engine threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timed clips per measurement (after one warm-up clip).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Concurrent clients for the throughput measurement.
    #[arg(long, default_value_t = 4)]
    pub streams: usize,
    /// Also write the JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn clip(cfg: &dtfsal_engine::config::ModelConfig) -> Clip {
    let n = 3 * cfg.clip_len * cfg.height * cfg.width;
    let video = (0..n).map(|i| (i as f32 * 0.013).sin() * 1.5).collect();
    let a = cfg.audio_slices * cfg.audio_height * cfg.audio_width;
    let audio = (0..a).map(|i| (i as f32 * 0.007).cos() * 2.0 - 3.0).collect();
    Clip {
        video: Tensor::from_vec(&[3, cfg.clip_len, cfg.height, cfg.width], video),
        audio: cfg.variant.has_audio().then(|| Tensor::from_vec(&[cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width], audio)),
    }
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn time(model: &Model, clip: &Clip, runs: usize) -> anyhow::Result<Vec<Duration>> {
    model.predict(clip)?;
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            model.predict(clip)?;
            Ok(t.elapsed())
        })
        .collect()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let opts = TritonOptions {
        url: a.server_url.clone(),
        model: a.model_name.clone(),
        version: a.model_version.clone(),
        timeout: Duration::from_secs(120),
    };
    let remote = Model::load_triton(&opts)?;
    let local = match &a.weights {
        Some(w) => Model::load_with_threads(w, Backend::Cpu, a.threads)?,
        None => Model::load_default(Backend::Cpu, a.threads)?,
    };
    anyhow::ensure!(remote.config() == local.config(), "the served model's config differs from the local model's");
    let c = clip(local.config());
    let (m_local, m_remote) = (local.predict(&c)?, remote.predict(&c)?);
    let max_diff = m_local.data.iter().zip(&m_remote.data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let runs = a.runs.max(1);
    let cpu = median_ms(time(&local, &c, runs)?);
    drop(local);
    let triton = median_ms(time(&remote, &c, runs)?);
    // throughput: one client (connection) per stream, all at once
    let clients: Vec<Model> = (0..a.streams.max(1)).map(|_| Model::load_triton(&opts)).collect::<Result<_, _>>()?;
    for m in &clients {
        m.predict(&c)?;
    }
    let start = Instant::now();
    let per_stream: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = clients.iter().map(|m| s.spawn(|| time_no_warmup(m, &c, runs))).collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect::<anyhow::Result<_>>()
    })?;
    let wall = start.elapsed().as_secs_f64();
    let all: Vec<Duration> = per_stream.into_iter().flatten().collect();
    let total = all.len();
    let cfg = remote.config();
    let out = json!({
        "model": format!("{} {}", cfg.name, cfg.variant),
        "server": opts.uri(),
        "runs": runs,
        "cpu_threads": a.threads,
        "cpu_engine_ms_per_clip": (cpu * 10.0).round() / 10.0,
        "triton_ms_per_clip": (triton * 10.0).round() / 10.0,
        "triton_overhead_ms_per_clip": ((triton - cpu) * 10.0).round() / 10.0,
        "triton_clips_per_s_one_stream": (1e3 / triton * 100.0).round() / 100.0,
        "streams": clients.len(),
        "streams_clips_per_s": (total as f64 / wall * 100.0).round() / 100.0,
        "streams_median_ms_per_clip": (median_ms(all) * 10.0).round() / 10.0,
        "max_abs_diff_triton_vs_cpu": max_diff,
    });
    let text = serde_json::to_string_pretty(&out)?;
    println!("{text}");
    if let Some(p) = &a.json {
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn time_no_warmup(model: &Model, clip: &Clip, runs: usize) -> anyhow::Result<Vec<Duration>> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            model.predict(clip)?;
            Ok(t.elapsed())
        })
        .collect()
}
