//! Jobs: the unit of work that travels through the deques.
//!
//! A [`JobRef`] is a type-erased pointer to a job plus the function that runs
//! it, two words that fit in a deque slot. What the pointer points to, and who
//! owns that memory, is the business of the job kind that made it:
//!
//! - a [`StackJob`] on the stack of the thread that waits for it (`apply`,
//!   a promoted join's `b`),
//! - a [`HeapJob`] that frees itself when run (`spawn`, `scope`), or
//! - a map's helper ticket, reference counted (`drive.rs`).
//!
//! Every job kind upholds one rule: running it never unwinds. User code runs
//! under `catch_unwind`, and the payload travels to whoever waits for the
//! result. [`JobRef::execute`] aborts the process if a job breaks that rule
//! (`crate::panic::AbortOnUnwind`), because a worker that unwinds would
//! strand the jobs in its deque.

use crate::panic::{AbortOnUnwind, Panic};
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

    /// The job's address, to recognize a job popped back from a deque.
    pub(crate) fn id(&self) -> *const () {
        self.data.as_ptr()
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

/// What a [`StackJob`] runs: a closure, or a type that stands for one (a
/// join's `b` that needs the worker it runs on, see `worker.rs`).
pub(crate) trait Body<R>: Send {
    /// Runs it.
    fn call(self) -> R;
}

impl<R, F> Body<R> for F
where
    F: FnOnce() -> R + Send,
{
    #[inline(always)]
    fn call(self) -> R {
        self()
    }
}

/// What a job produced.
pub(crate) enum JobResult<R> {
    /// Not run (yet).
    None,
    /// It returned.
    Ok(R),
    /// It panicked, with this payload.
    Panic(Panic),
}

impl<R> JobResult<R> {
    /// Runs `f`, catching a panic.
    pub(crate) fn call(f: impl FnOnce() -> R) -> JobResult<R> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(value) => JobResult::Ok(value),
            Err(panic) => JobResult::Panic(panic),
        }
    }

    /// The value, or the panic resumed on this thread.
    pub(crate) fn into_value(self) -> R {
        match self {
            JobResult::Ok(value) => value,
            JobResult::Panic(panic) => std::panic::resume_unwind(panic),
            JobResult::None => unreachable!("a job's result was taken before it ran"),
        }
    }
}

/// A job that lives on the stack of the thread that waits for it: the closure
/// goes in, the result comes out, and a latch says when.
///
/// The waiter must not leave the frame holding the job until the latch is set
/// (or it has taken the job back unexecuted), which is what makes handing a
/// pointer to the stack to another thread sound.
pub(crate) struct StackJob<F, R> {
    func: crate::sync::UnsafeCell<Option<F>>,
    result: crate::sync::UnsafeCell<JobResult<R>>,
    pub(crate) latch: crate::latch::Latch,
}

impl<F, R> StackJob<F, R>
where
    F: Body<R>,
    R: Send,
{
    pub(crate) fn new(func: F, latch: crate::latch::Latch) -> Self {
        StackJob {
            func: crate::sync::UnsafeCell::new(Some(func)),
            result: crate::sync::UnsafeCell::new(JobResult::None),
            latch,
        }
    }

    /// A `JobRef` to this job.
    ///
    /// # Safety
    ///
    /// The job stays where it is until its latch is set or the `JobRef` is
    /// known never to run (taken back from the deque).
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        // SAFETY: forwarded to the caller.
        unsafe { JobRef::new(self) }
    }

    /// Takes the closure back to run it on this thread (the job was not
    /// executed through its `JobRef`).
    pub(crate) fn take_func(&self) -> F {
        // SAFETY: exactly one party takes the closure: the thread executing
        // the job through its `JobRef`, or the owner when that `JobRef` can
        // no longer run (never pushed, or popped back by the owner).
        match self.func.with_mut(|func| unsafe { (*func).take() }) {
            Some(func) => func,
            None => unreachable!("a stack job's closure was taken twice"),
        }
    }

    /// The result, once the latch is set.
    pub(crate) fn into_result(self) -> JobResult<R> {
        // SAFETY: the latch is set (the executing thread is done with the
        // cell), or the job never ran and the cell holds `None`.
        self.result
            .with_mut(|result| unsafe { std::mem::replace(&mut *result, JobResult::None) })
    }
}

impl<F, R> Job for StackJob<F, R>
where
    F: Body<R>,
    R: Send,
{
    unsafe fn execute(this: *const Self) {
        // SAFETY: the owner keeps the job alive until the latch is set below.
        let this = unsafe { &*this };
        let func = this.take_func();
        let result = JobResult::call(|| func.call());
        // SAFETY: only the executing thread writes the result, before the
        // latch publishes it (Release) to the owner.
        this.result.with_mut(|cell| unsafe { *cell = result });
        // SAFETY: the job (and its latch) is alive until the latch is set.
        unsafe { crate::latch::Latch::set(&this.latch) };
    }
}

/// A job on the heap that owns its closure and frees itself when run. The
/// closure must not unwind (the entry points wrap user code in
/// `catch_unwind`).
pub(crate) struct HeapJob<F> {
    func: F,
}

impl<F> HeapJob<F>
where
    F: FnOnce() + Send,
{
    /// Boxes `func` as a job.
    ///
    /// # Safety
    ///
    /// Everything `func` borrows outlives the job's execution (`'static`
    /// closures, or a scope that waits for its jobs).
    pub(crate) unsafe fn into_job_ref(func: F) -> JobRef {
        let job = Box::into_raw(Box::new(HeapJob { func }));
        // SAFETY: the box lives until `execute` frees it, exactly once.
        unsafe { JobRef::new(job) }
    }
}

impl<F> Job for HeapJob<F>
where
    F: FnOnce() + Send,
{
    unsafe fn execute(this: *const Self) {
        // SAFETY: made by `Box::into_raw` in `into_job_ref`, executed once.
        let job = unsafe { Box::from_raw(this.cast_mut()) };
        (job.func)();
    }
}
