//! Reading module parameters out of a weight file by name.

use crate::ops::conv::Conv3d;
use crate::ops::linear::Linear;
use crate::ops::norm::LayerNorm;
use crate::tensor::Tensor;
use crate::weights::{WeightError, WeightFile};

/// Named access to a checked weight file's tensors, as f32.
pub struct Params<'a> {
    file: &'a WeightFile,
}

impl<'a> Params<'a> {
    pub fn new(file: &'a WeightFile) -> Self {
        Self { file }
    }

    pub fn tensor(&self, name: &str) -> Result<Tensor, WeightError> {
        let (shape, data) = self.file.tensor_f32(name)?;
        Ok(Tensor::from_vec(&shape, data))
    }

    pub fn vec(&self, name: &str) -> Result<Vec<f32>, WeightError> {
        Ok(self.file.tensor_f32(name)?.1)
    }

    /// `Linear` from `{p}.weight` `[out, in]` and, when `bias`, `{p}.bias`.
    pub fn linear(&self, p: &str, bias: bool) -> Result<Linear, WeightError> {
        let w = self.tensor(&format!("{p}.weight"))?;
        let (cout, cin) = (w.shape()[0], w.shape()[1]);
        let b = if bias { Some(self.vec(&format!("{p}.bias"))?) } else { None };
        Ok(Linear::new(w.into_vec(), b, cout, cin))
    }

    pub fn layer_norm(&self, p: &str, eps: f32) -> Result<LayerNorm, WeightError> {
        Ok(LayerNorm::new(self.vec(&format!("{p}.weight"))?, self.vec(&format!("{p}.bias"))?, eps))
    }

    /// `Conv3d` from `{p}.weight` `[out, in/groups, kt, kh, kw]` (and `{p}.bias`).
    pub fn conv3d(&self, p: &str, bias: bool, stride: [usize; 3], pad: [usize; 3], groups: usize) -> Result<Conv3d, WeightError> {
        let w = self.tensor(&format!("{p}.weight"))?;
        let b = if bias { Some(self.vec(&format!("{p}.bias"))?) } else { None };
        Ok(Conv3d::new(w, b, stride, pad, groups))
    }

    /// A 2-d conv `{p}.weight` `[out, in, k, k]` run over every slice of `[C, S, H, W]`.
    pub fn conv2d(&self, p: &str, bias: bool, pad: usize) -> Result<Conv3d, WeightError> {
        let w = self.tensor(&format!("{p}.weight"))?;
        let b = if bias { Some(self.vec(&format!("{p}.bias"))?) } else { None };
        Ok(Conv3d::new_2d(w, b, 1, pad))
    }

    /// Eval-mode BatchNorm statistics `{p}.{weight,bias,running_mean,running_var}`.
    pub fn batch_norm(&self, p: &str) -> Result<BatchNormStats, WeightError> {
        Ok(BatchNormStats {
            gamma: self.vec(&format!("{p}.weight"))?,
            beta: self.vec(&format!("{p}.bias"))?,
            mean: self.vec(&format!("{p}.running_mean"))?,
            var: self.vec(&format!("{p}.running_var"))?,
        })
    }
}

/// BatchNorm statistics, folded into the preceding conv at load time.
pub struct BatchNormStats {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

pub const BN_EPS: f32 = 1e-5;

impl BatchNormStats {
    pub fn fold_into(&self, conv: &mut Conv3d) {
        conv.fold_batch_norm(&self.gamma, &self.beta, &self.mean, &self.var, BN_EPS);
    }
}
