//! The work queues: one LIFO [`Worker`] deque per worker thread, whose
//! [`Stealer`] the other workers take from, and one global [`Injector`] for work
//! that comes from outside the pool.
//!
//! This module is the seam where the loom suite swaps crossbeam-deque (whose
//! atomics loom cannot see) for a stand-in built on loom primitives; the engine
//! uses only the names re-exported here. The stand-in lives in
//! `src/deque/stand_in.rs`, and `docs/verification.md` says exactly what it
//! abstracts.

#[cfg(not(loom))]
pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};

#[cfg(loom)]
mod stand_in;
#[cfg(loom)]
pub(crate) use stand_in::{Injector, Steal, Stealer, Worker};
