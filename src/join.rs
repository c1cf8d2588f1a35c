//! `Pool::join`, and the join on a worker that `Worker::join` shares.
//!
//! `join(a, b)` on a worker does not push `b` on the deque (rayon does, at a
//! cost of a fence and two deque operations per call). It records `b` on the
//! worker's private **pending stack**, runs `a`, and pops `b` back: when
//! nobody was told about `b`, that is a few loads and stores, and `b` runs
//! inline. Every [`HEARTBEAT`](crate::heartbeat::HEARTBEAT), at a join, the worker **promotes** the *oldest*
//! pending `b` (the root of the largest unexplored subtree) to its deque,
//! where thieves can steal it. This is the heartbeat scheduling of spice and
//! chili, without a heartbeat thread: joins look at the clock now and then,
//! with a stride that adapts so the clock is read a few times per heartbeat
//! whatever the grain of the recursion.
//!
//! A promoted `b` is a `StackJob` with a latch. When its join ends, the worker
//! pops its deque until it finds `b` (running, or setting aside, whatever
//! else it pops), and runs `b` inline; if the deque runs dry, `b` was stolen,
//! and the worker waits on the latch, running only the join's own work.
//!
//! Every join is a call (`isolation.rs`): `a` runs inside it, and a
//! promoted `b` belongs to it. So a wait inside `a` on another pool's call,
//! which refuses the calls that enclose it, refuses `b` too: `b` may need a
//! lock that `a` holds across that wait. The node lives in the frame's head
//! and is made only when needed (see `heartbeat.rs`): the not-promoted path
//! neither writes it nor enters it.

use crate::heartbeat::JoinFrame;
use crate::isolation::{Call, Waiting};
use crate::job::{Body, JobRef, StackJob};
use crate::latch::{Latch, Waiter};
use crate::panic::{discard, drop_caught, HeldAcrossUnwind};
use crate::worker_thread::WorkerThread;
use crate::Pool;
use std::cell::Cell;
use std::mem::MaybeUninit;

/// A join's `b` as the join runs it: inline on the joining worker while
/// nobody knew about it, or, once promoted, as the body of a stack job on
/// whichever worker runs that (see [`promote`]).
pub(crate) trait JoinB<RB>: Send {
    /// What `b` becomes when promoted.
    type Job: Body<RB>;

    /// Runs `b` on `worker`, the worker that joins.
    fn run_inline(self, worker: &WorkerThread) -> RB;

    /// `b` as a stack job's body.
    fn into_job(self) -> Self::Job;
}

/// The `b` of [`Pool::join`]: a closure of no arguments.
pub(crate) struct Plain<B>(pub(crate) B);

impl<B, RB> JoinB<RB> for Plain<B>
where
    B: FnOnce() -> RB + Send,
{
    type Job = B;

    #[inline(always)]
    fn run_inline(self, _worker: &WorkerThread) -> RB {
        (self.0)()
    }

    #[inline(always)]
    fn into_job(self) -> B {
        self.0
    }
}

/// A pending join: `b`, and room for the job it becomes if promoted. Until
/// then nothing but the owning worker knows about it, so the common path
/// initializes no latch or result slot and has no drop glue.
#[repr(C)]
struct PendingJoin<B: JoinB<RB>, RB> {
    /// First, so that a `*const JoinFrame` is a `*const PendingJoin`.
    head: JoinFrame,
    /// `b`, until taken to run inline, moved into `job` by a promotion, or
    /// dropped by the unwind guard: initialized until then, read out exactly
    /// once (no flag to set or test on the hot path).
    b: Cell<MaybeUninit<B>>,
    /// The stealable job, initialized by a promotion.
    job: Cell<MaybeUninit<StackJob<B::Job, RB>>>,
}

impl<B, RB> PendingJoin<B, RB>
where
    B: JoinB<RB>,
    RB: Send,
{
    fn job_ptr(&self) -> *mut StackJob<B::Job, RB> {
        // `MaybeUninit<T>` has the layout of `T`.
        self.job.as_ptr().cast()
    }

    /// The join's call (`JoinFrame::node`): `a` runs inside it, a promoted
    /// `b` and what it forks belong to it, and a join waiting for a stolen
    /// `b` runs only those. Made by the time the join is promoted.
    fn call_ptr(&self) -> *const Call {
        self.head.node()
    }

    /// Moves `b` out of the frame.
    ///
    /// # Safety
    ///
    /// Called at most once per frame: by the join when `b` was never
    /// promoted, by the promotion, or by the unwind guard when `a` panicked
    /// before any promotion.
    unsafe fn take_b(&self) -> B {
        // SAFETY: `b` is initialized when the frame is built and read out at
        // most once (the caller's contract).
        unsafe { self.b.as_ptr().cast::<B>().read() }
    }

    /// Moves the promoted job out of the frame, once it can no longer run
    /// elsewhere (taken back from the deque, or its latch set).
    ///
    /// # Safety
    ///
    /// The join was promoted, and this is called once.
    unsafe fn take_job(&self) -> StackJob<B::Job, RB> {
        // SAFETY: a promotion initialized the job; it is read out once.
        unsafe { self.job_ptr().read() }
    }
}

/// Promotes a pending join: moves its `b` into a `StackJob` of the join's
/// call in the frame's spare room, whose latch will wake worker `index`.
///
/// # Safety
///
/// `head` is the head of a live, unpromoted `PendingJoin<B, RB>` of the
/// calling worker, and `index` is that worker's index.
unsafe fn promote<B, RB>(head: *const JoinFrame, index: usize) -> JobRef
where
    B: JoinB<RB>,
    RB: Send,
{
    // SAFETY: `PendingJoin` is `repr(C)` with the head first.
    let pending = unsafe { &*head.cast::<PendingJoin<B, RB>>() };
    // SAFETY: an unpromoted frame still holds `b`; the promotion is its one
    // reader (the join and the guard see `promoted` and leave it alone).
    let b = unsafe { pending.take_b() };
    let call = pending.call_ptr();
    let job = StackJob::new(b.into_job(), Latch::new(Waiter::Worker(index)), call);
    // SAFETY: the room is ours to initialize (an unpromoted frame's job slot
    // is uninitialized); the join reads it back exactly once. The call
    // lives in the frame as long as the job.
    unsafe {
        pending.job_ptr().write(job);
        (*pending.job_ptr()).as_job_ref()
    }
}

/// `join` on a worker of the pool. `a` always runs here, so it need not be
/// `Send` (the public entry points still ask for it).
pub(crate) fn join_on_worker<A, B, RA, RB>(worker: &WorkerThread, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: JoinB<RB>,
    RB: Send,
{
    let joins = worker.joins();
    let pending = PendingJoin::<B, RB> {
        head: JoinFrame::new(joins, promote::<B, RB>),
        b: Cell::new(MaybeUninit::new(b)),
        job: Cell::new(MaybeUninit::uninit()),
    };
    if joins.push(&pending.head) {
        if let Some((oldest, call)) =
            joins.beat(worker.index(), worker.entered(), || worker.idle_thief())
        {
            // SAFETY: the promoted join's frame, and its call, are alive
            // (it is linked: pending on this worker).
            unsafe { worker.push(oldest, call) };
        }
    }
    // If `a` panics, the guard unlinks the frame and waits for `b` if it was
    // stolen, before the unwinding frees the frame.
    let guard = UnwindGuard {
        worker,
        pending: &pending,
    };
    // `a` runs inside the join's call: the frame is the newest pending join
    // (`WorkerThread::call`).
    let ra = a();
    std::mem::forget(guard);
    // If `b` panics, `a`'s result is dropped while that panic unwinds: the
    // holder contains a panic of its drop, which would abort the process.
    let ra = HeldAcrossUnwind::new(ra);
    if !joins.pop(&pending.head) {
        // Nobody ever knew about `b`: run it here.
        // SAFETY: not promoted, so `b` is still in the frame, read only here.
        let rb = unsafe { pending.take_b() }.run_inline(worker);
        return (ra.into_inner(), rb);
    }
    // SAFETY: promoted (`pop` said so), and this is the join's end.
    let rb = unsafe { finish_promoted(worker, &pending) };
    (ra.into_inner(), rb)
}

/// The end of a promoted join, after `a`: takes `b` back and runs it, or
/// waits for the thief that stole it. Out of line, so that the common path
/// of `join_on_worker` stays small (inlined, this path cost the not-promoted
/// join a saved register and a few moves).
///
/// # Safety
///
/// The join was promoted and its frame unlinked; called once, by the join.
#[cold]
#[inline(never)]
unsafe fn finish_promoted<B, RB>(worker: &WorkerThread, pending: &PendingJoin<B, RB>) -> RB
where
    B: JoinB<RB>,
    RB: Send,
{
    // The job must stay in the frame while a thief may hold a pointer to it:
    // wait on it in place, then move it out.
    // SAFETY: promoted, so initialized.
    let latch = unsafe { &(*pending.job_ptr()).latch };
    let taken_back = worker.take_back(latch, job_id(pending), own_call(pending));
    // SAFETY: promoted; taken back or finished, so no one else uses it; read
    // once.
    let job = unsafe { pending.take_job() };
    if taken_back {
        // Inside the join's call, as a thief would run it.
        let _inside = worker.enter(pending.call_ptr());
        return job.take_func().call();
    }
    // Stolen, and finished: `take_back` waited for its latch.
    job.into_result().into_value()
}

/// The id of a pending join's promoted job, as the deque holds it.
fn job_id<B, RB>(pending: &PendingJoin<B, RB>) -> *const ()
where
    B: JoinB<RB>,
    RB: Send,
{
    pending.job_ptr().cast_const().cast()
}

/// The waiting rule of a promoted join: only its own call's work.
fn own_call<B, RB>(pending: &PendingJoin<B, RB>) -> Waiting
where
    B: JoinB<RB>,
    RB: Send,
{
    Waiting::Own(pending.call_ptr())
}

/// Unlinks a join's frame if `a` unwinds, waiting for `b` if it was stolen.
struct UnwindGuard<'a, B, RB>
where
    B: JoinB<RB>,
    RB: Send,
{
    worker: &'a WorkerThread,
    pending: &'a PendingJoin<B, RB>,
}

impl<B, RB> Drop for UnwindGuard<'_, B, RB>
where
    B: JoinB<RB>,
    RB: Send,
{
    fn drop(&mut self) {
        // `b` (unrun) or its result is dropped while `a`'s panic unwinds:
        // a panic of that drop would abort the process, so it is caught and
        // discarded (`a`'s panic is the one re-raised).
        if !self.worker.joins().pop(&self.pending.head) {
            // Never promoted: drop `b` unrun.
            // SAFETY: `b` is still in the frame (not promoted, and the join's
            // own read comes after `a` returned, which it did not).
            let b = unsafe { self.pending.take_b() };
            if let Some(panic) = drop_caught(b) {
                discard(panic);
            }
            return;
        }
        // SAFETY: promoted, so initialized.
        let latch = unsafe { &(*self.pending.job_ptr()).latch };
        // Whether taken back (then dropped unrun) or stolen (then finished),
        // the job no longer runs once this returns.
        self.worker
            .take_back(latch, job_id(self.pending), own_call(self.pending));
        // SAFETY: as above; read once (the normal path is not taken).
        let job = unsafe { self.pending.take_job() };
        if let Some(panic) = drop_caught(job) {
            discard(panic);
        }
    }
}

impl Pool {
    /// Runs `a` and `b`, potentially in parallel, and returns both results.
    ///
    /// On a worker of this pool, `a` runs on the calling worker and `b` is
    /// made available to idle workers; if nobody takes it, it runs right
    /// after `a` on the same thread. Deciding that costs a few loads and
    /// stores: `b` is offered to thieves only at a heartbeat (about every
    /// 100 µs of the worker's time, or sooner while another worker is idle
    /// and nothing offered before waits), so a `join` at every node of a
    /// fine-grained recursion costs little more than the recursion. From
    /// outside the pool, `join` first moves onto a worker (as
    /// [`apply`](Self::apply) does).
    ///
    /// # Panics
    ///
    /// If `a` or `b` panics, the panic is re-raised once both have stopped
    /// (`a`'s if both panic). If `a` panics before `b` started, `b` is not
    /// run; it is dropped, and a panic of that drop is discarded.
    ///
    /// # Stackful coroutines are not supported
    ///
    /// `a` must return (or unwind) on the stack and the thread it was called
    /// on. Until it does, the join's frame, on the caller's stack, is linked
    /// into the worker's list of pending joins, which the heartbeat walks to
    /// offer `b` to idle workers. A stackful coroutine (the `generator`,
    /// `corosensei` or `may` crates) that suspends inside `a` and is resumed
    /// on another thread, resumed inside another join, or freed without
    /// unwinding breaks that nesting: the list then points into a stack that
    /// is gone or belongs elsewhere, which is undefined behaviour (seen under
    /// AddressSanitizer as a stack-use-after-return in the heartbeat). The
    /// same holds for [`Worker::join`](crate::Worker::join). Suspending and
    /// resuming a coroutine entirely inside `a` or `b`, or outside any join,
    /// is fine.
    ///
    /// ```
    /// fn fib(pool: &stealpool::Pool, n: u64) -> u64 {
    ///     if n < 2 {
    ///         return n;
    ///     }
    ///     let (a, b) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
    ///     a + b
    /// }
    /// let pool = stealpool::Pool::new(2)?;
    /// assert_eq!(fib(&pool, 20), 6765);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    #[inline]
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        match self.own_worker() {
            Some(worker) => join_on_worker(worker, a, Plain(b)),
            None => self.join_elsewhere(a, b),
        }
    }

    /// `join` called off the pool: move onto a worker first. Kept out of line
    /// so that the recursive callers of `join` stay small.
    #[cold]
    #[inline(never)]
    fn join_elsewhere<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        self.apply(|| match self.own_worker() {
            Some(worker) => join_on_worker(worker, a, Plain(b)),
            None => unreachable!("apply runs its closure on a worker"),
        })
    }
}
