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
    /// More sessions, each on a stream of its own, for [`CudaNet::predict_batch`] (made on first use).
    lanes: Mutex<Vec<Session>>,
    /// Whether sessions replay CUDA graphs ([`replay`]).
    graphs: bool,
    layers: Layers,
    device_name: String,
    fp16: bool,
    /// The map's `[H, W]`.
    map_hw: [usize; 2],
}

/// At most this many clips of a batch run at once, one stream each.
pub const MAX_LANES: usize = 8;

/// A clip whose work is enqueued on a session's stream.
enum InFlight {
    /// A graph replay: the map is in the graph's output buffer.
    Replay,
    /// An eager pass: its map, still being computed.
    Eager(DTensor),
}

/// Whether to replay CUDA graphs: `DTFSAL_CUDA_GRAPHS` when it says (`1`/`true`/`yes`/`on` or
/// `0`/`false`/`no`/`off`), else `setting` (the element property or CLI flag; on by default since
/// `dtfsal-gpu-check` found replayed maps equal to eager ones on an H100).
pub fn graphs_from_env(setting: bool) -> bool {
    switch_override(std::env::var("DTFSAL_CUDA_GRAPHS").ok().as_deref(), setting)
}

/// Kernels written and checked without a GPU at hand (`kernels/tests/emulated.rs` runs them on the CPU
/// emulation of `kernels/emu/`), off until `dtfsal-gpu-check` has run and timed them on one. Each has an
/// on/off variable; gpu-check runs a model with all of them next to the default one. A shape a candidate has
/// no kernel for takes the default path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CandidateKernels {
    /// `DTFSAL_CUDA_FLASH_ATTENTION`: the encoder's fp16 attention as one fused kernel
    /// (`attention_flash_h*`: q·kᵀ, rel-pos, softmax, P·v, residual and head merge; no logits matrix in
    /// memory) instead of cuBLAS, `softmax_relpos_h`, cuBLAS and `attn_merge_h`.
    pub flash_attention: bool,
    /// `DTFSAL_CUDA_IM2COL_X8`: fp16 convolutions' columns by `im2col3d_f16x8` (eight positions a thread,
    /// 16-byte stores; the same values) where the output positions are a multiple of 8.
    pub im2col_x8: bool,
    /// `DTFSAL_CUDA_POOL_TILED`: the MViT pools that keep the grid (3x3x3, stride 1) by
    /// `pool_tokens4_tiled` (the input staged in shared memory, read once per block instead of once per tap).
    pub pool_tiled: bool,
    /// `DTFSAL_CUDA_DEFORM_SPLIT`: AMFB's deformable im2col with the channels split over the grid's y
    /// dimension where the positions alone give too few threads (levels 2-4: 6-35 thousand threads, each
    /// looping over 192 channels; 77-84 us a call in ncu).
    pub deform_split: bool,
}

impl CandidateKernels {
    /// Every candidate on.
    pub const ALL: Self = Self { flash_attention: true, im2col_x8: true, pool_tiled: true, deform_split: true };

    /// The variables' values (unset or unrecognised: off).
    pub fn from_env() -> Self {
        let var = |name: &str| switch_override(std::env::var(name).ok().as_deref(), false);
        Self {
            flash_attention: var("DTFSAL_CUDA_FLASH_ATTENTION"),
            im2col_x8: var("DTFSAL_CUDA_IM2COL_X8"),
            pool_tiled: var("DTFSAL_CUDA_POOL_TILED"),
            deform_split: var("DTFSAL_CUDA_DEFORM_SPLIT"),
        }
    }

    /// Sets the variables to `self` (for a process that loads models with different choices, such as
    /// `dtfsal-gpu-check`).
    ///
    /// # Safety
    /// As [`std::env::set_var`]: no other thread may read or write the environment meanwhile.
    pub unsafe fn export(self) {
        let flag = |on: bool| if on { "1" } else { "0" };
        // SAFETY: the caller's contract
        unsafe {
            std::env::set_var("DTFSAL_CUDA_FLASH_ATTENTION", flag(self.flash_attention));
            std::env::set_var("DTFSAL_CUDA_IM2COL_X8", flag(self.im2col_x8));
            std::env::set_var("DTFSAL_CUDA_POOL_TILED", flag(self.pool_tiled));
            std::env::set_var("DTFSAL_CUDA_DEFORM_SPLIT", flag(self.deform_split));
        }
    }
}

/// An on/off variable's value (`None`: unset) over `setting`; an unrecognised value leaves `setting`.
fn switch_override(env: Option<&str>, setting: bool) -> bool {
    match env.map(str::to_ascii_lowercase).as_deref() {
        Some("1" | "true" | "yes" | "on") => true,
        Some("0" | "false" | "no" | "off") => false,
        _ => setting,
    }
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
        let graphs = graphs && ctx.profile.is_none();
        let graph = if graphs { GraphMode::Pending } else { GraphMode::Off };
        let session = Mutex::new(Session { graph, ctx });
        Ok(Self { session, lanes: Mutex::new(vec![]), graphs, layers, device_name, fp16, map_hw: [cfg.height, cfg.width] })
    }

    /// The device, its architecture and where the kernels came from.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    pub fn fp16(&self) -> bool {
        self.fp16
    }

    /// Whether this network replays CUDA graphs: asked for, not profiling, and no session (the first or a
    /// batch lane) had a capture fail.
    pub fn graphs(&self) -> bool {
        let on = |s: &Session| matches!(s.graph, GraphMode::Pending | GraphMode::Ready(_));
        let first = self.lock();
        on(&first) && self.lanes.lock().unwrap_or_else(|e| e.into_inner()).iter().all(on)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn predict(&self, clip: &Clip) -> Result<SaliencyMap, ModelError> {
        let mut session = self.lock();
        let work = self.enqueue(&mut session, clip)?;
        Ok(self.collect(&mut session, work, clip)?)
    }

    /// Maps of `clips` in order, up to [`MAX_LANES`] at a time, each on its own stream (a session with its
    /// own graph when graphs are on): the clips of a round are all enqueued before the first map is
    /// read, so their kernels overlap on the GPU. The maps are those [`CudaNet::predict`] gives.
    pub(crate) fn predict_batch(&self, clips: &[Clip]) -> Result<Vec<SaliencyMap>, ModelError> {
        let mut first = self.lock();
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let want = clips.len().clamp(1, MAX_LANES);
        while lanes.len() + 1 < want {
            let gpu = first.ctx.gpu.fork()?;
            let graph = if self.graphs { GraphMode::Pending } else { GraphMode::Off };
            lanes.push(Session { graph, ctx: Ctx { gpu, fp16: self.fp16, candidates: first.ctx.candidates, profile: None } });
        }
        let mut sessions: Vec<&mut Session> = std::iter::once(&mut *first).chain(lanes.iter_mut()).take(want).collect();
        let mut maps = Vec::with_capacity(clips.len());
        for round in clips.chunks(want) {
            let mut work = vec![];
            for (s, clip) in sessions.iter_mut().zip(round) {
                work.push(self.enqueue(s, clip)?);
            }
            for ((s, w), clip) in sessions.iter_mut().zip(work).zip(round) {
                maps.push(self.collect(s, w, clip)?);
            }
        }
        Ok(maps)
    }

    /// Enqueues `clip` on the session's stream: a replay of its graph, or an eager pass.
    fn enqueue(&self, s: &mut Session, clip: &Clip) -> Res<InFlight> {
        if let GraphMode::Ready(r) = &mut s.graph
            && r.fits(clip)
        {
            r.enqueue(&s.ctx, clip)?;
            return Ok(InFlight::Replay);
        }
        let ctx = &s.ctx;
        ctx.lap(|| "start".into());
        let (video, audio) = upload_clip(ctx, clip)?;
        ctx.lap(|| "upload".into());
        Ok(InFlight::Eager(self.forward(ctx, video, audio)?))
    }

    /// Waits for `work` and reads its map. After the first eager pass of a session with graphs on (cuBLAS
    /// and the memory pool are warm), records the forward pass for the clips that follow.
    fn collect(&self, s: &mut Session, work: InFlight, clip: &Clip) -> Res<SaliencyMap> {
        let [height, width] = self.map_hw;
        let data = match work {
            InFlight::Replay => match &s.graph {
                GraphMode::Ready(r) => r.read(&s.ctx)?,
                _ => unreachable!("a replay was enqueued, so the session has a graph"),
            },
            InFlight::Eager(sal) => {
                let map = sal.download(&s.ctx)?.into_vec();
                s.ctx.lap(|| "download".into());
                if matches!(s.graph, GraphMode::Pending | GraphMode::Ready(_)) {
                    s.graph = match Replay::capture(&s.ctx, clip, self.map_hw, |c, v, a| self.forward(c, v, a)) {
                        Ok(r) => {
                            // replays allocate from the graph's own memory: give the eager pass's cached blocks back
                            s.ctx.gpu.trim_pool()?;
                            GraphMode::Ready(Box::new(r))
                        }
                        Err(e) => {
                            eprintln!("warning: CUDA graph capture failed ({e}); the CUDA engine goes on with eager launches");
                            GraphMode::Failed
                        }
                    };
                }
                map
            }
        };
        Ok(SaliencyMap { width, height, data })
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
        let ctx = &*ctx;
        if let GraphMode::Ready(r) = graph
            && r.fits(clip)
        {
            r.write_inputs(ctx, clip)?;
            return Ok(time_passes(ctx, runs, || Ok(()), |()| r.launch())?);
        }
        let (video, audio) = upload_clip(ctx, clip)?;
        // forward consumes its inputs: each pass gets fresh copies (made before its clock starts)
        let inputs = || Ok((video.copy(ctx)?, audio.as_ref().map(|a| a.copy(ctx)).transpose()?));
        Ok(time_passes(ctx, runs, inputs, |(v, a)| self.forward(ctx, v, a).map(drop))?)
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

/// Milliseconds of each of `runs` passes of `pass` (after one warm-up), each timed from an idle stream
/// to its end; `prepare` makes a pass's inputs before its clock starts.
fn time_passes<T>(ctx: &Ctx, runs: usize, mut prepare: impl FnMut() -> Res<T>, mut pass: impl FnMut(T) -> Res<()>) -> Res<Vec<f64>> {
    let mut times = vec![];
    for i in 0..=runs {
        let inputs = prepare()?;
        ctx.gpu.synchronize()?;
        let t = std::time::Instant::now();
        pass(inputs)?;
        ctx.gpu.synchronize()?;
        if i > 0 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(times)
}

/// The clip's video and (AV models) audio on the device.
fn upload_clip(ctx: &Ctx, clip: &Clip) -> Res<(DTensor, Option<DTensor>)> {
    Ok((DTensor::upload(ctx, &clip.video)?, clip.audio.as_ref().map(|a| DTensor::upload(ctx, a)).transpose()?))
}

#[cfg(test)]
mod tests {
    use super::switch_override;
    use crate::config::{ModelConfig, Variant};
    use crate::model::attention::pooled;
    use crate::model::encoder::block_settings;

    /// Every encoder block of the paper model has a fused attention kernel (no silent fall-back to the
    /// three-pass path when `DTFSAL_CUDA_FLASH_ATTENTION` is on); the tiny model's first stage (head dim 24)
    /// has none.
    #[test]
    fn flash_attention_covers_the_paper_model() {
        let covered = |cfg: &ModelConfig| -> Vec<bool> {
            let mut thw = [cfg.clip_len / 2, cfg.height / 4, cfg.width / 4];
            block_settings(cfg)
                .iter()
                .map(|b| {
                    let ok = dtfsal_kernels::Gpu::attention_flash_supported(b.cout / b.heads, pooled(thw, b.stride_kv));
                    thw = pooled(thw, b.stride_q);
                    ok
                })
                .collect()
        };
        assert!(covered(&ModelConfig::full(Variant::AudioVisual)).iter().all(|&ok| ok));
        let tiny = covered(&ModelConfig::tiny(Variant::AudioVisual));
        assert!(!tiny[0] && tiny[1..].iter().all(|&ok| ok), "{tiny:?}");
    }

    #[test]
    fn the_environment_overrides_the_graphs_setting_either_way() {
        for setting in [false, true] {
            assert_eq!(switch_override(None, setting), setting);
            assert_eq!(switch_override(Some("maybe"), setting), setting);
            assert_eq!(switch_override(Some(""), setting), setting);
            for on in ["1", "true", "YES", "On"] {
                assert!(switch_override(Some(on), setting), "{on}");
            }
            for off in ["0", "false", "No", "OFF"] {
                assert!(!switch_override(Some(off), setting), "{off}");
            }
        }
    }
}
