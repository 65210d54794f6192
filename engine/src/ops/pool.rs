//! Max pooling over `[C, T, H, W]` (padding never wins: PyTorch pads with -inf).

use rayon::prelude::*;

use crate::tensor::Tensor;

pub fn max_pool3d(x: &Tensor, k: [usize; 3], s: [usize; 3], p: [usize; 3]) -> Tensor {
    let [c, t, h, w] = x.dims4();
    let o = |i: usize, n: usize| (n + 2 * p[i] - k[i]) / s[i] + 1;
    let (to, ho, wo) = (o(0, t), o(1, h), o(2, w));
    let mut out = Tensor::zeros(&[c, to, ho, wo]);
    if k == [1, 2, 2] && s == k && p == [0, 0, 0] {
        // VGGish's pools: rows pairwise, no padding to test
        out.data_mut().par_chunks_mut(ho * wo).enumerate().for_each(|(plane, dst)| {
            let src = &x.data()[plane * h * w..(plane + 1) * h * w];
            for (y, row) in dst.chunks_exact_mut(wo).enumerate() {
                let (r0, r1) = (&src[2 * y * w..][..2 * wo], &src[(2 * y + 1) * w..][..2 * wo]);
                for ((o, a), b) in row.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)) {
                    *o = a[0].max(a[1]).max(b[0].max(b[1]));
                }
            }
        });
        return out;
    }
    out.data_mut().par_chunks_mut(to * ho * wo).enumerate().for_each(|(ci, dst)| {
        let src = &x.data()[ci * t * h * w..(ci + 1) * t * h * w];
        for z in 0..to {
            for y in 0..ho {
                for xx in 0..wo {
                    let mut m = f32::NEG_INFINITY;
                    for a in 0..k[0] {
                        let iz = (z * s[0] + a) as isize - p[0] as isize;
                        if iz < 0 || iz as usize >= t {
                            continue;
                        }
                        for b in 0..k[1] {
                            let iy = (y * s[1] + b) as isize - p[1] as isize;
                            if iy < 0 || iy as usize >= h {
                                continue;
                            }
                            for cc in 0..k[2] {
                                let ix = (xx * s[2] + cc) as isize - p[2] as isize;
                                if ix >= 0 && (ix as usize) < w {
                                    m = m.max(src[(iz as usize * h + iy as usize) * w + ix as usize]);
                                }
                            }
                        }
                    }
                    dst[(z * ho + y) * wo + xx] = m;
                }
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2x2_fast_path_takes_the_max_of_each_window() {
        // odd sizes: the last row/column is dropped, as PyTorch floors
        let (c, t, h, w) = (3, 2, 7, 9);
        let x = Tensor::from_vec(&[c, t, h, w], (0..c * t * h * w).map(|i| ((i as f32) * 0.77).sin()).collect());
        let fast = max_pool3d(&x, [1, 2, 2], [1, 2, 2], [0, 0, 0]);
        assert_eq!(fast.shape(), &[c, t, 3, 4]);
        let mut want = vec![0.0f32; c * t * 12];
        for p in 0..c * t {
            for y in 0..3 {
                for xx in 0..4 {
                    let v = |dy: usize, dx: usize| x.data()[p * h * w + (2 * y + dy) * w + 2 * xx + dx];
                    want[p * 12 + y * 4 + xx] = v(0, 0).max(v(0, 1)).max(v(1, 0)).max(v(1, 1));
                }
            }
        }
        assert_eq!(fast.data(), &want[..]);
    }
}
