//! The work queues: one LIFO [`Deque`] per worker thread (crossbeam's
//! `Worker`, renamed here so that `Worker` means only the public handle),
//! whose [`Stealer`] the other workers take from, and one global
//! [`Injector`] for work that comes from outside the pool.
//!
//! This module is the seam where the model checkers swap crossbeam-deque
//! (whose atomics loom and shuttle cannot see or preempt) for a stand-in built
//! on the `sync` facade's primitives; the engine uses only the names
//! re-exported here. The stand-in lives in
//! `src/deque/stand_in.rs`, and `docs/verification.md` says exactly what it
//! abstracts.

#[cfg(not(any(loom, shuttle)))]
pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker as Deque};

#[cfg(any(loom, shuttle))]
mod stand_in;
#[cfg(any(loom, shuttle))]
pub(crate) use stand_in::{Injector, Steal, Stealer, Worker as Deque};
