//! Feature enhancement neck (TMFI-Net DecoderConvUp, spec 4): temporal/channel reduction, top-down sums.

use super::params::Params;
use crate::config::ModelConfig;
use crate::ops::conv::Conv3d;
use crate::ops::resize::trilinear;
use crate::tensor::Tensor;
use crate::weights::WeightError;

pub struct FeatureNeck {
    reduce: Vec<Conv3d>,
    refine: Vec<Conv3d>,
}

/// Trilinear `(1, s, s)` upsampling.
pub fn up(x: &Tensor, s: usize) -> Tensor {
    let [_, t, h, w] = x.dims4();
    trilinear(x, [t, h * s, w * s])
}

fn sum(mut a: Tensor, rest: &[&Tensor]) -> Tensor {
    rest.iter().for_each(|r| a.add_assign(r));
    a
}

impl FeatureNeck {
    pub fn load(params: &Params, _cfg: &ModelConfig) -> Result<Self, WeightError> {
        let reduce = (0..4).map(|i| params.conv3d(&format!("fe.reduce.{i}"), true, [2, 1, 1], [0, 0, 0], 1)).collect::<Result<_, _>>()?;
        let refine = (0..3).map(|i| params.conv3d(&format!("fe.refine.{i}"), false, [1, 1, 1], [0, 1, 1], 1)).collect::<Result<_, _>>()?;
        Ok(Self { reduce, refine })
    }

    /// Four encoder maps -> four `[D, T/4, h_i, w_i]`.
    pub fn forward(&self, f: &[Tensor]) -> Vec<Tensor> {
        let r4 = self.reduce[3].forward(&f[3]);
        let t3 = sum(self.reduce[2].forward(&f[2]), &[&up(&r4, 2)]);
        let t2 = sum(self.reduce[1].forward(&f[1]), &[&up(&t3, 2), &up(&r4, 4)]);
        let t1 = sum(self.reduce[0].forward(&f[0]), &[&up(&t2, 2), &up(&r4, 8)]);
        vec![self.refine[0].forward(&t1), self.refine[1].forward(&t2), self.refine[2].forward(&t3), r4]
    }
}
