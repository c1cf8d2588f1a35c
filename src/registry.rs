//! The registry: the state that a pool's workers share, and the starting and
//! stopping of its threads.
//!
//! A `Pool` owns an `Arc<Registry>` and the join handles; every worker holds an
//! `Arc<Registry>` too, and so does any latch whose waiter is a worker (so a
//! setter on another pool can still wake it).

use crate::builder::{HookFn, PoolBuilder};
use crate::deque::{Deque, Injector, Stealer};
use crate::engagement::Engagement;
use crate::isolation::{self, Call};
use crate::job::JobRef;
use crate::sleep::Sleep;
use crate::stats::{Stats, WorkerStats};
use crate::sync::{fence, AtomicUsize, Ordering};
use crate::sync::{thread, Arc, AtomicBool};
use crate::worker_thread::WorkerThread;
use crate::BuildError;
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// The shared state of one pool.
pub(crate) struct Registry {
    /// Work submitted from outside the pool.
    injector: Injector<JobRef>,
    /// The stealing ends of the workers' deques, by worker index.
    stealers: Box<[Stealer<JobRef>]>,
    sleep: Sleep,
    /// Set once, when the pool is dropped: workers finish the queued work and
    /// exit.
    terminate: AtomicBool,
    /// Set when the pool starts dropping: `try_inject` refuses new work.
    closed: AtomicBool,
    /// Threads inside `try_inject`; the drop waits for them to leave.
    submitters: AtomicUsize,
    stats: Box<[CachePadded<WorkerStats>]>,
    /// How soon helpers start on calls that ask for help.
    engagement: CachePadded<Engagement>,
    /// How long an idle worker keeps searching after its last job before it
    /// sleeps (`PoolBuilder::idle_poll`; zero: it sleeps after its idle
    /// rounds).
    idle_poll: Duration,
    /// The builder's `on_thread_start` and `on_thread_exit` hooks.
    pub(crate) on_start: Option<Box<HookFn>>,
    pub(crate) on_exit: Option<Box<HookFn>>,
}

impl Registry {
    /// Builds the registry and starts its worker threads.
    ///
    /// On failure, the threads already started are stopped and joined before
    /// the error is returned (or the panic of a `thread_name` callback goes
    /// on).
    pub(crate) fn start(
        mut builder: PoolBuilder,
    ) -> Result<(Arc<Registry>, Vec<thread::JoinHandle<()>>), BuildError> {
        let threads = builder.resolved_threads()?;
        let deques: Vec<Deque<JobRef>> = (0..threads).map(|_| Deque::new_lifo()).collect();
        let registry = Arc::new(Registry {
            injector: Injector::new(),
            stealers: deques.iter().map(Deque::stealer).collect(),
            sleep: Sleep::new(threads),
            terminate: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            submitters: AtomicUsize::new(0),
            stats: (0..threads).map(|_| CachePadded::default()).collect(),
            engagement: CachePadded::default(),
            idle_poll: builder.idle_poll,
            on_start: builder.on_start.take(),
            on_exit: builder.on_exit.take(),
        });

        // Stops and joins the started threads if we leave early, whether by
        // an error or by a panicking `thread_name` callback.
        let mut started = StartGuard {
            registry: &registry,
            handles: Vec::with_capacity(threads),
        };
        for (index, deque) in deques.into_iter().enumerate() {
            let mut spawner = thread::Builder::new();
            if let Some(name) = &builder.thread_name {
                spawner = spawner.name(name(index));
            }
            if let Some(bytes) = builder.stack_size {
                spawner = spawner.stack_size(bytes);
            }
            let worker_registry = Arc::clone(&registry);
            let handle = spawner
                .spawn(move || WorkerThread::run(deque, worker_registry, index))
                .map_err(BuildError::Spawn)?;
            started.handles.push(handle);
        }
        let handles = std::mem::take(&mut started.handles);
        drop(started);
        Ok((registry, handles))
    }

    /// The number of worker threads.
    pub(crate) fn threads(&self) -> usize {
        self.stealers.len()
    }

    /// The idle-polling budget (see `WorkerThread::idle_until`).
    pub(crate) fn idle_poll(&self) -> Duration {
        self.idle_poll
    }

    pub(crate) fn sleep(&self) -> &Sleep {
        &self.sleep
    }

    pub(crate) fn injector(&self) -> &Injector<JobRef> {
        &self.injector
    }

    pub(crate) fn stealers(&self) -> &[Stealer<JobRef>] {
        &self.stealers
    }

    pub(crate) fn worker_stats(&self, index: usize) -> &WorkerStats {
        &self.stats[index]
    }

    /// Submits a job of `call` from outside the pool and wakes a worker for
    /// it (or pokes a waiter that accepts it).
    ///
    /// # Safety
    ///
    /// `call` is null or a live node that stays alive until this returns.
    pub(crate) unsafe fn inject(&self, job: JobRef, call: *const Call) {
        self.injector.push(job);
        // SAFETY: forwarded to the caller.
        unsafe { self.announce(1, call) };
    }

    /// Announces `jobs` jobs of `call` just made visible (on the injector or
    /// a worker's deque): wakes idle workers for them and pokes the waiters
    /// whose wait accepts them (`Sleep::new_work_for`).
    ///
    /// # Safety
    ///
    /// As [`inject`](Self::inject).
    #[inline]
    pub(crate) unsafe fn announce(&self, jobs: usize, call: *const Call) {
        // SAFETY: forwarded to the caller.
        self.sleep
            .new_work_for(jobs, |shown| shown.judge(unsafe { isolation::walk(call) }));
    }

    /// Submits several jobs of `call` from outside the pool at once (a wave
    /// of a call's tickets) and wakes workers for all of them in one step.
    ///
    /// # Safety
    ///
    /// As [`inject`](Self::inject).
    pub(crate) unsafe fn inject_wave(
        &self,
        jobs: impl IntoIterator<Item = JobRef>,
        call: *const Call,
    ) {
        let mut pushed = 0;
        for job in jobs {
            self.injector.push(job);
            pushed += 1;
        }
        // SAFETY: forwarded to the caller.
        unsafe { self.announce(pushed, call) };
    }

    /// Submits a job of `call`: on the calling worker's deque if it is one of
    /// this pool's workers (where other workers may steal it), otherwise on
    /// the injector.
    ///
    /// # Safety
    ///
    /// As [`inject`](Self::inject).
    pub(crate) unsafe fn submit(&self, job: JobRef, call: *const Call) {
        // SAFETY: forwarded to the caller.
        unsafe {
            match WorkerThread::current_in(self) {
                Some(worker) => worker.push(job, call),
                None => self.inject(job, call),
            }
        }
    }

    /// Submits a job from a thread that may not hold the pool (an `Imap`
    /// that outlived it): refused, and handed back, once the pool has started
    /// dropping.
    ///
    /// A worker of the pool that runs its `on_thread_exit` hook counts as
    /// such a thread: it has drained the queues for the last time, so a job
    /// on its deque would never run. The pool is closed by then (hooks run
    /// when the pool is dropped, after `close`; or when its build failed,
    /// when no `Imap` of it can exist), so the job is handed back.
    ///
    /// # Safety
    ///
    /// As [`inject`](Self::inject).
    pub(crate) unsafe fn try_submit(&self, job: JobRef, call: *const Call) -> Result<(), JobRef> {
        // Mutant `exiting_worker_pushes`: an exiting worker's hook pushes on
        // its own deque, which nobody drains any more.
        #[cfg(not(stealpool_mutant = "exiting_worker_pushes"))]
        let worker = WorkerThread::current_in(self).filter(|w| !w.exiting());
        #[cfg(stealpool_mutant = "exiting_worker_pushes")]
        let worker = WorkerThread::current_in(self);
        if let Some(worker) = worker {
            // A worker of the pool is running, so the pool is not gone; and a
            // worker drains its own deque before it exits.
            // SAFETY: forwarded to the caller.
            unsafe { worker.push(job, call) };
            return Ok(());
        }
        // Relaxed increment, then a SeqCst fence, pairing with the fence in
        // `close`: either `close` sees us counted and waits until we have
        // pushed (so the workers, not yet told to stop, run the job), or we
        // see `closed` here and hand the job back. (Mutant `submit_no_fence`
        // leaves the fence out.)
        self.submitters.fetch_add(1, Ordering::Relaxed);
        #[cfg(not(stealpool_mutant = "submit_no_fence"))]
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence.
        let result = if self.closed.load(Ordering::Relaxed) {
            Err(job)
        } else {
            // SAFETY: forwarded to the caller.
            unsafe { self.inject(job, call) };
            Ok(())
        };
        // Release: the push above happens before `close` sees the count drop.
        self.submitters.fetch_sub(1, Ordering::Release);
        result
    }

    /// Refuses further `try_submit`s and waits for those under way, so that
    /// everything they submitted is queued before the workers are told to
    /// stop.
    pub(crate) fn close(&self) {
        // Relaxed store, then a SeqCst fence: see `try_submit`. (Mutant
        // `close_no_fence` leaves the fence out.)
        self.closed.store(true, Ordering::Relaxed);
        #[cfg(not(stealpool_mutant = "close_no_fence"))]
        fence(Ordering::SeqCst);
        // Acquire: pairs with the Release decrement in `try_submit`. The wait
        // is a handful of instructions long (a push), so yielding is enough.
        // (Mutant `close_skips_submitters` does not wait: a submission under
        // way can land after the workers have exited.)
        #[cfg(not(stealpool_mutant = "close_skips_submitters"))]
        while self.submitters.load(Ordering::Acquire) != 0 {
            thread::yield_now();
        }
    }

    /// Whether any queue of the pool holds a job. A racy snapshot: it is only
    /// conclusive after the sleep protocol's fence (see `sleep.rs`).
    pub(crate) fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Whether the pool is shutting down.
    pub(crate) fn terminating(&self) -> bool {
        // Relaxed: a worker acts on the flag only to leave its main loop, and
        // then drains the queues itself; no data is published through it.
        self.terminate.load(Ordering::Relaxed)
    }

    /// Tells the workers to finish the queued work and exit.
    pub(crate) fn terminate(&self) {
        // Relaxed: `wake_all` then takes each sleeper's slot mutex, which
        // orders this store before the sleeper's re-check (see
        // `Sleep::wake_all`); a worker that is not asleep reads the flag in
        // its loop and needs no ordering (see `terminating`).
        self.terminate.store(true, Ordering::Relaxed);
        self.sleep.wake_all();
    }

    /// Sums the per-worker counters.
    pub(crate) fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for worker in self.stats.iter() {
            worker.add_to(&mut total);
        }
        total.parks = self.sleep.parks();
        total.wakeups = self.sleep.wakeups();
        self.engagement.add_to(&mut total);
        total
    }

    /// The engagement totals, to which finished calls add their figures.
    pub(crate) fn engagement(&self) -> &Engagement {
        &self.engagement
    }

    /// Whether `self` and `other` are the same registry.
    pub(crate) fn same(&self, other: &Registry) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Joins the threads started so far unless defused by taking `handles`.
struct StartGuard<'a> {
    registry: &'a Arc<Registry>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        self.registry.terminate();
        for handle in self.handles.drain(..) {
            // A worker never unwinds (jobs abort instead), so `join` only
            // fails if the thread could not run at all: nothing to report.
            let _ = handle.join();
        }
    }
}
