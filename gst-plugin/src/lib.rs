//! GStreamer plugin `dtfsal`: real-time audio-visual video saliency.
//!
//! One element, [`dtfsal`](crate::dtfsal) (see its module docs for pads, properties, timing and
//! the saliency meta, and [`dtfsal::meta`] for reading the float map from Rust or C).
pub mod caps;
pub mod dtfsal;

use gst::glib;

/// Registers the plugin's elements.
fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    dtfsal::register(plugin)
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
