//! [`Pool`]: the handle users hold, how it is built and dropped, and
//! `apply`, the general "run this on a worker".
//!
//! Each family of methods has its `impl Pool` beside its code:
//!
//! | methods | file |
//! |---|---|
//! | `new`, `builder`, `threads`, `stats`, `apply`, `Drop` | here |
//! | `map`, `try_map`, `map_init`, `for_each` | `map.rs` (on the core in `collect.rs`, on the parallel loop in `drive.rs`) |
//! | `options` (and the calls with options: `CallOptions`) | `options.rs` (`Cancellable`: `cancellable.rs`) |
//! | `map_reduce` | `reduce.rs` |
//! | `join` | `join.rs` |
//! | `in_worker` (and `Worker::join`) | `worker.rs` |
//! | `scope` | `scope.rs` |
//! | `spawn` | `task.rs` |
//! | `imap`, `imap_unordered` | `imap.rs` |

use crate::builder::PoolBuilder;
use crate::isolation::Call;
use crate::job::StackJob;
use crate::latch::{Latch, Waiter};
use crate::registry::Registry;
use crate::stats::Stats;
use crate::sync::{thread, Arc};
use crate::worker_thread::WorkerThread;
use crate::BuildError;
use std::fmt;

/// A pool of worker threads that share work by stealing.
///
/// Dropping the pool runs the work already queued, then stops and joins every
/// worker: no thread outlives its `Pool`. The one exception is a pool dropped
/// on one of its own workers (a task that held the last handle): that drop
/// returns at once, and the workers finish the queued work and exit on their
/// own, since joining them from inside a job could wait on that very job.
///
/// ```
/// let pool = stealpool::Pool::new(4)?;
/// let squares = pool.map(&[1, 2, 3, 4, 5], |x| x * x);
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
pub struct Pool {
    registry: Arc<Registry>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("threads", &self.threads())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Starts a pool of `threads` workers.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroThreads`] if `threads` is 0, and the other errors of
    /// [`PoolBuilder::build`].
    ///
    /// ```
    /// use stealpool::{BuildError, Pool};
    /// let pool = Pool::new(2)?;
    /// assert_eq!(pool.threads(), 2);
    /// assert!(matches!(Pool::new(0), Err(BuildError::ZeroThreads)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn new(threads: usize) -> Result<Pool, BuildError> {
        Pool::builder().threads(threads).build()
    }

    /// A builder to configure a pool: thread count (default: the available
    /// parallelism), thread names, stack size.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().threads(2).build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn from_builder(builder: PoolBuilder) -> Result<Pool, BuildError> {
        let (registry, handles) = Registry::start(builder)?;
        Ok(Pool { registry, handles })
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The calling thread's worker, if it is one of this pool's.
    #[inline]
    pub(crate) fn own_worker<'a>(&self) -> Option<&'a WorkerThread> {
        WorkerThread::current_in(&self.registry)
    }

    /// The number of worker threads.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(3)?;
    /// assert_eq!(pool.threads(), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn threads(&self) -> usize {
        self.registry.threads()
    }

    /// A snapshot of the scheduler's counters (see [`Stats`]).
    ///
    /// ```
    /// let pool = stealpool::Pool::new(1)?;
    /// let stats = pool.stats();
    /// assert_eq!(stats.worker_steals, 0);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.registry.stats()
    }

    /// Runs `f` on a worker of this pool and returns its result (Python's
    /// `Pool.apply`; rayon's `ThreadPool::install`). Called on a worker of this pool, it runs `f` inline.
    ///
    /// The caller blocks until `f` returns: a worker of another pool keeps
    /// running its own pool's jobs meanwhile, except those of the calls
    /// around this one (see "Waiting runs only the call's work" in the crate
    /// documentation); any other thread parks.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f` with its payload.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let on_worker = pool.apply(|| stealpool::current_thread_index().is_some());
    /// assert!(on_worker);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    #[doc(alias = "install")]
    pub fn apply<R, F>(&self, f: F) -> R
    where
        R: Send,
        F: FnOnce() -> R + Send,
    {
        if self.own_worker().is_some() {
            return f();
        }
        // The call `f` runs inside: under the call the caller works in, if
        // it is a worker of another pool.
        let within = WorkerThread::current().map_or(std::ptr::null(), WorkerThread::call);
        // SAFETY: the enclosing call outlives this one, which ends here.
        let call = unsafe { Call::under(within) };
        let job = StackJob::new(f, Latch::new(Waiter::current_for(self.registry())), &call);
        // SAFETY: `job` stays in this frame until its latch is set: we wait
        // for it right below, and waiting does not unwind. `call` lives in
        // this frame too.
        unsafe { self.registry().inject(job.as_job_ref(), &call) };
        job.latch.wait(&call);
        job.into_result().into_value()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.registry.close();
        self.registry.terminate();
        // A pool dropped on one of its own workers (say, by a task that held
        // the last handle) joins no worker: not its own, which cannot exit
        // before the running job returns, and not the others either, because
        // any of them may be waiting, in a join or `Task::join`, for the very
        // job that is dropping the pool (a deadlock found by the stress
        // tests, `tests/shutdown_faults.rs`). They are detached instead: each
        // drains the queues and exits on its own.
        if self.own_worker().is_some() {
            self.handles.clear();
            return;
        }
        for handle in self.handles.drain(..) {
            // Workers never unwind (a job that did would abort), so there is
            // no panic to forward.
            let _ = handle.join();
        }
    }
}
