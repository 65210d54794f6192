//! LTEB, levels 1-3 (spec 5): `F^W = F * P'' + F`.

use super::params::Params;
use super::tokens::AdaptiveTokens;
use crate::tensor::Tensor;
use crate::weights::WeightError;

pub struct Lteb {
    prompt: AdaptiveTokens,
}

impl Lteb {
    pub fn load(params: &Params, i: usize) -> Result<Self, WeightError> {
        Ok(Self { prompt: AdaptiveTokens::load(params, &format!("enhance.{i}.prompt"))? })
    }

    pub fn forward(&self, f: &Tensor) -> Tensor {
        let mut p = self.prompt.forward(f);
        p.data_mut().iter_mut().zip(f.data()).for_each(|(a, x)| *a = x * *a + x);
        p
    }
}
