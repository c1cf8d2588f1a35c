//! The results of `compare`: one [`Row`] per machine, workload and thread
//! count, as the terminal table, JSON lines (`--json`, the results store),
//! the Markdown section of `docs/benchmarks.md` ([`docs`]), the targets of
//! the benchmarks issue ([`targets`]) and SVG plots ([`plot`]).
//!
//! A binary that uses this module also declares `mod common;` (for the
//! workload and system names, which fix the table order).

// `compare` and `plot` each use a different part of this module.
#![allow(dead_code)]

pub mod docs;
pub mod plot;
pub mod targets;

use crate::common::{System, SYSTEMS, WORKLOADS};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

/// The `stealpool` [`Stats`](stealpool::Stats) fields reported per call.
pub const STAT_FIELDS: [&str; 7] = [
    "jobs_run",
    "local_pops",
    "injector_steals",
    "worker_steals",
    "failed_steals",
    "parks",
    "wakeups",
];

/// Engagement figures derived from `stealpool`'s [`Stats`](stealpool::Stats)
/// over the timed rounds: the share of calls that a helper started on, and
/// the mean microseconds from a helped call's request for help to its first
/// and to its last helper's start.
pub const ENGAGEMENT_FIELDS: [&str; 3] = ["helped", "first_helper_us", "last_helper_us"];

/// The ratios reported for every row: stealpool's median over each other
/// system's (below 1: stealpool faster).
pub const RATIOS: [(&str, &str); 5] = [
    ("stealpool", "rayon"),
    ("stealpool", "seq"),
    ("stealpool", "scope"),
    ("stealpool", "chili"),
    ("stealpool", "channel"),
];

/// The ratios of the watched workloads: each watched stealpool call's
/// median over plain stealpool's (above 1: the watch costs time).
pub const WATCH_RATIOS: [(&str, &str); 2] = [
    ("stealpool-token", "stealpool"),
    ("stealpool-progress", "stealpool"),
];

/// The systems of the terminal table's columns: every system but the
/// watched stealpool calls, which get a line of their own (see
/// [`table_row`]).
fn column_systems() -> impl Iterator<Item = System> {
    SYSTEMS.into_iter().filter(|s| !s.is_watched())
}

/// The measurements of one workload at one thread count.
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload's name.
    pub workload: String,
    /// What one call does.
    pub description: String,
    /// The thread count of every system.
    pub threads: usize,
    /// Timed rounds (one sample per system each), per set of pools.
    pub rounds: usize,
    /// Fresh sets of pools measured (`--pools`); the medians are the median
    /// of their medians.
    pub pools: usize,
    /// Calls per sample.
    pub calls_per_sample: usize,
    /// Items (or nodes, or joins) per call.
    pub items_per_call: usize,
    /// Median, fastest and slowest sample per system, in ns per call.
    pub median_ns: BTreeMap<String, f64>,
    /// The fastest sample per system, in ns per call.
    pub min_ns: BTreeMap<String, f64>,
    /// The slowest sample per system, in ns per call.
    pub max_ns: BTreeMap<String, f64>,
    /// Median process CPU time (user + system, every thread of the process,
    /// `getrusage(RUSAGE_SELF)`) per call, per system, in ns: the sample's
    /// CPU time, pauses and ticks included, over its calls. Empty in rows
    /// measured before it was recorded.
    pub cpu_ns: BTreeMap<String, f64>,
    /// `stealpool`'s [`STAT_FIELDS`] per call over the timed rounds.
    pub stats: Option<BTreeMap<String, f64>>,
    /// Peak growth of live heap bytes during one untimed call, per system
    /// (stream workloads).
    pub heap_peak_bytes: BTreeMap<String, f64>,
    /// The day of the run (UTC, `YYYY-MM-DD`).
    pub date: String,
    /// The machine, in words.
    pub machine: String,
}

impl Row {
    /// The median of `system`, in ns per call.
    pub fn median(&self, system: &str) -> Option<f64> {
        self.median_ns.get(system).copied()
    }

    /// `median(a) / median(b)`.
    pub fn ratio(&self, a: &str, b: &str) -> Option<f64> {
        Some(self.median(a)? / self.median(b)?)
    }

    /// The median process CPU time per call of `system`, in ns.
    pub fn cpu(&self, system: &str) -> Option<f64> {
        self.cpu_ns.get(system).copied()
    }

    /// The speed of `system` relative to the sequential loop:
    /// `median(seq) / median(system)` (above 1: faster than the loop).
    pub fn speed_vs_seq(&self, system: &str) -> Option<f64> {
        Some(self.median("seq")? / self.median(system)?)
    }

    /// The CPU time per call of `system` relative to the sequential loop's:
    /// `cpu(system) / cpu(seq)` (above 1: more CPU than the loop).
    pub fn cpu_vs_seq(&self, system: &str) -> Option<f64> {
        Some(self.cpu(system)? / self.cpu("seq")?)
    }

    /// Parallel efficiency of `system`: `T_seq / (T × threads)`.
    pub fn efficiency(&self, system: &str) -> Option<f64> {
        Some(self.median("seq")? / (self.median(system)? * self.threads as f64))
    }

    /// A `stealpool` counter per call.
    pub fn stat(&self, field: &str) -> Option<f64> {
        self.stats.as_ref()?.get(field).copied()
    }

    /// The row as one JSON object (one line of `--json` and of the store).
    pub fn to_json(&self) -> Value {
        let ratios: Map<String, Value> = RATIOS
            .iter()
            .chain(&WATCH_RATIOS)
            .filter_map(|(a, b)| Some((format!("{a}/{b}"), json!(self.ratio(a, b)?))))
            .collect();
        let efficiency: Map<String, Value> = self
            .median_ns
            .keys()
            .filter_map(|s| Some((s.clone(), json!(self.efficiency(s)?))))
            .collect();
        let per_system = |f: &dyn Fn(&str) -> Option<f64>| -> Map<String, Value> {
            self.median_ns
                .keys()
                .filter_map(|s| Some((s.clone(), json!(f(s)?))))
                .collect()
        };
        let mut row = json!({
            "workload": self.workload,
            "description": self.description,
            "threads": self.threads,
            "rounds": self.rounds,
            "pools": self.pools,
            "calls_per_sample": self.calls_per_sample,
            "items_per_call": self.items_per_call,
            "median_ns": self.median_ns,
            "min_ns": self.min_ns,
            "max_ns": self.max_ns,
            "ratio": ratios,
            "efficiency": efficiency,
            "stealpool_stats_per_call": self.stats,
            "heap_peak_bytes": self.heap_peak_bytes,
            "date": self.date,
            "machine": self.machine,
        });
        // The CPU times and the ratios to the loop, in rows that recorded
        // CPU time (older rows of the store stay as they were written).
        if !self.cpu_ns.is_empty() {
            row["cpu_ns_per_call"] = json!(self.cpu_ns);
            row["speed_vs_seq"] = Value::Object(per_system(&|s| self.speed_vs_seq(s)));
            row["cpu_vs_seq"] = Value::Object(per_system(&|s| self.cpu_vs_seq(s)));
        }
        row
    }

    /// Reads a row written by [`to_json`](Self::to_json) (derived fields are
    /// recomputed, not read).
    pub fn from_json(value: &Value) -> Result<Row, String> {
        let text = |key: &str| -> Result<String, String> {
            value[key]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("missing string field {key:?}"))
        };
        let count = |key: &str| -> Result<usize, String> {
            value[key]
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| format!("missing number field {key:?}"))
        };
        let numbers = |key: &str| -> BTreeMap<String, f64> {
            value[key]
                .as_object()
                .map(|object| {
                    object
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let stats = numbers("stealpool_stats_per_call");
        Ok(Row {
            workload: text("workload")?,
            description: text("description").unwrap_or_default(),
            threads: count("threads")?,
            rounds: count("rounds").unwrap_or_default(),
            pools: count("pools").unwrap_or(1),
            calls_per_sample: count("calls_per_sample").unwrap_or(1),
            items_per_call: count("items_per_call").unwrap_or_default(),
            median_ns: numbers("median_ns"),
            min_ns: numbers("min_ns"),
            max_ns: numbers("max_ns"),
            cpu_ns: numbers("cpu_ns_per_call"),
            stats: (!stats.is_empty()).then_some(stats),
            heap_peak_bytes: numbers("heap_peak_bytes"),
            date: text("date").unwrap_or_default(),
            machine: text("machine").unwrap_or_default(),
        })
    }
}

/// Parses JSON lines (blank lines and lines that are not objects with a
/// `workload` are skipped, so that a log with other output still reads).
pub fn parse_rows(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not JSON: {e}", number + 1))?;
        if value.get("workload").is_none() {
            continue;
        }
        rows.push(Row::from_json(&value).map_err(|e| format!("line {}: {e}", number + 1))?);
    }
    Ok(rows)
}

/// The median of sorted, non-empty samples.
pub fn median_of_sorted(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// One row from the rows of the same workload measured on several fresh sets
/// of pools (`--pools`): per system the median of the medians, the fastest
/// of the fastest and the slowest of the slowest samples, the counters
/// averaged and the largest heap growth.
///
/// # Panics
///
/// If `draws` is empty.
pub fn combine(mut draws: Vec<Row>) -> Row {
    assert!(!draws.is_empty(), "combine: no rows");
    if draws.len() == 1 {
        return draws.remove(0);
    }
    let n = draws.len();
    let systems: Vec<String> = draws[0].median_ns.keys().cloned().collect();
    let mut row = draws[0].clone();
    row.pools = draws.iter().map(|d| d.pools).sum();
    for system in systems {
        let mut medians: Vec<f64> = draws.iter().filter_map(|d| d.median(&system)).collect();
        medians.sort_by(f64::total_cmp);
        if !medians.is_empty() {
            row.median_ns
                .insert(system.clone(), median_of_sorted(&medians));
        }
        let fold = |map: fn(&Row) -> &BTreeMap<String, f64>, pick: fn(f64, f64) -> f64| {
            draws
                .iter()
                .filter_map(|d| map(d).get(&system).copied())
                .reduce(pick)
        };
        if let Some(min) = fold(|d| &d.min_ns, f64::min) {
            row.min_ns.insert(system.clone(), min);
        }
        if let Some(max) = fold(|d| &d.max_ns, f64::max) {
            row.max_ns.insert(system.clone(), max);
        }
        let mut cpus: Vec<f64> = draws.iter().filter_map(|d| d.cpu(&system)).collect();
        cpus.sort_by(f64::total_cmp);
        if !cpus.is_empty() {
            row.cpu_ns.insert(system.clone(), median_of_sorted(&cpus));
        }
        if let Some(heap) = fold(|d| &d.heap_peak_bytes, f64::max) {
            row.heap_peak_bytes.insert(system, heap);
        }
    }
    if let Some(stats) = row.stats.as_mut() {
        for (field, value) in stats.iter_mut() {
            *value = draws.iter().filter_map(|d| d.stat(field)).sum::<f64>() / n as f64;
        }
    }
    row
}

/// Where `workload` sorts in tables (unknown names last).
pub fn workload_rank(workload: &str) -> usize {
    WORKLOADS
        .iter()
        .position(|w| *w == workload)
        .unwrap_or(WORKLOADS.len())
}

/// Sorts rows by machine (fewest CPUs first, see [`machines`]), then thread
/// count, then workload order.
pub fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
}

/// What [`sort_rows`] sorts by.
fn sort_key(r: &Row) -> (bool, Option<usize>, &str, usize, usize, &str) {
    let cpus = cpu_count(&r.machine);
    (
        cpus.is_none(),
        cpus,
        &r.machine,
        r.threads,
        workload_rank(&r.workload),
        &r.workload,
    )
}

/// `old` with every row of `new` added, replacing the rows of the same
/// machine, workload and thread count (rows of other machines stay; of two
/// such rows in `new`, the later one is kept).
pub fn merge(old: Vec<Row>, new: &[Row]) -> Vec<Row> {
    let mut rows = old;
    for n in new {
        rows.retain(|o| {
            !(o.machine == n.machine && o.workload == n.workload && o.threads == n.threads)
        });
        rows.push(n.clone());
    }
    sort_rows(&mut rows);
    rows
}

/// The number of CPUs a machine string names: its leading integer, a plain
/// count (`"16 CPUs, AMD EPYC"` -> 16, `"2 CPUs"` -> 2), which [`machine`]
/// writes as the logical CPUs (`available_parallelism`) of the machine that
/// measured the row. `None` if the string does not start with a number.
pub fn cpu_count(machine: &str) -> Option<usize> {
    let text = machine.trim_start();
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text[..end].parse().ok()
}

/// The thread counts a machine needs for its scaling table and plot (and a
/// workload for its line in the plot).
pub const SCALING_MIN_THREADS: usize = 3;

/// One machine of the rows, as the docs and plots group them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The machine, in words (the rows' `machine` field).
    pub name: String,
    /// Its CPU count ([`cpu_count`]).
    pub cpus: Option<usize>,
    /// A short name for file names, unique among the machines of the rows:
    /// `2cpu`, or the whole name in lower case and dashes
    /// (`16-cpus-amd-epyc`) when two machines have the same CPU count.
    pub tag: String,
}

/// The machines of `rows`: fewest CPUs first (a name without a leading count
/// last), then by name.
pub fn machines(rows: &[Row]) -> Vec<Machine> {
    let names: BTreeSet<&str> = rows.iter().map(|r| r.machine.as_str()).collect();
    let mut list: Vec<(Option<usize>, &str)> =
        names.into_iter().map(|n| (cpu_count(n), n)).collect();
    list.sort_by_key(|&(cpus, name)| (cpus.is_none(), cpus, name));
    let mut machines: Vec<Machine> = Vec::new();
    for &(cpus, name) in &list {
        let shared = list.iter().filter(|(c, _)| *c == cpus).count() > 1;
        let base = match cpus {
            Some(n) if !shared => format!("{n}cpu"),
            _ => slug(name),
        };
        let mut tag = base.clone();
        let mut k = 2;
        while machines.iter().any(|m| m.tag == tag) {
            tag = format!("{base}-{k}");
            k += 1;
        }
        machines.push(Machine {
            name: name.to_owned(),
            cpus,
            tag,
        });
    }
    machines
}

/// `text` in lower case, runs of other characters than ASCII letters and
/// digits turned into single dashes (`unknown` if nothing is left).
fn slug(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if words.is_empty() {
        "unknown".to_owned()
    } else {
        words.join("-")
    }
}

/// A time in ns, in a readable unit.
pub fn time(ns: Option<f64>) -> String {
    match ns {
        None => "-".to_owned(),
        Some(ns) if ns < 1e3 => format!("{ns:.0} ns"),
        Some(ns) if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        Some(ns) if ns < 1e9 => format!("{:.2} ms", ns / 1e6),
        Some(ns) => format!("{:.2} s", ns / 1e9),
    }
}

/// A number with `decimals` decimals, or `-`.
pub fn number(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => "-".to_owned(),
    }
}

/// The terminal table's header line.
pub fn table_header() -> String {
    let mut line = format!("{:<17}{:>3}", "workload", "thr");
    for system in column_systems() {
        line += &format!("{:>10}", system.name());
    }
    for head in [
        "sp/ry", "sp/seq", "sp/scp", "sp/chi", "sp/chn", "eff:sp", "eff:ry",
    ] {
        line += &format!("{head:>7}");
    }
    line += " |";
    for head in ["wsteal", "isteal", "parks", "wakeup", "helped"] {
        line += &format!("{head:>7}");
    }
    for head in ["1st us", "last us"] {
        line += &format!("{head:>8}");
    }
    line
}

/// The lines of the terminal table for one row: the times, ratios and
/// counters; under the system columns the CPU time per call (and under the
/// ratio columns stealpool's CPU time over each system's), if measured; and
/// for a row with the `polling` system (the tick workloads) every system's
/// speed relative to the sequential loop and its CPU time relative to the
/// loop's.
pub fn table_row(row: &Row) -> String {
    let mut out = table_line(row);
    if !row.cpu_ns.is_empty() {
        let mut line = format!("{:<20}", "  cpu/call");
        for system in column_systems() {
            line += &format!("{:>10}", time(row.cpu(system.name())));
        }
        for (a, b) in RATIOS {
            let ratio = row.cpu(a).zip(row.cpu(b)).map(|(a, b)| a / b);
            line += &format!("{:>7}", number(ratio, 2));
        }
        out += "\n";
        out += &line;
    }
    if row.median_ns.contains_key("polling") {
        for (label, f) in [
            (
                "  seq/time",
                Row::speed_vs_seq as fn(&Row, &str) -> Option<f64>,
            ),
            ("  cpu/seq", Row::cpu_vs_seq),
        ] {
            let mut line = format!("{label:<20}");
            for system in column_systems() {
                line += &format!("{:>10}", number(f(row, system.name()), 2));
            }
            out += "\n";
            out += &line;
        }
    }
    let watched: Vec<String> = WATCH_RATIOS
        .iter()
        .filter(|(a, _)| row.median(a).is_some())
        .map(|(a, b)| {
            let cpu = row.cpu(a).zip(row.cpu(b)).map(|(a, b)| a / b);
            format!(
                "{a} {} = {}× {b} (cpu {}×)",
                time(row.median(a)),
                number(row.ratio(a, b), 3),
                number(cpu, 3)
            )
        })
        .collect();
    if !watched.is_empty() {
        out += &format!("\n{:<20}{}", "  watched", watched.join("; "));
    }
    out
}

/// The first line of a row in the terminal table.
fn table_line(row: &Row) -> String {
    let mut line = format!("{:<17}{:>3}", row.workload, row.threads);
    for system in column_systems() {
        line += &format!("{:>10}", time(row.median(system.name())));
    }
    for (a, b) in RATIOS {
        line += &format!("{:>7}", number(row.ratio(a, b), 2));
    }
    for system in ["stealpool", "rayon"] {
        line += &format!("{:>7}", number(row.efficiency(system), 2));
    }
    line += " |";
    for field in ["worker_steals", "injector_steals", "parks", "wakeups"] {
        line += &format!("{:>7}", count(row.stat(field)));
    }
    line += &format!("{:>7}", number(row.stat(ENGAGEMENT_FIELDS[0]), 2));
    for field in &ENGAGEMENT_FIELDS[1..] {
        line += &format!("{:>8}", count(row.stat(field)));
    }
    line
}

/// A per-call counter in at most 6 characters: `0.7`, `340`, `9654`, `12.3k`.
pub fn count(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() && x < 100.0 => format!("{x:.1}"),
        Some(x) if x.is_finite() && x < 10_000.0 => format!("{x:.0}"),
        Some(x) if x.is_finite() && x < 1e6 => format!("{:.1}k", x / 1e3),
        Some(x) if x.is_finite() => format!("{:.1}M", x / 1e6),
        _ => "-".to_owned(),
    }
}

/// The legend printed under the terminal table.
pub const TABLE_LEGEND: &str = "\
sp/X: median stealpool time / median X time (below 1: stealpool faster); ry rayon, scp scope, \
chi chili, chn channel.\n\
eff: parallel efficiency T_seq / (T * threads). wsteal .. wakeup: stealpool Stats per call over \
the timed rounds (worker_steals, injector_steals, parks, wakeups). helped: share of calls a \
helper started on; 1st us / last us: mean µs from a helped call's request for help to its first / \
last helper's start (engagement, Stats::first_helper_nanos / last_helper_nanos).\n\
cpu/call: median process CPU time (getrusage, user + sys, every thread) per call over each \
sample, pauses and ticks included; under the ratio columns stealpool's CPU over X's.\n\
tick rows: seq/time is each system's speed relative to the sequential loop (above 1: faster), \
cpu/seq its CPU time per call relative to the loop's; polling is the caller + spinning helpers.\n\
watched rows: stealpool-token (options().cancel_on(&token), never cancelled) and \
stealpool-progress (options().progress(&p)), each over plain stealpool (above 1: the watch costs).";

/// Today's date (UTC), `YYYY-MM-DD`.
pub fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The machine, in words: CPU count and (on Linux) model.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        });
    match model {
        Some(model) => format!("{cpus} CPUs, {model}"),
        None => format!("{cpus} CPUs"),
    }
}
