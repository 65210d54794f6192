//! Implementation of the `dtfsal` element (see the parent module for the behaviour).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use dtfsal_engine::audio::{
    CLIP_AUDIO_SHAPE, LogMelFrontend, STFT_HOP, WINDOW_SAMPLES, sample_index_ns, window_start_frame_ns,
};
use dtfsal_engine::config::ModelConfig;
use dtfsal_engine::default_model;
use dtfsal_engine::model::{
    Backend as EngineBackend, Clip, Model, ModelError, OnnxOptions, OnnxProvider as EngineOnnxProvider, SaliencyMap,
    TritonOptions, cuda,
};
use dtfsal_engine::weights::WeightFile;
use dtfsal_engine::tensor::Tensor;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};

use super::clip_ring::ClipRing;
use super::meta::SaliencyMeta;
use super::preprocess::Preprocessor;
use super::render;
use super::worker::{Done, Job, Notice, Retry, Worker};
use super::{Alignment, Backend, Colormap, Mode, OnnxProvider, Output};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("dtfsal", gst::DebugColorFlags::empty(), Some("DTFSal audio-visual saliency"))
});

/// Clips in flight on the local backends' worker (sync mode) per clip of a pass (`batch`) before the
/// streaming thread waits for one: one pass runs while the next fills.
const MAX_OUTSTANDING: usize = 2;
/// Most clips per pass (`batch`): the CUDA backend's streams ([`dtfsal_engine::model::cuda::MAX_LANES`]).
const MAX_BATCH: u32 = dtfsal_engine::model::cuda::MAX_LANES as u32;
/// Default Triton gRPC endpoint (Triton's default gRPC port).
const DEFAULT_SERVER_URL: &str = "127.0.0.1:8001";
const DEFAULT_MODEL_NAME: &str = "dtfsal";
const DEFAULT_TIMEOUT_MS: u32 = 10_000;
const DEFAULT_MAX_IN_FLIGHT: u32 = 2;
/// Polling period of blocking waits (so flushes and state changes are noticed).
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
struct Settings {
    model: String,
    backend: Backend,
    onnx_provider: OnnxProvider,
    trt_fp16: bool,
    trt_cache_dir: String,
    trt_workspace_mb: u32,
    device_id: i32,
    cuda_graphs: bool,
    batch: u32,
    threads: u32,
    interval: u32,
    alignment: Alignment,
    mode: Mode,
    output: Output,
    colormap: Colormap,
    alpha: f64,
    roi_count: u32,
    server_url: String,
    model_name: String,
    model_version: String,
    timeout_ms: u32,
    max_in_flight: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: String::new(),
            backend: Backend::Cpu,
            onnx_provider: OnnxProvider::Cpu,
            trt_fp16: false,
            trt_cache_dir: String::new(),
            trt_workspace_mb: 0,
            device_id: 0,
            cuda_graphs: true,
            batch: 1,
            threads: 0,
            interval: 1,
            alignment: Alignment::Centre,
            mode: Mode::Sync,
            output: Output::Overlay,
            colormap: Colormap::Jet,
            alpha: 0.5,
            roi_count: 0,
            server_url: DEFAULT_SERVER_URL.into(),
            model_name: DEFAULT_MODEL_NAME.into(),
            model_version: String::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// What a finished job says about the backend, for the bus.
enum BackendNews {
    /// A transient failure (live mode): warn once per outage.
    Trouble(String),
    /// A map after an outage.
    Recovered(u64),
}

/// A frame waiting for its map.
struct Pending {
    index: u64,
    buffer: gst::Buffer,
    info: VideoInfo,
    out_caps: gst::Caps,
}

/// A frame ready to leave, with the map it carries (and how many frames older the map is).
struct Ready {
    pending: Pending,
    map: Option<(Arc<SaliencyMap>, i32)>,
}

/// Per-stream state, created at READY→PAUSED with the model.
struct State {
    mode: Mode,
    interval: u64,
    clip_len: u64,
    label: u64,
    /// Frames of a clip before its map's frame: `label_frame` (centre) or `T − 1` (last).
    back: u64,
    /// Frames of a clip after its map's frame: `T − 1 − back`.
    lookahead: u64,
    cfg: ModelConfig,
    worker: Worker,
    /// Clips on the worker at most (sync: before waiting; live: before skipping clips).
    max_in_flight: usize,
    /// A transient backend failure was reported and no clip has succeeded since (one warning per outage).
    degraded: bool,
    generation: u64,
    in_info: Option<VideoInfo>,
    out_caps: Option<gst::Caps>,
    pre: Option<Preprocessor>,
    ring: ClipRing,
    frontend: LogMelFrontend,
    audio_info: Option<gst_audio::AudioInfo>,
    audio_eos: bool,
    /// Running time (ns) of the first audio not consumed yet, when known.
    audio_next_rt: Option<u64>,
    video_eos: bool,
    pending: VecDeque<Pending>,
    /// Sync: next frame number to analyse.
    next_job: u64,
    maps: BTreeMap<u64, Arc<SaliencyMap>>,
    latest: Option<(u64, Arc<SaliencyMap>)>,
    last_submitted: Option<u64>,
    frame_duration: Option<gst::ClockTime>,
}

impl State {
    fn reset_stream(&mut self) {
        self.generation += 1;
        self.worker.set_generation(self.generation);
        self.ring.clear();
        self.frontend.reset();
        self.audio_eos = false;
        self.audio_next_rt = None;
        self.video_eos = false;
        self.pending.clear();
        self.next_job = 0;
        self.maps.clear();
        self.latest = None;
        self.last_submitted = None;
    }

    fn has_audio(&self) -> bool {
        self.cfg.variant.has_audio()
    }

    /// Frame number of the labelled frame of the clip whose map belongs to frame `j`.
    fn label_index(&self, j: u64) -> i64 {
        j as i64 - self.back as i64 + self.label as i64
    }

    /// Running time (ns) of frame `index` (clamped to the frames kept).
    fn frame_rt(&self, index: i64) -> u64 {
        let Some(f) = self.ring.get_clamped(index) else { return 0 };
        // Numbers outside the stream (start/end repeats) take the time of the frame repeated.
        match f.running_time {
            Some(rt) => rt,
            None => self.frame_duration.map_or(0, |d| d.nseconds().saturating_mul(f.index)),
        }
    }

    /// Whether the audio window of the map of frame `j` is known (arrived, or silence for good).
    fn audio_ready(&self, j: u64) -> bool {
        if !self.has_audio() || self.audio_eos {
            return true;
        }
        let start = window_start_frame_ns(self.frame_rt(self.label_index(j)));
        if self.frontend.window_complete(start) {
            return true;
        }
        let end_sample = start * STFT_HOP as i64 + WINDOW_SAMPLES as i64;
        self.audio_next_rt.is_some_and(|rt| sample_index_ns(rt) >= end_sample)
    }

    /// Running time up to which audio is needed by the clips not yet submitted (sync mode).
    fn audio_needed_until(&self) -> Option<u64> {
        if self.mode != Mode::Sync || !self.has_audio() || self.audio_eos {
            return None;
        }
        let newest = self.ring.newest()?;
        if self.next_job > newest {
            return None;
        }
        let last_job = newest / self.interval * self.interval;
        let start = window_start_frame_ns(self.frame_rt(self.label_index(last_job)));
        let end_sample = (start * STFT_HOP as i64 + WINDOW_SAMPLES as i64).max(0) as u64;
        Some(end_sample.saturating_mul(1_000_000_000 / 16_000))
    }

    fn job_ready(&self, j: u64, force_audio: bool) -> bool {
        let Some(newest) = self.ring.newest() else { return false };
        if j > newest {
            return false;
        }
        let video = self.video_eos || newest >= j + self.lookahead;
        video && (force_audio || self.audio_ready(j))
    }

    /// Builds and queues the clip whose map belongs to frame `j`.
    fn submit(&mut self, j: u64) -> Result<(), String> {
        let video = self
            .ring
            .clip(j as i64 - self.back as i64)
            .ok_or_else(|| "no frames to build a clip from".to_string())?;
        let audio = if self.has_audio() {
            let rt = self.frame_rt(self.label_index(j));
            let (data, coverage) = self.frontend.clip_audio(rt);
            gst::trace!(CAT, "clip {j}: audio centred at {rt} ns, coverage {coverage:?}");
            Some(Tensor::from_vec(&CLIP_AUDIO_SHAPE, data))
        } else {
            None
        };
        let job = Job { generation: self.generation, index: j, clip: Clip { video, audio } };
        if !self.worker.submit(job) {
            return Err("the inference thread has stopped".into());
        }
        self.last_submitted = Some(j);
        Ok(())
    }

    /// Takes a finished job into the map store; `Err` with the engine's message on failure. A transient
    /// failure (live mode; sync mode retries in the worker) leaves the frames with the latest map and
    /// is returned as `Ok(Some(message))` for a warning.
    fn accept(&mut self, done: Done) -> Result<Option<BackendNews>, String> {
        if done.generation != self.generation {
            return Ok(None);
        }
        let map = match done.result {
            Ok(map) => map,
            Err(f) if f.transient && self.mode == Mode::Live => {
                return Ok(Some(BackendNews::Trouble(format!(
                    "inference of frame {} failed, frames keep the latest map: {}",
                    done.index, f.message
                ))));
            }
            Err(f) => return Err(format!("inference of frame {} failed: {}", done.index, f.message)),
        };
        gst::debug!(CAT, "map of frame {} ready in {:?} (clips run together: {})", done.index, done.elapsed, done.batch);
        if self.latest.as_ref().is_none_or(|(i, _)| done.index >= *i) {
            self.latest = Some((done.index, map.clone()));
        }
        if self.mode == Mode::Sync {
            self.maps.insert(done.index, map);
        }
        Ok(self.degraded.then_some(BackendNews::Recovered(done.index)))
    }

    /// Accepts every finished job; news of transient failures and recoveries.
    fn collect(&mut self) -> Result<Vec<BackendNews>, String> {
        let mut warnings = Vec::new();
        while let Some(done) = self.worker.try_recv() {
            warnings.extend(self.accept(done)?);
        }
        Ok(warnings)
    }

    fn map_index(&self, index: u64) -> u64 {
        index / self.interval * self.interval
    }

    /// Sync: moves every front frame whose map is known into `out`.
    fn release_sync(&mut self, out: &mut Vec<Ready>) {
        while let Some(front) = self.pending.front() {
            let m = self.map_index(front.index);
            let Some(map) = self.maps.get(&m).cloned() else { break };
            let offset = (front.index - m) as i32;
            if let Some(p) = self.pending.pop_front() {
                out.push(Ready { pending: p, map: Some((map, offset)) });
            }
            // Maps older than the current one are no longer needed.
            while let Some((&k, _)) = self.maps.first_key_value() {
                if k < m {
                    self.maps.pop_first();
                } else {
                    break;
                }
            }
        }
    }

    /// Live: moves every frame that is due (its look-ahead has arrived, or all at EOS) into `out`
    /// with the latest map.
    fn release_live(&mut self, out: &mut Vec<Ready>, all: bool) {
        let newest = self.ring.newest().unwrap_or(0);
        while let Some(front) = self.pending.front() {
            if !all && front.index + self.lookahead > newest {
                break;
            }
            let map = self.latest.as_ref().map(|(i, m)| (m.clone(), front.index as i64 - *i as i64));
            if let Some(p) = self.pending.pop_front() {
                out.push(Ready { pending: p, map: map.map(|(m, o)| (m, o.clamp(i32::MIN as i64, i32::MAX as i64) as i32)) });
            }
        }
    }
}

pub struct Dtfsal {
    video_pad: gst_base::AggregatorPad,
    audio_pad: gst_base::AggregatorPad,
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// Set between FLUSH_START and the flush (or stop): blocking waits give up.
    flushing: AtomicBool,
    /// Set while [`Dtfsal::restart_after_error`] flushes every pad (it re-enters through the video pad).
    restarting: AtomicBool,
    /// Caps last pushed on the source pad.
    pushed_caps: Mutex<Option<gst::Caps>>,
    /// Silence was injected into the unlinked audio pad.
    silence_sent: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for Dtfsal {
    const NAME: &'static str = "GstDtfsal";
    type Type = super::Dtfsal;
    type ParentType = gst_base::Aggregator;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("video_sink").expect("video_sink template");
        let video_pad = gst::PadBuilder::<gst_base::AggregatorPad>::from_template(&templ).build();
        let templ = klass.pad_template("audio_sink").expect("audio_sink template");
        let audio_pad = gst::PadBuilder::<gst_base::AggregatorPad>::from_template(&templ).build();
        Self {
            video_pad,
            audio_pad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            flushing: AtomicBool::new(false),
            restarting: AtomicBool::new(false),
            pushed_caps: Mutex::new(None),
            silence_sent: AtomicBool::new(false),
        }
    }
}

impl ObjectImpl for Dtfsal {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb(
                        "Path of the DTFSal weight file (.safetensors with the model config in its metadata). \
                         Unset or empty: the embedded demo model (tiny AV, trained on synthetic scenes, not \
                         on human attention). A file that cannot be loaded fails the start (READY->PAUSED).",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("backend", Backend::Cpu)
                    .nick("Backend")
                    .blurb(
                        "Inference backend: cpu (the built-in engine, weight files) or onnx (ONNX Runtime \
                         running an exported .onnx file given as `model`; libonnxruntime from ORT_DYLIB_PATH)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("onnx-provider", OnnxProvider::Cpu)
                    .nick("ONNX provider")
                    .blurb("ONNX Runtime execution provider with backend=onnx: cpu, cuda or tensorrt")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("trt-fp16")
                    .nick("TensorRT fp16")
                    .blurb("onnx-provider=tensorrt: build fp16 engines (trt_fp16_enable)")
                    .default_value(false)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("trt-cache-dir")
                    .nick("TensorRT engine cache")
                    .blurb(
                        "onnx-provider=tensorrt: directory where built engines are kept and reused \
                         (trt_engine_cache_path; empty: no cache, every start rebuilds)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("trt-workspace-mb")
                    .nick("TensorRT workspace")
                    .blurb("onnx-provider=tensorrt: builder workspace in MiB (trt_max_workspace_size; 0: default)")
                    .maximum(1 << 20)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("server-url")
                    .nick("Triton server URL")
                    .blurb("backend=triton: gRPC endpoint of the Triton Inference Server, host:port or http://host:port")
                    .default_value(Some(DEFAULT_SERVER_URL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-name")
                    .nick("Triton model name")
                    .blurb("backend=triton: model name in the server's repository (`dtfsal triton-repo --name`)")
                    .default_value(Some(DEFAULT_MODEL_NAME))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model-version")
                    .nick("Triton model version")
                    .blurb("backend=triton: model version (empty: the server's latest ready version)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("timeout-ms")
                    .nick("Triton timeout")
                    .blurb(
                        "backend=triton: deadline of each request in ms (connect included). A request that \
                         misses it, or a server that cannot be reached, gives a warning: sync mode retries \
                         the clip until the server answers, live mode goes on with the latest map",
                    )
                    .minimum(1)
                    .maximum(3_600_000)
                    .default_value(DEFAULT_TIMEOUT_MS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-in-flight")
                    .nick("Triton requests in flight")
                    .blurb(
                        "backend=triton: requests on the wire at most. Sync mode waits for one to finish \
                         before sending more; live mode drops to the newest clip instead of queueing",
                    )
                    .minimum(1)
                    .maximum(64)
                    .default_value(DEFAULT_MAX_IN_FLIGHT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("Device ID")
                    .blurb("Accelerator index for GPU backends (ignored by the CPU backend)")
                    .minimum(0)
                    .maximum(255)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("cuda-graphs")
                    .nick("CUDA graphs")
                    .blurb(
                        "backend=cuda|cuda-fp16: after the first clip, capture one forward pass as a CUDA graph \
                         and replay it for every later clip (one launch instead of hundreds; the same maps). A \
                         capture the driver refuses gives a warning and the engine goes on eagerly. \
                         DTFSAL_CUDA_GRAPHS=0 or 1 in the environment overrides this",
                    )
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("batch")
                    .nick("Clips per pass")
                    .blurb(
                        "mode=sync, local backends: run up to N queued clips in one pass. backend=cuda|cuda-fp16 \
                         runs them at once, one CUDA stream each, for throughput on files; the other backends \
                         run them in turn. The maps are the same; up to 2N clips are in flight and the frames \
                         they cover are held. Ignored in live mode and by backend=triton (see max-in-flight)",
                    )
                    .minimum(1)
                    .maximum(MAX_BATCH)
                    .default_value(1)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("Worker threads of the CPU engine, or ONNX Runtime's intra-op threads (0: one per core)")
                    .maximum(1024)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb(
                        "Run the model every N frames; frames in between carry the map of the last \
                         analysed frame (1: every frame)",
                    )
                    .minimum(1)
                    .maximum(10_000)
                    .default_value(1)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("alignment", Alignment::Centre)
                    .nick("Alignment")
                    .blurb(
                        "Which frame a clip's map is attached to: centre (the labelled centre frame; \
                         output delayed by T-1-label_frame frames, 15 for 32-frame clips, reported as latency) or last (causal)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", Mode::Sync)
                    .nick("Mode")
                    .blurb(
                        "sync: each frame waits for its map (files); live: never block, frames pass \
                         with the latest map and inference skips to the newest clip when slow",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("output", Output::Overlay)
                    .nick("Output")
                    .blurb(
                        "overlay: heat map blended onto the video; map: GRAY8 saliency video; \
                         passthrough-with-meta: video unchanged. The float map rides as \
                         DtfsalSaliencyMeta in every mode",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("colormap", Colormap::Jet)
                    .nick("Colour map")
                    .blurb("Colour map of the overlay")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("alpha")
                    .nick("Alpha")
                    .blurb("Opacity of the overlay heat map (0: invisible, 1: opaque)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.5)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("roi-count")
                    .nick("ROI count")
                    .blurb(
                        "Attach the N most salient regions as GstVideoRegionOfInterestMeta \
                         (type \"saliency\", parameter \"score\") for ROI-aware encoders (0: none)",
                    )
                    .maximum(64)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "model" => s.model = value.get::<Option<String>>().ok().flatten().unwrap_or_default(),
            "backend" => s.backend = value.get().unwrap_or_default(),
            "onnx-provider" => s.onnx_provider = value.get().unwrap_or_default(),
            "trt-fp16" => s.trt_fp16 = value.get().unwrap_or(false),
            "trt-cache-dir" => s.trt_cache_dir = value.get::<Option<String>>().ok().flatten().unwrap_or_default(),
            "trt-workspace-mb" => s.trt_workspace_mb = value.get().unwrap_or(0),
            "device-id" => s.device_id = value.get().unwrap_or(0),
            "cuda-graphs" => s.cuda_graphs = value.get().unwrap_or(true),
            "batch" => s.batch = value.get::<u32>().unwrap_or(1).clamp(1, MAX_BATCH),
            "threads" => s.threads = value.get().unwrap_or(0),
            "interval" => s.interval = value.get::<u32>().unwrap_or(1).max(1),
            "alignment" => s.alignment = value.get().unwrap_or_default(),
            "mode" => s.mode = value.get().unwrap_or_default(),
            "output" => s.output = value.get().unwrap_or_default(),
            "colormap" => s.colormap = value.get().unwrap_or_default(),
            "alpha" => s.alpha = value.get().unwrap_or(0.5),
            "roi-count" => s.roi_count = value.get().unwrap_or(0),
            "server-url" => {
                s.server_url = value.get::<Option<String>>().ok().flatten().unwrap_or_else(|| DEFAULT_SERVER_URL.into())
            }
            "model-name" => {
                s.model_name = value.get::<Option<String>>().ok().flatten().unwrap_or_else(|| DEFAULT_MODEL_NAME.into())
            }
            "model-version" => s.model_version = value.get::<Option<String>>().ok().flatten().unwrap_or_default(),
            "timeout-ms" => s.timeout_ms = value.get::<u32>().unwrap_or(DEFAULT_TIMEOUT_MS).max(1),
            "max-in-flight" => s.max_in_flight = value.get::<u32>().unwrap_or(DEFAULT_MAX_IN_FLIGHT).max(1),
            other => gst::warning!(CAT, imp = self, "unknown property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "model" => s.model.to_value(),
            "backend" => s.backend.to_value(),
            "onnx-provider" => s.onnx_provider.to_value(),
            "trt-fp16" => s.trt_fp16.to_value(),
            "trt-cache-dir" => s.trt_cache_dir.to_value(),
            "trt-workspace-mb" => s.trt_workspace_mb.to_value(),
            "device-id" => s.device_id.to_value(),
            "cuda-graphs" => s.cuda_graphs.to_value(),
            "batch" => s.batch.to_value(),
            "threads" => s.threads.to_value(),
            "interval" => s.interval.to_value(),
            "alignment" => s.alignment.to_value(),
            "mode" => s.mode.to_value(),
            "output" => s.output.to_value(),
            "colormap" => s.colormap.to_value(),
            "alpha" => s.alpha.to_value(),
            "roi-count" => s.roi_count.to_value(),
            "server-url" => s.server_url.to_value(),
            "model-name" => s.model_name.to_value(),
            "model-version" => s.model_version.to_value(),
            "timeout-ms" => s.timeout_ms.to_value(),
            "max-in-flight" => s.max_in_flight.to_value(),
            _ => pspec.default_value().clone(),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        for pad in [&self.video_pad, &self.audio_pad] {
            if let Err(e) = obj.add_pad(pad) {
                gst::error!(CAT, imp = self, "cannot add pad {}: {e}", pad.name());
            }
        }
    }
}

impl GstObjectImpl for Dtfsal {}

impl ElementImpl for Dtfsal {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "DTFSal audio-visual saliency",
                "Filter/Analyzer/Video/Audio",
                "Predicts where viewers look in a video from its frames and sound (DTFSal), and \
                 overlays the saliency heat map, outputs it as a GRAY8 video, or attaches it as meta",
                "dtfsal-rs developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut formats = crate::caps::VIDEO_FORMATS.to_vec();
            formats.push(VideoFormat::Gray8);
            let src_caps = gst_video::VideoCapsBuilder::new().format_list(formats).build();
            let agg = gst_base::AggregatorPad::static_type();
            vec![
                gst::PadTemplate::with_gtype("src", gst::PadDirection::Src, gst::PadPresence::Always, &src_caps, agg)
                    .expect("src template"),
                gst::PadTemplate::with_gtype(
                    "video_sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &crate::caps::video_sink_caps(),
                    agg,
                )
                .expect("video_sink template"),
                gst::PadTemplate::with_gtype(
                    "audio_sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &crate::caps::audio_sink_caps(),
                    agg,
                )
                .expect("audio_sink template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl Dtfsal {
    /// After a flow error GstAggregator pauses its source task, and only a flush of every sink pad
    /// starts it again. A flush of the video pad alone (the audio pad linked, and ended or failed) made
    /// the video pad accept data again with nobody to take it: the next pushes blocked forever. So when
    /// the video pad's flush finds the task paused, flush the audio pad too (its upstream is not
    /// pushing: it ended, or got the error), and end it again if it had ended.
    fn restart_after_error(&self) {
        // Paused by an error, as opposed to stopped by a flush of every pad (a seek) still in progress,
        // which flushes the source pad too and restarts the task itself. (The flush below comes back
        // here through the video pad's own FLUSH_STOP.)
        let obj = self.obj();
        let src = obj.src_pad();
        if src.task_state() != gst::TaskState::Paused || src.pad_flags().contains(gst::PadFlags::FLUSHING) || self.restarting.swap(true, Ordering::SeqCst) {
            return;
        }
        let audio_ended = self.audio_pad.is_eos();
        gst::info!(CAT, imp = self, "video flushed after an error: flushing the audio pad too, to restart (audio ended: {audio_ended})");
        let start = gst::event::FlushStart::new();
        let stop = gst::event::FlushStop::builder(true).seqnum(start.seqnum()).build();
        for pad in [&self.video_pad, &self.audio_pad] {
            let _ = pad.send_event(start.clone());
        }
        // the audio pad's first: the video pad's completes the flush and restarts the task
        for pad in [&self.audio_pad, &self.video_pad] {
            let _ = pad.send_event(stop.clone());
        }
        if audio_ended {
            let _ = self.audio_pad.send_event(gst::event::Eos::new());
        }
        self.restarting.store(false, Ordering::SeqCst);
    }

    /// An unlinked audio pad would hold a non-live aggregator forever: feed it an empty stream
    /// (stream-start, segment, EOS) so the audio is silence.
    fn inject_silence_if_unlinked(&self) {
        if self.audio_pad.peer().is_some() || self.silence_sent.swap(true, Ordering::SeqCst) {
            return;
        }
        gst::info!(CAT, imp = self, "audio_sink is not linked: the audio is silence");
        let _ = self.audio_pad.send_event(gst::event::StreamStart::new("dtfsal-silence"));
        let _ = self
            .audio_pad
            .send_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new()));
        let _ = self.audio_pad.send_event(gst::event::Eos::new());
    }

    fn running_time(pad: &gst_base::AggregatorPad, t: Option<gst::ClockTime>) -> Option<u64> {
        let seg = pad.segment();
        let seg = seg.downcast_ref::<gst::ClockTime>()?;
        seg.to_running_time(t?).map(|t| t.nseconds())
    }

    /// Feeds one audio buffer to the front end.
    fn push_audio(&self, state: &mut State, buffer: &gst::Buffer) {
        let start = Self::running_time(&self.audio_pad, buffer.pts());
        if let Some(end) = buffer.duration().and_then(|d| buffer.pts().map(|p| p.saturating_add(d))) {
            state.audio_next_rt = Self::running_time(&self.audio_pad, Some(end));
        }
        if !state.has_audio() {
            return;
        }
        if buffer.flags().contains(gst::BufferFlags::GAP) && buffer.size() == 0 {
            // silence for the buffer's duration, which can be hours: not materialised
            let n = buffer.duration().map_or(0, |d| sample_index_ns(d.nseconds()).max(0) as u64);
            let outcome = state.frontend.push_silence(start, n);
            if outcome.gap_samples > 0 || outcome.dropped_samples > 0 {
                gst::debug!(CAT, imp = self, "audio discontinuity: {outcome:?}");
            }
            return;
        }
        let Ok(map) = buffer.map_readable() else { return };
        let samples: Vec<f32> = match state.audio_info.as_ref().map(|i| i.format()) {
            Some(gst_audio::AudioFormat::S16le) => map
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0)
                .collect(),
            Some(gst_audio::AudioFormat::F32le) => map
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            _ => return,
        };
        let outcome = state.frontend.push(start, &samples);
        if outcome.gap_samples > 0 || outcome.dropped_samples > 0 {
            gst::debug!(CAT, imp = self, "audio discontinuity: {outcome:?}");
        }
    }

    /// Consumes audio starting before `target` (running time, ns). `true` when the audio up to
    /// `target` is known (consumed, or the pad ended), `false` when more must arrive first.
    fn consume_audio(&self, state: &mut State, target: Option<u64>, take_all: bool) -> bool {
        loop {
            let Some(buf) = self.audio_pad.peek_buffer() else {
                if self.audio_pad.is_eos() {
                    state.audio_eos = true;
                    return true;
                }
                return match target {
                    None => true,
                    Some(t) => state
                        .frontend
                        .head_sample()
                        .is_some_and(|h| h >= sample_index_ns(t))
                        || state.audio_next_rt.is_some_and(|rt| rt >= t),
                };
            };
            let start = Self::running_time(&self.audio_pad, buf.pts());
            match (target, start) {
                (Some(t), Some(s)) if s >= t => {
                    state.audio_next_rt = Some(s);
                    return true;
                }
                (None, _) if !take_all => return true,
                _ => {}
            }
            self.audio_pad.pop_buffer();
            self.push_audio(state, &buf);
        }
    }

    /// Submits, collects and releases frames. Sync mode may wait for the worker here (never
    /// running inference itself); live mode never waits.
    fn schedule(&self, state: &mut State, drain: bool, out: &mut Vec<Ready>) -> Result<(), gst::FlowError> {
        let fail = |msg: String| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", msg));
            gst::FlowError::Error
        };
        if state.mode == Mode::Live {
            for news in state.collect().map_err(fail)? {
                self.backend_news(state, news);
            }
            self.post_notices(state);
            if !drain {
                if let Some(newest) = state.ring.newest() {
                    if newest >= state.lookahead {
                        let j = newest - state.lookahead;
                        let due = state.last_submitted.is_none_or(|l| j >= l + state.interval);
                        if state.worker.outstanding() < state.max_in_flight && due {
                            state.submit(j).map_err(fail)?;
                        }
                    }
                    state.ring.trim_before(newest.saturating_sub(state.clip_len - 1));
                }
            }
            state.release_live(out, drain);
            return Ok(());
        }
        // Sync.
        let cap = (4 * state.clip_len + (2 + state.max_in_flight as u64) * state.interval) as usize;
        loop {
            for news in state.collect().map_err(fail)? {
                self.backend_news(state, news);
            }
            self.post_notices(state);
            let force_audio = state.pending.len() > cap;
            while state.worker.outstanding() < state.max_in_flight && state.job_ready(state.next_job, force_audio) {
                let j = state.next_job;
                state.submit(j).map_err(fail)?;
                state.next_job = j + state.interval;
                let keep = (state.next_job as i64 - state.back as i64).max(0) as u64;
                state.ring.trim_before(keep);
            }
            state.release_sync(out);
            let next_ready = state.job_ready(state.next_job, force_audio);
            let must_wait = if drain {
                !state.pending.is_empty()
            } else {
                state.worker.outstanding() >= state.max_in_flight && next_ready
                    || (state.pending.len() > cap && state.worker.outstanding() > 0)
            };
            if !must_wait {
                return Ok(());
            }
            if state.worker.outstanding() == 0 && !next_ready {
                // Nothing in flight and nothing can be submitted (cannot happen at EOS, where
                // every clip is ready): release what is left with the latest map.
                state.release_live(out, true);
                return Ok(());
            }
            if state.worker.outstanding() == 0 {
                continue;
            }
            if !out.is_empty() {
                // Frames whose maps are in leave before the next wait (the next call goes on from
                // here): a backlog of ready clips, as at the start, when the first audio window
                // completes, would otherwise hold every frame until all of them are done.
                return Ok(());
            }
            loop {
                if self.flushing.load(Ordering::SeqCst) || self.obj().src_pad().pad_flags().contains(gst::PadFlags::FLUSHING) {
                    return Err(gst::FlowError::Flushing);
                }
                match state.worker.recv_timeout(POLL) {
                    Ok(Some(done)) => {
                        if let Some(news) = state.accept(done).map_err(fail)? {
                            self.backend_news(state, news);
                        }
                        break;
                    }
                    Ok(None) => {
                        self.post_notices(state);
                        continue;
                    }
                    Err(()) => return Err(fail("the inference thread has stopped".into())),
                }
            }
        }
    }

    /// A transient backend failure: one element warning per outage (the stream goes on).
    fn backend_trouble(&self, state: &mut State, message: String) {
        gst::debug!(CAT, imp = self, "{message}");
        if !state.degraded {
            state.degraded = true;
            gst::element_imp_warning!(self, gst::ResourceError::Read, ("Inference backend unavailable: {}", message));
        }
    }

    /// Posts the worker's retry / recovery news as warnings and infos.
    fn post_notices(&self, state: &mut State) {
        for n in state.worker.notices() {
            match n {
                Notice::Retrying { index, message } => {
                    self.backend_trouble(state, format!("inference of frame {index} failed, retrying: {message}"))
                }
                Notice::Recovered { index, after } => {
                    gst::debug!(CAT, imp = self, "frame {index} succeeded after {after:?} of retries");
                    self.backend_news(state, BackendNews::Recovered(index));
                }
            }
        }
    }

    fn backend_news(&self, state: &mut State, news: BackendNews) {
        match news {
            BackendNews::Trouble(message) => self.backend_trouble(state, message),
            BackendNews::Recovered(index) => {
                if std::mem::take(&mut state.degraded) {
                    gst::element_imp_info!(self, gst::ResourceError::Read, ("Inference backend answers again (frame {})", index));
                }
            }
        }
    }

    /// Renders one output buffer.
    fn render(&self, ready: Ready, settings: &Settings, model_size: (usize, usize)) -> Result<gst::Buffer, gst::FlowError> {
        let Ready { pending, map } = ready;
        let info = &pending.info;
        let (w, h) = (info.width() as usize, info.height() as usize);
        let mut buffer = pending.buffer;
        let values = map.as_ref().map(|(m, _)| render::upsample_u8(&m.data, m.width, m.height, w, h));
        match settings.output {
            Output::Overlay => {
                if let Some(values) = &values {
                    let b = buffer.make_mut();
                    match VideoFrameRef::from_buffer_ref_writable(b, info) {
                        Ok(mut frame) => render::overlay(&mut frame, values, settings.colormap.palette(), settings.alpha),
                        Err(_) => gst::warning!(CAT, imp = self, "cannot map frame for the overlay"),
                    }
                }
            }
            Output::Map => {
                let out_info = VideoInfo::from_caps(&pending.out_caps).map_err(|_| gst::FlowError::NotNegotiated)?;
                let mut out = gst::Buffer::with_size(out_info.size()).map_err(|_| gst::FlowError::Error)?;
                {
                    let o = out.get_mut().ok_or(gst::FlowError::Error)?;
                    o.set_pts(buffer.pts());
                    o.set_dts(buffer.dts());
                    o.set_duration(buffer.duration());
                    o.set_offset(buffer.offset());
                    o.set_offset_end(buffer.offset_end());
                    o.set_flags(buffer.flags() & (gst::BufferFlags::DISCONT | gst::BufferFlags::DELTA_UNIT));
                    let mut frame = VideoFrameRef::from_buffer_ref_writable(o, &out_info).map_err(|_| gst::FlowError::Error)?;
                    let zeros;
                    let v = match &values {
                        Some(v) => v,
                        None => {
                            zeros = vec![0u8; w * h];
                            &zeros
                        }
                    };
                    render::write_gray8(&mut frame, v);
                }
                buffer = out;
            }
            Output::PassthroughWithMeta => {}
        }
        if let Some((m, offset)) = &map {
            let b = buffer.make_mut();
            SaliencyMeta::add(b, m.width, m.height, &m.data, *offset);
            if settings.roi_count > 0 {
                let (mw, mh) = model_size;
                for r in render::top_regions(&m.data, m.width, m.height, settings.roi_count as usize) {
                    let sx = w as f64 / mw.max(1) as f64;
                    let sy = h as f64 / mh.max(1) as f64;
                    let rect = (
                        (r.x as f64 * sx).round() as u32,
                        (r.y as f64 * sy).round() as u32,
                        (r.w as f64 * sx).round().max(1.0) as u32,
                        (r.h as f64 * sy).round().max(1.0) as u32,
                    );
                    let mut roi = gst_video::VideoRegionOfInterestMeta::add(b, "saliency", rect);
                    roi.add_param(gst::Structure::builder("dtfsal/saliency").field("score", r.score as f64).build());
                }
            }
        }
        Ok(buffer)
    }

    /// Renders and pushes `ready` frames (called without the state lock).
    fn push_ready(&self, ready: Vec<Ready>, model_size: (usize, usize)) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = lock(&self.settings).clone();
        let obj = self.obj();
        for r in ready {
            let caps = r.pending.out_caps.clone();
            let buffer = self.render(r, &settings, model_size)?;
            {
                let mut pushed = lock(&self.pushed_caps);
                if pushed.as_ref() != Some(&caps) {
                    gst::debug!(CAT, imp = self, "output caps {caps}");
                    obj.set_src_caps(&caps);
                    *pushed = Some(caps);
                }
            }
            let end = buffer.pts().map(|p| p.saturating_add(buffer.duration().unwrap_or(gst::ClockTime::ZERO)));
            obj.finish_buffer(buffer)?;
            if let Some(end) = end {
                obj.set_position(end);
            }
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// Output caps for input `caps` under `output`.
    fn output_caps(output: Output, caps: &gst::Caps, info: &VideoInfo) -> gst::Caps {
        match output {
            Output::Map => {
                let mut out = gst_video::VideoCapsBuilder::new()
                    .format(VideoFormat::Gray8)
                    .width(info.width() as i32)
                    .height(info.height() as i32)
                    .framerate(info.fps())
                    .pixel_aspect_ratio(info.par())
                    .build();
                // A variable rate (framerate=0/1) stays one: VideoInfo reads its max-framerate as the rate.
                if let (Some(s), Some(o)) = (caps.structure(0), out.make_mut().structure_mut(0)) {
                    for field in ["framerate", "max-framerate"] {
                        if let Ok(v) = s.value(field) {
                            o.set_value(field, v.clone());
                        }
                    }
                }
                out
            }
            _ => caps.clone(),
        }
    }
}

impl AggregatorImpl for Dtfsal {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let threads = settings.threads as usize;
        let (model, model_name) = match settings.backend {
            Backend::Cpu if settings.model.is_empty() => {
                (Model::load_default(EngineBackend::Cpu, threads), default_model::NAME.to_string())
            }
            Backend::Cpu => (Model::load_with_threads(&settings.model, EngineBackend::Cpu, threads), settings.model.clone()),
            Backend::Cuda | Backend::CudaFp16 => {
                let b = EngineBackend::Cuda { device: settings.device_id.max(0) as usize, fp16: settings.backend == Backend::CudaFp16 };
                let graphs = cuda::graphs_from_env(settings.cuda_graphs);
                let (file, name) = if settings.model.is_empty() {
                    (default_model::weight_file().map_err(ModelError::from), default_model::NAME.to_string())
                } else {
                    (WeightFile::open(&settings.model).map_err(ModelError::from), settings.model.clone())
                };
                (file.and_then(|f| Model::from_weight_file_with_graphs(f, b, threads, graphs)), name)
            }
            Backend::Onnx if settings.model.is_empty() => {
                return Err(gst::error_msg!(
                    gst::ResourceError::Settings,
                    ["backend=onnx needs `model`: an exported .onnx file (python -m dtfsal.export_onnx)"]
                ));
            }
            Backend::Onnx => {
                let opts = OnnxOptions {
                    provider: match settings.onnx_provider {
                        OnnxProvider::Cpu => EngineOnnxProvider::Cpu,
                        OnnxProvider::Cuda => EngineOnnxProvider::Cuda,
                        OnnxProvider::TensorRt => EngineOnnxProvider::TensorRt,
                    },
                    device_id: settings.device_id,
                    threads,
                    library: None,
                    trt_fp16: settings.trt_fp16,
                    trt_cache_dir: (!settings.trt_cache_dir.is_empty()).then(|| settings.trt_cache_dir.clone().into()),
                    trt_workspace_bytes: (settings.trt_workspace_mb > 0)
                        .then(|| settings.trt_workspace_mb as usize * (1 << 20)),
                    spin: false,
                };
                (Model::load_onnx(&settings.model, &opts), settings.model.clone())
            }
            Backend::Triton => {
                let opts = TritonOptions {
                    url: settings.server_url.clone(),
                    model: settings.model_name.clone(),
                    version: settings.model_version.clone(),
                    timeout: Duration::from_millis(settings.timeout_ms as u64),
                };
                let name = opts.model.clone();
                (Model::load_triton(&opts), name)
            }
        };
        let model = model.map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot load model '{}': {}", model_name, e),
                ["model: {}", model_name]
            )
        })?;
        let cfg = model.config().clone();
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}, {} frames of {}x{}), backend {}{}, {} threads",
            model_name,
            cfg.variant.as_str(),
            cfg.clip_len,
            cfg.width,
            cfg.height,
            model.backend(),
            if model.cuda_net().is_some_and(|n| n.graphs()) { " (CUDA graphs)" } else { "" },
            model.threads()
        );
        let triton = settings.backend == Backend::Triton;
        // local backends in sync mode take up to `batch` queued clips a pass: one batch runs while the
        // next fills
        let batch = if triton || settings.mode == Mode::Live { 1 } else { settings.batch.max(1) as usize };
        let max_in_flight = if triton { settings.max_in_flight.max(1) as usize } else { MAX_OUTSTANDING * batch };
        // the local backends run on one thread; Triton gets one thread per request in flight, and
        // sync mode retries clips the server could not answer (each frame needs its own map)
        let (threads, retry) = match (triton, settings.mode) {
            (false, _) => (1, Retry::Never),
            (true, Mode::Sync) => (max_in_flight, Retry::UntilStopped),
            (true, Mode::Live) => (max_in_flight, Retry::Never),
        };
        let worker = Worker::spawn(Arc::new(model), threads, retry, batch).map_err(|e| {
            gst::error_msg!(gst::CoreError::Failed, ("Cannot start the inference thread: {}", e))
        })?;
        let clip_len = cfg.clip_len as u64;
        let label = cfg.label_frame as u64;
        let back = match settings.alignment {
            Alignment::Centre => label,
            Alignment::Last => clip_len - 1,
        };
        *lock(&self.state) = Some(State {
            mode: settings.mode,
            interval: settings.interval.max(1) as u64,
            clip_len,
            label,
            back,
            lookahead: clip_len - 1 - back,
            ring: ClipRing::new(cfg.clip_len, cfg.width, cfg.height),
            cfg,
            worker,
            max_in_flight,
            degraded: false,
            generation: 0,
            in_info: None,
            out_caps: None,
            pre: None,
            frontend: LogMelFrontend::default(),
            audio_info: None,
            audio_eos: false,
            audio_next_rt: None,
            video_eos: false,
            pending: VecDeque::new(),
            next_job: 0,
            maps: BTreeMap::new(),
            latest: None,
            last_submitted: None,
            frame_duration: None,
        });
        self.flushing.store(false, Ordering::SeqCst);
        self.silence_sent.store(false, Ordering::SeqCst);
        *lock(&self.pushed_caps) = None;
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::SeqCst);
        let state = lock(&self.state).take();
        drop(state); // joins the worker after its current clip
        *lock(&self.pushed_caps) = None;
        self.silence_sent.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        gst::debug!(CAT, imp = self, "flush: resetting rings");
        if let Some(state) = lock(&self.state).as_mut() {
            state.reset_stream();
        }
        self.flushing.store(false, Ordering::SeqCst);
        self.parent_flush()
    }

    fn sink_event(&self, pad: &gst_base::AggregatorPad, event: gst::Event) -> bool {
        use gst::EventView;
        let is_video = pad == &self.video_pad;
        match event.view() {
            EventView::Caps(c) if is_video => {
                let caps = c.caps_owned();
                let Ok(info) = VideoInfo::from_caps(&caps) else {
                    gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Invalid video caps {}", caps));
                    return false;
                };
                let output = lock(&self.settings).output;
                let latency;
                {
                    let mut guard = lock(&self.state);
                    let Some(state) = guard.as_mut() else { return false };
                    let cfg = &state.cfg;
                    state.pre = Preprocessor::new(&info, cfg.width, cfg.height, cfg.video_mean, cfg.video_std);
                    if state.pre.is_none() {
                        drop(guard);
                        gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Unsupported video format in {}", caps));
                        return false;
                    }
                    state.out_caps = Some(Self::output_caps(output, &caps, &info));
                    let fps = info.fps();
                    state.frame_duration = (fps.numer() > 0)
                        .then(|| gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64))
                        .flatten();
                    latency = state.frame_duration.map_or(gst::ClockTime::ZERO, |d| d.saturating_mul(state.lookahead));
                    gst::info!(CAT, imp = self, "video caps {caps}, added latency {latency}");
                    state.in_info = Some(info);
                }
                self.obj().set_latency(latency, Some(latency));
                true
            }
            EventView::Caps(c) => {
                let caps = c.caps_owned();
                let info = gst_audio::AudioInfo::from_caps(&caps).ok();
                if info.is_none() {
                    gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Invalid audio caps {}", caps));
                    return false;
                }
                if let Some(state) = lock(&self.state).as_mut() {
                    state.audio_info = info;
                }
                true
            }
            EventView::StreamStart(_) if is_video => {
                self.inject_silence_if_unlinked();
                self.parent_sink_event(pad, event)
            }
            EventView::Segment(s) if is_video => {
                if let Some(seg) = s.segment().downcast_ref::<gst::ClockTime>() {
                    self.obj().update_segment(seg);
                }
                self.parent_sink_event(pad, event)
            }
            EventView::FlushStart(_) if is_video => {
                self.flushing.store(true, Ordering::SeqCst);
                if self.audio_pad.peer().is_none() {
                    let _ = self.audio_pad.send_event(event.clone());
                }
                self.parent_sink_event(pad, event)
            }
            EventView::FlushStop(_) if is_video => {
                let unlinked = self.audio_pad.peer().is_none();
                let res = self.parent_sink_event(pad, event.clone());
                // The video pad's flush is over. With a linked audio pad that was not flushed too,
                // GstAggregator does not call `flush` (which clears this flag itself).
                self.flushing.store(false, Ordering::SeqCst);
                if unlinked {
                    let _ = self.audio_pad.send_event(event);
                    self.silence_sent.store(false, Ordering::SeqCst);
                    self.inject_silence_if_unlinked();
                } else {
                    self.restart_after_error();
                }
                res
            }
            _ => self.parent_sink_event(pad, event),
        }
    }

    fn sink_query(&self, pad: &gst_base::AggregatorPad, query: &mut gst::QueryRef) -> bool {
        if pad == &self.video_pad {
            if let gst::QueryViewMut::Caps(q) = query.view_mut() {
                let templ = pad.pad_template_caps();
                let caps = match lock(&self.settings).output {
                    Output::Map => templ,
                    _ => {
                        let peer = self.obj().src_pad().peer_query_caps(Some(&templ));
                        peer.intersect_with_mode(&templ, gst::CapsIntersectMode::First)
                    }
                };
                let caps = match q.filter_owned() {
                    Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                return true;
            }
        }
        self.parent_sink_query(pad, query)
    }

    fn next_time(&self) -> Option<gst::ClockTime> {
        self.obj().simple_get_next_time()
    }

    fn update_src_caps(&self, caps: &gst::Caps) -> Result<gst::Caps, gst::FlowError> {
        let guard = lock(&self.state);
        let Some(state) = guard.as_ref() else { return Err(gst::FlowError::Flushing) };
        let out = state.pending.front().map(|p| p.out_caps.clone()).or_else(|| state.out_caps.clone());
        match out {
            None => Err(gst_base::AGGREGATOR_FLOW_NEED_DATA),
            Some(out) if caps.can_intersect(&out) => Ok(out),
            Some(out) => {
                gst::warning!(CAT, imp = self, "downstream refuses {out} (accepts {caps})");
                Err(gst::FlowError::NotNegotiated)
            }
        }
    }

    fn negotiated_src_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        *lock(&self.pushed_caps) = Some(caps.clone());
        self.parent_negotiated_src_caps(caps)
    }

    fn aggregate(&self, timeout: bool) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut ready = Vec::new();
        let model_size;
        let finished;
        {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else { return Err(gst::FlowError::Flushing) };
            model_size = (state.cfg.width, state.cfg.height);
            let vbuf = self.video_pad.peek_buffer();
            let video_eos = vbuf.is_none() && self.video_pad.is_eos();
            let target = match &vbuf {
                Some(b) => {
                    let end = b
                        .pts()
                        .map(|p| p.saturating_add(b.duration().or(state.frame_duration).unwrap_or(gst::ClockTime::ZERO)));
                    Self::running_time(&self.video_pad, end)
                }
                None if video_eos => state.audio_needed_until(),
                None => None,
            };
            let audio_known = self.consume_audio(state, target, vbuf.is_none() && !video_eos);
            if !audio_known && !timeout && (vbuf.is_some() || video_eos) {
                return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
            }
            if let Some(buffer) = vbuf {
                self.video_pad.pop_buffer();
                self.obj().selected_samples(buffer.pts(), buffer.dts(), buffer.duration(), None);
                let (Some(info), Some(pre), Some(out_caps)) =
                    (state.in_info.clone(), state.pre.as_ref(), state.out_caps.clone())
                else {
                    gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Video buffer before caps"));
                    return Err(gst::FlowError::NotNegotiated);
                };
                let planes = match VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info) {
                    Ok(frame) => pre.process(&frame),
                    Err(_) => {
                        gst::warning!(CAT, imp = self, "cannot map video buffer {:?}, dropping it", buffer.pts());
                        return Ok(gst::FlowSuccess::Ok);
                    }
                };
                let rt = Self::running_time(&self.video_pad, buffer.pts());
                let index = state.ring.push(rt, planes);
                state.pending.push_back(Pending { index, buffer, info, out_caps });
                self.schedule(state, false, &mut ready)?;
                finished = false;
            } else if video_eos {
                state.video_eos = true;
                self.schedule(state, true, &mut ready)?;
                finished = state.pending.is_empty();
            } else {
                // Live timeout without video: nothing to do yet.
                return Err(gst_base::AGGREGATOR_FLOW_NEED_DATA);
            }
        }
        self.push_ready(ready, model_size)?;
        if finished {
            gst::debug!(CAT, imp = self, "all frames drained, EOS");
            return Err(gst::FlowError::Eos);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
