//! `dtfsal bench`: time the CPU engine against the PyTorch reference on the same weights, the same
//! clip and the same number of threads.
//!
//! For each config (`tiny`, `full`) the command writes a weight file with deterministic
//! pseudo-random values (or uses `--weights`) and a deterministic random clip, then
//! - times the engine in a child process (this binary re-executed with a hidden `--child` flag), so
//!   the peak RSS it reports (`VmHWM` of `/proc/self/status`) belongs to that config alone, and
//! - times PyTorch with `python -m dtfsal.bench` on the same files (skipped with a note when the
//!   python venv is missing or `--no-python` is given), and
//! - with `--onnx`, exports the same weights with `python -m dtfsal.export_onnx` and times ONNX Runtime's
//!   CPU provider on them in a child process (the engine's `onnx` backend: intra-op threads = `--threads`,
//!   inter-op 1; the library from `ORT_DYLIB_PATH`, else the venv's `onnxruntime` wheel).
//!
//! Prints a table (median / min ms per clip, clips/s, peak RSS, speed-up = PyTorch median / engine
//! median) and, with `--json`, writes the same as JSON. This is a benchmark, not a test: numbers
//! depend on the machine and on whatever else runs on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use dtfsal_engine::config::{ModelConfig, Variant};
use dtfsal_engine::model::{Backend, Clip, Model, OnnxProvider, cuda};
use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::tensor_file::{read_tensors, write_tensors};
use dtfsal_engine::weights::{Part, StorageDtype, WeightFile, expected_tensors, to_bytes};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigChoice {
    /// The real-time demo model (96x160).
    Tiny,
    /// The paper model (224x384).
    Full,
    /// tiny, then full.
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VariantChoice {
    /// Audio-visual.
    Av,
    /// Visual only.
    V,
}

#[derive(clap::Args)]
pub struct Args {
    /// Which config(s) to benchmark with random weights (ignored with --weights).
    #[arg(long, value_enum, default_value_t = ConfigChoice::All)]
    pub config: ConfigChoice,
    /// Model variant of the random weights (ignored with --weights).
    #[arg(long, value_enum, default_value_t = VariantChoice::Av)]
    pub variant: VariantChoice,
    /// Worker threads for the engine and for PyTorch (intra-op).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timed clips per config [default: 5 for tiny, 3 for full].
    #[arg(long)]
    pub runs: Option<usize>,
    /// Untimed clips before timing.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Benchmark this weight file instead of random weights (its config decides the sizes).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Python with torch for the PyTorch comparison [default: $DTFSAL_PYTHON, else python/.venv/bin/python of the repo].
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Time the engine only.
    #[arg(long, conflicts_with = "python")]
    pub no_python: bool,
    /// Also time ONNX Runtime (CPU provider, same threads) on the same model, exported with
    /// `python -m dtfsal.export_onnx` (needs the venv's onnx, onnxscript and onnxruntime).
    #[arg(long, conflicts_with = "no_python")]
    pub onnx: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Engine backend to time (the PyTorch comparison stays PyTorch on the CPU; for PyTorch on the GPU
    /// see scripts/gpu-check).
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: EngineBackendArg,
    /// GPU index (`--backend cuda`).
    #[arg(long, default_value_t = 0)]
    pub device_id: usize,
    /// `--backend cuda`: fp16 GEMM operands on tensor cores.
    #[arg(long)]
    pub fp16: bool,
    /// `--backend cuda`: launch every kernel of every clip, no CUDA graph replays (graphs are on by
    /// default; the report's `cuda_graphs` says whether they ran).
    #[arg(long)]
    pub no_cuda_graphs: bool,
    /// Internal (with --child): --weights is an .onnx file, run by ONNX Runtime's CPU provider.
    #[arg(long, hide = true)]
    pub child_onnx: bool,
    /// Internal: time the engine on --weights and --input in this process, print one JSON line.
    #[arg(long, hide = true, requires_all = ["weights", "input"])]
    pub child: bool,
    /// Internal (with --child): the input tensor file.
    #[arg(long, hide = true)]
    pub input: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineBackendArg {
    /// The CPU engine.
    Cpu,
    /// The CUDA engine (falls back to the CPU engine, with a warning, without a GPU).
    Cuda,
}

/// SplitMix64: a tiny deterministic generator, good enough for benchmark weights and inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn sym(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn fill(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.sym()).collect()
    }
}

/// Plausible random values for one tensor: norm scales near 1, positive running variances, small
/// biases and statistics, PyTorch-default-like uniform(±1/sqrt(fan_in)) conv/linear weights (so
/// activations neither vanish nor explode), std-0.02 uniform for everything else.
fn random_tensor(rng: &mut Rng, name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    const STD_002: f32 = 0.02 * 1.732_050_8; // uniform(±a) has std a/sqrt(3)
    if name.ends_with(".running_var") {
        rng.fill(n, 0.5, 1.0)
    } else if name.ends_with(".running_mean") {
        rng.fill(n, 0.1, 0.0)
    } else if name.ends_with(".weight") && shape.len() == 1 {
        rng.fill(n, 0.1, 1.0)
    } else if name.ends_with(".bias") {
        rng.fill(n, STD_002, 0.0)
    } else if name.ends_with(".weight") && shape.len() >= 2 {
        let fan_in: usize = shape[1..].iter().product();
        rng.fill(n, 1.0 / (fan_in.max(1) as f32).sqrt(), 0.0)
    } else {
        rng.fill(n, STD_002, 0.0)
    }
}

/// Writes an F32 weight file for `cfg` with deterministic pseudo-random values.
fn write_random_weights(cfg: &ModelConfig, seed: u64, path: &Path) -> anyhow::Result<()> {
    let mut rng = Rng(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = expected_tensors(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let v = random_tensor(&mut rng, &name, &shape);
            (name, shape, v)
        })
        .collect();
    let bytes = to_bytes(
        cfg,
        Part::Model,
        tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice())),
        StorageDtype::F32,
    )?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Writes a deterministic random clip in the `dtfsal forward` input format (batch axis included).
fn write_random_input(cfg: &ModelConfig, seed: u64, path: &Path) -> anyhow::Result<()> {
    let mut rng = Rng(seed);
    let mut t = BTreeMap::new();
    let vshape = [1, 3, cfg.clip_len, cfg.height, cfg.width];
    let vn = vshape.iter().product();
    t.insert(
        "input/video".to_string(),
        Tensor::from_vec(&vshape, rng.fill(vn, 2.0, 0.0)),
    );
    if cfg.variant.has_audio() {
        let ashape = [1, cfg.audio_slices, 1, cfg.audio_height, cfg.audio_width];
        let an = ashape.iter().product();
        t.insert(
            "input/audio".to_string(),
            Tensor::from_vec(&ashape, rng.fill(an, 2.0, 0.0)),
        );
    }
    write_tensors(path, &t, None)?;
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// CPU time of this process (all threads, user + system) in ms: unlike wall time, it does not grow when
/// other processes compete for the cores.
fn process_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 * 1e-6
}

/// Peak resident set of this process in KiB (`VmHWM`), 0 where /proc is unavailable.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Takes `name` out of `inputs`, checks it is `[1, want...]`, and drops the batch axis.
fn unbatch(
    inputs: &mut BTreeMap<String, Tensor>,
    name: &str,
    want: &[usize],
    path: &Path,
) -> anyhow::Result<Tensor> {
    let t = inputs
        .remove(name)
        .with_context(|| format!("{name}: not found in {}", path.display()))?;
    let mut full = vec![1];
    full.extend_from_slice(want);
    if t.shape() != full {
        bail!("{name}: expected shape {full:?}, got {:?}", t.shape());
    }
    Ok(t.reshape(want))
}

/// The hidden `--child` mode: load, warm up, time; one JSON line on stdout.
fn child(a: &Args, weights: &Path, input: &Path) -> anyhow::Result<()> {
    let runs = a.runs.unwrap_or(1).max(1);
    let t0 = Instant::now();
    let backend = match (a.child_onnx, a.backend) {
        (true, _) => Backend::Onnx(OnnxProvider::Cpu),
        (false, EngineBackendArg::Cpu) => Backend::Cpu,
        (false, EngineBackendArg::Cuda) => Backend::Cuda { device: a.device_id, fp16: a.fp16 },
    };
    let model = match backend {
        Backend::Cuda { .. } => {
            let graphs = cuda::graphs_from_env(!a.no_cuda_graphs);
            Model::from_weight_file_with_graphs(WeightFile::open(weights)?, backend, a.threads, graphs)?
        }
        _ => Model::load_with_threads(weights, backend, a.threads)?,
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let c = model.config().clone();
    let mut inputs = read_tensors(input)?;
    let video = unbatch(
        &mut inputs,
        "input/video",
        &[3, c.clip_len, c.height, c.width],
        input,
    )?;
    let audio = if c.variant.has_audio() {
        Some(unbatch(
            &mut inputs,
            "input/audio",
            &[c.audio_slices, 1, c.audio_height, c.audio_width],
            input,
        )?)
    } else {
        None
    };
    drop(inputs);
    let clip = Clip { video, audio };
    for _ in 0..a.warmup {
        model.predict(&clip)?;
    }
    let mut times = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    let mut sum = 0.0f64;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), process_cpu_ms());
        let map = model.predict(&clip)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(process_cpu_ms() - c);
        sum += map.data.iter().map(|&x| x as f64).sum::<f64>();
    }
    let out = json!({
        "config": c.name,
        "variant": c.variant.as_str(),
        "median_ms": median(&times),
        "min_ms": times.iter().copied().fold(f64::INFINITY, f64::min),
        "runs": runs,
        "warmup": a.warmup,
        "times_ms": times,
        "cpu_median_ms": median(&cpu),
        "cpu_ms": cpu,
        "load_ms": load_ms,
        "threads": model.threads(),
        "backend": model.backend(),
        "cuda_graphs": model.cuda_net().is_some_and(|n| n.graphs()),
        "peak_rss_kib": peak_rss_kib(),
        "output_mean": sum / (runs * c.height * c.width) as f64,
    });
    println!("{out}");
    Ok(())
}

/// The last line of `stdout` that parses as a JSON object.
fn last_json_line(stdout: &[u8]) -> Option<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(Value::is_object)
        })
}

/// The repository root as built (`cli/..`), else the current directory.
fn repo_candidates() -> Vec<PathBuf> {
    let mut v = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("..")];
    if let Ok(cwd) = std::env::current_dir() {
        v.push(cwd);
    }
    v
}

/// The python package dir (holding `dtfsal/bench.py`) to put on PYTHONPATH.
fn python_package_dir() -> Option<PathBuf> {
    repo_candidates()
        .into_iter()
        .map(|r| r.join("python"))
        .find(|p| p.join("dtfsal/bench.py").is_file())
}

/// `--python`, else `$DTFSAL_PYTHON`, else the repo's `python/.venv/bin/python`.
fn find_python(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(format!("--python {}: not found", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("DTFSAL_PYTHON").filter(|s| !s.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("DTFSAL_PYTHON={}: not found", p.display()))
        };
    }
    repo_candidates()
        .into_iter()
        .map(|r| r.join("python/.venv/bin/python"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no python venv found (python/.venv/bin/python; set --python or DTFSAL_PYTHON)"
                .to_string()
        })
}

/// Scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Job {
    cfg: ModelConfig,
    /// Random weights to generate with this seed, or an existing file.
    weights: Result<u64, PathBuf>,
}

/// The flags both timing children (the engine's and PyTorch's) take.
fn timing_args(a: &Args, weights: &Path, input: &Path, runs: usize) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["--weights".into(), weights.into(), "--input".into(), input.into()];
    for (flag, value) in [("--threads", a.threads), ("--runs", runs), ("--warmup", a.warmup)] {
        v.push(flag.into());
        v.push(value.to_string().into());
    }
    v
}

/// Times this binary's `--child` on `weights`: the CPU engine, or with `ort_lib` ONNX Runtime on an .onnx file.
fn run_engine(a: &Args, weights: &Path, input: &Path, runs: usize, ort_lib: Option<&Path>) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("locating the dtfsal executable")?;
    let mut cmd = Command::new(&exe);
    cmd.arg("bench").arg("--child").args(timing_args(a, weights, input, runs));
    if a.backend == EngineBackendArg::Cuda && ort_lib.is_none() {
        cmd.args(["--backend", "cuda", "--device-id"]).arg(a.device_id.to_string());
        if a.fp16 {
            cmd.arg("--fp16");
        }
        if a.no_cuda_graphs {
            cmd.arg("--no-cuda-graphs");
        }
    }
    if let Some(lib) = ort_lib {
        cmd.arg("--child-onnx").env("ORT_DYLIB_PATH", lib);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if !out.status.success() {
        bail!("engine benchmark process failed ({})", out.status);
    }
    last_json_line(&out.stdout).context("engine benchmark process printed no JSON result")
}

fn python_cmd(py: &Path, pkg: &Path) -> Command {
    let mut pythonpath = std::ffi::OsString::from(pkg);
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|s| !s.is_empty()) {
        pythonpath.push(":");
        pythonpath.push(old);
    }
    let mut cmd = Command::new(py);
    cmd.env("PYTHONPATH", pythonpath).stdin(Stdio::null());
    cmd
}

/// `ORT_DYLIB_PATH`, else the library of the venv's `onnxruntime` wheel.
fn find_ort_library(py: &Path, pkg: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let out = python_cmd(py, pkg)
        .args([
            "-c",
            "import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so*')))[0])",
        ])
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running {}", py.display()))?;
    let lib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || lib.is_empty() {
        bail!(
            "--onnx: no ONNX Runtime library: set ORT_DYLIB_PATH or `{} -m pip install onnxruntime`",
            py.display()
        );
    }
    Ok(PathBuf::from(lib))
}

/// `python -m dtfsal.export_onnx` of `weights` into `out`.
fn export_onnx(py: &Path, pkg: &Path, weights: &Path, out: &Path) -> anyhow::Result<()> {
    let status = python_cmd(py, pkg)
        .args(["-m", "dtfsal.export_onnx", "--weights"])
        .arg(weights)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("running {}", py.display()))?;
    if !status.success() {
        bail!("python -m dtfsal.export_onnx failed ({status}); it needs `pip install onnx onnxscript onnxruntime`");
    }
    Ok(())
}

fn run_python(
    a: &Args,
    py: &Path,
    pkg: &Path,
    weights: &Path,
    input: &Path,
    runs: usize,
) -> Result<Value, String> {
    let out = python_cmd(py, pkg)
        .args(["-m", "dtfsal.bench"])
        .args(timing_args(a, weights, input, runs))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", py.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} -m dtfsal.bench failed ({})",
            py.display(),
            out.status
        ));
    }
    last_json_line(&out.stdout)
        .ok_or_else(|| "python -m dtfsal.bench printed no JSON result".to_string())
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// Engine or PyTorch result in the report's shape.
fn side(v: &Value) -> Value {
    let med = num(v, "median_ms");
    json!({
        "median_ms": med,
        "min_ms": num(v, "min_ms"),
        "clips_per_s": 1e3 / med,
        "cpu_median_ms": num(v, "cpu_median_ms"),
        "peak_rss_mb": mib(num(v, "peak_rss_kib")),
        "load_ms": num(v, "load_ms"),
        "threads": v.get("threads"),
        "times_ms": v.get("times_ms"),
        "backend": v.get("backend"),
        "cuda_graphs": v.get("cuda_graphs"),
    })
}

fn fmt(v: f64, prec: usize) -> String {
    if v.is_finite() {
        format!("{v:.prec$}")
    } else {
        "-".into()
    }
}

fn print_table(rows: &[Value]) {
    let head = [
        "config",
        "variant",
        "threads",
        "engine ms/clip (med)",
        "engine ms (min)",
        "clips/s",
        "engine peak RSS MB",
        "PyTorch ms/clip (med)",
        "PyTorch ms (min)",
        "PyTorch peak RSS MB",
        "speed-up",
        "ORT CPU ms/clip (med)",
        "ORT ms (min)",
        "ORT / engine",
        "CPU time ms: engine / PyTorch / ORT",
        "CPU-time ORT / engine",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let e = &r["engine"];
            let p = &r["pytorch"];
            let speed = r["speedup"]
                .as_f64()
                .map_or("-".into(), |s| format!("{s:.2}x"));
            let o = &r["onnxruntime"];
            let ort_ratio = r["ort_over_engine"].as_f64().map_or("-".into(), |s| format!("{s:.2}x"));
            let ort_cpu_ratio = r["ort_over_engine_cpu"].as_f64().map_or("-".into(), |s| format!("{s:.2}x"));
            let cpu_times = format!(
                "{} / {} / {}",
                fmt(num(e, "cpu_median_ms"), 0),
                fmt(num(p, "cpu_median_ms"), 0),
                fmt(num(o, "cpu_median_ms"), 0)
            );
            vec![
                r["config"].as_str().unwrap_or("?").to_string(),
                r["variant"].as_str().unwrap_or("?").to_string(),
                r["threads"].to_string(),
                fmt(num(e, "median_ms"), 1),
                fmt(num(e, "min_ms"), 1),
                fmt(num(e, "clips_per_s"), 2),
                fmt(num(e, "peak_rss_mb"), 0),
                fmt(num(p, "median_ms"), 1),
                fmt(num(p, "min_ms"), 1),
                fmt(num(p, "peak_rss_mb"), 0),
                speed,
                fmt(num(o, "median_ms"), 1),
                fmt(num(o, "min_ms"), 1),
                ort_ratio,
                cpu_times,
                ort_cpu_ratio,
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: &[String]| {
        let parts: Vec<String> = c
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (s, w))| {
                if i < 2 {
                    format!("{s:<w$}")
                } else {
                    format!("{s:>w$}")
                }
            })
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&head.map(String::from));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for c in &cells {
        line(c);
    }
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.child {
        // clap guarantees both with `requires_all`.
        let (Some(w), Some(i)) = (a.weights.as_deref(), a.input.as_deref()) else {
            bail!("--child needs --weights and --input")
        };
        return child(&a, w, i);
    }
    if a.input.is_some() {
        bail!("--input is only used internally (with --child)");
    }
    if a.threads == 0 {
        bail!("--threads must be >= 1 (the same count is given to PyTorch)");
    }
    if a.runs == Some(0) {
        bail!("--runs must be >= 1");
    }
    let variant = match a.variant {
        VariantChoice::Av => Variant::AudioVisual,
        VariantChoice::V => Variant::Visual,
    };
    let jobs: Vec<Job> = match &a.weights {
        Some(w) => {
            let file = WeightFile::open(w)?;
            vec![Job {
                cfg: file.config().clone(),
                weights: Err(w.clone()),
            }]
        }
        None => {
            let names: &[&str] = match a.config {
                ConfigChoice::Tiny => &["tiny"],
                ConfigChoice::Full => &["full"],
                ConfigChoice::All => &["tiny", "full"],
            };
            names
                .iter()
                .enumerate()
                .map(|(i, n)| Job {
                    cfg: if *n == "full" {
                        ModelConfig::full(variant)
                    } else {
                        ModelConfig::tiny(variant)
                    },
                    weights: Ok(0xD7F5_A100 + i as u64),
                })
                .collect()
        }
    };

    let python = if a.no_python {
        Err("--no-python".to_string())
    } else {
        find_python(a.python.as_deref()).and_then(|py| {
            python_package_dir().map(|pkg| (py, pkg)).ok_or_else(|| "python/dtfsal/bench.py not found next to this build or in the current directory".into())
        })
    };
    if let Err(why) = &python
        && !a.no_python
    {
        eprintln!("note: PyTorch comparison skipped: {why}");
    }

    let scratch =
        Scratch(std::env::temp_dir().join(format!("dtfsal-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)
        .with_context(|| format!("creating {}", scratch.0.display()))?;
    let mut rows = Vec::new();
    for job in &jobs {
        let cfg = &job.cfg;
        let tag = format!("{}-{}", cfg.name, cfg.variant);
        let (weights, weights_desc) = match &job.weights {
            Ok(seed) => {
                let p = scratch.0.join(format!("{tag}.weights.safetensors"));
                eprintln!("bench {tag}: writing random weights ...");
                write_random_weights(cfg, *seed, &p)?;
                (p, format!("random (seed {seed:#x})"))
            }
            Err(p) => (p.clone(), p.display().to_string()),
        };
        let input = scratch.0.join(format!("{tag}.input.safetensors"));
        write_random_input(cfg, 0x1A9_7E57, &input)?;
        let runs = a.runs.unwrap_or(if cfg.name == "full" { 3 } else { 5 });

        eprintln!(
            "bench {tag}: engine, {} threads, {} warmup + {runs} runs ...",
            a.threads, a.warmup
        );
        let engine = run_engine(&a, &weights, &input, runs, None)?;
        let mut ort = None;
        if a.onnx {
            let Ok((py, pkg)) = &python else {
                bail!("--onnx exports the model with python: {}", python.as_ref().err().map_or("", |s| s.as_str()));
            };
            let lib = find_ort_library(py, pkg)?;
            let onnx = scratch.0.join(format!("{tag}.onnx"));
            eprintln!("bench {tag}: exporting to ONNX ...");
            export_onnx(py, pkg, &weights, &onnx)?;
            eprintln!(
                "bench {tag}: ONNX Runtime CPU ({}), {} threads, {} warmup + {runs} runs ...",
                lib.display(),
                a.threads,
                a.warmup
            );
            ort = Some((run_engine(&a, &onnx, &input, runs, Some(&lib))?, lib));
        }
        let (torch, torch_note) = match &python {
            Ok((py, pkg)) => {
                eprintln!(
                    "bench {tag}: PyTorch, {} threads, {} warmup + {runs} runs ...",
                    a.threads, a.warmup
                );
                match run_python(&a, py, pkg, &weights, &input, runs) {
                    Ok(v) => (Some(v), None),
                    Err(e) => {
                        eprintln!("note: PyTorch comparison for {tag} failed: {e}");
                        (None, Some(e))
                    }
                }
            }
            Err(why) => (None, Some(why.clone())),
        };
        let speedup = torch
            .as_ref()
            .map(|t| num(t, "median_ms") / num(&engine, "median_ms"))
            .filter(|s| s.is_finite());
        rows.push(json!({
            "config": cfg.name,
            "variant": cfg.variant.as_str(),
            "threads": a.threads,
            "runs": runs,
            "warmup": a.warmup,
            "weights": weights_desc,
            "engine": side(&engine),
            "pytorch": torch.as_ref().map(|t| {
                let mut s = side(t);
                s["torch"] = t["torch"].clone();
                s
            }),
            "pytorch_note": torch_note,
            "speedup": speedup,
            "onnxruntime": ort.as_ref().map(|(o, lib)| {
                let mut s = side(o);
                s["library"] = json!(lib.display().to_string());
                s
            }),
            "ort_over_engine": ort
                .as_ref()
                .map(|(o, _)| num(o, "median_ms") / num(&engine, "median_ms"))
                .filter(|s| s.is_finite()),
            "ort_over_engine_cpu": ort
                .as_ref()
                .map(|(o, _)| num(o, "cpu_median_ms") / num(&engine, "cpu_median_ms"))
                .filter(|s| s.is_finite()),
        }));
    }

    print_table(&rows);
    println!(
        "speed-up = PyTorch median / engine median; ORT / engine = ONNX Runtime CPU median / engine median (--onnx); \
         CPU time = process CPU time per clip, all threads (robust to other load on the machine); \
         peak RSS = VmHWM of the engine's own process, ru_maxrss of python's (torch import included)"
    );
    if let Some(path) = &a.json {
        let doc = json!({
            "benchmark": "dtfsal bench",
            "threads": a.threads,
            "host_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "python": python.as_ref().ok().map(|(py, _)| py.display().to_string()),
            "results": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_weights_are_deterministic_and_plausible() {
        let cfg = ModelConfig::tiny(Variant::AudioVisual);
        let a: Vec<Vec<f32>> = expected_tensors(&cfg)
            .iter()
            .map(|(n, s)| random_tensor(&mut Rng(7), n, s))
            .collect();
        let b: Vec<Vec<f32>> = expected_tensors(&cfg)
            .iter()
            .map(|(n, s)| random_tensor(&mut Rng(7), n, s))
            .collect();
        assert_eq!(a, b);
        for (name, shape) in expected_tensors(&cfg) {
            let v = random_tensor(&mut Rng(1), &name, &shape);
            assert!(v.iter().all(|x| x.is_finite()), "{name}");
            if name.ends_with(".running_var") {
                assert!(v.iter().all(|&x| x >= 0.5), "{name}");
            }
        }
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
