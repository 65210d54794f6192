//! Fully connected layer on token matrices `[N, C_in] -> [N, C_out]`.

use rayon::prelude::*;

use super::buffer_pool::BufferPool;
use super::gemm::{MatRef, matmul};

#[derive(Clone, Debug)]
pub struct Linear {
    /// `[C_out, C_in]` (PyTorch layout)
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    pub cin: usize,
    pub cout: usize,
}

impl Linear {
    pub fn new(weight: Vec<f32>, bias: Option<Vec<f32>>, cout: usize, cin: usize) -> Self {
        assert_eq!(weight.len(), cout * cin, "linear weight size");
        Self { weight, bias, cin, cout }
    }

    /// Weight `[C_out, C_in]` and bias, for other backends.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }

    /// `x [n, C_in] -> [n, C_out]`.
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; n * self.cout];
        self.forward_into(x, n, &mut out);
        out
    }

    /// `x [n, C_in] -> out [n, C_out]`, overwriting every value of `out` (whatever it held).
    pub fn forward_into(&self, x: &[f32], n: usize, out: &mut [f32]) {
        assert_eq!(x.len(), n * self.cin, "linear: input size");
        assert_eq!(out.len(), n * self.cout, "linear: output size");
        // bias first, then the product accumulated onto it: the GEMM reads C anyway, a pass saved
        if let Some(b) = &self.bias {
            out.par_chunks_mut(self.cout * 64).for_each(|rows| rows.chunks_exact_mut(self.cout).for_each(|r| r.copy_from_slice(b)));
        }
        matmul(MatRef::new(x, n, self.cin), MatRef::new(&self.weight, self.cout, self.cin).t(), out, self.cout, self.bias.is_some());
    }

    /// [`forward`](Self::forward) into a buffer taken from `buffers`.
    pub fn forward_pooled(&self, x: &[f32], n: usize, buffers: &BufferPool) -> Vec<f32> {
        let mut out = buffers.take(n * self.cout);
        self.forward_into(x, n, &mut out);
        out
    }
}
