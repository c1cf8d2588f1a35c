//! Criterion benchmarks of `stealpool`'s parallel map and `imap` against a
//! sequential loop, rayon, `std::thread::scope` and a channel pipeline.
//!
//! One group per workload (`tiny`, `uniform`, `skewed`, `skewed-rare`,
//! `small-call`, `small-call-pause`, `nested`, `imap-stream`; see
//! `benches/common/`), each with the systems that run it (`seq`, `stealpool`,
//! `rayon`, `scope` for the maps; `seq`, `stealpool`, `channel` for the
//! stream) on the same input. Every system uses `STEALPOOL_BENCH_THREADS`
//! threads (default: the available parallelism); the benchmark ids end in
//! `t<threads>` so that baselines taken with different thread counts are not
//! mixed up.
//!
//! ```text
//! STEALPOOL_BENCH_THREADS=2 cargo bench --bench map
//! cargo bench --bench map -- --quick          # a fast pass
//! cargo bench --bench map -- skewed/          # one group
//! ```
//!
//! Criterion runs one benchmark after another, so on a shared machine the
//! ratios between members drift with the load; `benches/compare.rs` runs the
//! same workloads interleaved and is the better tool for side-by-side numbers.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};

/// The workloads of this suite, one criterion group each.
const GROUPS: [&str; 8] = [
    "tiny",
    "uniform",
    "skewed",
    "skewed-rare",
    "small-call",
    "small-call-pause",
    "nested",
    "imap-stream",
];

fn map_benches(c: &mut Criterion) {
    common::suite::bench_workloads(c, &GROUPS);
}

criterion_group! {
    name = benches;
    config = common::suite::config();
    targets = map_benches
}
criterion_main!(benches);
