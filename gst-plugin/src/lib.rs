//! GStreamer plugin `dtfsal`: real-time audio-visual video saliency.
//!
//! The plugin is registered (and loadable by `gst-inspect-1.0 dtfsal`) before it has elements,
//! so that packaging, loading and caps negotiation are tested from the start.
pub mod caps;

use gst::glib;

/// Registers the plugin's elements.
///
/// No element exists yet: the saliency element (video + audio sink pads with the caps of
/// [`caps`], saliency-map source pad) will be registered here once the engine can run a model.
fn plugin_init(_plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Ok(())
}

gst::plugin_define!(
    dtfsal,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // GStreamer accepts only a fixed set of licence strings; "MIT/X11" is the one gst-plugins-rs
    // uses for crates licensed "MIT OR Apache-2.0".
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
