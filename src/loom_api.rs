//! Hooks for the loom models in `loom-tests/`: compiled only under
//! `--cfg loom`, hidden from the documentation, and no part of the API.
//!
//! They are deliberately thin. A model builds a real [`Pool`] and uses its
//! public methods wherever they reach the code under test (`map_chunked`,
//! dropping the pool); these hooks only add what the public API cannot
//! express: a job handed to the pool's injector from outside, exactly as the
//! engine's own entry points hand theirs (`Registry::inject`: push on the
//! injector, then `Sleep::new_work`), that counts how often it was executed and
//! sets a real [`Latch`] that the submitting thread waits on (parking, as any
//! thread outside the pool does).

use crate::job::{Job, JobRef};
use crate::latch::{Latch, Waiter};
use crate::sync::{AtomicUsize, Ordering};
use crate::Pool;

/// A job for the models: runs its closure on its first execution, counts every
/// execution (a broken queue may hand one job out twice), and sets a latch
/// that the thread which made the job waits on.
pub struct CountedJob<'a> {
    body: Box<dyn Fn() + Send + Sync + 'a>,
    runs: AtomicUsize,
    latch: Latch,
}

impl<'a> CountedJob<'a> {
    /// A job that runs `body`, awaited by the calling thread, which must not
    /// be a worker of any pool. `body` must not panic (jobs never unwind; the
    /// process would abort).
    pub fn new(body: impl Fn() + Send + Sync + 'a) -> CountedJob<'a> {
        CountedJob {
            body: Box::new(body),
            runs: AtomicUsize::new(0),
            latch: Latch::new(Waiter::current()),
        }
    }

    /// How many times a worker executed this job so far.
    pub fn runs(&self) -> usize {
        // Acquire: pairs with the executions' AcqRel increments.
        self.runs.load(Ordering::Acquire)
    }

    /// Whether the job's latch is set (its first execution finished).
    pub fn is_done(&self) -> bool {
        self.latch.probe()
    }

    /// Blocks (parks) until the job's first execution has finished. Only the
    /// thread that made the job may wait on it.
    pub fn wait(&self) {
        self.latch.wait();
    }
}

impl Job for CountedJob<'_> {
    unsafe fn execute(this: *const Self) {
        // SAFETY: `inject`'s caller keeps the job alive while it can run.
        let job = unsafe { &*this };
        // AcqRel: two executions of one job see each other; only the first
        // runs the body and sets the latch (which may be set only once).
        if job.runs.fetch_add(1, Ordering::AcqRel) == 0 {
            (job.body)();
            // SAFETY: the latch is alive (see above) and set only here.
            unsafe { Latch::set(&job.latch) };
        }
    }
}

/// Submits `job` to `pool` from outside, as every entry point of the engine
/// does for a caller that is not one of its workers: push on the injector,
/// then wake a worker through the sleep protocol (`Registry::inject`).
///
/// # Safety
///
/// `job` stays alive, and is not moved, until `pool` has been dropped (which
/// joins every worker, so no execution of the job can still be running).
pub unsafe fn inject(pool: &Pool, job: &CountedJob<'_>) {
    // SAFETY: the caller keeps the job alive while any worker can run it.
    let job_ref = unsafe { JobRef::new(job as *const CountedJob<'_>) };
    pool.registry().inject(job_ref);
}
