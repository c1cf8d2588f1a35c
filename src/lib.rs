//! # stealpool
//!
//! A work-stealing thread pool with an order-preserving, scoped parallel
//! `map`, in the spirit of Python's `multiprocessing.Pool`.
//!
//! ```
//! let pool = stealpool::Pool::new(4)?;
//! assert_eq!(pool.map(&[1, 2, 3, 4, 5], |x| x * x), [1, 4, 9, 16, 25]);
//! # Ok::<(), stealpool::BuildError>(())
//! ```
//!
//! * [`Pool::map`] runs over a slice, a mutable slice, an owned `Vec` or an
//!   index range (see [`Input`]), borrows its input and closure (no
//!   `'static`), keeps input
//!   order, writes results in place and re-raises a panic of the closure on the
//!   caller. The caller starts the work alone and recruits workers only once
//!   the call has run long enough to pay for a wake-up, so a tiny call costs
//!   about what its loop costs.
//! * [`Pool::try_map`] stops at the first error, [`Pool::for_each`] returns
//!   nothing, and [`Pool::map_reduce`] combines the results without
//!   collecting them, with the same bits on every thread count.
//! * [`Pool::options`] gives any call of the family a fixed chunk size, a
//!   [`Progress`] to watch from another thread, and a [`CancelToken`] or a
//!   deadline that stops it item by item ([`Cancellable`]).
//! * Calls nest: a map called from inside the pool keeps its worker busy with
//!   the map's own work while it waits, and pools can call into each other.
//! * [`Pool::join`] is a fork-join whose not-stolen path costs a few loads and
//!   stores; [`Pool::in_worker`] hands a recursion a [`Worker`] whose
//!   [`join`](Worker::join) skips even the look-up of the calling worker.
//!
//! # Waiting runs only the call's work
//!
//! A thread that waits inside a pool call (the `map` family, [`Pool::join`]
//! and [`Worker::join`], [`Pool::scope`], [`Pool::apply`], [`Task::join`],
//! [`Imap`] and [`ImapUnordered`]) helps while it waits, but only with the
//! work of that call: its map's chunks, its join's `b` and what `b` forks,
//! its scope's tasks, its task, and the calls nested inside those. It never
//! picks up another item of an enclosing loop, nor the work of an unrelated
//! call. So holding a lock across a pool call is safe, as long as the work
//! under the lock does not itself take that lock: the outer items that take
//! it wait for the lock on *other* threads, and nothing can stack a second
//! acquisition on the holder's thread. The same goes for a
//! [`OnceLock`](std::sync::OnceLock) initialiser that calls the pool.
//!
//! ```
//! use std::sync::Mutex;
//! let pool = stealpool::Pool::new(4)?;
//! let total = Mutex::new(0u64);
//! pool.for_each(&[1u64, 2, 3, 4, 5, 6, 7, 8], |&x| {
//!     let mut total = total.lock().unwrap();
//!     // The lock is held across an inner parallel call: while this thread
//!     // waits for it, it runs only the inner call's work, never another
//!     // item of the outer loop (which would try to take the lock again).
//!     let inner: u64 = pool.map(&[x; 1000], |&y| y * 2).iter().sum();
//!     *total += inner;
//! });
//! assert_eq!(total.into_inner().unwrap(), 72_000);
//! # Ok::<(), stealpool::BuildError>(())
//! ```
//!
//! One exception keeps pools that call into each other free of deadlocks: a
//! worker of pool A waiting for a call on pool B may also run A's work of
//! other calls, but never the work of the calls that enclose its wait (the
//! loop whose item holds the lock), nor, if that other work waits on a pool
//! in turn, the work of the calls enclosing any wait below on the same
//! thread. The jobs a waiter will not run go back on the pool's global queue
//! for an idle worker ([`Stats::set_aside`] counts them).
//!
//! The engine (one deque per worker, a global injector, randomized stealing,
//! a sleep protocol that loses no wake-up, the waiting rule above) is
//! described in `docs/design.md`.

mod builder;
mod cancellable;
mod collect;
mod control;
mod deque;
mod drive;
mod engagement;
mod global;
mod heartbeat;
mod imap;
mod input;
mod isolation;
mod job;
mod join;
mod latch;
mod map;
mod options;
mod panic;
mod pool;
mod reduce;
mod registry;
mod rng;
mod scope;
mod sleep;
mod stats;
mod sync;
mod task;
#[cfg(test)]
#[cfg(not(any(loom, shuttle)))]
mod test_watchdog;
mod worker;
mod worker_thread;

// Hooks for the model checkers: the loom models in `loom-tests/` (only under `--cfg loom`).
#[cfg(loom)]
#[doc(hidden)]
pub mod model_hooks;

/// The mutant compiled into this build (model-checker builds only), as
/// `loom-tests/run-mutants.sh` names it: it builds each mutant with
/// `STEALPOOL_MUTANT` set and `--cfg stealpool_mutant="<name>"`. Reading the
/// variable here also makes cargo rebuild the library whenever it changes.
#[cfg(any(loom, shuttle))]
#[doc(hidden)]
pub const MUTANT: Option<&str> = option_env!("STEALPOOL_MUTANT");

pub use builder::{BuildError, PoolBuilder};
pub use cancellable::Cancellable;
pub use control::{CancelToken, Cancelled, Progress};
pub use global::{current_thread_index, global};
pub use imap::{Imap, ImapUnordered, DEFAULT_WINDOW_PER_THREAD, MAX_WINDOW_PER_THREAD};
pub use input::Input;
pub use options::CallOptions;
pub use pool::Pool;
pub use reduce::MAX_REDUCE_BLOCKS;
pub use scope::Scope;
pub use stats::Stats;
pub use task::Task;
pub use worker::Worker;
