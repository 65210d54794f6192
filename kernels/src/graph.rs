//! CUDA graphs: the launches of one forward pass recorded once (stream capture) and replayed as one
//! graph launch, so the steady state pays one launch's host overhead instead of a few hundred.
//!
//! What a graph may hold, and why [`Gpu::capture`] is shaped the way it is:
//! - Kernel arguments (device addresses, sizes) are frozen at capture: inputs and outputs that change
//!   between replays must live in buffers allocated *before* the capture and written outside it.
//! - Buffers allocated inside the capture (`cuMemAllocAsync`) become graph memory nodes with fixed
//!   addresses; the graph can only be relaunched when everything it allocated it also freed, so the
//!   captured closure must drop every buffer it made (results go into the pre-allocated outputs).
//! - The capture needs a stream other than the legacy default stream ([`Gpu::new_capturable`]).
//! - Nothing in the closure may wait for the stream (no download, no synchronize): capture would fail.

use cudarc::driver::{CudaGraph, sys};

use crate::KernelError;
use crate::device::{Gpu, driver};

/// A captured, instantiated graph on its [`Gpu`]'s stream.
pub struct Graph {
    graph: CudaGraph,
}

// SAFETY: a graph may be used from any thread as long as calls on it are serialised (CUDA's graph
// thread-safety rules); `Graph` is not `Sync`, so `&mut` or one owner at a time does that, and each call
// binds the graph's context to the calling thread first (cudarc's launch/upload do).
unsafe impl Send for Graph {}

impl Graph {
    /// Enqueues one replay on the stream the graph was captured on (returns before it runs).
    pub fn launch(&self) -> Result<(), KernelError> {
        self.graph.launch().map_err(driver("cuGraphLaunch"))
    }

    /// Uploads the graph's resources to the device, so the first replay does not pay for it.
    pub fn upload(&self) -> Result<(), KernelError> {
        self.graph.upload().map_err(driver("cuGraphUpload"))
    }
}

impl Gpu {
    /// Records what `record` enqueues on the stream, without running it, and instantiates it.
    ///
    /// The capture is always ended, also when `record` fails or the driver refuses a call inside it
    /// (the stream then runs normally again): the error is returned and no graph is made.
    pub fn capture<E: From<KernelError>>(&self, record: impl FnOnce() -> Result<(), E>) -> Result<Graph, E> {
        if !self.capturable {
            return Err(KernelError::Capture("the device was opened on the legacy default stream, which cannot be captured".into()).into());
        }
        // thread-local mode: a call in this thread that is unsafe under capture (cuMemAlloc, a
        // synchronisation) fails the capture instead of silently running once at capture time
        self.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(driver("cuStreamBeginCapture"))?;
        let mut guard = EndCaptureOnUnwind { gpu: self, armed: true };
        let recorded = record();
        guard.armed = false;
        let ended = self.stream.end_capture(sys::CUgraphInstantiate_flags(0));
        // frees of buffers made during a failed capture report their errors to the context, which
        // would hand them to the next unrelated call: they belong to this capture, so clear them here
        let stray = self.ctx.check_err();
        recorded?;
        match ended {
            Ok(Some(graph)) => {
                stray.map_err(|e| KernelError::Capture(format!("a call inside the capture failed: {e:?}")))?;
                Ok(Graph { graph })
            }
            Ok(None) => Err(KernelError::Capture("the capture recorded nothing".into()).into()),
            Err(e) => Err(KernelError::Capture(format!("cuStreamEndCapture / cuGraphInstantiate: {e:?}")).into()),
        }
    }
}

/// Ends a capture whose recording closure panicked, so the stream does not stay in capture mode (every
/// later call on it would fail) while the panic unwinds.
struct EndCaptureOnUnwind<'a> {
    gpu: &'a Gpu,
    armed: bool,
}

impl Drop for EndCaptureOnUnwind<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.gpu.stream.end_capture(sys::CUgraphInstantiate_flags(0));
            let _ = self.gpu.ctx.check_err();
        }
    }
}
