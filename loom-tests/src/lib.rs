//! Loom models of stealpool's queue and sleep protocol.
//!
//! The models live in `tests/models.rs`. They compile the real engine in
//! `../src` with `--cfg loom`, through the `sync` facade (`src/sync.rs`), with
//! a loom-aware stand-in for crossbeam-deque (`src/deque/stand_in.rs`); no
//! copy of the engine lives here. Without `--cfg loom` everything here
//! compiles away, so a normal `cargo test --workspace` passes through.
//!
//! Run the suite (bounds and run times are in `docs/verification.md`):
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!   CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true \
//!   cargo test --release -p stealpool-loom-tests -- --test-threads=1
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS=3` (or more) explores deeper; `loom-tests/run-mutants.sh`
//! checks that every model catches its deliberately broken variants.

#[cfg(loom)]
pub mod support;
