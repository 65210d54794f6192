//! Pooling over token grids in channels-last layout (`[T*H*W, C]` rows, as MViT keeps its tokens):
//! depthwise 3-d convolution (the q/k/v pooling) and 3-d max pooling (the skip path).
//!
//! Working on rows directly saves the two transposes a `[C, T, H, W]` op needs, and the inner loop runs
//! over contiguous channels, so it vectorises whatever the grid's strides are.

use rayon::prelude::*;

use super::simd::dispatch;

pub type Thw = [usize; 3];

/// A pooling window: kernel, stride and zero/-inf padding per axis (t, h, w).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub k: Thw,
    pub stride: Thw,
    pub pad: Thw,
}

impl Window {
    pub fn out_grid(&self, thw: Thw) -> Thw {
        [0, 1, 2].map(|i| (thw[i] + 2 * self.pad[i] - self.k[i]) / self.stride[i] + 1)
    }
}

/// A strided view of `[rows, c]` channels inside a wider row-major matrix: row `r` is
/// `data[r * rs + c0 .. r * rs + c0 + c]` (one head's q, k or v inside the qkv projection).
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub c0: usize,
    pub c: usize,
}

impl<'a> Rows<'a> {
    /// A dense `[rows, c]` matrix.
    pub fn dense(data: &'a [f32], c: usize) -> Self {
        Self { data, rs: c, c0: 0, c }
    }

    #[inline(always)]
    fn row(&self, r: usize) -> &'a [f32] {
        &self.data[r * self.rs + self.c0..][..self.c]
    }
}

/// Depthwise convolution (no bias) over the grid `thw` of `x`: `out [T'H'W', C]` (dense rows).
/// `w_taps [kt*kh*kw, C]` is the PyTorch weight `[C, 1, kt, kh, kw]` transposed (see [`taps_major`]).
/// Taps are summed in (t, h, w) order from zero, as the channels-first direct convolution does.
pub fn depthwise(x: Rows, thw: Thw, w_taps: &[f32], win: Window, out: &mut [f32]) {
    let [to, ho, wo] = win.out_grid(thw);
    let c = x.c;
    assert_eq!(w_taps.len(), win.k.iter().product::<usize>() * c, "depthwise: weight size");
    assert_eq!(out.len(), to * ho * wo * c, "depthwise: output size");
    assert!(x.c0 + c <= x.rs && x.data.len() >= (thw.iter().product::<usize>() - 1) * x.rs + x.c0 + c, "depthwise: input size");
    out.par_chunks_mut(ho * wo * c).enumerate().for_each(|(oz, slice)| depthwise_slice(x, thw, w_taps, win, oz, slice));
}

/// Max pooling over the grid `thw` of `x` (padding never wins, as PyTorch pads with -inf): `out [T'H'W', C]`.
pub fn max_pool(x: Rows, thw: Thw, win: Window, out: &mut [f32]) {
    let [to, ho, wo] = win.out_grid(thw);
    let c = x.c;
    assert_eq!(out.len(), to * ho * wo * c, "max_pool: output size");
    assert!(x.c0 + c <= x.rs && x.data.len() >= (thw.iter().product::<usize>() - 1) * x.rs + x.c0 + c, "max_pool: input size");
    out.par_chunks_mut(ho * wo * c).enumerate().for_each(|(oz, slice)| max_slice(x, thw, win, oz, slice));
}

/// `[C, 1, kt, kh, kw]` (PyTorch depthwise weight) -> `[kt*kh*kw, C]`.
pub fn taps_major(weight: &[f32], c: usize) -> Vec<f32> {
    let kvol = weight.len() / c;
    let mut out = vec![0.0f32; weight.len()];
    for ch in 0..c {
        for tap in 0..kvol {
            out[tap * c + ch] = weight[ch * kvol + tap];
        }
    }
    out
}

/// Input index along one axis for output `o` and tap `k`, or None in the padding.
#[inline(always)]
fn src(o: usize, k: usize, stride: usize, pad: usize, n: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < n)
}

/// The taps of window `win` at output `o` that fall inside the grid, in (t, h, w) order, as
/// `(input row, tap index)`.
#[inline(always)]
fn valid_taps(o: Thw, thw: Thw, win: Window, taps: &mut Vec<(usize, usize)>) {
    let [t, h, w] = thw;
    let [kt, kh, kw] = win.k;
    taps.clear();
    for dz in 0..kt {
        let Some(iz) = src(o[0], dz, win.stride[0], win.pad[0], t) else { continue };
        for dy in 0..kh {
            let Some(iy) = src(o[1], dy, win.stride[1], win.pad[1], h) else { continue };
            for dx in 0..kw {
                let Some(ix) = src(o[2], dx, win.stride[2], win.pad[2], w) else { continue };
                taps.push(((iz * h + iy) * w + ix, (dz * kh + dy) * kw + dx));
            }
        }
    }
}

/// Channels `c0 .. c0 + L` of one depthwise output, summed over `taps` in registers.
#[inline(always)]
fn depthwise_lanes<const L: usize>(x: Rows, taps: &[(usize, usize)], w_taps: &[f32], c: usize, c0: usize) -> [f32; L] {
    let mut a = [0.0f32; L];
    for &(r, tap) in taps {
        let xr = &x.row(r)[c0..c0 + L];
        let wr = &w_taps[tap * c + c0..][..L];
        for l in 0..L {
            a[l] += wr[l] * xr[l];
        }
    }
    a
}

dispatch! {
    /// One output t-slice `[H'W', C]` of [`depthwise`].
    fn depthwise_slice(x: Rows, thw: Thw, w_taps: &[f32], win: Window, oz: usize, slice: &mut [f32]) {
        let c = x.c;
        let wo = slice.len() / c / win.out_grid(thw)[1];
        let mut taps = Vec::with_capacity(win.k.iter().product());
        for (p, acc) in slice.chunks_exact_mut(c).enumerate() {
            valid_taps([oz, p / wo, p % wo], thw, win, &mut taps);
            // 16 (then 8) channels at a time in registers across all taps; then the rest
            let mut c0 = 0;
            while c0 + 16 <= c {
                acc[c0..c0 + 16].copy_from_slice(&depthwise_lanes::<16>(x, &taps, w_taps, c, c0));
                c0 += 16;
            }
            if c0 + 8 <= c {
                acc[c0..c0 + 8].copy_from_slice(&depthwise_lanes::<8>(x, &taps, w_taps, c, c0));
                c0 += 8;
            }
            if c0 < c {
                let rest = &mut acc[c0..];
                rest.fill(0.0);
                for &(r, tap) in &taps {
                    for ((a, &xv), &wv) in rest.iter_mut().zip(&x.row(r)[c0..]).zip(&w_taps[tap * c + c0..(tap + 1) * c]) {
                        *a += wv * xv;
                    }
                }
            }
        }
    }
}

dispatch! {
    /// One output t-slice `[H'W', C]` of [`max_pool`].
    fn max_slice(x: Rows, thw: Thw, win: Window, oz: usize, slice: &mut [f32]) {
        let c = x.c;
        let wo = slice.len() / c / win.out_grid(thw)[1];
        let mut taps = Vec::with_capacity(win.k.iter().product());
        for (p, acc) in slice.chunks_exact_mut(c).enumerate() {
            valid_taps([oz, p / wo, p % wo], thw, win, &mut taps);
            acc.fill(f32::NEG_INFINITY);
            for &(r, _) in &taps {
                for (a, &xv) in acc.iter_mut().zip(x.row(r)) {
                    *a = a.max(xv);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::Conv3d;
    use crate::ops::pool::max_pool3d;
    use crate::tensor::{Tensor, transpose};

    fn grid_tokens(thw: Thw, c: usize) -> Vec<f32> {
        (0..thw.iter().product::<usize>() * c).map(|i| ((i as f32) * 0.731).sin() * 3.0).collect()
    }

    /// Checks both ops against the channels-first reference ops on odd grids, strides and a strided view.
    #[test]
    fn match_the_channels_first_ops() {
        // 5: the remainder loop only; 21: one 16-lane block and a remainder; 24 and 29: a 16- and an
        // 8-lane block (and a remainder); 32: blocks only
        for c in [5, 21, 24, 29, 32] {
            check_against_channels_first(c);
        }
    }

    fn check_against_channels_first(c: usize) {
        let thw = [3, 7, 9];
        // a [n, 3c] matrix whose middle c columns are the input
        let dense = grid_tokens(thw, c);
        let n = thw.iter().product::<usize>();
        let mut wide = vec![f32::NAN; n * 3 * c];
        for r in 0..n {
            wide[r * 3 * c + c..r * 3 * c + 2 * c].copy_from_slice(&dense[r * c..(r + 1) * c]);
        }
        let view = Rows { data: &wide, rs: 3 * c, c0: c, c };
        let vol = Tensor::from_vec(&[c, thw[0], thw[1], thw[2]], transpose(&dense, n, c));
        let weight: Vec<f32> = (0..c * 27).map(|i| ((i as f32) * 0.37).cos()).collect();
        for stride in [[1, 1, 1], [1, 2, 2], [2, 4, 4], [1, 8, 8]] {
            let win = Window { k: [3, 3, 3], stride, pad: [1, 1, 1] };
            let conv = Conv3d::new(Tensor::from_vec(&[c, 1, 3, 3, 3], weight.clone()), None, stride, [1, 1, 1], c);
            let want = conv.forward(&vol);
            let og = win.out_grid(thw);
            let m = og.iter().product::<usize>();
            let mut got = vec![0.0; m * c];
            depthwise(view, thw, &taps_major(&weight, c), win, &mut got);
            assert_eq!(transpose(&got, m, c), want.data(), "depthwise stride {stride:?}");

            let k = stride.map(|s| if s > 1 { s + 1 } else { s });
            let mwin = Window { k, stride, pad: k.map(|k| k / 2) };
            let want = max_pool3d(&vol, mwin.k, stride, mwin.pad);
            let m = mwin.out_grid(thw).iter().product::<usize>();
            let mut got = vec![0.0; m * c];
            max_pool(view, thw, mwin, &mut got);
            assert_eq!(transpose(&got, m, c), want.data(), "max pool stride {stride:?}");
        }
    }
}
