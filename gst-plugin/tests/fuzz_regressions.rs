//! Regression tests for the element's crashes on absurd input: a buffer ending past the end of the
//! clock (found by the `element_harness` fuzz target, `fuzz/`, `scripts/fuzz.sh`), and the same
//! class found reviewing that fix: absurd framerates and hour-long GAP buffers panicked (or aborted)
//! inside the element. Each test reproduces the condition through a `gst_check::Harness`;
//! the crashing fuzz inputs are in `fuzz/corpus/element_harness/` and are replayed by every fuzz run.

mod common;
use common::init;

fn model_path() -> String {
    format!("{}/../tests/data/tiny-av.weights.safetensors", env!("CARGO_MANIFEST_DIR"))
}

fn element() -> gst::Element {
    gst::ElementFactory::make("dtfsal")
        .property("model", model_path())
        .property_from_str("alignment", "last")
        .property("interval", 4u32)
        .property("threads", 1u32)
        .build()
        .unwrap()
}

fn frame(info: &gst_video::VideoInfo, pts: Option<u64>, duration: Option<u64>) -> gst::Buffer {
    let mut buf = gst::Buffer::from_mut_slice(vec![100u8; info.size()]);
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(pts.map(gst::ClockTime::from_nseconds));
        b.set_duration(duration.map(gst::ClockTime::from_nseconds));
    }
    buf
}

/// Pushes `frames` on the video pad, then EOS; every frame must come out (no element error).
fn run_video(h: &mut gst_check::Harness, info: &gst_video::VideoInfo, frames: &[gst::Buffer]) {
    for f in frames {
        assert_eq!(h.push(f.clone()), Ok(gst::FlowSuccess::Ok));
    }
    assert!(h.push_event(gst::event::Eos::new()));
    for i in 0..frames.len() {
        let b = h.pull().unwrap_or_else(|_| panic!("frame {i} of {} comes out", frames.len()));
        assert_eq!(b.size(), info.size());
    }
}

/// A buffer ending past the end of the clock (pts + duration overflowed `ClockTime`).
#[test]
fn timestamps_at_the_end_of_the_clock() {
    init();
    let element = element();
    let mut h = gst_check::Harness::with_element(&element, Some("video_sink"), Some("src"));
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 32, 24)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap();
    h.set_src_caps(info.to_caps().unwrap());
    let end = u64::MAX - 1;
    let frames = [
        frame(&info, Some(end - 10), Some(40_000_000)),
        frame(&info, Some(end - 5), None),
        frame(&info, Some(end), Some(end)),
    ];
    run_video(&mut h, &info, &frames);
}

/// A framerate of 1/2147483647 (one frame in 68 years): the latency of 15 frame durations
/// overflowed `ClockTime`, and so did the times of the frames the clip repeats.
#[test]
fn absurd_framerate() {
    init();
    let element = gst::ElementFactory::make("dtfsal")
        .property("model", model_path())
        .property("interval", 64u32)
        .property("threads", 1u32)
        .build()
        .unwrap();
    let mut h = gst_check::Harness::with_element(&element, Some("video_sink"), Some("src"));
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 32, 24)
        .fps(gst::Fraction::new(1, i32::MAX))
        .build()
        .unwrap();
    h.set_src_caps(info.to_caps().unwrap());
    // no timestamps: frame times come from the framerate
    let frames: Vec<_> = (0..20).map(|_| frame(&info, None, None)).collect();
    run_video(&mut h, &info, &frames);
}

/// An empty GAP audio buffer of 1000 hours was turned into 5.8e10 zero samples (230 GB) and
/// aborted the process; the front end now takes the silence without materialising it.
#[test]
fn hour_long_gap_buffer_on_the_audio_pad() {
    init();
    let element = element();
    let mut video = gst_check::Harness::with_element(&element, Some("video_sink"), Some("src"));
    let mut audio = gst_check::Harness::with_element(&element, Some("audio_sink"), None);
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 32, 24)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap();
    video.play();
    video.set_src_caps(info.to_caps().unwrap());
    // a non-live aggregator waits for both pads: the audio goes from its own thread, as upstream
    let audio_thread = std::thread::spawn(move || {
        audio.play();
        audio.set_src_caps_str("audio/x-raw,format=F32LE,layout=interleaved,rate=16000,channels=1");
        let mut gap = gst::Buffer::new();
        {
            let b = gap.get_mut().unwrap();
            b.set_pts(gst::ClockTime::ZERO);
            b.set_duration(gst::ClockTime::from_seconds(1000 * 3600));
            b.set_flags(gst::BufferFlags::GAP);
        }
        assert_eq!(audio.push(gap), Ok(gst::FlowSuccess::Ok));
        assert!(audio.push_event(gst::event::Eos::new()));
        audio
    });
    let frames: Vec<_> = (0..6).map(|i| frame(&info, Some(i * 40_000_000), Some(40_000_000))).collect();
    run_video(&mut video, &info, &frames);
    drop(audio_thread.join().unwrap());
}

/// `element_harness` (a 30 s hang): buffers before any caps failed with not-negotiated, which pauses
/// GstAggregator's source task; then a flush on the video pad alone (the audio pad linked and already
/// ended) made the video pad accept buffers again, with no task to take them: the next pushes blocked
/// forever. A video flush that finds the task stopped now flushes the audio pad too (ending it again),
/// so the element starts over: every frame pushed after the flush comes out.
#[test]
fn video_flush_after_an_error_restarts_the_element() {
    init();
    let element = element();
    let mut video = gst_check::Harness::with_element(&element, Some("video_sink"), Some("src"));
    let mut audio = gst_check::Harness::with_element(&element, Some("audio_sink"), None);
    video.play();
    audio.play();
    assert!(audio.push_event(gst::event::Eos::new()));
    // no caps yet: the element cannot take these (the first may be queued before the error shows)
    for _ in 0..4 {
        let _ = video.push(gst::Buffer::from_mut_slice(vec![0u8; 16]));
    }
    assert!(video.push_event(gst::event::FlushStart::new()));
    assert!(video.push_event(gst::event::FlushStop::new(true)));
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 32, 24)
        .fps(gst::Fraction::new(25, 1))
        .build()
        .unwrap();
    video.set_src_caps(info.to_caps().unwrap());
    let (done, finished) = std::sync::mpsc::channel();
    let pusher = std::thread::spawn(move || {
        let frames: Vec<_> = (0..8).map(|i| frame(&info, Some(i * 40_000_000), Some(40_000_000))).collect();
        run_video(&mut video, &info, &frames);
        done.send(()).unwrap();
        video
    });
    finished.recv_timeout(std::time::Duration::from_secs(60)).expect("frames pushed after the flush come out (no hang)");
    drop(pusher.join().unwrap());
    drop(audio);
}
