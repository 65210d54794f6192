//! The four TMFI-Net decoders (spec 9): temporal convs 8 -> 4 -> 2 -> 1, upsampling to the input size.

use super::neck::up;
use super::params::Params;
use crate::ops::act::{relu, sigmoid};
use crate::ops::conv::Conv3d;
use crate::tensor::Tensor;
use crate::weights::WeightError;

enum Step {
    Conv(Conv3d),
    Relu,
    Up(usize),
    Sigmoid,
}

pub struct Decoder {
    steps: Vec<Step>,
}

impl Decoder {
    /// Level 0 (stride 4) .. 3 (stride 32); layer indices follow the PyTorch `nn.Sequential`.
    pub fn load(params: &Params, level: usize) -> Result<Self, WeightError> {
        let tc = |idx: usize| params.conv3d(&format!("decoders.{level}.{idx}"), false, [2, 1, 1], [0, 1, 1], 1);
        let mut steps = vec![Step::Conv(tc(0)?), Step::Relu, Step::Up(2), Step::Conv(tc(3)?), Step::Relu, Step::Up(2), Step::Conv(tc(6)?), Step::Relu];
        let last = if level == 0 { 8 } else { 9 };
        if level >= 1 {
            steps.push(Step::Up(2));
        }
        steps.push(Step::Conv(params.conv3d(&format!("decoders.{level}.{last}"), false, [1, 1, 1], [0, 1, 1], 1)?));
        match level {
            2 => steps.push(Step::Up(2)),
            3 => steps.push(Step::Up(4)),
            _ => {}
        }
        steps.push(Step::Sigmoid);
        Ok(Self { steps })
    }

    /// `[D, 8, h, w]` -> `[1, 1, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut x = x.clone();
        for step in &self.steps {
            match step {
                Step::Conv(c) => x = c.forward(&x),
                Step::Relu => relu(x.data_mut()),
                Step::Up(s) => x = up(&x, *s),
                Step::Sigmoid => sigmoid(x.data_mut()),
            }
        }
        x
    }
}
