//! A user's concurrent data structure built on a stealpool [`Pool`], and how
//! its author model-checks it with loom: a histogram of small values, filled
//! in parallel by [`Pool::for_each`].
//!
//! Built normally it uses `std`'s primitives. Built with
//! `RUSTFLAGS="--cfg loom"`, both this crate and stealpool's engine use
//! loom's, so a `loom::model` that makes a `Pool` explores the histogram's
//! code and the pool's scheduling together (`tests/loom_models.rs`); with
//! `--cfg shuttle`, shuttle's (`tests/shuttle_models.rs`). The only thing
//! this crate does for it is the `sync` module below: one place that picks
//! the primitives, as stealpool's own `src/sync.rs` does.
//!
//! [`Histogram`] is correct. [`RacyHistogram`] has a real bug of the kind
//! that tests rarely show and models find at once: it counts the values it
//! has seen with a load and a store instead of one atomic add, so two items
//! that count at the same time lose one of the two counts.
//!
//! ```
//! use stealpool::Pool;
//! use stealpool_loom_example::Histogram;
//!
//! let pool = Pool::new(2)?;
//! let histogram = Histogram::new(4);
//! histogram.add_all(&pool, &[0, 1, 1, 3, 9]);
//! assert_eq!(histogram.counts(), [1, 2, 0, 1]);
//! assert_eq!(histogram.seen(), 5);
//! # Ok::<(), stealpool::BuildError>(())
//! ```

use stealpool::Pool;

/// The primitives: loom's or shuttle's under their cfg, `std`'s otherwise.
mod sync {
    #[cfg(loom)]
    pub(crate) use loom::sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, MutexGuard,
    };
    #[cfg(all(shuttle, not(loom)))]
    pub(crate) use shuttle::sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, MutexGuard,
    };
    #[cfg(not(any(loom, shuttle)))]
    pub(crate) use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex, MutexGuard,
    };
}

use sync::{AtomicUsize, Mutex, MutexGuard, Ordering};

/// Counts of values per bucket (values past the last bucket are only
/// counted as seen), filled in parallel.
#[derive(Debug)]
pub struct Histogram {
    buckets: Mutex<Vec<u64>>,
    seen: AtomicUsize,
}

impl Histogram {
    /// An empty histogram of `buckets` buckets.
    ///
    /// ```
    /// let histogram = stealpool_loom_example::Histogram::new(3);
    /// assert_eq!(histogram.counts(), [0, 0, 0]);
    /// ```
    pub fn new(buckets: usize) -> Histogram {
        Histogram {
            buckets: Mutex::new(vec![0; buckets]),
            seen: AtomicUsize::new(0),
        }
    }

    /// Adds every value of `values`, in parallel on `pool`.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(2)?;
    /// let histogram = stealpool_loom_example::Histogram::new(2);
    /// histogram.add_all(&pool, &[1, 1, 5]);
    /// assert_eq!(histogram.counts(), [0, 2]);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn add_all(&self, pool: &Pool, values: &[usize]) {
        pool.for_each(values, |&value| {
            if let Some(count) = lock(&self.buckets).get_mut(value) {
                *count += 1;
            }
            // Relaxed is enough: nothing is published through the count,
            // and `for_each` returns only after every item, with their
            // writes visible to the caller.
            self.seen.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// The count of each bucket.
    ///
    /// ```
    /// let histogram = stealpool_loom_example::Histogram::new(1);
    /// assert_eq!(histogram.counts(), [0]);
    /// ```
    pub fn counts(&self) -> Vec<u64> {
        lock(&self.buckets).clone()
    }

    /// How many values were added, in or past the buckets.
    ///
    /// ```
    /// let histogram = stealpool_loom_example::Histogram::new(1);
    /// assert_eq!(histogram.seen(), 0);
    /// ```
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }
}

/// [`Histogram`] with a check-then-act race in its count of values seen: a
/// load, then a store of one more. Two items that count at once both load
/// the same number, and one count is lost. Single-threaded tests pass; the
/// models in `tests/` find the race.
///
/// ```
/// let pool = stealpool::Pool::new(1)?;
/// let histogram = stealpool_loom_example::RacyHistogram::new(2);
/// histogram.add_all(&pool, &[0, 1]);
/// assert_eq!(histogram.seen(), 2); // one worker: no race
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Debug)]
pub struct RacyHistogram {
    buckets: Mutex<Vec<u64>>,
    seen: AtomicUsize,
}

impl RacyHistogram {
    /// An empty histogram of `buckets` buckets.
    ///
    /// ```
    /// let histogram = stealpool_loom_example::RacyHistogram::new(3);
    /// assert_eq!(histogram.seen(), 0);
    /// ```
    pub fn new(buckets: usize) -> RacyHistogram {
        RacyHistogram {
            buckets: Mutex::new(vec![0; buckets]),
            seen: AtomicUsize::new(0),
        }
    }

    /// Adds every value of `values`, in parallel on `pool`, losing counts of
    /// values seen when two items count at once.
    ///
    /// ```
    /// let pool = stealpool::Pool::new(1)?;
    /// let histogram = stealpool_loom_example::RacyHistogram::new(2);
    /// histogram.add_all(&pool, &[1]);
    /// assert_eq!(histogram.seen(), 1);
    /// # Ok::<(), stealpool::BuildError>(())
    /// ```
    pub fn add_all(&self, pool: &Pool, values: &[usize]) {
        pool.for_each(values, |&value| {
            if let Some(count) = lock(&self.buckets).get_mut(value) {
                *count += 1;
            }
            // The bug: another item may count between the load and the
            // store (`fetch_add` is the fix).
            let seen = self.seen.load(Ordering::Relaxed);
            self.seen.store(seen + 1, Ordering::Relaxed);
        });
    }

    /// How many values were counted as seen.
    ///
    /// ```
    /// let histogram = stealpool_loom_example::RacyHistogram::new(1);
    /// assert_eq!(histogram.seen(), 0);
    /// ```
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }
}

/// Locks `mutex`; a poisoned lock (an item panicked) still holds counts.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
