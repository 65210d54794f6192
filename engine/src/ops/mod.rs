//! CPU reference ops, f32, batch 1: activations are `[C, T, H, W]` volumes (a 2-d op sees `[C, S, H, W]`
//! with S stacked slices) or `[N, C]` token matrices.
pub mod act;
pub mod buffer_pool;
pub mod conv;
pub mod deform;
pub mod gemm;
pub mod linear;
pub mod norm;
pub mod pool;
pub mod resize;
pub mod simd;
pub mod token_pool;
