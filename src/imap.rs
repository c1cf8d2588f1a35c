//! `Pool::imap` and `Pool::imap_unordered`: lazy, bounded parallel maps over
//! any iterator.
//!
//! The consumer's `next()` does all the pulling: it tops the window up by
//! taking items from the input and starting them as tasks, in batches, then
//! waits for the result it is to return. Nothing runs in the background, so
//! at most `window` items have been taken from the input and not yet
//! returned.
//!
//! A batch holds as many items as take about 30 µs, by the cost measured on
//! earlier batches (one item while nothing is measured), and at most half the
//! window per thread: cheap items share the cost of a task, expensive ones
//! still spread one per worker. Unless the user fixes the window, it grows
//! for cheap items, from [`DEFAULT_WINDOW_PER_THREAD`] up to
//! [`MAX_WINDOW_PER_THREAD`] items per thread, so that every thread can hold
//! two full batches: the window bounds the items in flight, and time, not a
//! count, is what a batch is sized by.

mod feed;

use crate::isolation::Call;
use crate::job::JobResult;
use crate::latch::Probe;
use crate::latch::{waiting_for, Waiter};
use crate::panic::DropEach;
use crate::registry::Registry;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering};
use crate::task::Task;
use crate::Pool;
use feed::{BatchOutput, Feed, Pulled};
use std::fmt;
use std::panic::resume_unwind;

/// How many items per worker thread an iterator with the default window keeps
/// in flight (taken from the input and not yet returned) at the start and at
/// the least: items that cost more than about 2 µs stay at this; cheaper ones
/// grow the default window, up to [`MAX_WINDOW_PER_THREAD`].
pub const DEFAULT_WINDOW_PER_THREAD: usize = 32;

/// The most items per worker thread that an iterator with the default window
/// keeps in flight: the bound on its memory, reached by items of about 60 ns
/// or less. The default window grows from [`DEFAULT_WINDOW_PER_THREAD`]
/// towards this so that each thread can hold two batches of about 30 µs of
/// work. The bound counts items, not bytes: for large items or results (a
/// cheap function passing big buffers along), set a window of your own with
/// [`Imap::window`], which stays as set (and may be larger or smaller than
/// this).
pub const MAX_WINDOW_PER_THREAD: usize = 1024;

/// A batch's output, which exists while the iterator does.
fn output_of<R>(output: Option<BatchOutput<R>>) -> BatchOutput<R> {
    match output {
        Some(output) => output,
        None => unreachable!("a batch was skipped while its iterator was alive"),
    }
}

/// Where the finished batches of a stream come from: in input order
/// ([`InOrder`]) or as they complete ([`AsCompleted`]).
trait Batches<R>: Sized {
    /// Starts a batch of the stream.
    fn start(&mut self, feed: &mut Feed<R>, pulled: Pulled<R>);
    /// Whether no batch is in flight.
    fn is_empty(&self) -> bool;
    /// Waits for the next batch to return (one is in flight).
    fn next_output(&mut self) -> BatchOutput<R>;
}

/// The iteration shared by [`Imap`] and [`ImapUnordered`]: keep the window
/// full, return the results of the current batch, then wait for the next.
struct Stream<R, B> {
    feed: Feed<R>,
    batches: B,
    /// Results of the last batch received, being returned.
    ready: DropEach<JobResult<R>>,
}

impl<R: Send + 'static, B: Batches<R>> Stream<R, B> {
    fn next(&mut self) -> Option<R> {
        loop {
            while let Some(pulled) = self
                .feed
                .next_batch(self.batches.is_empty() && self.ready.0.is_empty())
            {
                self.batches.start(&mut self.feed, pulled);
            }
            if let Some(result) = self.ready.0.pop_front() {
                self.feed.returned();
                return Some(result.into_value());
            }
            if self.batches.is_empty() {
                return self
                    .feed
                    .input_panic
                    .take()
                    .map(|panic| resume_unwind(panic));
            }
            let output = self.batches.next_output();
            self.feed.learn(&output);
            self.ready = output.results;
        }
    }
}

impl<R, B> Stream<R, B> {
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("window", &self.feed.window())
            .field("outstanding", &self.feed.outstanding)
            .finish_non_exhaustive()
    }
}

/// Batches returned in input order: each one's task, oldest first.
struct InOrder<R>(DropEach<Task<Option<BatchOutput<R>>>>);

impl<R: Send + 'static> Batches<R> for InOrder<R> {
    fn start(&mut self, feed: &mut Feed<R>, pulled: Pulled<R>) {
        // SAFETY: a null parent: each batch is a task of its own, which
        // `next` joins.
        if let Some(task) = unsafe { feed.start(pulled, std::ptr::null(), |output| output) } {
            self.0 .0.push_back(task);
        }
    }

    fn is_empty(&self) -> bool {
        self.0 .0.is_empty()
    }

    fn next_output(&mut self) -> BatchOutput<R> {
        match self.0 .0.pop_front() {
            Some(task) => output_of(task.join()),
            None => unreachable!("waited for a batch with none in flight"),
        }
    }
}

/// Completed results of an [`ImapUnordered`], and who waits for them.
struct Completions<R> {
    results: Mutex<DropEach<Option<BatchOutput<R>>>>,
    /// The number of results in `results`, readable without the lock.
    ready: AtomicUsize,
    /// The consumer, while it waits.
    waiter: Mutex<Option<Waiter>>,
    /// The call every batch's task is under: the consumer, waiting, runs
    /// only those.
    call: Call,
    /// The pool, compared by address only (see `latch::waiting_for`).
    pool: *const Registry,
}

// SAFETY: `pool` is an address that is never dereferenced; the rest is
// `Send`/`Sync` for a `Send` result.
unsafe impl<R: Send> Send for Completions<R> {}
// SAFETY: as above.
unsafe impl<R: Send> Sync for Completions<R> {}

impl<R> Probe for Completions<R> {
    fn done(&self) -> bool {
        // Acquire: pairs with the Release increment in `push` (more than
        // needed: the `results` mutex publishes the result, see `push`).
        self.ready.load(Ordering::Acquire) > 0
    }
}

impl<R> Completions<R> {
    fn push(&self, result: Option<BatchOutput<R>>) {
        lock(&self.results).0.push_back(result);
        // Release, paired with the Acquire in `done`: more than needed. The
        // result is published by the `results` mutex: a consumer that reads
        // this increment locks `results` after our unlock above (its read
        // cannot see a store that comes after its own lock), so Relaxed
        // would do (the mutant `completion_ready_relaxed` survived every
        // model: an equivalent mutant, `docs/verification.md`). A consumer
        // that registers after our look at `waiter` below locked it after
        // us, and so sees this increment when it probes; one that registered
        // before is woken.
        self.ready.fetch_add(1, Ordering::Release);
        // Wake the waiter but leave it registered: the consumer waits here
        // again and again, and only it knows when a wait is over. (Taking
        // the registration lost wake-ups: a late push could take the
        // registration of the consumer's *next* wait, whose own push then
        // found nobody to wake.)
        #[cfg(not(stealpool_mutant = "completion_takes_waiter"))]
        let waiter = lock(&self.waiter).clone();
        // Mutant `completion_takes_waiter`: the lost wake-up fixed above.
        #[cfg(stealpool_mutant = "completion_takes_waiter")]
        let waiter = lock(&self.waiter).take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    fn wait_pop(&self) -> Option<BatchOutput<R>> {
        if !self.done() {
            let waiter = Waiter::current();
            *lock(&self.waiter) = Some(waiter.clone());
            waiter.wait_until(self, waiting_for(&self.call, self.pool));
            // The wait is over; later pushes need not wake anyone (a wake
            // that still arrives is a harmless spurious one).
            #[cfg(not(stealpool_mutant = "completion_takes_waiter"))]
            {
                *lock(&self.waiter) = None;
            }
        }
        // Relaxed: only this consumer decrements, and `done` acquired the
        // increment that makes this result available.
        self.ready.fetch_sub(1, Ordering::Relaxed);
        match lock(&self.results).0.pop_front() {
            Some(result) => result,
            None => unreachable!("a completion was counted but not queued"),
        }
    }
}

/// Batches returned as they complete, through a completion queue.
struct AsCompleted<R> {
    completions: Arc<Completions<R>>,
    /// Batches started and not yet received.
    in_flight: usize,
}

impl<R: Send + 'static> Batches<R> for AsCompleted<R> {
    fn start(&mut self, feed: &mut Feed<R>, pulled: Pulled<R>) {
        let completions = Arc::clone(&self.completions);
        let parent: *const Call = &self.completions.call;
        // The task's own handle is not needed: the output arrives through
        // `completions`.
        // SAFETY: `parent` lives in the completions, which `finish` holds.
        let task = unsafe { feed.start(pulled, parent, move |output| completions.push(output)) };
        self.in_flight += usize::from(task.is_some());
    }

    fn is_empty(&self) -> bool {
        self.in_flight == 0
    }

    fn next_output(&mut self) -> BatchOutput<R> {
        self.in_flight -= 1;
        output_of(self.completions.wait_pop())
    }
}

/// A lazy parallel map that yields results in input order, made by
/// [`Pool::imap`].
///
/// Each `next()` takes items from the input until `window` of them are in
/// flight, then waits for the oldest. The default window is
/// [`DEFAULT_WINDOW_PER_THREAD`] times the pool's thread count, grown for
/// cheap items (whose batches need more of them) up to
/// [`MAX_WINDOW_PER_THREAD`] times the thread count; set a fixed one with
/// [`window`](Imap::window).
///
/// Dropping the iterator skips the items not yet started and returns at once.
/// If the pool is dropped first, the items already started are finished by
/// the pool's drop, and the items taken after that run on the thread that
/// calls `next()`: nothing hangs and nothing is lost.
#[must_use = "an Imap does nothing until iterated"]
pub struct Imap<R>(Stream<R, InOrder<R>>);

impl<R: Send + 'static> Imap<R> {
    /// Sets how many items may be in flight at once (taken from the input and
    /// not yet returned), instead of the default window that grows with cheap
    /// items. Meant to be called before the first `next()`; called later, a
    /// smaller window holds once the items already in flight have drained.
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
        self.0.feed.set_window(window);
        self
    }
}

impl<R: Send + 'static> Imap<R> {
    /// Batches of exactly `batch` items (the options' chunk size).
    pub(crate) fn with_batch(mut self, batch: usize) -> Self {
        self.0.feed.set_batch(batch);
        self
    }
}

impl<R: Send + 'static> Iterator for Imap<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        self.0.next()
    }
}

impl<R> fmt::Debug for Imap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Imap", f)
    }
}

/// A lazy parallel map that yields results as they complete, made by
/// [`Pool::imap_unordered`]. It keeps a window of items in flight and
/// behaves on drop like [`Imap`].
#[must_use = "an ImapUnordered does nothing until iterated"]
pub struct ImapUnordered<R>(Stream<R, AsCompleted<R>>);

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
        self.0.feed.set_window(window);
        self
    }
}

impl<R: Send + 'static> ImapUnordered<R> {
    /// Batches of exactly `batch` items (the options' chunk size).
    pub(crate) fn with_batch(mut self, batch: usize) -> Self {
        self.0.feed.set_batch(batch);
        self
    }
}

impl<R: Send + 'static> Iterator for ImapUnordered<R> {
    type Item = R;

    fn next(&mut self) -> Option<R> {
        self.0.next()
    }
}

impl<R> fmt::Debug for ImapUnordered<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("ImapUnordered", f)
    }
}

impl Pool {
    /// A lazy parallel map over any iterator, yielding results in input order
    /// (Python's `Pool.imap`, with a bounded window).
    ///
    /// The input is pulled only by the iterator's `next()`, on the consumer's
    /// thread, at most a window ahead of the consumer (see [`Imap`]), so an
    /// endless or huge input keeps memory bounded (by a count of items: see
    /// [`MAX_WINDOW_PER_THREAD`] for large items).
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
        Imap(Stream {
            feed: Feed::new(self, input, f),
            batches: InOrder(DropEach::default()),
            ready: DropEach::default(),
        })
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
        ImapUnordered(Stream {
            feed: Feed::new(self, input, f),
            batches: AsCompleted {
                completions: Arc::new(Completions {
                    results: Mutex::new(DropEach::default()),
                    ready: AtomicUsize::new(0),
                    waiter: Mutex::new(None),
                    call: Call::root(),
                    pool: Arc::as_ptr(self.registry()),
                }),
                in_flight: 0,
            },
            ready: DropEach::default(),
        })
    }
}
