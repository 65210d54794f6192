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
    // scratch per task: horizontally resampled input rows, and the second plane's bilinear result
    let scratch = || (vec![0.0f32; h * wo], vec![0.0f32; ho * wo]);
    out.data_mut().par_chunks_mut(ho * wo).enumerate().for_each_init(scratch, |(rows, second), (row, dst)| {
        let (ci, z) = (row / to, row % to);
        let (z0, z1, lz) = tt[z];
        let plane = |zz: usize| &x.data()[(ci * t + zz) * h * w..(ci * t + zz + 1) * h * w];
        bilinear_plane(plane(z0), w, &th, &tw, rows, dst);
        if lz != 0.0 {
            // PyTorch's order: (1 - lz) * bilinear(z0) + lz * bilinear(z1); with lz = 0 that is bilinear(z0)
            bilinear_plane(plane(z1), w, &th, &tw, rows, second);
            dst.iter_mut().zip(second.iter()).for_each(|(a, &b)| *a = (1.0 - lz) * *a + lz * b);
        }
    });
    out
}

/// One plane `[h, w]` -> `dst [ho, wo]`, separably: each input row resampled along W once into
/// `rows [h, wo]`, then output rows blended from two of them. The arithmetic is PyTorch's
/// `(1 - ly) * ((1 - lx) * a + lx * b) + ly * ((1 - lx) * c + lx * d)`.
fn bilinear_plane(src: &[f32], w: usize, th: &[(usize, usize, f32)], tw: &[(usize, usize, f32)], rows: &mut [f32], dst: &mut [f32]) {
    let wo = tw.len();
    for (r, out) in src.chunks_exact(w).zip(rows.chunks_exact_mut(wo)) {
        for (o, &(x0, x1, lx)) in out.iter_mut().zip(tw) {
            *o = (1.0 - lx) * r[x0] + lx * r[x1];
        }
    }
    for (out, &(y0, y1, ly)) in dst.chunks_exact_mut(wo).zip(th) {
        let (a, b) = (&rows[y0 * wo..(y0 + 1) * wo], &rows[y1 * wo..(y1 + 1) * wo]);
        for ((o, &u), &v) in out.iter_mut().zip(a).zip(b) {
            *o = (1.0 - ly) * u + ly * v;
        }
    }
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
    fn separable_trilinear_matches_the_pointwise_formula() {
        let (c, t, h, w) = (2usize, 3usize, 5usize, 7usize);
        let x = Tensor::from_vec(&[c, t, h, w], (0..c * t * h * w).map(|i| ((i as f32) * 0.37).sin()).collect());
        for size in [[3, 10, 14], [5, 3, 4], [1, 5, 21], [6, 9, 2]] {
            let got = trilinear(&x, size);
            let (tt, th, tw) = (axis_table(t, size[0]), axis_table(h, size[1]), axis_table(w, size[2]));
            let at = |ci: usize, z: usize, y: usize, xx: usize| x.data()[((ci * t + z) * h + y) * w + xx];
            let mut i = 0;
            for ci in 0..c {
                for &(z0, z1, lz) in &tt {
                    for &(y0, y1, ly) in &th {
                        for &(x0, x1, lx) in &tw {
                            let bil = |z: usize| {
                                (1.0 - ly) * ((1.0 - lx) * at(ci, z, y0, x0) + lx * at(ci, z, y0, x1))
                                    + ly * ((1.0 - lx) * at(ci, z, y1, x0) + lx * at(ci, z, y1, x1))
                            };
                            let want = (1.0 - lz) * bil(z0) + lz * bil(z1);
                            assert!((got.data()[i] - want).abs() < 1e-6, "{size:?} at {i}: {} vs {want}", got.data()[i]);
                            i += 1;
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn trilinear_identity_and_constant() {
        let x = Tensor::from_vec(&[1, 2, 2, 2], vec![5.0; 8]);
        let y = trilinear(&x, [3, 5, 7]);
        assert!(y.data().iter().all(|v| (v - 5.0).abs() < 1e-6));
        assert_eq!(trilinear(&x, [2, 2, 2]), x);
    }
}
