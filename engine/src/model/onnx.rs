//! The ONNX Runtime backend: an exported `.onnx` file (`python -m dtfsal.export_onnx`) run by ONNX
//! Runtime on its CPU, CUDA or TensorRT execution provider.
//!
//! Built with the cargo feature `onnx` (the `ort` crate, `load-dynamic`): nothing is linked or downloaded
//! at build time; `libonnxruntime` is opened when the first ONNX model loads, from
//! [`OnnxOptions::library`], else `ORT_DYLIB_PATH`, else the system's library search path. The CPU
//! library comes with `pip install onnxruntime` (`.../site-packages/onnxruntime/capi/libonnxruntime.so.*`),
//! the CUDA and TensorRT providers with `pip install onnxruntime-gpu` (plus CUDA, cuDNN and TensorRT).
//! Without the feature the options exist (so callers compile either way) and loading says how to rebuild.
//!
//! The file carries the model config in its metadata (`dtfsal_config`), so input sizes and the variant
//! are known without the weight file; inputs are `video` [1,3,T,H,W] (and `audio` [1,9,1,112,192] for AV),
//! the output `sal` [1,H,W].

use std::path::PathBuf;

/// Which ONNX Runtime execution provider runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnnxProvider {
    /// ONNX Runtime's own CPU kernels (MLAS).
    #[default]
    Cpu,
    /// NVIDIA GPUs through CUDA + cuDNN (`pip install onnxruntime-gpu`).
    Cuda,
    /// NVIDIA TensorRT (nodes TensorRT cannot take fall back to CUDA).
    TensorRt,
}

impl OnnxProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::TensorRt => "tensorrt",
        }
    }
}

impl std::str::FromStr for OnnxProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "tensorrt" | "trt" => Ok(Self::TensorRt),
            _ => Err(format!("unknown ONNX Runtime provider `{s}` (cpu, cuda, tensorrt)")),
        }
    }
}

/// How to run an exported model in ONNX Runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnnxOptions {
    pub provider: OnnxProvider,
    /// GPU index (CUDA, TensorRT).
    pub device_id: i32,
    /// Intra-op threads of the CPU provider (0: ONNX Runtime's default, one per physical core);
    /// inter-op threads are always 1 (the graph runs sequentially, like the CPU engine).
    pub threads: usize,
    /// The ONNX Runtime library (default: `ORT_DYLIB_PATH`, else `libonnxruntime.so` on the search path).
    pub library: Option<PathBuf>,
    /// TensorRT: build fp16 engines (`trt_fp16_enable`).
    pub trt_fp16: bool,
    /// TensorRT: keep built engines in this directory and reuse them (`trt_engine_cache_enable/path`).
    pub trt_cache_dir: Option<PathBuf>,
    /// TensorRT: builder workspace in bytes (`trt_max_workspace_size`; None: ONNX Runtime's default).
    pub trt_workspace_bytes: Option<usize>,
    /// Let idle intra-op threads spin (`session.intra_op.allow_spinning`, ONNX Runtime's own default).
    /// Off here (the default): idle threads sleep, as the CPU engine's do, and leave the cores to the
    /// decoders and encoders sharing them in a pipeline.
    pub spin: bool,
}

/// What to tell a user who has no ONNX Runtime library.
pub const INSTALL_HINT: &str = "install ONNX Runtime with `pip install onnxruntime` (CPU) or `pip install onnxruntime-gpu` \
     (CUDA, TensorRT) and set ORT_DYLIB_PATH to its library, e.g. \
     ORT_DYLIB_PATH=$(python -c 'import onnxruntime,glob,os; print(glob.glob(os.path.dirname(onnxruntime.__file__)+\"/capi/libonnxruntime.so*\")[0])')";

#[cfg(feature = "onnx")]
pub(crate) use imp::OnnxNet;

#[cfg(not(feature = "onnx"))]
pub(crate) use stub::OnnxNet;

#[cfg(not(feature = "onnx"))]
mod stub {
    use std::path::Path;

    use super::OnnxOptions;
    use crate::config::ModelConfig;
    use crate::model::{Clip, ModelError, SaliencyMap};

    /// Uninhabited: this build has no ONNX Runtime backend.
    pub(crate) enum OnnxNet {}

    impl OnnxNet {
        pub(crate) fn load(_path: &Path, _opts: &OnnxOptions) -> Result<(ModelConfig, Self), ModelError> {
            Err(ModelError::Onnx(
                "this build has no ONNX Runtime backend: rebuild with the cargo feature `onnx` \
                 (e.g. `cargo build --release -p dtfsal-cli --features onnx`)"
                    .into(),
            ))
        }

        pub(crate) fn predict(&self, _cfg: &ModelConfig, _clip: &Clip) -> Result<SaliencyMap, ModelError> {
            match *self {}
        }

        pub(crate) fn threads(&self) -> usize {
            match *self {}
        }
    }
}

#[cfg(feature = "onnx")]
mod imp {
    use std::borrow::Cow;
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use ort::environment::Environment;
    use ort::ep::{self, ExecutionProvider};
    use ort::session::builder::GraphOptimizationLevel;
    use ort::session::{Session, SessionInputValue};
    use ort::value::TensorRef;

    use super::{INSTALL_HINT, OnnxOptions, OnnxProvider};
    use crate::config::ModelConfig;
    use crate::model::{Clip, ModelError, SaliencyMap};

    /// Metadata key of the model config (written by `python -m dtfsal.export_onnx`).
    const KEY_CONFIG: &str = "dtfsal_config";

    /// The library this process loaded and its environment (ONNX Runtime allows one of each).
    static RUNTIME: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

    fn err(msg: impl Into<String>) -> ModelError {
        ModelError::Onnx(msg.into())
    }

    fn library_path(opts: &OnnxOptions) -> PathBuf {
        if let Some(p) = &opts.library {
            return p.clone();
        }
        match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(format!("{}onnxruntime{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX)),
        }
    }

    /// Opens the library once per process (later loads must name the same one) -> the environment.
    fn environment(opts: &OnnxOptions) -> Result<Environment, ModelError> {
        let lib = library_path(opts);
        if lib.components().count() > 1 && !lib.exists() {
            return Err(err(format!("no ONNX Runtime library at {}: {INSTALL_HINT}", lib.display())));
        }
        let mut rt = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((loaded, env)) = rt.as_ref() {
            if opts.library.is_some() && *loaded != lib {
                return Err(err(format!(
                    "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
                    loaded.display(),
                    lib.display()
                )));
            }
            return Ok(env.clone());
        }
        let builder = ort::init_from(&lib)
            .map_err(|e| err(format!("cannot load the ONNX Runtime library ({e}): {INSTALL_HINT}")))?;
        let env = builder
            .with_name("dtfsal")
            .with_telemetry(false)
            .build()
            .map_err(|e| err(format!("cannot start ONNX Runtime from {}: {e}", lib.display())))?;
        *rt = Some((lib, env.clone()));
        Ok(env)
    }

    /// Providers this library was built with, among the ones we can use.
    fn available() -> Vec<&'static str> {
        let mut v = vec!["cpu"];
        if ep::CUDA::is_available().unwrap_or(false) {
            v.push("cuda");
        }
        if ep::TensorRT::is_available().unwrap_or(false) {
            v.push("tensorrt");
        }
        v
    }

    fn check_provider(name: &str, ok: bool) -> Result<(), ModelError> {
        if ok {
            return Ok(());
        }
        Err(err(format!(
            "the loaded ONNX Runtime has no {name} execution provider (it has: {}); install `pip install \
             onnxruntime-gpu` (with the CUDA, cuDNN{} libraries it needs) and set ORT_DYLIB_PATH to its \
             capi/libonnxruntime.so",
            available().join(", "),
            if name == "TensorRT" { ", TensorRT" } else { "" }
        )))
    }

    pub(crate) struct OnnxNet {
        session: Mutex<Session>,
        threads: usize,
        has_audio: bool,
    }

    impl OnnxNet {
        pub(crate) fn load(path: &Path, opts: &OnnxOptions) -> Result<(ModelConfig, Self), ModelError> {
            if !path.is_file() {
                return Err(err(format!("{}: no such ONNX file", path.display())));
            }
            let env = environment(opts)?;
            let fail = |what: &str, e: String| err(format!("{}: {what}: {e}", path.display()));
            let mut b = Session::builder(&env)
                .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::All).map_err(Into::into))
                .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
                .and_then(|b| b.with_intra_op_spinning(opts.spin).map_err(Into::into))
                .map_err(|e| fail("session options", e.to_string()))?;
            if opts.threads > 0 {
                b = b.with_intra_threads(opts.threads).map_err(|e| fail("session options", e.to_string()))?;
            }
            let cuda = || ep::CUDA::default().with_device_id(opts.device_id);
            let eps = match opts.provider {
                OnnxProvider::Cpu => vec![],
                OnnxProvider::Cuda => {
                    check_provider("CUDA", ep::CUDA::is_available().unwrap_or(false))?;
                    vec![cuda().build().error_on_failure()]
                }
                OnnxProvider::TensorRt => {
                    check_provider("TensorRT", ep::TensorRT::is_available().unwrap_or(false))?;
                    let mut trt = ep::TensorRT::default().with_device_id(opts.device_id).with_fp16(opts.trt_fp16);
                    if let Some(dir) = &opts.trt_cache_dir {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| err(format!("TensorRT engine cache {}: {e}", dir.display())))?;
                        trt = trt.with_engine_cache(true).with_engine_cache_path(dir.display());
                    }
                    if let Some(ws) = opts.trt_workspace_bytes {
                        trt = trt.with_max_workspace_size(ws);
                    }
                    // nodes TensorRT does not take run on CUDA
                    vec![trt.build().error_on_failure(), cuda().build()]
                }
            };
            if !eps.is_empty() {
                b = b.with_execution_providers(eps).map_err(|e| {
                    fail(&format!("cannot start the {} execution provider", opts.provider.as_str()), e.to_string())
                })?;
            }
            let session = b.commit_from_file(path).map_err(|e| fail("ONNX Runtime cannot load it", e.to_string()))?;
            let json = session
                .metadata()
                .ok()
                .and_then(|m| m.custom(KEY_CONFIG))
                .ok_or_else(|| {
                    err(format!(
                        "{}: no `{KEY_CONFIG}` in the ONNX metadata (export the model with `python -m dtfsal.export_onnx`)",
                        path.display()
                    ))
                })?;
            let cfg = ModelConfig::from_json(&json).map_err(|e| fail(&format!("metadata `{KEY_CONFIG}`"), e.to_string()))?;
            let has_audio = cfg.variant.has_audio();
            let names: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
            let want: &[&str] = if has_audio { &["video", "audio"] } else { &["video"] };
            if names != want {
                return Err(fail("inputs", format!("expected {want:?} for a {} model, found {names:?}", cfg.variant)));
            }
            if !session.outputs().iter().any(|o| o.name() == "sal") {
                return Err(fail("outputs", "no output named `sal`".into()));
            }
            let threads = if opts.threads > 0 {
                opts.threads
            } else {
                std::thread::available_parallelism().map_or(1, |n| n.get())
            };
            Ok((cfg, Self { session: Mutex::new(session), threads, has_audio }))
        }

        pub(crate) fn threads(&self) -> usize {
            self.threads
        }

        pub(crate) fn predict(&self, cfg: &ModelConfig, clip: &Clip) -> Result<SaliencyMap, ModelError> {
            let run = |e: ort::Error| err(format!("ONNX Runtime run failed: {e}"));
            let mut shape = vec![1usize];
            shape.extend_from_slice(clip.video.shape());
            let video = TensorRef::from_array_view((shape, clip.video.data())).map_err(run)?;
            let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = vec![("video".into(), video.into())];
            if self.has_audio {
                let a = clip.audio.as_ref().ok_or_else(|| err("input/audio: required by the audio-visual model"))?;
                let mut shape = vec![1usize];
                shape.extend_from_slice(a.shape());
                inputs.push(("audio".into(), TensorRef::from_array_view((shape, a.data())).map_err(run)?.into()));
            }
            let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
            let outputs = session.run(inputs).map_err(run)?;
            let (shape, data) = outputs["sal"].try_extract_tensor::<f32>().map_err(run)?;
            let (h, w) = (cfg.height, cfg.width);
            if shape.iter().product::<i64>() != (h * w) as i64 {
                return Err(err(format!("output `sal` has shape {:?}, expected [1, {h}, {w}]", &shape[..])));
            }
            Ok(SaliencyMap { width: w, height: h, data: data.to_vec() })
        }
    }
}
