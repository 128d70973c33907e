//! A bounded pool of dedicated OS threads that run embeddings off the async runtime.
//!
//! Each worker owns a one-thread rayon pool and runs its jobs inside it: candle's matrix
//! products (gemm) split their work with rayon, and inside that pool every split runs on
//! the one thread, so `threads` workers keep at most `threads` cores busy with matrix
//! products. (candle's element-wise kernels on large tensors use a separate process-wide
//! pool sized by `CANDLE_NUM_THREADS`; see the module docs of [`crate::embed`].)

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::oneshot;

use super::error::EmbedError;
use super::model::Embedder;
use super::vector::Embedding;

/// Size of an [`EmbedPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Worker threads, each embedding one text at a time (0 counts as 1). Default 1.
    pub threads: usize,
    /// Jobs that may wait for a worker; beyond that [`EmbedPool::try_embed`] refuses.
    /// 0 accepts a job only when a worker is idle. Default 16.
    pub queue_capacity: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { threads: 1, queue_capacity: 16 }
    }
}

/// The pool's queue is full: the caller goes on without an embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the embedding pool is saturated")]
pub struct Saturated;

/// Embeds texts with a shared [`Embedder`] on a bounded set of dedicated threads, with a
/// bounded queue that refuses work at once when full (backpressure, never an unbounded
/// backlog). Callers await the returned future under their own timeout; a job whose future
/// was dropped before a worker reached it is skipped. Dropping the pool stops the workers
/// after their current job (the drop waits for them: at most one embedding each); jobs
/// still queued then resolve to [`EmbedError::PoolStopped`].
pub struct EmbedPool {
    embedder: Arc<Embedder>,
    workers: WorkerPool,
}

impl EmbedPool {
    /// Starts `options.threads` workers sharing `embedder`.
    pub fn new(embedder: Arc<Embedder>, options: PoolOptions) -> Result<EmbedPool, EmbedError> {
        Ok(EmbedPool { embedder, workers: WorkerPool::new(options)? })
    }

    /// Queues the embedding of `text` ([`Embedder::embed`]), or refuses at once when the
    /// queue is full.
    pub fn try_embed(
        &self,
        text: impl Into<String>,
    ) -> Result<impl Future<Output = Result<Embedding, EmbedError>> + Send + 'static, Saturated> {
        let (embedder, text) = (Arc::clone(&self.embedder), text.into());
        self.workers.submit(move |_abandoned: &dyn Fn() -> bool| embedder.embed(&text))
    }

    /// Queues [`Embedder::embed_windows`] of `text`, or refuses at once when the queue is full.
    /// One job: the windows run one after the other on one worker, which stops before the
    /// next window once the caller has dropped the future.
    pub fn try_embed_windows(
        &self,
        text: impl Into<String>,
        max_windows: usize,
    ) -> Result<impl Future<Output = Result<Vec<Embedding>, EmbedError>> + Send + 'static, Saturated> {
        let (embedder, text) = (Arc::clone(&self.embedder), text.into());
        self.workers.submit(move |abandoned: &dyn Fn() -> bool| {
            embedder.embed_windows_unless(&text, max_windows, abandoned)
        })
    }

    /// The shared embedder.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.threads.len()
    }

    /// Jobs waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.workers.jobs.as_ref().map_or(0, Sender::len)
    }
}

impl std::fmt::Debug for EmbedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedPool")
            .field("threads", &self.threads())
            .field("queued", &self.queued())
            .finish_non_exhaustive()
    }
}

/// A queued job: its work and where the answer goes.
trait Job: Send {
    /// Whether the caller dropped its future, so running the job would be wasted.
    fn abandoned(&self) -> bool;
    /// Runs the work and sends the answer.
    fn run(self: Box<Self>);
}

struct Reply<T, F> {
    work: F,
    answer: oneshot::Sender<Result<T, EmbedError>>,
}

impl<T: Send, F: FnOnce(&dyn Fn() -> bool) -> Result<T, EmbedError> + Send> Job for Reply<T, F> {
    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }

    fn run(self: Box<Self>) {
        let Reply { work, answer } = *self;
        let result = work(&|| answer.is_closed());
        // The receiver may be gone by now; nobody waits for the answer then.
        let _ = answer.send(result);
    }
}

/// The threads and the bounded queue, independent of what the jobs compute.
struct WorkerPool {
    jobs: Option<Sender<Box<dyn Job>>>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    fn new(options: PoolOptions) -> Result<WorkerPool, EmbedError> {
        let (jobs, queue) = crossbeam_channel::bounded::<Box<dyn Job>>(options.queue_capacity);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut pool = WorkerPool { jobs: Some(jobs), stopping, threads: Vec::new() };
        for index in 0..options.threads.max(1) {
            let (queue, stopping) = (queue.clone(), Arc::clone(&pool.stopping));
            let thread = std::thread::Builder::new()
                .name(format!("loom-embed-{index}"))
                .spawn(move || work(&queue, &stopping))
                .map_err(|e| EmbedError::Spawn(e.to_string()))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    fn submit<T, F>(
        &self,
        work: F,
    ) -> Result<impl Future<Output = Result<T, EmbedError>> + Send + 'static, Saturated>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Fn() -> bool) -> Result<T, EmbedError> + Send + 'static,
    {
        let (answer, receiver) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(Saturated)?;
        match jobs.try_send(Box::new(Reply { work, answer })) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Saturated),
        }
        Ok(async move { receiver.await.unwrap_or(Err(EmbedError::PoolStopped)) })
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Release);
        // Closing the queue wakes idle workers; busy ones stop after their current job.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A worker's loop: run queued jobs until the pool is dropped, skipping abandoned ones.
fn work(queue: &Receiver<Box<dyn Job>>, stopping: &AtomicBool) {
    // Without this pool gemm would fan out over the global rayon pool (every core).
    let single_thread =
        rayon::ThreadPoolBuilder::new().num_threads(1).thread_name(|_| "loom-embed-gemm".into()).build().ok();
    for job in queue.iter() {
        if stopping.load(Ordering::Acquire) {
            // Dropping the job drops its answer: the caller sees PoolStopped.
            break;
        }
        if job.abandoned() {
            continue;
        }
        // A panic drops the answer (the caller sees PoolStopped); the worker lives on.
        let _ = catch_unwind(AssertUnwindSafe(|| match &single_thread {
            Some(pool) => pool.install(|| job.run()),
            None => job.run(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    use super::*;

    /// Work that reports it started, then waits until the test lets it finish.
    fn gated(
        started: mpsc::Sender<()>,
        gate: Receiver<()>,
    ) -> impl FnOnce(&dyn Fn() -> bool) -> Result<u32, EmbedError> + Send {
        move |_| {
            let _ = started.send(());
            let _ = gate.recv();
            Ok(1)
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_accepts_again_when_drained() {
        let pool = WorkerPool::new(PoolOptions { threads: 1, queue_capacity: 1 }).unwrap();
        let (started, started_rx) = mpsc::channel();
        let (open, gate) = crossbeam_channel::unbounded();
        let running = pool.submit(gated(started, gate)).unwrap();
        started_rx.recv().unwrap();
        let queued = pool.submit(|_| Ok(2)).unwrap();
        assert!(matches!(pool.submit(|_| Ok(3)), Err(Saturated)));

        open.send(()).unwrap();
        assert_eq!(running.await.unwrap(), 1);
        assert_eq!(queued.await.unwrap(), 2);
        assert_eq!(pool.submit(|_| Ok(4)).unwrap().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_job_whose_caller_left_is_skipped() {
        let pool = WorkerPool::new(PoolOptions { threads: 1, queue_capacity: 4 }).unwrap();
        let (started, started_rx) = mpsc::channel();
        let (open, gate) = crossbeam_channel::unbounded();
        let runs = Arc::new(AtomicUsize::new(0));
        let running = pool.submit(gated(started, gate)).unwrap();
        started_rx.recv().unwrap();
        let counted = Arc::clone(&runs);
        let abandoned = pool.submit(move |_| Ok(counted.fetch_add(1, Ordering::SeqCst) as u32)).unwrap();
        drop(abandoned);
        let counted = Arc::clone(&runs);
        let kept = pool.submit(move |_| Ok(counted.fetch_add(1, Ordering::SeqCst) as u32 + 10)).unwrap();

        open.send(()).unwrap();
        assert_eq!(running.await.unwrap(), 1);
        assert_eq!(kept.await.unwrap(), 10);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_running_job_learns_that_its_caller_left() {
        let pool = WorkerPool::new(PoolOptions { threads: 1, queue_capacity: 1 }).unwrap();
        let (started, started_rx) = mpsc::channel();
        let (open, gate) = crossbeam_channel::unbounded::<()>();
        let seen = Arc::new(AtomicUsize::new(0));
        let record = Arc::clone(&seen);
        let running = pool
            .submit(move |abandoned: &dyn Fn() -> bool| {
                let _ = started.send(());
                let _ = gate.recv();
                record.store(if abandoned() { 2 } else { 1 }, Ordering::SeqCst);
                Ok(0)
            })
            .unwrap();
        started_rx.recv().unwrap();
        drop(running);
        open.send(()).unwrap();
        // One worker, in order: once the next job answers, the first has finished.
        assert_eq!(pool.submit(|_| Ok(7)).unwrap().await.unwrap(), 7);
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let pool = WorkerPool::new(PoolOptions { threads: 1, queue_capacity: 1 }).unwrap();
        let panicking =
            pool.submit(|_: &dyn Fn() -> bool| -> Result<u32, EmbedError> { panic!("boom") }).unwrap();
        assert!(matches!(panicking.await, Err(EmbedError::PoolStopped)));
        assert_eq!(pool.submit(|_| Ok(5)).unwrap().await.unwrap(), 5);
    }

    #[tokio::test]
    async fn dropping_the_pool_answers_queued_jobs_and_joins_the_threads() {
        let pool = WorkerPool::new(PoolOptions { threads: 1, queue_capacity: 2 }).unwrap();
        let (started, started_rx) = mpsc::channel();
        let (open, gate) = crossbeam_channel::unbounded();
        let running = pool.submit(gated(started, gate)).unwrap();
        started_rx.recv().unwrap();
        let queued = pool.submit(|_| Ok(2)).unwrap();
        let stopping = Arc::clone(&pool.stopping);
        let stopper = std::thread::spawn(move || drop(pool));
        while !stopping.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        // The running job finishes; the queued one is dropped unrun.
        open.send(()).unwrap();
        stopper.join().unwrap();
        assert_eq!(running.await.unwrap(), 1);
        assert!(matches!(queued.await, Err(EmbedError::PoolStopped)));
    }

    #[test]
    fn the_pool_and_its_futures_can_be_shared_across_tasks() {
        fn shared<T: Send + Sync + 'static>() {}
        fn sent<T: Send + 'static>(_: &T) {}
        shared::<EmbedPool>();
        let pool = WorkerPool::new(PoolOptions::default()).unwrap();
        sent(&pool.submit(|_| Ok(1)).unwrap());
    }

    #[test]
    fn zero_threads_means_one() {
        let pool = WorkerPool::new(PoolOptions { threads: 0, queue_capacity: 0 }).unwrap();
        assert_eq!(pool.threads.len(), 1);
    }
}
