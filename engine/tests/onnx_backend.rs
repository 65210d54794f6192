//! The ONNX Runtime backend (cargo feature `onnx`) against the CPU engine on the committed tiny AV case.
//!
//! Needs the python venv (`DTFSAL_PYTHON`, else python/.venv) with onnx, onnxscript and onnxruntime: the
//! tiny weights are exported with `python -m dtfsal.export_onnx`, and the library is `ORT_DYLIB_PATH`,
//! else the venv wheel's `onnxruntime/capi/libonnxruntime.so*`. Skips with a message without them.
#![cfg(feature = "onnx")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dtfsal_engine::model::{Backend, Clip, Model, ModelError, OnnxOptions, OnnxProvider};
use dtfsal_engine::tensor::Tensor;
use dtfsal_engine::tensor_file::read_tensors;

/// Map tolerance, ONNX Runtime vs the CPU engine (both float32; observed ~1e-7).
const MAP_ATOL: f32 = 1e-5;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("DTFSAL_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo().join("python/.venv/bin/python"));
    p.is_file().then_some(p)
}

fn py(py: &Path) -> Command {
    let mut c = Command::new(py);
    c.env("PYTHONPATH", repo().join("python"));
    c
}

/// (exported tiny AV .onnx, ONNX Runtime library), made once per test binary; Err(why) to skip.
fn setup() -> &'static Result<(PathBuf, PathBuf), String> {
    static SETUP: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    SETUP.get_or_init(|| {
        let py_exe = python().ok_or("no python venv (run scripts/setup.sh)")?;
        let probe = py(&py_exe)
            .args([
                "-c",
                "import glob, os, onnx, onnxscript, onnxruntime; \
                 print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi', 'libonnxruntime.so*')))[0])",
            ])
            .output()
            .map_err(|e| format!("cannot run python: {e}"))?;
        if !probe.status.success() {
            return Err("the venv lacks onnx / onnxscript / onnxruntime (pip install -r python/requirements.txt)".into());
        }
        let lib = match std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(String::from_utf8_lossy(&probe.stdout).trim()),
        };
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dtfsal-onnx-test");
        std::fs::create_dir_all(&dir).unwrap();
        let onnx = dir.join("tiny-av.onnx");
        let st = py(&py_exe)
            .args(["-m", "dtfsal.export_onnx", "--weights"])
            .arg(repo().join("tests/data/tiny-av.weights.safetensors"))
            .arg("--out")
            .arg(&onnx)
            .status()
            .expect("run python");
        assert!(st.success(), "python -m dtfsal.export_onnx failed");
        Ok((onnx, lib))
    })
}

macro_rules! setup_or_skip {
    ($test:literal) => {
        match setup() {
            Ok(v) => v,
            Err(why) => {
                eprintln!("SKIPPED {}: {why}", $test);
                return;
            }
        }
    };
}

fn squeeze_batch(t: &Tensor) -> Tensor {
    t.clone().reshape(&t.shape()[1..])
}

fn tiny_case() -> (Clip, Tensor) {
    let case = read_tensors(repo().join("tests/data/tiny-av.case.safetensors")).unwrap();
    let clip = Clip { video: squeeze_batch(&case["input/video"]), audio: case.get("input/audio").map(squeeze_batch) };
    (clip, squeeze_batch(&case["output/sal"]))
}

fn load_err(r: Result<Model, ModelError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn onnx_backend_map_equals_cpu_engine_on_tiny_case() {
    let (onnx, lib) = setup_or_skip!("onnx_backend_map_equals_cpu_engine_on_tiny_case");
    let opts = OnnxOptions { provider: OnnxProvider::Cpu, threads: 2, library: Some(lib.clone()), ..Default::default() };
    let ort = Model::load_onnx(onnx, &opts).expect("load the exported model in ONNX Runtime");
    assert_eq!(ort.backend(), "onnx");
    assert_eq!(ort.threads(), 2);
    let cpu = Model::load_with_threads(repo().join("tests/data/tiny-av.weights.safetensors"), Backend::Cpu, 2).unwrap();
    assert_eq!(ort.config(), cpu.config(), "config from the ONNX metadata");

    let (clip, reference) = tiny_case();
    let got = ort.predict(&clip).expect("onnx predict");
    let want = cpu.predict(&clip).unwrap();
    assert_eq!((got.width, got.height), (want.width, want.height));
    let d_cpu = max_abs(&got.data, &want.data);
    let d_ref = max_abs(&got.data, reference.data());
    eprintln!("onnx vs cpu engine: max |diff| {d_cpu:.2e}; vs float64 PyTorch: {d_ref:.2e}");
    assert!(d_cpu <= MAP_ATOL, "onnx vs cpu engine: max |diff| {d_cpu:.3e} > {MAP_ATOL:e}");
    assert!(d_ref <= MAP_ATOL, "onnx vs float64 reference: max |diff| {d_ref:.3e} > {MAP_ATOL:e}");

    // a second run of the same session gives the same map; a wrong input is refused before ONNX Runtime
    assert_eq!(ort.predict(&clip).unwrap().data, got.data);
    let no_audio = Clip { video: clip.video.clone(), audio: None };
    let e = ort.predict(&no_audio).unwrap_err().to_string();
    assert!(e.contains("input/audio"), "{e}");

    // Backend::Onnx through the generic loader (ORT_DYLIB_PATH or the already loaded library)
    let generic = Model::load_with_threads(onnx, Backend::Onnx(OnnxProvider::Cpu), 1).unwrap();
    assert_eq!(generic.predict(&clip).unwrap().data.len(), got.data.len());
}

#[test]
fn onnx_errors_name_what_to_install() {
    // A weight file handed to the onnx backend: names the export command (no library needed).
    let e = load_err(Model::load_with_threads(
        repo().join("tests/data/tiny-av.weights.safetensors"),
        Backend::Onnx(OnnxProvider::Cpu),
        1,
    ));
    assert!(e.contains("dtfsal.export_onnx"), "{e}");

    // A library path that does not exist: names the pip package and ORT_DYLIB_PATH.
    let missing = OnnxOptions { library: Some("/nonexistent/libonnxruntime.so.1.99".into()), ..Default::default() };
    let e = match Model::load_onnx(repo().join("README.md"), &missing) {
        Err(e @ ModelError::Onnx(_)) => e.to_string(),
        other => panic!("expected an onnx error, got {:?}", other.err()),
    };
    assert!(e.contains("pip install onnxruntime") && e.contains("ORT_DYLIB_PATH"), "{e}");

    let (onnx, lib) = setup_or_skip!("onnx_errors_name_what_to_install (provider part)");
    // GPU providers on a library built without them (the CPU wheel): names the provider and onnxruntime-gpu.
    for (provider, name) in [(OnnxProvider::Cuda, "CUDA"), (OnnxProvider::TensorRt, "TensorRT")] {
        let opts = OnnxOptions { provider, library: Some(lib.clone()), ..Default::default() };
        match Model::load_onnx(onnx, &opts) {
            Ok(_) => eprintln!("note: this ONNX Runtime has the {name} provider; error path not exercised"),
            Err(e) => {
                let e = e.to_string();
                eprintln!("{name}: {e}");
                assert!(e.contains(name) && e.contains("onnxruntime-gpu"), "{e}");
            }
        }
    }
    // A file that is not ONNX: ONNX Runtime's reason, with the path.
    let opts = OnnxOptions { library: Some(lib.clone()), ..Default::default() };
    let e = load_err(Model::load_onnx(repo().join("README.md"), &opts));
    assert!(e.contains("README.md"), "{e}");
}
