//! The work queues: one LIFO [`Worker`] deque per worker thread, whose
//! [`Stealer`] the other workers take from, and one global [`Injector`] for work
//! that comes from outside the pool.
//!
//! This module is the seam where the loom suite swaps crossbeam-deque (whose
//! atomics loom cannot see) for a stand-in built on loom primitives; the engine
//! uses only the names re-exported here.

pub(crate) use crossbeam_deque::{Injector, Steal, Stealer, Worker};
