//! Latches: one-shot "done" flags that a thread waits on.
//!
//! A latch starts unset, is set exactly once, and tells its setter how to wake
//! the one thread that waits on it. Two kinds of waiter exist:
//!
//! - a **worker** of some pool keeps running that pool's jobs while it waits
//!   (`WorkerThread::wait_until`), and sleeps through the pool's sleep protocol
//!   when it runs out; setting the latch wakes that exact worker.
//! - a **plain thread** (outside every pool) has nothing to run and parks;
//!   setting the latch unparks it.
//!
//! The memory of a latch usually lives on the waiter's stack, so the waiter may
//! free it as soon as it sees the latch set. [`Latch::set`] therefore copies out
//! everything it needs to wake the waiter *before* it publishes the flag, and
//! touches nothing of the latch afterwards.

use crate::registry::Registry;
use crate::sync::Ordering;
use crate::sync::{thread, Arc, AtomicBool, Thread};

/// How to wake the thread that waits on a latch.
pub(crate) enum Waiter {
    /// Worker `index` of `registry`: it sleeps on its own slot of the
    /// registry's sleep state.
    Worker {
        /// The registry the waiting worker belongs to (not necessarily the one
        /// whose job sets the latch: see cross-pool calls in `pool.rs`).
        registry: Arc<Registry>,
        /// The waiting worker's index in `registry`.
        index: usize,
    },
    /// A thread outside every pool, parked until the latch is set.
    Thread(Thread),
}

impl Waiter {
    /// The waiter for the calling thread: its worker slot if it is a worker of
    /// any pool, otherwise the thread itself.
    pub(crate) fn current() -> Waiter {
        match crate::worker::WorkerThread::current() {
            Some(worker) => Waiter::Worker {
                registry: Arc::clone(worker.registry()),
                index: worker.index(),
            },
            None => Waiter::Thread(thread::current()),
        }
    }
}

/// A one-shot flag with a known waiter.
pub(crate) struct Latch {
    set: AtomicBool,
    waiter: Waiter,
}

impl Latch {
    /// A new, unset latch that `waiter` will wait on.
    pub(crate) fn new(waiter: Waiter) -> Latch {
        Latch {
            set: AtomicBool::new(false),
            waiter,
        }
    }

    /// Whether the latch is set. When it returns `true`, everything the setter
    /// did before [`Latch::set`] is visible to the caller.
    #[inline]
    pub(crate) fn probe(&self) -> bool {
        // Acquire: pairs with the Release store in `set`, so the results that
        // the setter wrote before setting are visible to the waiter.
        self.set.load(Ordering::Acquire)
    }

    /// Sets the latch and wakes its waiter.
    ///
    /// # Safety
    ///
    /// `this` points to a live latch, set at most once. The latch may be freed
    /// by its waiter as soon as the flag is published, so `this` is not used
    /// after that point.
    pub(crate) unsafe fn set(this: *const Latch) {
        // SAFETY: the caller guarantees `this` is alive until we publish.
        let latch = unsafe { &*this };
        match &latch.waiter {
            Waiter::Worker { registry, index } => {
                // Keep the waiter's registry alive across the wake-up: once the
                // flag is set, the waiter may return and drop its own handle.
                let registry = Arc::clone(registry);
                let index = *index;
                // Release: publishes the setter's writes (results) to the
                // waiter's Acquire `probe`.
                latch.set.store(true, Ordering::Release);
                registry.sleep().wake_worker_for_latch(index);
            }
            Waiter::Thread(thread) => {
                let thread = thread.clone();
                // Release: as above. `unpark` after the store cannot be lost:
                // the park token is kept if the waiter has not parked yet.
                latch.set.store(true, Ordering::Release);
                thread.unpark();
            }
        }
    }

    /// Blocks the calling thread until the latch is set, in the way its waiter
    /// kind requires: a worker runs other jobs, a plain thread parks.
    ///
    /// The calling thread must be the latch's waiter.
    pub(crate) fn wait(&self) {
        match &self.waiter {
            Waiter::Worker { .. } => match crate::worker::WorkerThread::current() {
                Some(worker) => worker.wait_until(self),
                None => unreachable!("a worker latch waited on outside its worker"),
            },
            Waiter::Thread(_) => {
                // `park` may return spuriously, and an unpark may arrive from
                // an earlier latch of this thread: only the flag counts.
                while !self.probe() {
                    thread::park();
                }
            }
        }
    }
}
