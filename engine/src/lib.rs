//! dtfsal-engine: the DTFSal inference engine.
//!
//! Knows nothing of GStreamer. Modules:
//! - [`audio`]: the streaming audio front end (16 kHz samples → log-mel slices `[9,1,112,192]`).
//! - [`default_model`]: the embedded demo model (tiny AV, trained on synthetic scenes; `models/`).
//! - [`config`]: the model configuration (every size of the network).
//! - [`metrics`]: saliency metrics (CC, NSS, AUC-Judd, SIM, KLD, shuffled AUC), MIT benchmark conventions.
//! - [`model`]: the DTFSal forward pass (`Model::load`, `predict`), one file per module.
//! - [`ops`]: CPU reference ops (conv, deformable conv, GEMM, norms, resampling).
//! - [`tensor`]: the dense f32 tensor the ops work on.
//! - [`weights`]: the project's weight file (safetensors + model config in its metadata).
pub mod audio;
pub mod config;
pub mod default_model;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod tensor;
pub mod tensor_file;
pub mod triton_repo;
pub mod weights;

/// The CUDA kernels crate the `cuda` backend runs on (device probe: `kernels::cuda_available()`).
pub use dtfsal_kernels as kernels;
