//! Criterion benchmarks of `stealpool`'s `join` against the plain recursion,
//! `rayon::join`, chili's `Scope::join` and a static split with
//! `std::thread::scope`.
//!
//! One group per workload (`fib-join`, `tree-sum-20`, `tree-sum-24`; see
//! `benches/common/forkjoin.rs`), each with the members `seq`, `stealpool`,
//! `rayon`, `scope` and `chili` summing the same input with the same thread
//! count (`STEALPOOL_BENCH_THREADS`, default: the available parallelism).
//!
//! ```text
//! STEALPOOL_BENCH_THREADS=2 cargo bench --bench joins
//! cargo bench --bench joins -- tree-sum-20/    # one group
//! ```
//!
//! For side-by-side ratios on a shared machine use `benches/compare.rs`, which
//! runs these workloads interleaved.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};

/// The workloads of this suite, one criterion group each.
const GROUPS: [&str; 3] = ["fib-join", "tree-sum-20", "tree-sum-24"];

fn join_benches(c: &mut Criterion) {
    common::suite::bench_workloads(c, &GROUPS);
}

criterion_group! {
    name = benches;
    config = common::suite::config();
    targets = join_benches
}
criterion_main!(benches);
