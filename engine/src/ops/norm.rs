//! Layer normalisation over the last axis of token matrices, or over channels of a `[C, S]` volume.

use rayon::prelude::*;

use super::buffer_pool::BufferPool;
use super::simd;

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub eps: f32,
}

impl LayerNorm {
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, eps: f32) -> Self {
        assert_eq!(weight.len(), bias.len());
        Self { weight, bias, eps }
    }

    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    /// In place over rows of `x [n, C]` (two-pass mean/variance in f64, biased, as PyTorch).
    pub fn forward_rows(&self, x: &mut [f32]) {
        let c = self.dim();
        // small rows: batch them so a rayon task is worth its overhead
        let rows_per_task = (4096 / c.max(1)).max(1);
        x.par_chunks_mut(c * rows_per_task)
            .for_each(|rows| rows.chunks_exact_mut(c).for_each(|row| simd::layer_norm_row(row, &self.weight, &self.bias, self.eps)));
    }

    /// Rows of `x [n, C]` into a new buffer.
    pub fn forward_rows_copy(&self, x: &[f32]) -> Vec<f32> {
        let mut y = x.to_vec();
        self.forward_rows(&mut y);
        y
    }

    /// [`forward_rows_copy`](Self::forward_rows_copy) into a buffer taken from `buffers`.
    pub fn forward_rows_copy_pooled(&self, x: &[f32], buffers: &BufferPool) -> Vec<f32> {
        let mut y = buffers.take(x.len());
        y.copy_from_slice(x);
        self.forward_rows(&mut y);
        y
    }

    /// In place over the channel axis of a channel-major volume `x [C, S]` (each of the S positions).
    pub fn forward_channels(&self, x: &mut [f32]) {
        let c = self.dim();
        let s = x.len() / c;
        const BLOCK: usize = 256;
        let nblocks = s.div_ceil(BLOCK);
        // positions are independent: process blocks of positions, gathering the strided channel column
        let results: Vec<(usize, Vec<f32>)> = (0..nblocks)
            .into_par_iter()
            .map(|bi| {
                let p0 = bi * BLOCK;
                let nb = BLOCK.min(s - p0);
                let mut mean = vec![0.0f64; nb];
                let mut var = vec![0.0f64; nb];
                for ch in 0..c {
                    let row = &x[ch * s + p0..ch * s + p0 + nb];
                    mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
                }
                mean.iter_mut().for_each(|m| *m /= c as f64);
                for ch in 0..c {
                    let row = &x[ch * s + p0..ch * s + p0 + nb];
                    var.iter_mut().zip(row).zip(&mean).for_each(|((q, &v), m)| *q += (v as f64 - m).powi(2));
                }
                let mut out = vec![0.0f32; c * nb];
                for ch in 0..c {
                    let row = &x[ch * s + p0..ch * s + p0 + nb];
                    for j in 0..nb {
                        let inv = 1.0 / ((var[j] / c as f64) as f32 + self.eps).sqrt();
                        out[ch * nb + j] = (row[j] - mean[j] as f32) * inv * self.weight[ch] + self.bias[ch];
                    }
                }
                (p0, out)
            })
            .collect();
        for (p0, out) in results {
            let nb = out.len() / c;
            for ch in 0..c {
                x[ch * s + p0..ch * s + p0 + nb].copy_from_slice(&out[ch * nb..(ch + 1) * nb]);
            }
        }
    }
}
