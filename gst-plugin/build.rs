//! Provides COMMIT_ID and BUILD_REL_DATE for `gst::plugin_define!` (gst-plugins-rs convention).
fn main() {
    gst_plugin_version_helper::info()
}
