//! Fuzzes the `dtfsal` element through `gst_check::Harness`: properties, caps (supported and
//! unsupported formats, zero/odd/large sizes, framerates 0/1, variable and absurd, missing fields),
//! buffers (right, wrong and zero sizes; timestamps absent, jumping, going backwards, near the end
//! of the clock; DISCONT/GAP and other flags), events (segments in any format and rate, flushes,
//! gaps, EOS) on the video pad, and the same on the audio pad when it is linked.
//!
//! The element runs a *micro* model (the tiny architecture shrunk to 32x32 frames and a few
//! channels, random weights, written once to a temp file): the element's code paths are the same
//! for any model, and a clip costs a millisecond instead of ~100 ms, so the fuzzer runs hundreds of
//! inputs a second instead of a few.
//!
//! Checked: no panic anywhere (libfuzzer-sys aborts on a panic on any thread, before GStreamer's
//! subclass glue can turn it into an element error); no hang (libFuzzer's `-timeout`); at most one
//! output buffer per input video buffer. Errors (not-negotiated, element errors) are fine.
//!
//! With the audio pad linked, audio and video are pushed from two threads, as two upstream
//! branches would: a non-live aggregator waits for data on every pad, so one thread pushing both
//! would deadlock. The interleaving is therefore not reproducible to the microsecond, but crashes
//! so far replayed reliably.
#![no_main]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex, Once};
use std::time::Duration;

use arbitrary::Arbitrary;
use dtfsal_engine::config::{ModelConfig, Variant};
use dtfsal_engine::weights::{self, Part, StorageDtype, expected_tensors};
use gst::prelude::*;
use libfuzzer_sys::fuzz_target;

/// Bytes of one buffer at most (a 1024x1024 RGBA frame is 4 MiB).
const MAX_BUFFER: usize = 1 << 20;
/// Buffers per pad at most (each video frame can cost a clip).
const MAX_BUFFERS: usize = 80;
/// Operations per pad at most.
const MAX_OPS: usize = 48;
/// An input running longer than this is a hang (a normal one takes well under a second).
const HANG_SECS: u32 = 30;

/// The micro model: the tiny architecture at 32x32 with a few channels; audio input as the
/// element's front end produces it (9 x 112 x 192).
fn micro_config() -> ModelConfig {
    ModelConfig { name: "fuzz-micro".into(), ..ModelConfig::micro(Variant::AudioVisual) }
}

/// The micro model's weight file, written once per process.
static MODEL: LazyLock<PathBuf> = LazyLock::new(|| {
    let cfg = micro_config();
    let specs = expected_tensors(&cfg);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<Vec<f32>> = specs
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let r = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    // BatchNorm variances must stay positive
                    if name.ends_with("running_var") { 1.0 + r.abs() } else { r * 0.2 }
                })
                .collect()
        })
        .collect();
    let bytes = weights::to_bytes(
        &cfg,
        Part::Model,
        specs.iter().zip(&data).map(|((n, s), d)| (n.as_str(), &s[..], &d[..])),
        StorageDtype::F32,
    )
    .expect("micro model encodes");
    // The bytes are the same in every process: one file named by their hash (FNV-1a), written
    // under a per-process name and renamed into place, so parallel jobs share it and runs leave
    // one file behind, not one per process.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    let path = std::env::temp_dir().join(format!("dtfsal-fuzz-micro-{hash:016x}.safetensors"));
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        std::fs::write(&partial, &bytes).expect("write the micro model");
        std::fs::rename(&partial, &path).expect("move the micro model into place");
    }
    path
});

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        // Inputs without stream-start/segment make GStreamer warn on every buffer ("data flow
        // before segment event"): drop warnings, keep criticals visible.
        gst::glib::log_set_default_handler(|domain, level, message| {
            if matches!(level, gst::glib::LogLevel::Error | gst::glib::LogLevel::Critical) {
                eprintln!("{}-{level:?}: {message}", domain.unwrap_or("?"));
            }
        });
        gstdtfsal::plugin_register_static().expect("plugin registers");
        LazyLock::force(&MODEL);
        watchdog();
    });
}

#[derive(Debug, Arbitrary)]
struct Props {
    live: bool,
    last: bool,
    interval: u16,
    output: u8,
    roi_count: u8,
    colormap: u8,
    alpha: u8,
}

const VIDEO_FORMATS: [&str; 12] =
    ["RGB", "RGBA", "BGRx", "BGRA", "I420", "NV12", "GRAY8", "YUY2", "RGB16", "NV21", "I420_10LE", "v210"];
const AUDIO_FORMATS: [&str; 5] = ["F32LE", "S16LE", "S16BE", "U8", "F64LE"];

#[derive(Debug, Arbitrary)]
enum Dim {
    Small(u8),
    Odd(u8),
    Any(i32),
}

impl Dim {
    fn value(&self) -> i64 {
        match *self {
            Dim::Small(v) => v as i64,
            Dim::Odd(v) => 2 * v as i64 + 1,
            Dim::Any(v) => v as i64 % 20_000,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Rate {
    Common(u8),
    Fraction(i32, i32),
}

impl Rate {
    fn text(&self) -> String {
        match *self {
            Rate::Common(i) => ["25/1", "0/1", "30000/1001", "1/1", "1000/1", "1/1000", "2147483647/1", "1/2147483647"]
                [i as usize % 8]
                .to_string(),
            Rate::Fraction(n, d) => format!("{n}/{d}"),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct VideoCaps {
    format: u8,
    width: Option<Dim>,
    height: Option<Dim>,
    framerate: Option<Rate>,
    extra: u8,
}

impl VideoCaps {
    fn caps(&self) -> Option<gst::Caps> {
        let mut s = format!("video/x-raw,format={}", VIDEO_FORMATS[self.format as usize % VIDEO_FORMATS.len()]);
        if let Some(w) = &self.width {
            s += &format!(",width=(int){}", w.value());
        }
        if let Some(h) = &self.height {
            s += &format!(",height=(int){}", h.value());
        }
        if let Some(r) = &self.framerate {
            s += &format!(",framerate=(fraction){}", r.text());
        }
        const EXTRA: [&str; 6] = [
            "",
            ",interlace-mode=interleaved",
            ",pixel-aspect-ratio=(fraction)0/1",
            ",pixel-aspect-ratio=(fraction)1000/1",
            ",colorimetry=bt601",
            ",framerate=(fraction)[0/1,30/1]",
        ];
        s += EXTRA[self.extra as usize % EXTRA.len()];
        gst::Caps::from_str(&s).ok()
    }
}

#[derive(Debug, Arbitrary)]
struct AudioCaps {
    format: u8,
    rate: Option<u8>,
    channels: Option<u8>,
    non_interleaved: bool,
}

impl AudioCaps {
    fn caps(&self) -> Option<gst::Caps> {
        let mut s = format!(
            "audio/x-raw,format={},layout={}",
            AUDIO_FORMATS[self.format as usize % AUDIO_FORMATS.len()],
            if self.non_interleaved { "non-interleaved" } else { "interleaved" }
        );
        if let Some(r) = self.rate {
            s += &format!(",rate=(int){}", [16000, 16000, 16000, 8000, 48000, 0][r as usize % 6]);
        }
        if let Some(c) = self.channels {
            s += &format!(",channels=(int){}", c % 3);
        }
        gst::Caps::from_str(&s).ok()
    }
}

#[derive(Debug, Arbitrary)]
enum Time {
    /// Continues after the previous buffer (or at 0).
    Next,
    /// `Next` shifted by a signed number of milliseconds (gaps, overlaps, going backwards).
    Shift(i32),
    Abs(u64),
    /// Near the end of the clock.
    End(u32),
    None,
}

#[derive(Debug, Arbitrary)]
enum Size {
    /// Exactly what the caps need (capped at [`MAX_BUFFER`]).
    Right,
    Off(i16),
    Zero,
    Any(u16),
}

#[derive(Debug, Arbitrary)]
struct Buf {
    size: Size,
    pts: Time,
    duration: Time,
    /// Raw `GstBufferFlags` bits (DISCONT, GAP, DELTA_UNIT, ...).
    flags: u16,
    fill: u8,
    /// Audio: write this sample value (F32LE) instead of the fill byte.
    sample: Option<f32>,
}

#[derive(Debug, Arbitrary)]
enum SegFormat {
    Time,
    Bytes,
    Default,
}

#[derive(Debug, Arbitrary)]
enum Op<C> {
    Caps(C),
    Buffer(Buf),
    /// Several right-sized buffers with continuing timestamps.
    Frames(u8),
    Segment { format: SegFormat, start: u32, rate: i8, base: u32 },
    Flush { reset: bool },
    Gap(u32, u32),
    StreamStart,
    Eos,
}

#[derive(Debug, Arbitrary)]
struct Input {
    props: Props,
    /// Link the audio pad (pushed from a second thread); unlinked, the element feeds it silence.
    audio: bool,
    /// Start each pad with stream-start, good caps and a TIME segment.
    preamble: bool,
    video: Vec<Op<VideoCaps>>,
    audio_ops: Vec<Op<AudioCaps>>,
}

fn clock(ns: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(ns.min(u64::MAX - 1))
}

/// Pushes one pad's operations; returns the number of buffers pushed.
struct Pusher {
    h: gst_check::Harness,
    /// Bytes of one right-sized buffer under the current caps, and its nominal duration.
    frame_bytes: usize,
    frame_ns: u64,
    next: u64,
    audio: bool,
    pushed: usize,
}

impl Pusher {
    fn time(&self, t: &Time, base: u64) -> Option<gst::ClockTime> {
        match *t {
            Time::Next => Some(clock(base)),
            Time::Shift(ms) => Some(clock(base.saturating_add_signed(ms as i64 * 1_000_000))),
            Time::Abs(v) => Some(clock(v)),
            Time::End(back) => Some(clock(u64::MAX - 1 - back as u64)),
            Time::None => None,
        }
    }

    fn caps(&mut self, caps: Option<gst::Caps>) {
        // a caps event needs fixed caps (gst_event_new_caps asserts it)
        let Some(caps) = caps.filter(|c| c.is_fixed()) else { return };
        if self.audio {
            if let Ok(info) = gst_audio::AudioInfo::from_caps(&caps) {
                // 40 ms buffers
                self.frame_bytes = (info.bpf() as usize * info.rate() as usize / 25).min(MAX_BUFFER);
                self.frame_ns = 40_000_000;
            }
        } else if let Ok(info) = gst_video::VideoInfo::from_caps(&caps) {
            self.frame_bytes = info.size().min(MAX_BUFFER);
            let fps = info.fps();
            self.frame_ns = if fps.numer() > 0 && fps.denom() > 0 {
                (1_000_000_000u64 * fps.denom() as u64 / fps.numer() as u64).min(10_000_000_000)
            } else {
                40_000_000
            };
        }
        let _ = self.h.push_event(gst::event::Caps::new(&caps));
    }

    fn buffer(&mut self, b: &Buf) -> bool {
        if self.pushed >= MAX_BUFFERS {
            return false;
        }
        let size = match b.size {
            Size::Right => self.frame_bytes,
            Size::Off(d) => self.frame_bytes.saturating_add_signed(d as isize).min(MAX_BUFFER),
            Size::Zero => 0,
            Size::Any(n) => n as usize,
        };
        let mut data = vec![b.fill; size];
        if let (true, Some(v)) = (self.audio, b.sample) {
            for c in data.chunks_exact_mut(4) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        let mut buf = gst::Buffer::from_mut_slice(data);
        let pts = self.time(&b.pts, self.next);
        let duration = match b.duration {
            Time::Next => Some(clock(self.frame_ns)),
            Time::Shift(ms) => Some(clock(self.frame_ns.saturating_add_signed(ms as i64 * 1_000_000))),
            ref t => self.time(t, self.frame_ns),
        };
        {
            let m = buf.get_mut().expect("new buffer is writable");
            m.set_pts(pts);
            m.set_duration(duration);
            m.set_flags(gst::BufferFlags::from_bits_truncate(b.flags as u32));
        }
        if let Some(p) = pts {
            self.next = p.nseconds().saturating_add(duration.map_or(self.frame_ns, |d| d.nseconds()));
        }
        self.pushed += 1;
        self.h.push(buf).is_ok()
    }

    fn run<C>(&mut self, ops: &[Op<C>], caps: impl Fn(&C) -> Option<gst::Caps>) {
        for op in ops.iter().take(MAX_OPS) {
            match op {
                Op::Caps(c) => self.caps(caps(c)),
                Op::Buffer(b) => {
                    self.buffer(b);
                }
                Op::Frames(n) => {
                    for _ in 0..(*n % 40) {
                        let b = Buf { size: Size::Right, pts: Time::Next, duration: Time::Next, flags: 0, fill: 128, sample: Some(0.25) };
                        if !self.buffer(&b) {
                            break;
                        }
                    }
                }
                Op::Segment { format, start, rate, base } => {
                    let rate = if *rate == 0 { 1.0 } else { *rate as f64 / 16.0 };
                    let ev = match format {
                        SegFormat::Time => {
                            let mut seg = gst::FormattedSegment::<gst::ClockTime>::new();
                            seg.set_start(clock(*start as u64 * 1_000_000));
                            seg.set_base(clock(*base as u64 * 1_000_000));
                            seg.set_rate(rate);
                            gst::event::Segment::new(&seg)
                        }
                        SegFormat::Bytes => {
                            let mut seg = gst::FormattedSegment::<gst::format::Bytes>::new();
                            seg.set_start(gst::format::Bytes::from_u64(*start as u64));
                            gst::event::Segment::new(&seg)
                        }
                        SegFormat::Default => {
                            let mut seg = gst::FormattedSegment::<gst::format::Default>::new();
                            seg.set_start(gst::format::Default::from_u64(*start as u64));
                            gst::event::Segment::new(&seg)
                        }
                    };
                    let _ = self.h.push_event(ev);
                }
                Op::Flush { reset } => {
                    let _ = self.h.push_event(gst::event::FlushStart::new());
                    let _ = self.h.push_event(gst::event::FlushStop::new(*reset));
                }
                Op::Gap(ts, dur) => {
                    let ev = gst::event::Gap::builder(clock(*ts as u64 * 1_000_000))
                        .duration(clock(*dur as u64 * 1_000_000))
                        .build();
                    let _ = self.h.push_event(ev);
                }
                Op::StreamStart => {
                    let _ = self.h.push_event(gst::event::StreamStart::new("fuzz"));
                }
                Op::Eos => {
                    let _ = self.h.push_event(gst::event::Eos::new());
                }
            }
        }
        // End every stream, or a non-live aggregator waits for this pad forever.
        let _ = self.h.push_event(gst::event::Eos::new());
    }
}

fn preamble(p: &mut Pusher, caps: &str) {
    let _ = p.h.push_event(gst::event::StreamStart::new("fuzz"));
    p.caps(gst::Caps::from_str(caps).ok());
    let _ = p.h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new()));
}

/// What the current input is doing, for the watchdog: (input number, phase).
static PHASE: Mutex<(u64, &str)> = Mutex::new((0, "idle"));

fn phase(name: &'static str) {
    let mut p = PHASE.lock().unwrap_or_else(|e| e.into_inner());
    *p = (p.0 + 1, name);
}

/// libFuzzer's `-timeout` alarm is ignored when the signal lands on another thread than the
/// fuzzing one (here: GStreamer's streaming threads), so hangs are caught here: an input stuck in
/// one phase for [`HANG_SECS`] one-second ticks aborts, and libFuzzer saves it as a crash. Ticks,
/// not wall time: a stalled machine (seen here: ~40 s) stalls the watchdog too.
fn watchdog() {
    std::thread::spawn(|| {
        let (mut seen, mut ticks) = (0, 0);
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let (n, name) = *PHASE.lock().unwrap_or_else(|e| e.into_inner());
            if n != seen || name == "idle" {
                (seen, ticks) = (n, 0);
                continue;
            }
            ticks += 1;
            if ticks >= HANG_SECS {
                eprintln!("element_harness: input stuck in phase `{name}` for {HANG_SECS} s: hang");
                std::process::abort();
            }
        }
    });
}

fuzz_target!(|input: Input| {
    init();
    // DTFSAL_FUZZ_PRINT=1: the decoded input (for replaying a crash by hand)
    if std::env::var_os("DTFSAL_FUZZ_PRINT").is_some() {
        eprintln!("{input:#?}");
    }
    let p = &input.props;
    let element = gst::ElementFactory::make("dtfsal")
        .property("model", MODEL.to_str().expect("utf-8 temp path"))
        .property("threads", 1u32)
        .property_from_str("mode", if p.live { "live" } else { "sync" })
        .property_from_str("alignment", if p.last { "last" } else { "centre" })
        .property("interval", (p.interval as u32 % 64).max(1))
        .property_from_str("output", ["overlay", "map", "passthrough-with-meta"][p.output as usize % 3])
        .property("roi-count", p.roi_count as u32 % 5)
        .property_from_str("colormap", ["jet", "turbo", "inferno", "gray"][p.colormap as usize % 4])
        .property("alpha", p.alpha as f64 / 255.0)
        .build()
        .expect("dtfsal builds");
    let mut video = Pusher {
        h: gst_check::Harness::with_element(&element, Some("video_sink"), Some("src")),
        frame_bytes: 0,
        frame_ns: 40_000_000,
        next: 0,
        audio: false,
        pushed: 0,
    };
    let audio = input.audio.then(|| Pusher {
        h: gst_check::Harness::with_element(&element, Some("audio_sink"), None),
        frame_bytes: 0,
        frame_ns: 40_000_000,
        next: 0,
        audio: true,
        pushed: 0,
    });
    phase("start");
    video.h.play();
    if input.preamble {
        preamble(&mut video, "video/x-raw,format=RGB,width=64,height=48,framerate=25/1");
    }
    let audio_thread = audio.map(|mut a| {
        let ops = input.audio_ops;
        let pre = input.preamble;
        std::thread::spawn(move || {
            a.h.play();
            if pre {
                preamble(&mut a, "audio/x-raw,format=F32LE,layout=interleaved,rate=16000,channels=1");
            }
            a.run(&ops, AudioCaps::caps);
            a
        })
    });
    phase("video");
    video.run(&input.video, VideoCaps::caps);
    phase("audio");
    let audio = audio_thread.map(|t| t.join().expect("audio thread"));
    phase("pull");
    let mut out = 0;
    while video.h.try_pull().is_some() {
        out += 1;
    }
    assert!(out <= video.pushed, "{out} buffers out for {} in", video.pushed);
    phase("teardown");
    drop(audio);
    drop(video);
    let _ = element.set_state(gst::State::Null);
    phase("idle");
});
