//! Workloads and systems shared by every benchmark binary (`compare`, and the
//! criterion suites `map` and `joins`), so that all of them run identical
//! workloads on identical inputs.
//!
//! A [`Workload`] is one of three kinds:
//!
//! - a parallel **map** over a slice ([`map`]): `seq`, `stealpool`
//!   ([`Pool::map`](stealpool::Pool::map)), `rayon` (`par_iter().map().collect()`)
//!   and `scope` (`std::thread::scope` with one equal static chunk per thread);
//!   the maps over the other inputs (an index range, an owned `Vec`, a
//!   mutable slice) run `seq`, `stealpool` and `rayon`, and the *watched*
//!   maps run `stealpool` plain beside `stealpool-token` (a never-cancelled
//!   `CancelToken`) and `stealpool-progress` (a `Progress`);
//! - a **fork-join** recursion ([`forkjoin`]): the plain recursion, `join` of
//!   stealpool, rayon and chili, and `scope` (the recursion split statically
//!   into one piece per thread);
//! - a **stream** ([`stream`]): `Pool::imap` against a producer/consumer built
//!   from `std::sync::mpsc` channels, and a sequential loop;
//! - a **tick** workload (a map called on a fixed schedule, [`Workload::tick`]):
//!   `seq`, `stealpool`, `rayon` and `polling`, the hand-written spinning
//!   helper of [`polling`] that shows what on-time helpers reach.
//!
//! Every call returns an [`Output`] whose [`checksum`](Output::checksum) must
//! equal the sequential system's; the runners check that once before timing.
//!
//! The per-item costs are spin loops (an iterated xorshift, kept opaque with
//! [`black_box`]), calibrated once per process by [`Calibration::measure`] so
//! that an item "of 1 µs" costs about 1 µs of CPU on the machine at hand.

// Each benchmark binary compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod alloc;
pub mod forkjoin;
pub mod map;
pub mod polling;
pub mod stream;
pub mod suite;

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// The environment variable that sets the thread count of every system.
pub const THREADS_ENV: &str = "STEALPOOL_BENCH_THREADS";

/// The environment variable that gives the stealpool pools an idle-polling
/// budget, in microseconds (`PoolBuilder::idle_poll`; unset: none).
pub const IDLE_POLL_ENV: &str = "STEALPOOL_BENCH_IDLE_POLL_US";

/// The idle-polling budget for the stealpool pools: `STEALPOOL_BENCH_IDLE_POLL_US`
/// microseconds if set, else zero (the default: workers park at once).
pub fn idle_poll() -> Result<Duration, String> {
    match std::env::var(IDLE_POLL_ENV) {
        Ok(value) => value
            .trim()
            .parse::<u64>()
            .map(Duration::from_micros)
            .map_err(|_| format!("{IDLE_POLL_ENV}: expected microseconds, got {value:?}")),
        Err(_) => Ok(Duration::ZERO),
    }
}

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

/// One of the compared implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// A plain sequential loop, or the plain recursion.
    Seq,
    /// `stealpool`: `Pool::map`, `Worker::join` (in `Pool::in_worker`) or
    /// `Pool::imap`.
    Stealpool,
    /// rayon: `par_iter().map().collect()` or `rayon::join`, inside `install`.
    Rayon,
    /// `std::thread::scope` with one equal static piece per thread.
    Scope,
    /// chili's `Scope::join` (fork-join workloads only).
    Chili,
    /// A producer/consumer over `std::sync::mpsc` (stream workloads only).
    Channel,
    /// The spinning helpers of [`polling`] (tick workloads only).
    Polling,
    /// `Pool::options().cancel_on(&token).map` with a token that is never
    /// cancelled (the watched workloads only).
    StealpoolToken,
    /// `Pool::options().progress(&progress).map` (the watched workloads
    /// only).
    StealpoolProgress,
}

/// Every system, in table order.
pub const SYSTEMS: [System; 9] = [
    System::Seq,
    System::Stealpool,
    System::Rayon,
    System::Scope,
    System::Chili,
    System::Channel,
    System::Polling,
    System::StealpoolToken,
    System::StealpoolProgress,
];

/// The systems that run a stealpool call with a watch (a cancel token or a
/// progress counter): compared with plain `stealpool` on the watched
/// workloads, and given a line of their own under the terminal table's row.
pub const WATCHED_SYSTEMS: [System; 2] = [System::StealpoolToken, System::StealpoolProgress];

impl System {
    /// The system's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::Seq => "seq",
            System::Stealpool => "stealpool",
            System::Rayon => "rayon",
            System::Scope => "scope",
            System::Chili => "chili",
            System::Channel => "channel",
            System::Polling => "polling",
            System::StealpoolToken => "stealpool-token",
            System::StealpoolProgress => "stealpool-progress",
        }
    }

    /// Whether this is one of the [`WATCHED_SYSTEMS`].
    pub fn is_watched(self) -> bool {
        WATCHED_SYSTEMS.contains(&self)
    }

    /// The system with this name, if any.
    pub fn from_name(name: &str) -> Option<System> {
        SYSTEMS.into_iter().find(|system| system.name() == name)
    }
}

/// The thread pools, built once per thread count with the same count.
pub struct Runners {
    /// The thread count of every system.
    pub threads: usize,
    /// The `stealpool` pool.
    pub pool: stealpool::Pool,
    /// The rayon pool.
    pub rayon: rayon::ThreadPool,
    /// The chili pool: `threads - 1` workers plus the thread that opens a
    /// scope (chili's own accounting of `thread_count`).
    pub chili: chili::ThreadPool,
    /// The polling helpers: `threads - 1` threads, parked except while
    /// [engaged](polling::Helper::engage) (the runner engages them for the
    /// samples of the `polling` system).
    pub polling: polling::Helper,
    /// The token of `stealpool-token`, never cancelled.
    pub token: stealpool::CancelToken,
    /// The progress counter of `stealpool-progress` (it counts every call
    /// made with it).
    pub progress: stealpool::Progress,
}

impl Runners {
    /// Builds every pool with `threads` threads.
    pub fn new(threads: usize) -> Result<Runners, String> {
        let pool = stealpool::Pool::builder()
            .threads(threads)
            .idle_poll(idle_poll()?)
            .build()
            .map_err(|e| format!("cannot build a stealpool pool of {threads} threads: {e}"))?;
        let rayon = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| format!("cannot build a rayon pool of {threads} threads: {e}"))?;
        let chili = chili::ThreadPool::with_config(chili::Config {
            thread_count: NonZeroUsize::new(threads),
            ..chili::Config::default()
        });
        let polling = polling::Helper::new(threads)?;
        Ok(Runners {
            threads,
            pool,
            rayon,
            chili,
            polling,
            token: stealpool::CancelToken::new(),
            progress: stealpool::Progress::new(),
        })
    }

    /// Engages the polling helpers while the guard lives if `system` is
    /// `polling` (they spin only then); nothing for the other systems.
    pub fn engage(&self, system: System) -> Option<polling::Engaged<'_>> {
        (system == System::Polling).then(|| self.polling.engage())
    }
}

/// The CPU time this process has used so far, by every thread (user plus
/// system time, `getrusage(RUSAGE_SELF)`; threads that have exited count).
pub fn process_cpu() -> Duration {
    // SAFETY: `getrusage` only writes the struct it is given, and an
    // all-zero `rusage` is a valid value of it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The FNV-1a-style fold that [`checksum`] applies per value.
const CHECKSUM_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// One step of [`checksum`]'s fold.
#[inline]
pub fn checksum_step(hash: u64, value: u64) -> u64 {
    (hash ^ value).wrapping_mul(0x0000_0100_0000_01b3)
}

/// An order-sensitive fold of `values` into one `u64`.
pub fn checksum(values: &[u64]) -> u64 {
    checksum_iter(values.iter().copied())
}

/// [`checksum`] over an iterator, consuming it as it goes (for streams).
pub fn checksum_iter(values: impl IntoIterator<Item = u64>) -> u64 {
    values.into_iter().fold(CHECKSUM_SEED, checksum_step)
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

/// What a call returns: the results (kept until the clock stops, so that
/// freeing them is not timed) or a sum already folded.
pub enum Output {
    /// One result per item, in input order.
    Values(Vec<u64>),
    /// One string per item, in input order (`owned-strings`).
    Strings(Vec<String>),
    /// A checksum computed by the call itself (fork-join sums, streams).
    Sum(u64),
}

impl Output {
    /// The order-sensitive checksum that must equal the sequential system's.
    pub fn checksum(&self) -> u64 {
        match self {
            Output::Values(values) => checksum(values),
            Output::Strings(strings) => checksum_iter(strings.iter().map(|s| {
                s.bytes()
                    .fold(CHECKSUM_SEED, |hash, b| checksum_step(hash, u64::from(b)))
            })),
            Output::Sum(sum) => *sum,
        }
    }
}

/// The input of a workload and what one call does with it.
pub enum Kind {
    /// A parallel map over a slice.
    Map(map::Body),
    /// A fork-join recursion.
    ForkJoin(forkjoin::Body),
    /// A stream through `imap` or channels.
    Stream(stream::Body),
}

/// A named workload: its input, and how it is sampled.
pub struct Workload {
    /// The name on the command line and in reports.
    pub name: &'static str,
    /// What one call does, for the report.
    pub description: String,
    /// The input and the per-item work.
    pub kind: Kind,
    /// How many calls one timed sample makes (the report gives time per call).
    pub calls_per_sample: usize,
    /// A sleep before each call, not timed: lets the pools go idle.
    pub pause: Option<Duration>,
    /// The period of a tick workload: calls start on a fixed schedule, one
    /// every period, the caller sleeping until the next tick in between (the
    /// pools otherwise idle). Only the calls are timed; the process CPU time
    /// of the whole schedule, sleeps included, is charged to its calls.
    pub tick: Option<Duration>,
}

/// The workloads, in report order.
pub const WORKLOADS: [&str; 23] = [
    "tiny",
    "sum-sq",
    "sum-f64",
    "sum-1us",
    "uniform",
    "uniform-watched",
    "skewed",
    "skewed-rare",
    "small-call",
    "small-call-pause",
    "small-call-watched",
    "small-range",
    "small-owned",
    "small-mut",
    "owned-strings",
    "owned-strings-push",
    "nested",
    "fib-join",
    "tree-sum-20",
    "tree-sum-24",
    "imap-stream",
    "tick-2ms",
    "tick-1ms",
];

/// Builds the workload called `name`, or `None` if there is none. Building
/// may take a while (the 2^24-node tree takes about a second).
pub fn workload(name: &str, calibration: &Calibration) -> Option<Workload> {
    map::workload(name, calibration)
        .or_else(|| forkjoin::workload(name))
        .or_else(|| stream::workload(name, calibration))
}

/// The workloads that `name` selects: the one with that name, else the
/// family of workloads named `name-...` (`tree-sum` selects both trees).
pub fn select(name: &str) -> Vec<&'static str> {
    if let Some(&exact) = WORKLOADS.iter().find(|w| **w == name) {
        return vec![exact];
    }
    WORKLOADS
        .into_iter()
        .filter(|w| {
            w.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .collect()
}

impl Workload {
    /// The systems that run this workload, in table order.
    pub fn systems(&self) -> &'static [System] {
        if let Kind::Map(body) = &self.kind {
            if let Some(systems) = body.systems() {
                return systems;
            }
        }
        match self.kind {
            Kind::Map(_) if self.tick.is_some() => &[
                System::Seq,
                System::Stealpool,
                System::Rayon,
                System::Polling,
            ],
            Kind::Map(_) => &[System::Seq, System::Stealpool, System::Rayon, System::Scope],
            Kind::ForkJoin(_) => &[
                System::Seq,
                System::Stealpool,
                System::Rayon,
                System::Scope,
                System::Chili,
            ],
            Kind::Stream(_) => &[System::Seq, System::Stealpool, System::Channel],
        }
    }

    /// The items (or nodes, or leaves) one call processes.
    pub fn items_per_call(&self) -> usize {
        match &self.kind {
            Kind::Map(body) => body.items(),
            Kind::ForkJoin(body) => body.items(),
            Kind::Stream(body) => body.items(),
        }
    }

    /// Prepares the inputs of the next `calls` calls, untimed: an owned
    /// input (`owned-strings`) is cloned here, so that a call times only
    /// what it does with it. A call with nothing prepared makes its own
    /// copy (timed). Nothing for the other workloads.
    pub fn prepare(&self, calls: usize) {
        if let Kind::Map(body) = &self.kind {
            body.prepare(calls);
        }
    }

    /// Whether [`prepare`](Self::prepare) does anything for this workload.
    pub fn prepares(&self) -> bool {
        matches!(&self.kind, Kind::Map(map::Body::OwnedStrings { .. }))
    }

    /// Makes one call with `system`.
    ///
    /// # Panics
    ///
    /// If `system` is not one of [`systems`](Self::systems).
    pub fn call(&self, runners: &Runners, system: System) -> Output {
        match &self.kind {
            Kind::Map(body) => body.call(runners, system),
            Kind::ForkJoin(body) => Output::Sum(body.call(runners, system)),
            Kind::Stream(body) => Output::Sum(body.call(runners, system)),
        }
    }
}
