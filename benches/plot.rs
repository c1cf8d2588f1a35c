//! Draws the SVG plots of `compare` results from JSON-lines files.
//!
//! ```text
//! cargo bench --bench plot -- [--out DIR] [FILE.jsonl ...]
//! ```
//!
//! Every file (named `*.json` or `*.jsonl`) holds rows as
//! `cargo bench --bench compare -- --json` prints them (other lines are
//! skipped, so a whole log will do). Rows of the same machine, workload and
//! thread count in a later file replace earlier ones. The plots go to `DIR`
//! (default `docs/plots/`), per machine, named by its tag (`2cpu`, `16cpu`;
//! see `report::Machine`): `ratios-<M>-t<N>.svg` per thread count and, when
//! the machine was measured at three thread counts or more,
//! `scaling-<M>.svg`. With no file, the results store
//! `benches/results/compare.jsonl` is read, and plots in `DIR` that it no
//! longer gives (`ratios-*.svg`, `scaling*.svg`) are removed, as
//! `compare --write-docs` does; with files, other plots in `DIR` are left
//! alone. For runs at 1, 2, 4, 8 and 16 threads on a bigger machine:
//!
//! ```text
//! cargo bench --bench compare -- --threads 1,2,4,8,16 --json > runs.jsonl
//! cargo bench --bench plot -- --out /tmp/plots runs.jsonl
//! ```
//!
//! (`cargo bench --bench compare -- --import runs.jsonl` puts them in the
//! store, the plots and the docs.)

mod common;
mod report;

use report::docs;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo bench --bench plot -- [--out DIR] [FILE.jsonl ...]";

fn run() -> Result<(), String> {
    let mut out = docs::plots_dir();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--help" | "-h" => return Err(USAGE.to_owned()),
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            other if other.starts_with('-') => eprintln!("plot: ignoring unknown option {other}"),
            file if file.ends_with(".json") || file.ends_with(".jsonl") => {
                files.push(PathBuf::from(file));
            }
            // A filter meant for the other bench targets of a plain
            // `cargo bench -- NAME`.
            other => eprintln!("plot: ignoring {other:?} (not a .json or .jsonl file)"),
        }
    }
    // Only the whole store gives every plot `DIR` should hold.
    let prune = files.is_empty();
    if files.is_empty() {
        files.push(docs::store_path());
    }
    let mut rows = Vec::new();
    for file in &files {
        if !file.exists() {
            return Err(format!("no such file: {}", file.display()));
        }
        rows = report::merge(rows, &docs::read_rows(file)?);
    }
    if rows.is_empty() {
        return Err("no rows to plot".to_owned());
    }
    let written = report::plot::draw_all(&rows, &out)?;
    for path in &written {
        eprintln!("plot: wrote {}", path.display());
    }
    if prune {
        for path in report::plot::remove_stale(&out, &written)? {
            eprintln!("plot: removed {}", path.display());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("plot: {message}");
            ExitCode::FAILURE
        }
    }
}
