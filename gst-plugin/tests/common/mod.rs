//! Helpers shared by the element's integration tests (`mod common;` in each test file).
#![allow(dead_code)] // each test file uses its own subset

use std::sync::Once;

use gst::prelude::*;

/// GStreamer initialised and the plugin registered statically, once per test binary.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstdtfsal::plugin_register_static().expect("plugin registers");
    });
}

pub fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("pipeline parses: {e}: {description}"))
        .downcast::<gst::Pipeline>()
        .expect("is a pipeline")
}

/// Starts `videotestsrc ! dtfsal PROPS ! fakesink`, expects the start to fail; returns the error
/// text and its debug detail.
pub fn start_error(props: &str) -> String {
    let p = launch(&format!("videotestsrc num-buffers=2 ! dtfsal {props} ! fakesink"));
    assert!(p.set_state(gst::State::Paused).is_err() || p.state(gst::ClockTime::from_seconds(10)).0.is_err());
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    p.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(e) => format!("{} | {:?}", e.error(), e.debug()),
        _ => unreachable!(),
    }
}
