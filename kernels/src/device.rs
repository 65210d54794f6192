//! One CUDA device: context, the stream every kernel runs on, the loaded kernel module (embedded fatbin,
//! else NVRTC) and the cuBLAS handle.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DeviceRepr, LaunchConfig, ValidAsZeroBits, sys};
use cudarc::nvrtc::{CompileOptions, Ptx};

use crate::KernelError;
use crate::buffer::Buf;
use crate::source;

/// How the kernels were loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelOrigin {
    /// The fatbin nvcc built at compile time.
    Fatbin,
    /// Compiled by NVRTC at start-up (no fatbin, or it did not load), for this architecture.
    Nvrtc(String),
}

pub struct Gpu {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    funcs: HashMap<String, CudaFunction>,
    pub(crate) blas: CudaBlas,
    origin: KernelOrigin,
    name: String,
    cc: (i32, i32),
    /// Whether `stream` is one of our own (graphs can be captured on it), not the legacy default stream.
    pub(crate) capturable: bool,
}

pub(crate) fn driver(call: &'static str) -> impl Fn(cudarc::driver::DriverError) -> KernelError {
    move |e| KernelError::Driver { call, error: format!("{e:?}") }
}

impl Gpu {
    /// Opens device `ordinal` with every launch on the legacy default stream: errors (never panics)
    /// when there is no driver, no such device, or the kernels cannot be loaded.
    pub fn new(ordinal: usize) -> Result<Self, KernelError> {
        Self::open(ordinal, false)
    }

    /// As [`Gpu::new`], with every launch on a stream of its own (non-blocking), on which CUDA graphs
    /// can be captured ([`Gpu::capture`]); the legacy default stream cannot be.
    pub fn new_capturable(ordinal: usize) -> Result<Self, KernelError> {
        Self::open(ordinal, true)
    }

    fn open(ordinal: usize, capturable: bool) -> Result<Self, KernelError> {
        let count = crate::device_count()?;
        if ordinal >= count {
            return Err(KernelError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(driver("cuCtxCreate"))?;
        // SAFETY: every buffer is used on the one stream below, so stream order is all the ordering needed.
        unsafe { ctx.disable_event_tracking() };
        let stream = if capturable { ctx.new_stream().map_err(driver("cuStreamCreate"))? } else { ctx.default_stream() };
        keep_freed_memory_cached(&ctx);
        let cc = ctx.compute_capability().map_err(driver("cuDeviceGetAttribute"))?;
        let name = ctx.name().unwrap_or_else(|_| "unknown".into());
        let (module, origin) = load_module(&ctx, cc)?;
        let mut funcs = HashMap::new();
        for k in source::kernel_names() {
            let f = module.load_function(k).map_err(driver("cuModuleGetFunction"))?;
            funcs.insert(k.to_string(), f);
        }
        // cudarc panics when libcublas cannot be loaded: report it as an error instead
        let blas = std::panic::catch_unwind(|| CudaBlas::new(stream.clone()))
            .map_err(|_| KernelError::Cublas("libcublas could not be loaded (set LD_LIBRARY_PATH)".into()))?
            .map_err(|e| KernelError::Cublas(format!("{e:?}")))?;
        Ok(Self { ctx, stream, _module: module, funcs, blas, origin, name, cc, capturable })
    }

    /// A second handle on the same device and context that launches on a new stream of its own (with its
    /// own cuBLAS handle; graphs can be captured on it), sharing the loaded kernels. Buffers of either
    /// can be used by both; ordering between the two streams is the caller's (weights written at load and
    /// synchronised need none).
    pub fn fork(&self) -> Result<Self, KernelError> {
        let stream = self.ctx.new_stream().map_err(driver("cuStreamCreate"))?;
        let blas = CudaBlas::new(stream.clone()).map_err(|e| KernelError::Cublas(format!("{e:?}")))?;
        Ok(Self {
            ctx: self.ctx.clone(),
            stream,
            _module: self._module.clone(),
            funcs: self.funcs.clone(),
            blas,
            origin: self.origin.clone(),
            name: self.name.clone(),
            cc: self.cc,
            capturable: true,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn compute_capability(&self) -> (i32, i32) {
        self.cc
    }

    pub fn kernel_origin(&self) -> &KernelOrigin {
        &self.origin
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// A zeroed buffer of `n` elements.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<Buf<T>, KernelError> {
        Ok(Buf::new(self.stream.alloc_zeros::<T>(n.max(1)).map_err(driver("cuMemAllocAsync"))?))
    }

    /// A buffer of `n` elements with arbitrary contents, for outputs a kernel writes in full (no memset).
    /// Every bit pattern is a valid `T` (f32, f16 bits, integers), so reading one early gives garbage
    /// values, never undefined behaviour on the host.
    pub fn uninit<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<Buf<T>, KernelError> {
        // SAFETY: device memory only; callers fill it before reading, and any bits are a valid T
        let slice = unsafe { self.stream.alloc::<T>(n.max(1)) }.map_err(driver("cuMemAllocAsync"))?;
        Ok(Buf::new(slice))
    }

    /// Copies host data to a new device buffer.
    pub fn upload<T: DeviceRepr>(&self, data: &[T]) -> Result<Buf<T>, KernelError> {
        Ok(Buf::new(self.stream.clone_htod(data).map_err(driver("cuMemcpyHtoD"))?))
    }

    /// A new device buffer holding a copy of `buf` (stream-ordered).
    pub fn copy<T: DeviceRepr>(&self, buf: &Buf<T>) -> Result<Buf<T>, KernelError> {
        Ok(Buf::new(self.stream.clone_dtod(&buf.slice).map_err(driver("cuMemcpyDtoD"))?))
    }

    /// Copies `src` into the start of `dst` (stream-ordered; no allocation, so it can be captured).
    pub fn copy_into<T: DeviceRepr>(&self, src: &Buf<T>, dst: &mut Buf<T>) -> Result<(), KernelError> {
        assert!(src.len() <= dst.len(), "copy of {} elements into a buffer of {}", src.len(), dst.len());
        self.stream.memcpy_dtod(&src.slice, &mut dst.slice).map_err(driver("cuMemcpyDtoDAsync"))
    }

    /// Copies a device buffer back (waits for the stream).
    pub fn download<T: DeviceRepr + Default + Clone>(&self, buf: &Buf<T>) -> Result<Vec<T>, KernelError> {
        self.stream.clone_dtoh(&buf.slice).map_err(driver("cuMemcpyDtoH"))
    }

    /// Overwrites the start of `buf` with `data`.
    pub fn write<T: DeviceRepr>(&self, data: &[T], buf: &mut Buf<T>) -> Result<(), KernelError> {
        assert!(data.len() <= buf.len());
        self.stream.memcpy_htod(data, &mut buf.slice).map_err(driver("cuMemcpyHtoD"))
    }

    pub fn synchronize(&self) -> Result<(), KernelError> {
        self.stream.synchronize().map_err(driver("cuStreamSynchronize"))
    }

    /// Returns the memory the stream-ordered pool keeps cached (freed, not in use) to the device: after
    /// a graph capture, whose replays allocate from the graph's own memory, the eager pass's blocks are
    /// dead weight. Waits for the stream first, so nothing pending still needs them.
    pub fn trim_pool(&self) -> Result<(), KernelError> {
        self.synchronize()?;
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: plain driver calls on a valid device handle with a pointer to a live local; trimming
        // releases only unused memory
        unsafe {
            sys::cuDeviceGetDefaultMemPool(&mut pool, self.ctx.cu_device()).result().map_err(driver("cuDeviceGetDefaultMemPool"))?;
            sys::cuMemPoolTrimTo(pool, 0).result().map_err(driver("cuMemPoolTrimTo"))
        }
    }

    pub(crate) fn func(&self, name: &str) -> &CudaFunction {
        self.funcs.get(name).unwrap_or_else(|| panic!("kernel {name} is not in the module"))
    }

    /// A launch builder for kernel `name` on this device's stream.
    pub(crate) fn launch<'a>(&'a self, name: &str) -> cudarc::driver::LaunchArgs<'a> {
        self.stream.launch_builder(self.func(name))
    }

    /// Records a failed launch as an error.
    pub(crate) fn check(&self, r: Result<(), cudarc::driver::DriverError>, name: &'static str) -> Result<(), KernelError> {
        r.map_err(|e| KernelError::Driver { call: name, error: format!("{e:?}") })
    }
}

/// Grid for a grid-stride loop over `n` elements with 256 threads a block (`FOR_EACH`: 32-bit indices).
pub(crate) fn grid_for(n: usize) -> LaunchConfig {
    assert!(n <= i32::MAX as usize, "a launch over {n} elements exceeds the kernels' 32-bit indices");
    let blocks = n.div_ceil(256).clamp(1, 65_535 * 8) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// One warp per row, 8 rows a block.
pub(crate) fn warp_rows(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (n.div_ceil(8).max(1) as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

/// One block per row with `threads` threads.
pub(crate) fn rows(n: usize, threads: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: (n as u32, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 }
}

/// Stream-ordered frees return memory to the pool instead of the OS, so the steady state allocates
/// nothing new (the default pool's release threshold is 0).
fn keep_freed_memory_cached(ctx: &Arc<CudaContext>) {
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    let threshold: u64 = u64::MAX;
    // SAFETY: plain driver calls on a valid device handle with pointers to live locals; failure only
    // means the default (release at every sync) stays in force.
    unsafe {
        if sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) == sys::CUresult::CUDA_SUCCESS {
            let _ = sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                &threshold as *const u64 as *mut std::ffi::c_void,
            );
        }
    }
}

fn load_module(ctx: &Arc<CudaContext>, cc: (i32, i32)) -> Result<(Arc<CudaModule>, KernelOrigin), KernelError> {
    if source::fatbin_embedded()
        && std::env::var_os("DTFSAL_FORCE_NVRTC").is_none()
        && let Ok(m) = ctx.load_module(Ptx::from_binary(source::FATBIN.to_vec()))
    {
        return Ok((m, KernelOrigin::Fatbin));
    }
    let arch: &'static str = match cc {
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 9) => "compute_89",
        (9, 0) => "compute_90",
        (10, 0) => "compute_100",
        (12, 0) => "compute_120",
        (m, _) if m >= 9 => "compute_90",
        _ => "compute_80",
    };
    let opts = CompileOptions { arch: Some(arch), options: vec!["-std=c++17".into()], name: Some("dtfsal_kernels.cu".into()), ..Default::default() };
    let ptx = std::panic::catch_unwind(|| cudarc::nvrtc::compile_ptx_with_opts(source::concatenated(), opts))
        .map_err(|_| KernelError::Nvrtc("libnvrtc could not be loaded".into()))?
        .map_err(|e| KernelError::Nvrtc(format!("{e:?}")))?;
    let m = ctx.load_module(ptx).map_err(driver("cuModuleLoadData"))?;
    Ok((m, KernelOrigin::Nvrtc(arch.into())))
}

