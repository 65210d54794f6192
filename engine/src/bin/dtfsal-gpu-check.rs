//! `dtfsal-gpu-check`: a self-contained test + benchmark of the CUDA backend for a GPU machine with no
//! Rust toolchain (built by `scripts/gpu-check`, which also prints how to run it).
//!
//! ```text
//! dtfsal-gpu-check [--device N] [--out DIR] [--runs N] [--skip-full]
//! dtfsal-gpu-check --profile tiny|full [--precision fp32|fp16|both] [--runs N] [--warmup N] [--graphs]
//! ```
//! 1. the device, and whether the kernels came from the embedded fatbin or NVRTC;
//! 2. per-kernel parity of every CUDA op with its CPU twin (fp32 rel err <= 1e-4, fp16 GEMMs <= 1e-2);
//! 3. whole-model parity, CPU engine vs CUDA fp32 / fp16: the embedded tiny AV model and a full AV model
//!    with random weights (written to DIR/full-av.safetensors with its input DIR/full-av.input.safetensors,
//!    for `python -m dtfsal.bench_gpu` to time PyTorch on the same files);
//! 4. CUDA graphs and batches: per precision, a second model with graphs on, whose maps (the first clip
//!    eager, then replays on two other clips and the first again) must match the eager model's (rel err
//!    <= 1e-5: the same kernels with the same arguments); batches of 8 clips (`Model::predict_batch`, 8
//!    streams at once), eager and with graphs, against the same model clip by clip (<= 1e-5);
//!    The same for the candidate kernels (`CandidateKernels::ALL`, fp16: kernels not yet timed on a GPU):
//!    map vs the CPU engine, graph replays and batches; every other model runs the default kernels
//!    whatever the environment;
//! 5. timings: ms/clip (clip upload, forward, map download) one clip at a time, over 8 queued clips and
//!    as a batch of 8 on 8 streams; the forward pass alone on a clip already on the device (what
//!    `bench_gpu` times for PyTorch); each eager and with graphs; fp16 also with the candidate kernels.
//!
//! Everything is printed and written to DIR/gpu-check.json. Exit status 1 when a parity check fails.
//!
//! `--profile` only runs one config (random weights) `warmup + runs` times per precision, nothing else:
//! with `DTFSAL_PROFILE=1` each pass prints its per-stage times (the stream is synchronised at every
//! stage), and under `ncu` the kernels of those passes are all there is to see. `--graphs`: the passes
//! after the first are CUDA graph replays (for `nsys`; stage times need eager launches).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use dtfsal_engine::config::{ModelConfig, Variant};
use dtfsal_engine::model::cuda::CandidateKernels;
use dtfsal_engine::model::cuda::check::{self, Parity};
use dtfsal_engine::model::{Backend, Clip, Model};
use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::tensor_file::write_tensors;
use dtfsal_engine::weights::WeightFile;
use serde_json::{Value, json};

struct Args {
    device: usize,
    out: PathBuf,
    runs: usize,
    skip_full: bool,
    profile: Option<String>,
    precision: Vec<bool>,
    warmup: usize,
    graphs: bool,
}

fn args() -> Args {
    let mut a = Args { device: 0, out: PathBuf::from("gpu-check-out"), runs: 20, skip_full: false, profile: None, precision: vec![false, true], warmup: 3, graphs: false };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--device" => a.device = it.next().and_then(|v| v.parse().ok()).expect("--device N"),
            "--out" => a.out = it.next().map(PathBuf::from).expect("--out DIR"),
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--skip-full" => a.skip_full = true,
            "--graphs" => a.graphs = true,
            "--profile" => a.profile = Some(it.next().expect("--profile tiny|full")),
            "--warmup" => a.warmup = it.next().and_then(|v| v.parse().ok()).expect("--warmup N"),
            "--precision" => {
                a.precision = match it.next().as_deref() {
                    Some("fp32") => vec![false],
                    Some("fp16") => vec![true],
                    Some("both") => vec![false, true],
                    _ => panic!("--precision fp32|fp16|both"),
                }
            }
            "-h" | "--help" => {
                println!("dtfsal-gpu-check [--device N] [--out DIR] [--runs N] [--skip-full]");
                println!("dtfsal-gpu-check --profile tiny|full [--precision fp32|fp16|both] [--runs N] [--warmup N] [--graphs]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn parity_json(p: &Parity) -> Value {
    json!({"name": p.name, "fp16": p.fp16, "rel_err": p.rel_err, "max_abs": p.max_abs, "tol": p.tol, "ok": p.ok()})
}

fn print_parity(p: &Parity) {
    println!("  {:<52} rel err {:>10.3e}  (max |d| {:>9.3e}, tol {:.0e})  {}", p.name, p.rel_err, p.max_abs, p.tol, if p.ok() { "ok" } else { "FAIL" });
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Milliseconds of each of `runs` calls of `f`.
fn timed(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

/// ms per clip one at a time (median of `runs`) and over 8 queued clips (mean).
fn time_model(model: &Model, clip: &Clip, runs: usize) -> (f64, f64, f64) {
    for _ in 0..3 {
        model.predict(clip).expect("warm-up");
    }
    let mut t = timed(runs, || {
        model.predict(clip).expect("predict");
    });
    let min = t.iter().cloned().fold(f64::INFINITY, f64::min);
    let s = Instant::now();
    for _ in 0..8 {
        model.predict(clip).expect("predict");
    }
    (median(&mut t), min, s.elapsed().as_secs_f64() * 1e3 / 8.0)
}

/// Maps of a graphs-on model against the eager model's: the first clip runs eagerly and is captured,
/// the next ones are replays (a second clip, a third, the first again: stale inputs would show).
fn graph_parity(name: &str, label: &str, eager: &Model, graphs: &Model, clips: &[Clip]) -> Vec<Parity> {
    let mut out = vec![];
    for (i, clip) in clips.iter().chain(clips.first()).enumerate() {
        let want = eager.predict(clip).expect("eager predict").data;
        let got = graphs.predict(clip).expect("graph predict").data;
        let what = if i == 0 { "eager + capture" } else { "replay" };
        let mut p = Parity::new(&format!("model {name}: {label} graphs vs eager, clip {i} ({what})"), false, &got, &want);
        p.tol = GRAPH_TOL;
        out.push(p);
    }
    out
}

/// A batch of `clips` (each on its own stream, up to 8 at once) against the same model's clip-by-clip
/// maps: streams share weights and the memory pool, nothing else.
fn batch_parity(name: &str, label: &str, m: &Model, clips: &[Clip]) -> Parity {
    let want: Vec<f32> = clips.iter().flat_map(|c| m.predict(c).expect("predict").data).collect();
    let got: Vec<f32> = m.predict_batch(clips).expect("predict_batch").into_iter().flat_map(|s| s.data).collect();
    let mut p = Parity::new(&format!("model {name}: {label} batch of {} vs one by one", clips.len()), false, &got, &want);
    p.tol = GRAPH_TOL;
    p
}

/// ms per clip of `predict_batch` over `clips` (median of `runs` batches, after two warm-up batches).
fn time_batch(m: &Model, clips: &[Clip], runs: usize) -> f64 {
    for _ in 0..2 {
        m.predict_batch(clips).expect("warm-up batch");
    }
    let mut t = timed(runs, || {
        m.predict_batch(clips).expect("predict_batch");
    });
    median(&mut t) / clips.len() as f64
}

/// A replay runs the captured kernels with their captured arguments: only a different cuBLAS algorithm
/// choice under capture could move the map at all.
const GRAPH_TOL: f64 = 1e-5;

fn model_parity(name: &str, cpu: &Model, gpu32: &Model, gpu16: &Model, clip: &Clip) -> Vec<Parity> {
    let want = cpu.predict(clip).expect("cpu predict").data;
    let a = gpu32.predict(clip).expect("cuda predict").data;
    let b = gpu16.predict(clip).expect("cuda fp16 predict").data;
    vec![Parity::new(&format!("model {name}: map, cuda fp32 vs cpu"), false, &a, &want), Parity::new(&format!("model {name}: map, cuda fp16 vs cpu"), true, &b, &want)]
}

/// `--profile`: one config, random weights, `warmup + runs` passes per precision, each timed.
fn profile(a: &Args, config: &str) {
    let cfg = match config {
        "tiny" => ModelConfig::tiny(Variant::AudioVisual),
        "full" => ModelConfig::full(Variant::AudioVisual),
        other => panic!("--profile tiny|full, not {other}"),
    };
    let path = a.out.join(format!("{}-av.safetensors", cfg.name));
    check::write_random_weights(&cfg, 42, &path).expect("write weights");
    let clip = check::random_clip(&cfg, 7);
    for &fp16 in &a.precision {
        let m = Model::from_weight_file_with_graphs(WeightFile::open(&path).expect("weights"), Backend::Cuda { device: a.device, fp16 }, 0, a.graphs).expect("cuda model");
        assert!(m.backend().starts_with("cuda"), "the cuda backend fell back to the CPU");
        for i in 0..a.warmup + a.runs {
            eprintln!("== {} {} pass {i}{}", cfg.name, m.backend(), if i < a.warmup { " (warm-up)" } else { "" });
            let s = Instant::now();
            m.predict(&clip).expect("predict");
            eprintln!("== {:.3} ms", s.elapsed().as_secs_f64() * 1e3);
        }
    }
}

/// The candidate kernels a CUDA model loaded after this call uses.
fn set_candidates(c: CandidateKernels) {
    // SAFETY: called from main's thread only, before or between model loads; no other thread of this
    // process reads or writes the environment at those points.
    unsafe { c.export() };
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.out).expect("create --out");
    if let Some(config) = &a.profile {
        profile(&a, config);
        return;
    }
    // the default kernels for every model but the candidate ones
    set_candidates(CandidateKernels::default());
    let mut report = serde_json::Map::new();
    let mut failed = 0usize;
    println!("dtfsal-gpu-check: fatbin embedded: {} (nvcc: {:?})", dtfsal_kernels::source::fatbin_embedded(), dtfsal_kernels::source::FATBIN_NVCC);
    match dtfsal_kernels::device_count() {
        Ok(n) => println!("CUDA devices: {n}"),
        Err(e) => {
            println!("no usable CUDA device: {e}");
            std::process::exit(2);
        }
    }
    // 1 + 2: per-kernel parity
    let mut kernels = vec![];
    for fp16 in [false, true] {
        println!("per-kernel parity vs the CPU engine ({}):", if fp16 { "fp16 GEMM operands" } else { "fp32" });
        let rows = check::kernel_parity(a.device, fp16).unwrap_or_else(|e| panic!("kernel parity: {e}"));
        for p in rows.iter().filter(|p| !fp16 || p.fp16) {
            print_parity(p);
            failed += !p.ok() as usize;
            kernels.push(parity_json(p));
        }
    }
    report.insert("kernels".into(), Value::Array(kernels));
    // 3: whole-model parity; 4: timings
    let mut models = vec![];
    let mut bench = vec![];
    let mut configs: Vec<(&str, Option<ModelConfig>)> = vec![("tiny-embedded", None), ("tiny-random", Some(ModelConfig::tiny(Variant::AudioVisual)))];
    if !a.skip_full {
        configs.push(("full-random", Some(ModelConfig::full(Variant::AudioVisual))));
    }
    for (name, cfg) in configs {
        let open = || -> WeightFile {
            match &cfg {
                None => dtfsal_engine::default_model::weight_file().expect("embedded model"),
                Some(c) => WeightFile::open(a.out.join(format!("{}-av.safetensors", c.name))).expect("weights"),
            }
        };
        if let Some(c) = &cfg {
            check::write_random_weights(c, 42, &a.out.join(format!("{}-av.safetensors", c.name))).expect("write weights");
        }
        let cfg_real = open().config().clone();
        let clip = check::random_clip(&cfg_real, 7);
        if cfg.is_some() {
            let mut t = BTreeMap::new();
            let v = clip.video.clone();
            let s = v.shape().to_vec();
            t.insert("input/video".to_string(), v.reshape(&[1, s[0], s[1], s[2], s[3]]));
            if let Some(au) = &clip.audio {
                let s = au.shape().to_vec();
                t.insert("input/audio".to_string(), Tensor::from_vec(&[1, s[0], s[1], s[2], s[3]], au.data().to_vec()));
            }
            write_tensors(a.out.join(format!("{}-av.input.safetensors", cfg_real.name)), &t, None).expect("write input");
        }
        let cpu = Model::from_weight_file(open(), Backend::Cpu, 0).expect("cpu model");
        let t0 = Instant::now();
        // eager models (every kernel launched) next to the graph ones, whatever the environment says
        let eager = |fp16| Model::from_weight_file_with_graphs(open(), Backend::Cuda { device: a.device, fp16 }, 0, false).expect("cuda model");
        let g32 = eager(false);
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        let g16 = eager(true);
        assert_eq!(g32.backend(), "cuda", "the cuda backend fell back to the CPU");
        let graphed = |fp16| Model::from_weight_file_with_graphs(open(), Backend::Cuda { device: a.device, fp16 }, 0, true).expect("cuda model with graphs");
        let (gg32, gg16) = (graphed(false), graphed(true));
        // the candidate kernels (not yet timed on a GPU, off by default), fp16: eager and with graphs
        let candidate = |graphs| {
            set_candidates(CandidateKernels::ALL);
            let m = Model::from_weight_file_with_graphs(open(), Backend::Cuda { device: a.device, fp16: true }, 0, graphs).expect("cuda model, candidate kernels");
            set_candidates(CandidateKernels::default());
            m
        };
        let (c16e, c16g) = (candidate(false), candidate(true));
        if name == "tiny-embedded" {
            println!("device: {}", g32.device_name().unwrap_or("?"));
            report.insert("device".into(), json!(g32.device_name()));
        }
        println!("model parity, {name} ({}x{}x{}):", cfg_real.clip_len, cfg_real.height, cfg_real.width);
        let mut record = |p: Parity| {
            print_parity(&p);
            failed += !p.ok() as usize;
            models.push(parity_json(&p));
        };
        model_parity(name, &cpu, &g32, &g16, &clip).into_iter().for_each(&mut record);
        let want = cpu.predict(&clip).expect("cpu predict").data;
        record(Parity::new(&format!("model {name}: map, cuda fp16 candidate kernels vs cpu"), true, &c16e.predict(&clip).expect("candidate predict").data, &want));
        let more = [clip.clone(), check::random_clip(&cfg_real, 8), check::random_clip(&cfg_real, 9)];
        let batch: Vec<Clip> = (0..8).map(|i| check::random_clip(&cfg_real, 20 + i)).collect();
        let mut captures_failed = 0;
        for (label, eager, graphs) in [("fp32", &g32, &gg32), ("fp16", &g16, &gg16), ("fp16 candidates", &c16e, &c16g)] {
            graph_parity(name, label, eager, graphs, &more).into_iter().for_each(&mut record);
            // batches after the single clips: the graph models' lanes capture their own graphs here
            for (kind, m) in [("eager", eager), ("graphs", graphs)] {
                record(batch_parity(name, &format!("{label} {kind}"), m, &batch));
            }
            let on = graphs.cuda_net().expect("cuda").graphs();
            println!("  {name} {label}: graphs {}", if on { "captured and replayed" } else { "FAILED to capture (see the warning above)" });
            captures_failed += !on as usize;
        }
        failed += captures_failed;
        if name == "tiny-embedded" {
            continue;
        }
        let s = Instant::now();
        cpu.predict(&clip).expect("cpu");
        let cpu_ms = s.elapsed().as_secs_f64() * 1e3;
        let runs = if cfg_real.name == "full" { a.runs.min(20) } else { a.runs };
        for (label, m) in [("cuda-fp32", &g32), ("cuda-fp16", &g16), ("cuda-fp32-graph", &gg32), ("cuda-fp16-graph", &gg16), ("cuda-fp16-cand", &c16e), ("cuda-fp16-cand-graph", &c16g)] {
            let (med, min, q8) = time_model(m, &clip, runs);
            let b8 = time_batch(m, &batch, runs.div_ceil(4).max(3));
            let resident = median(&mut m.cuda_net().expect("cuda").time_resident(&clip, runs).expect("resident timing"));
            println!("  bench {:<12} {:<10} {:>8.2} ms/clip (min {:.2}; {:.1} clips/s) | 8 queued clips: {:>8.2} ms/clip ({:.1} clips/s) | batch of 8 (8 streams): {:>8.2} ms/clip ({:.1} clips/s) | on-device forward {:.2} ms | cpu engine {:.0} ms, cuda load {:.0} ms",
                cfg_real.name, label, med, min, 1e3 / med, q8, 1e3 / q8, b8, 1e3 / b8, resident, cpu_ms, load_ms);
            bench.push(json!({"config": cfg_real.name, "backend": label, "median_ms": med, "min_ms": min, "clips_per_s": 1e3 / med,
                "queued8_ms_per_clip": q8, "queued8_clips_per_s": 1e3 / q8, "batch8_ms_per_clip": b8, "batch8_clips_per_s": 1e3 / b8, "resident_forward_ms": resident, "runs": runs, "cpu_engine_ms": cpu_ms, "load_ms": load_ms}));
        }
    }
    report.insert("models".into(), Value::Array(models));
    report.insert("bench".into(), Value::Array(bench));
    report.insert("failed".into(), json!(failed));
    std::fs::write(a.out.join("gpu-check.json"), serde_json::to_string_pretty(&Value::Object(report)).unwrap()).expect("write json");
    println!("{}", if failed == 0 { "gpu-check: all parity checks passed".to_string() } else { format!("gpu-check: {failed} parity checks FAILED") });
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
