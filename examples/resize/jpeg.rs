//! A baseline JPEG decoder that decodes at 1/2, 1/4 or 1/8 scale, the way
//! libjpeg's `scale_denom` (and so PIL's `Image.draft`) does: each 8×8 block
//! of DCT coefficients goes through a 4-, 2- or 1-point inverse DCT on its
//! low-frequency corner, so the decoder never builds the full-size image.
//!
//! It handles what cameras and most encoders write (8-bit baseline or
//! extended Huffman, one interleaved scan, grayscale or YCbCr with any
//! integer chroma subsampling, restart markers). Anything else (progressive,
//! arithmetic coding, CMYK, RGB-coded, 12-bit, truncated or inconsistent
//! data) makes [`ScaledDecoder::decode`] return an error, and the caller
//! falls back to a full decode, which also gives the user-facing error.
//!
//! The output is the luma (or gray) plane and, for colour images, Cb and Cr
//! interleaved in a second plane, each at its own scaled resolution: chroma
//! is not upsampled here, the resizer takes each plane to its final size,
//! and the JPEG encoder gets YCbCr as it is (no colour conversion at all).
//!
//! The entropy decoding is in `entropy.rs`, the scaled IDCTs in `idct.rs`.

use crate::entropy::{decode_block, keep_table, Bits, Coefs, Huffman};
use crate::idct::Basis;

/// Why the scaled decoder gave up; the caller falls back to a full decode.
pub type Fallback = &'static str;

/// The most blocks one MCU may hold (JPEG's limit).
const MAX_MCU_BLOCKS: usize = 10;

/// Largest image (in full-size pixels) decoded here; larger ones fall back
/// to the full decoder and its allocation limits.
const MAX_PIXELS: u64 = 1 << 28;

/// One decoded plane at its scaled resolution: Y (or gray), or Cb and Cr
/// interleaved.
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The samples, `stride` pixels per row, `rows` rows (padded to whole
    /// blocks), `channels` bytes per pixel.
    pub data: &'a [u8],
    /// Pixels per row of `data`.
    pub stride: u32,
    /// Rows in `data`.
    pub rows: u32,
    /// Bytes per pixel: 1 for Y or gray, 2 for CbCr.
    pub channels: u32,
    /// Width of the real picture in this plane, in samples (may be
    /// fractional for subsampled chroma of odd-sized images).
    pub width: f64,
    /// Height of the real picture in this plane, in samples.
    pub height: f64,
}

/// One frame component and where its blocks go.
#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
    dc: usize,
    ac: usize,
    pred: i32,
}

/// What the headers before the scan said.
#[derive(Default)]
struct Frame {
    width: usize,
    height: usize,
    comps: Vec<Component>,
    restart_interval: usize,
    /// The Adobe APP14 colour transform flag, if present.
    adobe_transform: Option<u8>,
}

/// Reusable state for decoding JPEGs at reduced scale: keep one per thread.
#[derive(Default)]
pub struct ScaledDecoder {
    /// Quantization tables in zigzag order; `None` until defined.
    quant: [Option<Box<[f32; 64]>>; 4],
    dc: [Option<Box<Huffman>>; 4],
    ac: [Option<Box<Huffman>>; 4],
    /// Y (or gray), then CbCr interleaved if the image has colour.
    planes: [Vec<u8>; 2],
    shapes: Vec<Shape>,
}

/// A plane's size: stride, rows, channels, and the picture's extent.
type Shape = (u32, u32, u32, f64, f64);

/// The width and height in a JPEG's frame header, if it has one before
/// its first scan.
pub fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut pos = 2;
    loop {
        if *data.get(pos)? != 0xFF {
            return None;
        }
        while *data.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *data.get(pos)?;
        pos += 1;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            continue;
        }
        let len = be16(data, pos).ok()?;
        if matches!(marker, 0xD9 | 0xDA) || len < 2 {
            return None;
        }
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let (h, w) = (be16(data, pos + 3).ok()?, be16(data, pos + 5).ok()?);
            return Some((w as u32, h as u32));
        }
        pos += len;
    }
}

/// Whether a JPEG's segments and entropy-coded data run all the way to its
/// end-of-image marker: a truncated file does not (the full decoder would
/// fill the missing part with gray and report nothing).
pub fn is_complete(data: &[u8]) -> bool {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return false;
    }
    let mut pos = 2;
    loop {
        if data.get(pos) != Some(&0xFF) {
            return false;
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return false;
        };
        pos += 1;
        match marker {
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let Ok(len) = be16(data, pos) else {
            return false;
        };
        pos += len;
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a
            // stuffed 0xFF 0x00 nor a restart marker.
            loop {
                let Some(skip) = data
                    .get(pos..)
                    .and_then(|d| d.iter().position(|&b| b == 0xFF))
                else {
                    return false;
                };
                pos += skip;
                match data.get(pos + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => pos += 2,
                    Some(0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Reads a big-endian `u16` at `at`.
fn be16(data: &[u8], at: usize) -> Result<usize, Fallback> {
    match data.get(at..at + 2) {
        Some(&[hi, lo]) => Ok(usize::from(u16::from_be_bytes([hi, lo]))),
        _ => Err("truncated header"),
    }
}

impl ScaledDecoder {
    /// A decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `data` at 1/`scale` size (`scale` is 2, 4 or 8) and returns
    /// the planes: gray alone, or Y and then Cb and Cr interleaved (at the
    /// chroma's own resolution).
    ///
    /// # Errors
    ///
    /// A [`Fallback`] reason for anything this decoder does not handle,
    /// including corrupt data; the caller then decodes in full.
    pub fn decode(&mut self, data: &[u8], scale: u32) -> Result<Vec<Plane<'_>>, Fallback> {
        let n = match scale {
            2 => 4,
            4 => 2,
            8 => 1,
            _ => return Err("unsupported scale"),
        };
        if data.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err("not a JPEG");
        }
        (self.quant, self.dc, self.ac) = Default::default();
        let mut pos = 2;
        let mut frame = Frame::default();
        loop {
            if data.get(pos) != Some(&0xFF) {
                return Err("expected a marker");
            }
            while data.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let marker = *data.get(pos).ok_or("truncated")?;
            pos += 1;
            if matches!(marker, 0x01 | 0xD0..=0xD7) {
                continue;
            }
            if marker == 0xD9 {
                return Err("no scan");
            }
            let len = be16(data, pos)?;
            let seg = data.get(pos + 2..pos + len).ok_or("truncated segment")?;
            pos += len;
            match marker {
                0xDB => self.read_quant(seg)?,
                0xC4 => self.read_huffman(seg)?,
                0xC0 | 0xC1 => read_frame(seg, &mut frame)?,
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err("not a baseline JPEG")
                }
                0xDD => frame.restart_interval = be16(seg, 0)?,
                0xEE if seg.starts_with(b"Adobe") => frame.adobe_transform = seg.get(11).copied(),
                0xDA => {
                    if frame.comps.is_empty() {
                        return Err("scan before frame header");
                    }
                    if frame.comps.len() == 3 && frame.adobe_transform == Some(0) {
                        return Err("RGB-coded JPEG");
                    }
                    read_scan(seg, &mut frame.comps)?;
                    self.decode_scan(data, pos, &mut frame, n)?;
                    break;
                }
                _ => {}
            }
        }
        let planes = self.planes.iter().zip(&self.shapes);
        let planes = planes.map(|(data, &(stride, rows, channels, width, height))| Plane {
            data,
            stride,
            rows,
            channels,
            width,
            height,
        });
        Ok(planes.collect())
    }

    fn read_quant(&mut self, mut seg: &[u8]) -> Result<(), Fallback> {
        while let Some(&pq_tq) = seg.first() {
            let (wide, id) = (pq_tq >> 4 != 0, usize::from(pq_tq & 3));
            let bytes = if wide { 128 } else { 64 };
            let values = seg
                .get(1..1 + bytes)
                .ok_or("truncated quantization table")?;
            let mut table = Box::new([0f32; 64]);
            for (k, q) in table.iter_mut().enumerate() {
                *q = if wide {
                    f32::from(u16::from_be_bytes([values[2 * k], values[2 * k + 1]]))
                } else {
                    f32::from(values[k])
                };
            }
            self.quant[id] = Some(table);
            seg = &seg[1 + bytes..];
        }
        Ok(())
    }

    fn read_huffman(&mut self, mut seg: &[u8]) -> Result<(), Fallback> {
        while let Some(&tc_th) = seg.first() {
            let counts = seg.get(1..17).ok_or("truncated Huffman table")?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = seg.get(17..17 + total).ok_or("truncated Huffman table")?;
            let (is_ac, id) = (tc_th >> 4 != 0, usize::from(tc_th & 3));
            let table = Some(Huffman::new(counts, symbols, is_ac)?);
            if is_ac {
                self.ac[id] = table;
            } else {
                self.dc[id] = table;
            }
            seg = &seg[17 + total..];
        }
        Ok(())
    }

    /// Decodes the one scan starting at `start` into the planes.
    fn decode_scan(
        &mut self,
        data: &[u8],
        start: usize,
        frame: &mut Frame,
        n: usize,
    ) -> Result<(), Fallback> {
        let comps = &mut frame.comps;
        if comps.len() == 1 {
            // A single-component scan ignores the sampling factors: it covers
            // ceil(w/8) x ceil(h/8) blocks.
            (comps[0].h, comps[0].v) = (1, 1);
        }
        let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
        let (width, height) = (frame.width, frame.height);
        let (mcus_x, mcus_y) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
        if comps.len() == 3 && (comps[1].h, comps[1].v) != (comps[2].h, comps[2].v) {
            return Err("Cb and Cr sampled differently");
        }
        let scale = (8 / n) as f64;
        self.shapes.clear();
        // Component 0 goes to plane 0; components 1 and 2 share plane 1.
        for (i, (plane, c)) in self.planes.iter_mut().zip(comps.iter().take(2)).enumerate() {
            let channels = if i == 0 { 1 } else { 2 };
            let (stride, rows) = (mcus_x * c.h * n, mcus_y * c.v * n);
            plane.clear();
            plane.resize(stride * rows * channels as usize, 0);
            let w = (width * c.h) as f64 / (hmax as f64 * scale);
            let h = (height * c.v) as f64 / (vmax as f64 * scale);
            self.shapes
                .push((stride as u32, rows as u32, channels, w, h));
        }
        let tables =
            comps.iter().map(
                |c| match (&self.dc[c.dc], &self.ac[c.ac], &self.quant[c.quant]) {
                    (Some(dc), Some(ac), Some(quant)) => Ok((&**dc, &**ac, &**quant)),
                    _ => Err("missing table"),
                },
            );
        let tables = tables.collect::<Result<Vec<_>, _>>()?;
        let keep = keep_table(n);
        let basis = Basis::new(n);
        let mut bits = Bits::new(data, start);
        if comps.iter().map(|c| c.h * c.v).sum::<usize>() > MAX_MCU_BLOCKS {
            return Err("too many blocks per MCU");
        }
        // A whole MCU is decoded before its IDCTs run: reading a block's
        // coefficients right after the decoder's scattered stores would
        // stall on store forwarding.
        let mut mcu: [Coefs; MAX_MCU_BLOCKS] = [[0.0; 17]; MAX_MCU_BLOCKS];
        let restart_interval = frame.restart_interval;
        let mut left = restart_interval;
        for my in 0..mcus_y {
            // Zeros fed past the end of the data and already consumed mean
            // a truncated or corrupt scan.
            if bits.overran() {
                return Err("scan ran past its data");
            }
            for mx in 0..mcus_x {
                if restart_interval != 0 {
                    if left == 0 {
                        bits.restart()?;
                        comps.iter_mut().for_each(|c| c.pred = 0);
                        left = restart_interval;
                    }
                    left -= 1;
                }
                let mut blocks = mcu.iter_mut();
                for (c, &(dc, ac, quant)) in comps.iter_mut().zip(&tables) {
                    for coefs in blocks.by_ref().take(c.h * c.v) {
                        decode_block(&mut bits, dc, ac, quant, &keep, &mut c.pred, coefs)?;
                    }
                }
                let mut blocks = mcu.iter();
                for (ci, c) in comps.iter().enumerate() {
                    let (plane, offset) = (ci.min(1), ci.saturating_sub(1));
                    let (stride, _, channels, _, _) = self.shapes[plane];
                    let step = channels as usize;
                    let row_bytes = stride as usize * step;
                    for (b, coefs) in blocks.by_ref().take(c.h * c.v).enumerate() {
                        let (bx, by) = (b % c.h, b / c.h);
                        let (x, y) = ((mx * c.h + bx) * n, (my * c.v + by) * n);
                        let out = &mut self.planes[plane][y * row_bytes + x * step + offset..];
                        basis.idct(coefs, out, row_bytes, step);
                    }
                }
            }
        }
        if bits.overran() {
            return Err("scan ran past its data");
        }
        Ok(())
    }
}

/// Parses SOF0/SOF1: size and components.
fn read_frame(seg: &[u8], frame: &mut Frame) -> Result<(), Fallback> {
    let (precision, height, width) = (
        *seg.first().ok_or("bad frame")?,
        be16(seg, 1)?,
        be16(seg, 3)?,
    );
    let count = usize::from(*seg.get(5).ok_or("bad frame")?);
    if precision != 8 || width == 0 || height == 0 || !(count == 1 || count == 3) {
        return Err("unsupported frame");
    }
    if (width as u64) * (height as u64) > MAX_PIXELS {
        return Err("image too large");
    }
    let mut comps = Vec::with_capacity(count);
    for i in 0..count {
        let spec = seg.get(6 + 3 * i..9 + 3 * i).ok_or("bad frame")?;
        let (h, v) = (usize::from(spec[1] >> 4), usize::from(spec[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || spec[2] > 3 {
            return Err("bad sampling factors");
        }
        comps.push(Component {
            id: spec[0],
            h,
            v,
            quant: usize::from(spec[2]),
            ..Default::default()
        });
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    if comps.iter().any(|c| hmax % c.h != 0 || vmax % c.v != 0) {
        return Err("non-integer subsampling");
    }
    if count == 3 && comps.iter().map(|c| c.id).eq(*b"RGB") {
        return Err("RGB-coded JPEG");
    }
    (frame.width, frame.height, frame.comps) = (width, height, comps);
    Ok(())
}

/// Parses SOS: which tables each component uses; the scan must hold every
/// component, in frame order, with baseline spectral parameters.
fn read_scan(seg: &[u8], comps: &mut [Component]) -> Result<(), Fallback> {
    let count = usize::from(*seg.first().ok_or("bad scan")?);
    if count != comps.len() {
        return Err("non-interleaved scans");
    }
    for (i, c) in comps.iter_mut().enumerate() {
        let spec = seg.get(1 + 2 * i..3 + 2 * i).ok_or("bad scan")?;
        if spec[0] != c.id {
            return Err("scan components out of order");
        }
        (c.dc, c.ac) = (usize::from(spec[1] >> 4 & 3), usize::from(spec[1] & 3));
    }
    match seg.get(1 + 2 * count..4 + 2 * count) {
        Some(&[0, 63, 0]) => Ok(()),
        _ => Err("not a baseline scan"),
    }
}
