//! Resizing one image with buffers kept from image to image: read, decode
//! (at reduced scale for JPEGs when the target allows), resize, encode,
//! write.

use std::ffi::OsString;
use std::fs;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use fast_image_resize as fr;
use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::{PngDecoder, PngEncoder};
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder};

use crate::app::{decode_scale, reason, Format, Job, Options};
use crate::jpeg::{Plane, ScaledDecoder};

/// Pixel layouts the resizer moves around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    L,
    La,
    Rgb,
    Rgba,
    /// JPEG's YCbCr from the scaled decoder, for the JPEG encoder: Y in
    /// `resized`, Cb and Cr interleaved in `chroma`, at half the size in
    /// both directions (the output's 4:2:0 grid) when `half`, else full.
    Ycbcr {
        half: bool,
    },
}

impl Layout {
    fn pixel_type(self) -> fr::PixelType {
        match self {
            Layout::L => fr::PixelType::U8,
            Layout::La => fr::PixelType::U8x2,
            Layout::Rgb | Layout::Ycbcr { .. } => fr::PixelType::U8x3,
            Layout::Rgba => fr::PixelType::U8x4,
        }
    }

    fn channels(self) -> usize {
        self.pixel_type().size()
    }

    fn color(self) -> ExtendedColorType {
        match self {
            Layout::L => ExtendedColorType::L8,
            Layout::La => ExtendedColorType::La8,
            Layout::Rgb | Layout::Ycbcr { .. } => ExtendedColorType::Rgb8,
            Layout::Rgba => ExtendedColorType::Rgba8,
        }
    }
}

/// What resizing one image did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Pixels of the input image (full size).
    pub input_pixels: u64,
    /// The scale the JPEG was decoded at (1: full size).
    pub scale: u32,
}

/// One thread's reusable state: file bytes, pixel buffers, the scaled
/// decoder's tables and planes, and the resizer's scratch.
pub struct Worker {
    options: Options,
    file: Vec<u8>,
    pixels: Vec<u8>,

    resized: Vec<u8>,
    chroma: Vec<u8>,
    encoded: Vec<u8>,
    decoder: ScaledDecoder,
    resizer: fr::Resizer,
}

impl Worker {
    /// A worker with empty buffers.
    pub fn new(options: Options) -> Worker {
        Worker {
            options,
            file: Vec::new(),
            pixels: Vec::new(),

            resized: Vec::new(),
            chroma: Vec::new(),
            encoded: Vec::new(),
            decoder: ScaledDecoder::new(),
            resizer: fr::Resizer::new(),
        }
    }

    /// Reads, resizes, encodes and writes one image.
    ///
    /// # Errors
    ///
    /// The reason (without the input path) if the input cannot be read or
    /// decoded or the output cannot be written.
    pub fn process(&mut self, job: &Job) -> Result<Done, String> {
        self.file.clear();
        fs::File::open(&job.input)
            .and_then(|mut f| f.read_to_end(&mut self.file))
            .map_err(|e| format!("cannot read: {}", reason(&e)))?;
        let (layout, done) = self.resize(job.format)?;
        self.encode(job.format, layout)?;
        write_whole(&job.output, &self.encoded)
            .map_err(|e| format!("cannot write {}: {}", job.output.display(), reason(&e)))?;
        Ok(done)
    }

    fn resize(&mut self, format: Format) -> Result<(Layout, Done), String> {
        let o = self.options;
        if format == Format::Jpeg && o.scaled_decode && o.simd_resize {
            if let Some((w, h)) = crate::jpeg::dimensions(&self.file) {
                let scale = decode_scale(w, h, o.size);
                let input_pixels = u64::from(w) * u64::from(h);
                if scale > 1 {
                    if let Ok(planes) = self.decoder.decode(&self.file, scale) {
                        let outs = [&mut self.resized, &mut self.chroma];
                        let layout = resize_planes(&planes, &mut self.resizer, o, outs)?;
                        return Ok((
                            layout,
                            Done {
                                input_pixels,
                                scale,
                            },
                        ));
                    }
                }
            }
        }
        if format == Format::Jpeg && !crate::jpeg::is_complete(&self.file) {
            return Err("cannot decode: truncated or corrupt JPEG (no end-of-image marker)".into());
        }
        let (w, h, layout) = decode_full(format, &self.file, &mut self.pixels)
            .map_err(|e| format!("cannot decode: {e}"))?;
        let (tw, th) = (o.size.width, o.size.height);
        if o.simd_resize {
            let src = fr::images::ImageRef::new(w, h, &self.pixels, layout.pixel_type());
            let src = src.map_err(|e| format!("cannot resize: {e}"))?;
            self.resized
                .resize(tw as usize * th as usize * layout.channels(), 0);
            let dst =
                fr::images::Image::from_slice_u8(tw, th, &mut self.resized, layout.pixel_type());
            let mut dst = dst.map_err(|e| format!("cannot resize: {e}"))?;
            let options = fr::ResizeOptions::new().resize_alg(o.filter.simd());
            self.resizer
                .resize(&src, &mut dst, &options)
                .map_err(|e| format!("cannot resize: {e}"))?;
        } else {
            self.resized = image_resize(layout, w, h, &self.pixels, o)?;
        }
        let input_pixels = u64::from(w) * u64::from(h);
        Ok((
            layout,
            Done {
                input_pixels,
                scale: 1,
            },
        ))
    }

    fn encode(&mut self, format: Format, mut layout: Layout) -> Result<(), String> {
        let o = self.options;
        let (w, h) = (o.size.width, o.size.height);
        self.encoded.clear();
        let failed = |e: &dyn std::fmt::Display| format!("cannot encode: {e}");
        if let Layout::Ycbcr { half } = layout {
            if !(format == Format::Jpeg && o.fast_encoder) {
                self.resized = ycbcr_to_rgb(&self.resized, &self.chroma, w as usize, half);
                layout = Layout::Rgb;
            }
        }
        match format {
            Format::Jpeg if o.fast_encoder => {
                use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
                let mut encoder = Encoder::new(&mut self.encoded, o.quality);
                // libjpeg's (and so PIL's) defaults: 4:2:0, box-averaged.
                encoder.set_sampling_factor(SamplingFactor::F_2_2);
                encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
                // `Size` keeps both sides within u16.
                let (w16, h16) = (w as u16, h as u16);
                let color = match layout {
                    Layout::L => ColorType::Luma,
                    Layout::Rgb => ColorType::Rgb,
                    Layout::Rgba => ColorType::Rgba,
                    Layout::Ycbcr { half } => {
                        if half {
                            // Chroma is already on the 4:2:0 grid, each
                            // sample repeated 2x2: take it as it is.
                            encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Nearest);
                        }
                        let planes = YcbcrPlanes {
                            y: &self.resized,
                            cbcr: &self.chroma,
                            width: w16,
                            height: h16,
                            half,
                        };
                        return encoder.encode_image(planes).map_err(|e| failed(&e));
                    }
                    Layout::La => return Err("cannot write gray+alpha as JPEG".into()),
                };
                encoder
                    .encode(&self.resized, w16, h16, color)
                    .map_err(|e| failed(&e))
            }
            Format::Jpeg => {
                let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut self.encoded,
                    o.quality,
                );
                encoder
                    .write_image(&self.resized, w, h, layout.color())
                    .map_err(|e| failed(&e))
            }
            Format::Png => {
                let encoder = PngEncoder::new(&mut self.encoded);
                encoder
                    .write_image(&self.resized, w, h, layout.color())
                    .map_err(|e| failed(&e))
            }
        }
    }
}

/// The name `path` has while it is being written: hidden, in the same folder
/// (so that the rename is atomic), unique to this process.
pub fn partial_name(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".partial-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` so that `path` is never seen half-written: into
/// a temporary name beside it, then renamed over it. On an error the
/// temporary file is removed.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let partial = partial_name(path);
    let written = fs::write(&partial, bytes).and_then(|()| fs::rename(&partial, path));
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written
}

/// Resizes the scaled decoder's planes, each from its exact extent: Y (or
/// gray) to the target size into `outs[0]`, and CbCr into `outs[1]`,
/// straight to the output's 4:2:0 chroma grid when the target's sides are
/// even (else to the full target size).
fn resize_planes(
    planes: &[Plane<'_>],
    resizer: &mut fr::Resizer,
    o: Options,
    outs: [&mut Vec<u8>; 2],
) -> Result<Layout, String> {
    let (tw, th) = (o.size.width, o.size.height);
    let half = tw % 2 == 0 && th % 2 == 0;
    let failed = |e: &dyn std::fmt::Display| format!("cannot resize: {e}");
    for (i, (plane, out)) in planes.iter().zip(outs).enumerate() {
        let (w, h) = if i > 0 && half {
            (tw / 2, th / 2)
        } else {
            (tw, th)
        };
        let pixel_type = if plane.channels == 2 {
            fr::PixelType::U8x2
        } else {
            fr::PixelType::U8
        };
        let src = fr::images::ImageRef::new(plane.stride, plane.rows, plane.data, pixel_type);
        let src = src.map_err(|e| failed(&e))?;
        out.resize(w as usize * h as usize * pixel_type.size(), 0);
        let mut dst =
            fr::images::Image::from_slice_u8(w, h, out, pixel_type).map_err(|e| failed(&e))?;
        // CbCr is not luma + alpha: no premultiplying.
        let options = fr::ResizeOptions::new()
            .resize_alg(o.filter.simd())
            .use_alpha(false);
        let options = options.crop(0.0, 0.0, plane.width, plane.height);
        resizer
            .resize(&src, &mut dst, &options)
            .map_err(|e| failed(&e))?;
    }
    Ok(if planes.len() == 1 {
        Layout::L
    } else {
        Layout::Ycbcr { half }
    })
}

/// Y at the output size and CbCr at full or half size, fed to jpeg-encoder
/// row by row.
struct YcbcrPlanes<'a> {
    y: &'a [u8],
    cbcr: &'a [u8],
    width: u16,
    height: u16,
    half: bool,
}

impl jpeg_encoder::ImageBuffer for YcbcrPlanes<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let (w, y) = (usize::from(self.width), usize::from(y));
        buffers[0].extend_from_slice(&self.y[y * w..(y + 1) * w]);
        let (cw, cy, repeat) = if self.half {
            (w / 2, y / 2, 2)
        } else {
            (w, y, 1)
        };
        let row = &self.cbcr[cy * cw * 2..(cy + 1) * cw * 2];
        let [_, cb, cr, _] = buffers;
        let (cb_start, cr_start) = (cb.len(), cr.len());
        cb.resize(cb_start + w, 0);
        cr.resize(cr_start + w, 0);
        let targets = cb[cb_start..]
            .chunks_exact_mut(repeat)
            .zip(cr[cr_start..].chunks_exact_mut(repeat));
        for ((cb, cr), px) in targets.zip(row.chunks_exact(2)) {
            cb.fill(px[0]);
            cr.fill(px[1]);
        }
    }
}

/// JFIF's YCbCr to interleaved RGB (chroma repeated 2x2 when `half`), in
/// 16.16 fixed point.
fn ycbcr_to_rgb(y: &[u8], cbcr: &[u8], width: usize, half: bool) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(y.len() * 3);
    for (row, luma) in y.chunks_exact(width).enumerate() {
        for (x, &l) in luma.iter().enumerate() {
            let at = if half {
                (row / 2) * (width / 2) + x / 2
            } else {
                row * width + x
            };
            let l = (i32::from(l) << 16) + (1 << 15);
            let (cb, cr) = (
                i32::from(cbcr[2 * at]) - 128,
                i32::from(cbcr[2 * at + 1]) - 128,
            );
            let channel = |v: i32| (v >> 16).clamp(0, 255) as u8;
            rgb.extend([
                channel(l + 91_881 * cr),
                channel(l - 22_554 * cb - 46_802 * cr),
                channel(l + 116_130 * cb),
            ]);
        }
    }
    rgb
}

/// Decodes a whole image into `pixels` (8 bits per channel), reusing its
/// allocation when the decoder gives 8-bit pixels.
fn decode_full(
    format: Format,
    file: &[u8],
    pixels: &mut Vec<u8>,
) -> image::ImageResult<(u32, u32, Layout)> {
    match format {
        Format::Jpeg => decode_with(JpegDecoder::new(Cursor::new(file))?, pixels),
        Format::Png => decode_with(PngDecoder::new(Cursor::new(file))?, pixels),
    }
}

fn decode_with(
    mut decoder: impl ImageDecoder,
    pixels: &mut Vec<u8>,
) -> image::ImageResult<(u32, u32, Layout)> {
    use image::ColorType;
    decoder.set_limits(image::Limits::default())?;
    let (w, h) = decoder.dimensions();
    let layout = match decoder.color_type() {
        ColorType::L8 => Layout::L,
        ColorType::La8 => Layout::La,
        ColorType::Rgb8 => Layout::Rgb,
        ColorType::Rgba8 => Layout::Rgba,
        other => {
            // 16-bit or float: convert to 8 bits per channel.
            let image = DynamicImage::from_decoder(decoder)?;
            let (layout, raw) = match other.channel_count() {
                1 => (Layout::L, image.into_luma8().into_raw()),
                2 => (Layout::La, image.into_luma_alpha8().into_raw()),
                3 => (Layout::Rgb, image.into_rgb8().into_raw()),
                _ => (Layout::Rgba, image.into_rgba8().into_raw()),
            };
            *pixels = raw;
            return Ok((w, h, layout));
        }
    };
    // Limits::default() caps the allocation (512 MiB), so this fits.
    pixels.resize(decoder.total_bytes() as usize, 0);
    decoder.read_image(pixels)?;
    Ok((w, h, layout))
}

/// The image crate's resize, for comparison (`--image-resize`).
fn image_resize(
    layout: Layout,
    w: u32,
    h: u32,
    pixels: &[u8],
    o: Options,
) -> Result<Vec<u8>, String> {
    fn run<P: image::Pixel<Subpixel = u8> + 'static>(
        w: u32,
        h: u32,
        px: &[u8],
        o: Options,
    ) -> Option<Vec<u8>> {
        let view = image::ImageBuffer::<P, &[u8]>::from_raw(w, h, px)?;
        let out = image::imageops::resize(&view, o.size.width, o.size.height, o.filter.image());
        Some(out.into_raw())
    }
    let out = match layout {
        Layout::L => run::<image::Luma<u8>>(w, h, pixels, o),
        Layout::La => run::<image::LumaA<u8>>(w, h, pixels, o),
        Layout::Rgb | Layout::Ycbcr { .. } => run::<image::Rgb<u8>>(w, h, pixels, o),
        Layout::Rgba => run::<image::Rgba<u8>>(w, h, pixels, o),
    };
    out.ok_or_else(|| "cannot resize: pixel buffer does not match the size".into())
}
