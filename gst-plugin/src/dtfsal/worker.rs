//! The inference workers: threads owning the model, fed clips over a crossbeam channel, so that no
//! inference runs on a streaming thread. One thread for the local backends; `max-in-flight` threads for
//! the triton backend, each with one request on the wire. With `batch` > 1 (the element's `batch`) a worker
//! takes the jobs queued when it is free, up to `batch`: the CUDA backend runs them as one
//! [`Model::predict_batch`], the others in turn.
//!
//! A transient failure (the Triton server down or restarting, a deadline exceeded) is either returned
//! like any other failure, or, with [`Retry::UntilStopped`] (sync mode: every frame waits for its own
//! map), retried with a growing pause until it succeeds, the stream is flushed or the worker is stopped;
//! [`Notice`]s tell the element when a retry begins and when the backend answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use dtfsal_engine::model::{Clip, Model, ModelError, SaliencyMap};

/// One clip to run.
pub struct Job {
    /// Stream generation (bumped on every flush; results of older generations are dropped).
    pub generation: u64,
    /// Frame number the map belongs to.
    pub index: u64,
    pub clip: Clip,
}

/// Why a job has no map.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    /// May pass by itself (server restarting, slow answer): the stream can go on.
    pub transient: bool,
}

/// One result.
pub struct Done {
    pub generation: u64,
    pub index: u64,
    pub result: Result<Arc<SaliencyMap>, Failure>,
    /// Wall time of the forward pass (retries included; a batch's, for each of its clips).
    pub elapsed: Duration,
    /// Clips run together with this one (1 unless the CUDA backend ran a batch; 0: flushed before it ran).
    pub batch: usize,
}

impl Done {
    /// The answer to a job whose generation was flushed before it ran.
    fn flushed(job: Job) -> Self {
        let failure = Failure { message: "flushed before it ran".into(), transient: false };
        Self { generation: job.generation, index: job.index, result: Err(failure), elapsed: Duration::ZERO, batch: 0 }
    }
}

/// What to do with transient failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Return them as results.
    Never,
    /// Retry the clip until it succeeds, its generation is flushed or the worker stops.
    UntilStopped,
}

/// News about the backend, for element warnings.
#[derive(Debug, Clone)]
pub enum Notice {
    /// A transient failure; the clip of frame `index` is retried.
    Retrying { index: u64, message: String },
    /// A clip succeeded after a transient failure.
    Recovered { index: u64, after: Duration },
}

/// Pause before the n-th retry (0.1 s doubling to 2 s).
fn backoff(n: u32) -> Duration {
    Duration::from_millis((100u64 << n.min(5)).min(2000))
}

/// Handle of the worker threads; dropping it stops them (a retrying one at its next check).
pub struct Worker {
    tx: Option<Sender<Job>>,
    rx: Receiver<Done>,
    notices: Receiver<Notice>,
    handles: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// The element's current generation: retries of older ones give up.
    generation: Arc<AtomicU64>,
    /// Jobs sent whose result has not been received.
    outstanding: usize,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "inference panicked".into())
}

/// What a worker thread needs besides its jobs.
struct Runner {
    model: Arc<Model>,
    retry: Retry,
    stop: Arc<AtomicBool>,
    current: Arc<AtomicU64>,
    notices: Sender<Notice>,
    /// The backend runs a batch's clips at once (CUDA streams), not in turn.
    concurrent: bool,
}

impl Runner {
    /// Whether results of `generation` are no longer wanted (flushed, or the worker stopping).
    fn is_stale(&self, generation: u64) -> bool {
        self.stop.load(Ordering::SeqCst) || self.current.load(Ordering::SeqCst) != generation
    }

    /// One clip, retried as `retry` says.
    fn run_one(&self, generation: u64, index: u64, clip: &Clip) -> Done {
        let start = Instant::now();
        let mut failures = 0u32;
        let result = loop {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.model.predict(clip)));
            let failure = match r {
                Ok(Ok(map)) => {
                    if failures > 0 {
                        let _ = self.notices.send(Notice::Recovered { index, after: start.elapsed() });
                    }
                    break Ok(Arc::new(map));
                }
                Ok(Err(e)) => Failure { transient: ModelError::is_transient(&e), message: e.to_string() },
                Err(p) => Failure { message: panic_message(p), transient: false },
            };
            let stale = || self.is_stale(generation);
            if !failure.transient || self.retry == Retry::Never || stale() {
                break Err(failure);
            }
            if failures == 0 {
                let _ = self.notices.send(Notice::Retrying { index, message: failure.message.clone() });
            }
            // sleep in short steps so that a stop or flush is noticed
            let until = Instant::now() + backoff(failures);
            while Instant::now() < until && !stale() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if stale() {
                break Err(failure);
            }
            failures += 1;
        };
        Done { generation, index, result, elapsed: start.elapsed(), batch: 1 }
    }

    /// The jobs of one pass, each result sent as soon as it is ready; `false` once the element is gone.
    /// Jobs of a flushed generation are answered without running (after a seek, a full queue would
    /// otherwise hold the new segment back by a pass of stale clips). Where the backend runs several
    /// clips at once (CUDA) the live ones go to one [`Model::predict_batch`]; elsewhere they run in turn,
    /// each checked just before it starts, so a flush or a stop waits for one clip at most.
    fn run_pass(&self, jobs: Vec<Job>, done: &Sender<Done>) -> bool {
        let (live, stale): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| !self.is_stale(j.generation));
        if !stale.into_iter().all(|j| done.send(Done::flushed(j)).is_ok()) {
            return false;
        }
        if self.concurrent && live.len() > 1 {
            return self.run_batch(live).into_iter().all(|d| done.send(d).is_ok());
        }
        live.into_iter().all(|j| {
            let d = if self.is_stale(j.generation) { Done::flushed(j) } else { self.run_one(j.generation, j.index, &j.clip) };
            done.send(d).is_ok()
        })
    }

    /// Several clips in one [`Model::predict_batch`]. If the batch fails or panics, each clip runs again
    /// on its own, so that every job gets its own result and a bad clip costs only its own map.
    fn run_batch(&self, jobs: Vec<Job>) -> Vec<Done> {
        let start = Instant::now();
        let (keys, clips): (Vec<(u64, u64)>, Vec<Clip>) = jobs.into_iter().map(|j| ((j.generation, j.index), j.clip)).unzip();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.model.predict_batch(&clips))) {
            Ok(Ok(maps)) if maps.len() == keys.len() => {
                // each clip waited for the whole batch
                let (elapsed, batch) = (start.elapsed(), keys.len());
                keys.into_iter()
                    .zip(maps)
                    .map(|((generation, index), m)| Done { generation, index, result: Ok(Arc::new(m)), elapsed, batch })
                    .collect()
            }
            _ => keys.into_iter().zip(&clips).map(|((generation, index), clip)| self.run_one(generation, index, clip)).collect(),
        }
    }
}

impl Worker {
    /// `threads` workers (at least one) sharing `model`. Each takes up to `batch` queued jobs at a time
    /// (those already waiting when it is free: it never waits to fill a batch): one
    /// [`Model::predict_batch`] on the CUDA backend, in turn on the others ([`Runner::run_pass`]).
    pub fn spawn(model: Arc<Model>, threads: usize, retry: Retry, batch: usize) -> std::io::Result<Self> {
        let (tx, job_rx) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, rx) = crossbeam_channel::unbounded::<Done>();
        let (notice_tx, notices) = crossbeam_channel::unbounded::<Notice>();
        let stop = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let batch = batch.max(1);
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let runner = Runner {
                model: model.clone(),
                retry,
                stop: stop.clone(),
                current: generation.clone(),
                notices: notice_tx.clone(),
                concurrent: model.cuda_net().is_some(),
            };
            let (job_rx, done_tx) = (job_rx.clone(), done_tx.clone());
            let name = if threads > 1 { format!("dtfsal-infer-{i}") } else { "dtfsal-infer".into() };
            handles.push(std::thread::Builder::new().name(name).spawn(move || {
                for job in job_rx.iter() {
                    if runner.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut jobs = vec![job];
                    while jobs.len() < batch {
                        match job_rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    if !runner.run_pass(jobs, &done_tx) {
                        break;
                    }
                }
            })?);
        }
        Ok(Self { tx: Some(tx), rx, notices, handles, stop, generation, outstanding: 0 })
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The stream generation jobs now belong to (retries of older ones give up).
    pub fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::SeqCst);
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

    /// News about the backend since the last call.
    pub fn notices(&self) -> Vec<Notice> {
        self.notices.try_iter().collect()
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
        self.stop.store(true, Ordering::SeqCst);
        self.tx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dtfsal_engine::model::Backend;
    use dtfsal_engine::model::cuda::check::random_clip;
    use dtfsal_engine::tensor::Tensor;

    fn tiny() -> Arc<Model> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/tiny-av.weights.safetensors");
        Arc::new(Model::load(path, Backend::Cpu).unwrap())
    }

    /// A valid clip whose content depends on `seed`.
    fn clip(model: &Model, seed: u64) -> Clip {
        random_clip(model.config(), seed)
    }

    /// A pass that `predict_batch` rejects (one bad clip) is rerun clip by clip: every job gets its own
    /// result in its own slot, the bad clip alone an error.
    #[test]
    fn a_failed_batch_reruns_clip_by_clip() {
        let model = tiny();
        let (notices, _rx) = crossbeam_channel::unbounded();
        let runner = Runner {
            model: model.clone(),
            retry: Retry::Never,
            stop: Arc::new(AtomicBool::new(false)),
            current: Arc::new(AtomicU64::new(0)),
            notices,
            concurrent: true,
        };
        let bad = Clip { video: Tensor::zeros(&[3, 2, 8, 8]), audio: None };
        let jobs = (0..4u64).map(|i| Job { generation: 0, index: i, clip: if i == 2 { bad.clone() } else { clip(&model, i) } });
        let done = runner.run_batch(jobs.collect());
        assert_eq!(done.iter().map(|d| d.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
        for d in &done {
            match (&d.result, d.index) {
                (Err(f), 2) => assert!(f.message.contains("input/video"), "{}", f.message),
                (Ok(map), i) if i != 2 => assert_eq!(**map, model.predict(&clip(&model, i)).unwrap(), "clip {i}"),
                (r, i) => panic!("clip {i}: {:?}", r.as_ref().err()),
            }
        }
        // and a pass that succeeds gives predict's maps, the pass size on each
        let done = runner.run_batch((0..3u64).map(|i| Job { generation: 0, index: i, clip: clip(&model, i) }).collect());
        for d in &done {
            assert_eq!(d.batch, 3);
            assert_eq!(**d.result.as_ref().unwrap(), model.predict(&clip(&model, d.index)).unwrap());
        }
    }

    /// A worker taking up to 4 queued clips a pass on the CPU engine runs them in turn: every job gets its
    /// own result in its own slot, and a bad clip costs only its own map.
    #[test]
    fn batches_on_the_cpu_run_in_turn_each_job_its_own_result() {
        let model = tiny();
        let bad = Clip { video: Tensor::zeros(&[3, 2, 8, 8]), audio: None };
        let mut worker = Worker::spawn(model.clone(), 1, Retry::Never, 4).unwrap();
        for i in 0..8u64 {
            assert!(worker.submit(Job { generation: 0, index: i, clip: if i == 5 { bad.clone() } else { clip(&model, i) } }));
        }
        let mut done = Vec::new();
        while done.len() < 8 {
            done.push(worker.recv_timeout(Duration::from_secs(30)).expect("worker alive").expect("a result within 30 s"));
        }
        // in turn, and in order: each clip is its own pass
        assert_eq!(done.iter().map(|d| (d.index, d.batch)).collect::<Vec<_>>(), (0..8).map(|i| (i, 1)).collect::<Vec<_>>());
        for d in &done {
            match (&d.result, d.index) {
                (Err(f), 5) => assert!(f.message.contains("input/video"), "{}", f.message),
                (Ok(map), i) if i != 5 => assert_eq!(**map, model.predict(&clip(&model, i)).unwrap(), "clip {i}"),
                (r, i) => panic!("clip {i}: {:?}", r.as_ref().err()),
            }
        }
    }

    /// A flush in the middle of a pass run in turn: the clips not yet started are answered without running,
    /// so the new segment waits for one clip at most, not the pass.
    #[test]
    fn a_flush_mid_pass_skips_the_rest_of_it() {
        let model = tiny();
        let mut worker = Worker::spawn(model.clone(), 1, Retry::Never, 8).unwrap();
        for i in 0..8u64 {
            assert!(worker.submit(Job { generation: 0, index: i, clip: clip(&model, i) }));
        }
        let first = worker.recv_timeout(Duration::from_secs(30)).expect("worker alive").expect("a result within 30 s");
        worker.set_generation(1);
        let mut done = vec![first];
        while done.len() < 8 {
            done.push(worker.recv_timeout(Duration::from_secs(30)).expect("worker alive").expect("a result within 30 s"));
        }
        let ran = done.iter().filter(|d| d.result.is_ok()).count();
        // the first clip, the one running at the flush, and (a slow test thread) maybe two more
        assert!(ran <= 4, "{ran} of 8 clips ran after a flush during the second");
        assert!(done.iter().all(|d| d.result.is_ok() || d.batch == 0), "an error other than a flushed clip");
    }

    /// Clips of a flushed generation are answered at once without running; the new generation's run.
    #[test]
    fn clips_of_a_flushed_generation_are_skipped() {
        let model = tiny();
        let clip = clip(&model, 0);
        for batch in [1, 4] {
            let mut worker = Worker::spawn(model.clone(), 1, Retry::Never, batch).unwrap();
            worker.set_generation(1); // a flush before the old clips reach the worker
            for i in 0..6u64 {
                assert!(worker.submit(Job { generation: 0, index: i, clip: clip.clone() }));
            }
            for i in 6..8u64 {
                assert!(worker.submit(Job { generation: 1, index: i, clip: clip.clone() }));
            }
            let mut done = Vec::new();
            while done.len() < 8 {
                done.push(worker.recv_timeout(Duration::from_secs(30)).expect("worker alive").expect("a result within 30 s"));
            }
            assert_eq!(worker.outstanding(), 0);
            for d in &done {
                match (d.generation, &d.result) {
                    (0, Err(f)) => assert!(f.message.contains("flushed") && d.batch == 0, "batch {batch}: {}", f.message),
                    (1, Ok(_)) => assert!(d.batch >= 1),
                    (g, r) => panic!("batch {batch}: clip {} of generation {g}: {:?}", d.index, r.as_ref().err()),
                }
            }
        }
    }
}
