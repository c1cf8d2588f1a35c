//! The histogram and the pool under shuttle's randomized schedulers: a
//! bigger program than loom can explore (4 workers, 8 values), through
//! stealpool's public API only.
//!
//! ```sh
//! RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle \
//!   cargo test --release -p stealpool-loom-example --test shuttle_models
//! ```
#![cfg(all(shuttle, not(loom)))]

use shuttle::scheduler::PctScheduler;
use shuttle::Runner;
use stealpool::Pool;
use stealpool_loom_example::{Histogram, RacyHistogram};

/// Runs `model` for 1,000 PCT schedules of depth 3.
fn check(model: impl Fn() + Send + Sync + 'static) {
    Runner::new(PctScheduler::new(3, 1000), shuttle::Config::new()).run(model);
}

const VALUES: [usize; 8] = [0, 1, 2, 3, 3, 2, 1, 0];

/// Every value is counted once on 4 workers.
#[test]
fn histogram_counts_every_value() {
    check(|| {
        let pool = Pool::new(4).expect("a pool of 4 workers");
        let histogram = Histogram::new(4);
        histogram.add_all(&pool, &VALUES);
        assert_eq!(histogram.counts(), [2, 2, 2, 2]);
        assert_eq!(histogram.seen(), 8);
    });
}

/// Some schedule loses a count of the racy histogram; the test passes only
/// if shuttle fails the program with that assertion.
#[test]
#[should_panic(expected = "a count of values seen was lost")]
fn racy_histogram_loses_a_count() {
    check(|| {
        let pool = Pool::new(4).expect("a pool of 4 workers");
        let histogram = RacyHistogram::new(4);
        histogram.add_all(&pool, &VALUES);
        let seen = histogram.seen();
        // Everything the model made goes before the assertion: a panic
        // that unwinds past live loom objects aborts the process instead
        // of failing the model.
        drop(histogram);
        drop(pool);
        assert_eq!(seen, 8, "a count of values seen was lost: {seen} of 8");
    });
}
