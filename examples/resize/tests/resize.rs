//! The image resizer's logic (`examples/resize/`) on small generated
//! images: sizes, formats and names of the outputs, results that do not
//! depend on the thread count or the order, bad inputs and output folders,
//! and the scaled JPEG decoder against a full decode.

#[allow(dead_code)]
#[path = "../app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../demo.rs"]
mod demo;
#[allow(dead_code)]
#[path = "../entropy.rs"]
mod entropy;
#[allow(dead_code)]
#[path = "../idct.rs"]
mod idct;
#[allow(dead_code)]
#[path = "../jpeg.rs"]
mod jpeg;
#[allow(dead_code)]
#[path = "../worker.rs"]
mod worker;

use std::fs;
use std::path::{Path, PathBuf};

use app::{Format, Job, Options, Size};
use stealpool::{CancelToken, Pool, Progress};

/// A fresh folder under the temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "stealpool-resize-test-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn size(width: u32, height: u32) -> Size {
    Size { width, height }
}

/// Smooth waves in every channel (periods of 30 to 45 pixels), so that a
/// good downscale is close to any other good downscale, and a misplaced
/// block or swapped axis is not.
fn waves(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            out.push((128.0 + 60.0 * (fx / 5.0).sin() + 40.0 * (fy / 7.0).cos()) as u8);
            out.push((128.0 + 70.0 * ((fx + fy) / 6.0).sin()) as u8);
            out.push((100.0 + 50.0 * (fy / 5.5).sin() + 0.3 * fx) as u8);
        }
    }
    out
}

/// How a test JPEG is encoded.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Sampling(jpeg_encoder::SamplingFactor),
    Gray,
    Restarts,
    Progressive,
}

fn jpeg_file(path: &Path, width: u32, height: u32, kind: Kind) {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let mut rgb = waves(width, height);
    let mut bytes = Vec::new();
    let mut encoder = Encoder::new(&mut bytes, 95);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    let mut color = ColorType::Rgb;
    match kind {
        Kind::Sampling(sampling) => encoder.set_sampling_factor(sampling),
        Kind::Gray => {
            rgb = rgb.chunks(3).map(|p| p[1]).collect();
            color = ColorType::Luma;
        }
        Kind::Restarts => encoder.set_restart_interval(2),
        Kind::Progressive => encoder.set_progressive(true),
    }
    encoder
        .encode(&rgb, width as u16, height as u16, color)
        .unwrap();
    fs::write(path, bytes).unwrap();
}

fn png_file(path: &Path, width: u32, height: u32, color: image::ExtendedColorType) {
    let rgb = waves(width, height);
    let pixels: Vec<u8> = match color {
        image::ExtendedColorType::L8 => rgb.chunks(3).map(|p| p[0]).collect(),
        image::ExtendedColorType::Rgba8 => rgb
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], p[0]])
            .collect(),
        _ => rgb,
    };
    image::save_buffer(path, &pixels, width, height, color).unwrap();
}

/// Decodes an output file to RGB (whatever its colour type).
fn pixels(path: &Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn parses_sizes_filters_and_scales() {
    assert_eq!(app::parse_size("500x500"), Ok(size(500, 500)));
    assert_eq!(app::parse_size("1X65535"), Ok(size(1, 65535)));
    for bad in [
        "0x5", "5x0", "abc", "500", "x5", "5x", "-1x5", "70000x5", "5x5x5", "", "1.5x2",
    ] {
        let error = app::parse_size(bad).unwrap_err();
        assert!(
            error.contains(bad) && !error.contains('\n'),
            "{bad}: {error}"
        );
    }
    assert_eq!(
        app::Filter::parse("catmull-rom"),
        Ok(app::Filter::CatmullRom)
    );
    assert_eq!(
        app::Filter::parse("lanczos3").map(app::Filter::name),
        Ok("lanczos3")
    );
    assert!(app::Filter::parse("bicubic")
        .unwrap_err()
        .contains("catmull-rom"));
    // As PIL's draft: the largest of 8, 4, 2 leaving at least the target.
    let target = size(500, 500);
    assert_eq!(app::decode_scale(1920, 1080, target), 2);
    assert_eq!(app::decode_scale(4000, 3000, target), 4);
    assert_eq!(app::decode_scale(4000, 4000, target), 8);
    assert_eq!(app::decode_scale(9000, 9000, target), 8);
    assert_eq!(app::decode_scale(999, 5000, target), 1);
    assert_eq!(app::decode_scale(1000, 1000, target), 2);
}

#[test]
fn resizes_a_folder_in_any_order_and_reports_bad_files() {
    let input = Scratch::new("folder-in");
    jpeg_file(
        &input.join("a.jpg"),
        96,
        64,
        Kind::Sampling(jpeg_encoder::SamplingFactor::F_2_2),
    );
    jpeg_file(&input.join("b.JPEG"), 101, 67, Kind::Gray);
    png_file(&input.join("c.png"), 80, 60, image::ExtendedColorType::Rgb8);
    png_file(
        &input.join("d.png"),
        50,
        40,
        image::ExtendedColorType::Rgba8,
    );
    png_file(&input.join("e.png"), 30, 20, image::ExtendedColorType::L8);
    fs::write(
        input.join("corrupt.jpg"),
        b"\xFF\xD8\xFF\xE0 this is not a JPEG",
    )
    .unwrap();
    let whole = fs::read(input.join("a.jpg")).unwrap();
    fs::write(input.join("cut.jpg"), &whole[..whole.len() * 2 / 3]).unwrap();
    fs::write(input.join("notes.txt"), b"not an image").unwrap();
    fs::create_dir(input.join("folder.png")).unwrap();

    let target = size(24, 16);
    let options = Options::new(target);
    let out2 = Scratch::new("folder-out2");
    app::prepare_out_dir(&out2.0).unwrap();
    let jobs = app::plan(&input.0, &out2.0).unwrap();
    let names: Vec<_> = jobs
        .iter()
        .map(|j| j.output.file_name().unwrap().to_str().unwrap())
        .collect();
    let expected = [
        "a.jpg",
        "b.JPEG",
        "c.png",
        "corrupt.jpg",
        "cut.jpg",
        "d.png",
        "e.png",
    ]
    .map(|n| format!("resized_{n}"));
    assert_eq!(names, expected);
    assert!(jobs
        .iter()
        .all(|j| j.output.parent() == Some(out2.0.as_path())));

    let pool = Pool::new(2).unwrap();
    let progress = Progress::new();
    let report = app::run(&pool, &jobs, options, &CancelToken::new(), &progress).unwrap();
    assert_eq!(progress.done(), jobs.len());
    assert_eq!(progress.total(), jobs.len());
    assert_eq!(report.threads, 2);
    assert_eq!(report.written(), 5);
    let failures: Vec<_> = report.failures(&jobs).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].0.ends_with("corrupt.jpg") && failures[0].1.contains("decode"),
        "{failures:?}"
    );
    assert!(
        failures[1].0.ends_with("cut.jpg") && failures[1].1.contains("truncated"),
        "{failures:?}"
    );
    assert!(!out2.join("resized_corrupt.jpg").exists());
    assert!(!out2.join("resized_cut.jpg").exists());
    // Every output: the exact size, the input's format, the right colours.
    for (job, _) in jobs.iter().zip(&report.results).filter(|(_, r)| r.is_ok()) {
        let bytes = fs::read(&job.output).unwrap();
        let format = image::guess_format(&bytes).unwrap();
        let expected = if job.format == Format::Jpeg {
            image::ImageFormat::Jpeg
        } else {
            image::ImageFormat::Png
        };
        assert_eq!(format, expected, "{}", job.output.display());
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (24, 16),
            "{}",
            job.output.display()
        );
    }
    let color = |name: &str| image::open(out2.join(name)).unwrap().color();
    assert_eq!(color("resized_b.JPEG"), image::ColorType::L8);
    assert_eq!(color("resized_d.png"), image::ColorType::Rgba8);
    assert_eq!(color("resized_e.png"), image::ColorType::L8);
    // The JPEGs took the scaled path; input pixels are counted in full.
    let scales: Vec<_> = report
        .results
        .iter()
        .map(|r| r.as_ref().map(|d| d.scale).ok())
        .collect();
    assert_eq!(
        scales,
        [Some(4), Some(4), Some(1), None, None, Some(1), Some(1)]
    );
    let pixels_in = 96 * 64 + 101 * 67 + 80 * 60 + 50 * 40 + 30 * 20;
    assert_eq!(report.input_pixels(), pixels_in);

    // One thread, jobs in reverse order, fresh buffers: the same bytes.
    let out1 = Scratch::new("folder-out1");
    let mut reversed: Vec<Job> = app::plan(&input.0, &out1.0).unwrap();
    reversed.reverse();
    let single = Pool::new(1).unwrap();
    let fresh = Options {
        reuse_buffers: false,
        ..options
    };
    let report1 = app::run(
        &single,
        &reversed,
        fresh,
        &CancelToken::new(),
        &Progress::new(),
    )
    .unwrap();
    assert_eq!(report1.written(), 5);
    for job in &reversed {
        let name = job.output.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            fs::read(&job.output).ok(),
            fs::read(out2.join(name)).ok(),
            "{name}"
        );
    }
}

#[test]
fn scaled_jpeg_decoding_matches_a_full_decode() {
    use jpeg_encoder::SamplingFactor;
    let dir = Scratch::new("scaled");
    let cases = [
        (
            "420.jpg",
            96,
            64,
            Kind::Sampling(SamplingFactor::F_2_2),
            size(24, 16),
            4,
        ),
        (
            "420-half.jpg",
            96,
            64,
            Kind::Sampling(SamplingFactor::F_2_2),
            size(40, 30),
            2,
        ),
        (
            "420-eighth.jpg",
            96,
            64,
            Kind::Sampling(SamplingFactor::F_2_2),
            size(12, 8),
            8,
        ),
        (
            "444.jpg",
            96,
            64,
            Kind::Sampling(SamplingFactor::F_1_1),
            size(24, 16),
            4,
        ),
        (
            "422.jpg",
            96,
            64,
            Kind::Sampling(SamplingFactor::F_2_1),
            size(46, 30),
            2,
        ),
        (
            "odd.jpg",
            101,
            67,
            Kind::Sampling(SamplingFactor::F_2_2),
            size(25, 15),
            4,
        ),
        ("gray.jpg", 101, 67, Kind::Gray, size(33, 16), 2),
        ("restarts.jpg", 96, 64, Kind::Restarts, size(24, 16), 4),
        (
            "progressive.jpg",
            96,
            64,
            Kind::Progressive,
            size(24, 16),
            1,
        ),
    ];
    for (name, w, h, kind, target, scale) in cases {
        let input = dir.join(name);
        jpeg_file(&input, w, h, kind);
        let options = Options {
            quality: 95,
            ..Options::new(target)
        };
        let job = |output: &str| Job {
            input: input.clone(),
            output: dir.join(output),
            format: Format::Jpeg,
        };
        let (scaled, full) = (job("scaled-out.jpg"), job("full-out.jpg"));
        let done = app::Worker::new(options).process(&scaled).unwrap();
        assert_eq!(done.scale, scale, "{name}");
        let full_options = Options {
            scaled_decode: false,
            ..options
        };
        assert_eq!(
            app::Worker::new(full_options).process(&full).unwrap().scale,
            1
        );
        let (a, b) = (pixels(&scaled.output), pixels(&full.output));
        assert_eq!(a.dimensions(), (target.width, target.height), "{name}");
        let diff = mean_abs_diff(&a, &b);
        assert!(
            diff < 4.5,
            "{name}: mean difference {diff:.2} between scaled and full decoding"
        );
        // And far from a wrong picture (the same one flipped).
        let flipped = image::imageops::flip_horizontal(&b);
        assert!(mean_abs_diff(&a, &flipped) > 4.0 * diff.max(1.0), "{name}");
    }
    // The decoder gives up (the caller then decodes in full) on what it
    // does not handle, and never panics on a damaged file.
    let mut bytes = fs::read(dir.join("420.jpg")).unwrap();
    let mut decoder = jpeg::ScaledDecoder::new();
    assert!(decoder.decode(&bytes, 4).is_ok());
    assert_eq!(jpeg::dimensions(&bytes), Some((96, 64)));
    assert!(jpeg::is_complete(&bytes));
    assert!(!jpeg::is_complete(&bytes[..bytes.len() - 2]));
    assert!(jpeg::is_complete(
        &fs::read(dir.join("progressive.jpg")).unwrap()
    ));
    assert!(jpeg::is_complete(
        &fs::read(dir.join("restarts.jpg")).unwrap()
    ));
    assert!(decoder.decode(&bytes[..bytes.len() / 2], 4).is_err());
    assert!(decoder
        .decode(&fs::read(dir.join("progressive.jpg")).unwrap(), 4)
        .is_err());
    assert!(decoder.decode(b"\xFF\xD8\xFF\xD9", 2).is_err());
    assert!(decoder.decode(&bytes, 3).is_err());
    let scan = bytes.len() - 40;
    for (i, byte) in bytes[scan - 300..scan].iter_mut().enumerate() {
        *byte = (i * 37) as u8; // garbage in the entropy-coded data
    }
    let _ = decoder.decode(&bytes, 2);
    for cut in (2..bytes.len()).step_by(97) {
        let _ = decoder.decode(&bytes[..cut], 4);
        let _ = jpeg::dimensions(&bytes[..cut]);
    }
}

#[test]
fn the_sse2_and_portable_idcts_agree() {
    #[cfg(target_arch = "x86_64")]
    {
        let mut state = 1u32;
        for _ in 0..2000 {
            let mut coefs = [0f32; 17];
            for c in coefs.iter_mut().take(16) {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *c = ((state >> 20) as f32 - 2048.0) * 0.75;
            }
            // SAFETY: every x86-64 CPU has SSE2.
            let fast = unsafe { idct::idct4x4_sse2(&coefs) };
            assert_eq!(fast, idct::idct4x4_portable(&coefs), "{coefs:?}");
        }
    }
}

#[test]
fn refuses_bad_input_and_output_folders() {
    let dir = Scratch::new("errors");
    let missing = dir.join("missing");
    let error = app::plan(&missing, &dir.0).unwrap_err();
    assert!(
        error.contains("missing") && error.contains("No such file"),
        "{error}"
    );
    let empty = dir.join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(empty.join("readme.txt"), b"text").unwrap();
    assert!(app::find_inputs(&empty)
        .unwrap_err()
        .contains("no JPEG or PNG images"));
    let file = dir.join("file.jpg");
    jpeg_file(&file, 16, 16, Kind::Gray);
    assert!(app::plan(&file, &dir.0)
        .unwrap_err()
        .contains("not a folder"));

    // Writing into the input folder is fine, unless an output would
    // replace an input.
    let same = dir.join("same");
    fs::create_dir(&same).unwrap();
    jpeg_file(&same.join("x.jpg"), 16, 16, Kind::Gray);
    assert_eq!(app::plan(&same, &same).unwrap().len(), 1);
    jpeg_file(&same.join("resized_x.jpg"), 16, 16, Kind::Gray);
    let error = app::plan(&same, &same).unwrap_err();
    assert!(
        error.contains("refusing to overwrite") && error.contains("resized_x.jpg"),
        "{error}"
    );
    assert_eq!(app::plan(&same, &dir.join("elsewhere")).unwrap().len(), 2);

    // Output folders that cannot be used.
    let error = app::prepare_out_dir(&file).unwrap_err();
    assert!(error.contains("is a file"), "{error}");
    let error = app::prepare_out_dir(&file.join("below")).unwrap_err();
    assert!(error.contains("cannot create output folder"), "{error}");
    let locked = dir.join("locked");
    fs::create_dir(&locked).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        if fs::write(locked.join("probe"), b"").is_ok() {
            eprintln!("skipping the read-only folder check: this user (root?) can write to a 0o555 folder");
        } else {
            let error = app::prepare_out_dir(&locked).unwrap_err();
            assert!(error.contains("cannot write in output folder"), "{error}");
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    }

    // An output that cannot be written fails that image only.
    let out = dir.join("out");
    app::prepare_out_dir(&out).unwrap();
    let jobs = app::plan(&same, &out).unwrap();
    fs::create_dir(&jobs[0].output).unwrap();
    let report = app::run(
        &Pool::new(2).unwrap(),
        &jobs,
        Options::new(size(8, 8)),
        &CancelToken::new(),
        &Progress::new(),
    )
    .unwrap();
    assert_eq!(report.written(), 1);
    // The failed write left no temporary file behind.
    assert!(!worker::partial_name(&jobs[0].output).exists());
    let failures: Vec<_> = report.failures(&jobs).collect();
    assert!(
        failures[0].0.ends_with("resized_x.jpg") && failures[0].1.contains("cannot write"),
        "{failures:?}"
    );
}

#[test]
fn the_demo_set_is_deterministic_and_reused() {
    let dir = Scratch::new("demo");
    let pool = Pool::new(2).unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    assert!(demo::ensure(&pool, &a, 3, 64, 48).unwrap());
    assert!(
        !demo::ensure(&pool, &a, 3, 64, 48).unwrap(),
        "a complete set is reused"
    );
    assert!(demo::ensure(&pool, &b, 3, 64, 48).unwrap());
    let inputs = app::find_inputs(&a).unwrap();
    assert_eq!(inputs.len(), 3);
    for (path, format) in inputs {
        assert_eq!(format, Format::Jpeg);
        let name = path.file_name().unwrap();
        assert_eq!(fs::read(&path).unwrap(), fs::read(b.join(name)).unwrap());
        assert_eq!(
            image::open(&path).unwrap().into_rgb8().dimensions(),
            (64, 48)
        );
    }
    assert_ne!(
        fs::read(a.join("demo_00.jpg")).unwrap(),
        fs::read(a.join("demo_01.jpg")).unwrap()
    );
    // A different size is a different set: regenerated.
    assert!(demo::ensure(&pool, &a, 3, 32, 24).unwrap());
}

/// The example program, which `cargo test` builds beside this test
/// (examples are built for the tests of their package).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/resize-<hash> -> target/<profile>/examples/resize
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let name = format!("resize{}", std::env::consts::EXE_SUFFIX);
    let binary = profile_dir.join("examples").join(name);
    assert!(
        binary.exists(),
        "{} is missing: run this test with `cargo test -p stealpool-resize` \
         (a test filter such as `--test resize` skips building the example; add `--examples`)",
        binary.display()
    );
    binary
}

/// Ctrl-C (SIGINT) stops a running resize within about an image per thread:
/// the program says how many images it wrote, exits with 130, and leaves
/// only complete images in the output folder (each written under a
/// temporary name and renamed when whole).
#[test]
fn ctrl_c_stops_the_run_and_leaves_only_complete_images() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = Scratch::new("sigint");
    let input = dir.join("in");
    fs::create_dir(&input).unwrap();
    let total = 40;
    for i in 0..total {
        jpeg_file(
            &input.join(format!("{i:02}.jpg")),
            640,
            480,
            Kind::Progressive,
        );
    }
    let out = dir.join("out");
    let written = || -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&out) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    };
    let mut child = Command::new(example_binary())
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .args(["--threads", "1", "--size", "64x48"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first image is out, so that the run is under way.
    let started = Instant::now();
    while !written().iter().any(|p| {
        p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("resized_")
    }) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the resize ended before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no image came out"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is our child,
    // not yet reaped (we wait for it below), so it names no other process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(130),
        "stdout: {stdout}\nstderr: {stderr}"
    );

    let files = written();
    let reported = format!("cancelled: {} of {total} images written", files.len());
    assert!(
        stdout.contains(&reported),
        "expected '{reported}' in: {stdout}"
    );
    assert!(
        files.len() < total,
        "all {total} images were written: not interrupted"
    );
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("resized_"), "a stray file: {name}");
        let image = image::open(file).unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
        assert_eq!((image.width(), image.height()), (64, 48), "{name}");
    }
}
