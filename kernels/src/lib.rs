//! dtfsal-kernels: hand-written CUDA kernels (placeholder).
