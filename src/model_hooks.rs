//! Hooks for the model checkers (the loom models in `loom-tests/`): compiled only under
//! `--cfg loom`, hidden from the documentation, and no part of the API.
//!
//! They are deliberately thin. A model builds a real [`Pool`] and uses its
//! public methods wherever they reach the code under test (a fixed-chunk `map` (`options().chunk_size(n)`),
//! dropping the pool); these hooks only add what the public API cannot
//! express: a job handed to the pool's injector from outside, exactly as the
//! engine's own entry points hand theirs (`Registry::inject`: push on the
//! injector, then `Sleep::new_work`), that counts how often it was executed.
//!
//! The submitter waits for such a job on a mutex and condition variable of
//! its own, not on a [`Latch`](crate::latch::Latch): a latch wakes a thread
//! outside the pool with `unpark`, and loom 0.7 aborts the model when an
//! `unpark` reaches a thread that is blocked on anything but `park` (a mutex,
//! a join; loom issue #249), which a submitter that goes on to push more work
//! or drop the pool can be. The latch's park/unpark path is modelled where it
//! matters: by the models whose caller runs a fixed-chunk `map` (`options().chunk_size(n)`) or `join` on a
//! thread of its own (`loom-tests/src/support.rs`, `from_outside`).

use crate::isolation::Waiting;
use crate::job::{run_in_call, Declined, Job, JobRef};
use crate::sync::{lock, wait, AtomicUsize, Condvar, Mutex, Ordering};
use crate::worker_thread::WorkerThread;
use crate::Pool;

pub use crate::MUTANT;

/// A job for the models: runs its closure on its first execution, counts every
/// execution (a broken queue may hand one job out twice), and then signals
/// whoever waits for it.
pub struct CountedJob<'a> {
    body: Box<dyn Fn() + Send + Sync + 'a>,
    runs: AtomicUsize,
    /// Set (under the mutex) when the first execution has finished.
    done: Mutex<bool>,
    finished: Condvar,
}

impl<'a> CountedJob<'a> {
    /// A job that runs `body`. `body` must not panic (jobs never unwind: the
    /// process would abort).
    pub fn new(body: impl Fn() + Send + Sync + 'a) -> CountedJob<'a> {
        CountedJob {
            body: Box::new(body),
            runs: AtomicUsize::new(0),
            done: Mutex::new(false),
            finished: Condvar::new(),
        }
    }

    /// How many times a worker executed this job so far.
    pub fn runs(&self) -> usize {
        // Acquire: pairs with the executions' AcqRel increments.
        self.runs.load(Ordering::Acquire)
    }

    /// Blocks until the job's first execution has finished. The caller must
    /// not be a worker (it would not run jobs meanwhile).
    pub fn wait(&self) {
        let mut done = lock(&self.done);
        while !*done {
            done = wait(&self.finished, done);
        }
    }
}

impl Job for CountedJob<'_> {
    unsafe fn execute(
        this: *const Self,
        worker: Option<&WorkerThread>,
        waiting: Waiting,
    ) -> Result<(), Declined> {
        // A job of no call: what an idle worker runs, and a wait sets aside.
        // SAFETY: no call to keep alive.
        unsafe { run_in_call(std::ptr::null(), worker, waiting, || Self::run(this)) }
    }
}

impl CountedJob<'_> {
    fn run(this: *const Self) {
        // SAFETY: `inject`'s caller keeps the job alive while it can run.
        let job = unsafe { &*this };
        // AcqRel: two executions of one job see each other; only the first
        // runs the body and signals.
        if job.runs.fetch_add(1, Ordering::AcqRel) == 0 {
            (job.body)();
            // Notify with the lock held: the waiter may free the job as soon
            // as it sees `done`, which it cannot before we unlock.
            let mut done = lock(&job.done);
            *done = true;
            job.finished.notify_all();
            drop(done);
        }
    }
}

/// Submits `job` to `pool` through its injector, as the engine does for every
/// caller outside the pool: push on the injector, then wake a worker through
/// the sleep protocol (`Registry::inject`). Any thread may call it.
///
/// # Safety
///
/// `job` stays alive, and is not moved, until no execution of it can run any
/// more: until `pool` has been dropped (which joins every worker), or, for a
/// queue that hands each job out once, until [`CountedJob::wait`] returned.
pub unsafe fn inject(pool: &Pool, job: &CountedJob<'_>) {
    // SAFETY: the caller keeps the job alive while any worker can run it.
    let job_ref = unsafe { JobRef::new(job as *const CountedJob<'_>) };
    // SAFETY: a job of no call.
    unsafe { pool.registry().inject(job_ref, std::ptr::null()) };
}

/// The sleep protocol of one pool alone, without workers around it: for the
/// model of a wave's wake-ups, which must see one publish wake every
/// sleeper its jobs need, with no baton passed by a searcher to help.
pub struct Sleepers {
    sleep: crate::sleep::Sleep,
}

impl Sleepers {
    /// The sleep state of a pool of `threads` workers, all awake.
    pub fn new(threads: usize) -> Sleepers {
        Sleepers {
            sleep: crate::sleep::Sleep::new(threads),
        }
    }

    /// Worker `index` found nothing to do: it counts as searching, then
    /// goes to sleep unless `has_news` says otherwise once the sleep is
    /// announced. Returns whether it blocked (and was woken).
    pub fn idle(&self, index: usize, has_news: impl FnOnce() -> bool) -> bool {
        self.sleep.start_searching();
        self.sleep.sleep(index, has_news)
    }

    /// A publisher made `jobs` jobs visible at once (`Sleep::new_work_for`,
    /// as a wave of tickets is published). Returns how many it woke.
    pub fn publish(&self, jobs: usize) -> usize {
        self.sleep
            .new_work_for(jobs, |_| crate::isolation::Verdict::Accepts)
    }
}
