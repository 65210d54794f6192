//! GStreamer plugin `dtfsal` (placeholder).
