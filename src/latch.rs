//! Latches: one-shot "done" flags that a thread waits on.
//!
//! A latch starts unset, is set exactly once, and tells its setter how to wake
//! the one thread that waits on it. Two kinds of waiter exist:
//!
//! - a **worker** of some pool keeps running that pool's jobs while it waits
//!   (`WorkerThread::wait_until`), and sleeps through the pool's sleep protocol
//!   when it runs out; setting the latch wakes that exact worker. When the
//!   setter is sure to be a worker of the same pool, the waiter is just an
//!   index; otherwise it carries the waiting worker's registry.
//! - a **plain thread** (outside every pool) has nothing to run and parks;
//!   setting the latch unparks it.
//!
//! The memory of a latch usually lives on the waiter's stack, so the waiter may
//! free it as soon as it sees the latch set. [`Latch::set`] therefore copies out
//! everything it needs to wake the waiter *before* it publishes the flag, and
//! touches nothing of the latch afterwards.

use crate::isolation::{Call, Waiting};
use crate::registry::Registry;
use crate::sync::{current_unparker, lock, park, Arc, AtomicBool, Mutex, Ordering, Unparker};
use crate::worker_thread::WorkerThread;
use std::task::Waker;

/// A condition a waiter waits for (a worker running other jobs meanwhile,
/// or a plain thread parked): a latch, a scope's or a completion queue's
/// count, or a pool's shutdown.
pub(crate) trait Probe {
    /// Whether the wait is over.
    fn done(&self) -> bool;
}

impl Probe for Latch {
    fn done(&self) -> bool {
        self.probe()
    }
}

/// How to wake the thread that waits on a latch.
#[derive(Clone)]
pub(crate) enum Waiter {
    /// Worker `index` of the pool whose workers set the latch. The setter
    /// finds the registry through its own thread, so making this waiter costs
    /// nothing (no reference count): it is the waiter of `join`'s hot path.
    Worker(usize),
    /// Worker `index` of `registry`, which may be another pool than the
    /// setter's (a cross-pool call) or unknown in advance (`Task::join`).
    ForeignWorker {
        /// The registry the waiting worker belongs to; holding it keeps it
        /// alive until the waiter is woken.
        registry: Arc<Registry>,
        /// The waiting worker's index in `registry`.
        index: usize,
    },
    /// A thread outside every pool, parked until the latch is set.
    Thread(Unparker),
    /// A future awaiting a task (`impl Future for Task`): its executor's
    /// waker, woken when the latch is set. Only a [`LateLatch`] has one.
    Future(Waker),
}

impl Waiter {
    /// The waiter for the calling thread, for a latch that only workers of
    /// `registry` (or the caller itself) will set.
    pub(crate) fn current_for(registry: &Registry) -> Waiter {
        match WorkerThread::current() {
            Some(worker) if worker.registry().same(registry) => Waiter::Worker(worker.index()),
            Some(worker) => Waiter::ForeignWorker {
                registry: Arc::clone(worker.registry()),
                index: worker.index(),
            },
            None => Waiter::Thread(current_unparker()),
        }
    }

    /// The waiter for the calling thread, for a latch that any thread may set.
    pub(crate) fn current() -> Waiter {
        match WorkerThread::current() {
            Some(worker) => Waiter::ForeignWorker {
                registry: Arc::clone(worker.registry()),
                index: worker.index(),
            },
            None => Waiter::Thread(current_unparker()),
        }
    }

    /// Wakes the waiter, after the condition it waits for was published.
    pub(crate) fn wake(self) {
        match self {
            Waiter::Worker(index) => match WorkerThread::current() {
                Some(setter) => setter.registry().sleep().wake_worker_for_latch(index),
                // Only a worker of the waiter's pool may set such a latch.
                None => unreachable!("a worker latch set outside its pool"),
            },
            Waiter::ForeignWorker { registry, index } => {
                // Mutant `foreign_wake_wrong_pool`: wakes worker `index` of
                // the setter's pool, as for `Waiter::Worker`, instead of the
                // waiter's own pool.
                #[cfg(stealpool_mutant = "foreign_wake_wrong_pool")]
                let registry = match WorkerThread::current() {
                    Some(setter) => Arc::clone(setter.registry()),
                    None => registry,
                };
                registry.sleep().wake_worker_for_latch(index);
            }
            // `unpark` after the store cannot be lost: the park token is
            // kept if the waiter has not parked yet.
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Future(waker) => waker.wake(),
        }
    }

    /// Blocks until `probe` is done: a worker runs the jobs of its pool that
    /// `waiting` accepts meanwhile, a plain thread parks.
    pub(crate) fn wait_until(&self, probe: &impl Probe, waiting: Waiting) {
        match self {
            Waiter::Worker(_) | Waiter::ForeignWorker { .. } => match WorkerThread::current() {
                Some(worker) => worker.wait_until(probe, waiting),
                None => unreachable!("a worker latch waited on outside its worker"),
            },
            Waiter::Thread(_) => {
                // `park` may return spuriously, and an unpark may be left
                // over from an earlier latch of this thread: only the probe
                // counts.
                while !probe.done() {
                    park();
                }
            }
            // A future never blocks: it registers its waker and returns.
            Waiter::Future(_) => unreachable!("a future's waiter waited on"),
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
    #[cfg_attr(stealpool_mutant = "latch_relaxed", allow(unreachable_code))]
    pub(crate) fn probe(&self) -> bool {
        // Mutant `latch_relaxed`: the Release/Acquire pair weakened to Relaxed.
        #[cfg(stealpool_mutant = "latch_relaxed")]
        return self.set.load(Ordering::Relaxed);
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
        // Copy out how to wake the waiter first: once the flag is set, the
        // waiter may return and free the latch (and drop its own handles).
        let waiter = latch.waiter.clone();
        // Release: publishes the setter's writes (results) to the waiter's
        // Acquire `probe`.
        #[cfg(not(stealpool_mutant = "latch_relaxed"))]
        latch.set.store(true, Ordering::Release);
        #[cfg(stealpool_mutant = "latch_relaxed")]
        latch.set.store(true, Ordering::Relaxed);
        waiter.wake();
    }

    /// Blocks the calling thread, which must be the latch's waiter, until the
    /// latch is set: a worker runs the jobs of `call` (the call whose work
    /// sets the latch) meanwhile, a plain thread parks.
    ///
    /// A worker of the setters' pool (`Waiter::Worker`) runs only jobs under
    /// `call`; a worker of another pool also runs its own pool's jobs of
    /// other call trees (`isolation::Waiting::Foreign`).
    pub(crate) fn wait(&self, call: *const Call) {
        let own = matches!(self.waiter, Waiter::Worker(_));
        self.waiter.wait_until(self, Waiting::for_call(call, own));
    }
}

/// A one-shot flag whose waiter registers late, and may be any thread: the
/// completion of a spawned task, which whoever holds the `Task` may join.
pub(crate) struct LateLatch {
    set: AtomicBool,
    waiter: Mutex<Option<Waiter>>,
}

impl crate::latch::Probe for LateLatch {
    fn done(&self) -> bool {
        self.probe()
    }
}

impl LateLatch {
    pub(crate) fn new() -> LateLatch {
        LateLatch {
            set: AtomicBool::new(false),
            waiter: Mutex::new(None),
        }
    }

    /// Whether the latch is set (with the setter's writes visible).
    #[cfg_attr(stealpool_mutant = "late_latch_relaxed", allow(unreachable_code))]
    pub(crate) fn probe(&self) -> bool {
        // Mutant `late_latch_relaxed`: the Release/Acquire pair weakened to Relaxed.
        #[cfg(stealpool_mutant = "late_latch_relaxed")]
        return self.set.load(Ordering::Relaxed);
        // Acquire: pairs with the Release store in `set`.
        self.set.load(Ordering::Acquire)
    }

    /// Sets the latch and wakes the waiter, if one has registered.
    ///
    /// The latch lives in shared, reference-counted memory, so unlike
    /// [`Latch::set`] this may touch it after publishing.
    pub(crate) fn set(&self) {
        // Release: publishes the result to `probe`. A waiter that registers
        // after our look at `waiter` below locked the mutex after us, so it
        // sees this store when it probes; one that registered before is
        // found and woken.
        // Mutant `late_latch_take_first`: looks for a waiter before setting
        // the flag, so a waiter that registers in between sleeps forever.
        #[cfg(stealpool_mutant = "late_latch_take_first")]
        let waiter = lock(&self.waiter).take();
        #[cfg(not(stealpool_mutant = "late_latch_relaxed"))]
        self.set.store(true, Ordering::Release);
        // Mutant `late_latch_relaxed`: the Release/Acquire pair weakened to Relaxed.
        #[cfg(stealpool_mutant = "late_latch_relaxed")]
        self.set.store(true, Ordering::Relaxed);
        #[cfg(not(stealpool_mutant = "late_latch_take_first"))]
        let waiter = lock(&self.waiter).take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    /// Blocks the calling thread until the latch is set (see [`Latch::wait`]):
    /// `call` is the call whose work sets it, made on `pool` (compared by
    /// address only).
    pub(crate) fn wait(&self, call: *const Call, pool: *const Registry) {
        if self.probe() {
            return;
        }
        let waiter = Waiter::current();
        *lock(&self.waiter) = Some(waiter.clone());
        waiter.wait_until(self, waiting_for(call, pool));
    }
}

impl LateLatch {
    /// Registers `waker` to be woken when the latch is set, unless the latch
    /// is set already; returns whether it is set (then nothing is
    /// registered, and the caller may take the result).
    ///
    /// The registration replaces any earlier waiter (a future polled again,
    /// possibly with another waker). Under the waiter's mutex, as `wait`
    /// does: a setter that looked for a waiter before we registered had set
    /// the flag before that (its store comes before its lock), and we lock
    /// after its unlock, so the probe after our registration sees the flag;
    /// a setter that looks after us finds the waker.
    pub(crate) fn register_waker(&self, waker: &Waker) -> bool {
        if self.probe() {
            return true;
        }
        {
            let mut waiter = lock(&self.waiter);
            match &*waiter {
                Some(Waiter::Future(old)) if old.will_wake(waker) => {}
                _ => *waiter = Some(Waiter::Future(waker.clone())),
            }
        }
        // Mutant `task_future_skips_recheck`: returns pending without
        // looking again, and sleeps through a set that came before the
        // registration.
        #[cfg(stealpool_mutant = "task_future_skips_recheck")]
        return false;
        #[cfg_attr(
            stealpool_mutant = "task_future_skips_recheck",
            allow(unreachable_code)
        )]
        self.probe()
    }
}

/// The waiting rule for the calling thread's wait on `call`, made on `pool`
/// (compared by address only), when the waiter may be a worker of any pool.
pub(crate) fn waiting_for(call: *const Call, pool: *const Registry) -> Waiting {
    let own = WorkerThread::current()
        .is_some_and(|worker| std::ptr::eq(Arc::as_ptr(worker.registry()), pool));
    Waiting::for_call(call, own)
}
