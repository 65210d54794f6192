//! Frame pre-processing: any accepted raw video frame → RGB → bilinear resize to the model's
//! input size → per-channel normalisation, as the reference loaders do
//! (`F.interpolate(mode="bilinear", align_corners=False)` on 0–255 RGB, no antialias, then
//! `(x − mean) / std`).
//!
//! YUV inputs (I420, NV12) are converted with the matrix and range of their caps (BT.601,
//! BT.709, BT.2020, …; limited or full range), chroma sampled nearest, and clamped to 0–255
//! before the resize, which is what `videoconvert` followed by the reference resize gives up to
//! chroma siting. RGB inputs are exact.

use gst_video::prelude::*;
use gst_video::{VideoColorMatrix, VideoColorRange, VideoFormat, VideoFrameRef, VideoInfo};

/// One axis of a bilinear resize (`align_corners=False`, source index clamped at 0 as PyTorch
/// does for linear modes): output `i` reads `(1 − w) · in[i0] + w · in[i1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub i0: Vec<usize>,
    pub i1: Vec<usize>,
    pub w: Vec<f32>,
}

impl Axis {
    /// Plan for resizing `input` samples to `output` samples.
    pub fn new(input: usize, output: usize) -> Self {
        let scale = input as f64 / output.max(1) as f64;
        let mut i0 = Vec::with_capacity(output);
        let mut i1 = Vec::with_capacity(output);
        let mut w = Vec::with_capacity(output);
        let last = input.saturating_sub(1);
        for o in 0..output {
            let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
            let a = (src.floor() as usize).min(last);
            let b = (a + 1).min(last);
            i0.push(a);
            i1.push(b);
            w.push((src - a as f64) as f32);
        }
        Self { i0, i1, w }
    }
}

/// `(Kr, Kb, full range)` of a colorimetry; unknown or RGB matrices read as BT.601 (GStreamer's default
/// for SD YUV). Shared by the input conversion here and the overlay's colour conversion.
pub(super) fn yuv_coefficients(info: &VideoInfo) -> (f32, f32, bool) {
    let matrix = match info.colorimetry().matrix() {
        VideoColorMatrix::Unknown | VideoColorMatrix::Rgb => VideoColorMatrix::Bt601,
        m => m,
    };
    let (kr, kb) = matrix.kr_kb().unwrap_or((0.299, 0.114));
    (kr as f32, kb as f32, info.colorimetry().range() == VideoColorRange::Range0_255)
}

/// YUV → RGB coefficients of one colorimetry.
#[derive(Debug, Clone, Copy)]
struct YuvToRgb {
    y_off: f32,
    y_scale: f32,
    c_scale: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl YuvToRgb {
    fn new(info: &VideoInfo) -> Self {
        let (kr, kb, full) = yuv_coefficients(info);
        let kg = 1.0 - kr - kb;
        let (y_off, y_scale, c_scale) = if full {
            (0.0, 1.0, 1.0)
        } else {
            (16.0, 255.0 / 219.0, 255.0 / 224.0)
        };
        Self {
            y_off,
            y_scale,
            c_scale,
            rv: 2.0 * (1.0 - kr),
            gu: -2.0 * kb * (1.0 - kb) / kg,
            gv: -2.0 * kr * (1.0 - kr) / kg,
            bu: 2.0 * (1.0 - kb),
        }
    }

    #[inline]
    fn rgb(&self, y: u8, u: u8, v: u8) -> [f32; 3] {
        let y = (y as f32 - self.y_off) * self.y_scale;
        let u = (u as f32 - 128.0) * self.c_scale;
        let v = (v as f32 - 128.0) * self.c_scale;
        [
            (y + self.rv * v).clamp(0.0, 255.0),
            (y + self.gu * u + self.gv * v).clamp(0.0, 255.0),
            (y + self.bu * u).clamp(0.0, 255.0),
        ]
    }
}

/// Converts frames of one input format/size to normalised model input planes `[3, H, W]`.
#[derive(Debug, Clone)]
pub struct Preprocessor {
    format: VideoFormat,
    out_w: usize,
    out_h: usize,
    xs: Axis,
    ys: Axis,
    mean: [f32; 3],
    inv_std: [f32; 3],
    yuv: YuvToRgb,
}

impl Preprocessor {
    /// A pre-processor from frames of `info` to `out_w × out_h` planes normalised with
    /// `mean`/`std` (0–255 scale). `None` for formats the element does not accept.
    pub fn new(info: &VideoInfo, out_w: usize, out_h: usize, mean: [f32; 3], std: [f32; 3]) -> Option<Self> {
        if !crate::caps::VIDEO_FORMATS.contains(&info.format()) {
            return None;
        }
        Some(Self {
            format: info.format(),
            out_w,
            out_h,
            xs: Axis::new(info.width() as usize, out_w),
            ys: Axis::new(info.height() as usize, out_h),
            mean,
            inv_std: std.map(|s| 1.0 / s),
            yuv: YuvToRgb::new(info),
        })
    }

    /// Output plane size `(width, height)`.
    pub fn output_size(&self) -> (usize, usize) {
        (self.out_w, self.out_h)
    }

    /// Pre-processes one frame into `out` (`[3, H, W]`, `3·H·W` values).
    pub fn process_into<T>(&self, frame: &VideoFrameRef<T>, out: &mut [f32]) {
        let (w, h) = (self.out_w, self.out_h);
        assert_eq!(out.len(), 3 * w * h, "output is [3, H, W]");
        let plane = w * h;
        let fetch = Fetch::new(self.format, frame, self.yuv);
        let Some(fetch) = fetch else {
            out.fill(0.0);
            return;
        };
        for oy in 0..h {
            let (y0, y1, wy) = (self.ys.i0[oy], self.ys.i1[oy], self.ys.w[oy]);
            for ox in 0..w {
                let (x0, x1, wx) = (self.xs.i0[ox], self.xs.i1[ox], self.xs.w[ox]);
                let p00 = fetch.rgb(x0, y0);
                let p01 = fetch.rgb(x1, y0);
                let p10 = fetch.rgb(x0, y1);
                let p11 = fetch.rgb(x1, y1);
                for c in 0..3 {
                    // Same evaluation order as separable height-then-width interpolation.
                    let top = p00[c] + (p01[c] - p00[c]) * wx;
                    let bot = p10[c] + (p11[c] - p10[c]) * wx;
                    let v = top + (bot - top) * wy;
                    out[c * plane + oy * w + ox] = (v - self.mean[c]) * self.inv_std[c];
                }
            }
        }
    }

    /// Pre-processes one frame into a new `[3, H, W]` vector.
    pub fn process<T>(&self, frame: &VideoFrameRef<T>) -> Vec<f32> {
        let mut out = vec![0.0; 3 * self.out_w * self.out_h];
        self.process_into(frame, &mut out);
        out
    }
}

/// Pre-processes one buffer of `info` with the model config's size and normalisation: the
/// function the element uses, public so that tests and applications can build the exact same
/// clips (`[3, height, width]` planes).
pub fn preprocess_buffer(
    buffer: &gst::BufferRef,
    info: &VideoInfo,
    width: usize,
    height: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> Option<Vec<f32>> {
    let pre = Preprocessor::new(info, width, height, mean, std)?;
    let frame = VideoFrameRef::from_buffer_ref_readable(buffer, info).ok()?;
    Some(pre.process(&frame))
}

/// Pixel reader of one mapped frame.
struct Fetch<'a> {
    kind: Kind,
    p0: &'a [u8],
    p1: &'a [u8],
    p2: &'a [u8],
    s0: usize,
    s1: usize,
    s2: usize,
    yuv: YuvToRgb,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Packed RGB-like: bytes per pixel, offsets of R, G, B.
    Packed(usize, [usize; 3]),
    I420,
    Nv12,
}

impl<'a> Fetch<'a> {
    fn new<T>(format: VideoFormat, frame: &'a VideoFrameRef<T>, yuv: YuvToRgb) -> Option<Self> {
        let kind = match format {
            VideoFormat::Rgb => Kind::Packed(3, [0, 1, 2]),
            VideoFormat::Rgba => Kind::Packed(4, [0, 1, 2]),
            VideoFormat::Bgrx | VideoFormat::Bgra => Kind::Packed(4, [2, 1, 0]),
            VideoFormat::I420 => Kind::I420,
            VideoFormat::Nv12 => Kind::Nv12,
            _ => return None,
        };
        let strides = frame.plane_stride();
        let n = frame.n_planes() as usize;
        let plane = |i: usize| -> Option<&'a [u8]> { if i < n { frame.plane_data(i as u32).ok() } else { Some(&[]) } };
        let stride = |i: usize| -> usize { strides.get(i).map(|&s| s.max(0) as usize).unwrap_or(0) };
        Some(Self {
            kind,
            p0: plane(0)?,
            p1: plane(1)?,
            p2: plane(2)?,
            s0: stride(0),
            s1: stride(1),
            s2: stride(2),
            yuv,
        })
    }

    #[inline]
    fn rgb(&self, x: usize, y: usize) -> [f32; 3] {
        match self.kind {
            Kind::Packed(bpp, [r, g, b]) => {
                let o = y * self.s0 + x * bpp;
                match self.p0.get(o..o + bpp) {
                    Some(px) => [px[r] as f32, px[g] as f32, px[b] as f32],
                    None => [0.0; 3],
                }
            }
            Kind::I420 => {
                let yv = self.p0.get(y * self.s0 + x).copied().unwrap_or(16);
                let u = self.p1.get((y / 2) * self.s1 + x / 2).copied().unwrap_or(128);
                let v = self.p2.get((y / 2) * self.s2 + x / 2).copied().unwrap_or(128);
                self.yuv.rgb(yv, u, v)
            }
            Kind::Nv12 => {
                let yv = self.p0.get(y * self.s0 + x).copied().unwrap_or(16);
                let o = (y / 2) * self.s1 + (x / 2) * 2;
                let u = self.p1.get(o).copied().unwrap_or(128);
                let v = self.p1.get(o + 1).copied().unwrap_or(128);
                self.yuv.rgb(yv, u, v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_matches_pytorch_align_corners_false() {
        // 4 -> 2: src = (o + 0.5) * 2 - 0.5 = 0.5, 2.5
        let a = Axis::new(4, 2);
        assert_eq!(a.i0, vec![0, 2]);
        assert_eq!(a.i1, vec![1, 3]);
        assert_eq!(a.w, vec![0.5, 0.5]);
        // upsampling clamps negative source coordinates to 0 and the last index.
        let a = Axis::new(2, 4);
        assert_eq!(a.i0, vec![0, 0, 0, 1]);
        assert_eq!(a.i1, vec![1, 1, 1, 1]);
        assert_eq!(a.w[0], 0.0);
        assert_eq!(a.w[1], 0.25);
    }

    #[test]
    fn rgb_frame_is_resized_and_normalised() {
        gst::init().unwrap();
        let info = VideoInfo::builder(VideoFormat::Rgb, 4, 2).build().unwrap();
        let mut buf = gst::Buffer::with_size(info.size()).unwrap();
        {
            let b = buf.get_mut().unwrap();
            let mut m = b.map_writable().unwrap();
            let stride = info.stride()[0] as usize;
            for y in 0..2 {
                for x in 0..4 {
                    let o = y * stride + x * 3;
                    m[o] = (x * 10) as u8;
                    m[o + 1] = 100;
                    m[o + 2] = (y * 50) as u8;
                }
            }
        }
        let out = preprocess_buffer(&buf, &info, 2, 1, [0.0; 3], [1.0; 3]).unwrap();
        // x: 4 -> 2 at 0.5, 2.5 -> R = 5, 25; y: 2 -> 1 at 0.5 -> B = 25.
        assert_eq!(out, vec![5.0, 25.0, 100.0, 100.0, 25.0, 25.0]);
    }
}
