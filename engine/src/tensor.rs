//! A dense, contiguous, row-major f32 tensor: all the engine needs.

use std::fmt;

#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(shape: &[usize]) -> Self {
        Self { shape: shape.to_vec(), data: vec![0.0; shape.iter().product()] }
    }

    /// Wraps `data`; panics only on a programming error (length != product of shape).
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Self {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor data does not fit shape {shape:?}");
        Self { shape: shape.to_vec(), data }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Same data, new shape (same element count).
    pub fn reshape(mut self, shape: &[usize]) -> Self {
        assert_eq!(shape.iter().product::<usize>(), self.data.len(), "cannot reshape {:?} to {shape:?}", self.shape);
        self.shape = shape.to_vec();
        self
    }

    /// `[C, T, H, W]` dims of a 4-d tensor.
    pub fn dims4(&self) -> [usize; 4] {
        match self.shape[..] {
            [c, t, h, w] => [c, t, h, w],
            _ => panic!("expected a 4-d tensor, got {:?}", self.shape),
        }
    }

    /// Element-wise `self += other`.
    pub fn add_assign(&mut self, other: &Tensor) {
        assert_eq!(self.shape, other.shape, "add: shapes differ");
        self.data.iter_mut().zip(&other.data).for_each(|(a, b)| *a += b);
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}
