//! Output rendering: colour maps, the saliency map upsampled to the frame, heat-map overlay on
//! every accepted format, GRAY8 map frames, and the top-k salient regions.
//!
//! Display values are the map divided by its maximum (min-max style normalisation, as saliency
//! maps are usually shown); the float meta carries the raw model output.

use gst_video::prelude::*;
use gst_video::{VideoFormat, VideoFrameRef, VideoInfo};

use super::preprocess::{Axis, yuv_coefficients};

/// Colour maps of the overlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    Jet,
    Turbo,
    Inferno,
    Gray,
}

impl Palette {
    /// RGB (0–1) of `x` in 0–1.
    pub fn rgb(self, x: f32) -> [f32; 3] {
        let x = x.clamp(0.0, 1.0);
        let c = match self {
            Palette::Gray => [x, x, x],
            Palette::Jet => [
                1.5 - (4.0 * x - 3.0).abs(),
                1.5 - (4.0 * x - 2.0).abs(),
                1.5 - (4.0 * x - 1.0).abs(),
            ],
            Palette::Turbo => {
                // Polynomial approximation of Google's Turbo (A. Mikhailov, R. Du).
                let (x2, x3) = (x * x, x * x * x);
                let (x4, x5) = (x2 * x2, x3 * x2);
                let p = |k: [f32; 6]| k[0] + k[1] * x + k[2] * x2 + k[3] * x3 + k[4] * x4 + k[5] * x5;
                [
                    p([0.135_721_38, 4.615_392_6, -42.660_322_58, 132.131_082_34, -152.942_393_96, 59.286_379_43]),
                    p([0.091_402_61, 2.194_188_39, 4.842_966_58, -14.185_033_33, 4.277_298_57, 2.829_566_04]),
                    p([0.106_673_3, 12.641_946_08, -60.582_048_36, 110.362_767_71, -89.903_109_12, 27.348_249_73]),
                ]
            }
            Palette::Inferno => {
                // Degree-6 polynomial fit of matplotlib's inferno.
                const C: [[f32; 3]; 7] = [
                    [0.000_218_940_37, 0.001_651_004_6, -0.019_480_898],
                    [0.106_513_42, 0.563_956_44, 3.932_712_4],
                    [11.602_493, -3.972_854, -15.942_394],
                    [-41.703_996, 17.436_399, 44.354_145],
                    [77.162_936, -33.402_359, -81.807_309],
                    [-71.319_428, 32.626_064, 73.209_52],
                    [25.131_126, -12.242_669, -23.070_325],
                ];
                let mut acc = C[6];
                for k in (0..6).rev() {
                    for c in 0..3 {
                        acc[c] = C[k][c] + x * acc[c];
                    }
                }
                acc
            }
        };
        c.map(|v| v.clamp(0.0, 1.0))
    }

    /// 256-entry RGB (0–255) table.
    pub fn lut(self) -> [[u8; 3]; 256] {
        let mut t = [[0u8; 3]; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let c = self.rgb(i as f32 / 255.0);
            *e = c.map(|v| (v * 255.0).round() as u8);
        }
        t
    }
}

/// The saliency map upsampled (bilinear, `align_corners=False`) to `width × height` and
/// quantised to 0–255 after division by its maximum.
pub fn upsample_u8(map: &[f32], map_w: usize, map_h: usize, width: usize, height: usize) -> Vec<u8> {
    let mut out = vec![0u8; width * height];
    if map.len() != map_w * map_h || map.is_empty() {
        return out;
    }
    let max = map.iter().cloned().fold(0.0f32, f32::max);
    let scale = if max > 1e-6 { 255.0 / max } else { 0.0 };
    let xs = Axis::new(map_w, width);
    let ys = Axis::new(map_h, height);
    let mut row = vec![0f32; map_w];
    for y in 0..height {
        let (r0, r1, wy) = (ys.i0[y], ys.i1[y], ys.w[y]);
        let a = &map[r0 * map_w..(r0 + 1) * map_w];
        let b = &map[r1 * map_w..(r1 + 1) * map_w];
        for x in 0..map_w {
            row[x] = a[x] + (b[x] - a[x]) * wy;
        }
        let o = &mut out[y * width..(y + 1) * width];
        for x in 0..width {
            let (c0, c1, wx) = (xs.i0[x], xs.i1[x], xs.w[x]);
            let v = row[c0] + (row[c1] - row[c0]) * wx;
            o[x] = (v * scale).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// Writes `values` (`width × height`, from [`upsample_u8`]) into a GRAY8 frame.
pub fn write_gray8(frame: &mut VideoFrameRef<&mut gst::BufferRef>, values: &[u8]) {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let stride = frame.plane_stride()[0].max(0) as usize;
    let Ok(data) = frame.plane_data_mut(0) else { return };
    for y in 0..h {
        if let (Some(dst), Some(src)) = (data.get_mut(y * stride..y * stride + w), values.get(y * w..(y + 1) * w)) {
            dst.copy_from_slice(src);
        }
    }
}

/// RGB → YUV code values for one colorimetry.
fn rgb_to_yuv(info: &VideoInfo, rgb: [u8; 3]) -> [u8; 3] {
    let (kr, kb, full) = yuv_coefficients(info);
    let kg = 1.0 - kr - kb;
    let [r, g, b] = rgb.map(|v| v as f32 / 255.0);
    let y = kr * r + kg * g + kb * b;
    let u = (b - y) / (2.0 * (1.0 - kb));
    let v = (r - y) / (2.0 * (1.0 - kr));
    let (ys, yo, cs) = if full { (255.0, 0.0, 255.0) } else { (219.0, 16.0, 224.0) };
    [
        (y * ys + yo).round().clamp(0.0, 255.0) as u8,
        (u * cs + 128.0).round().clamp(0.0, 255.0) as u8,
        (v * cs + 128.0).round().clamp(0.0, 255.0) as u8,
    ]
}

#[inline]
fn blend(dst: &mut u8, src: u8, a: u32) {
    // a in 0..=256
    *dst = ((*dst as u32 * (256 - a) + src as u32 * a + 128) >> 8) as u8;
}

/// Alpha-blends the heat map of `values` (`width × height`, from [`upsample_u8`]) onto `frame`.
pub fn overlay(frame: &mut VideoFrameRef<&mut gst::BufferRef>, values: &[u8], palette: Palette, alpha: f64) {
    let info = frame.info().clone();
    let (w, h) = (info.width() as usize, info.height() as usize);
    if values.len() != w * h {
        return;
    }
    let a = (alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
    if a == 0 {
        return;
    }
    let lut = palette.lut();
    let strides: Vec<usize> = frame.plane_stride().iter().map(|&s| s.max(0) as usize).collect();
    match info.format() {
        VideoFormat::Rgb | VideoFormat::Rgba | VideoFormat::Bgrx | VideoFormat::Bgra => {
            let (bpp, order) = match info.format() {
                VideoFormat::Rgb => (3, [0, 1, 2]),
                VideoFormat::Rgba => (4, [0, 1, 2]),
                _ => (4, [2, 1, 0]),
            };
            let Ok(data) = frame.plane_data_mut(0) else { return };
            for y in 0..h {
                for x in 0..w {
                    let o = y * strides[0] + x * bpp;
                    let Some(px) = data.get_mut(o..o + bpp) else { continue };
                    let c = lut[values[y * w + x] as usize];
                    for k in 0..3 {
                        blend(&mut px[order[k]], c[k], a);
                    }
                }
            }
        }
        VideoFormat::I420 | VideoFormat::Nv12 => {
            let yuv: Vec<[u8; 3]> = lut.iter().map(|&c| rgb_to_yuv(&info, c)).collect();
            if let Ok(luma) = frame.plane_data_mut(0) {
                for y in 0..h {
                    for x in 0..w {
                        if let Some(p) = luma.get_mut(y * strides[0] + x) {
                            blend(p, yuv[values[y * w + x] as usize][0], a);
                        }
                    }
                }
            }
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let value_at = |cx: usize, cy: usize| values[(2 * cy).min(h - 1) * w + (2 * cx).min(w - 1)] as usize;
            if info.format() == VideoFormat::I420 {
                for (plane, k) in [(1u32, 1usize), (2, 2)] {
                    let s = strides[plane as usize];
                    let Ok(data) = frame.plane_data_mut(plane) else { continue };
                    for cy in 0..ch {
                        for cx in 0..cw {
                            if let Some(p) = data.get_mut(cy * s + cx) {
                                blend(p, yuv[value_at(cx, cy)][k], a);
                            }
                        }
                    }
                }
            } else {
                let s = strides[1];
                let Ok(data) = frame.plane_data_mut(1) else { return };
                for cy in 0..ch {
                    for cx in 0..cw {
                        let c = yuv[value_at(cx, cy)];
                        let o = cy * s + 2 * cx;
                        if let Some(p) = data.get_mut(o..o + 2) {
                            blend(&mut p[0], c[1], a);
                            blend(&mut p[1], c[2], a);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// A salient region in map coordinates, `score` its peak value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub score: f32,
}

/// The `k` most salient regions of a `map_w × map_h` map: greedy peak picking; each region is a
/// box of a quarter of the map's width and height centred on a peak, clamped to the map; values
/// under a picked box are suppressed before the next pick.
pub fn top_regions(map: &[f32], map_w: usize, map_h: usize, k: usize) -> Vec<Region> {
    let mut out = Vec::new();
    if map.len() != map_w * map_h || map.is_empty() {
        return out;
    }
    let mut m = map.to_vec();
    let (bw, bh) = ((map_w / 4).max(1), (map_h / 4).max(1));
    for _ in 0..k {
        let Some((i, &score)) = m.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)) else { break };
        if !score.is_finite() || score <= f32::MIN {
            break;
        }
        let (px, py) = (i % map_w, i / map_w);
        let x = px.saturating_sub(bw / 2).min(map_w - bw);
        let y = py.saturating_sub(bh / 2).min(map_h - bh);
        out.push(Region { x, y, w: bw, h: bh, score });
        for yy in y..y + bh {
            m[yy * map_w + x..yy * map_w + x + bw].fill(f32::MIN);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palettes_span_their_range() {
        assert_eq!(Palette::Gray.lut()[255], [255, 255, 255]);
        assert_eq!(Palette::Jet.lut()[0], [0, 0, 128]);
        assert_eq!(Palette::Jet.lut()[255], [128, 0, 0]);
        let inf = Palette::Inferno.lut();
        assert!(inf[0].iter().all(|&c| c < 10), "{:?}", inf[0]);
        assert!(inf[255][0] > 240 && inf[255][1] > 240, "{:?}", inf[255]);
        let t = Palette::Turbo.lut();
        assert!(t[128][1] > 200, "{:?}", t[128]);
    }

    #[test]
    fn upsample_normalises_by_max() {
        let v = upsample_u8(&[0.0, 0.5, 0.25, 0.5], 2, 2, 2, 2);
        assert_eq!(v, vec![0, 255, 128, 255]);
        assert_eq!(upsample_u8(&[0.2; 4], 2, 2, 5, 3).len(), 15);
    }

    #[test]
    fn regions_are_distinct_peaks() {
        let mut map = vec![0.0f32; 16 * 8];
        map[2 * 16 + 3] = 1.0;
        map[6 * 16 + 12] = 0.8;
        let r = top_regions(&map, 16, 8, 2);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].score, 1.0);
        assert_eq!(r[1].score, 0.8);
        assert!(r[1].x >= 8);
    }
}
