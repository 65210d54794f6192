//! Element-wise activations and row softmax.

use rayon::prelude::*;

use super::simd;

const PAR_CHUNK: usize = 1 << 14;

pub fn relu(x: &mut [f32]) {
    x.par_chunks_mut(PAR_CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
}

pub fn sigmoid_scalar(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

pub fn sigmoid(x: &mut [f32]) {
    x.par_chunks_mut(PAR_CHUNK).for_each(simd::sigmoid_inplace);
}

/// Exact GELU, `x/2 * (1 + erf(x/sqrt 2))` (PyTorch's default, not the tanh form), vectorised.
pub fn gelu(x: &mut [f32]) {
    x.par_chunks_mut(PAR_CHUNK).for_each(simd::gelu_inplace);
}

/// In-place softmax of one row (vectorised; partial sums per lane, total in f64).
pub fn softmax_row(row: &mut [f32]) {
    simd::softmax_inplace(row);
}

/// Mean of a slice, accumulated in f64.
pub fn mean(x: &[f32]) -> f32 {
    (x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64) as f32
}

/// In-place softmax of each row of a `[rows, cols]` matrix.
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    x.par_chunks_mut(cols).for_each(softmax_row);
}
