//! `Pool::spawn` and its handle, [`Task`].

use crate::isolation::Call;
use crate::job::{HeapJob, JobResult};
use crate::latch::LateLatch;
use crate::registry::Registry;
use crate::sync::{lock, Arc, Mutex};
use crate::Pool;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The shared state of a spawned task: its result and its completion.
struct TaskState<R> {
    result: Mutex<JobResult<R>>,
    done: LateLatch,
    /// The task's call: a root (the task outlives the call that spawned
    /// it), or under an `imap`'s call. A worker that joins the task runs only
    /// jobs under it.
    call: Call,
    /// The pool's registry, compared by address only: whether a joiner is
    /// a worker of the task's pool.
    pool: *const Registry,
}

// SAFETY: `pool` is an address that is never dereferenced; the rest is
// `Send`/`Sync` for a `Send` result.
unsafe impl<R: Send> Send for TaskState<R> {}
// SAFETY: as above.
unsafe impl<R: Send> Sync for TaskState<R> {}

/// A handle to a task started by [`Pool::spawn`], to wait for its result.
///
/// Dropping a `Task` detaches it: the task still runs, and dropping the pool
/// waits for it. `Task<R>` is `Send` when `R` is, so another thread may join
/// it, and [`join`](Task::join) works even after the pool was dropped (the
/// pool's drop ran the task). It is also a [`Future`] of the task's result,
/// for async code that must not block its executor.
#[must_use = "dropping a Task detaches it; call join() to get its result"]
pub struct Task<R> {
    state: Arc<TaskState<R>>,
}

impl<R> fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<R> Task<R> {
    /// Waits for the task and returns its result.
    ///
    /// A worker of the task's pool that joins runs the task itself if no one
    /// has started it, and otherwise only the task's own work while it waits
    /// (so joining a task from inside its 1-thread pool cannot deadlock); a
    /// worker of another pool keeps running its own pool's jobs, except
    /// those of the calls around the join (see "Waiting runs only the call's
    /// work" in the crate documentation); any other thread parks.
    ///
    /// # Panics
    ///
    /// Re-raises the task's panic with its original payload.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let task = pool.spawn(|| 6 * 7);
    /// assert_eq!(task.join(), 42);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn join(self) -> R {
        self.state.done.wait(&self.state.call, self.state.pool);
        self.take_result()
    }

    /// Takes the result of a finished task.
    ///
    /// # Panics
    ///
    /// Re-raises the task's panic; panics if the result was taken already
    /// (a future polled after it completed).
    fn take_result(&self) -> R {
        let result = std::mem::replace(&mut *lock(&self.state.result), JobResult::None);
        if let JobResult::None = result {
            panic!("stealpool: a Task polled again after it returned its result");
        }
        result.into_value()
    }

    /// Whether the task has finished (returned or panicked). Never blocks.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(1)?;
    /// let task = pool.spawn(|| 1);
    /// while !task.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(task.join(), 1);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.state.done.probe()
    }
}

/// Awaiting a `Task` waits for its result without blocking the executor:
/// the first poll registers the executor's waker, which the task wakes when
/// it finishes (no thread blocks, nothing polls in a loop). Dropping the
/// future before it completes detaches the task, as dropping the handle
/// does.
///
/// # Panics
///
/// The poll that finds the task finished re-raises its panic, with its
/// original payload. Polling again after the future returned its result
/// panics.
///
/// ```
/// let pool = stealpool::Pool::new(2)?;
/// let task = pool.spawn(|| 6 * 7);
/// // Any executor: this one blocks the thread until the task wakes it.
/// let answer = pollster::block_on(async { task.await });
/// assert_eq!(answer, 42);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
impl<R> Future for Task<R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        if self.state.done.register_waker(cx.waker()) {
            Poll::Ready(self.take_result())
        } else {
            Poll::Pending
        }
    }
}

impl Pool {
    /// Starts `f` on the pool and returns at once with a [`Task`] to wait for
    /// its result (Python's `Pool.apply_async`).
    ///
    /// Called on a worker of this pool, the task goes on that worker's deque
    /// (other workers may steal it); otherwise on the pool's global queue.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let tasks: Vec<_> = (0..4u64).map(|i| pool.spawn(move || i * i)).collect();
    /// let squares: Vec<u64> = tasks.into_iter().map(|t| t.join()).collect();
    /// assert_eq!(squares, [0, 1, 4, 9]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    ///
    /// The task may outlive the caller's stack frame, so it cannot borrow from
    /// it (use [`Pool::scope`] for that):
    ///
    /// ```compile_fail,E0373
    /// let pool = stealpool::Pool::new(1).unwrap();
    /// let local = vec![1, 2, 3];
    /// let task = pool.spawn(|| local.len()); // borrows `local`
    /// ```
    ///
    /// and it runs on another thread, so it cannot hold an `Rc`:
    ///
    /// ```compile_fail,E0277
    /// let pool = stealpool::Pool::new(1).unwrap();
    /// let shared = std::rc::Rc::new(5);
    /// let task = pool.spawn(move || *shared);
    /// ```
    pub fn spawn<R, F>(&self, f: F) -> Task<R>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        // SAFETY: a null parent: the task's call is a root.
        unsafe { spawn_in(self.registry(), std::ptr::null(), f) }
    }
}

/// Starts `f` as a task of `registry`, whose call is made under `parent`
/// (null: a root). If the pool is already dropping (only an `Imap` that
/// outlived its pool can get here), `f` runs on the calling thread instead,
/// and the returned task is finished.
///
/// # Safety
///
/// `parent` is null or a live node that `f` keeps alive.
pub(crate) unsafe fn spawn_in<R, F>(registry: &Registry, parent: *const Call, f: F) -> Task<R>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let state = Arc::new(TaskState {
        result: Mutex::new(JobResult::None),
        done: LateLatch::new(),
        // SAFETY: `f`, which the task's job owns, keeps `parent` alive.
        call: unsafe { Call::under(parent) },
        pool: registry,
    });
    let call: *const Call = &state.call;
    let task_state = Arc::clone(&state);
    let run = move || {
        let result = JobResult::call(f);
        *lock(&task_state.result) = result;
        task_state.done.set();
        // If the handle is gone (a detached task, or an `Imap` dropped while
        // its batches run), this is the last reference, and dropping it
        // drops the result or the panic payload: user code, whose panic must
        // not unwind out of the worker. Nobody waits for it, so report it.
        if let Some(panic) = crate::panic::drop_caught(task_state) {
            crate::panic::report(
                "dropping a detached task's result",
                crate::global::current_thread_index(),
                panic,
            );
        }
    };
    // SAFETY: `run` is 'static (it owns `f` and a reference count of the
    // state), and it cannot unwind: `f` runs under `catch_unwind`, and the
    // state (with the result in it) is dropped under `catch_unwind`.
    // The task's call lives in the state, which `run` holds.
    let job = unsafe { HeapJob::into_job_ref(run, call) };
    // SAFETY: we hold the state, and with it the call.
    if let Err(job) = unsafe { registry.try_submit(job, call) } {
        // SAFETY: the job was refused, so this is its only execution.
        unsafe { job.execute_outside() };
    }
    Task { state }
}
