//! The inference worker: one thread owning the model, fed clips over a crossbeam channel, so
//! that no inference runs on a streaming thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use dtfsal_engine::model::{Clip, Model, SaliencyMap};

/// One clip to run.
pub struct Job {
    /// Stream generation (bumped on every flush; results of older generations are dropped).
    pub generation: u64,
    /// Frame number the map belongs to.
    pub index: u64,
    pub clip: Clip,
}

/// One result.
pub struct Done {
    pub generation: u64,
    pub index: u64,
    pub result: Result<Arc<SaliencyMap>, String>,
    /// Wall time of the forward pass.
    pub elapsed: Duration,
}

/// Handle of the worker thread; dropping it stops the thread once its current clip is done.
pub struct Worker {
    tx: Option<Sender<Job>>,
    rx: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
    /// Jobs sent whose result has not been received.
    outstanding: usize,
}

impl Worker {
    pub fn spawn(model: Arc<Model>) -> std::io::Result<Self> {
        let (tx, job_rx) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, rx) = crossbeam_channel::unbounded::<Done>();
        let handle = std::thread::Builder::new().name("dtfsal-infer".into()).spawn(move || {
            for job in job_rx.iter() {
                let start = Instant::now();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.predict(&job.clip)));
                let result = match result {
                    Ok(Ok(map)) => Ok(Arc::new(map)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(p) => Err(p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "inference panicked".into())),
                };
                let done = Done { generation: job.generation, index: job.index, result, elapsed: start.elapsed() };
                if done_tx.send(done).is_err() {
                    break;
                }
            }
        })?;
        Ok(Self { tx: Some(tx), rx, handle: Some(handle), outstanding: 0 })
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Queues a job. `false` if the worker is gone.
    pub fn submit(&mut self, job: Job) -> bool {
        match &self.tx {
            Some(tx) if tx.send(job).is_ok() => {
                self.outstanding += 1;
                true
            }
            _ => false,
        }
    }

    /// A finished job, if one is ready.
    pub fn try_recv(&mut self) -> Option<Done> {
        match self.rx.try_recv() {
            Ok(d) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                Some(d)
            }
            Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Waits up to `timeout` for a finished job. `Err(())` when the worker died.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Done>, ()> {
        match self.rx.recv_timeout(timeout) {
            Ok(d) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                Ok(Some(d))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
