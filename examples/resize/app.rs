//! The resizer's logic: options, finding the images and where their results
//! go, and running a [`Worker`] per thread over them. `main.rs` is the
//! command line around it; `tests/resize.rs` exercises it on small generated
//! images.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fast_image_resize as fr;
use stealpool::{CancelToken, Pool, Progress};

pub use crate::worker::{Done, Worker};

/// The largest width or height `--size` accepts (JPEG's limit).
pub const MAX_SIDE: u32 = 65_535;

/// An output size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width in pixels, at least 1.
    pub width: u32,
    /// Height in pixels, at least 1.
    pub height: u32,
}

/// Parses `WIDTHxHEIGHT`, e.g. `500x500`.
///
/// # Errors
///
/// A one-line message if `text` is not two whole numbers from 1 to
/// [`MAX_SIDE`] joined by `x`.
pub fn parse_size(text: &str) -> Result<Size, String> {
    let side = |s: &str| s.parse::<u32>().ok().filter(|v| (1..=MAX_SIDE).contains(v));
    match text.split_once(['x', 'X']).map(|(w, h)| (side(w), side(h))) {
        Some((Some(width), Some(height))) => Ok(Size { width, height }),
        _ => Err(format!(
            "invalid size '{text}': expected WIDTHxHEIGHT, each from 1 to {MAX_SIDE} (e.g. 500x500)"
        )),
    }
}

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Lanczos, 3 lobes.
    Lanczos3,
    /// Bicubic with a = -0.5, PIL's default for `resize`.
    CatmullRom,
    /// Linear (PIL's BILINEAR: a triangle scaled to the reduction).
    Bilinear,
    /// Nearest neighbour.
    Nearest,
}

impl Filter {
    /// The names `--filter` accepts, in the order of [`Filter::parse`].
    pub const NAMES: &'static str = "lanczos3|catmull-rom|bilinear|nearest";

    /// Parses a `--filter` value.
    ///
    /// # Errors
    ///
    /// A one-line message naming the accepted values.
    pub fn parse(text: &str) -> Result<Filter, String> {
        match text {
            "lanczos3" => Ok(Filter::Lanczos3),
            "catmull-rom" => Ok(Filter::CatmullRom),
            "bilinear" => Ok(Filter::Bilinear),
            "nearest" => Ok(Filter::Nearest),
            _ => Err(format!(
                "invalid filter '{text}': expected {}",
                Filter::NAMES
            )),
        }
    }

    /// The filter's `--filter` name.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Lanczos3 => "lanczos3",
            Filter::CatmullRom => "catmull-rom",
            Filter::Bilinear => "bilinear",
            Filter::Nearest => "nearest",
        }
    }

    /// The filter as fast_image_resize names it.
    pub(crate) fn simd(self) -> fr::ResizeAlg {
        let convolution = fr::ResizeAlg::Convolution;
        match self {
            Filter::Lanczos3 => convolution(fr::FilterType::Lanczos3),
            Filter::CatmullRom => convolution(fr::FilterType::CatmullRom),
            Filter::Bilinear => convolution(fr::FilterType::Bilinear),
            Filter::Nearest => fr::ResizeAlg::Nearest,
        }
    }

    /// The filter as the image crate names it.
    pub(crate) fn image(self) -> image::imageops::FilterType {
        use image::imageops::FilterType;
        match self {
            Filter::Lanczos3 => FilterType::Lanczos3,
            Filter::CatmullRom => FilterType::CatmullRom,
            Filter::Bilinear => FilterType::Triangle,
            Filter::Nearest => FilterType::Nearest,
        }
    }
}

/// How to resize. The last four switch each speed-up off, to measure it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The exact size of every output.
    pub size: Size,
    /// The resampling filter.
    pub filter: Filter,
    /// JPEG quality of the outputs (1..=100; PIL's default is 75).
    pub quality: u8,
    /// Decode a JPEG at 1/2, 1/4 or 1/8 scale when that still leaves at
    /// least the target size (libjpeg's `scale_denom`, PIL's `draft`).
    pub scaled_decode: bool,
    /// Resize with fast_image_resize (SIMD) rather than `image::imageops`
    /// (the scaled JPEG path needs it: without it, JPEGs decode in full).
    pub simd_resize: bool,
    /// Encode JPEGs with jpeg-encoder rather than the image crate.
    pub fast_encoder: bool,
    /// Keep each thread's buffers from image to image (`Pool::map_init`).
    pub reuse_buffers: bool,
}

impl Options {
    /// The fast defaults for `size`: Catmull-Rom, quality 75, every
    /// speed-up on.
    pub fn new(size: Size) -> Options {
        Options {
            size,
            filter: Filter::CatmullRom,
            quality: 75,
            scaled_decode: true,
            simd_resize: true,
            fast_encoder: true,
            reuse_buffers: true,
        }
    }
}

/// An image format, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.jpg` or `.jpeg`.
    Jpeg,
    /// `.png`.
    Png,
}

impl Format {
    /// The format of `path` by its extension (any case), if it is one we
    /// resize.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" => Some(Format::Jpeg),
            "png" => Some(Format::Png),
            _ => None,
        }
    }
}

/// One image to resize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The input file.
    pub input: PathBuf,
    /// Where the result goes: `resized_<name>` in the output folder.
    pub output: PathBuf,
    /// The input's format, which is also the output's.
    pub format: Format,
}

/// The `io::Error` message without its `(os error N)` suffix.
pub fn reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Lists the JPEG and PNG files directly in `input_dir`, sorted by name.
///
/// # Errors
///
/// A one-line message if `input_dir` is missing, not a folder, unreadable
/// or holds no JPEG or PNG file.
pub fn find_inputs(input_dir: &Path) -> Result<Vec<(PathBuf, Format)>, String> {
    let shown = input_dir.display();
    let meta =
        fs::metadata(input_dir).map_err(|e| format!("input folder {shown}: {}", reason(&e)))?;
    if !meta.is_dir() {
        return Err(format!("input {shown} is not a folder"));
    }
    let unreadable = |e: std::io::Error| format!("cannot list {shown}: {}", reason(&e));
    let mut inputs = Vec::new();
    for entry in fs::read_dir(input_dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if let Some(format) = Format::of(&path).filter(|_| path.is_file()) {
            inputs.push((path, format));
        }
    }
    if inputs.is_empty() {
        return Err(format!(
            "no JPEG or PNG images (.jpg, .jpeg, .png) in {shown}"
        ));
    }
    inputs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(inputs)
}

/// The inputs of [`find_inputs`], each with its output path
/// `out_dir/resized_<name>`.
///
/// # Errors
///
/// As [`find_inputs`], and if an output path is one of the inputs
/// (possible when `out_dir` is `input_dir`).
pub fn plan(input_dir: &Path, out_dir: &Path) -> Result<Vec<Job>, String> {
    let inputs = find_inputs(input_dir)?;
    let canonical: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|(p, _)| fs::canonicalize(p).ok())
        .collect();
    let mut jobs = Vec::with_capacity(inputs.len());
    for (input, format) in inputs {
        let mut name = OsString::from("resized_");
        name.push(input.file_name().unwrap_or_default());
        let output = out_dir.join(name);
        if fs::canonicalize(&output).is_ok_and(|o| canonical.contains(&o)) {
            return Err(format!(
                "refusing to overwrite input {} (the output of {}); choose another --out",
                output.display(),
                input.display()
            ));
        }
        jobs.push(Job {
            input,
            output,
            format,
        });
    }
    Ok(jobs)
}

/// Creates `dir` if needed and checks that files can be written in it.
///
/// # Errors
///
/// A one-line message if it cannot be created or written to.
pub fn prepare_out_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    if dir.is_file() {
        return Err(format!("output {shown} is a file, not a folder"));
    }
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create output folder {shown}: {}", reason(&e)))?;
    let probe = dir.join(format!(".stealpool-resize-probe-{}", std::process::id()));
    fs::write(&probe, b"")
        .map_err(|e| format!("cannot write in output folder {shown}: {}", reason(&e)))?;
    fs::remove_file(&probe)
        .map_err(|e| format!("cannot clean up {}: {}", probe.display(), reason(&e)))
}

/// The scale (1, 2, 4 or 8) to decode a `width`×`height` JPEG at: the
/// largest that leaves at least `target` in both directions, as PIL's
/// `draft` picks it.
pub fn decode_scale(width: u32, height: u32, target: Size) -> u32 {
    let fits = |s: u32| width / s >= target.width && height / s >= target.height;
    [8, 4, 2].into_iter().find(|&s| fits(s)).unwrap_or(1)
}

/// The result of resizing a set of images.
#[derive(Debug)]
pub struct Report {
    /// Threads the pool had.
    pub threads: usize,
    /// Per job, in input order: what it did, or why it failed.
    pub results: Vec<Result<Done, String>>,
    /// Wall time of the parallel part (reading to writing).
    pub wall: Duration,
}

impl Report {
    /// Images written.
    pub fn written(&self) -> usize {
        self.results.iter().filter(|r| r.is_ok()).count()
    }

    /// The failed jobs' input paths with their reasons, in input order.
    pub fn failures<'a>(&'a self, jobs: &'a [Job]) -> impl Iterator<Item = (&'a Path, &'a str)> {
        let failed = jobs
            .iter()
            .zip(&self.results)
            .filter_map(|(j, r)| r.as_ref().err().map(|e| (j, e)));
        failed.map(|(job, e)| (job.input.as_path(), e.as_str()))
    }

    /// Full-size pixels of the images written.
    pub fn input_pixels(&self) -> u64 {
        self.results.iter().flatten().map(|d| d.input_pixels).sum()
    }
}

/// Resizes every job on `pool`, keeps going past failed images, and stops
/// (within about one image per thread) when `token` is cancelled. Counts
/// each image into `progress` as it finishes.
///
/// # Errors
///
/// [`Cancelled`] if the run stopped before every image: how many images were
/// written (each one complete, under its final name) and how many in all.
pub fn run(
    pool: &Pool,
    jobs: &[Job],
    options: Options,
    token: &CancelToken,
    progress: &Progress,
) -> Result<Report, Cancelled> {
    let start = Instant::now();
    let written = AtomicUsize::new(0);
    let count = |result: Result<Done, String>| {
        if result.is_ok() {
            written.fetch_add(1, Ordering::Relaxed);
        }
        result
    };
    let call = pool.options().progress(progress).cancel_on(token);
    let results = if options.reuse_buffers {
        let init = || Worker::new(options);
        call.map_init(jobs, init, |worker, job| count(worker.process(job)))
    } else {
        call.map(jobs, |job| count(Worker::new(options).process(job)))
    };
    match results {
        Ok(results) => Ok(Report {
            threads: pool.threads(),
            results,
            wall: start.elapsed(),
        }),
        Err(_) => Err(Cancelled {
            written: written.into_inner(),
            total: jobs.len(),
        }),
    }
}

/// A run stopped by its token.
#[derive(Debug)]
pub struct Cancelled {
    /// Images written before the run stopped.
    pub written: usize,
    /// Images the run was to write.
    pub total: usize,
}
