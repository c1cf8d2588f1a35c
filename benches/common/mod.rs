//! Workloads and systems shared by the `compare` and `map` benchmarks.
//!
//! Every workload is a parallel map whose results are `u64`s, run by one of
//! four [`System`]s over the same input: a sequential loop, `stealpool`'s
//! [`Pool::map`](stealpool::Pool::map), a rayon thread pool, and
//! `std::thread::scope` with one static chunk per thread. [`checksum`] folds a
//! result vector into one order-sensitive `u64`, so that the systems can be
//! checked against the sequential loop before anything is timed.
//!
//! The per-item costs are spin loops (an iterated xorshift, kept opaque with
//! [`black_box`]), calibrated once per process by [`Calibration::measure`] so
//! that an item "of 1 µs" costs about 1 µs of CPU on the machine at hand.

// Each benchmark binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// The environment variable that sets the thread count of every system.
pub const THREADS_ENV: &str = "STEALPOOL_BENCH_THREADS";

/// The thread count to use: `STEALPOOL_BENCH_THREADS` if set, else the
/// available parallelism.
pub fn default_threads() -> Result<usize, String> {
    match std::env::var(THREADS_ENV) {
        Ok(value) => parse_threads(&value).map_err(|e| format!("{THREADS_ENV}: {e}")),
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, NonZeroUsize::get)),
    }
}

/// Parses a thread count (a positive integer).
pub fn parse_threads(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive thread count, got {value:?}")),
    }
}

/// One of the compared implementations of a parallel map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// A plain sequential loop collecting into a `Vec`.
    Seq,
    /// `stealpool::Pool::map`.
    Stealpool,
    /// `pool.install(|| input.par_iter().map(f).collect())` on a rayon pool.
    Rayon,
    /// `std::thread::scope` with one equal static chunk per thread.
    Scope,
}

/// Every system, in table order.
pub const SYSTEMS: [System; 4] = [System::Seq, System::Stealpool, System::Rayon, System::Scope];

impl System {
    /// The system's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::Seq => "seq",
            System::Stealpool => "stealpool",
            System::Rayon => "rayon",
            System::Scope => "scope",
        }
    }

    /// The system with this name, if any.
    pub fn from_name(name: &str) -> Option<System> {
        SYSTEMS.into_iter().find(|system| system.name() == name)
    }

    /// The system that runs the inner maps of a nested workload: the same
    /// one, except that `scope` runs them sequentially (spawning threads per
    /// inner call would measure thread creation, not nesting).
    pub fn inner(self) -> System {
        match self {
            System::Scope => System::Seq,
            other => other,
        }
    }
}

/// The thread pools, built once per process with the same thread count.
pub struct Runners {
    /// The thread count of every system.
    pub threads: usize,
    /// The `stealpool` pool.
    pub pool: stealpool::Pool,
    /// The rayon pool.
    pub rayon: rayon::ThreadPool,
}

impl Runners {
    /// Builds both pools with `threads` threads.
    pub fn new(threads: usize) -> Result<Runners, String> {
        let pool = stealpool::Pool::new(threads)
            .map_err(|e| format!("cannot build a stealpool pool of {threads} threads: {e}"))?;
        let rayon = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| format!("cannot build a rayon pool of {threads} threads: {e}"))?;
        Ok(Runners {
            threads,
            pool,
            rayon,
        })
    }

    /// Maps `f` over `input` with `system`, keeping input order.
    pub fn map<T, R, F>(&self, system: System, input: &[T], f: F) -> Vec<R>
    where
        T: Sync,
        R: Send,
        F: Fn(&T) -> R + Sync + Send,
    {
        match system {
            System::Seq => input.iter().map(f).collect(),
            System::Stealpool => self.pool.map(input, f),
            System::Rayon => {
                use rayon::prelude::*;
                self.rayon.install(|| input.par_iter().map(f).collect())
            }
            System::Scope => scope_map(self.threads, input, f),
        }
    }
}

/// Maps `f` over `input` with `std::thread::scope`: `threads` equal static
/// chunks, the first run by the caller and the others by one spawned thread
/// each, every result written in place into a pre-sized output.
pub fn scope_map<T, R, F>(threads: usize, input: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    fn fill<T, R>(input: &[T], output: &mut [MaybeUninit<R>], f: &(impl Fn(&T) -> R + Sync)) {
        for (slot, item) in output.iter_mut().zip(input) {
            slot.write(f(item));
        }
    }

    let len = input.len();
    let mut output: Vec<R> = Vec::with_capacity(len);
    if len == 0 {
        return output;
    }
    let chunk = len.div_ceil(threads.max(1));
    let f = &f;
    std::thread::scope(|scope| {
        let mut parts = input
            .chunks(chunk)
            .zip(output.spare_capacity_mut()[..len].chunks_mut(chunk));
        let first = parts.next();
        for (items, slots) in parts {
            scope.spawn(move || fill(items, slots, f));
        }
        if let Some((items, slots)) = first {
            fill(items, slots, f);
        }
    });
    // SAFETY: the chunks of `spare_capacity_mut()[..len]` cover every slot of
    // `0..len`, and each chunk was filled completely by a thread that the
    // scope has joined (had one panicked, `scope` would have re-raised the
    // panic and we would not be here).
    unsafe { output.set_len(len) };
    output
}

/// An order-sensitive fold of `values` into one `u64`.
pub fn checksum(values: &[u64]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &value| {
        (hash ^ value).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The splitmix64 generator: seeds and pseudo-random positions.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Iterates xorshift64 `iters` times from `seed`: a dependent chain of
/// arithmetic that the compiler can neither skip nor vectorize.
#[inline]
pub fn spin(seed: u64, iters: u32) -> u64 {
    let mut x = black_box(seed) | 1;
    for _ in 0..black_box(iters) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

/// One item of a spin workload.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    /// Where the spin starts (so that every result differs).
    pub seed: u64,
    /// How many xorshift steps the item costs.
    pub iters: u32,
}

impl Item {
    /// Runs the item.
    #[inline]
    pub fn run(&self) -> u64 {
        spin(self.seed, self.iters)
    }
}

/// How many spin iterations make a given time on this machine.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// Nanoseconds per xorshift step.
    pub ns_per_iter: f64,
}

impl Calibration {
    /// Times the spin loop: the fastest of several runs of about 2 ms, so that
    /// a descheduled run does not inflate the estimate.
    pub fn measure() -> Calibration {
        const ITERS: u32 = 1 << 20;
        spin(1, ITERS); // warm up the core's clock
        let best = (0..9)
            .map(|trial| {
                let started = Instant::now();
                black_box(spin(trial, ITERS));
                started.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_millis(1));
        Calibration {
            ns_per_iter: (best.as_nanos() as f64 / f64::from(ITERS)).max(1e-3),
        }
    }

    /// The spin iterations that take about `ns` nanoseconds (at least one).
    pub fn iters(&self, ns: f64) -> u32 {
        (ns / self.ns_per_iter)
            .round()
            .clamp(1.0, f64::from(u32::MAX)) as u32
    }

    /// An item of about `ns` nanoseconds, seeded by `index`.
    pub fn item(&self, index: usize, ns: f64) -> Item {
        let mut state = index as u64;
        Item {
            seed: splitmix64(&mut state),
            iters: self.iters(ns),
        }
    }
}

/// The input of a workload and what one call does with it.
pub enum Body {
    /// `x.wrapping_mul(x)` over every item.
    Square(Vec<u64>),
    /// [`Item::run`] over every item.
    Spin(Vec<Item>),
    /// For every outer item, a map of the inner items (seeded by the outer
    /// one), folded with [`checksum`].
    Nested {
        /// The outer map's input.
        outer: Vec<Item>,
        /// Every inner map's input.
        inner: Vec<Item>,
    },
}

/// A named workload: its input, and how `compare` samples it.
pub struct Workload {
    /// The name on the command line and in reports.
    pub name: &'static str,
    /// What one call does, for the report.
    pub description: String,
    /// The input and the per-item work.
    pub body: Body,
    /// How many calls one timed sample makes (the report gives time per call).
    pub calls_per_sample: usize,
    /// A sleep before each call, not timed: lets the pools go idle.
    pub pause: Option<Duration>,
}

/// The workloads, in report order.
pub const WORKLOADS: [&str; 7] = [
    "tiny",
    "uniform",
    "skewed",
    "skewed-rare",
    "small-call",
    "small-call-pause",
    "nested",
];

/// Nanoseconds in a microsecond, for readable cost formulas.
const US: f64 = 1_000.0;

/// Builds the workload called `name`, or `None` if there is none.
pub fn workload(name: &str, calibration: &Calibration) -> Option<Workload> {
    let cal = calibration;
    let spin_items = |len: usize, cost: &dyn Fn(usize) -> f64| -> Vec<Item> {
        (0..len).map(|i| cal.item(i, cost(i))).collect()
    };
    let workload = match name {
        "tiny" => Workload {
            name: "tiny",
            description: "x.wrapping_mul(x) over 10M u64".into(),
            body: Body::Square((0..10_000_000u64).map(|i| i ^ (i << 32)).collect()),
            calls_per_sample: 1,
            pause: None,
        },
        "uniform" => Workload {
            name: "uniform",
            description: "100k items of ~1 us".into(),
            body: Body::Spin(spin_items(100_000, &|_| US)),
            calls_per_sample: 1,
            pause: None,
        },
        "skewed" => {
            let len = 20_000;
            Workload {
                name: "skewed",
                description: "20k items, item i ~ 1 us + (i/len)^2 * 10 us".into(),
                body: Body::Spin(spin_items(len, &|i| {
                    let x = i as f64 / len as f64;
                    US + x * x * 10.0 * US
                })),
                calls_per_sample: 1,
                pause: None,
            }
        }
        "skewed-rare" => {
            let len = 20_000;
            let mut heavy = vec![false; len];
            let mut state = 0x5eed;
            let mut count = 0;
            while count < len / 100 {
                let position = (splitmix64(&mut state) % len as u64) as usize;
                if !heavy[position] {
                    heavy[position] = true;
                    count += 1;
                }
            }
            Workload {
                name: "skewed-rare",
                description: "20k items of ~1 us, 1% (seeded positions) of ~100 us".into(),
                body: Body::Spin(spin_items(len, &|i| if heavy[i] { 100.0 * US } else { US })),
                calls_per_sample: 1,
                pause: None,
            }
        }
        "small-call" => Workload {
            name: "small-call",
            description: "maps of 16 items of ~100 ns, back to back".into(),
            body: Body::Spin(spin_items(16, &|_| 0.1 * US)),
            calls_per_sample: 2000,
            pause: None,
        },
        "small-call-pause" => Workload {
            name: "small-call-pause",
            description: "maps of 16 items of ~100 ns, 1 ms sleep (untimed) before each".into(),
            body: Body::Spin(spin_items(16, &|_| 0.1 * US)),
            calls_per_sample: 200,
            pause: Some(Duration::from_millis(1)),
        },
        "nested" => Workload {
            name: "nested",
            description: "64 outer items, each a map of 2k items of ~200 ns".into(),
            body: Body::Nested {
                outer: spin_items(64, &|_| 0.0),
                inner: spin_items(2_000, &|_| 0.2 * US),
            },
            calls_per_sample: 1,
            pause: None,
        },
        _ => return None,
    };
    Some(workload)
}

impl Workload {
    /// The items one call processes (inner items, for a nested workload).
    pub fn items_per_call(&self) -> usize {
        match &self.body {
            Body::Square(input) => input.len(),
            Body::Spin(input) => input.len(),
            Body::Nested { outer, inner } => outer.len() * inner.len(),
        }
    }

    /// Makes one call with `system`.
    pub fn call(&self, runners: &Runners, system: System) -> Vec<u64> {
        match &self.body {
            Body::Square(input) => runners.map(system, input, |x| x.wrapping_mul(*x)),
            Body::Spin(input) => runners.map(system, input, Item::run),
            Body::Nested { outer, inner } => runners.map(system, outer, |o| {
                let results =
                    runners.map(system.inner(), inner, |x| spin(o.seed ^ x.seed, x.iters));
                checksum(&results)
            }),
        }
    }
}
