//! Max pooling over `[C, T, H, W]` (padding never wins: PyTorch pads with -inf).

use rayon::prelude::*;

use crate::tensor::Tensor;

pub fn max_pool3d(x: &Tensor, k: [usize; 3], s: [usize; 3], p: [usize; 3]) -> Tensor {
    let [c, t, h, w] = x.dims4();
    let o = |i: usize, n: usize| (n + 2 * p[i] - k[i]) / s[i] + 1;
    let (to, ho, wo) = (o(0, t), o(1, h), o(2, w));
    let mut out = Tensor::zeros(&[c, to, ho, wo]);
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
