//! The DTFSal model: load once, predict many clips, on the CPU engine, (cargo feature `onnx`) ONNX
//! Runtime, or (cargo feature `triton`) a Triton Inference Server.
//!
//! ```no_run
//! use dtfsal_engine::model::{Backend, Clip, Model, OnnxProvider};
//! let model = Model::load("tiny-av.safetensors", Backend::Cpu).unwrap();
//! # let clip: Clip = unimplemented!();
//! let map = model.predict(&clip).unwrap(); // [H, W] in (0, 1)
//! // the same model exported by `python -m dtfsal.export_onnx`, run by ONNX Runtime
//! let ort = Model::load("tiny-av.onnx", Backend::Onnx(OnnxProvider::Cpu)).unwrap();
//! // the same file served by Triton (`dtfsal triton-repo`), over gRPC
//! use dtfsal_engine::model::TritonOptions;
//! let remote = Model::load_triton(&TritonOptions { url: "127.0.0.1:8001".into(), ..Default::default() }).unwrap();
//! ```

mod amfb;
mod attention;
pub mod cuda;
mod decoder;
mod dltfb;
mod encoder;
mod lteb;
mod mvit_block;
mod neck;
pub mod onnx;
mod params;
mod temporal;
mod tokens;
pub mod triton;
mod vggish;

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;

use crate::config::ModelConfig;
use crate::ops::act::sigmoid;
use crate::ops::conv::Conv3d;
use crate::tensor::Tensor;
use crate::weights::{Part, WeightError, WeightFile, expected_tensors};

pub use dltfb::{Axis, axial_shift};
pub use encoder::block_settings;
pub use onnx::{OnnxOptions, OnnxProvider};
pub use triton::{TritonErrorKind, TritonOptions};

/// Named intermediate tensors (the parity names of `python/dtfsal`, batch dimension included).
pub type Trace = BTreeMap<String, Tensor>;

/// Where the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The portable CPU engine (gemm + rayon).
    Cpu,
    /// ONNX Runtime on an execution provider (cargo feature `onnx`); the model file is an exported
    /// `.onnx` (`python -m dtfsal.export_onnx`), not a weight file. See [`onnx`].
    Onnx(OnnxProvider),
    /// The CUDA engine ([`cuda`]) on GPU `device`; `fp16`: GEMM operands in half precision on tensor
    /// cores. Without a usable GPU the model loads on the CPU engine instead, with a warning.
    Cuda { device: usize, fp16: bool },
    /// A Triton Inference Server over gRPC (cargo feature `triton`); loaded with [`Model::load_triton`]
    /// (server, model name, version, timeout), not from a file. See [`triton`].
    Triton,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Weights(#[from] WeightError),
    #[error("{tensor}: {reason}")]
    Input { tensor: &'static str, reason: String },
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads { threads: usize, reason: String },
    /// The ONNX Runtime backend: library, provider, file or run (the message names what to install).
    #[error("onnx backend: {0}")]
    Onnx(String),
    /// The CUDA backend: device, driver, kernels or cuBLAS.
    #[error("cuda backend: {0}")]
    Cuda(String),
    /// The Triton backend: the gRPC status (grouped) and a message naming the server and the model.
    #[error("triton backend: {message}")]
    Triton { kind: TritonErrorKind, message: String },
}

impl ModelError {
    /// A failure that may pass by itself (the server restarting, a slow answer): worth retrying later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Triton { kind, .. } if kind.is_transient())
    }
}

/// One clip: normalised video `[3, T, H, W]` and, for the AV model, audio slices `[9, 1, 112, 192]`.
#[derive(Clone, Debug)]
pub struct Clip {
    pub video: Tensor,
    pub audio: Option<Tensor>,
}

/// A saliency map at the model's input resolution, values in (0, 1), row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct SaliencyMap {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

struct AudioPath {
    vggish: vggish::VggishTrunk,
    te: temporal::TemporalEnhancement,
    amfb: Vec<amfb::Amfb>,
}

pub struct Model {
    cfg: ModelConfig,
    net: Net,
}

enum Net {
    Cpu(Box<CpuNet>),
    Onnx(onnx::OnnxNet),
    Cuda(Box<cuda::CudaNet>),
    Triton(triton::TritonNet),
}

/// The CPU engine's network.
struct CpuNet {
    encoder: encoder::VideoEncoder,
    neck: neck::FeatureNeck,
    lteb: Vec<lteb::Lteb>,
    dltfb: dltfb::Dltfb,
    audio: Option<AudioPath>,
    decoders: Vec<decoder::Decoder>,
    fuse: Conv3d,
    pool: rayon::ThreadPool,
}

impl Model {
    /// Loads a full-model weight file with all available cores.
    pub fn load(path: impl AsRef<Path>, backend: Backend) -> Result<Self, ModelError> {
        Self::load_with_threads(path, backend, 0)
    }

    /// As [`Model::load`], with `threads` worker threads (0: one per core). For [`Backend::Onnx`], `path`
    /// is an exported `.onnx` file and `threads` ONNX Runtime's intra-op threads.
    pub fn load_with_threads(path: impl AsRef<Path>, backend: Backend, threads: usize) -> Result<Self, ModelError> {
        match backend {
            Backend::Cpu | Backend::Cuda { .. } => Self::from_weight_file(WeightFile::open(path)?, backend, threads),
            Backend::Onnx(provider) => Self::load_onnx(path, &OnnxOptions { provider, threads, ..Default::default() }),
            Backend::Triton => Err(ModelError::Triton {
                kind: TritonErrorKind::InvalidArgument,
                message: format!(
                    "the triton backend runs a model served by Triton, not the file {}: use Model::load_triton",
                    path.as_ref().display()
                ),
            }),
        }
    }

    /// A model served by a Triton Inference Server (cargo feature `triton`): checks that the model is
    /// ready and reads its config from the server (`dtfsal triton-repo` puts it in config.pbtxt).
    /// A server that cannot be reached fails here, with a message naming it.
    pub fn load_triton(opts: &TritonOptions) -> Result<Self, ModelError> {
        let (cfg, net) = triton::TritonNet::load(opts)?;
        Ok(Self { cfg, net: Net::Triton(net) })
    }

    /// An exported `.onnx` file run by ONNX Runtime with these options (cargo feature `onnx`).
    pub fn load_onnx(path: impl AsRef<Path>, opts: &OnnxOptions) -> Result<Self, ModelError> {
        let path = path.as_ref();
        if path.extension().is_some_and(|e| e == "safetensors") {
            return Err(ModelError::Onnx(format!(
                "{} is a weight file; the onnx backend runs an exported .onnx file \
                 (`python -m dtfsal.export_onnx --weights W.safetensors --out M.onnx`)",
                path.display()
            )));
        }
        let (cfg, net) = onnx::OnnxNet::load(path, opts)?;
        Ok(Self { cfg, net: Net::Onnx(net) })
    }

    /// The model embedded in the engine ([`crate::default_model`]): the demo model, with no file to find.
    pub fn load_default(backend: Backend, threads: usize) -> Result<Self, ModelError> {
        Self::from_weight_file(crate::default_model::weight_file()?, backend, threads)
    }

    /// Builds the model from an opened weight file (checked: part, names, shapes, dtypes). CPU backend
    /// only: ONNX Runtime runs exported `.onnx` files ([`Model::load_onnx`]).
    /// With [`Backend::Cuda`], CUDA graphs unless `DTFSAL_CUDA_GRAPHS=0` ([`cuda::graphs_from_env`]).
    pub fn from_weight_file(file: WeightFile, backend: Backend, threads: usize) -> Result<Self, ModelError> {
        Self::from_weight_file_with_graphs(file, backend, threads, cuda::graphs_from_env(true))
    }

    /// As [`Model::from_weight_file`], with CUDA graphs on or off whatever the environment says
    /// (`dtfsal-gpu-check` compares the two in one process). Other backends ignore `cuda_graphs`.
    pub fn from_weight_file_with_graphs(file: WeightFile, backend: Backend, threads: usize, cuda_graphs: bool) -> Result<Self, ModelError> {
        if backend == Backend::Triton {
            return Err(ModelError::Triton {
                kind: TritonErrorKind::InvalidArgument,
                message: format!("{} is a weight file; the triton backend runs a model served by Triton", file.path().display()),
            });
        }
        if let Backend::Onnx(_) = backend {
            return Err(ModelError::Onnx(format!(
                "{} is a weight file; the onnx backend runs an exported .onnx file \
                 (`python -m dtfsal.export_onnx --weights W.safetensors --out M.onnx`)",
                file.path().display()
            )));
        }
        if file.part() != Part::Model {
            return Err(WeightError::BadMetadata {
                path: file.path().to_path_buf(),
                key: "part",
                reason: format!("holds part `{}`, a full model is needed", file.part().as_str()),
            }
            .into());
        }
        file.check(&expected_tensors(file.config()))?;
        let cfg = file.config().clone();
        let p = params::Params::new(&file);
        if let Backend::Cuda { device, fp16 } = backend {
            match cuda::CudaNet::load(&p, &cfg, device, fp16, cuda_graphs) {
                Ok(net) => return Ok(Self { cfg, net: Net::Cuda(Box::new(net)) }),
                // no GPU (or it cannot be used): the CPU engine computes the same maps
                Err(ModelError::Cuda(why)) => eprintln!("warning: cuda backend unavailable ({why}); running on the CPU engine"),
                Err(e) => return Err(e),
            }
        }
        let audio = if cfg.variant.has_audio() {
            Some(AudioPath {
                vggish: vggish::VggishTrunk::load(&p)?,
                te: temporal::TemporalEnhancement::load(&p, &cfg)?,
                amfb: (0..4).map(|i| amfb::Amfb::load(&p, &cfg, i)).collect::<Result<_, _>>()?,
            })
        } else {
            None
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("dtfsal-cpu-{i}"))
            .build()
            .map_err(|e| ModelError::Threads { threads, reason: e.to_string() })?;
        let net = CpuNet {
            encoder: encoder::VideoEncoder::load(&p, &cfg)?,
            neck: neck::FeatureNeck::load(&p, &cfg)?,
            lteb: (0..3).map(|i| lteb::Lteb::load(&p, i)).collect::<Result<_, _>>()?,
            dltfb: dltfb::Dltfb::load(&p, cfg.neck_dim)?,
            audio,
            decoders: (0..4).map(|i| decoder::Decoder::load(&p, i)).collect::<Result<_, _>>()?,
            fuse: p.conv3d("fuse", true, [1, 1, 1], [0, 1, 1], 1)?,
            pool,
        };
        Ok(Self { cfg, net: Net::Cpu(Box::new(net)) })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Worker threads this model computes with.
    pub fn threads(&self) -> usize {
        match &self.net {
            Net::Cpu(n) => n.pool.current_num_threads(),
            Net::Onnx(n) => n.threads(),
            Net::Cuda(_) => 1,
            // the model runs on the server; requests block the caller's thread
            Net::Triton(_) => 1,
        }
    }

    /// The backend this model runs on.
    pub fn backend(&self) -> &'static str {
        match &self.net {
            Net::Cpu(_) => "cpu",
            Net::Onnx(_) => "onnx",
            Net::Triton(_) => "triton",
            Net::Cuda(n) if n.fp16() => "cuda-fp16",
            Net::Cuda(_) => "cuda",
        }
    }

    /// The GPU this model runs on (CUDA backend only).
    pub fn device_name(&self) -> Option<&str> {
        match &self.net {
            Net::Cuda(n) => Some(n.device_name()),
            _ => None,
        }
    }

    /// The CUDA network (CUDA backend only), for device-level timing ([`cuda::CudaNet::time_resident`]).
    pub fn cuda_net(&self) -> Option<&cuda::CudaNet> {
        match &self.net {
            Net::Cuda(n) => Some(n),
            _ => None,
        }
    }

    /// Checks a clip's shapes against the config; errors name the tensor.
    pub fn check_clip(&self, clip: &Clip) -> Result<(), ModelError> {
        let c = &self.cfg;
        let want = [3, c.clip_len, c.height, c.width];
        if clip.video.shape() != want {
            return Err(ModelError::Input { tensor: "input/video", reason: format!("expected shape {want:?}, got {:?}", clip.video.shape()) });
        }
        if c.variant.has_audio() {
            let want = [c.audio_slices, 1, c.audio_height, c.audio_width];
            match &clip.audio {
                None => return Err(ModelError::Input { tensor: "input/audio", reason: "required by the audio-visual model, absent".into() }),
                Some(a) if a.shape() != want => {
                    return Err(ModelError::Input { tensor: "input/audio", reason: format!("expected shape {want:?}, got {:?}", a.shape()) });
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn predict(&self, clip: &Clip) -> Result<SaliencyMap, ModelError> {
        self.check_clip(clip)?;
        match &self.net {
            Net::Cpu(n) => Ok(n.pool.install(|| n.forward(&self.cfg, clip, None))),
            Net::Onnx(n) => n.predict(&self.cfg, clip),
            Net::Cuda(n) => n.predict(clip),
            Net::Triton(n) => n.predict(&self.cfg, clip),
        }
    }

    /// The maps of several clips, in order. The CUDA backend runs up to [`cuda::MAX_LANES`] of them at
    /// once, each on a stream of its own, so their kernels overlap on the GPU; the others run them one
    /// after the other. The maps equal [`Model::predict`]'s.
    pub fn predict_batch(&self, clips: &[Clip]) -> Result<Vec<SaliencyMap>, ModelError> {
        match &self.net {
            Net::Cuda(n) => {
                // every clip checked before any runs (predict checks each one it runs)
                for clip in clips {
                    self.check_clip(clip)?;
                }
                n.predict_batch(clips)
            }
            _ => clips.iter().map(|c| self.predict(c)).collect(),
        }
    }

    /// [`Model::predict`], also recording every block-boundary tensor into `trace` (CPU backend; the
    /// ONNX and CUDA backends record only `output/sal`).
    pub fn predict_traced(&self, clip: &Clip, trace: &mut Trace) -> Result<SaliencyMap, ModelError> {
        self.check_clip(clip)?;
        match &self.net {
            Net::Cpu(n) => Ok(n.pool.install(|| n.forward(&self.cfg, clip, Some(trace)))),
            Net::Onnx(_) | Net::Cuda(_) | Net::Triton(_) => {
                let map = self.predict(clip)?;
                trace.insert("output/sal".into(), Tensor::from_vec(&[1, map.height, map.width], map.data.clone()));
                Ok(map)
            }
        }
    }
}

impl CpuNet {
    fn forward(&self, cfg: &ModelConfig, clip: &Clip, mut trace: Option<&mut Trace>) -> SaliencyMap {
        let mut watch = Stopwatch::from_env();
        let mut levels;
        if trace.is_none() && watch.0.is_none() {
            // The audio trunk is independent of the video path up to AMFB: run both at once so each
            // fills the other's idle threads (their ops are small, with serial stretches).
            let audio;
            (levels, audio) = rayon::join(
                || self.video_levels(&clip.video, None, &mut Stopwatch(None)),
                || self.audio_features(clip, None),
            );
            if let Some(a) = audio {
                levels = self.fuse_audio(levels, &a);
            }
        } else {
            levels = self.video_levels(&clip.video, trace.as_deref_mut(), &mut watch);
            let audio = self.audio_features(clip, trace.as_deref_mut());
            watch.lap("audio");
            if let Some(a) = audio {
                levels = self.fuse_audio(levels, &a);
                watch.lap("amfb");
                for (i, l) in levels.iter().enumerate() {
                    record(&mut trace, format!("amfb/f{}", i + 1), l);
                }
            }
        }
        let maps: Vec<Tensor> = levels.par_iter().zip(&self.decoders).map(|(x, d)| d.forward(x)).collect();
        watch.lap("decoders");
        let (h, w) = (cfg.height, cfg.width);
        let mut cat = Vec::with_capacity(4 * h * w);
        for (i, m) in maps.iter().enumerate() {
            record(&mut trace, format!("decoder/s{}", i + 1), m);
            cat.extend_from_slice(m.data());
        }
        let mut sal = self.fuse.forward(&Tensor::from_vec(&[4, 1, h, w], cat));
        sigmoid(sal.data_mut());
        let sal = sal.reshape(&[h, w]);
        record(&mut trace, "output/sal".into(), &sal);
        SaliencyMap { width: w, height: h, data: sal.into_vec() }
    }

    /// Encoder, neck, LTEB and DLTFB: the four enhanced levels `[D, T_i, h_i, w_i]`.
    fn video_levels(&self, video: &Tensor, mut trace: Option<&mut Trace>, watch: &mut Stopwatch) -> Vec<Tensor> {
        let feats = self.encoder.forward(video, trace.as_deref_mut());
        watch.lap("encoder");
        for (i, f) in feats.iter().enumerate() {
            record(&mut trace, format!("encoder/f{}", i + 1), f);
        }
        let neck = self.neck.forward(&feats);
        drop(feats);
        watch.lap("neck");
        let mut levels: Vec<Tensor> = neck.iter().take(3).zip(&self.lteb).map(|(x, b)| b.forward(x)).collect();
        levels.push(self.dltfb.forward(&neck[3]));
        watch.lap("lteb+dltfb");
        for i in 0..4 {
            record(&mut trace, format!("neck/f{}", i + 1), &neck[i]);
            record(&mut trace, format!("enhance/f{}", i + 1), &levels[i]);
        }
        levels
    }

    /// VGGish trunk + temporal enhancement, when the model and the clip have audio.
    fn audio_features(&self, clip: &Clip, mut trace: Option<&mut Trace>) -> Option<Tensor> {
        let (ap, audio) = (self.audio.as_ref()?, clip.audio.as_ref()?);
        let a0 = ap.vggish.forward(audio);
        let a = ap.te.forward(&a0);
        record(&mut trace, "audio/vggish".into(), &a0);
        record(&mut trace, "audio/te".into(), &a);
        Some(a)
    }

    /// AMFB on every level (the levels at once: the small ones fill the big one's idle threads).
    fn fuse_audio(&self, levels: Vec<Tensor>, a: &Tensor) -> Vec<Tensor> {
        let ap = self.audio.as_ref().expect("audio features come from the audio branch");
        levels.par_iter().zip(&ap.amfb).map(|(x, m)| m.forward(x, a)).collect()
    }
}

/// Stores `t` (with a leading batch axis) in the trace, when one is kept.
fn record(trace: &mut Option<&mut Trace>, name: String, t: &Tensor) {
    if let Some(tr) = trace.as_deref_mut() {
        let mut shape = vec![1];
        shape.extend_from_slice(t.shape());
        tr.insert(name, t.clone().reshape(&shape));
    }
}

/// Per-stage wall times on stderr when `DTFSAL_PROFILE` is set (for profiling, off by default).
struct Stopwatch(Option<std::time::Instant>);

impl Stopwatch {
    fn from_env() -> Self {
        Self(std::env::var_os("DTFSAL_PROFILE").map(|_| std::time::Instant::now()))
    }

    fn lap(&mut self, stage: &str) {
        if let Some(t) = self.0.as_mut() {
            eprintln!("profile: {stage:<12} {:8.1} ms", t.elapsed().as_secs_f64() * 1e3);
            *t = std::time::Instant::now();
        }
    }
}
