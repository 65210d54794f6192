//! Plain CPU formulas of fused kernels, in f64, as references for their tests: the emulated runs
//! (`tests/emulated.rs`) and the GPU runs (`dtfsal-gpu-check`) compare against the same code.

/// MViTv2 pooling attention of `heads` heads with decomposed rel-pos and residual pooling, as
/// `attention_flash_h*` computes it: `merged [nq, heads * d]` = `softmax(q·kᵀ / sqrt d + rel) v`
/// (+ `q` on spatial queries when `residual`), `rel = q·R_t[a, kt] + q·R_h[b, kh] + q·R_w[c, kw]` for a
/// spatial query at `(a, b, c)` and a spatial key at `(kt, kh, kw)` (the class token gets none).
/// `q [heads, nq, d]`, `k`, `v` `[heads, nk, d]`, `tables` the gathered `[q_i, k_i, d]` per axis
/// (`None`: no rel-pos).
#[allow(clippy::too_many_arguments)]
pub fn pooling_attention(q: &[f32], k: &[f32], v: &[f32], tables: Option<[&[f32]; 3]>, heads: usize, d: usize, q_thw: [usize; 3], k_thw: [usize; 3], residual: bool) -> Vec<f32> {
    let nq = 1 + q_thw.iter().product::<usize>();
    let nk = 1 + k_thw.iter().product::<usize>();
    assert!(q.len() == heads * nq * d && k.len() == heads * nk * d && v.len() == heads * nk * d, "pooling_attention: shapes");
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = vec![0.0f32; nq * heads * d];
    for h in 0..heads {
        let (kh, vh) = (&k[h * nk * d..(h + 1) * nk * d], &v[h * nk * d..(h + 1) * nk * d]);
        for i in 0..nq {
            let qv = &q[(h * nq + i) * d..(h * nq + i + 1) * d];
            let dot = |a: &[f32], b: &[f32]| -> f64 { a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum() };
            let mut logits: Vec<f64> = kh.chunks(d).map(|kr| scale * dot(qv, kr)).collect();
            if let (Some(tabs), true) = (tables, i > 0) {
                let r = i - 1;
                let qpos = [r / (q_thw[1] * q_thw[2]), (r / q_thw[2]) % q_thw[1], r % q_thw[2]];
                let rel = |axis: usize, kj: usize| dot(qv, &tabs[axis][(qpos[axis] * k_thw[axis] + kj) * d..][..d]);
                for (jj, l) in logits[1..].iter_mut().enumerate() {
                    *l += rel(0, jj / (k_thw[1] * k_thw[2])) + rel(1, (jj / k_thw[2]) % k_thw[1]) + rel(2, jj % k_thw[2]);
                }
            }
            let m = logits.iter().copied().fold(f64::MIN, f64::max);
            let p: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
            let sum: f64 = p.iter().sum();
            for e in 0..d {
                let mut acc = p.iter().zip(vh.chunks(d)).map(|(pj, vr)| pj * vr[e] as f64).sum::<f64>() / sum;
                if residual && i > 0 {
                    acc += qv[e] as f64;
                }
                out[(i * heads + h) * d + e] = acc as f32;
            }
        }
    }
    out
}
