//! The CUDA backend: the whole DTFSal forward pass on one GPU through `dtfsal-kernels` (hand-written
//! kernels + cuBLAS). Every module mirrors its CPU twin in `model/*.rs`, which is its reference.
//! fp32, or fp16 GEMM operands on tensor cores (f32 accumulation, f32 activations).
//! With CUDA graphs ([`graphs_from_env`]) the steady state replays one captured forward pass
//! ([`replay`]).

pub mod check;
mod encoder;
mod heads;
mod layers;
mod replay;

use std::sync::Mutex;

use dtfsal_kernels::{Act, Gpu, KernelError};

use self::encoder::{GpuEncoder, LoadError};
use self::heads::{GpuAmfb, GpuDecoder, GpuDltfb, GpuNeck, GpuTemporal, GpuTokens, GpuVggish};
use self::layers::{Ctx, DTensor, GConv, Res};
use self::replay::{GraphMode, Replay};
use super::params::Params;
use super::{Clip, ModelError, SaliencyMap};
use crate::config::ModelConfig;

struct GpuAudio {
    vggish: GpuVggish,
    te: GpuTemporal,
    amfb: Vec<GpuAmfb>,
}

struct Layers {
    encoder: GpuEncoder,
    neck: GpuNeck,
    lteb: Vec<GpuTokens>,
    dltfb: GpuDltfb,
    audio: Option<GpuAudio>,
    decoders: Vec<GpuDecoder>,
    fuse: GConv,
}

/// The device context and the captured graph, used by one thread at a time (a mutex around them).
/// The graph is declared first so it is dropped first, before the module and buffers its launches use.
struct Session {
    graph: GraphMode,
    ctx: Ctx,
}

/// The network on the GPU.
pub struct CudaNet {
    session: Mutex<Session>,
    layers: Layers,
    device_name: String,
    fp16: bool,
    /// The map's `[H, W]`.
    map_hw: [usize; 2],
}

/// Whether `DTFSAL_CUDA_GRAPHS` asks for CUDA graphs (`1`, `true`, `yes`, `on`). Off by default until a
/// GPU run of `dtfsal-gpu-check` has compared replayed maps with eager ones.
pub fn graphs_from_env() -> bool {
    std::env::var("DTFSAL_CUDA_GRAPHS").is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

impl From<KernelError> for ModelError {
    fn from(e: KernelError) -> Self {
        ModelError::Cuda(e.to_string())
    }
}

impl From<LoadError> for ModelError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Weights(w) => ModelError::Weights(w),
            LoadError::Gpu(g) => g.into(),
        }
    }
}

impl CudaNet {
    /// Opens device `device` and uploads every weight (errors, never panics, without a GPU). `graphs`:
    /// replay a captured forward pass from the second clip on (not with `DTFSAL_PROFILE`).
    pub(crate) fn load(p: &Params, cfg: &ModelConfig, device: usize, fp16: bool, graphs: bool) -> Result<Self, ModelError> {
        let gpu = if graphs { Gpu::new_capturable(device)? } else { Gpu::new(device)? };
        let device_name = format!("{} (sm_{}{}, kernels: {:?})", gpu.name(), gpu.compute_capability().0, gpu.compute_capability().1, gpu.kernel_origin());
        let ctx = Ctx::new(gpu, fp16);
        let t = cfg.clip_len / 4;
        let grid = |i: usize| [t, (cfg.height / 4) >> i, (cfg.width / 4) >> i];
        let audio = if cfg.variant.has_audio() {
            Some(GpuAudio {
                vggish: GpuVggish::load(&ctx, p)?,
                te: GpuTemporal::load(&ctx, p, cfg)?,
                amfb: (0..4).map(|i| GpuAmfb::load(&ctx, p, cfg, i)).collect::<Result<_, _>>()?,
            })
        } else {
            None
        };
        let layers = Layers {
            encoder: GpuEncoder::load(&ctx, p, cfg)?,
            neck: GpuNeck::load(&ctx, p)?,
            lteb: (0..3).map(|i| GpuTokens::load(&ctx, p, &format!("enhance.{i}.prompt"), grid(i))).collect::<Result<_, _>>()?,
            dltfb: GpuDltfb::load(&ctx, p, cfg.neck_dim, grid(3))?,
            audio,
            decoders: (0..4).map(|i| GpuDecoder::load(&ctx, p, i)).collect::<Result<_, _>>()?,
            fuse: GConv::new(&ctx, &p.conv3d("fuse", true, [1, 1, 1], [0, 1, 1], 1)?)?,
        };
        ctx.gpu.synchronize()?;
        // profiling laps wait for the stream, which a capture cannot record
        let graph = if graphs && ctx.profile.is_none() { GraphMode::Pending } else { GraphMode::Off };
        Ok(Self { session: Mutex::new(Session { graph, ctx }), layers, device_name, fp16, map_hw: [cfg.height, cfg.width] })
    }

    /// The device, its architecture and where the kernels came from.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    pub fn fp16(&self) -> bool {
        self.fp16
    }

    /// Whether this network replays CUDA graphs (asked for, not profiling, no failed capture).
    pub fn graphs(&self) -> bool {
        matches!(self.lock().graph, GraphMode::Pending | GraphMode::Ready(_))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn predict(&self, clip: &Clip) -> Result<SaliencyMap, ModelError> {
        let [height, width] = self.map_hw;
        let mut guard = self.lock();
        let Session { ctx, graph } = &mut *guard;
        if let GraphMode::Ready(r) = graph
            && r.fits(clip)
        {
            return Ok(SaliencyMap { width, height, data: r.run(ctx, clip)? });
        }
        let map = self.predict_eager(ctx, clip)?;
        if matches!(graph, GraphMode::Pending | GraphMode::Ready(_)) {
            // the first clip of these shapes ran eagerly (cuBLAS and the memory pool are warm): record it
            *graph = match Replay::capture(ctx, clip, self.map_hw, |c, v, a| self.forward(c, v, a)) {
                Ok(r) => {
                    // replays allocate from the graph's own memory: give the eager pass's cached blocks back
                    ctx.gpu.trim_pool()?;
                    GraphMode::Ready(Box::new(r))
                }
                Err(e) => {
                    eprintln!("warning: CUDA graph capture failed ({e}); the CUDA engine goes on with eager launches");
                    GraphMode::Failed
                }
            };
        }
        Ok(SaliencyMap { width, height, data: map })
    }

    fn predict_eager(&self, ctx: &Ctx, clip: &Clip) -> Res<Vec<f32>> {
        ctx.lap(|| "start".into());
        let (video, audio) = upload_clip(ctx, clip)?;
        ctx.lap(|| "upload".into());
        let sal = self.forward(ctx, video, audio)?;
        let map = sal.download(ctx)?;
        ctx.lap(|| "download".into());
        Ok(map.into_vec())
    }

    /// Milliseconds of each of `runs` forward passes (after one warm-up) with the clip already on the
    /// device and the map left there: the GPU work alone, as a PyTorch benchmark on device tensors sees it.
    /// With graphs, each pass is one replay of the captured graph (captured here if it was not yet).
    pub fn time_resident(&self, clip: &Clip, runs: usize) -> Result<Vec<f64>, ModelError> {
        if matches!(self.lock().graph, GraphMode::Pending) {
            self.predict(clip)?;
        }
        let mut guard = self.lock();
        let Session { ctx, graph } = &mut *guard;
        if let GraphMode::Ready(r) = graph
            && r.fits(clip)
        {
            r.write_inputs(ctx, clip)?;
            let mut times = vec![];
            for i in 0..=runs {
                ctx.gpu.synchronize()?;
                let t = std::time::Instant::now();
                r.launch()?;
                ctx.gpu.synchronize()?;
                if i > 0 {
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            return Ok(times);
        }
        let ctx = &*ctx;
        let (video, audio) = upload_clip(ctx, clip)?;
        // forward consumes its inputs: each pass gets fresh copies (made before its clock starts)
        let copy = |t: &DTensor| -> Res<DTensor> { Ok(DTensor { shape: t.shape.clone(), buf: ctx.gpu.copy(&t.buf)? }) };
        let mut times = vec![];
        for i in 0..=runs {
            let (v, a) = (copy(&video)?, audio.as_ref().map(copy).transpose()?);
            ctx.gpu.synchronize()?;
            let t = std::time::Instant::now();
            self.forward(ctx, v, a)?;
            ctx.gpu.synchronize()?;
            if i > 0 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(times)
    }

    /// `video [3, T, H, W]`, `audio [9, 1, 112, 192]` (AV models) on the device -> the map `[H, W]`.
    fn forward(&self, ctx: &Ctx, video: DTensor, audio: Option<DTensor>) -> Res<DTensor> {
        let l = &self.layers;
        let feats = l.encoder.forward(ctx, &video)?;
        drop(video);
        let neck = l.neck.forward(ctx, &feats)?;
        drop(feats);
        ctx.lap(|| "neck".into());
        let mut levels = vec![];
        for (x, b) in neck.iter().take(3).zip(&l.lteb) {
            levels.push(b.apply(ctx, x, None)?);
        }
        ctx.lap(|| "lteb".into());
        levels.push(l.dltfb.forward(ctx, &neck[3])?);
        drop(neck);
        ctx.lap(|| "dltfb".into());
        if let (Some(ap), Some(audio)) = (&l.audio, audio) {
            let a0 = ap.vggish.forward(ctx, audio)?;
            ctx.lap(|| "vggish".into());
            let a = ap.te.forward(ctx, &a0)?;
            ctx.lap(|| "temporal".into());
            levels = levels.iter().zip(&ap.amfb).map(|(x, m)| m.forward(ctx, x, &a)).collect::<Res<_>>()?;
            ctx.lap(|| "amfb".into());
        }
        let mut maps = vec![];
        for (i, (x, d)) in levels.iter().zip(&l.decoders).enumerate() {
            maps.push(d.forward(ctx, x)?);
            ctx.lap(|| format!("decoder{i}"));
        }
        let [_, _, h, w] = maps[0].shape[..] else { unreachable!("decoder maps are 4-d") };
        let mut cat = DTensor::zeros(ctx, &[4, 1, h, w])?;
        for (i, m) in maps.iter().enumerate() {
            ctx.gpu.add_inplace(&mut cat.buf.slice_mut(i * h * w, h * w), m.view())?;
        }
        let sal = l.fuse.forward(ctx, &cat, Act::Sigmoid)?;
        ctx.lap(|| "fuse".into());
        Ok(sal.reshape(&[h, w]))
    }
}

/// The clip's video and (AV models) audio on the device.
fn upload_clip(ctx: &Ctx, clip: &Clip) -> Res<(DTensor, Option<DTensor>)> {
    Ok((DTensor::upload(ctx, &clip.video)?, clip.audio.as_ref().map(|a| DTensor::upload(ctx, a)).transpose()?))
}
