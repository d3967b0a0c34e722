//! Where guest code runs, so that a function looping to its time limit takes only CPU no
//! other request wants.
//!
//! Every call starts on the task that made it: almost all finish well within an epoch tick,
//! and a hop to another thread would cost them latency. A call that keeps running past
//! [`FAST_TICKS`] ticks of its own execution is moved to the slow lanes — a runtime of its
//! own, with one thread per core but one (at least one) — and goes on there. Short requests
//! then never wait in a request thread's queue behind a long call's ticks: the kernel
//! shares the cores between the request threads and the lanes, and a request thread woken
//! by a new request, having slept, is run ahead of a lane that has been running. Long calls
//! keep a fair share of the CPU however busy the node is (at the lowest priority they would
//! starve under load and time out), use at most the lanes' cores, and still end at their
//! deadline, which is kept on the caller's side.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

/// Epoch ticks (≈ ms) a call may run on its caller's thread before it moves to the slow
/// lanes: far above a typical request (microseconds), so that a short call slowed by a
/// loaded machine (a tick is counted when the guest resumes after being preempted) stays
/// where it is, and far below a timeout.
pub(crate) const FAST_TICKS: u32 = 5;

/// The slow lanes: a multi-threaded runtime of their own.
pub(crate) struct Lanes {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Lanes {
    /// Starts one slow-lane thread per core but one (at least one).
    pub(crate) fn start() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1);
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).thread_name("edgefn-slow-lane").enable_all().build()?;
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
