//! Draws the SVG plots of `compare` results from JSON-lines files.
//!
//! ```text
//! cargo bench --bench plot -- [--out DIR] [FILE.jsonl ...]
//! ```
//!
//! Every file (named `*.json` or `*.jsonl`) holds rows as `cargo bench --bench compare -- --json` prints
//! them (other lines are skipped, so a whole log will do). Rows of the same
//! workload and thread count in a later file replace earlier ones. With no
//! file, the results store `benches/results/compare.jsonl` is read; the
//! plots go to `DIR` (default `docs/plots/`): `ratios-t<N>.svg` per thread
//! count and, when a workload was measured at three thread counts or more,
//! `scaling.svg`. For runs at 1, 2, 4, 8 and 16 threads on a bigger machine:
//!
//! ```text
//! cargo bench --bench compare -- --threads 1,2,4,8,16 --json > runs.jsonl
//! cargo bench --bench plot -- runs.jsonl
//! ```

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
    for path in report::plot::draw_all(&rows, &out)? {
        eprintln!("plot: wrote {}", path.display());
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
