//! MViTv2 video encoder with the four stage taps (spec 3): patch embedding, class token, our own block
//! loop, stage LayerNorms that stay in the residual path.

use super::Trace;
use super::attention::{Thw, pooled};
use super::mvit_block::{BlockSetting, MultiscaleBlock};
use super::params::Params;
use crate::config::ModelConfig;
use crate::ops::buffer_pool::BufferPool;
use crate::ops::conv::Conv3d;
use crate::ops::norm::LayerNorm;
use crate::tensor::{Tensor, transpose, transpose_into};
use crate::weights::WeightError;

/// torchvision mvit_v2_s block settings generalised to any widths/depths.
pub fn block_settings(cfg: &ModelConfig) -> Vec<BlockSetting> {
    let mut out = vec![];
    for s in 0..4 {
        let kv = 8 >> s;
        for b in 0..cfg.stage_depths[s] {
            let first = b == 0 && s > 0;
            out.push(BlockSetting {
                cin: if first { cfg.stage_dim(s - 1) } else { cfg.stage_dim(s) },
                cout: cfg.stage_dim(s),
                heads: cfg.stage_heads[s],
                stride_q: if first { [1, 2, 2] } else { [1, 1, 1] },
                stride_kv: [1, kv, kv],
            });
        }
    }
    out
}

pub struct VideoEncoder {
    conv_proj: Conv3d,
    class_token: Vec<f32>,
    blocks: Vec<MultiscaleBlock>,
    /// After the last block of each stage: stage_norms.0..2, then the pretrained final norm.
    tap_norms: Vec<(usize, LayerNorm)>,
    /// The blocks' token matrices and temporaries, reused across blocks and clips.
    buffers: BufferPool,
}

impl VideoEncoder {
    pub fn load(params: &Params, cfg: &ModelConfig) -> Result<Self, WeightError> {
        let mut thw: Thw = [cfg.clip_len / 2, cfg.height / 4, cfg.width / 4];
        let mut blocks = vec![];
        for (i, set) in block_settings(cfg).into_iter().enumerate() {
            blocks.push(MultiscaleBlock::load(params, i, set, thw)?);
            thw = pooled(thw, set.stride_q);
        }
        let eps = cfg.stage_norm_eps as f32;
        let mut tap_norms = vec![];
        let mut last = 0;
        for s in 0..4 {
            last += cfg.stage_depths[s];
            let name = if s < 3 { format!("encoder.stage_norms.{s}") } else { "encoder.mvit.norm".to_string() };
            tap_norms.push((last - 1, params.layer_norm(&name, if s < 3 { eps } else { 1e-6 })?));
        }
        Ok(Self {
            conv_proj: params.conv3d("encoder.mvit.conv_proj", true, [2, 4, 4], [1, 3, 3], 1)?,
            class_token: params.vec("encoder.mvit.pos_encoding.class_token")?,
            blocks,
            tap_norms,
            buffers: BufferPool::default(),
        })
    }

    /// `video [3, T, H, W]` -> four maps `[C_s, T/2, H/4/2^s, W/4/2^s]`.
    pub fn forward(&self, video: &Tensor, mut trace: Option<&mut Trace>) -> Vec<Tensor> {
        let e = self.conv_proj.forward(video); // [C0, T/2, H/4, W/4]
        let [c0, t, h, w] = e.dims4();
        let sp = t * h * w;
        let mut x = self.buffers.take((1 + sp) * c0); // tokens [1 + THW, C0], class token first; all written
        x[..c0].copy_from_slice(&self.class_token);
        transpose_into(e.data(), c0, sp, &mut x[c0..]);
        if let Some(tr) = trace.as_deref_mut() {
            tr.insert("encoder/embed".into(), Tensor::from_vec(&[1, 1 + sp, c0], x.clone()));
        }
        let mut thw = [t, h, w];
        let mut feats = vec![];
        let profile = std::env::var_os("DTFSAL_PROFILE").is_some();
        for (i, block) in self.blocks.iter().enumerate() {
            let t0 = std::time::Instant::now();
            let (y, new_thw) = block.forward(x, thw, &self.buffers);
            if profile {
                eprintln!("profile:   block{i:<3} {:8.1} ms", t0.elapsed().as_secs_f64() * 1e3);
            }
            x = y;
            thw = new_thw;
            let n = 1 + thw.iter().product::<usize>();
            let c = x.len() / n;
            if let Some((_, norm)) = self.tap_norms.iter().find(|(b, _)| *b == i) {
                norm.forward_rows(&mut x);
                feats.push(tokens_to_volume(&x, c, thw));
            } else if let Some(tr) = trace.as_deref_mut() {
                tr.insert(format!("encoder/block{i}"), Tensor::from_vec(&[1, n, c], x.clone()));
            }
        }
        self.buffers.give(x);
        feats
    }
}

/// Spatial tokens `[1 + THW, C]` (class token dropped) -> `[C, T, H, W]`.
fn tokens_to_volume(x: &[f32], c: usize, thw: Thw) -> Tensor {
    let sp = thw.iter().product::<usize>();
    Tensor::from_vec(&[c, thw[0], thw[1], thw[2]], transpose(&x[c..], sp, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::WeightFile;

    /// Buffers taken from the pool hold whatever their last use left: the encoder must overwrite all
    /// of them. Spares full of NaN, of every size the blocks ask for, must not change a value.
    #[test]
    fn reused_buffers_full_of_nan_change_nothing() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tiny-av.weights.safetensors");
        let file = WeightFile::open(&path).expect("committed tiny weights");
        let cfg = file.config().clone();
        let encoder = VideoEncoder::load(&Params::new(&file), &cfg).expect("encoder");
        let n = 3 * cfg.clip_len * cfg.height * cfg.width;
        let video = Tensor::from_vec(&[3, cfg.clip_len, cfg.height, cfg.width], (0..n).map(|i| ((i as f32) * 0.37).sin()).collect());
        let fresh = encoder.forward(&video, None);
        // the sizes the last pass used, now poisoned; and the same again for a second pass
        for _ in 0..2 {
            let spares: Vec<Vec<f32>> = std::iter::from_fn(|| Some(encoder.buffers.take(0))).take(8).collect();
            for mut b in spares {
                let cap = b.capacity();
                b.resize(cap, f32::NAN);
                b.fill(f32::NAN);
                encoder.buffers.give(b);
            }
            assert!(encoder.buffers.kept_values() > 0, "the pass handed buffers back");
            let reused = encoder.forward(&video, None);
            for (a, b) in fresh.iter().zip(&reused) {
                assert_eq!(a.shape(), b.shape());
                assert!(a.data().iter().zip(b.data()).all(|(x, y)| x.to_bits() == y.to_bits()), "a stale value leaked into the features");
            }
        }
    }
}
