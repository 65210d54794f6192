//! The float saliency map riding on every output buffer: a `GstCustomMeta` registered as
//! [`META_NAME`] (`"DtfsalSaliencyMeta"`) whose structure has the fields
//!
//! | field          | type          | meaning                                                    |
//! |----------------|---------------|------------------------------------------------------------|
//! | `width`        | `guint`       | map width (the model's input width)                        |
//! | `height`       | `guint`       | map height                                                 |
//! | `data`         | `GBytes`      | `width·height` native-endian `f32`, row-major, values 0–1 |
//! | `frame-offset` | `gint`        | frames between the map's labelled frame and this buffer (0: the map belongs to this frame; > 0: it is older, as with `interval` > 1 or in live mode) |
//!
//! Rust (with this crate as a dependency): [`SaliencyMeta::from_buffer`]. Without it:
//!
//! ```ignore
//! let meta = gst::meta::CustomMeta::from_buffer(buffer, "DtfsalSaliencyMeta")?;
//! let s = meta.structure();
//! let (w, h) = (s.get::<u32>("width")?, s.get::<u32>("height")?);
//! let bytes = s.get::<glib::Bytes>("data")?; // w*h f32
//! ```
//!
//! C:
//!
//! ```c
//! GstCustomMeta *meta = gst_buffer_get_custom_meta (buffer, "DtfsalSaliencyMeta");
//! if (meta) {
//!   GstStructure *s = gst_custom_meta_get_structure (meta);
//!   guint w, h; GBytes *bytes;
//!   gst_structure_get (s, "width", G_TYPE_UINT, &w, "height", G_TYPE_UINT, &h,
//!                      "data", G_TYPE_BYTES, &bytes, NULL);
//!   gsize n; const float *map = g_bytes_get_data (bytes, &n);   /* n == w * h * 4 */
//!   /* ... */
//!   g_bytes_unref (bytes);
//! }
//! ```
//!
//! The meta is registered when the plugin loads (any process that has loaded the `dtfsal`
//! plugin, or called [`register`], can look it up). It has no tags, so it survives
//! `videoconvert`/`videoscale`/encoders' meta filtering; it is copied with the buffer.

/// Name of the custom meta.
pub const META_NAME: &str = "DtfsalSaliencyMeta";

/// Registers the custom meta (idempotent).
pub fn register() {
    if gst::meta::CustomMeta::is_registered(META_NAME) {
        return;
    }
    gst::meta::CustomMeta::register_with_transform(META_NAME, &[], |dest, meta, _src, _kind| {
        match gst::meta::CustomMeta::add(dest, META_NAME) {
            Ok(mut m) => {
                let s = m.mut_structure();
                for (name, value) in meta.structure().iter() {
                    s.set_value(name, value.clone());
                }
                true
            }
            Err(_) => false,
        }
    });
}

/// A saliency map read back from a buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyMeta {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
    pub frame_offset: i32,
}

impl SaliencyMeta {
    /// Attaches `map` (`width × height`) to `buffer`.
    pub fn add(buffer: &mut gst::BufferRef, width: usize, height: usize, data: &[f32], frame_offset: i32) -> bool {
        let Ok(mut meta) = gst::meta::CustomMeta::add(buffer, META_NAME) else { return false };
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let s = meta.mut_structure();
        s.set("width", width as u32);
        s.set("height", height as u32);
        s.set("data", gst::glib::Bytes::from_owned(bytes));
        s.set("frame-offset", frame_offset);
        true
    }

    /// The map on `buffer`, if it carries one.
    pub fn from_buffer(buffer: &gst::BufferRef) -> Option<Self> {
        let meta = gst::meta::CustomMeta::from_buffer(buffer, META_NAME).ok()?;
        let s = meta.structure();
        let width = s.get::<u32>("width").ok()? as usize;
        let height = s.get::<u32>("height").ok()? as usize;
        let bytes = s.get::<gst::glib::Bytes>("data").ok()?;
        let frame_offset = s.get::<i32>("frame-offset").unwrap_or(0);
        if bytes.len() != width * height * 4 {
            return None;
        }
        let data = bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Self { width, height, data, frame_offset })
    }
}
