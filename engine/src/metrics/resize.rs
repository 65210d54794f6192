//! Bicubic resize matching MATLAB `imresize(A, [h w], 'bicubic')`, the resize of the MIT
//! benchmark's metric code (chosen over OpenCV/PIL so that scores compare with the published
//! MATLAB numbers).
//!
//! MATLAB's algorithm (`imresize.m`, `contributions`): Keys' cubic kernel with `a = -0.5`;
//! output pixel `x` (1-based) maps to `u = x / scale + 0.5 (1 - 1 / scale)`; when shrinking
//! (`scale < 1`) the kernel is stretched to `scale * cubic(scale * x)` over a width `4 / scale`
//! (antialiasing, MATLAB's default); the weights of each output pixel are normalised to sum to
//! 1; out-of-range taps mirror the image symmetrically (`[1..n, n..1]`); the two axes are
//! resized one after the other, the one with the smaller scale first. Computed in `f64` with no
//! rounding or clamping (MATLAB's behaviour on `double` input). Same size in and out: a copy.
use super::Map;

fn cubic(x: f64) -> f64 {
    let a = x.abs();
    let a2 = a * a;
    let a3 = a2 * a;
    if a <= 1.0 {
        1.5 * a3 - 2.5 * a2 + 1.0
    } else if a <= 2.0 {
        -0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0
    } else {
        0.0
    }
}

/// Per output pixel: (input indices, 0-based, and their weights).
fn contributions(in_len: usize, out_len: usize) -> Vec<Vec<(usize, f64)>> {
    let scale = out_len as f64 / in_len as f64;
    let (kscale, width) = if scale < 1.0 {
        (scale, 4.0 / scale)
    } else {
        (1.0, 4.0)
    };
    let taps = width.ceil() as i64 + 2;
    let period = 2 * in_len as i64;
    (1..=out_len)
        .map(|x| {
            let u = x as f64 / scale + 0.5 * (1.0 - 1.0 / scale);
            let left = (u - width / 2.0).floor() as i64;
            let mut w: Vec<(i64, f64)> = (0..taps)
                .map(|j| {
                    let idx = left + j;
                    (idx, kscale * cubic(kscale * (u - idx as f64)))
                })
                .collect();
            let sum: f64 = w.iter().map(|p| p.1).sum();
            w.iter_mut().for_each(|p| p.1 /= sum);
            w.into_iter()
                .filter(|p| p.1 != 0.0)
                .map(|(idx, wt)| {
                    // 1-based idx -> aux = [1..n, n..1] indexed with mod.
                    let m = (idx - 1).rem_euclid(period);
                    let i = if m < in_len as i64 { m } else { period - 1 - m };
                    (i as usize, wt)
                })
                .collect()
        })
        .collect()
}

/// Resize along the rows axis (changes the height).
fn resize_h(src: &Map, out_h: usize) -> Map {
    let c = contributions(src.height, out_h);
    let w = src.width;
    let mut data = vec![0.0; w * out_h];
    for (y, taps) in c.iter().enumerate() {
        let row = &mut data[y * w..(y + 1) * w];
        for &(iy, wt) in taps {
            let srow = &src.data[iy * w..(iy + 1) * w];
            for (o, s) in row.iter_mut().zip(srow) {
                *o += wt * s;
            }
        }
    }
    Map::new(w, out_h, data)
}

/// Resize along the columns axis (changes the width).
fn resize_w(src: &Map, out_w: usize) -> Map {
    let c = contributions(src.width, out_w);
    let h = src.height;
    let mut data = vec![0.0; out_w * h];
    for y in 0..h {
        let srow = &src.data[y * src.width..(y + 1) * src.width];
        for (x, taps) in c.iter().enumerate() {
            data[y * out_w + x] = taps.iter().map(|&(ix, wt)| wt * srow[ix]).sum();
        }
    }
    Map::new(out_w, h, data)
}

/// MATLAB `imresize(src, [height width], 'bicubic')` on a `double` image.
pub fn imresize_bicubic(src: &Map, width: usize, height: usize) -> Map {
    assert!(
        width > 0 && height > 0 && !src.is_empty(),
        "imresize: empty map"
    );
    if (src.width, src.height) == (width, height) {
        return src.clone();
    }
    let sh = height as f64 / src.height as f64;
    let sw = width as f64 / src.width as f64;
    // MATLAB: `[~, order] = sort(scale)`, stable: rows first on a tie.
    if sh <= sw {
        resize_w(&resize_h(src, height), width)
    } else {
        resize_h(&resize_w(src, width), height)
    }
}
