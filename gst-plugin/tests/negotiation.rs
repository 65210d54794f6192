//! The plugin loads, and its future pad caps negotiate with stock GStreamer elements.
use gst::prelude::*;
use gstdtfsal::caps;

fn init() {
    gst::init().expect("GStreamer initialises");
}

/// Runs `pipeline` to EOS (or fails on error/timeout) and leaves it in PLAYING.
fn run_to_eos(pipeline: &gst::Pipeline) {
    pipeline
        .set_state(gst::State::Playing)
        .expect("pipeline starts");
    let bus = pipeline.bus().expect("pipeline has a bus");
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("EOS or error within 20 s");
    if let gst::MessageView::Error(e) = msg.view() {
        panic!(
            "pipeline error from {:?}: {} ({:?})",
            e.src().map(|s| s.path_string()),
            e.error(),
            e.debug()
        );
    }
}

fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("is a pipeline")
}

fn set_caps(pipeline: &gst::Pipeline, filter: &str, caps: &gst::Caps) {
    let filter = pipeline.by_name(filter).expect("capsfilter present");
    filter.set_property("caps", caps);
}

#[test]
fn audio_sink_caps_negotiate_16k_mono() {
    init();
    // appsink waits for its queued buffers to be pulled before posting EOS unless told not to.
    let pipeline = launch(
        "audiotestsrc num-buffers=5 ! audio/x-raw,rate=44100,channels=2 ! audioconvert ! audioresample \
         ! capsfilter name=filter ! appsink name=sink sync=false wait-on-eos=false",
    );
    set_caps(&pipeline, "filter", &caps::audio_sink_caps());
    run_to_eos(&pipeline);
    let sink = pipeline.by_name("sink").unwrap();
    let negotiated = sink
        .static_pad("sink")
        .unwrap()
        .current_caps()
        .expect("sink pad negotiated");
    pipeline.set_state(gst::State::Null).unwrap();
    let info = gst_audio::AudioInfo::from_caps(&negotiated).expect("raw audio caps");
    assert_eq!(info.rate(), 16_000, "{negotiated}");
    assert_eq!(info.channels(), 1, "{negotiated}");
    assert!(caps::AUDIO_FORMATS.contains(&info.format()), "{negotiated}");
    assert_eq!(info.layout(), gst_audio::AudioLayout::Interleaved);
}

#[test]
fn video_sink_caps_accept_nv12() {
    init();
    let pipeline = launch(
        "videotestsrc num-buffers=2 ! video/x-raw,format=NV12,width=64,height=48 \
         ! capsfilter name=filter ! fakesink sync=false",
    );
    set_caps(&pipeline, "filter", &caps::video_sink_caps());
    run_to_eos(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn video_sink_caps_reject_unsupported_format() {
    init();
    let gray = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::Gray8)
        .build();
    assert!(!gray.can_intersect(&caps::video_sink_caps()));
    assert!(
        caps::video_sink_caps().can_intersect(
            &gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::Bgrx)
                .width(1920)
                .height(1080)
                .build()
        )
    );
}

#[test]
fn plugin_registers_statically() {
    init();
    gstdtfsal::plugin_register_static().expect("plugin registers");
    let plugin = gst::Registry::get()
        .find_plugin("dtfsal")
        .expect("plugin in registry");
    assert_eq!(plugin.plugin_name(), "dtfsal");
}
