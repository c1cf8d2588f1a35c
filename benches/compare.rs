//! An interleaved, side-by-side comparison of `stealpool` with a sequential
//! loop, rayon and `std::thread::scope`.
//!
//! On a shared, noisy machine absolute times drift from minute to minute, so
//! every workload runs all systems in one process, interleaved: each round
//! runs every system once, in an order that rotates from round to round, and
//! the report gives each system's median time per call and the ratios of
//! those medians.
//!
//! ```text
//! cargo bench --bench compare -- [--threads N] [--only NAME[,NAME]] [--rounds R]
//!                                [--warmup W] [--json]
//! ```
//!
//! * `--threads N`: the thread count of every system (default: the
//!   `STEALPOOL_BENCH_THREADS` environment variable, else the available
//!   parallelism).
//! * `--only NAME,...`: workloads and/or systems to run (default: all). A
//!   bare argument counts as an `--only` name. The sequential loop always
//!   runs once per workload to check the others' results, but is only timed
//!   if selected.
//! * `--rounds R`: timed rounds per workload (default 15).
//! * `--warmup W`: untimed rounds per workload before those (default 2).
//! * `--json`: one JSON object per workload and line instead of the table.
//!
//! Before timing, every system's results are checked against the sequential
//! loop's (through an order-sensitive checksum); a mismatch aborts the run.
//! Nothing here asserts a figure: the numbers are for people to read.

mod common;

use common::{checksum, Calibration, Runners, System, Workload, SYSTEMS, WORKLOADS};
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: cargo bench --bench compare -- [--threads N] \
[--only NAME[,NAME]] [--rounds R] [--warmup W] [--json]";

/// The parsed command line.
struct Args {
    threads: usize,
    workloads: Vec<&'static str>,
    systems: Vec<System>,
    rounds: usize,
    warmup: usize,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut threads = None;
    let mut names: Vec<String> = Vec::new();
    let mut rounds = 15;
    let mut warmup = 2;
    let mut json = false;

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs {what}\n{USAGE}"))
        };
        match flag.as_str() {
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "--json" => json = true,
            "--threads" => threads = Some(common::parse_threads(&value("a thread count")?)?),
            "--rounds" => {
                rounds = parse_count(&value("a round count")?, "--rounds")?;
                if rounds == 0 {
                    return Err("--rounds must be at least 1".to_owned());
                }
            }
            "--warmup" => warmup = parse_count(&value("a round count")?, "--warmup")?,
            "--only" => names.extend(value("names")?.split(',').map(str::to_owned)),
            other if other.starts_with('-') => {
                // Flags meant for other bench targets of a plain `cargo bench`.
                eprintln!("compare: ignoring unknown option {other}");
            }
            // A filter, as `cargo bench -- NAME` passes it.
            _ => names.extend(arg.split(',').map(str::to_owned)),
        }
    }

    let threads = match threads {
        Some(n) => n,
        None => common::default_threads()?,
    };
    let mut workloads = Vec::new();
    let mut systems = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if let Some(&workload) = WORKLOADS.iter().find(|w| **w == name) {
            workloads.push(workload);
        } else if let Some(system) = System::from_name(name) {
            systems.push(system);
        } else {
            return Err(format!(
                "unknown name {name:?}: workloads are {}; systems are {}",
                WORKLOADS.join(", "),
                SYSTEMS.map(System::name).join(", ")
            ));
        }
    }
    if workloads.is_empty() {
        workloads = WORKLOADS.to_vec();
    }
    // Keep table order and drop duplicates.
    let workloads = WORKLOADS
        .into_iter()
        .filter(|w| workloads.contains(w))
        .collect();
    let systems = if systems.is_empty() {
        SYSTEMS.to_vec()
    } else {
        SYSTEMS
            .into_iter()
            .filter(|s| systems.contains(s))
            .collect()
    };
    Ok(Args {
        threads,
        workloads,
        systems,
        rounds,
        warmup,
        json,
    })
}

fn parse_count(value: &str, flag: &str) -> Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: expected a number, got {value:?}"))
}

/// Times one sample: `calls_per_sample` calls. Returns nanoseconds per call.
fn sample(workload: &Workload, runners: &Runners, system: System) -> f64 {
    let calls = workload.calls_per_sample;
    let elapsed = match workload.pause {
        None => {
            // Results are kept until the clock stops, so that freeing them is
            // not timed.
            let mut kept = Vec::with_capacity(calls);
            let started = Instant::now();
            for _ in 0..calls {
                kept.push(workload.call(runners, system));
            }
            let elapsed = started.elapsed();
            drop(black_box(kept));
            elapsed
        }
        Some(pause) => {
            let mut elapsed = Duration::ZERO;
            for _ in 0..calls {
                std::thread::sleep(pause);
                let started = Instant::now();
                let results = workload.call(runners, system);
                elapsed += started.elapsed();
                drop(black_box(results));
            }
            elapsed
        }
    };
    elapsed.as_nanos() as f64 / calls as f64
}

/// The `stealpool` counters per call, averaged over the timed rounds.
#[derive(Default)]
struct StatsPerCall {
    jobs_run: f64,
    local_pops: f64,
    injector_steals: f64,
    worker_steals: f64,
    failed_steals: f64,
    parks: f64,
    wakeups: f64,
}

impl StatsPerCall {
    fn between(before: &stealpool::Stats, after: &stealpool::Stats, calls: usize) -> Self {
        let per_call = |a: u64, b: u64| a.saturating_sub(b) as f64 / calls.max(1) as f64;
        StatsPerCall {
            jobs_run: per_call(after.jobs_run, before.jobs_run),
            local_pops: per_call(after.local_pops, before.local_pops),
            injector_steals: per_call(after.injector_steals, before.injector_steals),
            worker_steals: per_call(after.worker_steals, before.worker_steals),
            failed_steals: per_call(after.failed_steals, before.failed_steals),
            parks: per_call(after.parks, before.parks),
            wakeups: per_call(after.wakeups, before.wakeups),
        }
    }

    fn fields(&self) -> [(&'static str, f64); 7] {
        [
            ("jobs_run", self.jobs_run),
            ("local_pops", self.local_pops),
            ("injector_steals", self.injector_steals),
            ("worker_steals", self.worker_steals),
            ("failed_steals", self.failed_steals),
            ("parks", self.parks),
            ("wakeups", self.wakeups),
        ]
    }
}

/// One system's samples (ns per call), sorted.
struct Samples(Vec<f64>);

impl Samples {
    fn median(&self) -> f64 {
        let v = &self.0;
        let mid = v.len() / 2;
        if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        }
    }
}

/// The measurements of one workload.
struct Report {
    workload: &'static str,
    description: String,
    items_per_call: usize,
    calls_per_sample: usize,
    /// Per system of `SYSTEMS`, if it ran.
    samples: [Option<Samples>; 4],
    /// Present if `stealpool` ran.
    stats: Option<StatsPerCall>,
}

impl Report {
    fn median(&self, system: System) -> Option<f64> {
        self.samples[index_of(system)].as_ref().map(Samples::median)
    }

    fn ratio(&self, a: System, b: System) -> Option<f64> {
        Some(self.median(a)? / self.median(b)?)
    }

    fn efficiency(&self, system: System, threads: usize) -> Option<f64> {
        Some(self.median(System::Seq)? / (self.median(system)? * threads as f64))
    }
}

fn index_of(system: System) -> usize {
    SYSTEMS
        .iter()
        .position(|s| *s == system)
        .unwrap_or_default()
}

fn measure(
    workload: &Workload,
    runners: &Runners,
    systems: &[System],
    rounds: usize,
    warmup: usize,
) -> Result<Report, String> {
    // Check every system against the sequential loop, once.
    let expected = checksum(&workload.call(runners, System::Seq));
    for &system in systems {
        let got = checksum(&workload.call(runners, system));
        if got != expected {
            return Err(format!(
                "workload {}: {} returned checksum {got:#018x}, the sequential loop {expected:#018x}; \
                 its results are wrong, so nothing was timed",
                workload.name,
                system.name()
            ));
        }
    }

    for _ in 0..warmup {
        for &system in systems {
            black_box(sample(workload, runners, system));
        }
    }

    let mut samples: [Vec<f64>; 4] = Default::default();
    let before = runners.pool.stats();
    for round in 0..rounds {
        for k in 0..systems.len() {
            let system = systems[(round + k) % systems.len()];
            samples[index_of(system)].push(sample(workload, runners, system));
        }
    }
    let after = runners.pool.stats();

    let samples = samples.map(|mut v| {
        (!v.is_empty()).then(|| {
            v.sort_by(f64::total_cmp);
            Samples(v)
        })
    });
    let stats = systems
        .contains(&System::Stealpool)
        .then(|| StatsPerCall::between(&before, &after, rounds * workload.calls_per_sample));
    Ok(Report {
        workload: workload.name,
        description: workload.description.clone(),
        items_per_call: workload.items_per_call(),
        calls_per_sample: workload.calls_per_sample,
        samples,
        stats,
    })
}

/// A time in ns, in a readable unit.
fn time(ns: Option<f64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(ns) if ns < 1e3 => format!("{ns:.0} ns"),
        Some(ns) if ns < 1e6 => format!("{:.2} us", ns / 1e3),
        Some(ns) if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.2} s", ns / 1e9),
    }
}

fn number(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".to_owned(),
    }
}

fn table_header() -> String {
    format!(
        "{:<17}{:>4} {:>10}{:>11}{:>10}{:>10} {:>9}{:>8}{:>9} {:>7}{:>7} | {:>8}{:>8}{:>8}{:>7}{:>8}",
        "workload",
        "thr",
        "seq",
        "stealpool",
        "rayon",
        "scope",
        "sp/rayon",
        "sp/seq",
        "sp/scope",
        "eff:sp",
        "eff:ry",
        "jobs",
        "wsteal",
        "isteal",
        "parks",
        "wakeups",
    )
}

fn table_row(report: &Report, threads: usize) -> String {
    use System::*;
    let stat = |f: fn(&StatsPerCall) -> f64| number(report.stats.as_ref().map(f), 2);
    format!(
        "{:<17}{:>4} {:>10}{:>11}{:>10}{:>10} {:>9}{:>8}{:>9} {:>7}{:>7} | {:>8}{:>8}{:>8}{:>7}{:>8}",
        report.workload,
        threads,
        time(report.median(Seq)),
        time(report.median(Stealpool)),
        time(report.median(Rayon)),
        time(report.median(Scope)),
        number(report.ratio(Stealpool, Rayon), 2),
        number(report.ratio(Stealpool, Seq), 2),
        number(report.ratio(Stealpool, Scope), 2),
        number(report.efficiency(Stealpool, threads), 2),
        number(report.efficiency(Rayon, threads), 2),
        stat(|s| s.jobs_run),
        stat(|s| s.worker_steals),
        stat(|s| s.injector_steals),
        stat(|s| s.parks),
        stat(|s| s.wakeups),
    )
}

fn json_number(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "null".to_owned(),
    }
}

fn json_line(report: &Report, threads: usize, rounds: usize) -> String {
    use System::*;
    let per_system = |value: &dyn Fn(&Samples) -> f64| {
        let fields: Vec<String> = SYSTEMS
            .iter()
            .map(|&system| {
                let x = report.samples[index_of(system)].as_ref().map(value);
                format!("\"{}\":{}", system.name(), json_number(x))
            })
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    let mut line = String::new();
    let _ =
        write!(
        line,
        "{{\"workload\":\"{}\",\"description\":\"{}\",\"threads\":{threads},\"rounds\":{rounds},\
         \"calls_per_sample\":{},\"items_per_call\":{}",
        report.workload,
        report.description.replace('\\', "\\\\").replace('"', "\\\""),
        report.calls_per_sample,
        report.items_per_call,
    );
    let _ = write!(
        line,
        ",\"median_ns\":{},\"min_ns\":{},\"max_ns\":{}",
        per_system(&Samples::median),
        per_system(&|s: &Samples| s.0[0]),
        per_system(&|s: &Samples| s.0[s.0.len() - 1]),
    );
    let _ = write!(
        line,
        ",\"ratio\":{{\"stealpool/rayon\":{},\"stealpool/seq\":{},\"stealpool/scope\":{}}}",
        json_number(report.ratio(Stealpool, Rayon)),
        json_number(report.ratio(Stealpool, Seq)),
        json_number(report.ratio(Stealpool, Scope)),
    );
    let _ = write!(
        line,
        ",\"efficiency\":{{\"stealpool\":{},\"rayon\":{}}}",
        json_number(report.efficiency(Stealpool, threads)),
        json_number(report.efficiency(Rayon, threads)),
    );
    match &report.stats {
        Some(stats) => {
            let fields: Vec<String> = stats
                .fields()
                .iter()
                .map(|(name, x)| format!("\"{name}\":{}", json_number(Some(*x))))
                .collect();
            let _ = write!(
                line,
                ",\"stealpool_stats_per_call\":{{{}}}",
                fields.join(",")
            );
        }
        None => line.push_str(",\"stealpool_stats_per_call\":null"),
    }
    line.push('}');
    line
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("compare: {message}");
            return ExitCode::FAILURE;
        }
    };
    let runners = match Runners::new(args.threads) {
        Ok(runners) => runners,
        Err(message) => {
            eprintln!("compare: {message}");
            return ExitCode::FAILURE;
        }
    };
    let calibration = Calibration::measure();
    let started = Instant::now();

    let intro = format!(
        "compare: {} threads, {} rounds (+{} warm-up) per workload, median time per call; \
         spin calibration {:.3} ns/step\n\
         (stealpool: the caller + up to {} - 1 workers per call; rayon: {} workers, caller blocked; \
         scope: the caller + {} spawned threads per call)",
        args.threads,
        args.rounds,
        args.warmup,
        calibration.ns_per_iter,
        args.threads,
        args.threads,
        args.threads - 1,
    );
    if args.json {
        eprintln!("{intro}");
    } else {
        println!("{intro}\n");
        println!("{}", table_header());
    }

    for name in &args.workloads {
        let Some(workload) = common::workload(name, &calibration) else {
            continue;
        };
        if args.json {
            // In table mode each row is the progress report.
            eprintln!(
                "compare: running {} ({})",
                workload.name, workload.description
            );
        }
        let report = match measure(&workload, &runners, &args.systems, args.rounds, args.warmup) {
            Ok(report) => report,
            Err(message) => {
                eprintln!("compare: CHECKSUM MISMATCH: {message}");
                return ExitCode::FAILURE;
            }
        };
        if args.json {
            println!("{}", json_line(&report, args.threads, args.rounds));
        } else {
            println!("{}", table_row(&report, args.threads));
        }
    }

    if !args.json {
        println!(
            "\nsp/X: median stealpool time / median X time (below 1: stealpool faster). \
             eff: T_seq / (T * threads).\n\
             jobs .. wakeups: stealpool Stats deltas per call (jobs_run, worker_steals, \
             injector_steals, parks, wakeups), over the timed rounds."
        );
    }
    eprintln!("compare: done in {:.1} s", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
