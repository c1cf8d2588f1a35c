//! A parallel image resizer on a `stealpool::Pool`: the Python classic
//! `multiprocessing.Pool(processes=N).map(resize_image, paths)` with PIL,
//! done in Rust.
//!
//! ```text
//! cargo run --release --example resize                 # a generated demo set
//! cargo run --release --example resize -- photos/ --size 800x600 --threads 4
//! ```
//!
//! Every JPEG and PNG directly in the input folder is resized to exactly
//! `--size` and written as `resized_<name>` in the same format, by default
//! into a `resized/` folder beside the input folder. Each image is written
//! under a temporary name and renamed when whole, so the output folder never
//! holds a half-written image. The progress bar reads the pool's
//! `Progress`; Ctrl-C cancels the run through a `CancelToken`: the images in
//! progress finish, the program says how many were written and exits with
//! 130. See `docs/benchmarks.md`
//! ("Image resize example") for what each speed-up does and measures.

mod app;
mod demo;
mod entropy;
mod idct;
mod jpeg;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stealpool::{CancelToken, Pool, Progress};

use app::{Filter, Job, Options, Report};

const USAGE: &str = "usage: resize [INPUT_DIR] [--out DIR] [--size WxH] [--threads N] \
[--filter lanczos3|catmull-rom|bilinear|nearest] [--compare]";

const HELP: &str = "\
Resizes every JPEG and PNG in INPUT_DIR in parallel and writes resized_<name>
into --out (default: a resized/ folder beside INPUT_DIR). Without INPUT_DIR,
resizes a generated demo set (48 JPEGs of 1920x1080, made once in the temp folder).

  --out DIR            output folder (created if missing)
  --size WxH           exact output size (default 500x500, like the PIL original)
  --threads N          pool threads (default: the number of CPUs)
  --filter NAME        lanczos3, catmull-rom (default, PIL's bicubic), bilinear, nearest
  --quality Q          JPEG quality of the outputs, 1-100 (default 75, PIL's default)
  --compare            also run on 1 thread and print the speedup
  --generate-only DIR  write the demo set into DIR and exit

To measure each speed-up, switch it off:
  --full-decode        decode JPEGs at full size (no DCT scaling)
  --image-resize       resize with the image crate instead of fast_image_resize
                       (and so decode in full)
  --image-encoder      encode JPEGs with the image crate instead of jpeg-encoder
  --no-reuse           fresh buffers for every image instead of per thread

Ctrl-C stops the run once the images in progress are written (exit code 130);
a second Ctrl-C quits at once. No output file is ever left half-written.";

/// The parsed command line.
struct Args {
    input: Option<PathBuf>,
    out: Option<PathBuf>,
    threads: Option<usize>,
    compare: bool,
    generate_only: Option<PathBuf>,
    options: Options,
}

/// Why the program stops early.
enum Stop {
    Help,
    Error(String),
}

fn parse_args(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Args, Stop> {
    let mut parsed = Args {
        input: None,
        out: None,
        threads: None,
        compare: false,
        generate_only: None,
        options: Options::new(app::Size {
            width: 500,
            height: 500,
        }),
    };
    let usage = |message: String| Stop::Error(format!("{message}; {USAGE}"));
    while let Some(arg) = args.next() {
        let Some(flag) = arg.to_str().filter(|a| a.starts_with('-') && *a != "-") else {
            if parsed.input.replace(PathBuf::from(&arg)).is_some() {
                return Err(usage(format!(
                    "more than one INPUT_DIR ({})",
                    arg.to_string_lossy()
                )));
            }
            continue;
        };
        let flag = flag.to_owned();
        let mut value = || {
            let v = args
                .next()
                .ok_or_else(|| usage(format!("{flag} needs a value")))?;
            v.into_string()
                .map_err(|v| Stop::Error(format!("{flag}: not UTF-8: {}", v.to_string_lossy())))
        };
        let o = &mut parsed.options;
        match flag.as_str() {
            "-h" | "--help" => return Err(Stop::Help),
            "--out" => parsed.out = Some(PathBuf::from(value()?)),
            "--size" => o.size = app::parse_size(&value()?).map_err(Stop::Error)?,
            "--filter" => o.filter = Filter::parse(&value()?).map_err(Stop::Error)?,
            "--threads" => {
                let v = value()?;
                let n = v.parse::<usize>().ok().filter(|&n| n >= 1);
                let error = || {
                    Stop::Error(format!(
                        "invalid --threads '{v}': expected a whole number of at least 1"
                    ))
                };
                parsed.threads = Some(n.ok_or_else(error)?);
            }
            "--quality" => {
                let v = value()?;
                let q = v.parse::<u8>().ok().filter(|q| (1..=100).contains(q));
                o.quality = q.ok_or_else(|| {
                    Stop::Error(format!("invalid --quality '{v}': expected 1 to 100"))
                })?;
            }
            "--compare" => parsed.compare = true,
            "--generate-only" => parsed.generate_only = Some(PathBuf::from(value()?)),
            "--full-decode" => o.scaled_decode = false,
            "--image-resize" => o.simd_resize = false,
            "--image-encoder" => o.fast_encoder = false,
            "--no-reuse" => o.reuse_buffers = false,
            _ => return Err(usage(format!("unknown option '{flag}'"))),
        }
    }
    Ok(parsed)
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(len: usize, label: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} images, eta {eta}");
    bar.set_style(
        style
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(label);
    bar
}

/// Resizes `jobs` on a pool of `threads`, drawing the bar from the pool's
/// [`Progress`]; `token` stops the run.
fn resize_all(
    threads: usize,
    jobs: &[Job],
    options: Options,
    token: &CancelToken,
) -> Result<Result<Report, app::Cancelled>, String> {
    let pool = Pool::new(threads).map_err(|e| format!("cannot start {threads} threads: {e}"))?;
    let noun = if threads == 1 { "thread" } else { "threads" };
    let bar = progress_bar(jobs.len(), format!("{threads} {noun}"));
    let progress = Progress::new();
    let running = AtomicBool::new(true);
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            while running.load(Ordering::Relaxed) {
                bar.set_position(progress.done() as u64);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        /// Stops the bar's thread however the run ends (a panic included).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&running);
        app::run(&pool, jobs, options, token, &progress)
    });
    bar.finish_and_clear();
    Ok(outcome)
}

/// Ctrl-C (SIGINT) cancels `token`: the run stops after the images in
/// progress; a second Ctrl-C exits at once.
fn cancel_on_interrupt(token: &CancelToken) -> Result<(), String> {
    let token = token.clone();
    ctrlc::set_handler(move || {
        if token.is_cancelled() {
            std::process::exit(INTERRUPTED);
        }
        token.cancel();
        eprintln!("\ninterrupted: finishing the images in progress (Ctrl-C again to quit now)");
    })
    .map_err(|e| format!("cannot handle Ctrl-C: {e}"))
}

/// The exit code of a run stopped by Ctrl-C (128 + SIGINT, as shells use).
const INTERRUPTED: i32 = 130;

/// How a run ended.
enum Outcome {
    /// Every image written.
    Done,
    /// Some images failed.
    Failed,
    /// Stopped by Ctrl-C.
    Interrupted,
}

fn summary(report: &Report) -> String {
    let secs = report.wall.as_secs_f64().max(1e-9);
    let threads = report.threads;
    let noun = if threads == 1 { "thread" } else { "threads" };
    format!(
        "{threads} {noun}: {} images in {:.3} s, {:.1} images/s, {:.1} input megapixels/s",
        report.written(),
        secs,
        report.written() as f64 / secs,
        report.input_pixels() as f64 / 1e6 / secs
    )
}

fn run(args: Args) -> Result<Outcome, String> {
    let threads = match args.threads {
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if let Some(dir) = args.generate_only {
        let pool =
            Pool::new(threads).map_err(|e| format!("cannot start {threads} threads: {e}"))?;
        let made = demo::ensure(&pool, &dir, demo::COUNT, demo::WIDTH, demo::HEIGHT)?;
        let verb = if made {
            "generated"
        } else {
            "already complete:"
        };
        println!("{verb} {} demo images in {}", demo::COUNT, dir.display());
        return Ok(Outcome::Done);
    }
    let input = match args.input {
        Some(dir) => dir,
        None => {
            let dir = demo::default_dir();
            let pool =
                Pool::new(threads).map_err(|e| format!("cannot start {threads} threads: {e}"))?;
            eprintln!(
                "demo set: {} JPEGs of {}x{} in {}",
                demo::COUNT,
                demo::WIDTH,
                demo::HEIGHT,
                dir.display()
            );
            if demo::ensure(&pool, &dir, demo::COUNT, demo::WIDTH, demo::HEIGHT)? {
                eprintln!("(generated it now; later runs reuse it)");
            }
            dir
        }
    };
    // Fail on a missing or empty input before creating anything.
    app::find_inputs(&input)?;
    let out = match args.out {
        Some(dir) => dir,
        None => {
            let absolute = std::fs::canonicalize(&input)
                .map_err(|e| format!("{}: {}", input.display(), app::reason(&e)))?;
            let parent = absolute
                .parent()
                .ok_or("the input folder has no parent to put resized/ in; pass --out")?;
            parent.join("resized")
        }
    };
    app::prepare_out_dir(&out)?;
    let jobs = app::plan(&input, &out)?;
    let o = args.options;
    println!(
        "resizing {} images from {} to {}x{} ({}) into {}",
        jobs.len(),
        input.display(),
        o.size.width,
        o.size.height,
        o.filter.name(),
        out.display()
    );
    let token = CancelToken::new();
    cancel_on_interrupt(&token)?;
    let interrupted = |c: app::Cancelled| {
        println!(
            "cancelled: {} of {} images written, each one complete",
            c.written, c.total
        );
        Outcome::Interrupted
    };
    let report = match resize_all(threads, &jobs, o, &token)? {
        Ok(report) => report,
        Err(cancelled) => return Ok(interrupted(cancelled)),
    };
    println!("{}", summary(&report));
    if args.compare {
        let single = match resize_all(1, &jobs, o, &token)? {
            Ok(single) => single,
            Err(cancelled) => return Ok(interrupted(cancelled)),
        };
        println!("{}", summary(&single));
        let speedup = single.wall.as_secs_f64() / report.wall.as_secs_f64().max(1e-9);
        println!("speedup on {threads} threads: {speedup:.2}x");
    }
    let failures: Vec<_> = report.failures(&jobs).collect();
    for (path, why) in &failures {
        eprintln!("error: {}: {why}", path.display());
    }
    if !failures.is_empty() {
        eprintln!("error: {} of {} images failed", failures.len(), jobs.len());
    }
    Ok(if failures.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

fn main() -> ExitCode {
    let result = match parse_args(std::env::args_os().skip(1)) {
        Ok(args) => run(args),
        Err(Stop::Help) => {
            println!("{USAGE}\n\n{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(Stop::Error(message)) => Err(message),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Ok(Outcome::Interrupted) => ExitCode::from(INTERRUPTED as u8),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
