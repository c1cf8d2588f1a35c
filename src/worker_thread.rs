//! `WorkerThread`, the engine's side of a worker thread: its main loop, the
//! find-work order, and waiting on a latch while running other jobs of the
//! awaited call (`isolation.rs`).

use crate::builder::HookFn;
use crate::deque::{Deque, Steal};
use crate::heartbeat::{JoinFrame, JoinStack};
use crate::isolation::{Call, EnclosingWait, Verdict, Waiting};
use crate::job::JobRef;
use crate::latch::{Latch, Probe};
use crate::registry::Registry;
use crate::rng::XorShift;
use crate::stats::WorkerStats;
use crate::sync::{spin_hint, thread, thread_local, Arc, Instant};
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
    /// The call this worker entered last (null: none), by `enter`. The
    /// call it works inside is that, or the newest join it made since
    /// (`call`).
    entered: Cell<*const Call>,
    /// What this worker's innermost wait accepts (`Idle` outside waits).
    waiting: Cell<Waiting>,
    /// The innermost foreign wait under way on this worker's stack, or null
    /// (see `isolation::EnclosingWait`).
    foreign: Cell<*const EnclosingWait>,
}

/// Restores a worker's call when the code that entered another one ends.
pub(crate) struct Entered<'a> {
    worker: &'a WorkerThread,
    outer: *const Call,
    outer_base: *const JoinFrame,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.worker.entered.set(self.outer);
        self.worker.joins.leave_context(self.outer_base);
    }
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
            entered: Cell::new(std::ptr::null()),
            waiting: Cell::new(Waiting::Idle),
            foreign: Cell::new(ptr::null()),
        };
        CURRENT.with(|current| current.set(&worker));
        run_hook(
            "on_thread_start",
            worker.registry.on_start.as_deref(),
            index,
        );
        worker.idle_until(&Terminating(&worker.registry));
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

    /// The call this worker works inside, or null: the newest join it made
    /// since it last entered a call (whose node this makes if needed), else
    /// the call it entered. The parent of the calls it makes.
    #[inline]
    pub(crate) fn call(&self) -> *const Call {
        self.joins.current_call(self.entered.get())
    }

    /// The call this worker entered last (see `JoinStack::beat`).
    #[inline(always)]
    pub(crate) fn entered(&self) -> *const Call {
        self.entered.get()
    }

    /// Works inside `call` until the returned guard drops.
    #[inline]
    pub(crate) fn enter(&self, call: *const Call) -> Entered<'_> {
        let outer_base = self.joins.enter_context(self.entered.get());
        Entered {
            worker: self,
            outer: self.entered.replace(call),
            outer_base,
        }
    }

    fn stats(&self) -> &WorkerStats {
        self.registry.worker_stats(self.index)
    }

    /// Whether an early offer of a join's `b` could be taken at once:
    /// another worker is idle (searching, or asleep: the offer's push wakes
    /// it) and nothing offered before still waits in this worker's deque.
    /// Reads only.
    pub(crate) fn idle_thief(&self) -> bool {
        self.deque.is_empty() && self.registry.sleep().any_idle()
    }

    /// Pushes a job of `call` on this worker's deque, where thieves can take
    /// it.
    ///
    /// # Safety
    ///
    /// `call` is null or a live node that stays alive until this returns
    /// (the pusher works inside it or owns it).
    pub(crate) unsafe fn push(&self, job: JobRef, call: *const Call) {
        self.deque.push(job);
        // SAFETY: forwarded to the caller.
        unsafe { self.registry.announce(1, call) };
    }

    /// Pushes several jobs of `call` at once (a wave of a call's tickets)
    /// and wakes workers for all of them in one step
    /// (`Sleep::new_work_for`).
    ///
    /// # Safety
    ///
    /// As [`push`](Self::push).
    pub(crate) unsafe fn push_wave(
        &self,
        jobs: impl IntoIterator<Item = JobRef>,
        call: *const Call,
    ) {
        let mut pushed = 0;
        for job in jobs {
            self.deque.push(job);
            pushed += 1;
        }
        // SAFETY: forwarded to the caller.
        unsafe { self.registry.announce(pushed, call) };
    }

    /// Offers a job to this worker in a wait that accepts `waiting`: runs it,
    /// or sets it aside if the wait does not accept it. Returns whether it
    /// ran.
    #[inline]
    fn offer(&self, job: JobRef, waiting: Waiting) -> bool {
        self.joins.job_starts();
        // SAFETY: every JobRef in the queues is alive until it runs, and a
        // job leaves the queues exactly once (pop or successful steal); one
        // that declines goes back to a queue untouched.
        match unsafe { job.execute(Some(self), waiting) } {
            // Counted by the job as it starts (`count_job_run`): a caller
            // that sees its call finished sees the helper's job counted.
            Ok(()) => true,
            Err((job, chain)) => {
                self.set_aside(job, &chain);
                false
            }
        }
    }

    /// Counts a job that this worker runs, as it starts (before it can set
    /// the latch of the call it helps).
    #[inline]
    pub(crate) fn count_job_run(&self) {
        self.stats().jobs_run.add(1);
    }

    /// Runs a job that any wait accepts (outside every wait).
    #[inline]
    fn execute(&self, job: JobRef) {
        let ran = self.offer(job, Waiting::Idle);
        debug_assert!(ran, "a job declined a worker outside every wait");
    }

    /// Sets aside a job that this worker's wait does not accept: it goes on
    /// the injector, and the sleep protocol wakes an idle worker or pokes a
    /// waiter that accepts it (`chain`: its call's addresses, copied while
    /// we held it; once it is on the injector another worker may run it and
    /// its call may end).
    #[cold]
    fn set_aside(&self, job: JobRef, chain: &[*const Call]) {
        self.stats().set_aside.add(1);
        self.registry.injector().push(job);
        // Mutant `set_aside_unannounced`: the job goes back on the injector
        // without waking or poking anyone.
        #[cfg(not(stealpool_mutant = "set_aside_unannounced"))]
        self.registry
            .sleep()
            .new_work(|shown| shown.judge(chain.iter().copied()));
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
                    // `batch_not_announced` skips it). A waiter that searched
                    // meanwhile missed its own job in the batch the same way.
                    #[cfg(not(stealpool_mutant = "batch_not_announced"))]
                    if !self.deque.is_empty() {
                        // We do not know the batch's calls: every waiter is
                        // poked (a spurious wake-up for those whose jobs are
                        // not in it).
                        self.registry.sleep().new_work(|_| Verdict::Accepts);
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
    /// running (or setting aside) the jobs pushed after it on the way.
    /// Returns `false` if it was stolen instead, after waiting (and running
    /// jobs that `waiting`, the join's rule, accepts) until `latch`, the
    /// stolen job's latch, is set.
    pub(crate) fn take_back(&self, latch: &Latch, id: *const (), waiting: Waiting) -> bool {
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
                    self.offer(job, waiting);
                }
                None => {
                    // Mutant `take_back_skips_wait`: reports the job stolen
                    // without waiting for the thief to finish it.
                    #[cfg(not(stealpool_mutant = "take_back_skips_wait"))]
                    self.wait_until(latch, waiting);
                    return false;
                }
            }
        }
    }

    /// Waits until `probe` is done, running meanwhile the jobs that
    /// `waiting` accepts (any job for [`Waiting::Idle`]), sleeping when there
    /// are none.
    pub(crate) fn wait_until<P: Probe + ?Sized>(&self, probe: &P, waiting: Waiting) {
        if let Waiting::Idle = waiting {
            return self.idle_until(probe);
        }
        if probe.done() {
            return;
        }
        let sleep = self.registry.sleep();
        // A foreign wait refuses the jobs of the call we work in and of its
        // ancestors, and what the foreign waits below it refuse; the foreign
        // waits that the jobs it runs make refuse what it does. Its frame
        // lives here, and `foreign` points to it until the wait ends. (No
        // guard restores `foreign`, `waiting` or the showing: a wait does
        // not unwind, since jobs catch their panics and abort the process
        // rather than unwind out of the scheduler.)
        let below = self.foreign.get();
        let this_wait;
        let waiting = match waiting {
            Waiting::Foreign(awaited, _) => {
                this_wait = EnclosingWait {
                    // Mutant `foreign_wait_ignores_its_context`: the awaited
                    // call's parent instead, which says nothing for a wait
                    // on a task or an `Imap` (root calls).
                    #[cfg(not(stealpool_mutant = "foreign_wait_ignores_its_context"))]
                    inside: self.call(),
                    // SAFETY: the awaited call is alive while we wait.
                    #[cfg(stealpool_mutant = "foreign_wait_ignores_its_context")]
                    inside: unsafe { awaited.as_ref() }.map_or(ptr::null(), Call::parent),
                    below,
                };
                self.foreign.set(&this_wait);
                Waiting::Foreign(awaited, &this_wait)
            }
            other => other,
        };
        // Show the wait to publishers, who poke us for jobs we accept. A
        // wait inside a job run by an outer wait replaces the outer one's
        // showing, and restores it when it ends.
        let outer = self.waiting.replace(waiting);
        // SAFETY: the awaited call is alive while we wait for it.
        sleep.show_waiting(
            self.index,
            &unsafe { waiting.shown() },
            // SAFETY: as above.
            |list| unsafe { waiting.enclosing_beyond(list) },
            matches!(outer, Waiting::Idle),
        );
        let mut idle_rounds = 0;
        while !probe.done() {
            sleep.take_poke(self.index);
            if self.help(waiting) {
                idle_rounds = 0;
                continue;
            }
            if idle_rounds < IDLE_ROUNDS {
                backoff(idle_rounds);
                idle_rounds += 1;
                continue;
            }
            sleep.sleep_waiting(self.index, || probe.done());
            idle_rounds = 0;
        }
        self.foreign.set(below);
        self.waiting.set(outer);
        match outer {
            Waiting::Idle => sleep.hide_waiting(self.index),
            // SAFETY: the outer wait's call is alive: that wait is below us
            // on this thread's stack.
            outer => sleep.show_waiting(
                self.index,
                &unsafe { outer.shown() },
                // SAFETY: as above.
                |list| unsafe { outer.enclosing_beyond(list) },
                false,
            ),
        }
    }

    /// One search for a job that `waiting` accepts, which it runs: its own
    /// deque (newest first; a job it declines there is set aside and the
    /// next one popped), then the injector once round, one job at a time (no
    /// batch: a waiter would only set most of it aside), then each other
    /// worker's deque, oldest first, until a job it accepts.
    /// Returns whether a job ran.
    #[cfg_attr(stealpool_mutant = "waiter_skips_queues", allow(unreachable_code))]
    fn help(&self, waiting: Waiting) -> bool {
        while let Some(job) = self.deque.pop() {
            self.stats().local_pops.add(1);
            if self.offer(job, waiting) {
                return true;
            }
        }
        // Mutant `waiter_skips_queues`: a waiter runs only what its own
        // deque holds.
        #[cfg(stealpool_mutant = "waiter_skips_queues")]
        return false;
        // The injector once round: a job set aside goes to its back, so
        // taking as many jobs as it held looks at each of them once. (One
        // job a search would let a waiter go to sleep with its own job
        // behind a few dozen foreign ones, which a poke never reaches again:
        // the cross-pool scope test deadlocked that way.)
        let injector = self.registry.injector();
        for _ in 0..injector.len().max(1) {
            let Some(job) = steal_one(|| injector.steal()) else {
                break;
            };
            self.stats().injector_steals.add(1);
            if self.offer(job, waiting) {
                return true;
            }
        }
        let stealers = self.registry.stealers();
        let n = stealers.len();
        let start = self.rng.below(n);
        for offset in 0..n {
            let victim = (start + offset) % n;
            if victim == self.index {
                continue;
            }
            // Until a job we accept, or the deque is empty: the jobs we
            // decline go to the injector, and our own job may sit behind
            // them. One steal per search let a waiter go to sleep with its
            // job behind a few dozen foreign ones in the deque of a worker
            // blocked (on a user's lock) for good (the stress test hung so;
            // mutant `waiter_steals_once_per_victim` brings that back).
            #[cfg(not(stealpool_mutant = "waiter_steals_once_per_victim"))]
            while let Some(job) = steal_one(|| stealers[victim].steal()) {
                self.stats().worker_steals.add(1);
                if self.offer(job, waiting) {
                    return true;
                }
            }
            #[cfg(stealpool_mutant = "waiter_steals_once_per_victim")]
            if let Some(job) = steal_one(|| stealers[victim].steal()) {
                self.stats().worker_steals.add(1);
                if self.offer(job, waiting) {
                    return true;
                }
            }
        }
        self.stats().failed_steals.add(1);
        false
    }

    /// Runs other jobs until `probe` is done, sleeping when there are none:
    /// the main loop, outside every wait.
    ///
    /// With an idle-polling budget (`PoolBuilder::idle_poll`), a worker that
    /// found nothing goes on searching, yielding between searches, until the
    /// budget has passed since its last job (or since it became idle), and
    /// only then sleeps. It stays a searcher all that time, so the sleep
    /// protocol is the same as for a worker in its idle rounds: a publisher
    /// that sees a searcher leaves the wake-up to it, and the searcher that
    /// finds the job passes the baton on. (Under a model checker the clock
    /// says every budget is spent, so the models see the protocol without
    /// polling.)
    fn idle_until<P: Probe + ?Sized>(&self, probe: &P) {
        let budget = self.registry.idle_poll();
        let polls = !budget.is_zero();
        let mut last_job = polls.then(Instant::now);
        let mut idle_rounds = 0;
        while !probe.done() {
            if let Some(job) = self.find_work() {
                self.stop_searching();
                self.execute(job);
                if polls {
                    last_job = Some(Instant::now());
                }
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
            if last_job.is_some_and(|at| at.elapsed() < budget) {
                thread::yield_now();
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

/// Steals one job from a queue, retrying while the queue answers `Retry`.
fn steal_one(steal: impl Fn() -> Steal<JobRef>) -> Option<JobRef> {
    loop {
        match steal() {
            Steal::Success(job) => return Some(job),
            Steal::Empty => return None,
            Steal::Retry => spin_hint(),
        }
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
