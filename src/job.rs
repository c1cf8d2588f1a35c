//! Jobs: the unit of work that travels through the deques.
//!
//! A [`JobRef`] is a type-erased pointer to a job plus the function that runs
//! it, two words that fit in a deque slot. What the pointer points to, and who
//! owns that memory, is the business of the job kind that made it:
//!
//! - a job on the stack of a thread that waits for it (a map's helper ticket is
//!   reference counted instead, see `map.rs`; `join` will use a stack job), or
//! - a job on the heap that frees itself when run (`spawn`, `scope`).
//!
//! Every job kind upholds one rule: running it never unwinds. User code runs
//! under `catch_unwind`, and the payload travels to whoever waits for the
//! result. [`JobRef::execute`] aborts the process if a job breaks that rule,
//! because a worker that unwinds would strand the jobs in its deque.

use std::ptr::NonNull;

/// A job that can be run through a raw pointer.
pub(crate) trait Job {
    /// Runs the job.
    ///
    /// # Safety
    ///
    /// `this` points to a live job of this type, and each [`JobRef`] made from
    /// it is executed at most once.
    unsafe fn execute(this: *const Self);
}

/// A type-erased, `Send` handle to a job.
pub(crate) struct JobRef {
    data: NonNull<()>,
    run: unsafe fn(*const ()),
}

// SAFETY: a JobRef is only created (`JobRef::new`) for jobs whose contents may
// move to another thread: its creator promises the job is `Send` in spirit
// (closures and results are `Send`, shared state is `Sync`).
unsafe impl Send for JobRef {}

impl JobRef {
    /// Erases `job`'s type.
    ///
    /// # Safety
    ///
    /// `job` stays valid until the returned `JobRef` has been executed, and
    /// everything the job touches may be used from another thread.
    pub(crate) unsafe fn new<J: Job>(job: *const J) -> JobRef {
        unsafe fn run<J: Job>(data: *const ()) {
            // SAFETY: `data` was made from a `*const J` in `JobRef::new`, and
            // the caller of `execute` upholds `Job::execute`'s contract.
            unsafe { J::execute(data.cast::<J>()) }
        }
        JobRef {
            // SAFETY: callers pass pointers to live jobs, which are never null.
            data: unsafe { NonNull::new_unchecked(job.cast_mut().cast::<()>()) },
            run: run::<J>,
        }
    }

    /// Runs the job, aborting the process if it unwinds.
    ///
    /// # Safety
    ///
    /// The job is still alive and this `JobRef` was not executed before.
    #[inline]
    pub(crate) unsafe fn execute(self) {
        let guard = AbortOnUnwind;
        // SAFETY: the caller guarantees the job is alive and runs it once.
        unsafe { (self.run)(self.data.as_ptr()) };
        std::mem::forget(guard);
    }
}

/// Aborts the process when dropped during unwinding: the engine's own code
/// must never unwind, so reaching this is a bug in stealpool, not in the user.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("stealpool: a job unwound out of the scheduler; aborting");
        std::process::abort();
    }
}
