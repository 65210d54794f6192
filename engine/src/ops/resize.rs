//! Linear / bilinear / trilinear resampling with `align_corners=False` and no antialiasing
//! (PyTorch `F.interpolate`): `src = (dst + 0.5) * in/out - 0.5`, clamped at 0, edge-replicated.

use rayon::prelude::*;

use crate::tensor::Tensor;

/// Per output index: (low source index, high source index, weight of high). Shared by every
/// half-pixel resampler in the engine (volumes here, the audio slices in `audio::resize`).
pub fn axis_table(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_in as f32 / n_out as f32;
    (0..n_out)
        .map(|d| {
            let src = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(n_in - 1);
            let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// `x [C, T, H, W] -> [C, to, ho, wo]`.
pub fn trilinear(x: &Tensor, [to, ho, wo]: [usize; 3]) -> Tensor {
    let [c, t, h, w] = x.dims4();
    if [t, h, w] == [to, ho, wo] {
        return x.clone();
    }
    let (tt, th, tw) = (axis_table(t, to), axis_table(h, ho), axis_table(w, wo));
    let mut out = Tensor::zeros(&[c, to, ho, wo]);
    out.data_mut().par_chunks_mut(ho * wo).enumerate().for_each(|(row, dst)| {
        let (ci, z) = (row / to, row % to);
        let (z0, z1, lz) = tt[z];
        let base = ci * t * h * w;
        let plane = |zz: usize| &x.data()[base + zz * h * w..base + (zz + 1) * h * w];
        let (p0, p1) = (plane(z0), plane(z1));
        for (y, &(y0, y1, ly)) in th.iter().enumerate() {
            for (xx, &(x0, x1, lx)) in tw.iter().enumerate() {
                let bil = |p: &[f32]| {
                    (1.0 - ly) * ((1.0 - lx) * p[y0 * w + x0] + lx * p[y0 * w + x1])
                        + ly * ((1.0 - lx) * p[y1 * w + x0] + lx * p[y1 * w + x1])
                };
                dst[y * wo + xx] = (1.0 - lz) * bil(p0) + lz * bil(p1);
            }
        }
    });
    out
}

/// Resizes the rows of a table `[n_in, d]` to `[n_out, d]` (1-d linear along rows).
pub fn linear_rows(table: &[f32], n_in: usize, d: usize, n_out: usize) -> Vec<f32> {
    if n_in == n_out {
        return table.to_vec();
    }
    let tab = axis_table(n_in, n_out);
    let mut out = vec![0.0f32; n_out * d];
    for (r, &(i0, i1, l)) in tab.iter().enumerate() {
        for j in 0..d {
            out[r * d + j] = (1.0 - l) * table[i0 * d + j] + l * table[i1 * d + j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_by_two_matches_pytorch_weights() {
        // F.interpolate([0, 1, 2, 3], size=8, mode='linear') = [0, .25, .75, 1.25, 1.75, 2.25, 2.75, 3]
        let got = linear_rows(&[0.0, 1.0, 2.0, 3.0], 4, 1, 8);
        let want = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0];
        got.iter().zip(want).for_each(|(a, b)| assert!((a - b).abs() < 1e-6));
    }

    #[test]
    fn bilinear_upsampling_of_a_map() {
        // align_corners=false: 2 -> 4 gives [a, .75a+.25b, .25a+.75b, b]
        let m = Tensor::from_vec(&[1, 1, 1, 2], vec![0.0, 1.0]);
        let r = trilinear(&m, [1, 1, 4]);
        let want = [0.0, 0.25, 0.75, 1.0];
        assert!(r.data().iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{:?}", r.data());
    }

    #[test]
    fn trilinear_identity_and_constant() {
        let x = Tensor::from_vec(&[1, 2, 2, 2], vec![5.0; 8]);
        let y = trilinear(&x, [3, 5, 7]);
        assert!(y.data().iter().all(|v| (v - 5.0).abs() < 1e-6));
        assert_eq!(trilinear(&x, [2, 2, 2]), x);
    }
}
