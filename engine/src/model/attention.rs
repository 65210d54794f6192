//! MViTv2 pooling attention (torchvision `MultiscaleAttention`): q/k/v pooled by depthwise Conv3d + LayerNorm,
//! decomposed relative positions (`_add_rel_pos`), residual pooling, in row blocks so the attention
//! matrix never exists whole.

use rayon::prelude::*;

use super::params::Params;
use crate::ops::buffer_pool::BufferPool;
use crate::ops::gemm::{MatRef, matmul_serial};
use crate::ops::linear::Linear;
use crate::ops::norm::LayerNorm;
use crate::ops::resize::linear_rows;
use crate::ops::simd;
use crate::ops::token_pool::{self, Rows, Window};
use crate::tensor::Tensor;
use crate::weights::WeightError;

/// Query rows per attention block.
const ROW_BLOCK: usize = 128;

pub type Thw = [usize; 3];

/// Output grid of a kernel-3, padding-1 pooling conv.
pub fn pooled(thw: Thw, stride: [usize; 3]) -> Thw {
    [0, 1, 2].map(|i| (thw[i] - 1) / stride[i] + 1)
}

struct Pool {
    /// Depthwise kernel `[27, head_dim]` (taps-major, for the channels-last op).
    w_taps: Vec<f32>,
    win: Window,
    norm: LayerNorm,
}

impl Pool {
    /// One of q/k/v inside the projection `qkv [1 + THW, 3 * heads * d]` (`which` = 0, 1, 2) ->
    /// `[heads, 1 + T'H'W', d]`: class token carried through, spatial tokens pooled, then LayerNorm.
    fn forward(&self, qkv: &[f32], which: usize, heads: usize, d: usize, thw: Thw, buffers: &BufferPool) -> Vec<f32> {
        let rs = 3 * heads * d;
        let n_out = 1 + self.win.out_grid(thw).iter().product::<usize>();
        let mut out = buffers.take(heads * n_out * d); // class token copied, spatial tokens pooled: all written
        out.par_chunks_mut(n_out * d).enumerate().for_each(|(h, dst)| {
            let c0 = which * heads * d + h * d;
            dst[..d].copy_from_slice(&qkv[c0..c0 + d]);
            let spatial = Rows { data: &qkv[rs..], rs, c0, c: d };
            token_pool::depthwise(spatial, thw, &self.w_taps, self.win, &mut dst[d..]);
            self.norm.forward_rows(dst);
        });
        out
    }
}

/// Relative-position tables gathered for one (q grid, k grid) pair: `r[qi][ki]` rows of `head_dim`.
pub(crate) struct RelPos {
    /// `[q_t, k_t, d]`, `[q_h, k_h, d]`, `[q_w, k_w, d]`
    pub(crate) t: Vec<f32>,
    pub(crate) h: Vec<f32>,
    pub(crate) w: Vec<f32>,
}

impl RelPos {
    /// torchvision `_add_rel_pos`: tables resized (linear) to `2*max(q,k)-1` rows, indexed by
    /// `floor(i*max(k/q,1) - (j + 1 - k)*max(q/k,1))` (computed in f32 like PyTorch).
    pub(crate) fn new(tables: [&Tensor; 3], q: Thw, k: Thw, d: usize) -> Self {
        let gather = |table: &Tensor, qn: usize, kn: usize| {
            let rows = 2 * qn.max(kn) - 1;
            let tab = linear_rows(table.data(), table.shape()[0], d, rows);
            let q_ratio = (kn as f32 / qn as f32).max(1.0);
            let k_ratio = (qn as f32 / kn as f32).max(1.0);
            let mut out = vec![0.0f32; qn * kn * d];
            for i in 0..qn {
                for j in 0..kn {
                    let dist = i as f32 * q_ratio - (j as f32 + (1.0 - kn as f32)) * k_ratio;
                    let r = dist as usize;
                    out[(i * kn + j) * d..(i * kn + j + 1) * d].copy_from_slice(&tab[r * d..(r + 1) * d]);
                }
            }
            out
        };
        Self { t: gather(tables[0], q[0], k[0]), h: gather(tables[1], q[1], k[1]), w: gather(tables[2], q[2], k[2]) }
    }

    /// The tables as `[q_i, d, K_i]` (`K_i` = `k_i` rounded up to [`simd::REL_LANES`], zero-padded): per
    /// query index a `[d, K]` matrix, for vector-matrix products on the CPU.
    fn per_query_dk(&self, q: Thw, k: Thw, d: usize) -> [Vec<f32>; 3] {
        let tr = |tab: &[f32], qn: usize, kn: usize| {
            let kp = kn.next_multiple_of(simd::REL_LANES);
            let mut out = vec![0.0f32; qn * d * kp];
            for i in 0..qn {
                for j in 0..kn {
                    for c in 0..d {
                        out[(i * d + c) * kp + j] = tab[(i * kn + j) * d + c];
                    }
                }
            }
            out
        };
        [tr(&self.t, q[0], k[0]), tr(&self.h, q[1], k[1]), tr(&self.w, q[2], k[2])]
    }
}

pub struct PoolingAttention {
    qkv: Linear,
    project: Linear,
    pool_q: Pool,
    pool_k: Pool,
    pool_v: Pool,
    heads: usize,
    head_dim: usize,
    stride_q: [usize; 3],
    stride_kv: [usize; 3],
    /// [`RelPos`]'s tables transposed to `[q_i, d, K_i]` (t, h, w), `K_i` = `k_i` rounded up to
    /// [`simd::REL_LANES`] and zero-padded: each query's slice is the `[d, K]` matrix
    /// [`simd::add_rel_pos_row`] takes.
    rel_dk: [Vec<f32>; 3],
}

impl PoolingAttention {
    /// `p` is `encoder.mvit.blocks.{i}.attn`; `thw` the input grid this block will see.
    pub fn load(params: &Params, p: &str, cout: usize, heads: usize, stride_q: [usize; 3], stride_kv: [usize; 3], thw: Thw) -> Result<Self, WeightError> {
        let head_dim = cout / heads;
        let pool = |name: &str, stride: [usize; 3]| -> Result<Pool, WeightError> {
            let conv = params.conv3d(&format!("{p}.{name}.pool"), false, stride, [1, 1, 1], head_dim)?;
            Ok(Pool {
                w_taps: token_pool::taps_major(conv.weight(), head_dim),
                win: Window { k: [3, 3, 3], stride, pad: [1, 1, 1] },
                norm: params.layer_norm(&format!("{p}.{name}.norm_act.0"), 1e-6)?,
            })
        };
        let (q_thw, k_thw) = (pooled(thw, stride_q), pooled(thw, stride_kv));
        let tables = [
            params.tensor(&format!("{p}.rel_pos_t"))?,
            params.tensor(&format!("{p}.rel_pos_h"))?,
            params.tensor(&format!("{p}.rel_pos_w"))?,
        ];
        Ok(Self {
            qkv: params.linear(&format!("{p}.qkv"), true)?,
            project: params.linear(&format!("{p}.project.0"), true)?,
            pool_q: pool("pool_q", stride_q)?,
            pool_k: pool("pool_k", stride_kv)?,
            pool_v: pool("pool_v", stride_kv)?,
            heads,
            head_dim,
            stride_q,
            stride_kv,
            rel_dk: RelPos::new([&tables[0], &tables[1], &tables[2]], q_thw, k_thw, head_dim).per_query_dk(q_thw, k_thw, head_dim),
        })
    }

    /// `xn [1 + THW, C_in]` (normed) -> (`[1 + T'H'W', C_out]`, q grid). The large temporaries and the
    /// output come from `buffers`.
    pub fn forward(&self, xn: &[f32], thw: Thw, buffers: &BufferPool) -> (Vec<f32>, Thw) {
        let (heads, d) = (self.heads, self.head_dim);
        let n = 1 + thw.iter().product::<usize>();
        let cout = heads * d;
        let qkv = self.qkv.forward_pooled(xn, n, buffers); // [n, 3 * heads * d]
        let (q_thw, k_thw) = (pooled(thw, self.stride_q), pooled(thw, self.stride_kv));
        // [heads, 1 + pooled THW, d] each; the three pools are independent
        let (q, (k, v)) = rayon::join(
            || self.pool_q.forward(&qkv, 0, heads, d, thw, buffers),
            || rayon::join(|| self.pool_k.forward(&qkv, 1, heads, d, thw, buffers), || self.pool_v.forward(&qkv, 2, heads, d, thw, buffers)),
        );
        buffers.give(qkv);
        let nq = 1 + q_thw.iter().product::<usize>();
        let nk = 1 + k_thw.iter().product::<usize>();
        let scale = 1.0 / (d as f32).sqrt();

        // out [nq, heads * d]; tasks = (head, row block)
        let blocks = nq.div_ceil(ROW_BLOCK);
        let results: Vec<(usize, usize, Vec<f32>)> = (0..heads * blocks)
            .into_par_iter()
            .map(|task| {
                let (h, b) = (task / blocks, task % blocks);
                let r0 = b * ROW_BLOCK;
                let rows = ROW_BLOCK.min(nq - r0);
                let qh = &q[h * nq * d..(h + 1) * nq * d];
                let kh = &k[h * nk * d..(h + 1) * nk * d];
                let vh = &v[h * nk * d..(h + 1) * nk * d];
                let qb: Vec<f32> = qh[r0 * d..(r0 + rows) * d].iter().map(|x| x * scale).collect();
                let mut s = vec![0.0f32; rows * nk];
                matmul_serial(MatRef::new(&qb, rows, d), MatRef::new(kh, nk, d).t(), &mut s, nk, false);
                let mut scratch: Vec<f32> = vec![0.0; k_thw.iter().map(|k| k.next_multiple_of(simd::REL_LANES)).sum()];
                let mut inv_sums = Vec::with_capacity(rows);
                for i in 0..rows {
                    let row = &mut s[i * nk..(i + 1) * nk];
                    let qi = r0 + i;
                    if qi > 0 {
                        self.add_rel_pos(row, &qh[qi * d..(qi + 1) * d], qi - 1, q_thw, k_thw, &mut scratch);
                    }
                    inv_sums.push(simd::softmax_unnormalised(row));
                }
                let mut o = vec![0.0f32; rows * d];
                matmul_serial(MatRef::new(&s, rows, nk), MatRef::new(vh, nk, d), &mut o, d, false);
                // softmax's normalisation, then residual pooling: spatial query tokens add their (unscaled) q
                for (i, (orow, inv)) in o.chunks_exact_mut(d).zip(inv_sums).enumerate() {
                    let qrow = &qh[(r0 + i) * d..(r0 + i + 1) * d];
                    if r0 + i > 0 {
                        orow.iter_mut().zip(qrow).for_each(|(a, q)| *a = *a * inv + q);
                    } else {
                        orow.iter_mut().for_each(|a| *a *= inv);
                    }
                }
                (h, r0, o)
            })
            .collect();
        // [heads][blocks] of [rows, d] -> [nq, heads * d], one row block per task
        let mut merged = buffers.take(nq * cout); // every row block's heads written below
        merged.par_chunks_mut(ROW_BLOCK * cout).enumerate().for_each(|(b, dst)| {
            for h in 0..heads {
                let (rh, r0, o) = &results[h * blocks + b];
                debug_assert_eq!((*rh, *r0), (h, b * ROW_BLOCK));
                for (i, row) in o.chunks_exact(d).enumerate() {
                    dst[i * cout + h * d..][..d].copy_from_slice(row);
                }
            }
        });
        for pooled in [q, k, v] {
            buffers.give(pooled);
        }
        let out = self.project.forward_pooled(&merged, nq, buffers);
        buffers.give(merged);
        (out, q_thw)
    }

    /// Adds `q·R_t[qt,kt] + q·R_h[qh,kh] + q·R_w[qw,kw]` to the spatial part of one logits row.
    fn add_rel_pos(&self, row: &mut [f32], q: &[f32], qi: usize, q_thw: Thw, k_thw: Thw, scratch: &mut [f32]) {
        let d = self.head_dim;
        let (qt, qh, qw) = (qi / (q_thw[1] * q_thw[2]), (qi / q_thw[2]) % q_thw[1], qi % q_thw[2]);
        let table = |i: usize, q: usize| {
            let size = d * k_thw[i].next_multiple_of(simd::REL_LANES);
            &self.rel_dk[i][q * size..(q + 1) * size]
        };
        simd::add_rel_pos_row(&mut row[1..], q, table(0, qt), table(1, qh), table(2, qw), k_thw, scratch);
    }
}
