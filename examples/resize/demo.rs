//! The demo set: deterministic JPEGs (gradients, a soft disc, noise) made
//! with a tiny PRNG, so the example runs on a fresh machine with nothing
//! else, and every run (and the Python comparison) sees the same images.

use std::fs;
use std::path::{Path, PathBuf};

use stealpool::Pool;

use crate::app::reason;

/// Images in the demo set.
pub const COUNT: usize = 48;
/// Width of each demo image.
pub const WIDTH: u32 = 1920;
/// Height of each demo image.
pub const HEIGHT: u32 = 1080;
/// JPEG quality of the demo images (a camera-like 90, 4:2:0, baseline).
pub const QUALITY: u8 = 90;

/// Where the demo set lives: `<temp>/stealpool-resize-demo/images`, with the
/// results going to `<temp>/stealpool-resize-demo/resized` beside it.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir()
        .join("stealpool-resize-demo")
        .join("images")
}

/// SplitMix64: a tiny, good-enough, deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The RGB pixels of demo image `index`: a linear gradient between two
/// colours in a random direction, a soft tinted disc, and ±12 of noise
/// per channel.
pub fn pixels(index: usize, width: u32, height: u32) -> Vec<u8> {
    let mut rng = Rng(0x5EED_0000 ^ index as u64);
    let mut colour = || [0; 3].map(|_: u8| rng.unit() * 255.0);
    let (from, to, tint) = (colour(), colour(), colour().map(|c| c / 2.0 - 64.0));
    let angle = rng.unit() * std::f32::consts::TAU;
    let (dx, dy) = (angle.cos(), angle.sin());
    let (w, h) = (width as f32, height as f32);
    let (cx, cy) = (rng.unit() * w, rng.unit() * h);
    let radius = (0.15 + 0.25 * rng.unit()) * w.min(h);
    let span = (w * dx.abs() + h * dy.abs()).max(1.0);
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        let fy = y as f32 - h / 2.0;
        let ry = (y as f32 - cy) / radius;
        for x in 0..width {
            let t = ((x as f32 - w / 2.0) * dx + fy * dy) / span + 0.5;
            let rx = (x as f32 - cx) / radius;
            let d2 = rx * rx + ry * ry;
            let disc = 1.0 / (1.0 + d2 * d2);
            let noise = rng.next();
            for c in 0..3 {
                let n = ((noise >> (8 * c)) & 0xFF) as f32 * (25.0 / 256.0) - 12.0;
                let v = from[c] + (to[c] - from[c]) * t + tint[c] * disc + n;
                out.push(v.clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

/// Encodes RGB `pixels` as a baseline 4:2:0 JPEG.
///
/// # Errors
///
/// The encoder's message (e.g. a side over 65535).
pub fn encode_jpeg(pixels: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    let (w, h) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(format!("{width}x{height} is too large for a JPEG")),
    };
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| format!("cannot encode demo image: {e}"))?;
    Ok(out)
}

/// Makes sure `dir` holds the demo set of `count` images of
/// `width`×`height` (`demo_00.jpg`, ...), generating them in parallel on
/// `pool` unless a complete set with the same parameters is already there.
/// Returns whether it generated them.
///
/// # Errors
///
/// A one-line message if the folder or an image cannot be written.
pub fn ensure(
    pool: &Pool,
    dir: &Path,
    count: usize,
    width: u32,
    height: u32,
) -> Result<bool, String> {
    let stamp =
        format!("stealpool resize demo set v1: {count} images {width}x{height} q{QUALITY}\n");
    let marker = dir.join(".complete");
    let name = |i: usize| dir.join(format!("demo_{i:02}.jpg"));
    let complete = fs::read_to_string(&marker).is_ok_and(|s| s == stamp)
        && (0..count).all(|i| name(i).is_file());
    if complete {
        return Ok(false);
    }
    let shown = dir.display();
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create demo folder {shown}: {}", reason(&e)))?;
    let indices: Vec<usize> = (0..count).collect();
    pool.try_map(&indices, |&i| {
        let jpeg = encode_jpeg(&pixels(i, width, height), width, height, QUALITY)?;
        // Written under another name, then renamed: a set cut short never
        // leaves a truncated image behind.
        let (partial, done) = (dir.join(format!(".demo_{i:02}.partial")), name(i));
        let failed = |e: std::io::Error| format!("cannot write {}: {}", done.display(), reason(&e));
        fs::write(&partial, jpeg).map_err(failed)?;
        fs::rename(&partial, &done).map_err(failed)
    })?;
    fs::write(&marker, stamp)
        .map_err(|e| format!("cannot write {}: {}", marker.display(), reason(&e)))?;
    Ok(true)
}
