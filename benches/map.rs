//! Criterion benchmarks of `stealpool`'s parallel map against a sequential
//! loop, rayon and `std::thread::scope`.
//!
//! One group per workload (`tiny`, `uniform`, `skewed`, `skewed-rare`,
//! `small-call`, `nested`; see `benches/common/mod.rs`), each with the members
//! `seq`, `stealpool`, `rayon` and `scope` on the same input. Every system uses
//! `STEALPOOL_BENCH_THREADS` threads (default: the available parallelism); the
//! benchmark ids end in `t<threads>` so that baselines taken with different
//! thread counts are not mixed up.
//!
//! ```text
//! STEALPOOL_BENCH_THREADS=2 cargo bench --bench map
//! cargo bench --bench map -- --quick          # a fast pass
//! cargo bench --bench map -- skewed/          # one group
//! ```
//!
//! Criterion runs one benchmark after another, so on a shared machine the
//! ratios between members drift with the load; `benches/compare.rs`
//! interleaves the systems and is the better tool for side-by-side numbers.

mod common;

use common::{checksum, Calibration, Runners, System, SYSTEMS};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use std::time::Duration;

/// The workloads with a criterion group (`small-call-pause` needs untimed
/// sleeps between calls, which `compare` does and criterion's loop does not).
const GROUPS: [&str; 6] = [
    "tiny",
    "uniform",
    "skewed",
    "skewed-rare",
    "small-call",
    "nested",
];

fn map_benches(c: &mut Criterion) {
    let threads = common::default_threads().unwrap_or_else(|e| panic!("map bench: {e}"));
    let runners = Runners::new(threads).unwrap_or_else(|e| panic!("map bench: {e}"));
    let calibration = Calibration::measure();

    for name in GROUPS {
        let workload = common::workload(name, &calibration)
            .unwrap_or_else(|| panic!("map bench: no workload {name:?}"));
        // Every system must compute what the sequential loop computes.
        let expected = checksum(&workload.call(&runners, System::Seq));
        for system in SYSTEMS {
            let got = checksum(&workload.call(&runners, system));
            assert!(
                got == expected,
                "map bench: workload {name}: {} returned checksum {got:#018x}, \
                 the sequential loop {expected:#018x}",
                system.name()
            );
        }

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(workload.items_per_call() as u64));
        if workload.calls_per_sample == 1 {
            // Calls of milliseconds: equal-sized samples, not criterion's
            // linearly growing ones, to keep the run short.
            group.sampling_mode(SamplingMode::Flat);
        }
        for system in SYSTEMS {
            group.bench_function(
                BenchmarkId::new(system.name(), format!("t{threads}")),
                |b| {
                    b.iter_with_large_drop(|| workload.call(&runners, system));
                },
            );
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = map_benches
}
criterion_main!(benches);
