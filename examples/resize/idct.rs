//! The scaled inverse DCTs of [`crate::jpeg`]: 4×4, 2×2 and 1×1 pixels
//! from the low-frequency corner of an 8×8 block of coefficients.

use crate::entropy::Coefs;

/// The `n`-point inverse DCT with JPEG's 8-point normalization, which is
/// what libjpeg's scaled IDCTs compute: the block's low frequencies, kept
/// unchanged, sampled on an `n`×`n` grid. For `n` = 4:
///
/// `x[k] = Σ_u C(u)/2 · F[u] · cos((2k+1)uπ/8)`, `C(0) = 1/√2`, `C(u>0) = 1`,
///
/// computed with the even/odd butterfly below (6 multiplies, not 16).
pub(crate) struct Basis {
    n: usize,
}

/// Four lanes, one per row or column of a 4×4 block (LLVM keeps them in
/// one SIMD register).
type Lanes = [f32; 4];

#[inline(always)]
fn lanes(f: impl Fn(usize) -> f32) -> Lanes {
    [f(0), f(1), f(2), f(3)]
}

/// The 4-point IDCT of `f`, each element a vector of independent lanes.
#[inline(always)]
fn idct4(f: [Lanes; 4]) -> [Lanes; 4] {
    const K: f32 = 0.353_553_38; // 1 / (2√2)
    const A: f32 = 0.461_939_77; // cos(π/8) / 2
    const B: f32 = 0.191_341_72; // cos(3π/8) / 2
    let even0 = lanes(|i| K * (f[0][i] + f[2][i]));
    let even1 = lanes(|i| K * (f[0][i] - f[2][i]));
    let odd0 = lanes(|i| A * f[1][i] + B * f[3][i]);
    let odd1 = lanes(|i| B * f[1][i] - A * f[3][i]);
    [
        lanes(|i| even0[i] + odd0[i]),
        lanes(|i| even1[i] + odd1[i]),
        lanes(|i| even1[i] - odd1[i]),
        lanes(|i| even0[i] - odd0[i]),
    ]
}

#[inline(always)]
fn transpose(m: [Lanes; 4]) -> [Lanes; 4] {
    // (Not `array::map`, which LLVM leaves out of line here.)
    [
        lanes(|r| m[r][0]),
        lanes(|r| m[r][1]),
        lanes(|r| m[r][2]),
        lanes(|r| m[r][3]),
    ]
}

/// The 4×4 IDCT of a block's corner to pixels, row major.
#[cfg(not(target_arch = "x86_64"))]
fn idct4x4(coefs: &Coefs) -> [u8; 16] {
    idct4x4_portable(coefs)
}

/// The 4×4 IDCT in plain Rust: columns (lanes: horizontal frequency),
/// then rows (lanes: y).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub(crate) fn idct4x4_portable(coefs: &Coefs) -> [u8; 16] {
    let row = |u: usize| lanes(|v| coefs[u * 4 + v]);
    let columns = idct4(transpose(idct4([row(0), row(1), row(2), row(3)])));
    let mut pixels = [0u8; 16];
    for (i, p) in pixels.iter_mut().enumerate() {
        // Saturating: clamps to 0..=255.
        *p = (columns[i % 4][i / 4] + 128.5) as u8;
    }
    pixels
}

/// The 4×4 IDCT of a block's corner to pixels, row major, with SSE2.
#[cfg(target_arch = "x86_64")]
fn idct4x4(coefs: &Coefs) -> [u8; 16] {
    // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
    unsafe { idct4x4_sse2(coefs) }
}

/// The same butterfly as [`idct4x4_portable`] on whole rows, which LLVM
/// does not manage to vectorize by itself (it then costs 3 to 4 times as
/// much).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
pub(crate) fn idct4x4_sse2(coefs: &Coefs) -> [u8; 16] {
    use std::arch::x86_64::*;
    type V = __m128;
    #[target_feature(enable = "sse2")]
    fn pass([f0, f1, f2, f3]: [V; 4]) -> [V; 4] {
        let (k, a, b) = (
            _mm_set1_ps(0.353_553_38),
            _mm_set1_ps(0.461_939_77),
            _mm_set1_ps(0.191_341_72),
        );
        let even0 = _mm_mul_ps(k, _mm_add_ps(f0, f2));
        let even1 = _mm_mul_ps(k, _mm_sub_ps(f0, f2));
        let odd0 = _mm_add_ps(_mm_mul_ps(a, f1), _mm_mul_ps(b, f3));
        let odd1 = _mm_sub_ps(_mm_mul_ps(b, f1), _mm_mul_ps(a, f3));
        [
            _mm_add_ps(even0, odd0),
            _mm_add_ps(even1, odd1),
            _mm_sub_ps(even1, odd1),
            _mm_sub_ps(even0, odd0),
        ]
    }
    #[target_feature(enable = "sse2")]
    fn transpose([r0, r1, r2, r3]: [V; 4]) -> [V; 4] {
        let (t0, t1) = (_mm_unpacklo_ps(r0, r1), _mm_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm_unpacklo_ps(r2, r3), _mm_unpackhi_ps(r2, r3));
        [
            _mm_movelh_ps(t0, t2),
            _mm_movehl_ps(t2, t0),
            _mm_movelh_ps(t1, t3),
            _mm_movehl_ps(t3, t1),
        ]
    }
    let c = coefs;
    let row = |i: usize| _mm_set_ps(c[i + 3], c[i + 2], c[i + 1], c[i]);
    let [r0, r1, r2, r3] = transpose(pass(transpose(pass([row(0), row(4), row(8), row(12)]))));
    let bias = _mm_set1_ps(128.5);
    let int = |r: V| _mm_cvttps_epi32(_mm_add_ps(r, bias));
    // Saturating packs: i32 -> i16 -> u8, clamping to 0..=255.
    let packed = _mm_packus_epi16(
        _mm_packs_epi32(int(r0), int(r1)),
        _mm_packs_epi32(int(r2), int(r3)),
    );
    let low = _mm_cvtsi128_si64(packed).to_le_bytes();
    let high = _mm_cvtsi128_si64(_mm_unpackhi_epi64(packed, packed)).to_le_bytes();
    let mut pixels = [0u8; 16];
    pixels[..8].copy_from_slice(&low);
    pixels[8..].copy_from_slice(&high);
    pixels
}

impl Basis {
    pub(crate) fn new(n: usize) -> Basis {
        Basis { n }
    }

    /// Writes the `n`×`n` pixels of a block whose corner coefficients are
    /// `coefs` into `out`: pixel (x, y) at `y * row_bytes + x * step`.
    #[inline]
    pub(crate) fn idct(&self, coefs: &Coefs, out: &mut [u8], row_bytes: usize, step: usize) {
        const K2: f32 = 0.125; // (1 / (2√2))²
        match self.n {
            4 => {
                let pixels = idct4x4(coefs);
                let out = &mut out[..3 * row_bytes + 3 * step + 1];
                for (y, line) in pixels.chunks_exact(4).enumerate() {
                    if step == 1 {
                        out[y * row_bytes..y * row_bytes + 4].copy_from_slice(line);
                    } else {
                        for (x, &p) in line.iter().enumerate() {
                            out[y * row_bytes + x * step] = p;
                        }
                    }
                }
            }
            2 => {
                // x[k] = (F[0] ± F[1]) / (2√2) in each direction.
                let [f00, f01, f10, f11] = [coefs[0], coefs[1], coefs[2], coefs[3]];
                let (s0, d0, s1, d1) = (f00 + f10, f00 - f10, f01 + f11, f01 - f11);
                let pixel = |v: f32| (v * K2 + 128.5) as u8;
                out[0] = pixel(s0 + s1);
                out[step] = pixel(s0 - s1);
                out[row_bytes] = pixel(d0 + d1);
                out[row_bytes + step] = pixel(d0 - d1);
            }
            _ => out[0] = (coefs[0] / 8.0 + 128.5) as u8,
        }
    }
}
