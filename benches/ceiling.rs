//! What the machine itself allows, with no scheduler at all: `t` threads each
//! run the same spin, started together, and the efficiency is the 1-thread
//! wall time over the `t`-thread one (equal static work, so 1.0 is perfect).
//!
//! ```text
//! cargo bench --bench ceiling -- [MS]
//! ```
//!
//! Two measurements per thread count (1, 2, 4, 8, 12, 16 and the CPU count):
//!
//! * **long**: threads spawned per round, each spinning `MS` milliseconds
//!   (default 100): whether the cores deliver full speed together (turbo,
//!   shared cores of a virtual machine, steal time from `/proc/stat`).
//! * **bursts**: threads kept alive, parked on a barrier, released together
//!   for 5 ms bursts with a 2 ms idle gap between them, like the calls of a
//!   pool: the cost of waking idle cores and their ramp to full speed, with
//!   the time from release until the last thread started.
//!
//! The compare runner's efficiencies at high thread counts should be read
//! against these ceilings. Nothing is asserted.

use std::hint::black_box;
use std::sync::mpsc;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The spin: a xorshift chain the optimizer cannot shorten.
fn spin(steps: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..black_box(steps) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Spin steps per millisecond on one thread.
fn steps_per_ms() -> u64 {
    let steps = 20_000_000;
    let started = Instant::now();
    black_box(spin(steps));
    (steps as f64 / (started.elapsed().as_secs_f64() * 1e3)).max(1.0) as u64
}

/// Steal time and total time from the first line of `/proc/stat` (jiffies);
/// zeros where it cannot be read.
fn cpu_steal() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median wall time of `rounds` rounds of `t` freshly spawned threads.
fn long(t: usize, steps: u64, rounds: usize) -> f64 {
    let walls = (0..rounds)
        .map(|_| {
            let barrier = Barrier::new(t);
            let started = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..t {
                    s.spawn(|| {
                        barrier.wait();
                        black_box(spin(steps));
                    });
                }
            });
            started.elapsed().as_secs_f64()
        })
        .collect();
    median(walls)
}

/// Median wall time of a burst on `t` parked threads, and the median time
/// from release until the last of them started.
fn bursts(t: usize, steps: u64, gap: Duration, rounds: usize) -> (f64, f64) {
    let start = Barrier::new(t + 1);
    let end = Barrier::new(t + 1);
    let (mut walls, mut lasts) = (Vec::new(), Vec::new());
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<Instant>();
        for _ in 0..t {
            let (tx, start, end) = (tx.clone(), &start, &end);
            s.spawn(move || {
                for _ in 0..rounds {
                    start.wait();
                    // The receiver outlives every round.
                    let _ = tx.send(Instant::now());
                    black_box(spin(steps));
                    end.wait();
                }
            });
        }
        for _ in 0..rounds {
            std::thread::sleep(gap);
            let released = Instant::now();
            start.wait();
            end.wait();
            walls.push(released.elapsed().as_secs_f64());
            let last = rx.iter().take(t).max().unwrap_or(released);
            lasts.push(last.saturating_duration_since(released).as_secs_f64());
        }
    });
    (median(walls), median(lasts))
}

fn main() {
    let ms: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let per_ms = steps_per_ms();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = vec![1, 2, 4, 8, 12, 16, cpus];
    counts.retain(|&t| t <= cpus.max(2));
    counts.sort_unstable();
    counts.dedup();
    println!("ceiling: {cpus} CPUs; long = {ms} ms of spin per thread; bursts = 5 ms, 2 ms apart");
    let (long_1, burst_1) = (
        long(1, per_ms * ms, 5),
        bursts(1, per_ms * 5, Duration::from_millis(2), 21).0,
    );
    for t in counts {
        let (steal_0, total_0) = cpu_steal();
        let wall = long(t, per_ms * ms, 5);
        let (steal_1, total_1) = cpu_steal();
        let (burst, last_start) = bursts(t, per_ms * 5, Duration::from_millis(2), 21);
        println!(
            "{t:3} threads: long eff {:.2} (steal {:.1} %)   bursts eff {:.2}, last thread started after {:.0} µs",
            long_1 / wall,
            100.0 * steal_1.saturating_sub(steal_0) as f64 / total_1.saturating_sub(total_0).max(1) as f64,
            burst_1 / burst,
            last_start * 1e6,
        );
    }
}
