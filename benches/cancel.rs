//! Cancellation latency: how long a running parallel loop takes to return
//! once it is told to stop.
//!
//! Each repetition starts a loop over many items of a calibrated spin (by
//! default 1M items of ~10 µs on 2 threads, far more than it can finish);
//! another thread sleeps (50 ms by default), then reads the clock and tells
//! the loop to stop. The latency is the time from that reading until the
//! loop's call returns on the calling thread. The systems, interleaved round
//! by round (the order rotating) on the same pools:
//!
//! - `stealpool`: `pool.options().cancel_on(&token).for_each(0..n, f)`, the
//!   other thread calling `token.cancel()`; the call must return
//!   `Err(Cancelled)`.
//! - `stealpool-chunk1000`: the same with `.chunk_size(1000)` (fixed chunks
//!   of 1000 items).
//! - `rayon`: `pool.install(|| (0..n).into_par_iter().try_for_each(|i| ..))`,
//!   each item first loading an `AtomicBool` that the other thread sets and
//!   returning `Err(())` once it is set (rayon's way to stop a loop early:
//!   `try_for_each` stops at the first error); must return `Err(())`.
//! - `rayon-min1000`: the same with `.with_min_len(1000)`.
//! - `wakeup`: no loop, for scale: the calling thread parks and the other
//!   thread unparks it; the time from the other thread's clock reading to
//!   the parked thread running again.
//!
//! The report gives, per system, the median, fastest and slowest latency in
//! µs and in items (the nominal item time, and the item time measured on
//! this thread before the rounds), and how many items ran before the stop.
//!
//! ```text
//! cargo bench --bench cancel -- [--threads N] [--reps R] [--items N] [--item-us U]
//!                               [--delay-ms D] [--only NAME[,NAME]]
//! ```
//!
//! Nothing here asserts a figure; a loop that finishes instead of stopping
//! is reported (its latency is meaningless) and makes the run fail.

mod common;

use common::{spin, splitmix64, Calibration};
use rayon::prelude::*;
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo bench --bench cancel -- [--threads N] [--reps R] [--items N] \
[--item-us U] [--delay-ms D] [--only NAME[,NAME]]";

/// The systems, in table order.
const SYSTEMS: [&str; 5] = [
    "stealpool",
    "stealpool-chunk1000",
    "rayon",
    "rayon-min1000",
    "wakeup",
];

/// The parsed command line.
struct Args {
    threads: usize,
    reps: usize,
    items: usize,
    item_us: f64,
    delay: Duration,
    systems: Vec<&'static str>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: common::default_threads()?,
        reps: 15,
        items: 1_000_000,
        item_us: 10.0,
        delay: Duration::from_millis(50),
        systems: Vec::new(),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |text: String| -> Result<f64, String> {
            match text.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
                _ => Err(format!("{flag}: expected a positive number, got {text:?}")),
            }
        };
        match flag.as_str() {
            "--bench" => {}
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "--threads" => args.threads = common::parse_threads(&value()?)?,
            "--reps" => args.reps = number(value()?)? as usize,
            "--items" => args.items = number(value()?)? as usize,
            "--item-us" => args.item_us = number(value()?)?,
            "--delay-ms" => args.delay = Duration::from_secs_f64(number(value()?)? / 1e3),
            "--only" => {
                for name in value()?.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let Some(&system) = SYSTEMS.iter().find(|s| **s == name) else {
                        return Err(format!(
                            "unknown system {name:?}: the systems are {}",
                            SYSTEMS.join(", ")
                        ));
                    };
                    args.systems.push(system);
                }
            }
            other if other.starts_with('-') => {
                eprintln!("cancel: ignoring unknown option {other}");
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    if args.reps == 0 || args.items == 0 {
        return Err("--reps and --items must be at least 1".to_owned());
    }
    if args.systems.is_empty() {
        args.systems = SYSTEMS.to_vec();
    } else {
        args.systems = SYSTEMS
            .into_iter()
            .filter(|s| args.systems.contains(s))
            .collect();
    }
    Ok(args)
}

/// The pools and the work of one item.
struct Bench {
    pool: stealpool::Pool,
    rayon: rayon::ThreadPool,
    items: usize,
    /// Spin steps per item.
    iters: u32,
    delay: Duration,
}

/// One repetition of one system.
struct Rep {
    /// From the stopping thread's clock reading to the call's return.
    latency: Duration,
    /// Whether the call returned the stop (not a finished loop).
    stopped: bool,
    /// Items that ran before the stop, where the system says.
    finished: Option<usize>,
}

impl Bench {
    /// Runs item `i`.
    #[inline]
    fn item(&self, i: usize) {
        let mut state = i as u64;
        black_box(spin(splitmix64(&mut state), self.iters));
    }

    /// One repetition of `system`: start the loop, stop it from another
    /// thread after the delay, time from the stop to the return.
    fn rep(&self, system: &str) -> Rep {
        let n = self.items;
        match system {
            "stealpool" | "stealpool-chunk1000" => {
                let token = stealpool::CancelToken::new();
                let options = match system {
                    "stealpool" => self.pool.options(),
                    _ => self.pool.options().chunk_size(1000),
                };
                self.timed(
                    || token.cancel(),
                    || {
                        let result = options.cancel_on(&token).for_each(0..n, |i| self.item(i));
                        match result {
                            Ok(()) => (false, None),
                            Err(cancelled) => (true, Some(cancelled.finished())),
                        }
                    },
                )
            }
            "rayon" | "rayon-min1000" => {
                let stop = AtomicBool::new(false);
                let body = |i: usize| {
                    if stop.load(Ordering::Relaxed) {
                        return Err(());
                    }
                    self.item(i);
                    Ok(())
                };
                self.timed(
                    || stop.store(true, Ordering::Relaxed),
                    || {
                        let result = self.rayon.install(|| match system {
                            "rayon" => (0..n).into_par_iter().try_for_each(body),
                            _ => (0..n).into_par_iter().with_min_len(1000).try_for_each(body),
                        });
                        (result.is_err(), None)
                    },
                )
            }
            "wakeup" => {
                let woken = AtomicBool::new(false);
                let caller = std::thread::current();
                self.timed(
                    || {
                        woken.store(true, Ordering::Release);
                        caller.unpark();
                    },
                    || {
                        while !woken.load(Ordering::Acquire) {
                            std::thread::park();
                        }
                        (true, None)
                    },
                )
            }
            other => panic!("no system {other}"),
        }
    }

    /// Runs `call` on this thread while another thread sleeps the delay,
    /// reads the clock and runs `stop`; returns the time from that reading
    /// to `call`'s return, with what `call` says: whether it was stopped,
    /// and how many items ran.
    ///
    /// The stopping thread then parks until `call` has returned, and exits
    /// only after: on a machine with as many CPUs as pool threads it runs
    /// on a CPU taken from the loop, and its exit (stack unmapped, the
    /// scope told) would hold that CPU for tens of µs inside the measured
    /// interval (about 60 µs on the 2-vCPU development machine).
    fn timed(
        &self,
        stop: impl FnOnce() + Send,
        call: impl FnOnce() -> (bool, Option<usize>),
    ) -> Rep {
        let returned = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let stopper = scope.spawn(|| {
                std::thread::sleep(self.delay);
                let at = Instant::now();
                stop();
                while !returned.load(Ordering::Acquire) {
                    std::thread::park();
                }
                at
            });
            let (stopped, finished) = call();
            let end = Instant::now();
            returned.store(true, Ordering::Release);
            stopper.thread().unpark();
            let at = stopper.join().expect("the stopping thread panicked");
            Rep {
                latency: end.saturating_duration_since(at),
                stopped,
                finished,
            }
        })
    }
}

/// The `q`-quantile of sorted, non-empty samples (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The median of sorted, non-empty samples.
fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The time one item takes on this thread: the median of 201 items, after
/// a warm-up, in µs.
fn measured_item_us(bench: &Bench) -> f64 {
    for i in 0..50 {
        bench.item(i);
    }
    let mut times: Vec<f64> = (0..201)
        .map(|i| {
            let started = Instant::now();
            bench.item(i);
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    median(&times)
}

fn run(args: &Args) -> Result<(), String> {
    let calibration = Calibration::measure();
    let bench = Bench {
        pool: stealpool::Pool::new(args.threads)
            .map_err(|e| format!("cannot build a stealpool pool: {e}"))?,
        rayon: rayon::ThreadPoolBuilder::new()
            .num_threads(args.threads)
            .build()
            .map_err(|e| format!("cannot build a rayon pool: {e}"))?,
        items: args.items,
        iters: calibration.iters(args.item_us * 1e3),
        delay: args.delay,
    };
    let item_us = measured_item_us(&bench);
    println!(
        "cancel: {} thread(s), {} items of ~{} µs (measured here: {item_us:.2} µs; spin \
         calibration {:.3} ns/step), stopped after {:.0} ms; {} rounds, one repetition of \
         every system each, in rotating order",
        args.threads,
        args.items,
        args.item_us,
        calibration.ns_per_iter,
        args.delay.as_secs_f64() * 1e3,
        args.reps,
    );

    // One untimed round first: the pools start their threads.
    for system in &args.systems {
        black_box(bench.rep(system));
    }
    let mut reps: Vec<Vec<Rep>> = args.systems.iter().map(|_| Vec::new()).collect();
    for round in 0..args.reps {
        for k in 0..args.systems.len() {
            let index = (round + k) % args.systems.len();
            reps[index].push(bench.rep(args.systems[index]));
        }
    }

    println!(
        "\n{:<20}{:>10}{:>10}{:>10}{:>12}{:>12}{:>12}{:>10}",
        "system", "median", "fastest", "slowest", "med/item", "med/meas", "items run", "stopped"
    );
    let mut failed = Vec::new();
    for (system, reps) in args.systems.iter().zip(&reps) {
        let mut us: Vec<f64> = reps.iter().map(|r| r.latency.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let mut finished: Vec<f64> = reps
            .iter()
            .filter_map(|r| r.finished.map(|f| f as f64))
            .collect();
        finished.sort_by(f64::total_cmp);
        let stopped = reps.iter().filter(|r| r.stopped).count();
        if stopped < reps.len() {
            failed.push(*system);
        }
        let m = median(&us);
        println!(
            "{:<20}{:>10}{:>10}{:>10}{:>12}{:>12}{:>12}{:>10}",
            system,
            format!("{m:.1} µs"),
            format!("{:.1} µs", us[0]),
            format!("{:.1} µs", us[us.len() - 1]),
            format!("{:.2}", m / args.item_us),
            format!("{:.2}", m / item_us),
            if finished.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.0}", median(&finished))
            },
            format!("{stopped}/{}", reps.len()),
        );
        if us.len() >= 4 {
            println!(
                "{:<20}quartiles {:.1} / {:.1} µs",
                "",
                quantile(&us, 0.25),
                quantile(&us, 0.75)
            );
        }
    }
    println!(
        "\nLatency: from the stopping thread's clock reading (just before `cancel()` / the \
         flag's store / `unpark()`) to the call's return on the calling thread. med/item: the \
         median over the nominal item time ({} µs); med/meas: over the item time measured on \
         this thread ({item_us:.2} µs). items run: median of `Cancelled::finished()`. \
         stopped: repetitions that returned the stop (a loop that finished instead is an \
         error).",
        args.item_us
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not stopped in every repetition: {}",
            failed.join(", ")
        ))
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    match parse_args().and_then(|args| run(&args)) {
        Ok(()) => {
            eprintln!("cancel: done in {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("cancel: {message}");
            ExitCode::FAILURE
        }
    }
}
