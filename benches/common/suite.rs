//! The criterion side: one group per workload, one member per system that
//! runs it, all on the same input and thread count, each checked against the
//! sequential system before anything is timed.

use super::{Calibration, Runners, System};
use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many calls one sample of a paused workload makes at most: criterion
/// sizes its iteration counts by the timed part alone, and with a 1 ms sleep
/// before each call its counts would take minutes, so a sample times up to
/// this many calls and scales their total to the count criterion asked for.
const MAX_PAUSED_CALLS: u64 = 200;

/// Benchmarks the workloads called `names`, each as a criterion group whose
/// members are its systems, with ids `system/t<threads>`.
///
/// # Panics
///
/// If the thread count is invalid, a pool cannot be built, a name is not a
/// workload, or a system's checksum differs from the sequential one.
pub fn bench_workloads(c: &mut Criterion, names: &[&str]) {
    let threads = super::default_threads().unwrap_or_else(|e| panic!("bench: {e}"));
    let runners = Runners::new(threads).unwrap_or_else(|e| panic!("bench: {e}"));
    let calibration = Calibration::measure();

    for &name in names {
        let workload = super::workload(name, &calibration)
            .unwrap_or_else(|| panic!("bench: no workload {name:?}"));
        // Every system must compute what the sequential one computes.
        let expected = workload.call(&runners, System::Seq).checksum();
        for &system in workload.systems() {
            let got = workload.call(&runners, system).checksum();
            assert!(
                got == expected,
                "bench: workload {name}: {} returned checksum {got:#018x}, \
                 the sequential system {expected:#018x}",
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
        for &system in workload.systems() {
            let id = BenchmarkId::new(system.name(), format!("t{threads}"));
            match workload.pause {
                // An owned input is copied before each call, untimed.
                None if workload.prepares() => group.bench_function(id, |b| {
                    b.iter_batched(
                        || workload.prepare(1),
                        |()| workload.call(&runners, system),
                        BatchSize::PerIteration,
                    );
                }),
                None => group.bench_function(id, |b| {
                    b.iter_with_large_drop(|| workload.call(&runners, system));
                }),
                Some(pause) => group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let calls = iters.clamp(1, MAX_PAUSED_CALLS);
                        let mut timed = Duration::ZERO;
                        for _ in 0..calls {
                            std::thread::sleep(pause);
                            let started = Instant::now();
                            let output = workload.call(&runners, system);
                            timed += started.elapsed();
                            drop(black_box(output));
                        }
                        timed.mul_f64(iters as f64 / calls as f64)
                    });
                }),
            };
        }
        group.finish();
    }
}

/// The criterion settings of both suites: short, for a shared machine.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}
