//! dtfsal-kernels: hand-written CUDA kernels for DTFSal and their launch wrappers, cuBLAS GEMMs,
//! through cudarc (dynamic loading: builds and runs without CUDA).
//!
//! The crate must build and run on machines without CUDA: cudarc loads `libcuda` lazily
//! (`dynamic-loading`) and *panics* when it is absent, so every entry point first probes for
//! the driver library and turns its absence into an error or `false`.
//!
//! Kernels (`cuda/*.cu`) are compiled at build time by nvcc 13.0 into an embedded fatbin
//! ([`source::FATBIN`]); without nvcc, [`Gpu::new`] compiles the same sources with NVRTC.
use cudarc::driver::{result, sys};

pub mod buffer;
pub mod device;
pub mod gemm;
pub mod graph;
pub mod ops;
pub mod reference;
pub mod source;

pub use buffer::{Buf, View, ViewMut};
pub use device::{Gpu, KernelOrigin};
pub use gemm::{Mat, Operand};
pub use graph::Graph;
pub use ops::{Act, ConvGeom, RelPosBias};

/// Why no CUDA device can be used, or a GPU call failed.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// `libcuda` (the driver library) could not be loaded.
    #[error("no CUDA driver was found (libcuda could not be loaded)")]
    NoDriver,
    /// The driver is present but a driver call failed.
    #[error("CUDA driver call {call} failed: {error}")]
    Driver {
        /// The driver API function.
        call: &'static str,
        /// cudarc's description of the result code.
        error: String,
    },
    /// The requested device index does not exist.
    #[error("CUDA device {ordinal} does not exist ({count} found)")]
    NoDevice { ordinal: usize, count: usize },
    /// NVRTC could not compile the kernels (or libnvrtc is missing).
    #[error("NVRTC: {0}")]
    Nvrtc(String),
    /// cuBLAS could not be loaded or a call failed.
    #[error("cuBLAS: {0}")]
    Cublas(String),
    /// A CUDA graph could not be captured or instantiated (see [`Gpu::capture`]).
    #[error("CUDA graph capture: {0}")]
    Capture(String),
}

/// Whether the CUDA driver library can be loaded, without panicking.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the candidate library names and drops the handles.
    unsafe { sys::is_culib_present() }
}

/// Initialises the driver (idempotent) and returns the number of CUDA devices.
pub fn device_count() -> Result<usize, KernelError> {
    if !driver_present() {
        return Err(KernelError::NoDriver);
    }
    let driver = |call: &'static str| {
        move |e: result::DriverError| KernelError::Driver {
            call,
            error: format!("{e:?}"),
        }
    };
    // cudarc may still panic if the library lacks a symbol it expects; treat that as unusable.
    let probe = std::panic::catch_unwind(|| -> Result<usize, KernelError> {
        result::init().map_err(driver("cuInit"))?;
        let n = result::device::get_count().map_err(driver("cuDeviceGetCount"))?;
        Ok(usize::try_from(n).unwrap_or(0))
    });
    probe.unwrap_or(Err(KernelError::NoDriver))
}

/// True when a CUDA driver is present, initialises, and reports at least one device.
pub fn cuda_available() -> bool {
    matches!(device_count(), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without a GPU the probe must answer, not panic; with one it must agree.
    #[test]
    fn probe_does_not_panic_and_is_consistent() {
        let available = cuda_available();
        match device_count() {
            Ok(n) => assert_eq!(available, n > 0),
            Err(e) => {
                assert!(!available);
                if !driver_present() {
                    assert!(e.to_string().contains("no CUDA driver was found"), "{e}");
                }
            }
        }
    }

    /// Without a GPU, opening a device is an error, not a panic.
    #[test]
    fn opening_a_device_without_gpu_is_an_error() {
        if cuda_available() {
            eprintln!("skipped: a GPU is present");
            return;
        }
        assert!(Gpu::new(0).is_err());
    }
}
