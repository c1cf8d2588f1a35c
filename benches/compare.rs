//! An interleaved, side-by-side comparison of `stealpool` with a sequential
//! loop, rayon, `std::thread::scope`, chili and a channel pipeline, on every
//! workload of the benchmarks (maps, fork-join, streaming, and the tick
//! workloads against a spinning "polling helper"; see `benches/common/`).
//!
//! On a shared, noisy machine absolute times drift from minute to minute, so
//! every workload runs all its systems in one process, interleaved: each
//! round runs every system once, in an order that rotates from round to
//! round, and the report gives each system's median time per call and the
//! ratios of those medians. Every sample also reads the process CPU time
//! (`getrusage(RUSAGE_SELF)`, user + system, every thread) before and after,
//! and the report gives its median per call (the `cpu/call` line under each
//! row): what a system burns, spinning workers included, besides how fast it
//! returns.
//!
//! The tick workloads (`tick-2ms`, `tick-1ms`; `--only tick` selects both)
//! call a small map on a fixed schedule, one call per period, the caller
//! sleeping until the next tick in between: a sample first sleeps one period
//! (so that the previous system's threads go idle uncharged), then makes its
//! calls at `t0`, `t0 + period`, ... and reads the CPU time at the tick after
//! the last call, so that every call is charged exactly one period. Only the
//! calls are timed. Their systems are `seq`, `stealpool`, `rayon` and
//! `polling` (`common/polling.rs`: the caller and `threads - 1` helpers that
//! spin between calls, engaged only during the `polling` samples); their
//! rows add each system's speed relative to the loop (`seq/time`) and its CPU
//! time relative to the loop's (`cpu/seq`).
//!
//! The watched workloads (`uniform-watched`, `small-call-watched`) run plain
//! `stealpool` beside `stealpool-token` (`options().cancel_on(&token)`, a
//! token never cancelled) and `stealpool-progress`
//! (`options().progress(&p)`); their rows add a `watched` line with each
//! variant's time over plain stealpool's. `owned-strings` clones its input
//! for every call before the clock starts (`Workload::prepare`).
//!
//! ```text
//! cargo bench --bench compare -- [--threads N[,N...]] [--only NAME[,NAME]] [--rounds R]
//!                                [--warmup W] [--pools P] [--json] [--write-docs] [--docs-only]
//!                                [--import FILE[,FILE...]]
//! ```
//!
//! * `--threads N,...`: the thread count of every system (default: the
//!   `STEALPOOL_BENCH_THREADS` environment variable, else the available
//!   parallelism); several counts run the whole selection once per count.
//! * `--only NAME,...`: workloads and/or systems to run (default: all). A
//!   name selects the workload of that name, else the family `NAME-...`
//!   (`tree-sum` selects `tree-sum-20` and `tree-sum-24`). A bare argument
//!   counts as an `--only` name. The sequential system always runs once per
//!   workload to check the others' results, but is only timed if selected.
//! * `--rounds R`: timed rounds per workload (default 15).
//! * `--warmup W`: untimed rounds per workload before those (default 2).
//! * `--pools P`: measure each workload on P fresh sets of pools (new
//!   threads each time), `rounds` rounds each, and report the median of the
//!   P medians (default 1). The operating system places a pool's threads on
//!   cores when they start and wake, and on a small virtual machine a whole
//!   set of pools can draw a bad placement (both workers of a 2-thread pool
//!   on one vCPU for a whole ~2 ms call); one process is then one draw, and
//!   several fresh pools measure the system rather than the draw.
//! * `--json`: one JSON object per workload and line instead of the table
//!   (what `benches/plot.rs` and `--import` read).
//! * `--write-docs`: also merge the rows into `benches/results/compare.jsonl`
//!   (replacing older rows of the same machine, workload and thread count;
//!   rows of other machines stay), redraw the SVG plots under `docs/plots/`
//!   from that store (removing the plots it no longer draws), and rewrite the
//!   section of `docs/benchmarks.md` between `<!-- compare:begin -->` and
//!   `<!-- compare:end -->`: per machine (fewest CPUs first) its tables and
//!   plots, then the issue's targets, checked on the 2-CPU machine's rows.
//! * `--docs-only`: measure nothing; redraw the plots and rewrite that
//!   section from the store as it is.
//! * `--import FILE,...`: measure nothing; merge the rows of these JSON-lines
//!   files (as `--json` prints them, other lines skipped; a later file's row
//!   replaces an earlier one of the same machine, workload and thread count)
//!   into the store, then redraw the plots and rewrite the section as
//!   `--write-docs` does. This is how rows measured on another machine, which
//!   cannot write the docs itself, get into them:
//!
//!   ```text
//!   (there)  cargo bench --bench compare -- --threads 1,2,4,8,16 --json > big.jsonl
//!   (here)   cargo bench --bench compare -- --import big.jsonl
//!   ```
//!
//! `STEALPOOL_BENCH_IDLE_POLL_US=N` builds the stealpool pools with an
//! idle-polling budget of N µs (`PoolBuilder::idle_poll`), to compare a
//! polling pool with the default one in two runs side by side; such rows
//! cannot go into the docs' store (`--write-docs` refuses them).
//!
//! Before timing, every system's result is checked against the sequential
//! one (through an order-sensitive checksum); a mismatch aborts the run.
//! Nothing here asserts a figure: the numbers are for people to read, and the
//! targets of the benchmarks issue are listed, met or missed, in the docs.

mod common;
mod report;

use common::alloc::{peak_growth, CountingAlloc};
use common::{Calibration, Kind, Output, Runners, System, Workload, SYSTEMS, WORKLOADS};
use report::{docs, plot, Row, ENGAGEMENT_FIELDS, STAT_FIELDS};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Counts live heap bytes during the untimed check of a stream (see
/// `common/alloc.rs`); otherwise the system allocator plus one relaxed load.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str = "usage: cargo bench --bench compare -- [--threads N[,N...]] \
[--only NAME[,NAME]] [--rounds R] [--warmup W] [--pools P] [--json] [--write-docs] [--docs-only] \
[--import FILE[,FILE...]]";

/// The parsed command line.
struct Args {
    threads: Vec<usize>,
    workloads: Vec<&'static str>,
    systems: Vec<System>,
    rounds: usize,
    warmup: usize,
    /// Fresh sets of pools per workload.
    pools: usize,
    json: bool,
    write_docs: bool,
    docs_only: bool,
    /// `--import`: JSON-lines files whose rows go into the store.
    import: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut threads = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut rounds = 15;
    let mut warmup = 2;
    let mut pools = 1;
    let mut json = false;
    let mut write_docs = false;
    let mut docs_only = false;
    let mut import = Vec::new();

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
            "--write-docs" => write_docs = true,
            "--docs-only" => docs_only = true,
            "--threads" => {
                for count in value("thread counts")?.split(',') {
                    threads.push(common::parse_threads(count)?);
                }
            }
            "--rounds" => {
                rounds = parse_count(&value("a round count")?, "--rounds")?;
                if rounds == 0 {
                    return Err("--rounds must be at least 1".to_owned());
                }
            }
            "--warmup" => warmup = parse_count(&value("a round count")?, "--warmup")?,
            "--pools" => {
                pools = parse_count(&value("a count of pool sets")?, "--pools")?;
                if pools == 0 {
                    return Err("--pools must be at least 1".to_owned());
                }
            }
            "--only" => names.extend(value("names")?.split(',').map(str::to_owned)),
            "--import" => {
                let files = value("JSON-lines files")?;
                let before = import.len();
                import.extend(
                    files
                        .split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(PathBuf::from),
                );
                if import.len() == before {
                    return Err(format!("--import needs JSON-lines files\n{USAGE}"));
                }
            }
            other if other.starts_with('-') => {
                // Flags meant for other bench targets of a plain `cargo bench`.
                eprintln!("compare: ignoring unknown option {other}");
            }
            // A filter, as `cargo bench -- NAME` passes it.
            _ => names.extend(arg.split(',').map(str::to_owned)),
        }
    }

    if threads.is_empty() {
        threads.push(common::default_threads()?);
    }
    let mut workloads = Vec::new();
    let mut systems = Vec::new();
    // A trailing `/` (criterion's group filter, `cargo bench -- skewed/`)
    // names the same workload.
    for name in names
        .iter()
        .map(|n| n.trim().trim_end_matches('/'))
        .filter(|n| !n.is_empty())
    {
        let selected = common::select(name);
        if !selected.is_empty() {
            workloads.extend(selected);
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
    // Keep table order and drop duplicates.
    let workloads = WORKLOADS
        .into_iter()
        .filter(|w| workloads.is_empty() || workloads.contains(w))
        .collect();
    Ok(Args {
        threads,
        workloads,
        systems,
        rounds,
        warmup,
        pools,
        json,
        write_docs,
        docs_only,
        import,
    })
}

fn parse_count(value: &str, flag: &str) -> Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: expected a number, got {value:?}"))
}

/// One sample of one system: wall time of the calls and process CPU time,
/// both per call.
struct Sample {
    /// Wall time per call, calls only (not the pauses and ticks between).
    ns: f64,
    /// Process CPU time (every thread, `getrusage`) per call over the whole
    /// sample, pauses and ticks included.
    cpu_ns: f64,
}

/// Times one sample: `calls_per_sample` calls.
fn sample(workload: &Workload, runners: &Runners, system: System) -> Sample {
    let calls = workload.calls_per_sample;
    // An owned input is copied for every call before the clock (and the CPU
    // time) starts.
    workload.prepare(calls);
    // The polling helpers spin for the whole sample of their system.
    let _engaged = runners.engage(system);
    if let Some(period) = workload.tick {
        // Let the previous system's threads go idle (their spinning is not
        // charged here), then start the schedule.
        std::thread::sleep(period);
    }
    let cpu_before = common::process_cpu();
    let elapsed = match (workload.pause, workload.tick) {
        (_, Some(period)) => {
            // Calls at t0, t0 + period, ...; the CPU time runs until the
            // tick after the last call, so that every call is charged one
            // period: its own work and whatever idles or spins after it.
            let mut elapsed = Duration::ZERO;
            let mut next = Instant::now();
            for _ in 0..calls {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                let started = Instant::now();
                let output = workload.call(runners, system);
                elapsed += started.elapsed();
                drop(black_box(output));
                // A call that overran its period starts the schedule anew.
                next = (next + period).max(started);
            }
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            elapsed
        }
        (None, None) => {
            // Results are kept until the clock stops, so that freeing them is
            // not timed.
            let mut kept: Vec<Output> = Vec::with_capacity(calls);
            let started = Instant::now();
            for _ in 0..calls {
                kept.push(workload.call(runners, system));
            }
            let elapsed = started.elapsed();
            drop(black_box(kept));
            elapsed
        }
        (Some(pause), None) => {
            let mut elapsed = Duration::ZERO;
            for _ in 0..calls {
                std::thread::sleep(pause);
                let started = Instant::now();
                let output = workload.call(runners, system);
                elapsed += started.elapsed();
                drop(black_box(output));
            }
            elapsed
        }
    };
    let cpu = common::process_cpu().saturating_sub(cpu_before);
    Sample {
        ns: elapsed.as_nanos() as f64 / calls as f64,
        cpu_ns: cpu.as_nanos() as f64 / calls as f64,
    }
}

/// `stealpool`'s counters per call between two snapshots.
fn stats_per_call(
    before: &stealpool::Stats,
    after: &stealpool::Stats,
    calls: usize,
) -> BTreeMap<String, f64> {
    let fields = |s: &stealpool::Stats| {
        [
            s.jobs_run,
            s.local_pops,
            s.injector_steals,
            s.worker_steals,
            s.failed_steals,
            s.parks,
            s.wakeups,
        ]
    };
    let mut per_call: BTreeMap<String, f64> = STAT_FIELDS
        .iter()
        .zip(fields(before).into_iter().zip(fields(after)))
        .map(|(name, (b, a))| {
            (
                (*name).to_owned(),
                a.saturating_sub(b) as f64 / calls.max(1) as f64,
            )
        })
        .collect();
    // Engagement: the share of calls that a helper started on, and the mean
    // time from a call's request for help to its first and its last helper's
    // start, over the helped calls.
    let helped = after.calls_helped.saturating_sub(before.calls_helped);
    per_call.insert(
        ENGAGEMENT_FIELDS[0].to_owned(),
        helped as f64 / calls.max(1) as f64,
    );
    if helped > 0 {
        let mean_us = |a: u64, b: u64| a.saturating_sub(b) as f64 / helped as f64 / 1e3;
        per_call.insert(
            ENGAGEMENT_FIELDS[1].to_owned(),
            mean_us(after.first_helper_nanos, before.first_helper_nanos),
        );
        per_call.insert(
            ENGAGEMENT_FIELDS[2].to_owned(),
            mean_us(after.last_helper_nanos, before.last_helper_nanos),
        );
    }
    per_call
}

/// Checks every system against the sequential one, then times `rounds`
/// interleaved rounds (after `warmup` untimed ones).
fn measure(
    workload: &Workload,
    runners: &Runners,
    selected: &[System],
    rounds: usize,
    warmup: usize,
) -> Result<Row, String> {
    let systems: Vec<System> = workload
        .systems()
        .iter()
        .copied()
        .filter(|s| selected.is_empty() || selected.contains(s))
        .collect();
    let streaming = matches!(workload.kind, Kind::Stream(_));

    // Check every system against the sequential one, once (measuring the
    // heap of a stream while at it).
    let mut heap_peak_bytes = BTreeMap::new();
    let expected = workload.call(runners, System::Seq).checksum();
    for &system in &systems {
        let _engaged = runners.engage(system);
        let (got, peak) = if streaming {
            peak_growth(|| workload.call(runners, system).checksum())
        } else {
            (workload.call(runners, system).checksum(), None)
        };
        if got != expected {
            return Err(format!(
                "workload {}: {} returned checksum {got:#018x}, the sequential system \
                 {expected:#018x}; its results are wrong, so nothing was timed",
                workload.name,
                system.name()
            ));
        }
        if let Some(peak) = peak {
            heap_peak_bytes.insert(system.name().to_owned(), peak as f64);
        }
    }

    for _ in 0..warmup {
        for &system in &systems {
            black_box(sample(workload, runners, system));
        }
    }

    let mut samples: BTreeMap<System, Vec<f64>> = BTreeMap::new();
    let mut cpu_samples: BTreeMap<System, Vec<f64>> = BTreeMap::new();
    let before = runners.pool.stats();
    for round in 0..rounds {
        for k in 0..systems.len() {
            let system = systems[(round + k) % systems.len()];
            let Sample { ns, cpu_ns } = sample(workload, runners, system);
            samples.entry(system).or_default().push(ns);
            cpu_samples.entry(system).or_default().push(cpu_ns);
        }
    }
    let after = runners.pool.stats();

    let mut row = Row {
        workload: workload.name.to_owned(),
        description: workload.description.clone(),
        threads: runners.threads,
        rounds,
        pools: 1,
        calls_per_sample: workload.calls_per_sample,
        items_per_call: workload.items_per_call(),
        median_ns: BTreeMap::new(),
        min_ns: BTreeMap::new(),
        max_ns: BTreeMap::new(),
        cpu_ns: BTreeMap::new(),
        // Per call of every system that calls the pool (plain stealpool and
        // the watched calls of the watched workloads).
        stats: systems.contains(&System::Stealpool).then(|| {
            let pool_systems = 1 + systems.iter().filter(|s| s.is_watched()).count();
            stats_per_call(
                &before,
                &after,
                rounds * workload.calls_per_sample * pool_systems,
            )
        }),
        heap_peak_bytes,
        date: report::today(),
        machine: report::machine(),
    };
    for (system, mut v) in samples {
        v.sort_by(f64::total_cmp);
        let name = system.name().to_owned();
        row.median_ns
            .insert(name.clone(), report::median_of_sorted(&v));
        row.min_ns.insert(name.clone(), v[0]);
        row.max_ns.insert(name, v[v.len() - 1]);
    }
    for (system, mut v) in cpu_samples {
        v.sort_by(f64::total_cmp);
        row.cpu_ns
            .insert(system.name().to_owned(), report::median_of_sorted(&v));
    }
    Ok(row)
}

/// Runs the selection at every thread count; returns the rows.
fn run(args: &Args, calibration: &Calibration) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for &threads in &args.threads {
        let intro = format!(
            "compare: {threads} thread(s), {} rounds (+{} warm-up) per workload on each of {} \
             fresh set(s) of pools, median time per call; spin calibration {:.3} ns/step\n\
             (stealpool: a map's caller + up to {threads} - 1 workers, join/imap on {threads} \
             workers; rayon: {threads} workers, caller blocked; scope: the caller + {} spawned \
             threads per call; chili: the caller + {} workers; channel: the caller + {threads} \
             spawned workers per call; polling: the caller + {} spinning helpers)",
            args.rounds,
            args.warmup,
            args.pools,
            calibration.ns_per_iter,
            threads - 1,
            threads - 1,
            threads - 1,
        );
        if args.json {
            eprintln!("{intro}");
        } else {
            println!("{intro}\n");
            println!("{}", report::table_header());
        }
        for name in &args.workloads {
            let Some(workload) = common::workload(name, calibration) else {
                continue;
            };
            if args.json {
                // In table mode each row is the progress report.
                eprintln!("compare: {} ({})", workload.name, workload.description);
            }
            // Fresh pools (new threads) for every workload and draw.
            let mut draws = Vec::with_capacity(args.pools);
            for _ in 0..args.pools {
                let runners = Runners::new(threads)?;
                draws.push(
                    measure(&workload, &runners, &args.systems, args.rounds, args.warmup)
                        .map_err(|e| format!("CHECKSUM MISMATCH: {e}"))?,
                );
            }
            let row = report::combine(draws);
            if args.json {
                println!("{}", row.to_json());
            } else {
                println!("{}", report::table_row(&row));
            }
            rows.push(row);
        }
        if !args.json {
            println!("\n{}\n", report::TABLE_LEGEND);
        }
    }
    Ok(rows)
}

/// `--import`: the rows of `files`, a later file's rows replacing an earlier
/// one's of the same machine, workload and thread count. A file that cannot
/// be read, holds no row or a row without a machine is an error.
fn import(files: &[PathBuf]) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--import: cannot read {}: {e}", file.display()))?;
        let new =
            report::parse_rows(&text).map_err(|e| format!("--import: {}: {e}", file.display()))?;
        if new.is_empty() {
            return Err(format!(
                "--import: {}: no rows (expected JSON lines as `--json` prints them)",
                file.display()
            ));
        }
        if let Some(row) = new.iter().find(|r| r.machine.trim().is_empty()) {
            return Err(format!(
                "--import: {}: the row of {} at {} thread(s) names no machine",
                file.display(),
                row.workload,
                row.threads
            ));
        }
        let machines: Vec<String> = report::machines(&new).into_iter().map(|m| m.name).collect();
        eprintln!(
            "compare: read {} rows from {} ({})",
            new.len(),
            file.display(),
            machines.join("; ")
        );
        rows = report::merge(rows, &new);
    }
    Ok(rows)
}

/// `--write-docs` (and `--docs-only`, `--import`): merges `rows` into the
/// store, redraws the plots from it (removing those it no longer gives) and
/// rewrites the section of `docs/benchmarks.md`.
fn write_docs(rows: &[Row]) -> Result<(), String> {
    let store_path = docs::store_path();
    let store = report::merge(docs::read_rows(&store_path)?, rows);
    docs::write_rows(&store_path, &store)?;
    let plots_dir = docs::plots_dir();
    let plots = plot::draw_all(&store, &plots_dir)?;
    for stale in plot::remove_stale(&plots_dir, &plots)? {
        eprintln!("compare: removed {}", stale.display());
    }
    let docs_path = docs::docs_path();
    docs::write_section(&docs_path, &docs::section(&store, &plots))?;
    eprintln!(
        "compare: wrote {} ({} rows), {} and {}",
        store_path.display(),
        store.len(),
        plots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        docs_path.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let started = Instant::now();
    let result = parse_args().and_then(|args| {
        if !args.import.is_empty() {
            return write_docs(&import(&args.import)?);
        }
        if args.docs_only {
            return write_docs(&[]);
        }
        if args.write_docs && !common::idle_poll()?.is_zero() {
            // The store's rows are of the default pool: a budgeted row would
            // replace one of them under the same name.
            return Err(format!(
                "--write-docs measures the default pools: unset {}",
                common::IDLE_POLL_ENV
            ));
        }
        let calibration = Calibration::measure();
        let rows = run(&args, &calibration)?;
        if args.write_docs {
            write_docs(&rows)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            eprintln!("compare: done in {:.1} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("compare: {message}");
            ExitCode::FAILURE
        }
    }
}
