//! `Pool::imap` and `Pool::imap_unordered`: lazy, bounded parallel maps over
//! any iterator.
//!
//! The consumer's `next()` does all the pulling: it tops the window up by
//! taking items from the input and starting one task per item, then waits
//! for the result it is to return. Nothing runs in the background, so at most
//! `window` items have been taken from the input and not yet returned.

use crate::drive::Panic;
use crate::job::JobResult;
use crate::latch::Waiter;
use crate::registry::Registry;
use crate::sync::{lock, Arc, AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::task::{spawn_in, Task};
use crate::worker::Probe;
use crate::Pool;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// One item's work: runs `f` on the item, unless the iterator was dropped.
type Unit<R> = Box<dyn FnOnce(&AtomicBool) -> Option<R> + Send>;

/// The input and the function: yields the next item's work.
type Pull<R> = Box<dyn FnMut() -> Option<Unit<R>> + Send>;

/// What both iterators share: the pool, the input, and the window.
struct Feed<R> {
    registry: Arc<Registry>,
    pull: Pull<R>,
    window: usize,
    /// Set when the iterator is dropped: work not yet started is skipped.
    cancelled: Arc<AtomicBool>,
    /// The input is exhausted (or panicked).
    input_done: bool,
    /// A panic of the input iterator, re-raised in its turn.
    input_panic: Option<Panic>,
}

impl<R: Send + 'static> Feed<R> {
    fn new<I, F>(pool: &Pool, input: I, f: F) -> Feed<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let mut input = input.into_iter();
        let f = Arc::new(f);
        let pull: Pull<R> = Box::new(move || {
            let item = input.next()?;
            let f = Arc::clone(&f);
            Some(Box::new(move |cancelled: &AtomicBool| {
                // Relaxed: a hint; work that starts just before the drop is
                // simply done and its result discarded.
                (!cancelled.load(Ordering::Relaxed)).then(|| f(item))
            }))
        });
        Feed {
            registry: Arc::clone(pool.registry()),
            pull,
            window: DEFAULT_WINDOW_PER_THREAD * pool.threads(),
            cancelled: Arc::new(AtomicBool::new(false)),
            input_done: false,
            input_panic: None,
        }
    }

    /// Takes the next item's work from the input, containing a panic of the
    /// input iterator until it is its turn to be raised.
    fn pull(&mut self) -> Option<Unit<R>> {
        if self.input_done {
            return None;
        }
        match catch_unwind(AssertUnwindSafe(|| (self.pull)())) {
            Ok(Some(unit)) => Some(unit),
            Ok(None) => {
                self.input_done = true;
                None
            }
            Err(panic) => {
                self.input_done = true;
                self.input_panic = Some(panic);
                None
            }
        }
    }

    /// Starts one item's work on the pool.
    fn start<T: Send + 'static>(
        &self,
        unit: Unit<R>,
        finish: impl FnOnce(JobResult<Option<R>>) -> T + Send + 'static,
    ) -> Task<T> {
        let cancelled = Arc::clone(&self.cancelled);
        spawn_in(&self.registry, move || {
            finish(JobResult::call(move || unit(&cancelled)))
        })
    }

    fn set_window(&mut self, window: usize) {
        assert!(window > 0, "stealpool: an imap window must be at least 1");
        self.window = window;
    }
}

impl<R> Drop for Feed<R> {
    fn drop(&mut self) {
        // Relaxed: a hint to the tasks still queued (see `Feed::new`).
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

/// How many items per worker thread an iterator keeps in flight by default.
pub const DEFAULT_WINDOW_PER_THREAD: usize = 4;

/// The unwrapped result of one item, or its panic re-raised.
fn value_of<R>(result: JobResult<Option<R>>) -> R {
    match result.into_value() {
        Some(value) => value,
        None => unreachable!("an item was skipped while its iterator was alive"),
    }
}

/// A lazy parallel map that yields results in input order, made by
/// [`Pool::imap`].
///
/// Each `next()` takes items from the input until `window` of them are in
/// flight, then waits for the oldest. The default window is
/// [`DEFAULT_WINDOW_PER_THREAD`] times the pool's thread count; set it with
/// [`window`](Imap::window).
///
/// Dropping the iterator skips the items not yet started and returns at once.
/// If the pool is dropped first, the items already started are finished by
/// the pool's drop, and the items taken after that run on the thread that
/// calls `next()`: nothing hangs and nothing is lost.
#[must_use = "an Imap does nothing until iterated"]
pub struct Imap<R> {
    feed: Feed<R>,
    in_flight: VecDeque<Task<JobResult<Option<R>>>>,
}

impl<R> fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("window", &self.feed.window)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl<R: Send + 'static> Imap<R> {
    /// Sets how many items may be in flight at once (taken from the input and
    /// not yet returned).
    ///
    /// # Panics
    ///
    /// If `window` is 0.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let doubled: Vec<u32> = pool.imap(0..100u32, |x| x * 2).window(3).collect();
    /// assert_eq!(doubled[99], 198);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn window(mut self, window: usize) -> Self {
        self.feed.set_window(window);
        self
    }
}

impl<R: Send + 'static> Iterator for Imap<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        while self.in_flight.len() < self.feed.window {
            let Some(unit) = self.feed.pull() else { break };
            let task = self.feed.start(unit, |result| result);
            self.in_flight.push_back(task);
        }
        match self.in_flight.pop_front() {
            Some(task) => Some(value_of(task.join())),
            None => self
                .feed
                .input_panic
                .take()
                .map(|panic| resume_unwind(panic)),
        }
    }
}

/// Completed results of an [`ImapUnordered`], and who waits for them.
struct Completions<R> {
    results: Mutex<VecDeque<JobResult<Option<R>>>>,
    /// The number of results in `results`, readable without the lock.
    ready: AtomicUsize,
    /// The consumer, while it waits.
    waiter: Mutex<Option<Waiter>>,
}

impl<R> Probe for Completions<R> {
    fn done(&self) -> bool {
        // Acquire: pairs with the Release increment in `push`, so the result
        // is in the queue when the count says so.
        self.ready.load(Ordering::Acquire) > 0
    }
}

impl<R> Completions<R> {
    fn push(&self, result: JobResult<Option<R>>) {
        lock(&self.results).push_back(result);
        // Release: publishes the pushed result (see `done`). A consumer that
        // registers after our look at `waiter` below locked it after us, and
        // so sees this increment when it probes; one that registered before
        // is woken.
        self.ready.fetch_add(1, Ordering::Release);
        let waiter = lock(&self.waiter).take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    fn wait_pop(&self) -> JobResult<Option<R>> {
        if !self.done() {
            let waiter = Waiter::current();
            *lock(&self.waiter) = Some(waiter.clone());
            waiter.wait_until(self);
        }
        // Relaxed: only this consumer decrements, and `done` acquired the
        // increment that makes this result available.
        self.ready.fetch_sub(1, Ordering::Relaxed);
        match lock(&self.results).pop_front() {
            Some(result) => result,
            None => unreachable!("a completion was counted but not queued"),
        }
    }
}

/// A lazy parallel map that yields results as they complete, made by
/// [`Pool::imap_unordered`]. It keeps a window of items in flight and
/// behaves on drop like [`Imap`].
#[must_use = "an ImapUnordered does nothing until iterated"]
pub struct ImapUnordered<R> {
    feed: Feed<R>,
    completions: Arc<Completions<R>>,
    /// Items started and not yet returned.
    in_flight: usize,
}

impl<R> fmt::Debug for ImapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("window", &self.feed.window)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl<R: Send + 'static> ImapUnordered<R> {
    /// Sets how many items may be in flight at once (see [`Imap::window`]).
    ///
    /// # Panics
    ///
    /// If `window` is 0.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let mut squares: Vec<u64> = pool.imap_unordered(1..=4u64, |x| x * x).window(2).collect();
    /// squares.sort();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn window(mut self, window: usize) -> Self {
        self.feed.set_window(window);
        self
    }
}

impl<R: Send + 'static> Iterator for ImapUnordered<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        while self.in_flight < self.feed.window {
            let Some(unit) = self.feed.pull() else { break };
            let completions = Arc::clone(&self.completions);
            // The task's own handle is not needed: the result arrives
            // through `completions`.
            drop(
                self.feed
                    .start(unit, move |result| completions.push(result)),
            );
            self.in_flight += 1;
        }
        if self.in_flight == 0 {
            return self
                .feed
                .input_panic
                .take()
                .map(|panic| resume_unwind(panic));
        }
        self.in_flight -= 1;
        Some(value_of(self.completions.wait_pop()))
    }
}

impl Pool {
    /// A lazy parallel map over any iterator, yielding results in input order
    /// (Python's `Pool.imap`, with a bounded window).
    ///
    /// The input is pulled only by the iterator's `next()`, on the consumer's
    /// thread, at most a window ahead of the consumer (see [`Imap`]), so an
    /// endless or huge input keeps memory bounded.
    ///
    /// # Panics
    ///
    /// A panic in `f`, or in the input iterator, is re-raised from the
    /// `next()` that would have returned that item.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let lines = vec!["a".to_string(), "bb".to_string(), "ccc".to_string()];
    /// let lengths: Vec<usize> = pool.imap(lines, |line| line.len()).collect();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn imap<I, R, F>(&self, input: I, f: F) -> Imap<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        Imap {
            feed: Feed::new(self, input, f),
            in_flight: VecDeque::new(),
        }
    }

    /// Like [`imap`](Self::imap), yielding results in the order they complete
    /// (Python's `Pool.imap_unordered`).
    ///
    /// # Panics
    ///
    /// A panic in `f` is re-raised from a later `next()`; a panic of the input
    /// iterator once the items before it have been returned.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let mut out: Vec<u32> = pool.imap_unordered(0..10u32, |x| x + 1).collect();
    /// out.sort();
    /// assert_eq!(out, (1..=10).collect::<Vec<_>>());
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn imap_unordered<I, R, F>(&self, input: I, f: F) -> ImapUnordered<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        R: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        ImapUnordered {
            feed: Feed::new(self, input, f),
            completions: Arc::new(Completions {
                results: Mutex::new(VecDeque::new()),
                ready: AtomicUsize::new(0),
                waiter: Mutex::new(None),
            }),
            in_flight: 0,
        }
    }
}
