//! SVG plots of stored rows, drawn with plotters, per machine (`<M>` is the
//! machine's [tag](super::Machine), e.g. `2cpu`):
//!
//! - `ratios-<M>-t<N>.svg`, one per thread count: stealpool's time over
//!   rayon's, the sequential one's, chili's and the channel version's per
//!   workload (bars from 1 on a log axis: left of 1 stealpool is faster), and
//!   the parallel efficiency of stealpool and rayon, with the targets
//!   drawn as black marks on the bars they bound (on the machine the targets
//!   are for only);
//! - `scaling-<M>.svg`, for a machine measured at three thread counts or more
//!   once some workload was: stealpool's efficiency and its time over rayon's
//!   against the thread count, one line per workload.

use super::targets::{self, Metric, TARGETS};
use super::{machines, workload_rank, Row, SCALING_MIN_THREADS};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A linear `f64` axis whose ticks are exactly the given points (plotters'
/// `with_key_points` on a plain `f64` range loses its label formatter): the
/// workload axis of the bar charts, one tick per workload.
struct Ticks {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// The ratio bars: the system stealpool is divided by, and its colour.
const RATIO_BARS: [(&str, RGBColor); 4] = [
    ("rayon", RGBColor(31, 119, 180)),
    ("seq", RGBColor(255, 127, 14)),
    ("chili", RGBColor(44, 160, 44)),
    ("channel", RGBColor(148, 103, 189)),
];

/// The efficiency bars: the system and its colour.
const EFFICIENCY_BARS: [(&str, RGBColor); 2] = [
    ("stealpool", RGBColor(31, 119, 180)),
    ("rayon", RGBColor(174, 199, 232)),
];

/// A target's mark: the system whose bar it bounds, and where.
fn ratio_target(metric: Metric, bound: f64) -> Option<(&'static str, f64)> {
    match metric {
        Metric::Ratio("stealpool", other) => Some((other, bound)),
        // "channel / stealpool ≥ b" is "stealpool / channel ≤ 1/b".
        Metric::Ratio(other, "stealpool") => Some((other, 1.0 / bound)),
        _ => None,
    }
}

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// The file name of the ratio plot of the machine tagged `tag` at `threads`.
pub fn ratios_name(tag: &str, threads: usize) -> String {
    format!("ratios-{tag}-t{threads}.svg")
}

/// The file name of the scaling plot of the machine tagged `tag`.
pub fn scaling_name(tag: &str) -> String {
    format!("scaling-{tag}.svg")
}

/// Draws every plot the rows allow into `dir`; returns the files written
/// (per machine, fewest CPUs first: the ratio plots by thread count, then the
/// scaling plot).
pub fn draw_all(rows: &[Row], dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for machine in machines(rows) {
        let of: Vec<&Row> = rows.iter().filter(|r| r.machine == machine.name).collect();
        let threads: BTreeSet<usize> = of.iter().map(|r| r.threads).collect();
        for &t in &threads {
            let at: Vec<&Row> = of.iter().copied().filter(|r| r.threads == t).collect();
            let path = dir.join(ratios_name(&machine.tag, t));
            draw_ratios(&at, t, &path)?;
            written.push(path);
        }
        let path = dir.join(scaling_name(&machine.tag));
        if threads.len() >= SCALING_MIN_THREADS && draw_scaling(&of, &path)? {
            written.push(path);
        }
    }
    Ok(written)
}

/// Whether `name` is a file name [`draw_all`] may write (`ratios-*.svg`,
/// `scaling*.svg`, the older names `ratios-t<N>.svg` and `scaling.svg`
/// included).
fn is_plot_name(name: &str) -> bool {
    name.ends_with(".svg") && (name.starts_with("ratios-") || name.starts_with("scaling"))
}

/// Removes the plots in `dir` that `keep` (what [`draw_all`] just wrote)
/// does not list: those of rows no longer stored, and files under older
/// names. Returns the files removed.
pub fn remove_stale(dir: &Path, keep: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let keep: BTreeSet<&std::ffi::OsStr> = keep.iter().filter_map(|p| p.file_name()).collect();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name();
        let stale = name.to_str().is_some_and(is_plot_name) && !keep.contains(name.as_os_str());
        if stale && entry.path().is_file() {
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// The key points of a log axis over `lo..hi`.
fn log_keys(lo: f64, hi: f64) -> Vec<f64> {
    let mut keys = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 3.0, 5.0] {
            let k = decade * m;
            if k >= lo && k <= hi {
                keys.push(k);
            }
        }
        decade *= 10.0;
    }
    keys
}

/// A tick label: at most three significant digits, no trailing zeros.
fn tick(x: f64) -> String {
    let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// The bar chart of one thread count.
fn draw_ratios(rows: &[&Row], threads: usize, path: &Path) -> Result<(), String> {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| workload_rank(&r.workload));
    let n = rows.len();
    let names: Vec<String> = rows.iter().map(|r| r.workload.clone()).collect();
    // The targets, if they apply to this machine.
    let marked: &[targets::Target] = match rows.first() {
        Some(r) if targets::applies_to(&r.machine) => &TARGETS,
        _ => &[],
    };
    // Row i sits at y = n - 1 - i, so the first workload is at the top.
    let slot = |i: usize| (n - 1 - i) as f64;

    let ratios: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            RATIO_BARS
                .iter()
                .filter_map(|(s, _)| r.ratio("stealpool", s))
        })
        .chain(
            marked
                .iter()
                .filter_map(|t| ratio_target(t.metric, t.bound).map(|(_, b)| b)),
        )
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    let lo = ratios.iter().copied().fold(1.0f64, f64::min) / 1.5;
    let hi = ratios.iter().copied().fold(1.0f64, f64::max) * 1.5;

    let height = 170 + 46 * n as u32;
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let plural = if threads == 1 { "" } else { "s" };
    let title = format!(
        "stealpool at {threads} thread{plural}, {}",
        machine_and_date(&rows)
    );
    let root = root.titled(&title, ("sans-serif", 20)).map_err(err)?;
    let (legends, root) = root.split_vertically(30);
    let (ratio_legend, efficiency_legend) = legends.split_horizontally(760);
    let ratio_entries: Vec<(String, RGBColor)> = RATIO_BARS
        .iter()
        .map(|(s, c)| (format!("stealpool / {s}"), *c))
        .collect();
    legend(&ratio_legend, &ratio_entries, 140)?;
    let efficiency_entries: Vec<(String, RGBColor)> = EFFICIENCY_BARS
        .iter()
        .map(|(s, c)| ((*s).to_owned(), *c))
        .collect();
    legend(&efficiency_legend, &efficiency_entries, 20)?;
    let (left, right) = root.split_horizontally(760);

    let y_axis = || Ticks {
        range: -0.5..n as f64 - 0.5,
        keys: (0..n).map(|i| i as f64).collect(),
    };
    let label_of = |y: &f64| -> String {
        let i = y.round() as usize;
        if (y - y.round()).abs() < 1e-6 && i < n {
            names[n - 1 - i].clone()
        } else {
            String::new()
        }
    };

    // Left: the ratios.
    let mut chart = ChartBuilder::on(&left)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(130)
        .caption(
            "stealpool time / other system's time (log; < 1: stealpool faster)",
            ("sans-serif", 15),
        )
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(log_keys(lo, hi)),
            y_axis(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&label_of)
        .x_label_formatter(&|x| tick(*x))
        .x_desc(if marked.is_empty() {
            "ratio of medians"
        } else {
            "ratio of medians; black marks: the issue's targets"
        })
        .draw()
        .map_err(err)?;
    let band = 0.8 / RATIO_BARS.len() as f64;
    for (k, (system, color)) in RATIO_BARS.iter().enumerate() {
        let top = |i: usize| slot(i) + 0.4 - band * k as f64;
        let bars: Vec<_> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let x = r.ratio("stealpool", system)?;
                Some(Rectangle::new(
                    [(1.0, top(i)), (x, top(i) - band * 0.9)],
                    color.filled(),
                ))
            })
            .collect();
        chart.draw_series(bars).map_err(err)?;
        let marks: Vec<_> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                marked
                    .iter()
                    .filter(move |t| t.workload == r.workload && t.threads == r.threads)
                    .filter_map(move |t| {
                        let (other, bound) = ratio_target(t.metric, t.bound)?;
                        (other == *system).then(|| {
                            PathElement::new(
                                vec![(bound, top(i) + 0.02), (bound, top(i) - band - 0.02)],
                                BLACK.stroke_width(3),
                            )
                        })
                    })
            })
            .collect();
        chart.draw_series(marks).map_err(err)?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, -0.5), (1.0, n as f64 - 0.5)],
            BLACK.stroke_width(1),
        )))
        .map_err(err)?;

    // Right: the efficiencies.
    let mut chart = ChartBuilder::on(&right)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .caption(
            "parallel efficiency T_seq / (T × threads)",
            ("sans-serif", 15),
        )
        .build_cartesian_2d(0f64..1.2f64, y_axis())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&|_| String::new())
        .x_desc(if marked.is_empty() {
            "efficiency"
        } else {
            "efficiency; black marks: the issue's targets"
        })
        .draw()
        .map_err(err)?;
    let band = 0.8 / EFFICIENCY_BARS.len() as f64;
    for (k, (system, color)) in EFFICIENCY_BARS.iter().enumerate() {
        let top = |i: usize| slot(i) + 0.4 - band * k as f64;
        let bars: Vec<_> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let x = r.efficiency(system)?.min(1.2);
                Some(Rectangle::new(
                    [(0.0, top(i)), (x, top(i) - band * 0.9)],
                    color.filled(),
                ))
            })
            .collect();
        chart.draw_series(bars).map_err(err)?;
        let marks: Vec<_> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                marked
                    .iter()
                    .filter(move |t| t.workload == r.workload && t.threads == r.threads)
                    .filter_map(move |t| match t.metric {
                        Metric::Efficiency(s) if s == *system => Some(PathElement::new(
                            vec![(t.bound, top(i) + 0.02), (t.bound, top(i) - band - 0.02)],
                            BLACK.stroke_width(3),
                        )),
                        _ => None,
                    })
            })
            .collect();
        chart.draw_series(marks).map_err(err)?;
    }
    root.present().map_err(err)
}

/// A one-line legend of coloured boxes, starting `x` pixels in.
fn legend(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    entries: &[(String, RGBColor)],
    mut x: i32,
) -> Result<(), String> {
    for (label, color) in entries {
        area.draw(&Rectangle::new([(x, 10), (x + 12, 22)], color.filled()))
            .map_err(err)?;
        area.draw(&Text::new(label.clone(), (x + 17, 10), ("sans-serif", 13)))
            .map_err(err)?;
        x += 30 + 7 * label.len() as i32;
    }
    Ok(())
}

/// "2 CPUs, AMD EPYC, 2026-11-25" (or the list of them if rows differ).
fn machine_and_date(rows: &[&Row]) -> String {
    let runs: BTreeSet<String> = rows
        .iter()
        .map(|r| format!("{}, {}", r.machine, r.date))
        .collect();
    runs.into_iter().collect::<Vec<_>>().join("; ")
}

/// The scaling plot of one machine's rows; `false` (and no file written) if
/// no workload was measured at [`SCALING_MIN_THREADS`] thread counts.
fn draw_scaling(rows: &[&Row], path: &Path) -> Result<bool, String> {
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
    workloads.sort_by_key(|w| workload_rank(w));
    workloads.dedup();
    let series: Vec<(&str, Vec<&Row>)> = workloads
        .into_iter()
        .map(|w| {
            let mut at: Vec<&Row> = rows.iter().copied().filter(|r| r.workload == w).collect();
            at.sort_by_key(|r| r.threads);
            (w, at)
        })
        .filter(|(_, at)| at.len() >= SCALING_MIN_THREADS)
        .collect();
    if series.is_empty() {
        return Ok(false);
    }
    let threads: BTreeSet<usize> = series
        .iter()
        .flat_map(|(_, at)| at.iter().map(|r| r.threads))
        .collect();
    let t_lo = *threads.first().unwrap_or(&1) as f64;
    let t_hi = (*threads.last().unwrap_or(&2) as f64).max(t_lo * 2.0);
    let t_keys: Vec<f64> = threads.iter().map(|&t| t as f64).collect();

    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let runs: Vec<&Row> = series
        .iter()
        .flat_map(|(_, at)| at.iter().copied())
        .collect();
    let title = format!(
        "stealpool against the thread count, {}",
        machine_and_date(&runs)
    );
    let root = root.titled(&title, ("sans-serif", 20)).map_err(err)?;
    let (left, right) = root.split_horizontally(600);

    type Metric2 = fn(&Row) -> Option<f64>;
    let panels: [(&DrawingArea<SVGBackend, _>, &str, Metric2, bool); 2] = [
        (
            &left,
            "efficiency of stealpool, T_seq / (T × threads)",
            |r: &Row| r.efficiency("stealpool"),
            false,
        ),
        (
            &right,
            "stealpool / rayon (log; < 1: stealpool faster)",
            |r: &Row| r.ratio("stealpool", "rayon"),
            true,
        ),
    ];
    for (area, caption, metric, log) in panels {
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|r| metric(r))
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let v_hi = values.iter().copied().fold(1.0f64, f64::max) * 1.2;
        let v_lo = values.iter().copied().fold(1.0f64, f64::min) / 1.2;
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .caption(caption, ("sans-serif", 15));
        let x = (t_lo..t_hi)
            .log_scale()
            .base(2.0)
            .with_key_points(t_keys.clone());
        if log {
            let mut chart = builder
                .build_cartesian_2d(
                    x,
                    (v_lo..v_hi)
                        .log_scale()
                        .with_key_points(log_keys(v_lo, v_hi)),
                )
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("threads")
                .x_label_formatter(&|t| format!("{t}"))
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(err)?;
            draw_lines(&mut chart, &series, metric)?;
        } else {
            let mut chart = builder
                .build_cartesian_2d(x, 0f64..v_hi.max(1.1))
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("threads")
                .x_label_formatter(&|t| format!("{t}"))
                .draw()
                .map_err(err)?;
            draw_lines(&mut chart, &series, metric)?;
        }
    }
    root.present().map_err(err)?;
    Ok(true)
}

/// One line (with points) per workload, and the legend.
fn draw_lines<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    series: &[(&str, Vec<&Row>)],
    metric: fn(&Row) -> Option<f64>,
) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (k, (workload, at)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let points: Vec<(f64, f64)> = at
            .iter()
            .filter_map(|r| Some((r.threads as f64, metric(r)?)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*workload)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}
