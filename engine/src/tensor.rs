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

/// `dst [cols, rows] = src [rows, cols]ᵀ`, in cache-sized tiles, parallel over output row bands.
pub fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    use rayon::prelude::*;
    const TILE: usize = 32;
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols, "transpose: buffer too small");
    dst[..rows * cols].par_chunks_mut(TILE * rows).enumerate().for_each(|(band, out)| {
        let c0 = band * TILE;
        let nc = out.len() / rows;
        for r0 in (0..rows).step_by(TILE) {
            let nr = TILE.min(rows - r0);
            for c in 0..nc {
                let o = &mut out[c * rows + r0..c * rows + r0 + nr];
                for (i, v) in o.iter_mut().enumerate() {
                    *v = src[(r0 + i) * cols + c0 + c];
                }
            }
        }
    });
}

/// `src [rows, cols]ᵀ` as a new `[cols, rows]` buffer.
pub fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * cols];
    transpose_into(src, rows, cols, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose_round_trips_odd_sizes() {
        let (r, c) = (67, 45);
        let x: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let t = super::transpose(&x, r, c);
        assert_eq!(t[3 * r + 5], x[5 * c + 3]);
        assert_eq!(super::transpose(&t, c, r), x);
    }
}
