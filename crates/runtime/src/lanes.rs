//! Where guest code runs, so that a function looping to its time limit takes only CPU no
//! other request wants.
//!
//! Every call starts on the task that made it: almost all finish in microseconds, and a hop
//! to another thread would cost them latency. A call whose guest has used [`FAST_RUN`] of
//! CPU is moved to the slow lanes — a runtime of its own, with one thread per core but one
//! (at least one), at a lower CPU priority ([`LANE_NICE`]) — and goes on there; the next
//! call of a function whose last call ran long starts there. Short requests then never
//! wait in a request thread's queue behind a long call's ticks, and the kernel runs a
//! request thread woken by a new request ahead of a lane that is running. Long calls use
//! at most the lanes' cores and still end at their deadline, which is kept on the caller's
//! side.
//!
//! A lower priority yields to the node's own short requests, not to the rest of the
//! machine: when a lane thread gets less than [`STARVED_SHARE`] of a core while it has
//! work and the node's other threads did not use the time either (other processes did),
//! the calls it runs go back to their callers' threads and finish there, at the request
//! threads' priority. (At the lowest priority, `SCHED_IDLE`, and with no way back, long
//! calls starved on a busy machine and timed out.)

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::ThreadId;
use std::time::Duration;

use wasmtime::UpdateDeadline;

/// CPU a call's guest may use on its caller's thread before it moves to the slow lanes:
/// far above a typical request (microseconds), far below a timeout. It is the thread's
/// own CPU time, so a short call preempted on a loaded machine is not taken for a long one.
pub(crate) const FAST_RUN: Duration = Duration::from_millis(2);

/// The slow lanes' nice value. At 10 a lane thread weighs about a tenth of a request
/// thread, so the kernel runs a request thread that wakes ahead of it.
pub(crate) const LANE_NICE: i32 = 10;

/// The slow lanes' time slice, the shortest Linux allows: how long a lane thread may go
/// on running once a request thread has woken (the default is about 0.7 ms).
pub(crate) const LANE_SLICE: Duration = Duration::from_micros(100);

/// Least share of a core (in percent) a busy lane thread must get; below it, its calls go
/// back to their callers' threads.
pub(crate) const STARVED_SHARE: u32 = 25;

/// How long a lane thread is watched before its share of a core is judged.
const SHARE_WINDOW: Duration = Duration::from_millis(20);

/// The slow lanes: a multi-threaded runtime of their own.
pub(crate) struct Lanes {
    runtime: Option<tokio::runtime::Runtime>,
    counts: Arc<Counters>,
}

/// What the lanes have seen, for tests and metrics.
#[derive(Default)]
struct Counters {
    started: AtomicU64,
    moved: AtomicU64,
    returned: AtomicU64,
}

/// How many calls the slow lanes have taken, and how many went back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneCounts {
    /// Calls that started on the lanes (their function's last call ran long).
    pub started: u64,
    /// Calls that moved to the lanes after their fast run on their caller's task.
    pub moved: u64,
    /// Calls that went back to their caller's task because the lanes starved (other
    /// processes took the cores).
    pub returned: u64,
}

impl Lanes {
    /// Starts one slow-lane thread per core but one (at least one).
    pub(crate) fn start() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("edgefn-slow-lane")
            .on_thread_start(lower_cpu_priority)
            .on_thread_unpark(share::restart)
            .enable_all()
            .build()?;
        Ok(Self { runtime: Some(runtime), counts: Arc::default() })
    }

    /// How many calls the lanes have taken, and how many went back.
    pub(crate) fn counts(&self) -> LaneCounts {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let Counters { started, moved, returned } = &*self.counts;
        LaneCounts { started: count(started), moved: count(moved), returned: count(returned) }
    }

    /// Drives `call` here until it finishes or `lane` says it has run long (at once if it
    /// starts there), then on the slow lanes — and back here if they starve. Dropping the
    /// returned future ends the call wherever it runs.
    pub(crate) fn run<F>(&self, lane: Lane, call: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let slow = self.runtime.as_ref().expect("the slow lanes run until dropped").handle().clone();
        let counts = self.counts.clone();
        async move {
            let mut call = Box::pin(call);
            if lane.place() == Place::Caller {
                if let Some(out) = poll_while(&mut call, &lane, Place::Caller).await {
                    return out;
                }
                counts.moved.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.started.fetch_add(1, Ordering::Relaxed);
            }
            let moved_lane = lane.clone();
            let mut moved = Moved(slow.spawn(async move {
                match poll_while(&mut call, &moved_lane, Place::Lanes).await {
                    Some(out) => Ok(out),
                    None => Err(call),
                }
            }));
            match Pin::new(&mut moved.0).await {
                Ok(Ok(out)) => out,
                // Starved on the lanes: it finishes here.
                Ok(Err(call)) => {
                    counts.returned.fetch_add(1, Ordering::Relaxed);
                    call.await
                }
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Aborted only by dropping `moved`, or by the lanes shutting down with the runtime.
                Err(e) => panic!("a slow-lane call was cancelled while awaited: {e}"),
            }
        }
    }
}

/// Polls `call` until it is done (`Some`) or `lane` says it belongs elsewhere than `here`.
async fn poll_while<F: Future>(call: &mut Pin<Box<F>>, lane: &Lane, here: Place) -> Option<F::Output> {
    std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending if lane.place() != here => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
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

/// Where a call runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Place {
    /// On its caller's task, until it has used [`FAST_RUN`].
    Caller = 0,
    /// On the slow lanes.
    Lanes = 1,
    /// Back on its caller's task for good: the lanes starved.
    Returned = 2,
}

/// One call's place and the CPU its guest has used: kept by its store's epoch callback
/// ([`Lane::tick`]), read by [`Lanes::run`].
#[derive(Clone)]
pub(crate) struct Lane(Arc<LaneState>);

struct LaneState {
    place: AtomicU8,
    /// CPU the guest has used, and where and when (in that thread's CPU time) it last
    /// resumed.
    used: Mutex<(Duration, Option<(ThreadId, Duration)>)>,
}

impl Lane {
    /// A call's lane: on the slow lanes from the start if its function's last call ran long.
    pub(crate) fn new(last_ran_long: bool) -> Self {
        let place = if last_ran_long { Place::Lanes } else { Place::Caller };
        Lane(Arc::new(LaneState { place: AtomicU8::new(place as u8), used: Mutex::new((Duration::ZERO, None)) }))
    }

    fn place(&self) -> Place {
        match self.0.place.load(Ordering::Acquire) {
            0 => Place::Caller,
            1 => Place::Lanes,
            _ => Place::Returned,
        }
    }

    fn set(&self, place: Place) {
        self.0.place.store(place as u8, Ordering::Release);
    }

    /// The guest starts (or resumes) running on this thread.
    pub(crate) fn resume(&self) {
        self.0.used.lock().expect("lane lock").1 = Some((std::thread::current().id(), thread_cpu()));
    }

    /// Whether the guest has used [`FAST_RUN`] of CPU.
    pub(crate) fn ran_long(&self) -> bool {
        self.0.used.lock().expect("lane lock").0 >= FAST_RUN
    }

    /// What the guest does at an epoch tick: count the CPU it used since it resumed, move
    /// to the slow lanes if that makes it long, or back from them if they starve, and yield
    /// to the executor.
    pub(crate) fn tick(&self) -> UpdateDeadline {
        let ran_long = {
            let mut used = self.0.used.lock().expect("lane lock");
            // CPU time is per thread: a guest resumed on another thread (after a host call)
            // counts from its next resumption.
            if let Some((thread, resumed)) = used.1.take()
                && thread == std::thread::current().id()
            {
                used.0 += thread_cpu().saturating_sub(resumed);
            }
            used.0 >= FAST_RUN
        };
        match self.place() {
            Place::Caller if ran_long => self.set(Place::Lanes),
            Place::Lanes if share::starved() => self.set(Place::Returned),
            _ => {}
        }
        let lane = self.clone();
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                tokio::task::yield_now().await;
                lane.resume();
            }),
        )
    }
}

/// CPU time the calling thread has used: it grows only while the thread is on a core.
fn thread_cpu() -> Duration {
    cpu_clock(rustix::time::ClockId::ThreadCPUTime)
}

/// CPU time all of this process's threads have used.
fn process_cpu() -> Duration {
    cpu_clock(rustix::time::ClockId::ProcessCPUTime)
}

fn cpu_clock(id: rustix::time::ClockId) -> Duration {
    let t = rustix::time::clock_gettime(id);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Gives the calling thread [`LANE_NICE`] and a time slice of [`LANE_SLICE`] (Linux keeps
/// both per thread; kernels before 6.12 take the nice value and ignore the slice).
#[expect(unsafe_code, reason = "the sched_setattr system call, which has no libc wrapper, on the calling thread")]
fn lower_cpu_priority() {
    let attr = libc::sched_attr {
        size: std::mem::size_of::<libc::sched_attr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_flags: 0,
        sched_nice: LANE_NICE,
        sched_priority: 0,
        sched_runtime: LANE_SLICE.as_nanos() as u64,
        sched_deadline: 0,
        sched_period: 0,
    };
    // SAFETY: pid 0 is the calling thread; `attr` is a valid, initialised sched_attr whose
    // `size` is its own, and it outlives the call, which only reads it.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const libc::sched_attr, 0) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a slow-lane thread's CPU priority");
    }
}

/// How much of a core a lane thread gets while it has work, watched in windows that
/// restart whenever the thread wakes from having nothing to do.
mod share {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use super::{SHARE_WINDOW, STARVED_SHARE, process_cpu, thread_cpu};

    /// A window: when it began, and this thread's and the process's CPU time then.
    type Window = (Instant, Duration, Duration);

    thread_local! {
        static WINDOW: Cell<Option<Window>> = const { Cell::new(None) };
        /// Whether the last window ended starved.
        static STARVED: Cell<bool> = const { Cell::new(false) };
    }

    /// Starts a new window on this thread, which has just woken to new work.
    pub(super) fn restart() {
        WINDOW.set(Some((Instant::now(), thread_cpu(), process_cpu())));
        STARVED.set(false);
    }

    /// Whether, in this thread's last window, it got less than its least share of a core
    /// while the rest of the process used less than half of one: the time went to other
    /// processes. (Time the node's own request threads took is what the lanes are for.)
    pub(super) fn starved() -> bool {
        let Some((began, thread, process)) = WINDOW.get() else {
            restart();
            return false;
        };
        let wall = began.elapsed();
        if wall >= SHARE_WINDOW {
            let now = (Instant::now(), thread_cpu(), process_cpu());
            let here = now.1.saturating_sub(thread);
            let elsewhere = now.2.saturating_sub(process).saturating_sub(here);
            WINDOW.set(Some(now));
            let starved = here.as_nanos() * 100 < wall.as_nanos() * u128::from(STARVED_SHARE);
            STARVED.set(starved && elsewhere < wall / 2);
        }
        STARVED.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_without_cpu_in_its_window_is_starved_until_it_wakes_again() {
        share::restart();
        assert!(!share::starved(), "a window just begun judges nothing");
        // Asleep, the thread uses no CPU at all: a share of none.
        std::thread::sleep(SHARE_WINDOW * 2);
        assert!(share::starved());
        assert!(share::starved(), "the verdict holds until the next window ends");
        share::restart();
        assert!(!share::starved(), "woken to new work, the thread starts a new window");
    }

    #[test]
    fn cpu_on_the_callers_thread_is_counted_until_the_call_moves() {
        let lane = Lane::new(false);
        lane.resume();
        assert!(matches!(lane.tick(), UpdateDeadline::YieldCustom(1, _)));
        assert_eq!(lane.place(), Place::Caller, "a fresh call stays where it is");
        // Sleeping uses no CPU: however long, the call is still short.
        lane.resume();
        std::thread::sleep(FAST_RUN * 3);
        assert!(matches!(lane.tick(), UpdateDeadline::YieldCustom(1, _)));
        assert_eq!(lane.place(), Place::Caller);
        lane.resume();
        let spun = thread_cpu();
        while thread_cpu() - spun < FAST_RUN {}
        assert!(matches!(lane.tick(), UpdateDeadline::YieldCustom(1, _)));
        assert_eq!(lane.place(), Place::Lanes, "past its fast run the call moves");
        assert!(lane.ran_long());
        assert_eq!(Lane::new(true).place(), Place::Lanes, "a function whose last call ran long starts there");
    }
}
