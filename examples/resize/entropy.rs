//! JPEG's entropy decoding for [`crate::jpeg`]: Huffman tables with a
//! one-step lookup for short codes, the bit stream, and one block's
//! coefficients, of which only those the scaled IDCT uses are kept.

use crate::jpeg::Fallback;

/// Natural (row-major) index of the `k`-th coefficient in zigzag order.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The run that marks an end of block in [`Huffman::fast_ac`]: it takes
/// the coefficient index past 127, where no corrupt run can reach.
const EOB_RUN: u32 = 128;

/// Bits looked up at once when decoding a Huffman symbol.
const LOOKUP: u32 = 11;

/// A canonical Huffman table with a 9-bit lookup and, for AC tables, a
/// table that decodes run, size and value of short codes in one step.
pub(crate) struct Huffman {
    /// `(length << 8) | symbol` for codes of at most `LOOKUP` bits, else 0.
    lookup: [u16; 1 << LOOKUP],
    /// `(value << 16) | (run << 8) | total_bits`, or 0 when not that short;
    /// an end of block has the run `EOB_RUN`.
    fast_ac: [i32; 1 << LOOKUP],
    /// Largest code of each length (index 1..=16), -1 if none.
    max_code: [i32; 17],
    /// Symbol index minus first code, per length.
    offset: [i32; 17],
    symbols: [u8; 256],
}

impl Huffman {
    pub(crate) fn new(
        counts: &[u8],
        symbols: &[u8],
        is_ac: bool,
    ) -> Result<Box<Huffman>, Fallback> {
        let mut table = Box::new(Huffman {
            lookup: [0; 1 << LOOKUP],
            fast_ac: [0; 1 << LOOKUP],
            max_code: [-1; 17],
            offset: [0; 17],
            symbols: [0; 256],
        });
        if symbols.len() > 256 {
            return Err("Huffman table too large");
        }
        table.symbols[..symbols.len()].copy_from_slice(symbols);
        let (mut code, mut index) = (0i32, 0usize);
        for len in 1..=16u32 {
            let count = i32::from(counts[len as usize - 1]);
            table.offset[len as usize] = index as i32 - code;
            for _ in 0..count {
                if code >= (1 << len) {
                    return Err("invalid Huffman table");
                }
                if len <= LOOKUP {
                    let shift = LOOKUP - len;
                    let first = (code as usize) << shift;
                    let entry = ((len as u16) << 8) | u16::from(symbols[index]);
                    table.lookup[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                index += 1;
            }
            if count > 0 {
                table.max_code[len as usize] = code - 1;
            }
            code <<= 1;
        }
        if is_ac {
            for (bits, &entry) in table.lookup.iter().enumerate() {
                let (len, symbol) = (u32::from(entry >> 8), u32::from(entry & 0xFF));
                let (run, size) = (symbol >> 4, symbol & 15);
                if entry != 0 && size != 0 && len + size <= LOOKUP {
                    let raw = (bits as u32 >> (LOOKUP - len - size)) & ((1 << size) - 1);
                    let value = extend(raw, size);
                    table.fast_ac[bits] = (value << 16) | ((run as i32) << 8) | (len + size) as i32;
                } else if entry != 0 && symbol == 0 {
                    // End of block: a run of EOB_RUN, past any real index.
                    table.fast_ac[bits] = (EOB_RUN << 8) as i32 | len as i32;
                }
            }
        }
        Ok(table)
    }
}

/// JPEG's sign extension of a `size`-bit magnitude category.
#[inline]
fn extend(raw: u32, size: u32) -> i32 {
    if raw < (1 << (size - 1)) {
        raw as i32 - (1 << size) + 1
    } else {
        raw as i32
    }
}

/// The entropy-coded bit stream: a 64-bit buffer, left aligned.
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    count: u32,
    /// A marker (or the end of the data) was reached: zeros are fed now.
    at_marker: bool,
    /// Zero bytes fed past the marker, to detect a scan that ran over.
    fed: u32,
}

impl<'a> Bits<'a> {
    /// The stream of `data` from `pos` (just past the scan header).
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            count: 0,
            at_marker: false,
            fed: 0,
        }
    }

    /// Whether zeros fed past the end of the data were consumed: a
    /// truncated or corrupt scan.
    pub(crate) fn overran(&self) -> bool {
        u64::from(self.fed) * 8 > u64::from(self.count)
    }

    /// Tops the buffer up to at least 56 bits.
    ///
    /// The fast path loads 8 bytes at once when none is 0xFF (no stuffing,
    /// no marker) and keeps the whole load: the bits below `count` are then
    /// the true next bits of the stream, which later loads OR in again at the
    /// same positions, so they never disagree.
    #[inline]
    fn refill(&mut self) {
        if let Some(chunk) = self.data.get(self.pos..).and_then(|d| d.first_chunk::<8>()) {
            let word = u64::from_be_bytes(*chunk);
            let inverted = !word;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if has_ff == 0 {
                self.acc |= word >> self.count;
                let take = (63 - self.count) / 8;
                self.pos += take as usize;
                self.count += take * 8;
                return;
            }
        }
        while self.count <= 56 {
            let byte = self.next_byte();
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    fn next_byte(&mut self) -> u8 {
        if !self.at_marker {
            match self.data.get(self.pos) {
                Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                    self.pos += 2;
                    return 0xFF;
                }
                Some(&0xFF) | None => self.at_marker = true,
                Some(&byte) => {
                    self.pos += 1;
                    return byte;
                }
            }
        }
        self.fed += 1;
        0
    }

    #[inline]
    fn peek(&self, bits: u32) -> u32 {
        (self.acc >> (64 - bits)) as u32
    }

    #[inline]
    fn skip(&mut self, bits: u32) {
        self.acc <<= bits;
        self.count -= bits;
    }

    #[inline]
    fn take(&mut self, bits: u32) -> u32 {
        let value = self.peek(bits);
        self.skip(bits);
        value
    }

    #[inline]
    fn symbol(&mut self, table: &Huffman) -> Result<u32, Fallback> {
        let entry = table.lookup[self.peek(LOOKUP) as usize];
        if entry != 0 {
            self.skip(u32::from(entry >> 8));
            return Ok(u32::from(entry & 0xFF));
        }
        let code = self.peek(16) as i32;
        for len in LOOKUP + 1..=16 {
            let prefix = code >> (16 - len);
            if prefix <= table.max_code[len as usize] {
                self.skip(len);
                let index = (prefix + table.offset[len as usize]) as usize;
                return table
                    .symbols
                    .get(index)
                    .map(|&s| u32::from(s))
                    .ok_or("bad code");
            }
        }
        Err("bad Huffman code")
    }

    /// Skips to just past the restart marker that must come next.
    pub(crate) fn restart(&mut self) -> Result<(), Fallback> {
        if self.overran() {
            return Err("restart interval ran past its data");
        }
        (self.acc, self.count, self.at_marker, self.fed) = (0, 0, false, 0);
        while self.data.get(self.pos) == Some(&0xFF) && self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1;
        }
        match self.data.get(self.pos..self.pos + 2) {
            Some(&[0xFF, 0xD0..=0xD7]) => {
                self.pos += 2;
                Ok(())
            }
            _ => Err("missing restart marker"),
        }
    }
}

/// For each zigzag index, its slot in the `n`×`n` low-frequency corner, or
/// `DROP` if the scaled IDCT does not use it.
pub(crate) fn keep_table(n: usize) -> [u8; 64] {
    let mut keep = [DROP; 64];
    for (k, &natural) in ZIGZAG.iter().enumerate() {
        let (row, col) = (usize::from(natural) / 8, usize::from(natural) % 8);
        if row < n && col < n {
            keep[k] = (row * n + col) as u8;
        }
    }
    keep
}

/// The slot of `Coefs` that takes the coefficients the scaled IDCT drops
/// (storing unconditionally avoids an unpredictable branch).
const DROP: u8 = 16;

/// A block's low-frequency corner, row major, plus the `DROP` slot.
pub(crate) type Coefs = [f32; 17];

/// Decodes one block's coefficients, dequantizing only those in the
/// `n`×`n` corner (`coefs`, row major); the others are read and dropped.
#[inline]
pub(crate) fn decode_block(
    bits: &mut Bits<'_>,
    dc: &Huffman,
    ac: &Huffman,
    quant: &[f32; 64],
    keep: &[u8; 64],
    pred: &mut i32,
    coefs: &mut Coefs,
) -> Result<(), Fallback> {
    *coefs = [0.0; 17];
    if bits.count < 32 {
        bits.refill();
    }
    let size = bits.symbol(dc)?;
    if size > 11 {
        return Err("bad DC size");
    }
    if size != 0 {
        *pred = pred.wrapping_add(extend(bits.take(size), size));
    }
    coefs[0] = *pred as f32 * quant[0];
    let mut k = 1usize;
    while k < 64 {
        if bits.count < 32 {
            bits.refill();
        }
        let fast = ac.fast_ac[bits.peek(LOOKUP) as usize];
        let value = if fast != 0 {
            k += ((fast >> 8) & 0xFF) as usize;
            bits.skip((fast & 0xFF) as u32);
            fast >> 16
        } else {
            let rs = bits.symbol(ac)?;
            let (run, size) = (rs >> 4, rs & 15);
            if size == 0 {
                if run == 15 {
                    k += 16;
                    continue;
                }
                break;
            }
            k += run as usize;
            extend(bits.take(size), size)
        };
        // `k & 63`: no bounds-check branch; a `k` past 63 (corrupt data)
        // is caught after the loop.
        let slot = keep[k & 63];
        coefs[usize::from(slot)] = value as f32 * quant[k & 63];
        k += 1;
    }
    // 64: the block ran to its end; past `EOB_RUN`: a fast end of block.
    if k > 64 && k < EOB_RUN as usize {
        return Err("coefficient index past 63");
    }
    Ok(())
}
