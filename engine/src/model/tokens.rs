//! Adaptive token computation shared by LTEB and DLTFB (spec 5, steps 1-5).

use super::params::Params;
use crate::ops::act::{mean, sigmoid, softmax_row};
use crate::ops::conv::Conv3d;
use crate::ops::linear::Linear;
use crate::ops::resize::trilinear;
use crate::tensor::Tensor;
use crate::weights::WeightError;

pub struct AdaptiveTokens {
    /// `[N, D, th, tw]`
    tokens: Tensor,
    gate: Conv3d,
    linear: Linear,
    proj: Conv3d,
}

impl AdaptiveTokens {
    /// `p` is `enhance.{i}.prompt`.
    pub fn load(params: &Params, p: &str) -> Result<Self, WeightError> {
        Ok(Self {
            tokens: params.tensor(&format!("{p}.tokens"))?,
            gate: params.conv3d(&format!("{p}.gate"), true, [1, 1, 1], [0, 1, 1], 1)?,
            linear: params.linear(&format!("{p}.linear"), true)?,
            proj: params.conv3d(&format!("{p}.proj"), false, [1, 1, 1], [0, 1, 1], 1)?,
        })
    }

    /// `f [D, T, h, w]` -> `P'' [D, T, h, w]`.
    pub fn forward(&self, f: &Tensor) -> Tensor {
        let [d, t, h, w] = f.dims4();
        let mut g = self.gate.forward(f);
        sigmoid(g.data_mut());
        // E [T, D]: mean over (h, w) of each temporal slice
        let mut e = vec![0.0f32; t * d];
        for c in 0..d {
            for s in 0..t {
                let plane = &g.data()[(c * t + s) * h * w..(c * t + s + 1) * h * w];
                e[s * d + c] = mean(plane);
            }
        }
        let mut wts = self.linear.forward(&e, t); // [T, N]
        let n = self.linear.cout;
        wts.chunks_mut(n).for_each(softmax_row);
        // K[:, s] = sum_i w[s, i] * P_i   -> [D, T, th, tw]
        let [_, _, th, tw] = self.tokens.dims4();
        let plane = th * tw;
        let mut k = Tensor::zeros(&[d, t, th, tw]);
        for c in 0..d {
            for s in 0..t {
                let dst = &mut k.data_mut()[(c * t + s) * plane..(c * t + s + 1) * plane];
                for i in 0..n {
                    let wv = wts[s * n + i];
                    let src = &self.tokens.data()[(i * d + c) * plane..(i * d + c + 1) * plane];
                    dst.iter_mut().zip(src).for_each(|(a, b)| *a += wv * b);
                }
            }
        }
        self.proj.forward(&trilinear(&k, [t, h, w]))
    }
}

