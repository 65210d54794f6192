//! Element-wise activations and row softmax.

use rayon::prelude::*;

const PAR_CHUNK: usize = 1 << 14;

pub fn relu(x: &mut [f32]) {
    x.par_chunks_mut(PAR_CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
}

pub fn sigmoid_scalar(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

pub fn sigmoid(x: &mut [f32]) {
    x.par_chunks_mut(PAR_CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = sigmoid_scalar(*v)));
}

/// Exact GELU, `x/2 * (1 + erf(x/sqrt 2))` (PyTorch's default, not the tanh form).
pub fn gelu(x: &mut [f32]) {
    x.par_chunks_mut(PAR_CHUNK).for_each(|c| {
        c.iter_mut().for_each(|v| *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2)))
    });
}

/// In-place softmax of one row. The normaliser is summed in f64: rows run to thousands of keys and a
/// plain f32 running sum drifts well past PyTorch's vectorised one.
pub fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f64;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Mean of a slice, accumulated in f64.
pub fn mean(x: &[f32]) -> f32 {
    (x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64) as f32
}

/// In-place softmax of each row of a `[rows, cols]` matrix.
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    x.par_chunks_mut(cols).for_each(softmax_row);
}
