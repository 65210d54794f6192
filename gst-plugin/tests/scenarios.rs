//! Reliability scenarios of the `dtfsal` element (issue #10): each runs under a watchdog (a hard
//! time bound: the test fails instead of hanging), fails on any error message on the bus and on a
//! panic in any thread other than the test's own (streaming threads, the inference worker, the
//! engine's pool), and checks that every input video frame comes out exactly once with its
//! timestamp (or what README documents for the case).
//!
//! Covered elsewhere (`tests/element.rs`): flushing seek mid-clip (`flushing_seek_resets_and_keeps_timestamps`),
//! EOS mid-clip (`eos_mid_clip_drains_every_frame_harness`), resolution change
//! (`resolution_change_mid_stream_renegotiates`), audio pad unlinked
//! (`audio_unlinked_still_produces_every_frame`), audio EOS at once
//! (`audio_eos_at_once_still_produces_every_frame`), a live source with a backend slower than real time
//! (`live_mode_keeps_the_frame_rate_with_a_slow_model`), a bad model path (`bad_model_path_posts_an_error_naming_it`).
//!
//! The tests of this file run one at a time (they count threads, and their time bounds hold on a
//! busy two-core machine that way). Frames are 64x48 RGB; the model is the committed tiny test model.
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdtfsal::dtfsal::meta::SaliencyMeta;

mod common;
use common::{init, launch};

const FPS: u64 = 25;
const FRAME_NS: u64 = 1_000_000_000 / FPS;
const W: u32 = 64;
const H: u32 = 48;

fn model_path() -> String {
    format!("{}/../tests/data/tiny-av.weights.safetensors", env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Watchdog, panic record, serialisation.

/// Scenarios run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());
/// Panics seen on threads other than a scenario's own (streaming threads, workers).
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
const BODY_PREFIX: &str = "scenario:";

fn record_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("<unnamed>").to_string();
            if !name.starts_with(BODY_PREFIX) && !name.starts_with("main") {
                PANICS.lock().unwrap_or_else(|e| e.into_inner()).push(format!("thread {name}: {info}"));
            }
            default(info);
        }));
    });
}

/// `d` times `DTFSAL_TEST_TIME_SCALE` (default 1; `scripts/sanitize.sh` sets a larger one for the
/// instrumented build).
fn scaled(d: Duration) -> Duration {
    let k = std::env::var("DTFSAL_TEST_TIME_SCALE").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(1.0);
    d.mul_f64(k.max(1.0))
}

/// Runs `body` on its own thread; fails the test if it does not finish within `limit` (scaled; a
/// deadlock or stall: the stuck thread is left behind, the test fails instead of hanging), if it
/// panics, or if any other thread panicked meanwhile.
fn scenario(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let limit = scaled(limit);
    init();
    record_panics();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = std::thread::current().name().unwrap_or("scenario").to_string();
    let before = PANICS.lock().unwrap_or_else(|e| e.into_inner()).len();
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    let handle = std::thread::Builder::new()
        .name(format!("{BODY_PREFIX}{name}"))
        .spawn(move || {
            body();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => {
            if let Err(p) = handle.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(RecvTimeoutError::Timeout) => {
            // Should the stuck thread keep the process from ending (a lock taken at exit), the run
            // still ends, failed, after the other tests had time to run.
            std::thread::spawn(|| {
                std::thread::sleep(Duration::from_secs(300));
                eprintln!("watchdog: a scenario timed out 300 s ago and the process is still running: aborting");
                std::process::abort();
            });
            panic!("{name}: not done within {limit:?} (watchdog: deadlock or stall)")
        }
    }
    eprintln!("{name}: {:.1} s", start.elapsed().as_secs_f64());
    let panics = PANICS.lock().unwrap_or_else(|e| e.into_inner())[before..].to_vec();
    assert!(panics.is_empty(), "panics on other threads: {panics:#?}");
}

// ---------------------------------------------------------------------------------------------
// Pipelines, feeders, outputs.

/// Samples reaching appsink `name`, with their wall-clock arrival.
type Outputs = Arc<Mutex<Vec<(gst::Sample, Instant)>>>;

fn collect(pipeline: &gst::Pipeline, name: &str) -> Outputs {
    let out: Outputs = Arc::new(Mutex::new(Vec::new()));
    let sink = pipeline.by_name(name).expect("appsink present").downcast::<gst_app::AppSink>().expect("is an appsink");
    let o = out.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                o.lock().unwrap().push((sample, Instant::now()));
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    out
}

fn buffers(out: &Outputs) -> Vec<gst::Buffer> {
    out.lock().unwrap().iter().map(|(s, _)| s.buffer_owned().unwrap()).collect()
}

fn pts_ns(buffers: &[gst::Buffer]) -> Vec<u64> {
    buffers.iter().map(|b| b.pts().expect("output has a PTS").nseconds()).collect()
}

/// PTS relative to the first one.
fn pts_steps(buffers: &[gst::Buffer]) -> Vec<u64> {
    let pts = pts_ns(buffers);
    pts.iter().map(|p| p - pts.first().copied().unwrap_or(0)).collect()
}

/// Waits for EOS (panics on an error message or after `secs`); returns the warnings posted.
fn wait_eos(pipeline: &gst::Pipeline, secs: u64) -> Vec<String> {
    let bus = pipeline.bus().unwrap();
    let deadline = Instant::now() + scaled(Duration::from_secs(secs));
    let mut warnings = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_nseconds(left.as_nanos() as u64),
                &[gst::MessageType::Eos, gst::MessageType::Error, gst::MessageType::Warning],
            )
            .unwrap_or_else(|| panic!("no EOS within {secs} s"));
        match msg.view() {
            gst::MessageView::Eos(_) => return warnings,
            gst::MessageView::Error(e) => {
                panic!("error from {:?}: {} ({:?})", e.src().map(|s| s.path_string()), e.error(), e.debug())
            }
            gst::MessageView::Warning(w) => warnings.push(format!("{:?}: {}", w.src().map(|s| s.path_string()), w.error())),
            _ => {}
        }
    }
}

/// Error messages waiting on the bus (none expected).
fn assert_no_error(pipeline: &gst::Pipeline) {
    let bus = pipeline.bus().unwrap();
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("error from {:?}: {} ({:?})", e.src().map(|s| s.path_string()), e.error(), e.debug());
        }
    }
}

fn video_info(fps: gst::Fraction) -> gst_video::VideoInfo {
    gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, W, H).fps(fps).build().unwrap()
}

fn audio_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("layout", "interleaved")
        .field("rate", 16_000i32)
        .field("channels", 1i32)
        .build()
}

/// A frame of the moving test pattern with `pts` (and `duration`, when given).
fn frame(info: &gst_video::VideoInfo, i: u64, pts: u64, duration: Option<u64>) -> gst::Buffer {
    let mut data = vec![0u8; info.size()];
    let stride = info.stride()[0] as usize;
    for y in 0..H as usize {
        for x in 0..W as usize {
            let o = y * stride + x * 3;
            data[o] = ((x * 4 + i as usize * 7) % 256) as u8;
            data[o + 1] = ((y * 5 + i as usize * 3) % 256) as u8;
            data[o + 2] = ((x + y + i as usize * 11) % 256) as u8;
        }
    }
    let mut buf = gst::Buffer::from_mut_slice(data);
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(pts));
        b.set_duration(duration.map(gst::ClockTime::from_nseconds));
    }
    buf
}

/// `n` frames of 25 fps from frame number `first` (PTS = number × 40 ms).
fn frames(info: &gst_video::VideoInfo, first: u64, n: u64) -> Vec<Item> {
    (first..first + n).map(|i| Item::Buf(frame(info, i, i * FRAME_NS, Some(FRAME_NS)))).collect()
}

/// Audio (a 440 Hz tone) from `start_ns` lasting `len_ns`, in 100 ms buffers.
fn audio(start_ns: u64, len_ns: u64) -> Vec<Item> {
    let chunk = 100_000_000u64;
    let mut items = Vec::new();
    let mut t = start_ns;
    while t < start_ns + len_ns {
        let d = chunk.min(start_ns + len_ns - t);
        let first = t * 16 / 1_000_000;
        let n = (d * 16 / 1_000_000) as usize;
        let wave: Vec<u8> = (0..n)
            .flat_map(|k| (0.3 * (2.0 * std::f32::consts::PI * 440.0 * (first + k as u64) as f32 / 16_000.0).sin()).to_le_bytes())
            .collect();
        let mut b = gst::Buffer::from_mut_slice(wave);
        {
            let b = b.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(t));
            b.set_duration(gst::ClockTime::from_nseconds(d));
        }
        items.push(Item::Buf(b));
        t += d;
    }
    items
}

/// What a feeder pushes, in order.
enum Item {
    Buf(gst::Buffer),
    Ev(gst::Event),
    /// Wait until this long after the feeders' common start (live pacing).
    At(Duration),
}

/// A source pad linked to one of the element's sink pads, pushing from its own thread as an
/// upstream element would (pushes block while the aggregator's pad queue is full). `live`: it
/// answers the latency query as a live source.
struct Feeder {
    pad: gst::Pad,
}

impl Feeder {
    fn new(sink: &gst::Pad, live: bool) -> Self {
        let pad = gst::Pad::builder(gst::PadDirection::Src)
            .name(format!("feed_{}", sink.name()))
            .query_function(move |pad, parent, query| match query.view_mut() {
                gst::QueryViewMut::Latency(q) if live => {
                    q.set(true, gst::ClockTime::ZERO, gst::ClockTime::NONE);
                    true
                }
                _ => gst::Pad::query_default(pad, parent, query),
            })
            .build();
        pad.set_active(true).unwrap();
        pad.link(sink).unwrap();
        Self { pad }
    }

    /// Stream-start, caps and a TIME segment from 0, then `items`; stops at the first refused push.
    fn start(&self, caps: gst::Caps, items: Vec<Item>, t0: Instant) -> JoinHandle<Result<(), String>> {
        let mut all = vec![
            Item::Ev(gst::event::StreamStart::new(&format!("feed-{}", self.pad.name()))),
            Item::Ev(gst::event::Caps::new(&caps)),
            Item::Ev(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())),
        ];
        all.extend(items);
        self.push(all, t0)
    }

    /// Pushes `items` (no stream header) from a new thread.
    fn push(&self, items: Vec<Item>, t0: Instant) -> JoinHandle<Result<(), String>> {
        let pad = self.pad.clone();
        std::thread::Builder::new()
            .name(format!("feeder-{}", pad.name()))
            .spawn(move || {
                for item in items {
                    match item {
                        Item::Buf(b) => {
                            let pts = b.pts();
                            pad.push(b).map_err(|e| format!("buffer {pts:?} refused: {e:?}"))?;
                        }
                        Item::Ev(e) => {
                            let t = e.type_();
                            if !pad.push_event(e) {
                                return Err(format!("event {t:?} refused"));
                            }
                        }
                        Item::At(d) => {
                            if let Some(wait) = (t0 + d).checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                    }
                }
                Ok(())
            })
            .unwrap()
    }
}

/// `dtfsal PROPS ! appsink`, the element's two sink pads fed by the test.
fn fed_pipeline(props: &str, live: bool) -> (gst::Pipeline, gst::Element, Feeder, Feeder, Outputs) {
    let p = launch(&format!("dtfsal name=s model={} {props} ! appsink name=out sync=false", model_path()));
    let s = p.by_name("s").unwrap();
    let v = Feeder::new(&s.static_pad("video_sink").unwrap(), live);
    let a = Feeder::new(&s.static_pad("audio_sink").unwrap(), live);
    let out = collect(&p, "out");
    (p, s, v, a, out)
}

fn joined(h: JoinHandle<Result<(), String>>) {
    h.join().expect("feeder thread").expect("every push accepted");
}

/// Plays a pipeline from [`fed_pipeline`]: streams `audio` and `video` (caps `video_caps`), each then
/// EOS, waits for EOS on the bus, joins the feeders and stops the pipeline. Returns the buffers that
/// left and the warnings posted.
fn play_to_eos(
    (p, v, a, out): (&gst::Pipeline, &Feeder, &Feeder, &Outputs),
    video_caps: gst::Caps,
    mut video: Vec<Item>,
    mut audio: Vec<Item>,
) -> (Vec<gst::Buffer>, Vec<String>) {
    p.set_state(gst::State::Playing).unwrap();
    let t0 = Instant::now();
    audio.push(Item::Ev(gst::event::Eos::new()));
    video.push(Item::Ev(gst::event::Eos::new()));
    let ha = a.start(audio_caps(), audio, t0);
    let hv = v.start(video_caps, video, t0);
    let warnings = wait_eos(p, 80);
    joined(hv);
    joined(ha);
    p.set_state(gst::State::Null).unwrap();
    (buffers(out), warnings)
}

/// `items` with the DISCONT flag set on the first buffer.
fn discont(mut items: Vec<Item>) -> Vec<Item> {
    if let Some(Item::Buf(b)) = items.first_mut() {
        b.make_mut().set_flags(gst::BufferFlags::DISCONT);
    }
    items
}

/// Sync mode with `interval`: every frame carries the map of the last analysed frame.
fn assert_sync_maps(buffers: &[gst::Buffer], interval: i32) {
    for (i, b) in buffers.iter().enumerate() {
        let m = SaliencyMeta::from_buffer(b).unwrap_or_else(|| panic!("frame {i} carries no map"));
        assert_eq!(m.frame_offset, i as i32 % interval, "frame {i}");
        assert!(m.data.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)), "frame {i}: map values");
    }
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix)))
                .count()
        })
        .unwrap_or(0)
}

/// Waits up to `secs` for no thread named `prefix*` to be left.
fn wait_no_threads(prefix: &str, secs: u64) -> usize {
    let deadline = Instant::now() + scaled(Duration::from_secs(secs));
    loop {
        let n = threads_named(prefix);
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Watchdog bound of each scenario (each takes 2-15 s on a busy two-core machine).
const LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// Audio ends (EOS) after 1 s of a 5 s stream: the rest of the video is analysed with silence,
/// every frame leaves with its timestamp and map; no warning (README: a finished audio pad is silence).
#[test]
fn audio_ending_early_is_silence_for_the_rest() {
    scenario(LIMIT, || {
        let (p, _, v, a, out) = fed_pipeline("interval=16", false);
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        let (bufs, warnings) = play_to_eos((&p, &v, &a, &out), info.to_caps().unwrap(), frames(&info, 0, 125), audio(0, 1_000_000_000));
        assert_eq!(pts_ns(&bufs), (0..125).map(|i| i * FRAME_NS).collect::<Vec<_>>());
        assert_sync_maps(&bufs, 16);
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// The audio's timestamps start 2.5 s after the video's (a late-starting track): the first 2.5 s
/// are analysed with silence, nothing waits for audio that will never cover them.
#[test]
fn audio_starting_seconds_after_the_video() {
    scenario(LIMIT, || {
        let (p, _, v, a, out) = fed_pipeline("interval=16", false);
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        let (bufs, warnings) = play_to_eos((&p, &v, &a, &out), info.to_caps().unwrap(), frames(&info, 0, 100), audio(2_500_000_000, 1_500_000_000));
        assert_eq!(pts_ns(&bufs), (0..100).map(|i| i * FRAME_NS).collect::<Vec<_>>());
        assert_sync_maps(&bufs, 16);
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// Runs `videotestsrc is-live=true` (100 frames, 4 s) and an `appsrc is-live=true` audio source
/// (`AUDIO_TAIL` after it) through `dtfsal mode=live`, pushing the audio (timestamps from 0) only
/// `audio_at` after the start. Returns the outputs with their arrival, the warnings, the start and
/// the time taken.
fn live_with_late_audio(audio_tail: &str, audio_at: Duration) -> (Vec<(gst::Sample, Instant)>, Vec<String>, Instant, Duration) {
    let p = launch(&format!(
        "videotestsrc is-live=true num-buffers=100 ! video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
         ! dtfsal name=s model={} mode=live alignment=last ! appsink name=out sync=false \
         appsrc name=a is-live=true format=time {audio_tail} ! s.audio_sink",
        model_path()
    ));
    let out = collect(&p, "out");
    let a = p.by_name("a").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    a.set_caps(Some(&audio_caps()));
    p.set_state(gst::State::Playing).unwrap();
    let t0 = Instant::now();
    std::thread::sleep(audio_at);
    for item in audio(0, 100 * FRAME_NS) {
        if let Item::Buf(b) = item {
            a.push_buffer(b).unwrap();
        }
    }
    a.end_of_stream().unwrap();
    let warnings = wait_eos(&p, 60);
    let elapsed = t0.elapsed();
    p.set_state(gst::State::Null).unwrap();
    let got = out.lock().unwrap().clone();
    (got, warnings, t0, elapsed)
}

/// Live pipeline, `mode=live`: the audio (timestamps from 0) only starts arriving 2 s after the
/// video in wall time. The video does not wait for it: frames flow during those 2 s (the aggregator
/// times out on the empty audio pad), the late audio is consumed when it comes, every frame leaves
/// once, in time. When the pipeline's latency cannot be configured (an `appsrc is-live=true` with no
/// queue reports a maximum latency below the video's minimum; GStreamer's aggregator warns
/// "Impossible to configure latency" and stops timing out), the video waits for the audio instead
/// (README): still every frame, no error, no deadlock.
#[test]
fn live_audio_arriving_seconds_late_in_wall_time() {
    scenario(LIMIT, || {
        let audio_at = Duration::from_secs(2);
        // a live videotestsrc stamps frames with the running time at its start: 40 ms steps from there
        let want: Vec<u64> = (0..100).map(|i| i * FRAME_NS).collect();
        let (got, warnings, t0, elapsed) = live_with_late_audio("! queue", audio_at);
        let bufs: Vec<gst::Buffer> = got.iter().map(|(s, _)| s.buffer_owned().unwrap()).collect();
        assert_eq!(pts_steps(&bufs), want);
        let before_audio = got.iter().filter(|(_, t)| t.duration_since(t0) < audio_at).count();
        assert!(before_audio >= 25, "only {before_audio} frames left before the audio came: the video waited for it");
        // 4 s of video; a stall waiting for audio or one clip per frame would take far longer.
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        assert!(bufs.iter().any(|b| SaliencyMeta::from_buffer(b).is_some()), "no map at all");
        assert!(warnings.is_empty(), "{warnings:?}");

        let (got, warnings, _, elapsed) = live_with_late_audio("", audio_at);
        let bufs: Vec<gst::Buffer> = got.iter().map(|(s, _)| s.buffer_owned().unwrap()).collect();
        assert_eq!(pts_steps(&bufs), want);
        assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
        assert!(warnings.iter().all(|w| w.contains("clock problem")), "{warnings:?}");
    });
}

/// 0.5 s of video missing (a timestamp gap, the next frame flagged DISCONT), and the same 0.5 s of
/// audio signalled by a GAP event: every frame that came leaves once with its own timestamp; the
/// clip ring counts frames, so the clips span the gap; the audio gap is silence.
#[test]
fn timestamp_gap_in_video_and_gap_event_on_audio() {
    scenario(LIMIT, || {
        let (p, _, v, a, out) = fed_pipeline("interval=16", false);
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        let mut audio_items = audio(0, 1_000_000_000);
        audio_items.push(Item::Ev(
            gst::event::Gap::builder(gst::ClockTime::from_seconds(1)).duration(gst::ClockTime::from_mseconds(500)).build(),
        ));
        audio_items.extend(audio(1_500_000_000, 1_500_000_000));
        // frames 0..25 (0-0.96 s), then 37..75 (1.48-2.96 s)
        let mut video_items = frames(&info, 0, 25);
        video_items.extend(discont(frames(&info, 37, 38)));
        let (bufs, warnings) = play_to_eos((&p, &v, &a, &out), info.to_caps().unwrap(), video_items, audio_items);
        let want: Vec<u64> = (0..25).chain(37..75).map(|i| i * FRAME_NS).collect();
        assert_eq!(pts_ns(&bufs), want);
        assert_sync_maps(&bufs, 16);
        assert!(bufs[25].flags().contains(gst::BufferFlags::DISCONT), "the DISCONT flag is kept");
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// A GAP event on the video pad (no frame for 0.2 s) produces no output frame: the frames around
/// it leave once with their timestamps.
#[test]
fn gap_event_on_video_is_no_frame() {
    scenario(LIMIT, || {
        let (p, _, v, a, out) = fed_pipeline("interval=8 alignment=last", false);
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        let mut video_items = frames(&info, 0, 20);
        video_items.push(Item::Ev(
            gst::event::Gap::builder(gst::ClockTime::from_nseconds(20 * FRAME_NS))
                .duration(gst::ClockTime::from_nseconds(5 * FRAME_NS))
                .build(),
        ));
        video_items.extend(frames(&info, 25, 15));
        let (bufs, warnings) = play_to_eos((&p, &v, &a, &out), info.to_caps().unwrap(), video_items, vec![]);
        assert_eq!(pts_ns(&bufs), (0..20).chain(25..40).map(|i| i * FRAME_NS).collect::<Vec<_>>());
        assert_sync_maps(&bufs, 8);
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// Timestamps jumping backwards (0 - 1.16 s, then a DISCONT back to 0.6 s) on video and audio:
/// frames leave in arrival order, once each, with the timestamps they came with.
#[test]
fn timestamps_jumping_backwards_with_discont() {
    scenario(LIMIT, || {
        let (p, _, v, a, out) = fed_pipeline("interval=16", false);
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        let mut audio_items = audio(0, 1_200_000_000);
        audio_items.extend(discont(audio(600_000_000, 1_200_000_000)));
        let mut video_items = frames(&info, 0, 30);
        video_items.extend(discont(frames(&info, 15, 30)));
        let (bufs, warnings) = play_to_eos((&p, &v, &a, &out), info.to_caps().unwrap(), video_items, audio_items);
        let want: Vec<u64> = (0..30).chain(15..45).map(|i| i * FRAME_NS).collect();
        assert_eq!(pts_ns(&bufs), want);
        assert_sync_maps(&bufs, 16);
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// Variable frame rate: caps `framerate=0/1` (`max-framerate=50/1`), irregular frame intervals
/// (20-70 ms), some buffers without a duration. Every frame leaves once with its timestamp and its
/// map; `output=map` keeps the variable rate in its caps. The latency of the 15 look-ahead frames of
/// `alignment=centre` is reported from `max-framerate` (15 x 20 ms at 50/1), as none when the caps do
/// not give it (README).
#[test]
fn variable_framerate() {
    scenario(LIMIT, || {
        for (max_framerate, want_ms) in [(Some(gst::Fraction::new(50, 1)), 300), (None, 0)] {
            let element = gst::ElementFactory::make("dtfsal").property("model", model_path()).build().unwrap();
            let mut h = gst_check::Harness::with_element(&element, Some("video_sink"), Some("src"));
            h.set_upstream_latency(gst::ClockTime::ZERO);
            let mut caps = video_info(gst::Fraction::new(0, 1)).to_caps().unwrap();
            if let Some(f) = max_framerate {
                caps.make_mut().set("max-framerate", f);
            }
            h.set_src_caps(caps);
            // the aggregator takes the caps event on its own thread
            let want = Some(gst::ClockTime::from_mseconds(want_ms));
            let deadline = Instant::now() + scaled(Duration::from_secs(5));
            while h.query_latency() != want && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(h.query_latency(), want, "max-framerate {max_framerate:?}");
        }

        let (p, _, v, a, out) = fed_pipeline("interval=8 output=map", false);
        let info = video_info(gst::Fraction::new(0, 1));
        let mut caps = info.to_caps().unwrap();
        caps.make_mut().set("max-framerate", gst::Fraction::new(50, 1));
        let steps_ms = [20u64, 33, 50, 70, 40, 25];
        let mut pts = Vec::new();
        let mut t = 0u64;
        for i in 0..48 {
            pts.push(t);
            t += steps_ms[i % steps_ms.len()] * 1_000_000;
        }
        let video_items: Vec<Item> = pts
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let duration = (i % 3 != 0).then(|| pts.get(i + 1).map_or(40_000_000, |n| n - p));
                Item::Buf(frame(&info, i as u64, p, duration))
            })
            .collect();
        let (bufs, warnings) = play_to_eos((&p, &v, &a, &out), caps, video_items, audio(0, t + 500_000_000));
        assert_eq!(pts_ns(&bufs), pts);
        assert_sync_maps(&bufs, 8);
        // output=map: GRAY8 caps that keep the variable rate (not max-framerate as a fixed rate)
        let out_caps = out.lock().unwrap()[0].0.caps_owned().unwrap();
        let st = out_caps.structure(0).unwrap();
        assert_eq!(st.get::<&str>("format").unwrap(), "GRAY8");
        assert_eq!(st.get::<gst::Fraction>("framerate").unwrap(), gst::Fraction::new(0, 1), "{out_caps}");
        assert_eq!(st.get::<gst::Fraction>("max-framerate").unwrap(), gst::Fraction::new(50, 1), "{out_caps}");
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// The pipeline set to NULL while inference runs (five times, at different points; `batch=8` in odd
/// rounds, 16 clips in flight), then cycled READY <-> PLAYING four times: each state change returns within a bound, no inference or engine
/// thread is left behind, and after each restart the frames come again from the start with their
/// timestamps. Frames leave as soon as their maps are in (not held until a backlog of ready clips
/// is done).
#[test]
fn null_and_ready_while_inference_runs() {
    scenario(LIMIT, || {
        let desc = |batch: u32| {
            format!(
                "videotestsrc ! video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
                 ! dtfsal name=s model={} threads=1 alignment=last batch={batch} ! appsink name=out sync=false \
                 audiotestsrc ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! s.audio_sink",
                model_path()
            )
        };
        let bound = scaled(Duration::from_secs(5));
        for round in 0..5u64 {
            let p = launch(&desc(if round % 2 == 1 { 8 } else { 1 }));
            let out = collect(&p, "out");
            p.set_state(gst::State::Playing).unwrap();
            // every frame is analysed (interval=1): after the first map the worker is always busy;
            // stop at a different point of a clip each round
            let deadline = Instant::now() + scaled(Duration::from_secs(30));
            while out.lock().unwrap().is_empty() {
                assert!(Instant::now() < deadline, "round {round}: no output within 30 s");
                std::thread::sleep(Duration::from_millis(10));
            }
            // Regression: frames leave as their maps come. With alignment=last the first 16 clips all
            // wait for the same audio window (centred on frame 0); once it is complete they used to
            // be computed back to back (~16 clip times) before the first frame left, in one burst.
            let first = out.lock().unwrap().len();
            assert!(first <= 4, "round {round}: the first {first} frames left at once");
            std::thread::sleep(Duration::from_millis(47 * round));
            assert_eq!(threads_named("dtfsal-infer"), 1, "round {round}: one inference thread while playing");
            let t = Instant::now();
            p.set_state(gst::State::Null).unwrap();
            assert!(t.elapsed() < bound, "round {round}: PLAYING -> NULL took {:?}", t.elapsed());
            assert_no_error(&p);
            assert_eq!(threads_named("dtfsal-infer"), 0, "round {round}: inference thread left after NULL");
            assert_eq!(wait_no_threads("dtfsal-cpu-", 5), 0, "round {round}: engine threads left after NULL");
            let pts = pts_ns(&buffers(&out));
            assert_eq!(pts, (0..pts.len() as u64).map(|i| i * FRAME_NS).collect::<Vec<_>>(), "round {round}");
        }

        let p = launch(&desc(1));
        let out = collect(&p, "out");
        for cycle in 0..4 {
            p.set_state(gst::State::Playing).unwrap();
            let deadline = Instant::now() + scaled(Duration::from_secs(30));
            while out.lock().unwrap().len() < 2 {
                assert!(Instant::now() < deadline, "cycle {cycle}: no output within 30 s");
                std::thread::sleep(Duration::from_millis(10));
            }
            let t = Instant::now();
            p.set_state(gst::State::Ready).unwrap();
            assert!(t.elapsed() < bound, "cycle {cycle}: PLAYING -> READY took {:?}", t.elapsed());
            assert_eq!(threads_named("dtfsal-infer"), 0, "cycle {cycle}: inference thread left in READY");
            assert_no_error(&p);
            let pts = pts_ns(&buffers(&out));
            assert_eq!(pts, (0..pts.len() as u64).map(|i| i * FRAME_NS).collect::<Vec<_>>(), "cycle {cycle}");
            out.lock().unwrap().clear();
        }
        p.set_state(gst::State::Null).unwrap();
        assert_eq!(wait_no_threads("dtfsal-cpu-", 5), 0, "engine threads left after NULL");
    });
}

/// The element alone (a harness, no pipeline) set to NULL while a thread pushes frames and a clip
/// is being inferred: the push is refused (flushing), nothing hangs.
#[test]
fn element_to_null_while_pushing() {
    scenario(LIMIT, || {
        let element = gst::ElementFactory::make("dtfsal").property("model", model_path()).property("threads", 1u32).build().unwrap();
        let mut h = gst_check::Harness::with_element(&element, Some("video_sink"), Some("src"));
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        h.set_src_caps(info.to_caps().unwrap());
        h.play();
        let pad = element.static_pad("video_sink").unwrap().peer().unwrap();
        let pusher = {
            let info = info.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                loop {
                    if pad.push(frame(&info, i, i * FRAME_NS, Some(FRAME_NS))).is_err() {
                        return i;
                    }
                    i += 1;
                    if i > 10_000 {
                        return i;
                    }
                }
            })
        };
        // 16 frames for the first clip, then inference is running
        let deadline = Instant::now() + scaled(Duration::from_secs(30));
        while h.buffers_received() < 2 {
            assert!(Instant::now() < deadline, "no output within 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        let t = Instant::now();
        element.set_state(gst::State::Null).unwrap();
        assert!(t.elapsed() < scaled(Duration::from_secs(5)), "to NULL took {:?}", t.elapsed());
        let pushed = pusher.join().unwrap();
        assert!(pushed < 10_000, "pushes never refused");
        assert_eq!(threads_named("dtfsal-infer"), 0);
        let mut pts = Vec::new();
        while let Some(b) = h.try_pull() {
            pts.push(b.pts().unwrap().nseconds());
        }
        assert_eq!(pts, (0..pts.len() as u64).map(|i| i * FRAME_NS).collect::<Vec<_>>());
    });
}

/// Two elements in one pipeline (tee) with the same model file: each loads its own copy (no sharing;
/// README), both run at once, both get every frame with its timestamp, and their maps are equal.
#[test]
fn two_elements_with_one_model_file() {
    scenario(LIMIT, || {
        let m = model_path();
        let p = launch(&format!(
            "videotestsrc num-buffers=40 ! video/x-raw,format=RGB,width={W},height={H},framerate=25/1 ! tee name=t \
             t. ! queue ! dtfsal name=s1 model={m} interval=8 threads=1 output=passthrough-with-meta ! appsink name=o1 sync=false \
             t. ! queue ! dtfsal name=s2 model={m} interval=8 threads=1 output=passthrough-with-meta ! appsink name=o2 sync=false \
             audiotestsrc num-buffers=30 ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! tee name=ta \
             ta. ! queue ! s1.audio_sink ta. ! queue ! s2.audio_sink"
        ));
        let (o1, o2) = (collect(&p, "o1"), collect(&p, "o2"));
        p.set_state(gst::State::Playing).unwrap();
        let warnings = wait_eos(&p, 80);
        p.set_state(gst::State::Null).unwrap();
        let (b1, b2) = (buffers(&o1), buffers(&o2));
        let want: Vec<u64> = (0..40).map(|i| i * FRAME_NS).collect();
        assert_eq!(pts_ns(&b1), want);
        assert_eq!(pts_ns(&b2), want);
        assert_sync_maps(&b1, 8);
        assert_sync_maps(&b2, 8);
        for (i, (x, y)) in b1.iter().zip(&b2).enumerate() {
            let (x, y) = (SaliencyMeta::from_buffer(x).unwrap(), SaliencyMeta::from_buffer(y).unwrap());
            let diff = x.data.iter().zip(&y.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff <= 1e-6, "frame {i}: the two elements' maps differ by {diff}");
        }
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}

/// `mode=live` (live source answering the latency query, frames paced at 25 fps, centre alignment:
/// 15 frames held for look-ahead) flushed mid-clip from another thread, then restarted at 2 s as a
/// seek would: frames held at the flush are dropped (never sent twice), and every frame after it
/// leaves once, with its timestamp.
#[test]
fn live_flush_mid_clip() {
    scenario(LIMIT, || {
        let (p, s, v, a, out) = fed_pipeline("mode=live", true);
        let info = video_info(gst::Fraction::new(FPS as i32, 1));
        p.set_state(gst::State::Playing).unwrap();
        let t0 = Instant::now();
        let ha = a.start(audio_caps(), vec![Item::Ev(gst::event::Eos::new())], t0);
        let mut first = Vec::new();
        for (i, f) in frames(&info, 0, 30).into_iter().enumerate() {
            first.push(Item::At(Duration::from_nanos(i as u64 * FRAME_NS)));
            first.push(f);
        }
        joined(v.start(info.to_caps().unwrap(), first, t0));
        // mid-clip: 15 frames wait for their look-ahead, inference may be running
        std::thread::sleep(Duration::from_millis(60));
        assert!(v.pad.push_event(gst::event::FlushStart::new()));
        assert!(v.pad.push_event(gst::event::FlushStop::new(true)));
        let mut seg = gst::FormattedSegment::<gst::ClockTime>::new();
        seg.set_start(gst::ClockTime::from_seconds(2));
        seg.set_time(gst::ClockTime::from_seconds(2));
        let t1 = Instant::now();
        let mut second = vec![Item::Ev(gst::event::Segment::new(&seg))];
        for (i, f) in frames(&info, 50, 40).into_iter().enumerate() {
            second.push(Item::At(Duration::from_nanos(i as u64 * FRAME_NS)));
            second.push(f);
        }
        second.push(Item::Ev(gst::event::Eos::new()));
        joined(v.push(second, t1));
        let warnings = wait_eos(&p, 60);
        joined(ha);
        let latency = {
            let mut q = gst::query::Latency::new();
            s.static_pad("src").unwrap().query(&mut q).then(|| q.result())
        };
        p.set_state(gst::State::Null).unwrap();
        let pts = pts_ns(&buffers(&out));
        let (before, after): (Vec<u64>, Vec<u64>) = pts.iter().partition(|&&t| t < 2_000_000_000);
        let first_pts: Vec<u64> = (0..30).map(|i| i * FRAME_NS).collect();
        assert!(first_pts.starts_with(&before), "before the flush: {before:?}");
        assert!(before.len() <= 15, "{} frames before the flush left; 15 were waiting for look-ahead", before.len());
        assert_eq!(after, (50..90).map(|i| i * FRAME_NS).collect::<Vec<_>>());
        assert_eq!(pts, [before.clone(), after].concat(), "in order");
        assert!(latency.is_some_and(|(live, min, _)| live && min == gst::ClockTime::from_nseconds(15 * FRAME_NS)), "{latency:?}");
        assert!(warnings.is_empty(), "{warnings:?}");
    });
}
