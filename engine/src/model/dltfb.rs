//! DLTFB, level 4 (spec 6): token branch plus UNeXt-style axial shifts (W, then H) around a pointwise /
//! depthwise conv pair. `F^W = F * P'' + F + fc2(LN(shift_H(dw(GELU(fc1(shift_W(F)))))))`.

use super::params::Params;
use super::tokens::AdaptiveTokens;
use crate::ops::act::gelu;
use crate::ops::conv::Conv3d;
use crate::ops::norm::LayerNorm;
use crate::tensor::Tensor;
use crate::weights::WeightError;

const SHIFT_GROUPS: usize = 5;

#[derive(Clone, Copy)]
pub enum Axis {
    H,
    W,
}

/// Channel chunks as `torch.chunk(x, 5, dim=1)`; chunk g moves by `g - 2` along `axis`, zero fill.
pub fn axial_shift(x: &Tensor, axis: Axis) -> Tensor {
    let [c, t, h, w] = x.dims4();
    let chunk = c.div_ceil(SHIFT_GROUPS);
    let mut out = Tensor::zeros(&[c, t, h, w]);
    for ch in 0..c {
        let s = (ch / chunk) as isize - (SHIFT_GROUPS / 2) as isize;
        for z in 0..t {
            let base = (ch * t + z) * h * w;
            for y in 0..h {
                for xx in 0..w {
                    let (sy, sx) = match axis {
                        Axis::H => (y as isize - s, xx as isize),
                        Axis::W => (y as isize, xx as isize - s),
                    };
                    if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                        out.data_mut()[base + y * w + xx] = x.data()[base + sy as usize * w + sx as usize];
                    }
                }
            }
        }
    }
    out
}

pub struct Dltfb {
    prompt: AdaptiveTokens,
    fc1: Conv3d,
    dw: Conv3d,
    norm: LayerNorm,
    fc2: Conv3d,
}

impl Dltfb {
    pub fn load(params: &Params, d: usize) -> Result<Self, WeightError> {
        let p = "enhance.3";
        Ok(Self {
            prompt: AdaptiveTokens::load(params, &format!("{p}.prompt"))?,
            fc1: params.conv3d(&format!("{p}.fc1"), true, [1, 1, 1], [0, 0, 0], 1)?,
            dw: params.conv3d(&format!("{p}.dw"), true, [1, 1, 1], [1, 1, 1], d)?,
            norm: params.layer_norm(&format!("{p}.norm"), 1e-5)?,
            fc2: params.conv3d(&format!("{p}.fc2"), true, [1, 1, 1], [0, 0, 0], 1)?,
        })
    }

    /// `f [D, T, h, w]` -> `[D, T, h, w]`.
    pub fn forward(&self, f: &Tensor) -> Tensor {
        let mut x = self.fc1.forward(&axial_shift(f, Axis::W));
        gelu(x.data_mut());
        let mut x = axial_shift(&self.dw.forward(&x), Axis::H);
        self.norm.forward_channels(x.data_mut());
        let sh = self.fc2.forward(&x);
        let mut out = self.prompt.forward(f);
        for ((o, fv), s) in out.data_mut().iter_mut().zip(f.data()).zip(sh.data()) {
            *o = fv * *o + fv + s;
        }
        out
    }
}
