//! Frozen VGGish conv trunk (torchvggish `features`, spec 7): six 3x3 convs + ReLU, four 2x2 max pools.

use super::params::Params;
use crate::ops::act::relu;
use crate::ops::conv::Conv3d;
use crate::ops::pool::max_pool3d;
use crate::tensor::Tensor;
use crate::weights::WeightError;

/// torchvggish layer indices of the convs; a max pool follows those in `POOL_AFTER`.
const CONV_INDICES: [usize; 6] = [0, 3, 6, 8, 11, 13];
const POOL_AFTER: [bool; 6] = [true, true, false, true, false, true];

pub struct VggishTrunk {
    convs: Vec<Conv3d>,
}

impl VggishTrunk {
    pub fn load(params: &Params) -> Result<Self, WeightError> {
        let convs = CONV_INDICES.iter().map(|i| params.conv2d(&format!("audio.vggish.features.{i}"), true, 1)).collect::<Result<_, _>>()?;
        Ok(Self { convs })
    }

    /// `audio [S, 1, Ha, Wa]` (= `[1, S, Ha, Wa]` in memory) -> `A0 [C, S, Ha/16, Wa/16]`.
    pub fn forward(&self, audio: &Tensor) -> Tensor {
        let s = audio.shape();
        let mut x = audio.clone().reshape(&[1, s[0], s[2], s[3]]);
        for (conv, pool) in self.convs.iter().zip(POOL_AFTER) {
            x = conv.forward(&x);
            relu(x.data_mut());
            if pool {
                x = max_pool3d(&x, [1, 2, 2], [1, 2, 2], [0, 0, 0]);
            }
        }
        x
    }
}
