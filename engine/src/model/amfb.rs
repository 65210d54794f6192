//! AMFB, one per level (spec 8): local (1,3,3) and global (1,5,5) conv+BN+ReLU streams, an audio-driven
//! deformable stream, and a sigmoid tri-stream score that weights their sum. BatchNorms are folded.

use super::params::Params;
use crate::config::{AmfbAudioMode, ModelConfig};
use crate::ops::act::{mean, relu, sigmoid_scalar};
use crate::ops::conv::Conv3d;
use crate::ops::deform::DeformConv2d;
use crate::ops::linear::Linear;
use crate::ops::resize::trilinear;
use crate::tensor::Tensor;
use crate::weights::WeightError;

pub struct Amfb {
    local: Conv3d,
    glob: Conv3d,
    audio_proj: Conv3d,
    offset: Conv3d,
    deform: DeformConv2d,
    score: Linear,
    concat: bool,
}

impl Amfb {
    pub fn load(params: &Params, cfg: &ModelConfig, i: usize) -> Result<Self, WeightError> {
        let p = format!("amfb.{i}");
        let mut local = params.conv3d(&format!("{p}.local.0"), true, [1, 1, 1], [0, 1, 1], 1)?;
        params.batch_norm(&format!("{p}.local.1"))?.fold_into(&mut local);
        let mut glob = params.conv3d(&format!("{p}.glob.0"), true, [1, 1, 1], [0, 2, 2], 1)?;
        params.batch_norm(&format!("{p}.glob.1"))?.fold_into(&mut glob);
        let mut deform = DeformConv2d::new(params.tensor(&format!("{p}.deform.weight"))?, params.vec(&format!("{p}.deform.bias"))?);
        let bn = params.batch_norm(&format!("{p}.adapt_post.0"))?;
        deform.fold_batch_norm(&bn.gamma, &bn.beta, &bn.mean, &bn.var, super::params::BN_EPS);
        Ok(Self {
            local,
            glob,
            audio_proj: params.conv3d(&format!("{p}.audio_proj"), true, [1, 1, 1], [0, 0, 0], 1)?,
            offset: params.conv2d(&format!("{p}.deform.offset"), true, 1)?,
            deform,
            score: params.linear(&format!("{p}.score"), true)?,
            concat: cfg.amfb_audio_mode == AmfbAudioMode::Concat,
        })
    }

    /// `f [D, T, h, w]`, `a [C_a, S, h_a, w_a]` -> `[D, T, h, w]`.
    pub fn forward(&self, f: &Tensor, a: &Tensor) -> Tensor {
        let [d, t, h, w] = f.dims4();
        let a_i = trilinear(&self.audio_proj.forward(a), [t, h, w]);
        let x = if self.concat {
            let mut v = f.data().to_vec();
            v.extend_from_slice(a_i.data());
            Tensor::from_vec(&[2 * d, t, h, w], v)
        } else {
            let mut x = f.clone();
            x.add_assign(&a_i);
            x
        };
        let offsets = self.offset.forward(&x); // [18, T, h, w]
        let mut fa = self.deform.forward(&x, &offsets);
        let mut fl = self.local.forward(f);
        let mut fg = self.glob.forward(f);
        for s in [&mut fl, &mut fg, &mut fa] {
            relu(s.data_mut());
        }
        // tri-stream score from global average pools
        let plane = t * h * w;
        let mut pooled = Vec::with_capacity(3 * d);
        for s in [&fl, &fg, &fa] {
            pooled.extend(s.data().chunks(plane).map(mean));
        }
        let wts: Vec<f32> = self.score.forward(&pooled, 1).into_iter().map(sigmoid_scalar).collect();
        let mut out = fl;
        for ((o, g), ad) in out.data_mut().iter_mut().zip(fg.data()).zip(fa.data()) {
            *o = wts[0] * *o + wts[1] * g + wts[2] * ad;
        }
        out
    }
}
