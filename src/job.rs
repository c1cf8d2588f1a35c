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
//! Every job belongs to a call (`isolation.rs`) and is offered to a worker
//! with the worker's waiting rule: a job whose call the rule does not accept
//! declines to run, untouched, and the worker sets it aside. A job that runs
//! makes its worker work inside its call while it runs.
//!
//! Every job kind upholds one rule: running it never unwinds. User code runs
//! under `catch_unwind`, and the payload travels to whoever waits for the
//! result. [`JobRef::execute`] aborts the process if a job breaks that rule
//! (`crate::panic::AbortOnUnwind`), because a worker that unwinds would
//! strand the jobs in its deque.

use crate::isolation::{chain_of, Call, Waiting};
use crate::panic::{AbortOnUnwind, Panic};
use crate::worker_thread::WorkerThread;
use std::ptr::NonNull;

/// The addresses of a declined job's call chain (`isolation::chain_of`),
/// copied while the job was still held.
pub(crate) type Declined = Vec<*const Call>;

/// A job that can be run through a raw pointer.
pub(crate) trait Job {
    /// Runs the job on `worker` (`None`: a thread outside the pool, which
    /// offers it with [`Waiting::Idle`]) if `waiting` accepts its call;
    /// otherwise leaves it untouched and returns its call chain.
    ///
    /// # Safety
    ///
    /// `this` points to a live job of this type, and each [`JobRef`] made from
    /// it runs at most once (a declined job has not run).
    unsafe fn execute(
        this: *const Self,
        worker: Option<&WorkerThread>,
        waiting: Waiting,
    ) -> Result<(), Declined>;
}

/// Runs `f` inside `call` on `worker`, if `waiting` accepts `call`: the
/// common part of every job kind whose call is known without running it.
///
/// # Safety
///
/// `call` is null or a live node, alive until `f` returns.
#[inline]
pub(crate) unsafe fn run_in_call(
    call: *const Call,
    worker: Option<&WorkerThread>,
    waiting: Waiting,
    f: impl FnOnce(),
) -> Result<(), Declined> {
    // SAFETY: `call` is alive (the caller's contract), and so is the call
    // that `waiting` awaits (its waiter is offering us the job).
    if !unsafe { waiting.accepts(call) } {
        // SAFETY: as above.
        return Err(unsafe { chain_of(call) });
    }
    let _inside = worker.map(|worker| {
        worker.count_job_run();
        worker.enter(call)
    });
    f();
    Ok(())
}

/// A type-erased, `Send` handle to a job.
pub(crate) struct JobRef {
    data: NonNull<()>,
    run: unsafe fn(*const (), Option<&WorkerThread>, Waiting) -> Result<(), Declined>,
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
        unsafe fn run<J: Job>(
            data: *const (),
            worker: Option<&WorkerThread>,
            waiting: Waiting,
        ) -> Result<(), Declined> {
            // SAFETY: `data` was made from a `*const J` in `JobRef::new`, and
            // the caller of `execute` upholds `Job::execute`'s contract.
            unsafe { J::execute(data.cast::<J>(), worker, waiting) }
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

    /// Runs the job on `worker` if `waiting` accepts it, aborting the
    /// process if it unwinds. A declined job comes back, with its call chain,
    /// to be set aside.
    ///
    /// # Safety
    ///
    /// The job is still alive and this `JobRef` has not run before.
    #[inline]
    pub(crate) unsafe fn execute(
        self,
        worker: Option<&WorkerThread>,
        waiting: Waiting,
    ) -> Result<(), (JobRef, Declined)> {
        let guard = AbortOnUnwind;
        // SAFETY: the caller guarantees the job is alive and runs it once.
        let ran = unsafe { (self.run)(self.data.as_ptr(), worker, waiting) };
        std::mem::forget(guard);
        ran.map_err(|chain| (self, chain))
    }

    /// Runs the job on a thread outside the pool, which takes any job.
    ///
    /// # Safety
    ///
    /// As [`execute`](Self::execute).
    pub(crate) unsafe fn execute_outside(self) {
        // SAFETY: forwarded to the caller.
        if unsafe { self.execute(None, Waiting::Idle) }.is_err() {
            unreachable!("a job declined a thread that takes any job");
        }
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
    /// The call the job belongs to: a node beside it on the waiter's stack.
    call: *const Call,
}

impl<F, R> StackJob<F, R>
where
    F: Body<R>,
    R: Send,
{
    /// A job of `call`, which its waiter keeps alive as long as the job.
    pub(crate) fn new(func: F, latch: crate::latch::Latch, call: *const Call) -> Self {
        StackJob {
            func: crate::sync::UnsafeCell::new(Some(func)),
            result: crate::sync::UnsafeCell::new(JobResult::None),
            latch,
            call,
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
    unsafe fn execute(
        this: *const Self,
        worker: Option<&WorkerThread>,
        waiting: Waiting,
    ) -> Result<(), Declined> {
        // SAFETY: the owner keeps the job alive until the latch is set below.
        let this = unsafe { &*this };
        // SAFETY: the call's node lives beside the job, as long as it.
        unsafe {
            run_in_call(this.call, worker, waiting, || {
                let func = this.take_func();
                let result = JobResult::call(|| func.call());
                // SAFETY: only the executing thread writes the result, before
                // the latch publishes it (Release) to the owner.
                this.result.with_mut(|cell| *cell = result);
            })?;
        }
        // Set after leaving the call: the waiter frees the node with the job.
        // SAFETY: the job (and its latch) is alive until the latch is set.
        unsafe { crate::latch::Latch::set(&this.latch) };
        Ok(())
    }
}

/// A job on the heap that owns its closure and frees itself when run. The
/// closure must not unwind (the entry points wrap user code in
/// `catch_unwind`).
pub(crate) struct HeapJob<F> {
    func: F,
    /// The call the job belongs to (a scope's, a task's).
    call: *const Call,
}

impl<F> HeapJob<F>
where
    F: FnOnce() + Send,
{
    /// Boxes `func` as a job of `call`.
    ///
    /// # Safety
    ///
    /// Everything `func` borrows outlives the job's execution (`'static`
    /// closures, or a scope that waits for its jobs), and so does `call`
    /// (null, or a node that `func` or the waiter keeps alive).
    pub(crate) unsafe fn into_job_ref(func: F, call: *const Call) -> JobRef {
        let job = Box::into_raw(Box::new(HeapJob { func, call }));
        // SAFETY: the box lives until `execute` frees it, exactly once.
        unsafe { JobRef::new(job) }
    }
}

impl<F> Job for HeapJob<F>
where
    F: FnOnce() + Send,
{
    unsafe fn execute(
        this: *const Self,
        worker: Option<&WorkerThread>,
        waiting: Waiting,
    ) -> Result<(), Declined> {
        // SAFETY: made by `Box::into_raw` in `into_job_ref`; alive until it
        // runs, which is once.
        let call = unsafe { (*this).call };
        // SAFETY: `call` outlives the job (`into_job_ref`'s contract).
        unsafe {
            run_in_call(call, worker, waiting, || {
                // SAFETY: accepted, so this is the job's one execution.
                let job = Box::from_raw(this.cast_mut());
                (job.func)();
            })
        }
    }
}
