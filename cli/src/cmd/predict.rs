//! `dtfsal predict`: saliency of a video file through GStreamer and the `dtfsal` element.
//!
//! `filesrc ! decodebin`; video → `videoconvert` → `dtfsal.video_sink`, audio (when the file has
//! some) → `audioconvert ! audioresample` → `dtfsal.audio_sink` (no audio: the element hears
//! silence). The element runs with `mode=sync`, so every frame gets its own map.
//! - `--out DIR` (or no `.mp4`): `output=passthrough-with-meta` → appsink; each frame's float map
//!   (`DtfsalSaliencyMeta`, model resolution) is resized bilinearly to the video size and written
//!   as `DIR/<frame:05d>.png` (1-based, 8-bit gray, 16-bit with `--png16`) — what `dtfsal eval`
//!   reads as predictions.
//! - `--out FILE.mp4`: `output=overlay` → `videoconvert` → I420 → openh264enc ! h264parse
//!   (fallback avenc_mpeg4) → mp4mux → filesink. `--contact-sheet FILE.png` tees the overlay into
//!   an appsink and writes a grid of frames sampled evenly over the video.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use gst::prelude::*;
use gstdtfsal::dtfsal::meta::SaliencyMeta;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::contact_sheet::ContactSheet;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AlignmentArg {
    /// The map belongs to the clip's labelled (centre) frame.
    Centre,
    /// Causal: the map of the clip ending at the frame.
    Last,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendArg {
    /// Portable CPU engine.
    Cpu,
    /// ONNX Runtime on `--onnx-provider`; `--weights` is an exported .onnx file (python -m dtfsal.export_onnx).
    Onnx,
    /// The CUDA engine on GPU `--device-id` (`--fp16`: tensor-core GEMMs); the CPU engine when no GPU.
    Cuda,
    /// A Triton Inference Server (`--server-url`, `--model-name`; repository from `dtfsal triton-repo`).
    Triton,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnnxProviderArg {
    /// ONNX Runtime's CPU kernels (pip install onnxruntime).
    Cpu,
    /// NVIDIA GPU through CUDA + cuDNN (pip install onnxruntime-gpu).
    Cuda,
    /// NVIDIA TensorRT (onnxruntime-gpu + TensorRT); CUDA runs the nodes TensorRT does not take.
    Tensorrt,
}

impl OnnxProviderArg {
    pub fn nick(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Tensorrt => "tensorrt",
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Input video (any container/codec GStreamer can decode; audio is used when present).
    pub video: PathBuf,
    /// Output: a directory of per-frame PNG maps (default `<video stem>_saliency`), or FILE.mp4
    /// for the heat-map overlay video.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// DTFSal weight file (default: the embedded demo model, tiny AV trained on synthetic scenes); with
    /// `--backend onnx`, an exported .onnx file (required).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Which frame of its clip a map is attached to.
    #[arg(long, value_enum, default_value = "centre")]
    pub alignment: AlignmentArg,
    /// Run the model every N frames (frames in between carry the last map).
    #[arg(long, default_value_t = 1)]
    pub interval: u32,
    /// Engine threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: u32,
    /// Clips per pass, 1-8 (the element's `batch`): `--backend cuda` runs them at once, one CUDA stream
    /// each; the other local backends in turn. The maps are the same.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub batch: u32,
    /// Inference backend (onnx: libonnxruntime from ORT_DYLIB_PATH, e.g. from `pip install onnxruntime`).
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendArg,
    /// ONNX Runtime execution provider (with `--backend onnx`).
    #[arg(long, value_enum, default_value = "cpu")]
    pub onnx_provider: OnnxProviderArg,
    /// GPU index (cuda, tensorrt).
    #[arg(long, default_value_t = 0)]
    pub device_id: i32,
    /// TensorRT: build fp16 engines.
    #[arg(long)]
    pub trt_fp16: bool,
    /// `--backend cuda`: fp16 GEMM operands on tensor cores.
    #[arg(long)]
    pub fp16: bool,
    /// `--backend cuda`: launch every kernel of every clip, no CUDA graph replays (the element's
    /// `cuda-graphs=false`; graphs are on by default).
    #[arg(long)]
    pub no_cuda_graphs: bool,
    /// TensorRT: keep built engines in DIR and reuse them (the first start builds, later ones load).
    #[arg(long, value_name = "DIR")]
    pub trt_cache_dir: Option<PathBuf>,
    /// TensorRT: builder workspace in MiB (0: ONNX Runtime's default).
    #[arg(long, default_value_t = 0)]
    pub trt_workspace_mb: u32,
    /// `--backend triton`: gRPC endpoint of the Triton server (host:port).
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub server_url: String,
    /// `--backend triton`: model name in the server's repository.
    #[arg(long, default_value = "dtfsal")]
    pub model_name: String,
    /// `--backend triton`: model version (default: the latest ready one).
    #[arg(long, default_value = "")]
    pub model_version: String,
    /// `--backend triton`: deadline of each request in ms (missed: a warning, the clip is retried).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u32,
    /// `--backend triton`: requests on the wire at most.
    #[arg(long, default_value_t = 2)]
    pub max_in_flight: u32,
    /// Write 16-bit PNGs (map × 65535) instead of 8-bit (map × 255).
    #[arg(long)]
    pub png16: bool,
    /// Also write a contact sheet: a PNG grid of overlay frames sampled evenly over the video
    /// (with `--out FILE.mp4`).
    #[arg(long, value_name = "FILE.png")]
    pub contact_sheet: Option<PathBuf>,
    /// Frames on the contact sheet (4 per row).
    #[arg(long, default_value_t = 12)]
    pub sheet_frames: usize,
}

fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| anyhow!("GStreamer element `{factory}` is not available (missing plugin?)"))
}

/// A `sw x sh` map resized bilinearly (align_corners=False) to `dw x dh` with the engine's resampler.
fn resize_map(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
    let map = dtfsal_engine::tensor::Tensor::from_vec(&[1, 1, sh, sw], src.to_vec());
    dtfsal_engine::ops::resize::trilinear(&map, [1, dh, dw]).into_vec()
}

fn write_png(path: &Path, map: &[f32], w: usize, h: usize, png16: bool) -> Result<()> {
    if png16 {
        let px: Vec<u16> = map.iter().map(|v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16).collect();
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(w as u32, h as u32, px)
            .ok_or_else(|| anyhow!("bad map size"))?
            .save(path)
    } else {
        let px: Vec<u8> = map.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        image::GrayImage::from_raw(w as u32, h as u32, px).ok_or_else(|| anyhow!("bad map size"))?.save(path)
    }
    .with_context(|| format!("writing {}", path.display()))
}

/// The first error on the bus, or `Ok(true)` at EOS, `Ok(false)` when neither is pending.
fn poll_bus(bus: &gst::Bus) -> Result<bool> {
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => {
                let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                let mut text = format!("{src}: {}", e.error());
                if let Some(d) = e.debug() {
                    text.push_str(&format!(" ({d})"));
                }
                bail!("GStreamer error: {text}");
            }
            gst::MessageView::Eos(_) => return Ok(true),
            // e.g. the Triton server unavailable (the clip is retried) and answering again
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            gst::MessageView::Info(i) => eprintln!("info: {}", i.error()),
            _ => {}
        }
    }
    Ok(false)
}

struct Progress {
    bar: ProgressBar,
    has_len: bool,
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(
            None,
            if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(ProgressStyle::with_template("{spinner} {msg} frames").unwrap());
        Self { bar, has_len: false }
    }

    fn update(&mut self, pipeline: &gst::Pipeline, frames: u64, pts: Option<gst::ClockTime>) {
        if !self.has_len
            && let Some(d) = pipeline.query_duration::<gst::ClockTime>()
            && d.mseconds() > 0
        {
            self.bar.set_length(d.mseconds());
            self.bar.set_style(
                ProgressStyle::with_template("{wide_bar} {percent:>3}% {msg} frames, ETA {eta}")
                    .unwrap()
                    .progress_chars("=> "),
            );
            self.has_len = true;
        }
        if let Some(p) = pts {
            self.bar.set_position(p.mseconds());
        }
        self.bar.set_message(frames.to_string());
        if !self.has_len {
            self.bar.tick();
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    if !args.video.is_file() {
        bail!("input video not found: {}", args.video.display());
    }
    if let Some(w) = &args.weights
        && !w.is_file()
    {
        bail!("weight file not found: {}", w.display());
    }
    if args.interval == 0 {
        bail!("--interval must be at least 1");
    }
    let mp4 = args.out.as_ref().is_some_and(|o| o.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp4")));
    if args.contact_sheet.is_some() && !mp4 {
        bail!("--contact-sheet shows the overlay: it needs --out FILE.mp4");
    }
    if args.sheet_frames == 0 {
        bail!("--sheet-frames must be at least 1");
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.video.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        PathBuf::from(format!("{stem}_saliency"))
    });

    gst::init().context("initialising GStreamer")?;
    gstdtfsal::plugin_register_static().context("registering the dtfsal element")?;

    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc").property("location", &args.video).build()?;
    let decode = make("decodebin")?;
    let vconv = make("videoconvert")?;
    let sal = make("dtfsal")?;
    if let Some(w) = &args.weights {
        sal.set_property("model", w.to_string_lossy().as_ref());
    }
    sal.set_property("threads", args.threads);
    sal.set_property("interval", args.interval);
    if !matches!(args.backend, BackendArg::Triton) {
        sal.set_property("batch", args.batch);
    }
    sal.set_property_from_str("alignment", match args.alignment {
        AlignmentArg::Centre => "centre",
        AlignmentArg::Last => "last",
    });
    sal.set_property_from_str("mode", "sync");
    sal.set_property_from_str("output", if mp4 { "overlay" } else { "passthrough-with-meta" });
    if let BackendArg::Cuda = args.backend {
        sal.set_property_from_str("backend", if args.fp16 { "cuda-fp16" } else { "cuda" });
        sal.set_property("device-id", args.device_id);
        sal.set_property("cuda-graphs", !args.no_cuda_graphs);
    }
    if let BackendArg::Onnx = args.backend {
        if args.weights.is_none() {
            bail!("--backend onnx needs --weights M.onnx (an exported model: python -m dtfsal.export_onnx)");
        }
        sal.set_property_from_str("backend", "onnx");
        sal.set_property_from_str("onnx-provider", args.onnx_provider.nick());
        sal.set_property("device-id", args.device_id);
        sal.set_property("trt-fp16", args.trt_fp16);
        if let Some(d) = &args.trt_cache_dir {
            sal.set_property("trt-cache-dir", d.to_string_lossy().as_ref());
        }
        sal.set_property("trt-workspace-mb", args.trt_workspace_mb);
    }
    if let BackendArg::Triton = args.backend {
        if args.weights.is_some() {
            bail!("--backend triton runs the model the server holds (--server-url, --model-name), not --weights");
        }
        sal.set_property_from_str("backend", "triton");
        sal.set_property("server-url", args.server_url.as_str());
        sal.set_property("model-name", args.model_name.as_str());
        sal.set_property("model-version", args.model_version.as_str());
        sal.set_property("timeout-ms", args.timeout_ms);
        sal.set_property("max-in-flight", args.max_in_flight);
    }
    pipeline.add_many([&src, &decode, &vconv, &sal])?;
    src.link(&decode)?;
    vconv.link_pads(Some("src"), &sal, Some("video_sink"))?;

    // Frames seen on the element's output, and the latest pts (progress).
    let frames = Arc::new(AtomicU64::new(0));
    let last_pts = Arc::new(AtomicU64::new(u64::MAX));
    let mut appsink = None;
    let mut thumbs = None;
    if mp4 {
        let conv = make("videoconvert")?;
        let caps = gst::ElementFactory::make("capsfilter")
            .property("caps", gst::Caps::builder("video/x-raw").field("format", "I420").build())
            .build()?;
        let mut chain = vec![conv, caps];
        if gst::ElementFactory::find("openh264enc").is_some() && gst::ElementFactory::find("h264parse").is_some() {
            chain.push(make("openh264enc")?);
            chain.push(make("h264parse")?);
        } else {
            let enc = make("avenc_mpeg4")
                .map_err(|_| anyhow!("no mp4 video encoder: install openh264enc or avenc_mpeg4 (gst-libav)"))?;
            enc.set_property_from_str("bitrate", "4000000");
            chain.push(enc);
        }
        chain.push(make("mp4mux")?);
        chain.push(gst::ElementFactory::make("filesink").property("location", &out).build()?);
        pipeline.add_many(&chain)?;
        gst::Element::link_many(&chain)?;
        if args.contact_sheet.is_some() {
            // sal ! tee ! queue ! <encoder chain>;  tee ! queue ! videoconvert ! RGB ! appsink
            let tee = make("tee")?;
            let (q1, q2, conv) = (make("queue")?, make("queue")?, make("videoconvert")?);
            let rgb = gst::ElementFactory::make("capsfilter")
                .property("caps", gst::Caps::builder("video/x-raw").field("format", "RGB").build())
                .build()?;
            let sink = gst_app::AppSink::builder().sync(false).max_buffers(4).build();
            pipeline.add_many([&tee, &q1, &q2, &conv, &rgb, sink.upcast_ref()])?;
            sal.link(&tee)?;
            gst::Element::link_many([&tee, &q1, &chain[0]])?;
            gst::Element::link_many([&tee, &q2, &conv, &rgb, sink.upcast_ref()])?;
            thumbs = Some(sink);
        } else {
            sal.link(&chain[0])?;
        }
        let (f, p) = (frames.clone(), last_pts.clone());
        sal.static_pad("src").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                f.fetch_add(1, Ordering::Relaxed);
                if let Some(pts) = b.pts() {
                    p.store(pts.nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    } else {
        let sink = gst_app::AppSink::builder().sync(false).build();
        pipeline.add(&sink)?;
        sal.link(&sink)?;
        appsink = Some(sink);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    }

    // Dynamic pads: the first video stream and the first audio stream.
    let video_linked = Arc::new(AtomicBool::new(false));
    let audio_linked = Arc::new(AtomicBool::new(false));
    let pad_error: Arc<Mutex<Option<String>>> = Arc::default();
    {
        let (pipeline_weak, vconv, sal) = (pipeline.downgrade(), vconv.clone(), sal.clone());
        let (vl, al, pe) = (video_linked.clone(), audio_linked.clone(), pad_error.clone());
        decode.connect_pad_added(move |_, pad| {
            let Some(pipeline) = pipeline_weak.upgrade() else { return };
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let Some(name) = caps.structure(0).map(|s| s.name().to_string()) else { return };
            let res: Result<()> = (|| {
                if name.starts_with("video/") && !vl.swap(true, Ordering::SeqCst) {
                    pad.link(&vconv.static_pad("sink").unwrap())?;
                } else if name.starts_with("audio/") && !al.swap(true, Ordering::SeqCst) {
                    let q = make("queue")?;
                    let ac = make("audioconvert")?;
                    let ar = make("audioresample")?;
                    pipeline.add_many([&q, &ac, &ar])?;
                    gst::Element::link_many([&q, &ac, &ar])?;
                    ar.link_pads(None, &sal, Some("audio_sink"))?;
                    for e in [&q, &ac, &ar] {
                        e.sync_state_with_parent()?;
                    }
                    pad.link(&q.static_pad("sink").unwrap())?;
                }
                Ok(())
            })();
            if let Err(e) = res {
                *pe.lock().unwrap() = Some(format!("linking the decoded {name} stream: {e}"));
            }
        });
        let (vl, pe, input) = (video_linked.clone(), pad_error.clone(), args.video.clone());
        decode.connect_no_more_pads(move |d| {
            if !vl.load(Ordering::SeqCst) {
                pe.lock().unwrap().get_or_insert_with(|| format!("no video stream in {}", input.display()));
                gst::element_error!(d, gst::StreamError::WrongType, ("no video stream"));
            }
        });
    }

    let bus = pipeline.bus().unwrap();
    let mut sheet = args.contact_sheet.as_ref().map(|_| ContactSheet::new(args.sheet_frames, 4));
    let result = (|| -> Result<u64> {
        let started = pipeline.set_state(gst::State::Playing);
        if started.is_err() {
            poll_bus(&bus)?;
            bail!("the pipeline failed to start");
        }
        let mut progress = Progress::new();
        let mut written = 0u64;
        loop {
            if let Some(e) = pad_error.lock().unwrap().clone() {
                bail!("{e}");
            }
            if poll_bus(&bus).map_err(|e| pad_error.lock().unwrap().clone().map(|p| anyhow!(p)).unwrap_or(e))? {
                break;
            }
            if let Some(sink) = &appsink {
                match sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                    Some(sample) => {
                        let buffer = sample.buffer().ok_or_else(|| anyhow!("sample without a buffer"))?;
                        let caps = sample.caps().ok_or_else(|| anyhow!("sample without caps"))?;
                        let s = caps.structure(0).ok_or_else(|| anyhow!("empty caps"))?;
                        let (w, h) = (s.get::<i32>("width")? as usize, s.get::<i32>("height")? as usize);
                        let meta = SaliencyMeta::from_buffer(buffer)
                            .ok_or_else(|| anyhow!("frame {} carries no saliency map", written + 1))?;
                        let map = resize_map(&meta.data, meta.width, meta.height, w, h);
                        written += 1;
                        write_png(&out.join(format!("{written:05}.png")), &map, w, h, args.png16)?;
                        frames.store(written, Ordering::Relaxed);
                        if let Some(p) = buffer.pts() {
                            last_pts.store(p.nseconds(), Ordering::Relaxed);
                        }
                    }
                    None if sink.is_eos() => {
                        // Drain the bus for a late error, then stop.
                        poll_bus(&bus)?;
                        break;
                    }
                    None => {}
                }
            } else if let (Some(sink), Some(sheet)) = (&thumbs, sheet.as_mut()) {
                if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                    let buffer = sample.buffer().ok_or_else(|| anyhow!("sample without a buffer"))?;
                    let info = gst_video::VideoInfo::from_caps(sample.caps().ok_or_else(|| anyhow!("no caps"))?)?;
                    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
                        .map_err(|_| anyhow!("unreadable RGB frame"))?;
                    // rows may be padded: copy them tightly
                    let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
                    let data = frame.plane_data(0)?;
                    let mut rgb = Vec::with_capacity(3 * w * h);
                    for row in 0..h {
                        rgb.extend_from_slice(&data[row * stride..row * stride + 3 * w]);
                    }
                    sheet.push(&rgb, w as u32, h as u32)?;
                }
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
            let pts = last_pts.load(Ordering::Relaxed);
            progress.update(
                &pipeline,
                frames.load(Ordering::Relaxed),
                (pts != u64::MAX).then(|| gst::ClockTime::from_nseconds(pts)),
            );
        }
        progress.bar.finish_and_clear();
        Ok(frames.load(Ordering::Relaxed))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    let n = result?;
    if n == 0 {
        bail!("no frames decoded from {}", args.video.display());
    }
    if let (Some(path), Some(sheet)) = (&args.contact_sheet, &sheet) {
        sheet.write(path)?;
        eprintln!("wrote a contact sheet of {} frames to {}", sheet.frames_seen(), path.display());
    }
    if mp4 {
        eprintln!("wrote {n} overlay frames to {}", out.display());
    } else {
        eprintln!("wrote {n} saliency maps to {}", out.display());
    }
    Ok(())
}
