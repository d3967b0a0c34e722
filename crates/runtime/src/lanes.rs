//! Where guest code runs, so that a function looping to its time limit takes only CPU no
//! other request wants.
//!
//! Every call starts on the task that made it: almost all finish well within an epoch tick,
//! and a hop to another thread would cost them latency. A call that keeps running past
//! [`FAST_TICKS`] ticks of its own execution is moved to the slow lanes — a runtime of its
//! own whose threads run at `SCHED_IDLE` — and goes on there. The kernel then preempts it
//! the moment a request-serving thread has work, instead of that work waiting behind it
//! for the rest of a tick; long calls still get every core nobody else uses, and still end
//! at their deadline, which is kept on the caller's side.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

/// Epoch ticks (≈ ms) a call may run on its caller's thread before it moves to the slow
/// lanes: above a typical request (microseconds) by a wide margin, two so that a short
/// call that merely crossed one tick boundary is never taken for a long one.
pub(crate) const FAST_TICKS: u32 = 2;

/// The slow lanes: a multi-threaded runtime at the lowest CPU priority.
pub(crate) struct Lanes {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Lanes {
    /// Starts one slow-lane thread per core.
    pub(crate) fn start() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("edgefn-slow-lane")
            .on_thread_start(lowest_cpu_priority)
            .enable_all()
            .build()?;
        Ok(Self { runtime: Some(runtime) })
    }

    /// Drives `call` here until it finishes or `lane` says it has run long, then on the
    /// slow lanes. Dropping the returned future ends the call wherever it runs.
    pub(crate) fn run<F>(&self, lane: Lane, call: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let slow = self.runtime.as_ref().expect("the slow lanes run until dropped").handle().clone();
        async move {
            let mut call = Box::pin(call);
            let finished = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Some(out)),
                Poll::Pending if lane.is_slow() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            if let Some(out) = finished {
                return out;
            }
            let mut moved = Moved(slow.spawn(call));
            match Pin::new(&mut moved.0).await {
                Ok(out) => out,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Aborted only by dropping `moved`, or by the lanes shutting down with the runtime.
                Err(e) => panic!("a slow-lane call was cancelled while awaited: {e}"),
            }
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Runtimes may be dropped inside async code, where a blocking shutdown panics.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A call moved to the slow lanes, ended when its caller stops waiting (a deadline, a
/// client gone).
struct Moved<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Moved<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether one call has run long: set by its store's epoch callback, read by [`Lanes::run`].
#[derive(Clone, Default)]
pub(crate) struct Lane(Arc<AtomicBool>);

impl Lane {
    pub(crate) fn mark_slow(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_slow(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Moves the calling thread to `SCHED_IDLE`: it runs only when a core has nothing else.
#[expect(unsafe_code, reason = "sched_setscheduler on the calling thread (pid 0) with a valid, initialised parameter")]
pub(crate) fn lowest_cpu_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a thread's CPU priority");
    }
}
