//! The synchronization facade: every atomic, lock, condition variable, thread,
//! park and cell that the engine uses comes from here, and its clock.
//!
//! Normally these are the `std` primitives. Under `--cfg loom` they are loom's
//! model-checked twins, and under `--cfg shuttle` shuttle's, so the loom models
//! and the shuttle schedules in `loom-tests/` explore exactly the code that
//! ships (the approach of tokio's `src/loom/` module). Nothing in the
//! engine may name `std::sync`, `std::thread` or `std::cell::UnsafeCell`
//! directly; `.ci/run` greps `src/` to keep it that way.
//!
//! The facade is deliberately thin: it only smooths over the API differences
//! between `std` and loom (lock poisoning, `UnsafeCell` access), so that reading
//! the engine tells you exactly which primitive runs.

/// `std::cell::UnsafeCell` behind loom's closure-based access API, so that
/// under loom every access to a cell is checked for data races. (Shuttle does
/// not check data races: it gets this one too.)
#[cfg(not(loom))]
mod cell {
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a mutable pointer to the contents; whoever
        /// dereferences it upholds the aliasing rules.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(not(any(loom, shuttle)))]
mod imp {
    pub(crate) use super::cell::UnsafeCell;
    pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    /// Spins once, telling the CPU that this is a busy-wait loop.
    #[inline(always)]
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use loom::thread;
    pub(crate) use loom::thread_local;

    /// Under loom a busy-wait must yield, or the model never lets the thread
    /// it waits for run.
    #[inline(always)]
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
    }
}

/// Shuttle's twins of the `std` primitives (`--cfg shuttle`, without loom):
/// every atomic access, lock and park is a point where shuttle's schedulers
/// may switch threads. Shuttle runs every atomic as `SeqCst`, so it explores
/// interleavings of bigger programs than loom can, but no weak-memory
/// behaviour (`docs/verification.md`).
#[cfg(all(shuttle, not(loom)))]
mod imp {
    pub(crate) use super::cell::UnsafeCell;
    pub(crate) use shuttle::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
    pub(crate) use shuttle::sync::{Arc, Condvar, Mutex, MutexGuard};
    pub(crate) use shuttle::thread;
    pub(crate) use shuttle::thread_local;

    /// Under shuttle a busy-wait must yield, or the scheduler never runs the
    /// thread it waits for.
    #[inline(always)]
    pub(crate) fn spin_hint() {
        shuttle::thread::yield_now();
    }
}

pub(crate) use imp::*;

/// The engine's clock: `std`'s normally; under a model checker (loom,
/// shuttle) a clock with no time in it, because a real reading would make a
/// schedule impossible to replay.
#[cfg(not(any(loom, shuttle)))]
mod clock {
    use std::time::Duration;

    /// A reading of the monotonic clock.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Instant(std::time::Instant);

    impl Instant {
        #[inline]
        pub(crate) fn now() -> Instant {
            Instant(std::time::Instant::now())
        }

        /// The time since this reading.
        #[inline]
        pub(crate) fn elapsed(&self) -> Duration {
            self.0.elapsed()
        }

        /// The time from `earlier` to this reading (zero if `earlier` is
        /// later).
        #[inline]
        pub(crate) fn since(&self, earlier: Instant) -> Duration {
            self.0.saturating_duration_since(earlier.0)
        }
    }
}

/// Under a model checker every reading is endlessly far from every other:
/// each "has this long passed yet?" of the engine answers yes, so a map
/// promotes after its first batch, every join that looks at the clock
/// offers its `b`, and `imap` batches hold one item. That is the most
/// concurrent behaviour, which is what the models are for.
#[cfg(any(loom, shuttle))]
mod clock {
    use std::time::Duration;

    /// A reading of a clock without time.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Instant;

    impl Instant {
        #[inline]
        pub(crate) fn now() -> Instant {
            Instant
        }

        /// Longer than any threshold.
        #[inline]
        pub(crate) fn elapsed(&self) -> Duration {
            Duration::MAX
        }

        /// Longer than any threshold.
        #[inline]
        pub(crate) fn since(&self, _earlier: Instant) -> Duration {
            Duration::MAX
        }
    }
}

pub(crate) use clock::Instant;

/// Whether the user's `deadline` has passed. Under a model checker, as every
/// other reading of the clock: yes.
#[inline]
pub(crate) fn reached(deadline: std::time::Instant) -> bool {
    #[cfg(not(any(loom, shuttle)))]
    return std::time::Instant::now() >= deadline;
    #[cfg(any(loom, shuttle))]
    {
        let _ = deadline;
        true
    }
}

/// How a thread outside every pool blocks until a latch's setter wakes it:
/// [`park`] on the waiting thread, [`Unparker::unpark`] (from a handle taken
/// with [`current_unparker`]) on the setter. The semantics are `std`'s park
/// token: an unpark before the park is kept for it, and a caller re-checks
/// its condition after every return.
///
/// On `std` and shuttle these are the thread's own park and unpark. Under
/// loom they are a token behind a loom mutex and condition variable, one per
/// thread: loom 0.7's `unpark` makes a thread that is blocked in anything
/// (a `JoinHandle::join`, a mutex) runnable without the event it waits for,
/// which fails the model (loom issue #249). The engine's latch setters
/// unpark after they publish, so a waiter may already be past its wait, and
/// blocked elsewhere, when the unpark comes: a model whose main thread joins
/// a `Task` and then drops its pool failed so. With the token, an early
/// unpark only sets the flag.
// Mutant `outside_waiter_parks_the_thread`: loom's own thread park and
// unpark under loom too, as before the token.
#[cfg(any(not(loom), stealpool_mutant = "outside_waiter_parks_the_thread"))]
mod parking {
    use super::thread::{self, Thread};

    /// Wakes one thread from [`park`], or lets its next `park` return.
    pub(crate) type Unparker = Thread;

    /// The handle that wakes the calling thread.
    #[inline]
    pub(crate) fn current_unparker() -> Unparker {
        thread::current()
    }

    /// Blocks the calling thread until it is unparked (or spuriously).
    #[inline]
    pub(crate) fn park() {
        thread::park();
    }
}

#[cfg(all(loom, not(stealpool_mutant = "outside_waiter_parks_the_thread")))]
mod parking {
    use super::{lock, wait, Condvar, Mutex};
    // `std`'s: loom fails a process that drops a loom `Arc` outside a model
    // run, and a thread-local's value is dropped with the model's threads,
    // after a panic in the model too.
    use std::sync::Arc;

    /// One thread's park token.
    #[derive(Default)]
    struct Token {
        /// Whether an unpark is waiting to be consumed by a `park`.
        unparked: Mutex<bool>,
        changed: Condvar,
    }

    loom::thread_local! {
        static TOKEN: Arc<Token> = Arc::new(Token::default());
    }

    /// Wakes one thread from [`park`], or lets its next `park` return.
    #[derive(Clone)]
    pub(crate) struct Unparker(Arc<Token>);

    impl Unparker {
        /// Sets the thread's token and wakes it if it is parked.
        pub(crate) fn unpark(&self) {
            *lock(&self.0.unparked) = true;
            self.0.changed.notify_one();
        }
    }

    /// The handle that wakes the calling thread.
    pub(crate) fn current_unparker() -> Unparker {
        TOKEN.with(|token| Unparker(Arc::clone(token)))
    }

    /// Blocks the calling thread until its token is set, and consumes it.
    pub(crate) fn park() {
        TOKEN.with(|token| {
            let mut unparked = lock(&token.unparked);
            while !*unparked {
                unparked = wait(&token.changed, unparked);
            }
            *unparked = false;
        });
    }
}

pub(crate) use parking::{current_unparker, park, Unparker};

/// The global pool's cell. Lazy initialization is not part of the scheduler's
/// protocol, so it is `std`'s even under loom (which has no `OnceLock`).
pub(crate) use std::sync::OnceLock;

/// Whether the calling thread is unwinding from a panic. Not a primitive of
/// the protocol: `std`'s in every build.
pub(crate) use std::thread::panicking;

/// Consumes `mutex` and returns its value, ignoring poisoning (see [`lock`]).
#[inline]
pub(crate) fn into_inner<T>(mutex: Mutex<T>) -> T {
    match mutex.into_inner() {
        Ok(value) => value,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Locks `mutex`, ignoring poisoning.
///
/// Every mutex of the engine protects plain flags and queues whose invariants
/// hold between statements (no user code runs while one is held), so a panic
/// elsewhere cannot leave them half-updated and poisoning carries no
/// information.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on `condvar`, ignoring poisoning (see [`lock`]).
#[inline]
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match condvar.wait(guard) {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
