//! Scheduler counters: cheap enough to stay on in release builds.
//!
//! Each worker owns its counters (cache-padded, so workers never share a
//! line) and is their only writer, so an increment is a relaxed load and store,
//! not a read-modify-write. Readers sum them with relaxed loads: every counter
//! is monotonic, and a sum that lags by a few events is fine for statistics.
//!
//! The counters use `std`'s atomics even under loom: they carry no
//! synchronization, and modelling them would only multiply the interleavings
//! that loom explores without checking anything more.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonic event counter.
#[derive(Default, Debug)]
pub(crate) struct StatCounter(AtomicU64);

impl StatCounter {
    /// Adds `n`; only for a counter with a single writer.
    #[inline(always)]
    pub(crate) fn add(&self, n: u64) {
        // Relaxed load + store: this thread is the only writer, so no
        // increment can be lost; readers only need some recent value.
        self.0
            .store(self.0.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Adds `n` from any thread.
    #[inline]
    pub(crate) fn add_shared(&self, n: u64) {
        // Relaxed: the counter publishes nothing but itself.
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Raises the value to `n` if it is lower, from any thread.
    #[inline]
    pub(crate) fn max_shared(&self, n: u64) {
        // Relaxed: as `add_shared`.
        self.0.fetch_max(n, Ordering::Relaxed);
    }

    /// Sets the value to `n` if it is still zero, from any thread. Returns
    /// whether this call set it.
    #[inline]
    pub(crate) fn set_first(&self, n: u64) -> bool {
        // Relaxed: as `add_shared`.
        self.0
            .compare_exchange(0, n, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Replaces the value, from any thread (a lost update is acceptable:
    /// for an estimate, not a count).
    #[inline]
    pub(crate) fn set(&self, n: u64) {
        // Relaxed: as `add_shared`.
        self.0.store(n, Ordering::Relaxed);
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        // Relaxed: see the module documentation.
        self.0.load(Ordering::Relaxed)
    }
}

/// One worker's counters.
#[derive(Default, Debug)]
pub(crate) struct WorkerStats {
    pub(crate) jobs_run: StatCounter,
    pub(crate) local_pops: StatCounter,
    pub(crate) injector_steals: StatCounter,
    pub(crate) worker_steals: StatCounter,
    pub(crate) failed_steals: StatCounter,
    pub(crate) set_aside: StatCounter,
}

impl WorkerStats {
    pub(crate) fn add_to(&self, total: &mut Stats) {
        total.jobs_run += self.jobs_run.get();
        total.local_pops += self.local_pops.get();
        total.injector_steals += self.injector_steals.get();
        total.worker_steals += self.worker_steals.get();
        total.failed_steals += self.failed_steals.get();
        total.set_aside += self.set_aside.get();
    }
}

/// A snapshot of a pool's scheduler counters, summed over its workers.
///
/// Every field counts events since the pool was built and never decreases, so
/// the difference of two snapshots counts the events in between.
///
/// ```
/// let pool = stealpool::Pool::new(2)?;
/// let before = pool.stats();
/// let squares = pool.map(&[1, 2, 3], |x| x * x);
/// let after = pool.stats();
/// assert_eq!(squares, [1, 4, 9]);
/// assert!(after.jobs_run >= before.jobs_run);
/// # Ok::<(), stealpool::BuildError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Jobs the workers ran (a map's helper tickets included; work that a
    /// caller does itself is not a job).
    pub jobs_run: u64,
    /// Jobs a worker took from its own deque.
    pub local_pops: u64,
    /// Successful steals from the global injector (a batch counts once).
    pub injector_steals: u64,
    /// Successful steals from another worker's deque.
    pub worker_steals: u64,
    /// Searches of every queue that found nothing.
    pub failed_steals: u64,
    /// Jobs that a worker waiting inside a call took but did not run,
    /// because they belong to no call under the awaited one (see the crate
    /// documentation, "Waiting runs only the call's work"): each went back on
    /// the pool's global queue.
    pub set_aside: u64,
    /// Times a worker blocked in the sleep protocol (counted as it blocks, so
    /// a worker asleep now is included).
    pub parks: u64,
    /// Times a sleeping worker was woken.
    pub wakeups: u64,
    /// Calls of the map family that ran past their solo start and asked the
    /// workers for help (a call too short to ask stays on its caller).
    pub calls_asking_help: u64,
    /// Of those, the calls that at least one helper started on.
    pub calls_helped: u64,
    /// Helpers that started on those calls, all calls together (at most
    /// `threads - 1` per call).
    pub helpers_started: u64,
    /// Summed over the helped calls: nanoseconds from the call's request for
    /// help until its first helper started. Divided by `calls_helped`, the
    /// mean time a call runs alone after asking.
    pub first_helper_nanos: u64,
    /// Summed over the helped calls: nanoseconds from the request for help
    /// until the last helper started.
    pub last_helper_nanos: u64,
}
