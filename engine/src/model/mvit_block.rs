//! One MViTv2 MultiscaleBlock (torchvision semantics, `proj_after_attn`, residual pooling).

use super::attention::{PoolingAttention, Thw, pooled};
use super::params::Params;
use crate::ops::act::gelu;
use crate::ops::buffer_pool::BufferPool;
use crate::ops::linear::Linear;
use crate::ops::norm::LayerNorm;
use crate::ops::token_pool::{self, Rows, Window};
use crate::weights::WeightError;

/// One block's shape: torchvision mvit_v2_s generalised (see the python `block_settings`).
#[derive(Clone, Copy, Debug)]
pub struct BlockSetting {
    pub cin: usize,
    pub cout: usize,
    pub heads: usize,
    pub stride_q: [usize; 3],
    pub stride_kv: [usize; 3],
}

pub struct MultiscaleBlock {
    norm1: LayerNorm,
    norm2: LayerNorm,
    attn: PoolingAttention,
    mlp1: Linear,
    mlp2: Linear,
    /// Projection of the normed input for the skip path when the width changes.
    project: Option<Linear>,
    set: BlockSetting,
}

impl MultiscaleBlock {
    pub fn load(params: &Params, i: usize, set: BlockSetting, thw: Thw) -> Result<Self, WeightError> {
        let p = format!("encoder.mvit.blocks.{i}");
        Ok(Self {
            norm1: params.layer_norm(&format!("{p}.norm1"), 1e-6)?,
            norm2: params.layer_norm(&format!("{p}.norm2"), 1e-6)?,
            attn: PoolingAttention::load(params, &format!("{p}.attn"), set.cout, set.heads, set.stride_q, set.stride_kv, thw)?,
            mlp1: params.linear(&format!("{p}.mlp.0"), true)?,
            mlp2: params.linear(&format!("{p}.mlp.3"), true)?,
            project: if set.cin != set.cout { Some(params.linear(&format!("{p}.project"), true)?) } else { None },
            set,
        })
    }

    /// `x [1 + THW, C_in]` -> (`[1 + T'H'W', C_out]`, new grid). Temporaries come from and go back to
    /// `buffers`, and so does `x` when the output is a new buffer.
    pub fn forward(&self, x: Vec<f32>, thw: Thw, buffers: &BufferPool) -> (Vec<f32>, Thw) {
        let n = 1 + thw.iter().product::<usize>();
        let xn = self.norm1.forward_rows_copy_pooled(&x, buffers);
        let (attn, q_thw) = self.attn.forward(&xn, thw, buffers);
        let skip = match &self.project {
            Some(p) => {
                buffers.give(x);
                p.forward_pooled(&xn, n, buffers)
            }
            None => x,
        };
        buffers.give(xn);
        let mut x = if self.set.stride_q.iter().product::<usize>() > 1 {
            let pooled = pool_skip(&skip, self.set.cout, thw, self.set.stride_q, buffers);
            buffers.give(skip);
            pooled
        } else {
            skip
        };
        debug_assert_eq!(pooled(thw, self.set.stride_q), q_thw);
        add_assign(&mut x, &attn);
        buffers.give(attn);
        let nq = 1 + q_thw.iter().product::<usize>();
        let xn2 = self.norm2.forward_rows_copy_pooled(&x, buffers);
        let mut h = self.mlp1.forward_pooled(&xn2, nq, buffers);
        buffers.give(xn2);
        gelu(&mut h);
        let m = self.mlp2.forward_pooled(&h, nq, buffers);
        buffers.give(h);
        add_assign(&mut x, &m);
        buffers.give(m);
        (x, q_thw)
    }
}

/// `x += y`, in parallel (token matrices of early blocks hold millions of values).
fn add_assign(x: &mut [f32], y: &[f32]) {
    use rayon::prelude::*;
    x.par_chunks_mut(1 << 14).zip(y.par_chunks(1 << 14)).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
}

/// Skip-path max pooling, kernel `s+1` where the stride is > 1 (3x3 for (1,2,2)); class token untouched.
fn pool_skip(x: &[f32], c: usize, thw: Thw, stride: [usize; 3], buffers: &BufferPool) -> Vec<f32> {
    let k = stride.map(|s| if s > 1 { s + 1 } else { s });
    let win = Window { k, stride, pad: k.map(|k| k / 2) };
    let sp_out = win.out_grid(thw).iter().product::<usize>();
    let mut out = buffers.take((1 + sp_out) * c); // every value written below
    out[..c].copy_from_slice(&x[..c]);
    token_pool::max_pool(Rows::dense(&x[c..], c), thw, win, &mut out[c..]);
    out
}
