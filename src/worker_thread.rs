//! `WorkerThread`, the engine's side of a worker thread: its main loop, the
//! find-work order, and waiting on a latch while running other jobs.

use crate::builder::HookFn;
use crate::deque::{Deque, Steal};
use crate::heartbeat::JoinStack;
use crate::job::JobRef;
use crate::latch::{Latch, Probe};
use crate::registry::Registry;
use crate::rng::XorShift;
use crate::stats::WorkerStats;
use crate::sync::{spin_hint, thread, thread_local, Arc};
use std::cell::Cell;
use std::ptr;

/// Idle rounds spent spinning (with exponential backoff) before yielding.
#[cfg(not(any(loom, shuttle)))]
const SPIN_ROUNDS: u32 = 8;
/// Idle rounds (spinning, then yielding) before a worker sleeps.
#[cfg(not(any(loom, shuttle)))]
const IDLE_ROUNDS: u32 = 24;
// Under a model checker (loom, shuttle), idling is only more interleavings
// to explore.
#[cfg(any(loom, shuttle))]
const SPIN_ROUNDS: u32 = 0;
#[cfg(any(loom, shuttle))]
const IDLE_ROUNDS: u32 = 1;

#[cfg(not(loom))]
thread_local! {
    /// The worker running on this thread, or null.
    static CURRENT: Cell<*const WorkerThread> = const { Cell::new(ptr::null()) };
}
// loom's `thread_local!` takes no `const` initializer (std's and shuttle's do).
#[cfg(loom)]
thread_local! {
    static CURRENT: Cell<*const WorkerThread> = Cell::new(ptr::null());
}

/// The main loop's condition: the pool is shutting down.
struct Terminating<'a>(&'a Registry);

impl Probe for Terminating<'_> {
    fn done(&self) -> bool {
        self.0.terminating()
    }
}

/// The thread-local state of one worker.
pub(crate) struct WorkerThread {
    deque: Deque<JobRef>,
    registry: Arc<Registry>,
    index: usize,
    rng: XorShift,
    /// Whether this worker counts itself as searching in the sleep counters.
    searching: Cell<bool>,
    /// Set once the worker has drained the queues for the last time and
    /// runs its `on_thread_exit` hook: it takes no more jobs of its own.
    exiting: Cell<bool>,
    joins: JoinStack,
}

impl WorkerThread {
    /// The body of worker thread `index`.
    pub(crate) fn run(deque: Deque<JobRef>, registry: Arc<Registry>, index: usize) {
        let worker = WorkerThread {
            deque,
            registry,
            index,
            rng: XorShift::new(index),
            searching: Cell::new(false),
            exiting: Cell::new(false),
            joins: JoinStack::new(),
        };
        CURRENT.with(|current| current.set(&worker));
        run_hook(
            "on_thread_start",
            worker.registry.on_start.as_deref(),
            index,
        );
        worker.wait_until(&Terminating(&worker.registry));
        // Shutdown: run everything still queued. Jobs may queue more jobs, so
        // keep going until a full search finds nothing. Other workers drain
        // their own deques the same way before they exit. (Mutant
        // `shutdown_skips_drain` exits at once.)
        #[cfg(not(stealpool_mutant = "shutdown_skips_drain"))]
        while let Some(job) = worker.find_work() {
            worker.execute(job);
        }
        // The hook may submit work to this pool (through an `Imap` that
        // outlived it); this worker will not look at its deque again, so it
        // no longer takes such work as a worker (see `Registry::try_submit`).
        worker.exiting.set(true);
        run_hook("on_thread_exit", worker.registry.on_exit.as_deref(), index);
        CURRENT.with(|current| current.set(ptr::null()));
    }

    /// The worker running on the calling thread, if any (of any pool).
    #[inline]
    pub(crate) fn current<'a>() -> Option<&'a WorkerThread> {
        let worker = CURRENT.with(Cell::get);
        // SAFETY: CURRENT points to the `WorkerThread` on this thread's stack
        // in `run` and is reset before that frame ends; callers only use the
        // reference on this thread, inside that frame. (The public `Worker`
        // handle wraps it: it is neither `Send` nor `Sync`, and user code
        // gets it only by a reference whose lifetime ends with the closure
        // that received it, i.e. inside a job on this worker.)
        unsafe { worker.as_ref() }
    }

    /// The worker running on the calling thread, if it is one of
    /// `registry`'s workers.
    #[inline]
    pub(crate) fn current_in<'a>(registry: &Registry) -> Option<&'a WorkerThread> {
        WorkerThread::current().filter(|worker| worker.registry.same(registry))
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Whether this worker has drained the queues for the last time (it runs
    /// its `on_thread_exit` hook).
    pub(crate) fn exiting(&self) -> bool {
        self.exiting.get()
    }

    pub(crate) fn joins(&self) -> &JoinStack {
        &self.joins
    }

    fn stats(&self) -> &WorkerStats {
        self.registry.worker_stats(self.index)
    }

    /// Pushes a job on this worker's deque, where thieves can take it.
    pub(crate) fn push(&self, job: JobRef) {
        self.deque.push(job);
        self.registry.sleep().new_work();
    }

    /// Runs a job on this worker.
    #[inline]
    pub(crate) fn execute(&self, job: JobRef) {
        self.stats().jobs_run.add(1);
        self.joins.job_starts();
        // SAFETY: every JobRef in the queues is alive until executed, and a
        // job leaves the queues exactly once (pop or successful steal).
        unsafe { job.execute() }
    }

    /// Finds a job: this worker's own deque first (newest first), then a batch
    /// from the injector, then one job from another worker, starting at a
    /// random victim. Retries while any source answered `Steal::Retry`.
    pub(crate) fn find_work(&self) -> Option<JobRef> {
        if let Some(job) = self.deque.pop() {
            self.stats().local_pops.add(1);
            return Some(job);
        }
        let stealers = self.registry.stealers();
        let n = stealers.len();
        loop {
            let mut retry = false;
            match self.registry.injector().steal_batch_and_pop(&self.deque) {
                Steal::Success(job) => {
                    self.stats().injector_steals.add(1);
                    // The rest of the batch now sits on our deque: that is a
                    // push like any other, so it must be announced. A worker
                    // that searched while the batch was in flight (claimed
                    // from the injector, not yet on our deque) saw neither,
                    // may have gone to sleep, and we are not necessarily a
                    // searcher whose baton would wake it. Without this, the
                    // batch waits for us while we run `job`, which may block
                    // until another task of the batch runs (found by the
                    // shuttle model `burst_wakes_every_worker`; mutant
                    // `batch_not_announced` skips it).
                    #[cfg(not(stealpool_mutant = "batch_not_announced"))]
                    if !self.deque.is_empty() {
                        self.registry.sleep().new_work();
                    }
                    return Some(job);
                }
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            if n > 1 {
                let start = self.rng.below(n);
                for offset in 0..n {
                    let victim = (start + offset) % n;
                    if victim == self.index {
                        continue;
                    }
                    match stealers[victim].steal() {
                        Steal::Success(job) => {
                            self.stats().worker_steals.add(1);
                            return Some(job);
                        }
                        Steal::Retry => retry = true,
                        Steal::Empty => {}
                    }
                }
            }
            if !retry {
                self.stats().failed_steals.add(1);
                return None;
            }
        }
    }

    /// Takes the job `id` back from this worker's deque to run it inline,
    /// running the jobs pushed after it on the way. Returns `false` if it was
    /// stolen instead, after waiting (and running other jobs) until `latch`,
    /// the stolen job's latch, is set.
    pub(crate) fn take_back(&self, latch: &Latch, id: *const ()) -> bool {
        loop {
            if latch.probe() {
                return false;
            }
            match self.deque.pop() {
                Some(job) if job.id() == id => {
                    self.stats().local_pops.add(1);
                    return true;
                }
                Some(job) => {
                    self.stats().local_pops.add(1);
                    self.execute(job);
                }
                None => {
                    // Mutant `take_back_skips_wait`: reports the job stolen
                    // without waiting for the thief to finish it.
                    #[cfg(not(stealpool_mutant = "take_back_skips_wait"))]
                    self.wait_until(latch);
                    return false;
                }
            }
        }
    }

    /// Runs other jobs until `probe` is done, sleeping when there are none.
    pub(crate) fn wait_until<P: Probe + ?Sized>(&self, probe: &P) {
        let mut idle_rounds = 0;
        while !probe.done() {
            if let Some(job) = self.find_work() {
                self.stop_searching();
                self.execute(job);
                idle_rounds = 0;
                continue;
            }
            if !self.searching.get() {
                self.searching.set(true);
                self.registry.sleep().start_searching();
            }
            if idle_rounds < IDLE_ROUNDS {
                backoff(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            let registry = &self.registry;
            registry
                .sleep()
                .sleep(self.index, || probe.done() || registry.has_work());
            idle_rounds = 0;
        }
        self.stop_searching();
    }

    /// Leaves the searching state, if in it (see `Sleep::stop_searching`).
    fn stop_searching(&self) {
        if self.searching.replace(false) {
            let registry = &self.registry;
            registry.sleep().stop_searching(|| registry.has_work());
        }
    }
}

/// Runs a builder hook on worker `index`, containing a panic: a worker that
/// unwound would strand the jobs in its deque.
fn run_hook(name: &str, hook: Option<&HookFn>, index: usize) {
    let Some(hook) = hook else { return };
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(index))) {
        crate::panic::report(&format!("the {name} hook"), Some(index), panic);
    }
}

/// Waits a little before the next search: exponentially longer spins at
/// first, then yields of the time slice.
// Under a model checker `SPIN_ROUNDS` is 0, which makes the comparison trivially false.
#[cfg_attr(any(loom, shuttle), allow(clippy::absurd_extreme_comparisons))]
fn backoff(round: u32) {
    if round < SPIN_ROUNDS {
        for _ in 0..1u32 << round {
            spin_hint();
        }
    } else {
        thread::yield_now();
    }
}
