//! Examples → model slices: spec §2.2 steps 4–6 (64-frame examples with hop 11, DiffSal's repeat
//! rule to 9 examples, bilinear resize 64×64 → 112×192).

use crate::ops::resize::axis_table;
use super::{EXAMPLE_HOP, EXAMPLE_WINDOW, NUM_BANDS, NUM_SLICES, SLICE_H, SLICE_W};

/// Number of examples of `frames` log-mel frames: `1 + (frames − 64) / 11`, 0 if fewer than 64.
pub fn num_examples(frames: usize) -> usize {
    if frames < EXAMPLE_WINDOW {
        0
    } else {
        1 + (frames - EXAMPLE_WINDOW) / EXAMPLE_HOP
    }
}

/// Which example feeds each of the 9 slices when there are `n` examples (DiffSal, spec §2.2
/// step 5): `repeat_interleave(9 / n)` (if > 0), then append the first `9 % n` of that, keep the
/// first 9. `None` for `n == 0`.
pub fn nine_slice_indices(n: usize) -> Option<[usize; NUM_SLICES]> {
    if n == 0 {
        return None;
    }
    let (rep, rem) = (NUM_SLICES / n, NUM_SLICES % n);
    let mut seq: Vec<usize> = if rep > 0 {
        (0..n).flat_map(|i| std::iter::repeat_n(i, rep)).collect()
    } else {
        (0..n).collect()
    };
    if n != NUM_SLICES {
        let head: Vec<usize> = seq[..rem.min(seq.len())].to_vec();
        seq.extend(head);
    }
    let mut out = [0; NUM_SLICES];
    out.copy_from_slice(&seq[..NUM_SLICES]);
    Some(out)
}

/// One axis of a bilinear resize with `align_corners = False` (half-pixel centres, source index
/// clamped at 0, no antialias), computed in `f32` like PyTorch's CPU `upsample_bilinear2d`.
#[derive(Debug, Clone)]
struct Axis {
    /// Per output index: (i0, i1, w0, w1) with `y = w0·x[i0] + w1·x[i1]`.
    taps: Vec<(usize, usize, f32, f32)>,
}

impl Axis {
    fn new(input: usize, output: usize) -> Self {
        let taps = axis_table(input, output).into_iter().map(|(i0, i1, w1)| (i0, i1, 1.0 - w1, w1)).collect();
        Self { taps }
    }
}

/// Bilinear resize of a `[in_h, in_w]` plane to `[out_h, out_w]`
/// (`F.interpolate(mode="bilinear", align_corners=False)`).
///
/// Separable: every input row is first interpolated along the columns (`[in_h, out_w]`, kept
/// as scratch), then output rows blend two of those. Each output value is computed with the same
/// operations in the same order as PyTorch's `(w0·x00 + w1·x01)·h0 + (w0·x10 + w1·x11)·h1`.
#[derive(Debug, Clone)]
pub struct BilinearResize {
    in_h: usize,
    in_w: usize,
    rows: Axis,
    cols: Axis,
    /// Column-interpolated input rows `[in_h, out_w]`.
    scratch: Vec<f32>,
}

impl BilinearResize {
    pub fn new(in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Self {
        Self {
            in_h,
            in_w,
            rows: Axis::new(in_h, out_h),
            cols: Axis::new(in_w, out_w),
            scratch: vec![0.0; in_h * out_w],
        }
    }

    /// The slice resize: example `[64 time, 64 mel]` → `[112, 192]`.
    pub fn slice() -> Self {
        Self::new(EXAMPLE_WINDOW, NUM_BANDS, SLICE_H, SLICE_W)
    }

    /// `src`: `[in_h, in_w]` row-major; `dst`: `[out_h, out_w]`.
    pub fn apply(&mut self, src: &[f32], dst: &mut [f32]) {
        let out_w = self.cols.taps.len();
        assert_eq!(src.len(), self.in_h * self.in_w);
        assert_eq!(dst.len(), self.rows.taps.len() * out_w);
        for (x, t) in src
            .chunks_exact(self.in_w)
            .zip(self.scratch.chunks_exact_mut(out_w))
        {
            for (y, &(c0, c1, w0, w1)) in t.iter_mut().zip(&self.cols.taps) {
                *y = w0 * x[c0] + w1 * x[c1];
            }
        }
        for (dst_row, &(r0, r1, h0, h1)) in dst.chunks_exact_mut(out_w).zip(&self.rows.taps) {
            let t0 = &self.scratch[r0 * out_w..(r0 + 1) * out_w];
            let t1 = &self.scratch[r1 * out_w..(r1 + 1) * out_w];
            for ((y, &a), &b) in dst_row.iter_mut().zip(t0).zip(t1) {
                *y = a * h0 + b * h1;
            }
        }
    }
}

/// Log-mel frames `[frames, 64]` → model input `[9, 1, 112, 192]` (steps 4–6).
/// `out.len()` must be `9·112·192`. Panics if there are fewer than 64 frames (no example).
pub fn slices_from_frames(frames: &[f32], resize: &mut BilinearResize, out: &mut [f32]) {
    assert_eq!(frames.len() % NUM_BANDS, 0);
    let n = num_examples(frames.len() / NUM_BANDS);
    let idx = nine_slice_indices(n).expect("fewer than 64 log-mel frames: no example");
    for (slice, e) in out.chunks_exact_mut(SLICE_H * SLICE_W).zip(idx) {
        let start = e * EXAMPLE_HOP * NUM_BANDS;
        resize.apply(&frames[start..start + EXAMPLE_WINDOW * NUM_BANDS], slice);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_rule() {
        assert_eq!(nine_slice_indices(9), Some([0, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(nine_slice_indices(1), Some([0; 9]));
        assert_eq!(nine_slice_indices(2), Some([0, 0, 0, 0, 1, 1, 1, 1, 0]));
        assert_eq!(nine_slice_indices(4), Some([0, 0, 1, 1, 2, 2, 3, 3, 0]));
        assert_eq!(nine_slice_indices(7), Some([0, 1, 2, 3, 4, 5, 6, 0, 1]));
        assert_eq!(nine_slice_indices(12), Some([0, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(nine_slice_indices(0), None);
        assert_eq!(num_examples(158), 9);
        assert_eq!(num_examples(63), 0);
    }

    #[test]
    fn resize_of_constant_is_constant_and_identity_is_identity() {
        let mut r = BilinearResize::new(4, 4, 7, 9);
        let mut dst = vec![0.0; 63];
        r.apply(&[2.5; 16], &mut dst);
        assert!(dst.iter().all(|&v| (v - 2.5).abs() < 1e-6));
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut same = vec![0.0; 16];
        BilinearResize::new(4, 4, 4, 4).apply(&src, &mut same);
        assert_eq!(src, same);
    }
}
