//! `Pool::scope`: tasks that may borrow from the caller's stack.

use crate::isolation::Call;
use crate::job::HeapJob;
use crate::latch::{Latch, Waiter};
use crate::panic::{discard, drop_caught, Panic};
use crate::registry::Registry;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use crate::worker_thread::WorkerThread;
use crate::{CancelToken, Pool};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

/// A scope in which tasks may borrow from the enclosing stack frame, made by
/// [`Pool::scope`]. Every task spawned in it has finished when `scope`
/// returns.
pub struct Scope<'scope, 'env: 'scope> {
    registry: Arc<Registry>,
    /// Tasks not yet finished, plus one for the scope's body.
    pending: AtomicUsize,
    /// The first panic of the body or of a task.
    panic: Mutex<Option<Panic>>,
    /// Set when `pending` reaches zero.
    all_done: Latch,
    /// The scope's call: its tasks belong to it, and the body runs inside
    /// it on a worker.
    call: Call,
    /// What stops the scope's tasks from starting (a `Cancellable` scope),
    /// and how many ran and were skipped.
    stop: Option<Stop>,
    /// Invariance over 'scope, as in `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// A pointer to a scope that its tasks carry to other threads.
/// The token and deadline of a `Cancellable` scope, and its counts.
struct Stop {
    token: Option<CancelToken>,
    deadline: Option<Instant>,
    /// Tasks that ran.
    ran: AtomicUsize,
    /// Tasks that never started because of the stop.
    skipped: AtomicUsize,
}

impl Stop {
    fn stopped(&self) -> bool {
        self.token.as_ref().is_some_and(CancelToken::is_cancelled)
            || self.deadline.is_some_and(crate::sync::reached)
    }
}

struct ScopePtr<'scope, 'env>(*const Scope<'scope, 'env>);

// SAFETY: `Scope` is `Sync` (atomics, a mutex, a latch), and the scope waits
// for all its tasks, so the pointer stays valid wherever a task runs.
unsafe impl Send for ScopePtr<'_, '_> {}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Starts `f` on the pool. `f` may borrow anything that outlives the
    /// scope, and may spawn more tasks through the scope.
    ///
    /// A panic in `f` does not stop the other tasks; the scope re-raises the
    /// first panic once all of them have finished.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let mut left = vec![1, 2, 3];
    /// let mut right = vec![4, 5, 6];
    /// pool.scope(|s| {
    ///     s.spawn(|| left.iter_mut().for_each(|x| *x *= 10));
    ///     s.spawn(|| right.iter_mut().for_each(|x| *x += 1));
    /// });
    /// assert_eq!(left, [10, 20, 30]);
    /// assert_eq!(right, [5, 6, 7]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    ///
    /// A task cannot borrow something that dies before the scope ends:
    ///
    /// ```compile_fail,E0373
    /// let pool = stealpool::Pool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let local = vec![1, 2, 3];
    ///     s.spawn(|| println!("{local:?}")); // `local` dies with the body
    /// });
    /// ```
    ///
    /// nor hold something that must stay on one thread:
    ///
    /// ```compile_fail,E0277
    /// let pool = stealpool::Pool::new(1).unwrap();
    /// let shared = std::rc::Rc::new(5);
    /// pool.scope(|s| {
    ///     s.spawn(move || println!("{shared}")); // `Rc` is not `Send`
    /// });
    /// ```
    pub fn spawn<F>(&'scope self, f: F)
    where
        F: FnOnce() + Send + 'scope,
    {
        // Relaxed: the spawner holds a count of its own (the body's, or its
        // running task's), so `pending` cannot reach zero before this
        // increment; the decrement that does reach zero reads it through the
        // read-modify-write chain.
        self.pending.fetch_add(1, Ordering::Relaxed);
        let scope = ScopePtr(self);
        let run = move || {
            let scope = scope;
            // SAFETY: the scope outlives its tasks (it waits on `all_done`).
            let this = unsafe { &*scope.0 };
            match &this.stop {
                Some(stop) if stop.stopped() => {
                    // Relaxed: read by the caller after `all_done`, which
                    // the count's release/acquire chain orders after this.
                    stop.skipped.fetch_add(1, Ordering::Relaxed);
                    // The task's captures are the user's: their drop may
                    // panic, which is the scope's panic.
                    if let Some(panic) = drop_caught(f) {
                        this.record_panic(panic);
                    }
                }
                stop => {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
                        this.record_panic(panic);
                    }
                    if let Some(stop) = stop {
                        // Relaxed: as `skipped`.
                        stop.ran.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // SAFETY: this task's count is still held.
            unsafe { Scope::finish_one(scope.0) };
        };
        // SAFETY: `run` borrows only what outlives 'scope, and `Pool::scope`
        // does not return before every task has run; `run` cannot unwind.
        // The scope's call lives as long as the scope.
        let job = unsafe { HeapJob::into_job_ref(run, &self.call) };
        // SAFETY: the scope, and its call, outlive the job.
        unsafe { self.registry.submit(job, &self.call) };
    }

    fn record_panic(&self, panic: Panic) {
        let mut first = lock(&self.panic);
        if first.is_none() {
            *first = Some(panic);
            return;
        }
        drop(first);
        // Only the first panic is re-raised; dropping a payload may itself
        // panic, which must not escape a worker.
        crate::panic::discard(panic);
    }

    /// Releases one count; the last one sets `all_done`.
    ///
    /// # Safety
    ///
    /// The caller holds a count. Unless it owns the scope, it does not touch
    /// the scope afterwards: the owner may free it as soon as the count is
    /// gone.
    unsafe fn finish_one(this: *const Self) {
        // SAFETY: the caller's count keeps the scope alive until here.
        let scope = unsafe { &*this };
        // AcqRel. Release: publishes this task's writes. Acquire: the last
        // one has seen every earlier release and passes them on through the
        // latch's Release to the waiting caller.
        #[cfg(not(stealpool_mutant = "scope_count_relaxed"))]
        let before = scope.pending.fetch_sub(1, Ordering::AcqRel);
        // Mutant `scope_count_relaxed`: the count's release/acquire dropped.
        #[cfg(stealpool_mutant = "scope_count_relaxed")]
        let before = scope.pending.fetch_sub(1, Ordering::Relaxed);
        if before == 1 {
            // SAFETY: the scope waits on this latch, so it is alive.
            unsafe { Latch::set(&scope.all_done) };
        }
    }
}

impl Pool {
    /// Runs `f` with a [`Scope`] whose tasks may borrow from the caller's
    /// stack, and returns once every task spawned in it has finished, like
    /// `std::thread::scope` on pool threads.
    ///
    /// The body `f` runs on the calling thread (it need not be `Send`). While
    /// waiting for the tasks, a caller that is a worker runs the scope's
    /// tasks and what they call, nothing else (see "Waiting runs only the
    /// call's work" in the crate documentation); any other thread parks. Spawned tasks are queued, never run
    /// inline by `spawn`, so a task spawning a task spawning a task... does
    /// not grow any stack.
    ///
    /// # Panics
    ///
    /// If the body or a task panics, the other tasks still run to the end;
    /// then the first panic is re-raised with its payload.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let data = [1, 2, 3, 4];
    /// let total = std::sync::atomic::AtomicI32::new(0);
    /// pool.scope(|s| {
    ///     for x in &data {
    ///         let total = &total;
    ///         s.spawn(move || {
    ///             total.fetch_add(*x, std::sync::atomic::Ordering::Relaxed);
    ///         });
    ///     }
    /// });
    /// assert_eq!(total.into_inner(), 10);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn scope<'env, R, F>(&self, f: F) -> R
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
    {
        scope(self, None, f).0
    }
}

/// `Pool::scope`, whose tasks do not start once `stop` (a token, a
/// deadline) says so. Returns the body's value and, for a stoppable scope,
/// how many tasks were skipped and how many ran.
pub(crate) fn scope<'env, R, F>(
    pool: &Pool,
    stop: Option<(Option<CancelToken>, Option<Instant>)>,
    f: F,
) -> (R, Option<(usize, usize)>)
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let worker = WorkerThread::current();
    let scope = Scope {
        registry: Arc::clone(pool.registry()),
        pending: AtomicUsize::new(1),
        panic: Mutex::new(None),
        all_done: Latch::new(Waiter::current_for(pool.registry())),
        // SAFETY: the call the caller works in encloses the scope.
        call: unsafe { Call::under(worker.map_or(std::ptr::null(), WorkerThread::call)) },
        stop: stop.map(|(token, deadline)| Stop {
            token,
            deadline,
            ran: AtomicUsize::new(0),
            skipped: AtomicUsize::new(0),
        }),
        scope: PhantomData,
        env: PhantomData,
    };
    // The body (and what it calls) works inside the scope's call.
    let inside = worker.map(|worker| worker.enter(&scope.call));
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    drop(inside);
    let result = match result {
        Ok(value) => Some(value),
        Err(panic) => {
            scope.record_panic(panic);
            None
        }
    };
    // SAFETY: the body's count. The scope lives in this frame, so reading
    // it after the release is fine.
    unsafe { Scope::finish_one(&scope) };
    scope.all_done.wait(&scope.call);
    let first_panic = lock(&scope.panic).take();
    match (result, first_panic) {
        (value, Some(panic)) => {
            // Drop the body's value before re-raising, not while the
            // panic unwinds (where a panicking `Drop` would abort).
            if let Some(again) = drop_caught(value) {
                discard(again);
            }
            resume_unwind(panic)
        }
        (Some(value), None) => {
            let counts = scope.stop.as_ref().map(|stop| {
                // Relaxed: every task finished before `all_done`.
                let ran = stop.ran.load(Ordering::Relaxed);
                (stop.skipped.load(Ordering::Relaxed), ran)
            });
            (value, counts)
        }
        (None, None) => unreachable!("a scope body panicked without a recorded panic"),
    }
}
