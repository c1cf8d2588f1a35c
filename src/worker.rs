//! `Pool::in_worker` and [`Worker`]: a handle to the worker a closure runs on,
//! for recursions that join at every level.
//!
//! [`Pool::join`] must first find out whether the calling thread is one of
//! the pool's workers (a thread-local read and a compare), at every call. A
//! recursion that joins at every node pays that at every node, and it is a
//! good share of what a join costs when `b` is not stolen. A [`Worker`] is
//! the answer to that question, found once by [`Pool::in_worker`] and passed
//! down: [`Worker::join`] hands each closure the worker it runs on (the
//! joining one, or the thief that took `b`), so the recursion never asks
//! again.
//!
//! The handle is neither `Send` nor `Sync`, and the closures get it by a
//! reference that cannot outlive the call: it cannot be moved to, or used
//! from, another thread, which is what makes skipping the question sound.

use crate::job::Body;
use crate::join::{join_on_worker, JoinB};
use crate::worker_thread::WorkerThread;
use crate::Pool;
use std::fmt;
use std::marker::PhantomData;

/// The worker thread a closure runs on, handed out by [`Pool::in_worker`]
/// and [`Worker::join`].
///
/// It cannot leave its thread (it is neither `Send` nor `Sync`), nor outlive
/// the closure that received it:
///
/// ```compile_fail,E0277
/// let pool = stealpool::Pool::new(2)?;
/// // The handle cannot be returned from the closure...
/// let worker = pool.in_worker(|w| w);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
///
/// ```compile_fail,E0277
/// let pool = stealpool::Pool::new(2)?;
/// pool.in_worker(|w| {
///     // ...nor used from another thread...
///     std::thread::scope(|s| {
///         s.spawn(|| w.index());
///     });
/// });
/// # Ok::<(), stealpool::BuildError>(())
/// ```
///
/// ```compile_fail,E0521
/// use std::cell::Cell;
/// thread_local! {
///     static KEPT: Cell<Option<&'static stealpool::Worker<'static>>> = Cell::new(None);
/// }
/// let pool = stealpool::Pool::new(2)?;
/// // ...nor kept for later on its own thread.
/// pool.in_worker(|w| KEPT.with(|kept| kept.set(Some(w))));
/// # Ok::<(), stealpool::BuildError>(())
/// ```
pub struct Worker<'w> {
    thread: &'w WorkerThread,
    /// Neither `Send` nor `Sync`: the handle stands for the thread it was
    /// made on.
    _thread_bound: PhantomData<*const ()>,
}

impl<'w> Worker<'w> {
    fn new(thread: &'w WorkerThread) -> Self {
        Worker {
            thread,
            _thread_bound: PhantomData,
        }
    }

    /// The index of this worker in its pool, from 0 to
    /// [`threads`](Pool::threads)` - 1` (what
    /// [`current_thread_index`](crate::current_thread_index) returns on it).
    ///
    /// ```
    /// let pool = stealpool::Pool::new(3)?;
    /// let index = pool.in_worker(|w| w.index());
    /// assert!(index < 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn index(&self) -> usize {
        self.thread.index()
    }

    /// Runs `a` and `b`, potentially in parallel, and returns both results:
    /// [`Pool::join`] for a recursion that passes its worker down. Each
    /// closure gets the worker it runs on: `a` this one, `b` this one or
    /// the worker that took it.
    ///
    /// Skipping the look-up of the calling worker makes this join cheaper
    /// than [`Pool::join`] when `b` is not stolen, which is what a join at
    /// every node of a fine-grained recursion spends most of its time on.
    ///
    /// # Panics
    ///
    /// As [`Pool::join`]: a panic of `a` or `b` is re-raised once both have
    /// stopped (`a`'s if both panic); if `a` panics before `b` started, `b`
    /// is not run.
    ///
    /// As for [`Pool::join`], a stackful coroutine must not suspend inside
    /// `a` and resume elsewhere (see "Stackful coroutines are not supported"
    /// there).
    ///
    /// ```
    /// use stealpool::Worker;
    ///
    /// fn fib(w: &Worker<'_>, n: u64) -> u64 {
    ///     if n < 2 {
    ///         return n;
    ///     }
    ///     let (a, b) = w.join(|w| fib(w, n - 1), |w| fib(w, n - 2));
    ///     a + b
    /// }
    /// let pool = stealpool::Pool::new(2)?;
    /// assert_eq!(pool.in_worker(|w| fib(w, 20)), 6765);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    #[inline]
    pub fn join<A, B, RA, RB>(&self, a: A, b: B) -> (RA, RB)
    where
        A: FnOnce(&Worker<'_>) -> RA + Send,
        B: FnOnce(&Worker<'_>) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        join_on_worker(self.thread, || a(self), WithWorker(b))
    }
}

impl fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index())
            .finish_non_exhaustive()
    }
}

/// The `b` of [`Worker::join`]: a closure that takes the worker it runs on.
struct WithWorker<B>(B);

impl<B, RB> JoinB<RB> for WithWorker<B>
where
    B: FnOnce(&Worker<'_>) -> RB + Send,
{
    type Job = Self;

    #[inline(always)]
    fn run_inline(self, worker: &WorkerThread) -> RB {
        (self.0)(&Worker::new(worker))
    }

    #[inline(always)]
    fn into_job(self) -> Self {
        self
    }
}

impl<B, RB> Body<RB> for WithWorker<B>
where
    B: FnOnce(&Worker<'_>) -> RB + Send,
{
    /// Runs `b` as a promoted job: on whichever worker runs the job (the
    /// thief, or the joining worker taking it back), found here, off the
    /// common path.
    fn call(self) -> RB {
        match WorkerThread::current() {
            Some(worker) => (self.0)(&Worker::new(worker)),
            // A promoted join lives on its worker's deque, which only that
            // worker and thieves of the same pool take from.
            None => unreachable!("a join's promoted job runs on a worker"),
        }
    }
}

impl Pool {
    /// Runs `f` on a worker of this pool, with a handle to that worker, and
    /// returns its result: the way into [`Worker::join`]. Called on a worker
    /// of this pool, it runs `f` inline; otherwise the caller blocks as in
    /// [`apply`](Self::apply).
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f` with its payload.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let (a, b) = pool.in_worker(|w| w.join(|_| 1 + 1, |_| 2 + 2));
    /// assert_eq!((a, b), (2, 4));
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn in_worker<R, F>(&self, f: F) -> R
    where
        R: Send,
        F: FnOnce(&Worker<'_>) -> R + Send,
    {
        self.apply(|| match self.own_worker() {
            Some(worker) => f(&Worker::new(worker)),
            None => unreachable!("apply runs its closure on a worker"),
        })
    }
}
