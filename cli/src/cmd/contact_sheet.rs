//! A contact sheet: a grid of frames sampled evenly over a whole stream, as one PNG.
//!
//! The stream's length is often unknown until EOS, so frames are kept at a stride that doubles
//! whenever more than `4 * cells` are held (each doubling drops every other kept frame); at the
//! end `cells` of them are picked evenly. Memory stays bounded by `4 * cells` thumbnails.
use std::path::Path;

use anyhow::{Context, Result, bail};
use image::{RgbImage, imageops};

/// Width of one cell in pixels.
pub const CELL_WIDTH: u32 = 320;
/// Gap between cells in pixels.
const GAP: u32 = 4;

pub struct ContactSheet {
    columns: u32,
    cells: usize,
    stride: u64,
    seen: u64,
    kept: Vec<RgbImage>,
}

impl ContactSheet {
    /// A sheet of `cells` frames in `columns` columns.
    pub fn new(cells: usize, columns: u32) -> Self {
        assert!(cells > 0 && columns > 0);
        Self { columns, cells, stride: 1, seen: 0, kept: Vec::new() }
    }

    /// Offers the next frame of the stream (packed RGB, `width x height`).
    pub fn push(&mut self, rgb: &[u8], width: u32, height: u32) -> Result<()> {
        let size = 3 * width as usize * height as usize;
        if rgb.len() < size || size == 0 {
            bail!("contact sheet: a {width}x{height} RGB frame with {} bytes", rgb.len());
        }
        let index = self.seen;
        self.seen += 1;
        if index % self.stride != 0 {
            return Ok(());
        }
        let frame = RgbImage::from_raw(width, height, rgb[..size].to_vec()).expect("size checked");
        let h = (height as u64 * CELL_WIDTH as u64 / width.max(1) as u64).max(1) as u32;
        self.kept.push(imageops::resize(&frame, CELL_WIDTH, h, imageops::FilterType::Triangle));
        if self.kept.len() > 4 * self.cells {
            // keep frames 0, 2, 4, ... = stream indices 0, 2*stride, ...
            self.kept = std::mem::take(&mut self.kept).into_iter().step_by(2).collect();
            self.stride *= 2;
        }
        Ok(())
    }

    /// Frames offered so far.
    pub fn frames_seen(&self) -> u64 {
        self.seen
    }

    /// Picks `cells` kept frames evenly (all of them when fewer) and writes the grid.
    pub fn write(&self, path: &Path) -> Result<()> {
        if self.kept.is_empty() {
            bail!("contact sheet: no frames");
        }
        let n = self.kept.len().min(self.cells);
        let picks: Vec<&RgbImage> = (0..n).map(|k| &self.kept[k * self.kept.len() / n]).collect();
        let cell_h = picks.iter().map(|p| p.height()).max().unwrap_or(1);
        let cols = self.columns.min(n as u32);
        let rows = (n as u32).div_ceil(cols);
        let mut sheet = RgbImage::from_pixel(
            cols * CELL_WIDTH + (cols + 1) * GAP,
            rows * cell_h + (rows + 1) * GAP,
            image::Rgb([24, 24, 24]),
        );
        for (k, p) in picks.iter().enumerate() {
            let (c, r) = (k as u32 % cols, k as u32 / cols);
            imageops::replace(&mut sheet, *p, (GAP + c * (CELL_WIDTH + GAP)) as i64, (GAP + r * (cell_h + GAP)) as i64);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        sheet.save(path).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(value: u8) -> Vec<u8> {
        vec![value; 3 * 64 * 36]
    }

    #[test]
    fn samples_evenly_with_bounded_memory() {
        let mut s = ContactSheet::new(4, 2);
        for i in 0..1000u32 {
            s.push(&frame((i / 4) as u8), 64, 36).unwrap();
            assert!(s.kept.len() <= 16);
        }
        assert_eq!(s.frames_seen(), 1000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.png");
        s.write(&path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.width(), 2 * CELL_WIDTH + 3 * GAP);
        assert_eq!(img.height(), 2 * 180 + 3 * GAP);
        // the four cells show frames spread over the stream: increasing, far apart
        let v: Vec<u8> = (0..4)
            .map(|k| img.get_pixel(GAP + (k % 2) * (CELL_WIDTH + GAP) + 10, GAP + (k / 2) * (180 + GAP) + 10)[0])
            .collect();
        assert!(v.windows(2).all(|w| w[1] > w[0] + 30), "{v:?}");
    }

    #[test]
    fn short_streams_and_errors() {
        let mut s = ContactSheet::new(12, 4);
        assert!(s.write(Path::new("/nonexistent/x.png")).is_err()); // no frames
        assert!(s.push(&[0u8; 10], 64, 36).is_err()); // too short: an error, not a panic
        s.push(&frame(9), 64, 36).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.png");
        s.write(&path).unwrap();
        assert_eq!(image::open(&path).unwrap().width(), CELL_WIDTH + 2 * GAP);
    }
}
