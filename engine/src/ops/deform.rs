//! Deformable convolution v1 (3x3, stride 1, pad 1, one offset group) with torchvision semantics,
//! applied to every slice of a `[C, T, H, W]` volume: deformable im2col, then GEMM.

use rayon::prelude::*;

use super::gemm::{MatRef, matmul};
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

    #[inline]
    fn sample(&self, img: &[f32]) -> f32 {
        self.wt[0] * img[self.idx[0] as usize]
            + self.wt[1] * img[self.idx[1] as usize]
            + self.wt[2] * img[self.idx[2] as usize]
            + self.wt[3] * img[self.idx[3] as usize]
    }
}

#[derive(Clone, Debug)]
pub struct DeformConv2d {
    /// `[C_out, C_in * 9]`
    weight: Vec<f32>,
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
        Self { weight: weight.into_vec(), bias, cout, cin }
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
    }

    /// `x [C_in, T, H, W]`, `offsets [18, T, H, W]` ((ky, kx) major, then (dy, dx)) -> `[C_out, T, H, W]`.
    pub fn forward(&self, x: &Tensor, offsets: &Tensor) -> Tensor {
        let [cin, t, h, w] = x.dims4();
        assert_eq!(cin, self.cin, "deform conv: input channels");
        assert_eq!(offsets.shape(), &[18, t, h, w], "deform conv: offsets shape");
        let hw = h * w;
        let mut out = Tensor::zeros(&[self.cout, t, h, w]);
        let mut col = vec![0.0f32; cin * 9 * hw];
        let wmat = MatRef::new(&self.weight, self.cout, cin * 9);
        // sampling taps per (kernel tap, position): shared by every input channel (one offset group)
        let mut taps = vec![Tap::default(); 9 * hw];
        for s in 0..t {
            taps.par_chunks_mut(hw).enumerate().for_each(|(k, dst)| {
                let (ky, kx) = ((k / 3) as f32, (k % 3) as f32);
                let off_y = &offsets.data()[((2 * k) * t + s) * hw..][..hw];
                let off_x = &offsets.data()[((2 * k + 1) * t + s) * hw..][..hw];
                for (p, tap) in dst.iter_mut().enumerate() {
                    let (oy, ox) = ((p / w) as f32, (p % w) as f32);
                    *tap = Tap::new(h, w, oy - 1.0 + ky + off_y[p], ox - 1.0 + kx + off_x[p]);
                }
            });
            // col[(ci*9 + k), p] = x[ci, s] sampled at tap (k, p)
            col.par_chunks_mut(hw).enumerate().for_each(|(row, dst)| {
                let (ci, k) = (row / 9, row % 9);
                let img = &x.data()[(ci * t + s) * hw..(ci * t + s + 1) * hw];
                for (d, tap) in dst.iter_mut().zip(&taps[k * hw..(k + 1) * hw]) {
                    *d = tap.sample(img);
                }
            });
            // out[:, s] lives at column offset s*hw with row stride t*hw
            matmul(wmat, MatRef::new(&col, cin * 9, hw), &mut out.data_mut()[s * hw..], t * hw, false);
        }
        let n = t * hw;
        out.data_mut().par_chunks_mut(n).zip(self.bias.par_iter()).for_each(|(c, &b)| c.iter_mut().for_each(|v| *v += b));
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
