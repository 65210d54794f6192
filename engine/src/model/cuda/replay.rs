//! The steady state as a CUDA graph: one forward pass captured with its inputs and output in fixed
//! device buffers, then replayed for every clip of the same shapes (write the inputs, one graph launch,
//! read the map). The graph holds the same kernels, with the same arguments, as the eager pass it was
//! recorded from, so a replay computes the same map (`dtfsal-gpu-check` compares them).

use dtfsal_kernels::{Graph, KernelError};

use super::layers::{Ctx, DTensor, Res};
use crate::model::Clip;

/// Whether the CUDA engine replays graphs, and where it stands.
pub(crate) enum GraphMode {
    /// Eager launches only (graphs not asked for, or `DTFSAL_PROFILE`, whose laps wait for the stream).
    Off,
    /// Asked for; the next clip runs eagerly (warming up cuBLAS and the memory pool) and is then captured.
    Pending,
    /// Replaying this graph for clips of its shapes.
    Ready(Box<Replay>),
    /// The capture failed once (warned); eager from then on.
    Failed,
}

/// A captured forward pass and the buffers its launches are bound to.
pub(crate) struct Replay {
    graph: Graph,
    /// `[3, T, H, W]`, written before each launch.
    video: DTensor,
    /// `[S, 1, Ha, Wa]` (AV models), written before each launch.
    audio: Option<DTensor>,
    /// `[H, W]`: the graph copies its map here.
    map: DTensor,
}

impl Replay {
    /// Records `forward` (which consumes its inputs and returns the `[H, W]` map) on inputs shaped like
    /// `clip`'s. Nothing runs: the inputs are read at each [`Replay::enqueue`].
    pub fn capture(ctx: &Ctx, clip: &Clip, map_hw: [usize; 2], forward: impl FnOnce(&Ctx, DTensor, Option<DTensor>) -> Res<DTensor>) -> Res<Self> {
        let video = DTensor::empty(ctx, clip.video.shape())?;
        let audio = clip.audio.as_ref().map(|a| DTensor::empty(ctx, a.shape())).transpose()?;
        let mut map = DTensor::empty(ctx, &map_hw)?;
        ctx.gpu.synchronize()?;
        let graph = ctx.gpu.capture(|| -> Res<()> {
            // forward frees its inputs as it goes: it gets in-graph copies, so everything the graph
            // allocates it also frees (a graph with live allocations cannot be relaunched)
            let sal = forward(ctx, video.copy(ctx)?, audio.as_ref().map(|a| a.copy(ctx)).transpose()?)?;
            if sal.shape != map_hw {
                return Err(KernelError::Capture(format!("the forward pass made a {:?} map, not {map_hw:?}", sal.shape)));
            }
            ctx.gpu.copy_into(&sal.buf, &mut map.buf)
        })?;
        graph.upload()?;
        Ok(Self { graph, video, audio, map })
    }

    /// Whether `clip` has the shapes this graph was captured for.
    pub fn fits(&self, clip: &Clip) -> bool {
        clip.video.shape() == self.video.shape.as_slice()
            && match (&clip.audio, &self.audio) {
                (Some(a), Some(b)) => a.shape() == b.shape.as_slice(),
                (None, None) => true,
                _ => false,
            }
    }

    /// Uploads `clip` and enqueues one replay (returns before it runs; [`Replay::read`] waits for it).
    pub fn enqueue(&mut self, ctx: &Ctx, clip: &Clip) -> Res<()> {
        self.write_inputs(ctx, clip)?;
        self.launch()
    }

    /// The last replay's map (`[H, W]`, row-major); waits for the stream.
    pub fn read(&self, ctx: &Ctx) -> Res<Vec<f32>> {
        Ok(self.map.download(ctx)?.into_vec())
    }

    /// Uploads `clip` into the graph's input buffers (stream-ordered).
    pub fn write_inputs(&mut self, ctx: &Ctx, clip: &Clip) -> Res<()> {
        assert!(self.fits(clip), "clip shapes differ from the captured graph's");
        ctx.gpu.write(clip.video.data(), &mut self.video.buf)?;
        if let (Some(a), Some(buf)) = (&clip.audio, &mut self.audio) {
            ctx.gpu.write(a.data(), &mut buf.buf)?;
        }
        Ok(())
    }

    /// Enqueues one replay on the inputs already written (for device-side timing).
    pub fn launch(&self) -> Res<()> {
        self.graph.launch()
    }
}
