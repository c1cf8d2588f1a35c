//! Configuring and building a [`Pool`].

use crate::sleep::MAX_THREADS;
use crate::Pool;
use std::fmt;
use std::time::Duration;

type NameFn = dyn Fn(usize) -> String + Send + Sync;
pub(crate) type HookFn = dyn Fn(usize) + Send + Sync;

/// Configures a [`Pool`] before it starts its threads.
///
/// ```
/// let pool = stealpool::Pool::builder()
///     .threads(2)
///     .thread_name(|i| format!("resizer-{i}"))
///     .build()?;
/// assert_eq!(pool.threads(), 2);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    threads: Option<usize>,
    pub(crate) thread_name: Option<Box<NameFn>>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) idle_poll: Duration,
    pub(crate) on_start: Option<Box<HookFn>>,
    pub(crate) on_exit: Option<Box<HookFn>>,
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("threads", &self.threads)
            .field("thread_name", &self.thread_name.as_ref().map(|_| ".."))
            .field("stack_size", &self.stack_size)
            .field("idle_poll", &self.idle_poll)
            .field("on_thread_start", &self.on_start.as_ref().map(|_| ".."))
            .field("on_thread_exit", &self.on_exit.as_ref().map(|_| ".."))
            .finish()
    }
}

/// The same as [`Pool::builder`]: every setting at its default.
///
/// ```
/// let pool = stealpool::PoolBuilder::default().threads(2).build()?;
/// assert_eq!(pool.threads(), 2);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
impl Default for PoolBuilder {
    fn default() -> Self {
        PoolBuilder::new()
    }
}

impl PoolBuilder {
    pub(crate) fn new() -> PoolBuilder {
        PoolBuilder {
            threads: None,
            thread_name: None,
            stack_size: None,
            idle_poll: Duration::ZERO,
            on_start: None,
            on_exit: None,
        }
    }

    /// Sets the number of worker threads. The default is
    /// [`std::thread::available_parallelism`], or 1 where that is unknown.
    ///
    /// Zero is accepted here and refused by [`build`](Self::build) with
    /// [`BuildError::ZeroThreads`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder().threads(3).build()?;
    /// assert_eq!(pool.threads(), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Names worker `i` by `f(i)` (as seen in debuggers, `top -H` and panic
    /// messages). `f` runs on the thread that calls `build`.
    ///
    /// # Panics
    ///
    /// `build` panics if `f` panics, or if a name contains a NUL byte, after
    /// stopping and joining the workers already started.
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .threads(1)
    ///     .thread_name(|i| format!("worker-{i}"))
    ///     .build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn thread_name<F>(mut self, f: F) -> Self
    where
        F: Fn(usize) -> String + Send + Sync + 'static,
    {
        self.thread_name = Some(Box::new(f));
        self
    }

    /// Sets each worker's stack size in bytes. The value goes to the operating
    /// system as it is, not clamped: a size it cannot provide makes
    /// [`build`](Self::build) fail with [`BuildError::Spawn`].
    ///
    /// ```
    /// let pool = stealpool::Pool::builder()
    ///     .threads(1)
    ///     .stack_size(8 << 20)
    ///     .build()?;
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Sets how long an idle worker keeps looking for work after its last
    /// job before it goes to sleep. The default, zero, parks a worker after
    /// a few microseconds of finding nothing.
    ///
    /// A sleeping worker takes time to wake: tens of microseconds, and on a
    /// shared or virtualised machine sometimes hundreds. A program that calls
    /// the pool in bursts, say a `map` of half a millisecond every two
    /// milliseconds, then finds its helpers asleep at every call, and the
    /// caller does most of the work alone. With a budget at least as long as
    /// the gap between calls, the workers are still searching when the next
    /// call comes and join it at once. (With sleeping workers, a call asks
    /// for help only if its remaining work outlasts the pool's measured
    /// wake-up delay, so a late helper does not make it slower than the
    /// caller alone.) The price is CPU time: each worker
    /// keeps a CPU busy (yielding to any other thread that wants it) for up
    /// to `budget` after every job, whether or not more work comes.
    ///
    /// A polling worker still ends when the pool is dropped, whatever the
    /// budget, `Duration::MAX` included.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = stealpool::Pool::builder()
    ///     .threads(2)
    ///     .idle_poll(Duration::from_millis(3))
    ///     .build()?;
    /// for _ in 0..3 {
    ///     let squares = pool.map(&[1, 2, 3], |x| x * x);
    ///     assert_eq!(squares, [1, 4, 9]);
    ///     std::thread::sleep(Duration::from_millis(2));
    /// }
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn idle_poll(mut self, budget: Duration) -> Self {
        self.idle_poll = budget;
        self
    }

    /// Runs `f(i)` on worker `i` when it starts, before its first job (Python's
    /// `initializer`): the place to set up thread-local state that the jobs
    /// on that worker will see.
    ///
    /// A panic in `f` is caught and reported on standard error; the worker
    /// goes on.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&started);
    /// let pool = stealpool::Pool::builder()
    ///     .threads(2)
    ///     .on_thread_start(move |_index| {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()?;
    /// drop(pool); // joins the workers, so both hooks have run
    /// assert_eq!(started.load(Ordering::SeqCst), 2);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn on_thread_start<F>(mut self, f: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.on_start = Some(Box::new(f));
        self
    }

    /// Runs `f(i)` on worker `i` when it stops, after its last job (when the
    /// pool is dropped). A panic in `f` is caught and reported on standard
    /// error.
    ///
    /// Work that `f` gives this pool (it can reach the pool only through an
    /// [`Imap`](crate::Imap) or [`ImapUnordered`](crate::ImapUnordered) that
    /// outlived it) runs on `f`'s own thread, as it does for any thread once
    /// the pool is dropping: the worker has taken its last job. Other pools
    /// are called as usual.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// let exited = Arc::new(AtomicUsize::new(0));
    /// let counter = Arc::clone(&exited);
    /// let pool = stealpool::Pool::builder()
    ///     .threads(3)
    ///     .on_thread_exit(move |_index| {
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()?;
    /// drop(pool);
    /// assert_eq!(exited.load(Ordering::SeqCst), 3);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn on_thread_exit<F>(mut self, f: F) -> Self
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.on_exit = Some(Box::new(f));
        self
    }

    /// Starts the worker threads and returns the pool.
    ///
    /// # Errors
    ///
    /// - [`BuildError::ZeroThreads`] if the thread count is zero;
    /// - [`BuildError::TooManyThreads`] if it is over the supported maximum;
    /// - [`BuildError::Spawn`] if the operating system refuses a thread. The
    ///   threads started before it are stopped and joined first.
    ///
    /// # Panics
    ///
    /// If the [`thread_name`](Self::thread_name) callback panics (the started
    /// threads are joined first).
    ///
    /// ```
    /// use stealpool::{BuildError, Pool};
    /// assert!(matches!(Pool::builder().threads(0).build(), Err(BuildError::ZeroThreads)));
    /// ```
    pub fn build(self) -> Result<Pool, BuildError> {
        Pool::from_builder(self)
    }

    /// The thread count to use, validated.
    pub(crate) fn resolved_threads(&self) -> Result<usize, BuildError> {
        let threads = match self.threads {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        match threads {
            0 => Err(BuildError::ZeroThreads),
            n if n > MAX_THREADS => Err(BuildError::TooManyThreads { max: MAX_THREADS }),
            n => Ok(n),
        }
    }
}

/// Why a [`Pool`] could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A pool needs at least one worker thread.
    ZeroThreads,
    /// More threads were asked for than one pool supports.
    TooManyThreads {
        /// The largest supported thread count.
        max: usize,
    },
    /// The operating system could not start a worker thread.
    Spawn(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroThreads => f.write_str("a pool needs at least one thread"),
            BuildError::TooManyThreads { max } => {
                write!(f, "a pool supports at most {max} threads")
            }
            BuildError::Spawn(err) => write!(f, "could not start a worker thread: {err}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Spawn(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod tests {
    use super::{BuildError, PoolBuilder, MAX_THREADS};

    /// The thread count's bounds, checked without starting the threads:
    /// `MAX_THREADS` is allowed, one more is not, zero is not.
    #[test]
    fn thread_counts_up_to_the_maximum_are_accepted() {
        let resolved = |n| PoolBuilder::default().threads(n).resolved_threads();
        assert!(matches!(resolved(1), Ok(1)));
        assert!(matches!(resolved(MAX_THREADS), Ok(n) if n == MAX_THREADS));
        assert!(matches!(
            resolved(MAX_THREADS + 1),
            Err(BuildError::TooManyThreads { max }) if max == MAX_THREADS
        ));
        assert!(matches!(resolved(0), Err(BuildError::ZeroThreads)));
    }
}
