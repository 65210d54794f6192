//! Deformable convolution v1 (3x3, stride 1, pad 1, one offset group) with torchvision semantics,
//! applied to every slice of a `[C, T, H, W]` volume: deformable im2col, then GEMM, over blocks of
//! positions. The input goes channels-last first, so a sampling point reads four contiguous channel
//! vectors (one per corner) instead of gathering four scalars per channel.

use rayon::prelude::*;

use super::gemm::{MatRef, matmul_serial};
use crate::tensor::transpose_into;
use crate::tensor::Tensor;

/// torchvision `bilinear_interpolate`: zero outside, each missing corner counts as zero (reference for
/// the precomputed [`Tap`]s).
#[cfg(test)]
fn bilinear(img: &[f32], h: usize, w: usize, y: f32, x: f32) -> f32 {
    let (hf, wf) = (h as f32, w as f32);
    if y <= -1.0 || y >= hf || x <= -1.0 || x >= wf {
        return 0.0;
    }
    let y0 = y.floor();
    let x0 = x.floor();
    let (ly, lx) = (y - y0, x - x0);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    let (y0, x0) = (y0 as isize, x0 as isize);
    let (y1, x1) = (y0 + 1, x0 + 1);
    let at = |yy: isize, xx: isize| -> f32 {
        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w { img[yy as usize * w + xx as usize] } else { 0.0 }
    };
    hy * hx * at(y0, x0) + hy * lx * at(y0, x1) + ly * hx * at(y1, x0) + ly * lx * at(y1, x1)
}

/// One bilinear sampling point: four corner indices and weights (a weight is 0 for a corner outside
/// the image, whose index is then 0), equal to torchvision's `bilinear_interpolate`.
#[derive(Clone, Copy, Default)]
struct Tap {
    idx: [u32; 4],
    wt: [f32; 4],
}

impl Tap {
    fn new(h: usize, w: usize, y: f32, x: f32) -> Self {
        let (hf, wf) = (h as f32, w as f32);
        if y <= -1.0 || y >= hf || x <= -1.0 || x >= wf {
            return Self::default();
        }
        let (y0, x0) = (y.floor(), x.floor());
        let (ly, lx) = (y - y0, x - x0);
        let (hy, hx) = (1.0 - ly, 1.0 - lx);
        let (y0, x0) = (y0 as isize, x0 as isize);
        let mut tap = Self::default();
        let corners = [(y0, x0, hy * hx), (y0, x0 + 1, hy * lx), (y0 + 1, x0, ly * hx), (y0 + 1, x0 + 1, ly * lx)];
        for (j, (yy, xx, wt)) in corners.into_iter().enumerate() {
            if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                tap.idx[j] = (yy as usize * w + xx as usize) as u32;
                tap.wt[j] = wt;
            }
        }
        tap
    }

    #[cfg(test)]
    fn sample(&self, img: &[f32]) -> f32 {
        self.wt[0] * img[self.idx[0] as usize]
            + self.wt[1] * img[self.idx[1] as usize]
            + self.wt[2] * img[self.idx[2] as usize]
            + self.wt[3] * img[self.idx[3] as usize]
    }

    /// `dst[c] = Σ_j wt[j] * img[idx[j]][c]` for channels-last `img [H*W, C]` (same sum order as
    /// [`Tap::sample`], so the same values).
    #[inline(always)]
    fn sample_channels(&self, img: &[f32], dst: &mut [f32]) {
        let c = dst.len();
        let row = |j: usize| &img[self.idx[j] as usize * c..][..c];
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        for i in 0..c {
            dst[i] = self.wt[0] * r0[i] + self.wt[1] * r1[i] + self.wt[2] * r2[i] + self.wt[3] * r3[i];
        }
    }
}

/// Output positions per deformable im2col block (its `[positions, 9 * C_in]` columns stay in L2).
const DEFORM_BLOCK: usize = 128;

#[derive(Clone, Debug)]
pub struct DeformConv2d {
    /// `[C_out, C_in * 9]`
    weight: Vec<f32>,
    /// The weight as `[9 * C_in, C_out]` (tap-major rows, matching the channels-last columns).
    weight_taps: Vec<f32>,
    bias: Vec<f32>,
    cout: usize,
    cin: usize,
}

impl DeformConv2d {
    /// `weight [C_out, C_in, 3, 3]`, `bias [C_out]`.
    pub fn new(weight: Tensor, bias: Vec<f32>) -> Self {
        let &[cout, cin, 3, 3] = weight.shape() else {
            panic!("deform conv weight must be [C_out, C_in, 3, 3], got {:?}", weight.shape());
        };
        let mut conv = Self { weight: weight.into_vec(), weight_taps: Vec::new(), bias, cout, cin };
        conv.relayout();
        conv
    }

    /// Rebuilds [`Self::weight_taps`] from the weight.
    fn relayout(&mut self) {
        let (cin, cout) = (self.cin, self.cout);
        self.weight_taps = vec![0.0; 9 * cin * cout];
        for co in 0..cout {
            for ci in 0..cin {
                for k in 0..9 {
                    self.weight_taps[(k * cin + ci) * cout + co] = self.weight[(co * cin + ci) * 9 + k];
                }
            }
        }
    }

    /// Weight `[C_out, C_in * 9]` and bias (BatchNorm folded in), for other backends.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Folds an eval-mode BatchNorm that follows the conv.
    pub fn fold_batch_norm(&mut self, gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f32) {
        let per = self.cin * 9;
        for o in 0..self.cout {
            let s = gamma[o] / (var[o] + eps).sqrt();
            self.weight[o * per..(o + 1) * per].iter_mut().for_each(|w| *w *= s);
            self.bias[o] = (self.bias[o] - mean[o]) * s + beta[o];
        }
        self.relayout();
    }

    /// `x [C_in, T, H, W]`, `offsets [18, T, H, W]` ((ky, kx) major, then (dy, dx)) -> `[C_out, T, H, W]`.
    pub fn forward(&self, x: &Tensor, offsets: &Tensor) -> Tensor {
        let [cin, t, h, w] = x.dims4();
        assert_eq!(cin, self.cin, "deform conv: input channels");
        assert_eq!(offsets.shape(), &[18, t, h, w], "deform conv: offsets shape");
        let (hw, cout) = (h * w, self.cout);
        // channels-last slices [T, H*W, C_in]
        let mut xt = vec![0.0f32; t * hw * cin];
        xt.par_chunks_mut(hw * cin).enumerate().for_each(|(s, dst)| {
            let mut slice = vec![0.0f32; cin * hw]; // [C_in, H*W] of slice s
            for ci in 0..cin {
                slice[ci * hw..(ci + 1) * hw].copy_from_slice(&x.data()[(ci * t + s) * hw..][..hw]);
            }
            transpose_into(&slice, cin, hw, dst);
        });
        let blocks_per_slice = hw.div_ceil(DEFORM_BLOCK);
        let wmat = MatRef::new(&self.weight_taps, 9 * cin, cout);
        // per block of positions of one slice: its columns [nb, 9 * C_in] ((tap, channel) per row), then
        // the GEMM to [nb, C_out]
        let blocks: Vec<Vec<f32>> = (0..t * blocks_per_slice)
            .into_par_iter()
            .map(|task| {
                let (s, p0) = (task / blocks_per_slice, (task % blocks_per_slice) * DEFORM_BLOCK);
                let nb = DEFORM_BLOCK.min(hw - p0);
                let img = &xt[s * hw * cin..(s + 1) * hw * cin];
                let mut col = vec![0.0f32; nb * 9 * cin];
                for (i, row) in col.chunks_exact_mut(9 * cin).enumerate() {
                    let p = p0 + i;
                    let (oy, ox) = ((p / w) as f32, (p % w) as f32);
                    for (k, dst) in row.chunks_exact_mut(cin).enumerate() {
                        let (ky, kx) = ((k / 3) as f32, (k % 3) as f32);
                        let off_y = offsets.data()[((2 * k) * t + s) * hw + p];
                        let off_x = offsets.data()[((2 * k + 1) * t + s) * hw + p];
                        Tap::new(h, w, oy - 1.0 + ky + off_y, ox - 1.0 + kx + off_x).sample_channels(img, dst);
                    }
                }
                let mut y = vec![0.0f32; nb * cout];
                matmul_serial(MatRef::new(&col, nb, 9 * cin), wmat, &mut y, cout, false);
                y
            })
            .collect();
        // [nb, C_out] blocks -> [C_out, T, H, W] (+ bias), one output channel per task
        let mut out = Tensor::zeros(&[cout, t, h, w]);
        out.data_mut().par_chunks_mut(t * hw).enumerate().for_each(|(co, dst)| {
            let b = self.bias[co];
            for (task, y) in blocks.iter().enumerate() {
                let (s, p0) = (task / blocks_per_slice, (task % blocks_per_slice) * DEFORM_BLOCK);
                let nb = y.len() / cout;
                dst[s * hw + p0..][..nb].iter_mut().zip(y[co..].iter().step_by(cout)).for_each(|(o, &v)| *o = v + b);
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_offsets_equal_a_plain_3x3_conv() {
        let x = Tensor::from_vec(&[2, 2, 4, 5], (0..80).map(|i| (i as f32 * 0.3).sin()).collect());
        let wt = Tensor::from_vec(&[3, 2, 3, 3], (0..54).map(|i| (i as f32 * 0.7).cos()).collect());
        let dc = DeformConv2d::new(wt.clone(), vec![0.1, 0.2, 0.3]);
        let got = dc.forward(&x, &Tensor::zeros(&[18, 2, 4, 5]));
        let conv = super::super::conv::Conv3d::new_2d(wt, Some(vec![0.1, 0.2, 0.3]), 1, 1);
        let want = conv.forward(&x);
        got.data().iter().zip(want.data()).for_each(|(a, b)| assert!((a - b).abs() < 1e-5));
    }

    #[test]
    fn random_offsets_match_the_definition() {
        // fractional offsets, several past the border (partial and whole taps outside), 2 slices, more
        // positions than one block
        let (cin, cout, t, h, w) = (5usize, 4usize, 2usize, 9usize, 17usize);
        let x = Tensor::from_vec(&[cin, t, h, w], (0..cin * t * h * w).map(|i| (i as f32 * 0.31).sin()).collect());
        let wt = Tensor::from_vec(&[cout, cin, 3, 3], (0..cout * cin * 9).map(|i| (i as f32 * 0.7).cos()).collect());
        let off = Tensor::from_vec(&[18, t, h, w], (0..18 * t * h * w).map(|i| (i as f32 * 0.173).sin() * 3.5).collect());
        let bias: Vec<f32> = (0..cout).map(|i| i as f32 * 0.25).collect();
        let got = DeformConv2d::new(wt.clone(), bias.clone()).forward(&x, &off);
        let hw = h * w;
        for co in 0..cout {
            for s in 0..t {
                for p in 0..hw {
                    let mut want = bias[co] as f64;
                    for ci in 0..cin {
                        let img = &x.data()[(ci * t + s) * hw..][..hw];
                        for k in 0..9 {
                            let y = (p / w) as f32 - 1.0 + (k / 3) as f32 + off.data()[((2 * k) * t + s) * hw + p];
                            let xx = (p % w) as f32 - 1.0 + (k % 3) as f32 + off.data()[((2 * k + 1) * t + s) * hw + p];
                            want += wt.data()[(co * cin + ci) * 9 + k] as f64 * bilinear(img, h, w, y, xx) as f64;
                        }
                    }
                    let v = got.data()[(co * t + s) * hw + p] as f64;
                    assert!((v - want).abs() < 1e-4, "co {co} s {s} p {p}: {v} vs {want}");
                }
            }
        }
    }

    #[test]
    fn taps_equal_the_reference_bilinear() {
        let img: Vec<f32> = (0..20).map(|i| (i as f32 * 0.9).sin()).collect(); // 4 x 5
        for i in -30..70 {
            for j in -30..70 {
                let (y, x) = (i as f32 * 0.077, j as f32 * 0.093);
                assert!((Tap::new(4, 5, y, x).sample(&img) - bilinear(&img, 4, 5, y, x)).abs() < 1e-6, "{y} {x}");
            }
        }
    }

    #[test]
    fn integer_offset_shifts_the_sample() {
        // a single tap (centre) with dx = +1 reads the right neighbour; past the edge reads zero
        let img: Vec<f32> = (0..6).map(|i| i as f32).collect(); // 2 x 3
        assert_eq!(bilinear(&img, 2, 3, 0.0, 1.0), 1.0);
        assert_eq!(bilinear(&img, 2, 3, 0.5, 0.5), (0.0 + 1.0 + 3.0 + 4.0) / 4.0);
        assert_eq!(bilinear(&img, 2, 3, 0.0, 3.0), 0.0);
        assert!((bilinear(&img, 2, 3, 0.0, 2.5) - 1.0).abs() < 1e-6); // half of the last column
    }
}
