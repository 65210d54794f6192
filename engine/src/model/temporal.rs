//! Audio temporal enhancement (DiffSal AudioAttnNet, spec 7): patch embedding + per-slice position,
//! one pre-norm transformer layer over all (slice, h, w) tokens, final LayerNorm.

use rayon::prelude::*;

use super::params::Params;
use crate::config::ModelConfig;
use crate::ops::act::{gelu, softmax_rows};
use crate::ops::gemm::{MatRef, matmul};
use crate::ops::linear::Linear;
use crate::ops::norm::LayerNorm;
use crate::tensor::{Tensor, transpose};
use crate::weights::WeightError;

pub struct TemporalEnhancement {
    embed: Option<(LayerNorm, Linear, LayerNorm, Vec<f32>)>,
    attn_norm: LayerNorm,
    to_qkv: Linear,
    to_out: Linear,
    ff_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    norm: LayerNorm,
    heads: usize,
    dim_head: usize,
}

impl TemporalEnhancement {
    pub fn load(params: &Params, cfg: &ModelConfig) -> Result<Self, WeightError> {
        let p = "audio.te";
        let embed = if cfg.te_use_patch_embed {
            Some((
                params.layer_norm(&format!("{p}.embed_norm1"), 1e-5)?,
                params.linear(&format!("{p}.embed_fc"), true)?,
                params.layer_norm(&format!("{p}.embed_norm2"), 1e-5)?,
                params.vec(&format!("{p}.pos"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            embed,
            attn_norm: params.layer_norm(&format!("{p}.layers.0.0.norm"), 1e-5)?,
            to_qkv: params.linear(&format!("{p}.layers.0.0.to_qkv"), false)?,
            to_out: params.linear(&format!("{p}.layers.0.0.to_out"), true)?,
            ff_norm: params.layer_norm(&format!("{p}.layers.0.1.norm"), 1e-5)?,
            fc1: params.linear(&format!("{p}.layers.0.1.fc1"), true)?,
            fc2: params.linear(&format!("{p}.layers.0.1.fc2"), true)?,
            norm: params.layer_norm(&format!("{p}.norm"), 1e-5)?,
            heads: cfg.te_heads,
            dim_head: cfg.te_dim_head,
        })
    }

    /// `a [C, S, h, w]` -> `[C, S, h, w]`.
    pub fn forward(&self, a: &Tensor) -> Tensor {
        let [c, s, h, w] = a.dims4();
        let n = s * h * w;
        let mut x = transpose(a.data(), c, n); // tokens [n, C]
        if let Some((n1, fc, n2, pos)) = &self.embed {
            n1.forward_rows(&mut x);
            x = fc.forward(&x, n);
            n2.forward_rows(&mut x);
            x.par_chunks_mut(c).enumerate().for_each(|(i, row)| {
                let p = pos[i / (h * w)];
                row.iter_mut().for_each(|v| *v += p);
            });
        }
        // attention
        let (hd, dh) = (self.heads, self.dim_head);
        let inner = hd * dh;
        let qkv = self.to_qkv.forward(&self.attn_norm.forward_rows_copy(&x), n); // [n, 3*inner]
        let scale = (dh as f32).powf(-0.5);
        let mut merged = vec![0.0f32; n * inner];
        for head in 0..hd {
            let col = |part: usize| -> Vec<f32> {
                let off = part * inner + head * dh;
                (0..n).flat_map(|t| qkv[t * 3 * inner + off..][..dh].to_vec()).collect()
            };
            let q: Vec<f32> = col(0).iter().map(|v| v * scale).collect();
            let (k, v) = (col(1), col(2));
            let mut s = vec![0.0f32; n * n];
            matmul(MatRef::new(&q, n, dh), MatRef::new(&k, n, dh).t(), &mut s, n, false);
            softmax_rows(&mut s, n);
            let mut o = vec![0.0f32; n * dh];
            matmul(MatRef::new(&s, n, n), MatRef::new(&v, n, dh), &mut o, dh, false);
            for t in 0..n {
                merged[t * inner + head * dh..][..dh].copy_from_slice(&o[t * dh..(t + 1) * dh]);
            }
        }
        let att = self.to_out.forward(&merged, n);
        x.iter_mut().zip(&att).for_each(|(a, b)| *a += b);
        // feed-forward
        let mut f = self.fc1.forward(&self.ff_norm.forward_rows_copy(&x), n);
        gelu(&mut f);
        let f = self.fc2.forward(&f, n);
        x.iter_mut().zip(&f).for_each(|(a, b)| *a += b);
        self.norm.forward_rows(&mut x);
        Tensor::from_vec(&[c, s, h, w], transpose(&x, n, c))
    }
}
