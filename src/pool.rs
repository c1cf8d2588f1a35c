//! [`Pool`]: the handle users hold, and its scoped `map` family.

use crate::builder::PoolBuilder;
use crate::drive::Chunking;
use crate::registry::Registry;
use crate::stats::Stats;
use crate::sync::{thread, Arc};
use crate::worker::WorkerThread;
use crate::{map, BuildError};
use std::convert::Infallible;
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

    /// Applies `f` to every item of `input` in parallel and returns the results
    /// in input order.
    ///
    /// `input` and `f` are borrowed for the call only, so `f` may use local
    /// variables. The calling thread does the first part of the work itself
    /// and hands the rest to the workers only once the call has run long
    /// enough for that to pay off, so a small call costs about what a plain
    /// loop costs; after that, chunks are sized adaptively for both uniform
    /// and skewed per-item costs.
    ///
    /// At most [`threads`](Self::threads) threads work on one call at once,
    /// the calling thread included: from outside the pool, the caller and up
    /// to `threads - 1` workers (so a 1-thread pool runs an outside call on
    /// the caller alone).
    ///
    /// Called from one of this pool's workers (a nested map), the caller keeps
    /// running other jobs while it waits; called from a worker of another
    /// pool, that worker keeps running its own pool's jobs; called from any
    /// other thread, it blocks once it has nothing left to do.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is re-raised here with its original payload,
    /// once every chunk has stopped. Chunks not yet started are skipped, and
    /// the results already produced are dropped. The pool stays usable.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let words = ["a", "bb", "ccc"];
    /// let suffix = String::from("!");
    /// let loud = pool.map(&words, |w| format!("{w}{suffix}"));
    /// assert_eq!(loud, ["a!", "bb!", "ccc!"]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    ///
    /// `f` is shared by the threads of the call, so it cannot use an `Rc`:
    ///
    /// ```compile_fail,E0277
    /// let pool = stealpool::Pool::new(2).unwrap();
    /// let offset = std::rc::Rc::new(1);
    /// let shifted = pool.map(&[1, 2, 3], |x| x + *offset);
    /// ```
    pub fn map<T, R, F>(&self, input: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        let result = map::try_map(&self.registry, input, Chunking::Adaptive, |item| {
            Ok::<R, Infallible>(f(item))
        });
        match result {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Like [`map`](Self::map), with chunks of exactly `chunk_size` items
    /// (the last may be shorter), like the `chunksize` of Python's
    /// `Pool.map`: each chunk runs on one thread, in order.
    ///
    /// Unlike `map`, the chunks are offered to the workers at once, without a
    /// solo start: use it when you know each chunk is worth a thread.
    ///
    /// # Panics
    ///
    /// If `chunk_size` is 0, and as [`map`](Self::map) does if `f` panics.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let input: Vec<u32> = (0..10).collect();
    /// let doubled = pool.map_chunked(&input, 3, |x| x * 2);
    /// assert_eq!(doubled, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_chunked<T, R, F>(&self, input: &[T], chunk_size: usize, f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync,
    {
        assert!(
            chunk_size > 0,
            "stealpool: map_chunked needs a chunk_size of at least 1"
        );
        let result = map::try_map(&self.registry, input, Chunking::Fixed(chunk_size), |item| {
            Ok::<R, Infallible>(f(item))
        });
        match result {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Like [`map`](Self::map) for a fallible `f`: returns all results in
    /// input order, or the first error seen.
    ///
    /// After an error, chunks not yet started are skipped (chunks already
    /// running finish), and the results already produced are dropped.
    ///
    /// # Errors
    ///
    /// The first error `f` returned, in time (not necessarily the one of the
    /// lowest index).
    ///
    /// # Panics
    ///
    /// As [`map`](Self::map) does if `f` panics; a panic wins over an error.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let parsed: Result<Vec<i32>, _> = pool.try_map(&["1", "2", "3"], |s| s.parse::<i32>());
    /// assert_eq!(parsed.unwrap(), [1, 2, 3]);
    /// let failed: Result<Vec<i32>, _> = pool.try_map(&["1", "x"], |s| s.parse::<i32>());
    /// assert!(failed.is_err());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn try_map<T, R, E, F>(&self, input: &[T], f: F) -> Result<Vec<R>, E>
    where
        T: Sync,
        R: Send,
        E: Send,
        F: Fn(&T) -> Result<R, E> + Sync,
    {
        map::try_map(&self.registry, input, Chunking::Adaptive, f)
    }

    /// Like [`map`](Self::map), giving `f` a per-thread state made by `init`
    /// (rayon's `map_init`): for buffers, decoders or resizers that are
    /// costly to build and can be reused from item to item.
    ///
    /// `init` runs at most once per thread that takes part in the call (the
    /// caller included), and only on threads that get some items. (A worker
    /// that blocks inside `f` on this same pool may take up this call again
    /// while waiting, and then makes a second state.) The states are dropped
    /// on their threads when the call ends.
    ///
    /// # Panics
    ///
    /// As [`map`](Self::map) does if `init`, `f` or a state's drop panics.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = stealpool::Pool::new(2)?;
    /// let inits = AtomicUsize::new(0);
    /// let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    /// let lengths = pool.map_init(
    ///     &lines,
    ///     || {
    ///         inits.fetch_add(1, Ordering::Relaxed);
    ///         String::with_capacity(64) // a scratch buffer, reused
    ///     },
    ///     |buffer, line| {
    ///         buffer.clear();
    ///         buffer.push_str(line);
    ///         buffer.len()
    ///     },
    /// );
    /// assert_eq!(lengths[10], 7);
    /// assert!(inits.into_inner() <= pool.threads());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn map_init<T, S, R, I, F>(&self, input: &[T], init: I, f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        I: Fn() -> S + Sync,
        F: Fn(&mut S, &T) -> R + Sync,
    {
        let result = map::try_map_init(
            &self.registry,
            input,
            Chunking::Adaptive,
            init,
            |state, item| Ok::<R, Infallible>(f(state, item)),
        );
        match result {
            Ok(output) => output,
            Err(never) => match never {},
        }
    }

    /// Runs `f` on every item of `input` in parallel, with the adaptive
    /// chunking of [`map`](Self::map).
    ///
    /// # Panics
    ///
    /// As [`map`](Self::map) does if `f` panics.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let pool = stealpool::Pool::new(2)?;
    /// let total = AtomicU64::new(0);
    /// pool.for_each(&[1, 2, 3, 4], |x| {
    ///     total.fetch_add(*x, Ordering::Relaxed);
    /// });
    /// assert_eq!(total.into_inner(), 10);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn for_each<T, F>(&self, input: &[T], f: F)
    where
        T: Sync,
        F: Fn(&T) + Sync,
    {
        map::for_each(&self.registry, input, Chunking::Adaptive, f);
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
