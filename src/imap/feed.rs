//! The producer side of `imap`: pulling items from the input into batches,
//! sizing the batches and the default window by the measured cost of an
//! item, and running a batch as a task.

use super::DEFAULT_WINDOW_PER_THREAD;
use crate::isolation::Call;
use crate::job::JobResult;
use crate::panic::{drop_caught, report, DropEach, Panic};
use crate::registry::Registry;
use crate::sync::{Arc, AtomicBool, Instant, Ordering};
use crate::task::{spawn_in, Task};
use crate::Pool;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The input and the function, type-erased: takes up to `n` items from the
/// input and returns the work of mapping them.
type Pull<R> = Box<dyn FnMut(usize) -> Pulled<R> + Send>;

/// Items taken from the input by one pull.
pub(super) struct Pulled<R> {
    /// How many items `work` maps.
    len: usize,
    /// Maps the items, each under its own `catch_unwind`, so a panic is
    /// raised in that item's turn and the later items still run.
    work: Box<dyn FnOnce() -> VecDeque<JobResult<R>> + Send>,
    /// The input ended (or panicked) during this pull.
    done: bool,
    /// The input iterator's panic, raised after the items before it.
    panic: Option<Panic>,
}

/// The results of one batch, in the batch's order, each item's panic kept
/// apart so that it is raised in its turn.
pub(super) struct BatchOutput<R> {
    pub(super) results: DropEach<JobResult<R>>,
    /// Nanoseconds the batch took to run, for sizing later batches.
    nanos: u64,
}

/// How long one batch should run: long enough that the cost of a task (an
/// allocation, a queue push, perhaps a wake-up) is a few percent of it.
const BATCH_TARGET_NANOS: f64 = 30_000.0;

/// What both iterators share: the pool, the input, the window and the batch
/// sizing.
pub(super) struct Feed<R> {
    registry: Arc<Registry>,
    pull: Pull<R>,
    /// The window set with `window(n)`; `None`: the adaptive default.
    fixed_window: Option<usize>,
    /// The batch length set with a chunk size; `None`: sized by the
    /// measured cost of an item.
    fixed_batch: Option<usize>,
    threads: usize,
    /// Items taken from the input and not yet returned.
    pub(super) outstanding: usize,
    /// Estimated cost of one item, in nanoseconds (none measured yet: 0).
    item_nanos: f64,
    /// Set when the iterator is dropped: work not yet started is skipped.
    cancelled: Arc<AtomicBool>,
    /// The input is exhausted (or panicked).
    input_done: bool,
    /// A panic of the input iterator, re-raised in its turn.
    pub(super) input_panic: Option<Panic>,
}

impl<R> Feed<R> {
    /// How many items may be in flight: the fixed window, or
    /// [`DEFAULT_WINDOW_PER_THREAD`] per thread, grown to two batches of
    /// [`BATCH_TARGET_NANOS`] per thread for cheap items, at most
    /// [`MAX_WINDOW_PER_THREAD`] per thread.
    pub(super) fn window(&self) -> usize {
        if let Some(window) = self.fixed_window {
            return window;
        }
        if let Some(batch) = self.fixed_batch {
            // Two batches per thread, as the adaptive window aims for.
            let per_thread = batch.saturating_mul(2).max(DEFAULT_WINDOW_PER_THREAD);
            return per_thread.saturating_mul(self.threads);
        }
        let mut per_thread = DEFAULT_WINDOW_PER_THREAD;
        if self.item_nanos > 0.0 {
            // Saturating float-to-int cast: a tiny cost gives a huge fit,
            // clamped below.
            let two_batches = (2.0 * BATCH_TARGET_NANOS / self.item_nanos) as usize;
            per_thread = two_batches.clamp(DEFAULT_WINDOW_PER_THREAD, super::MAX_WINDOW_PER_THREAD);
        }
        per_thread.saturating_mul(self.threads)
    }
}

impl<R: Send + 'static> Feed<R> {
    pub(super) fn new<I, F>(pool: &Pool, input: I, f: F) -> Feed<R>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
    {
        let mut input = input.into_iter();
        let f = Arc::new(f);
        let pull: Pull<R> = Box::new(move |n| {
            let mut items = Vec::with_capacity(n);
            let mut pulled = Pulled {
                len: 0,
                work: Box::new(VecDeque::new),
                done: false,
                panic: None,
            };
            while items.len() < n {
                match catch_unwind(AssertUnwindSafe(|| input.next())) {
                    Ok(Some(item)) => items.push(item),
                    Ok(None) => pulled.done = true,
                    Err(panic) => {
                        pulled.done = true;
                        pulled.panic = Some(panic);
                    }
                }
                if pulled.done {
                    break;
                }
            }
            pulled.len = items.len();
            let f = Arc::clone(&f);
            // Items dropped unmapped (a batch skipped after the iterator was
            // dropped) are dropped one by one, like every user value the
            // engine drops (see `crate::panic`).
            let mut items = DropEach(VecDeque::from(items));
            pulled.work = Box::new(move || {
                items
                    .0
                    .drain(..)
                    .map(|item| JobResult::call(|| f(item)))
                    .collect()
            });
            pulled
        });
        Feed {
            registry: Arc::clone(pool.registry()),
            pull,
            fixed_window: None,
            fixed_batch: None,
            threads: pool.threads(),
            outstanding: 0,
            item_nanos: 0.0,
            cancelled: Arc::new(AtomicBool::new(false)),
            input_done: false,
            input_panic: None,
        }
    }

    /// How many items the next batch should hold: about
    /// [`BATCH_TARGET_NANOS`] of work, and at most half the window per
    /// thread, so that every worker can have a batch while the consumer
    /// drains another.
    pub(super) fn batch_len(&self) -> usize {
        if let Some(batch) = self.fixed_batch {
            // A smaller fixed window still bounds what is in flight: the
            // batch is cut to the room left (see `next_batch`).
            return batch;
        }
        let most = (self.window() / (2 * self.threads)).max(1);
        if self.item_nanos > 0.0 {
            let fit = (BATCH_TARGET_NANOS / self.item_nanos) as usize;
            return fit.clamp(1, most);
        }
        // Cost unknown: one item, so that an expensive first item does not
        // hold others back.
        1
    }

    /// Folds a finished batch's timing into the cost estimate.
    ///
    /// (Under a model checker a batch takes "forever" by the clock, so
    /// batches keep one item and the window its least.)
    pub(super) fn learn(&mut self, output: &BatchOutput<R>) {
        if !output.results.0.is_empty() {
            let per_item = output.nanos as f64 / output.results.0.len() as f64;
            self.item_nanos = if self.item_nanos == 0.0 {
                per_item
            } else {
                0.5 * self.item_nanos + 0.5 * per_item
            };
        }
    }

    /// Takes the next batch from the input, if the window has room for one
    /// (or for anything at all, when `idle`: nothing else is in flight).
    pub(super) fn next_batch(&mut self, idle: bool) -> Option<Pulled<R>> {
        // Saturating: an adaptive window shrinks when items get dearer, and
        // may drop below what is already in flight.
        let room = self.window().saturating_sub(self.outstanding);
        let len = self.batch_len();
        if room == 0 || self.input_done || (room < len && !idle) {
            return None;
        }
        let pulled = (self.pull)(len.min(room));
        self.outstanding += pulled.len;
        if pulled.done {
            self.input_done = true;
        }
        (pulled.len > 0 || pulled.panic.is_some()).then_some(pulled)
    }

    /// Starts a batch on the pool, as a task under `parent` (null: a task of
    /// its own); `finish` receives its output (or nothing, if the iterator
    /// was dropped before the batch started).
    ///
    /// # Safety
    ///
    /// `parent` is null or a live node that `finish` keeps alive.
    pub(super) unsafe fn start<T: Send + 'static>(
        &mut self,
        pulled: Pulled<R>,
        parent: *const Call,
        finish: impl FnOnce(Option<BatchOutput<R>>) -> T + Send + 'static,
    ) -> Option<Task<T>> {
        if let Some(panic) = pulled.panic {
            self.input_panic = Some(panic);
        }
        if pulled.len == 0 {
            return None;
        }
        let cancelled = Arc::clone(&self.cancelled);
        let work = pulled.work;
        // SAFETY: `finish` keeps `parent` alive (our caller's contract).
        Some(unsafe {
            spawn_in(&self.registry, parent, move || {
                finish(run_batch(work, &cancelled))
            })
        })
    }

    /// Counts one item as returned to the consumer.
    pub(super) fn returned(&mut self) {
        self.outstanding -= 1;
    }

    pub(super) fn set_window(&mut self, window: usize) {
        assert!(window > 0, "stealpool: an imap window must be at least 1");
        self.fixed_window = Some(window);
    }

    /// Batches of exactly `batch` items (the last, or one cut by a small
    /// fixed window, may be shorter). `batch` is at least 1 (the options
    /// check it).
    pub(super) fn set_batch(&mut self, batch: usize) {
        self.fixed_batch = Some(batch.max(1));
    }
}

/// Runs a batch, timing it, unless the iterator was dropped.
fn run_batch<R>(
    work: Box<dyn FnOnce() -> VecDeque<JobResult<R>> + Send>,
    cancelled: &AtomicBool,
) -> Option<BatchOutput<R>> {
    // Relaxed: a hint; a batch that starts just before the drop is simply
    // run and its results discarded.
    if cancelled.load(Ordering::Relaxed) {
        // The batch's items are dropped unmapped: user values whose drop may
        // panic, with nobody left to receive the panic.
        if let Some(panic) = drop_caught(work) {
            report(
                "dropping the items of a skipped imap batch",
                crate::global::current_thread_index(),
                panic,
            );
        }
        return None;
    }
    let started = Instant::now();
    let results = work();
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Some(BatchOutput {
        results: DropEach(results),
        nanos,
    })
}

impl<R> Drop for Feed<R> {
    fn drop(&mut self) {
        // Relaxed: a hint to the batches still queued (see `run_batch`).
        self.cancelled.store(true, Ordering::Relaxed);
    }
}
