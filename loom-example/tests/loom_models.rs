//! The histogram and the pool under loom, from the model's main thread,
//! through stealpool's public API only.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!   cargo test --release -p stealpool-loom-example --test loom_models
//! ```
//!
//! A 2-worker pool and 3 values, at loom's preemption bound 2: big enough
//! for two items to count at once, small enough to explore in seconds.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use stealpool::Pool;
use stealpool_loom_example::{Histogram, RacyHistogram};

/// Runs `model` under loom with preemption bound 2 (unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise), and prints how many executions
/// it explored.
fn check(name: &str, model: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    let started = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    println!(
        "{name}: {} executions, {:.1} s",
        executions.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
}

/// Every value is counted once, in every interleaving of the pool's
/// scheduling and the histogram's locking.
#[test]
fn histogram_counts_every_value() {
    check("histogram_counts_every_value", || {
        let pool = Pool::new(2).expect("a pool of 2 workers");
        let histogram = Histogram::new(2);
        histogram.add_all(&pool, &[0, 1, 1]);
        assert_eq!(histogram.counts(), [1, 2]);
        assert_eq!(histogram.seen(), 3);
        drop(pool);
    });
}

/// The same model finds the racy count: in some interleaving two items
/// load the same count, and one is lost. The test passes only if loom
/// fails the model with that assertion.
#[test]
#[should_panic(expected = "a count of values seen was lost")]
fn racy_histogram_loses_a_count() {
    check("racy_histogram_loses_a_count", || {
        let pool = Pool::new(2).expect("a pool of 2 workers");
        let histogram = RacyHistogram::new(2);
        histogram.add_all(&pool, &[0, 1, 1]);
        let seen = histogram.seen();
        // Everything the model made goes before the assertion: a panic
        // that unwinds past live loom objects aborts the process instead
        // of failing the model.
        drop(histogram);
        drop(pool);
        assert_eq!(seen, 3, "a count of values seen was lost: {seen} of 3");
    });
}
