//! dtfsal-engine: the DTFSal inference engine.
//!
//! Knows nothing of GStreamer. Modules:
//! - [`weights`]: the project's weight file (safetensors + model config in its metadata).
pub mod weights;
