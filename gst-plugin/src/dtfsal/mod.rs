//! The `dtfsal` element: audio-visual saliency of a video stream.
//!
//! ```text
//! gst-launch-1.0 filesrc location=in.mp4 ! qtdemux name=d \
//!   d.video_0 ! queue ! decodebin ! videoconvert ! dtfsal name=s model=model.safetensors ! videoconvert ! autovideosink \
//!   d.audio_0 ! queue ! decodebin ! audioconvert ! audioresample ! s.audio_sink
//! ```
//!
//! # Pads
//! - `video_sink` (always): RGB, RGBA, BGRx, BGRA, I420, NV12; any size and framerate.
//! - `audio_sink` (always): F32LE or S16LE, mono, 16 kHz (`audioconvert ! audioresample` upstream).
//!   Unlinked or ended audio is silence: it never stalls the video.
//! - `src`: the input video (same caps) for `output=overlay` and `output=passthrough-with-meta`,
//!   GRAY8 at the input size for `output=map`.
//!
//! # Synchronisation
//! The element is a `GstAggregator`. For each video frame it first consumes the audio buffers
//! that start before the frame's end (running time), feeding them to the streaming log-mel
//! front end, then pre-processes the frame into the [`ClipRing`](clip_ring::ClipRing). Clips
//! go to an inference thread; maps come back and are rendered onto the frames they belong to.
//!
//! # Alignment and latency
//! With `alignment=centre` a map belongs to the labelled (centre) frame of its clip, frame
//! `label_frame` (16 of 32): the clip of frame `n` is frames `n − 16 … n + 15`, so a frame leaves
//! the element once 15 more frames have arrived, and the element reports those 15 frame
//! durations as its latency. With `alignment=last` the clip of frame `n` ends at `n` (causal, no
//! added latency), and the map is attached to `n`.
//! Frames before the first (and, at EOS, after the last) repeat the first (last) frame.
//!
//! # Modes
//! - `sync` (files): every frame waits for its own map (`interval` > 1: the map of the last
//!   analysed frame, every `interval`-th). The output does not depend on timing: it equals
//!   running the engine on the same clips. A clip also waits for the 1.6 s audio window centred on
//!   its labelled frame (or audio EOS).
//! - `live`: never blocks on inference. Frames pass with the latest finished map; a new clip
//!   (the newest) is submitted whenever the worker is idle, so slow inference lowers the map
//!   rate, not the frame rate.
//!
//! # Meta
//! See [`meta`] for the float map attached to every output buffer and how to read it from
//! Rust or C. With `roi-count` > 0 the top regions are also attached as
//! `GstVideoRegionOfInterestMeta` (type `saliency`, with a `score` parameter), which ROI-aware
//! encoders (`x264enc`, `vaapih264enc`, `nvh264enc` with `roi` support) can use.
use gst::glib;
use gst::prelude::*;

pub mod clip_ring;
mod imp;
pub mod meta;
pub mod preprocess;
pub mod render;
pub mod worker;

glib::wrapper! {
    /// The `dtfsal` element (see the module docs).
    pub struct Dtfsal(ObjectSubclass<imp::Dtfsal>) @extends gst_base::Aggregator, gst::Element, gst::Object;
}

/// Inference backend.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstDtfsalBackend")]
pub enum Backend {
    /// Portable CPU engine (GEMM + rayon).
    #[default]
    #[enum_value(name = "CPU: portable engine (GEMM + rayon threads)", nick = "cpu")]
    Cpu = 0,
    /// ONNX Runtime on the provider of `onnx-provider`; `model` is an exported .onnx file.
    #[enum_value(
        name = "ONNX Runtime: an exported .onnx model (python -m dtfsal.export_onnx) on onnx-provider",
        nick = "onnx"
    )]
    Onnx = 1,
    /// The CUDA engine on GPU `device-id` (falls back to the CPU engine, with a warning, without a GPU).
    #[enum_value(name = "CUDA: the engine on GPU device-id, fp32 (CPU engine when no GPU)", nick = "cuda")]
    Cuda = 2,
    /// As `cuda`, with fp16 GEMM operands on tensor cores.
    #[enum_value(name = "CUDA, fp16 tensor-core GEMMs", nick = "cuda-fp16")]
    CudaFp16 = 3,
    /// A Triton Inference Server over gRPC: `server-url`, `model-name`, `model-version`, `timeout-ms`,
    /// `max-in-flight`; `model` is not used.
    #[enum_value(
        name = "Triton: a model served by a Triton Inference Server (server-url, model-name; dtfsal triton-repo)",
        nick = "triton"
    )]
    Triton = 4,
}

/// ONNX Runtime execution provider (backend=onnx).
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstDtfsalOnnxProvider")]
pub enum OnnxProvider {
    #[default]
    #[enum_value(name = "CPU: ONNX Runtime's CPU kernels (pip install onnxruntime)", nick = "cpu")]
    Cpu = 0,
    #[enum_value(name = "CUDA: NVIDIA GPU through CUDA + cuDNN (pip install onnxruntime-gpu)", nick = "cuda")]
    Cuda = 1,
    #[enum_value(
        name = "TensorRT: NVIDIA TensorRT, CUDA for the nodes it does not take (onnxruntime-gpu + TensorRT)",
        nick = "tensorrt"
    )]
    TensorRt = 2,
}

/// Which frame of its clip a map is attached to.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstDtfsalAlignment")]
pub enum Alignment {
    #[default]
    #[enum_value(
        name = "Centre: the map belongs to the clip's labelled (centre) frame; adds T/2 frames of latency",
        nick = "centre"
    )]
    Centre = 0,
    #[enum_value(name = "Last: causal, the map of the clip ending at this frame; no added latency", nick = "last")]
    Last = 1,
}

/// Scheduling of inference against the stream.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstDtfsalMode")]
pub enum Mode {
    #[default]
    #[enum_value(name = "Sync: every frame waits for its map (files, offline processing)", nick = "sync")]
    Sync = 0,
    #[enum_value(
        name = "Live: never block; frames pass with the latest map, slow inference skips to the newest clip",
        nick = "live"
    )]
    Live = 1,
}

/// What the source pad carries.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstDtfsalOutput")]
pub enum Output {
    #[default]
    #[enum_value(name = "Overlay: the input video with the heat map alpha-blended", nick = "overlay")]
    Overlay = 0,
    #[enum_value(name = "Map: GRAY8 saliency video at the input size", nick = "map")]
    Map = 1,
    #[enum_value(
        name = "Passthrough with meta: the input video unchanged, the map only as meta",
        nick = "passthrough-with-meta"
    )]
    PassthroughWithMeta = 2,
}

/// Overlay colour map.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstDtfsalColormap")]
pub enum Colormap {
    #[default]
    #[enum_value(name = "Jet", nick = "jet")]
    Jet = 0,
    #[enum_value(name = "Turbo", nick = "turbo")]
    Turbo = 1,
    #[enum_value(name = "Inferno", nick = "inferno")]
    Inferno = 2,
    #[enum_value(name = "Gray", nick = "gray")]
    Gray = 3,
}

impl Colormap {
    pub fn palette(self) -> render::Palette {
        match self {
            Colormap::Jet => render::Palette::Jet,
            Colormap::Turbo => render::Palette::Turbo,
            Colormap::Inferno => render::Palette::Inferno,
            Colormap::Gray => render::Palette::Gray,
        }
    }
}

/// Registers the element (and the saliency meta) with `plugin`.
pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    gst::Element::register(Some(plugin), "dtfsal", gst::Rank::NONE, Dtfsal::static_type())
}
