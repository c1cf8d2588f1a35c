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
//! * [`Pool::map`] borrows its input and closure (no `'static`), keeps input
//!   order, writes results in place and re-raises a panic of the closure on the
//!   caller. The caller starts the work alone and recruits workers only once
//!   the call has run long enough to pay for a wake-up, so a tiny call costs
//!   about what its loop costs.
//! * [`Pool::map_chunked`] takes an explicit chunk size, [`Pool::try_map`]
//!   stops at the first error, [`Pool::for_each`] returns nothing.
//! * Calls nest: a map called from inside the pool keeps its worker busy with
//!   other work while it waits, and pools can call into each other.
//! * [`Pool::join`] is a fork-join whose not-stolen path costs a few loads and
//!   stores; [`Pool::in_worker`] hands a recursion a [`Worker`] whose
//!   [`join`](Worker::join) skips even the look-up of the calling worker.
//!
//! The engine (one deque per worker, a global injector, randomized stealing,
//! a sleep protocol that loses no wake-up) is described in `docs/design.md`.

mod builder;
mod deque;
mod drive;
mod engagement;
mod global;
mod heartbeat;
mod imap;
mod job;
mod join;
mod latch;
mod map;
mod panic;
mod pool;
mod registry;
mod rng;
mod scope;
mod sleep;
mod stats;
mod sync;
mod task;
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
pub use global::{current_thread_index, global};
pub use imap::{Imap, ImapUnordered, DEFAULT_WINDOW_PER_THREAD, MAX_WINDOW_PER_THREAD};
pub use pool::Pool;
pub use scope::Scope;
pub use stats::Stats;
pub use task::Task;
pub use worker::Worker;
