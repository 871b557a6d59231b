//! Direct kernels for convolutions with **one input channel** (the image side of a conv
//! encoder's first layer and of a conv decoder's last transposed convolution).
//!
//! Unfolded, such a layer is a product with only `kh·kw` (16) terms per output element, so
//! `gemm` spends more time on packing, loop set-up and its output than on multiply-adds: the
//! four ops of the conv β-VAE's 1-channel layers took 14 % of its conv time for 6 % of the
//! multiply-adds (BENCHMARKS.md). Here each image is copied once into a zero-padded buffer
//! (so that no tap needs a bounds check), and AVX2/FMA kernels keep a block of outputs in
//! registers over all taps:
//!
//! - forward, `y[p, c] = b[c] + Σ_t x̃[p, t] · W[c, t]` for channels-last `y` (2 pixels × 32
//!   channels per block: 8 accumulators and 4 weight vectors, so that nothing spills from
//!   AVX2's 16 registers), bias and ReLU applied before the one store;
//! - weight gradient, `∂W[c, t] += Σ_p x̃[p, t] · g[p, c]` over channels-last `g` (2 taps ×
//!   32 channels per block, summed over every pixel of the image);
//! - adjoint (the transposed convolution's forward pass), `x += fold(g · W)` with the `kh·kw`
//!   column values of 6 pixels per block in registers, added into the padded image, then
//!   copied out with the bias (and ReLU).
//!
//! `x̃[p, t]` is input pixel `(oy·sh + i − ph, ox·sw + j − pw)` for output pixel `p = (oy,
//! ox)` and tap `t = (i, j)`, zero outside the image. Every image is summed in a fixed order,
//! so results do not depend on the thread count, like the rest of [`super`].
//!
//! The kernels run where [`applies`] holds (one input channel, output channels a multiple of
//! 8, AVX2 and FMA on the CPU); [`super`]'s unfolded `gemm` path serves every other case, and
//! the tests compare both.
use super::Geometry;

/// Whether the direct kernels serve `g`: one input channel, a multiple of 8 output channels,
/// not a 1 × 1 layer, and a CPU with AVX2 and FMA.
pub(super) fn applies(g: &Geometry) -> bool {
    g.c_in == 1 && g.c_out.is_multiple_of(8) && !g.pointwise() && avx2_fma()
}

/// Refuses a geometry (or CPU) the kernels do not serve: their callers check [`applies`].
fn assert_cpu(g: &Geometry) {
    assert!(applies(g), "single-channel kernels for {g:?} on this CPU");
}

/// Whether this CPU has AVX2 and FMA.
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// One image zero-padded so that every tap of every output pixel lies inside it: `hp × wp`
/// with `hp = (oh − 1)·sh + kh`, `wp = (ow − 1)·sw + kw`; input pixel `(r, c)` at padded
/// `(r + ph, c + pw)`. Holds each output pixel's first tap and each tap's offset.
pub(super) struct Padded {
    hp: usize,
    wp: usize,
    /// Offset in the padded image of tap `(i, j)`: `i·wp + j`.
    taps: Vec<usize>,
    /// Offset in the padded image of output pixel `(oy, ox)`'s tap `(0, 0)`.
    bases: Vec<usize>,
}

impl Padded {
    /// The padded layout for `g`.
    pub(super) fn new(g: &Geometry) -> Self {
        let (hp, wp) = ((g.oh - 1) * g.sh + g.kh, (g.ow - 1) * g.sw + g.kw);
        let taps = (0..g.kh)
            .flat_map(|i| (0..g.kw).map(move |j| i * wp + j))
            .collect();
        let bases = (0..g.oh)
            .flat_map(|oy| (0..g.ow).map(move |ox| oy * g.sh * wp + ox * g.sw))
            .collect();
        Self {
            hp,
            wp,
            taps,
            bases,
        }
    }

    /// The padded column of input column 0, and how many input columns (from 0) lie inside
    /// the padded width: `None` when none do.
    fn columns(&self, g: &Geometry) -> Option<(usize, usize)> {
        let hi = g.w.min(self.wp.checked_sub(g.pw)?);
        (hi > 0).then_some((g.pw, hi))
    }

    /// Input row `r`'s padded row, if it lies inside the padded height.
    fn row(&self, g: &Geometry, r: usize) -> Option<usize> {
        Some(r + g.ph).filter(|&pr| pr < self.hp)
    }

    /// [`Padded::pad`] for the kernels: checks that they serve `g` on this CPU and that `x`
    /// is one image.
    fn pad_checked(&self, g: &Geometry, x: &[f32], buf: &mut Vec<f32>) {
        assert_cpu(g);
        assert_eq!(
            x.len(),
            g.h * g.w,
            "single-channel kernels: one input image"
        );
        self.pad(g, x, buf);
    }

    /// Copies the image `x: [h·w]` into `buf`, zero around it.
    fn pad(&self, g: &Geometry, x: &[f32], buf: &mut Vec<f32>) {
        buf.clear();
        buf.resize(self.hp * self.wp, 0.0);
        let Some((at, cols)) = self.columns(g) else {
            return;
        };
        for (r, src) in x.chunks_exact(g.w).enumerate() {
            if let Some(pr) = self.row(g, r) {
                let to = pr * self.wp + at;
                buf[to..to + cols].copy_from_slice(&src[..cols]);
            }
        }
    }
}

/// Channels per register block for `c` channels: 32 (4 vectors) while they last, then 16,
/// then 8. Returns (first channel, vectors) per block.
fn channel_blocks(c: usize) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let mut c0 = 0;
    for nv in [4, 2, 1] {
        while c - c0 >= 8 * nv {
            blocks.push((c0, nv));
            c0 += 8 * nv;
        }
    }
    blocks
}

/// The forward pass of one image: `x: [h·w]`, `w_t: [kh·kw, c_out]` (the weight transposed),
/// `bias: [c_out]` (zeros for none); writes every element of `y: [oh·ow, c_out]`
/// (channels-last), with ReLU if asked. `buf` is the padded image's scratch.
pub(super) fn forward_image(
    g: &Geometry,
    pad: &Padded,
    x: &[f32],
    (w_t, bias): (&[f32], &[f32]),
    relu: bool,
    y: &mut [std::mem::MaybeUninit<f32>],
    buf: &mut Vec<f32>,
) {
    let (c, t) = (g.c_out, g.kh * g.kw);
    assert!(
        w_t.len() == t * c && bias.len() == c && y.len() == g.p() * c,
        "single-channel forward: operand sizes"
    );
    pad.pad_checked(g, x, buf);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has AVX2 and FMA (`applies`); every read lies in the padded image (the
    // bases and taps are built for it), `w_t` and `bias` are as long as asserted above, and
    // every write lies in `y` (p·c elements).
    unsafe {
        avx::forward(pad, buf, (w_t, bias), relu, c, y.as_mut_ptr().cast());
    }
}

/// Adds one image's weight gradient to `dw_t: [kh·kw, c_out]` (transposed):
/// `dw_t[t, c] += Σ_p x̃[p, t] · gy[p, c]` for `x: [h·w]` and channels-last `gy: [oh·ow,
/// c_out]`. `buf` is the padded image's scratch.
pub(super) fn weight_grad_image(
    g: &Geometry,
    pad: &Padded,
    x: &[f32],
    gy: &[f32],
    dw_t: &mut [f32],
    buf: &mut Vec<f32>,
) {
    let (c, t) = (g.c_out, g.kh * g.kw);
    assert!(
        gy.len() == g.p() * c && dw_t.len() == t * c,
        "single-channel weight gradient: operand sizes"
    );
    pad.pad_checked(g, x, buf);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `forward_image`; every pixel of `gy` and every element of `dw_t` is in
    // bounds by the sizes asserted above.
    unsafe {
        avx::weight_grad(pad, buf, gy, c, dw_t);
    }
}

/// The weight as the adjoint reads it: `w: [c_out, kh·kw]` with each row zero-padded to a
/// multiple of 8 taps.
pub(super) fn adjoint_weight(g: &Geometry, w: &[f32]) -> Vec<f32> {
    let t = g.kh * g.kw;
    let tp = t.next_multiple_of(8);
    let mut out = vec![0.0f32; g.c_out * tp];
    for (dst, src) in out.chunks_exact_mut(tp).zip(w.chunks_exact(t)) {
        dst[..t].copy_from_slice(src);
    }
    out
}

/// The adjoint of one image: `x = bias + fold(gy · W)`, then ReLU if asked, for channels-last
/// `gy: [oh·ow, c_out]` and `w_pad` from [`adjoint_weight`]; writes every element of `x:
/// [h·w]`. `buf` is the padded image's scratch (the folded sums).
pub(super) fn adjoint_image(
    g: &Geometry,
    pad: &Padded,
    gy: &[f32],
    (w_pad, bias): (&[f32], f32),
    relu: bool,
    x: &mut [std::mem::MaybeUninit<f32>],
    buf: &mut Vec<f32>,
) {
    let (c, t) = (g.c_out, g.kh * g.kw);
    assert!(
        gy.len() == g.p() * c && w_pad.len() == c * t.next_multiple_of(8) && x.len() == g.h * g.w,
        "single-channel adjoint: operand sizes"
    );
    assert_cpu(g);
    buf.clear();
    buf.resize(pad.hp * pad.wp, 0.0);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in `forward_image`; the folded writes lie in the padded image `buf`.
    unsafe {
        avx::adjoint(pad, gy, w_pad, (c, t), buf);
    }
    let x = crate::host::fill_uninit(x, bias);
    if let Some((at, cols)) = pad.columns(g) {
        for (r, dst) in x.chunks_exact_mut(g.w).enumerate() {
            if let Some(pr) = pad.row(g, r) {
                let from = pr * pad.wp + at;
                for (d, s) in dst[..cols].iter_mut().zip(&buf[from..from + cols]) {
                    *d += *s;
                }
            }
        }
    }
    if relu {
        x.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    //! The AVX2/FMA kernels. Callers guarantee the CPU features and the operand sizes.
    use super::{Padded, channel_blocks};
    use std::arch::x86_64::*;

    /// See [`super::forward_image`]: `y` points at `p·c` writable elements.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward(
        pad: &Padded,
        xp: &[f32],
        (w_t, bias): (&[f32], &[f32]),
        relu: bool,
        c: usize,
        y: *mut f32,
    ) {
        let p = pad.bases.len();
        for (c0, nv) in channel_blocks(c) {
            // SAFETY (all calls): forwarded from the caller; `c0 + 8·nv ≤ c`.
            unsafe {
                match nv {
                    4 => forward_block::<4, 2>(pad, xp, (w_t, bias), relu, (c, c0), (0, p), y),
                    2 => forward_block::<2, 5>(pad, xp, (w_t, bias), relu, (c, c0), (0, p), y),
                    _ => forward_block::<1, 12>(pad, xp, (w_t, bias), relu, (c, c0), (0, p), y),
                }
            }
        }
    }

    /// Pixels `from..to` in blocks of `PB` (the rest one by one), channels `c0..c0 + 8·NV`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_block<const NV: usize, const PB: usize>(
        pad: &Padded,
        xp: &[f32],
        (w_t, bias): (&[f32], &[f32]),
        relu: bool,
        (c, c0): (usize, usize),
        (from, to): (usize, usize),
        y: *mut f32,
    ) {
        let (x, wt) = (xp.as_ptr(), w_t.as_ptr().wrapping_add(c0));
        let mut p0 = from;
        while p0 < to {
            if to - p0 < PB {
                // SAFETY: forwarded; the remaining pixels one at a time.
                unsafe { forward_block::<NV, 1>(pad, xp, (w_t, bias), relu, (c, c0), (p0, to), y) };
                return;
            }
            let bases: [usize; PB] = std::array::from_fn(|q| pad.bases[p0 + q]);
            // SAFETY: bias[c0..c0 + 8·NV], w_t rows of c elements from c0, the padded image at
            // base + tap, and y's pixels p0..p0 + PB are all in bounds (see the callers).
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); NV]; PB];
                for row in acc.iter_mut() {
                    for (v, a) in row.iter_mut().enumerate() {
                        *a = _mm256_loadu_ps(bias.as_ptr().add(c0 + 8 * v));
                    }
                }
                for (t, &off) in pad.taps.iter().enumerate() {
                    let wrow = wt.add(t * c);
                    let wv: [__m256; NV] =
                        std::array::from_fn(|v| _mm256_loadu_ps(wrow.add(8 * v)));
                    for (row, &base) in acc.iter_mut().zip(&bases) {
                        let u = _mm256_broadcast_ss(&*x.add(base + off));
                        for (a, &w) in row.iter_mut().zip(&wv) {
                            *a = _mm256_fmadd_ps(u, w, *a);
                        }
                    }
                }
                let zero = _mm256_setzero_ps();
                for (q, row) in acc.iter().enumerate() {
                    let out = y.add((p0 + q) * c + c0);
                    for (v, &a) in row.iter().enumerate() {
                        let a = if relu { _mm256_max_ps(a, zero) } else { a };
                        _mm256_storeu_ps(out.add(8 * v), a);
                    }
                }
            }
            p0 += PB;
        }
    }

    /// See [`super::weight_grad_image`].
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_grad(
        pad: &Padded,
        xp: &[f32],
        gy: &[f32],
        c: usize,
        dw_t: &mut [f32],
    ) {
        let t = pad.taps.len();
        for (c0, nv) in channel_blocks(c) {
            // SAFETY (all calls): forwarded from the caller; `c0 + 8·nv ≤ c`.
            unsafe {
                match nv {
                    4 => weight_grad_block::<4, 2>(pad, xp, gy, (c, c0), (0, t), dw_t),
                    2 => weight_grad_block::<2, 4>(pad, xp, gy, (c, c0), (0, t), dw_t),
                    _ => weight_grad_block::<1, 8>(pad, xp, gy, (c, c0), (0, t), dw_t),
                }
            }
        }
    }

    /// Taps `from..to` in blocks of `TB` (the rest one by one), channels `c0..c0 + 8·NV`,
    /// each block summed over every pixel in registers, then added to `dw_t`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn weight_grad_block<const NV: usize, const TB: usize>(
        pad: &Padded,
        xp: &[f32],
        gy: &[f32],
        (c, c0): (usize, usize),
        (from, to): (usize, usize),
        dw_t: &mut [f32],
    ) {
        let (x, g) = (xp.as_ptr(), gy.as_ptr().wrapping_add(c0));
        let mut t0 = from;
        while t0 < to {
            if to - t0 < TB {
                // SAFETY: forwarded; the remaining taps one at a time.
                unsafe { weight_grad_block::<NV, 1>(pad, xp, gy, (c, c0), (t0, to), dw_t) };
                return;
            }
            let taps: [usize; TB] = std::array::from_fn(|k| pad.taps[t0 + k]);
            // SAFETY: gy's pixels hold c elements from c0, the padded image at base + tap and
            // dw_t's rows t0..t0 + TB are in bounds (see the callers).
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); NV]; TB];
                for (p, &base) in pad.bases.iter().enumerate() {
                    let grow = g.add(p * c);
                    let gv: [__m256; NV] =
                        std::array::from_fn(|v| _mm256_loadu_ps(grow.add(8 * v)));
                    for (row, &off) in acc.iter_mut().zip(&taps) {
                        let u = _mm256_broadcast_ss(&*x.add(base + off));
                        for (a, &gv) in row.iter_mut().zip(&gv) {
                            *a = _mm256_fmadd_ps(u, gv, *a);
                        }
                    }
                }
                for (k, row) in acc.iter().enumerate() {
                    let out = dw_t.as_mut_ptr().add((t0 + k) * c + c0);
                    for (v, &a) in row.iter().enumerate() {
                        let d = out.add(8 * v);
                        _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), a));
                    }
                }
            }
            t0 += TB;
        }
    }

    /// See [`super::adjoint_image`]: the column values of each pixel, `Σ_c gy[p, c] ·
    /// w_pad[c, ·]`, 8 or 16 taps at a time in registers, added into the padded image `sums`
    /// pixel by pixel in order.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn adjoint(
        pad: &Padded,
        gy: &[f32],
        w_pad: &[f32],
        (c, t): (usize, usize),
        sums: &mut [f32],
    ) {
        let mut t0 = 0;
        while t0 < t {
            // SAFETY (both calls): forwarded from the caller; taps t0.. of w_pad's rows exist
            // (rows padded to a multiple of 8).
            unsafe {
                let p = pad.bases.len();
                if t - t0 > 8 {
                    adjoint_block::<2, 6>(pad, gy, w_pad, (c, t, t0), (0, p), sums);
                    t0 += 16;
                } else {
                    adjoint_block::<1, 12>(pad, gy, w_pad, (c, t, t0), (0, p), sums);
                    t0 += 8;
                }
            }
        }
    }

    /// Taps `t0..t0 + 8·TV` (those below `t`) of pixels `from..to`, `PB` pixels at a time
    /// (the rest one by one).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn adjoint_block<const TV: usize, const PB: usize>(
        pad: &Padded,
        gy: &[f32],
        w_pad: &[f32],
        (c, t, t0): (usize, usize, usize),
        (from, to): (usize, usize),
        sums: &mut [f32],
    ) {
        let tp = t.next_multiple_of(8);
        let taps = &pad.taps[t0..t0 + (t - t0).min(8 * TV)];
        let (g, w) = (gy.as_ptr(), w_pad.as_ptr().wrapping_add(t0));
        let mut p0 = from;
        while p0 < to {
            if to - p0 < PB {
                // SAFETY: forwarded; the remaining pixels one at a time.
                unsafe { adjoint_block::<TV, 1>(pad, gy, w_pad, (c, t, t0), (p0, to), sums) };
                return;
            }
            let mut cols = [[0.0f32; 16]; PB];
            // SAFETY: gy's pixels p0..p0 + PB hold c elements, w_pad's c rows hold tp ≥ t0 +
            // 8·TV elements (see the callers), and `cols` rows hold 16 ≥ 8·TV.
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); TV]; PB];
                for ch in 0..c {
                    let wrow = w.add(ch * tp);
                    let wv: [__m256; TV] =
                        std::array::from_fn(|v| _mm256_loadu_ps(wrow.add(8 * v)));
                    for (q, row) in acc.iter_mut().enumerate() {
                        let u = _mm256_broadcast_ss(&*g.add((p0 + q) * c + ch));
                        for (a, &w) in row.iter_mut().zip(&wv) {
                            *a = _mm256_fmadd_ps(u, w, *a);
                        }
                    }
                }
                for (col, row) in cols.iter_mut().zip(&acc) {
                    for (v, &a) in row.iter().enumerate() {
                        _mm256_storeu_ps(col.as_mut_ptr().add(8 * v), a);
                    }
                }
            }
            for (q, col) in cols.iter().enumerate() {
                let base = pad.bases[p0 + q];
                for (&off, &v) in taps.iter().zip(col) {
                    sums[base + off] += v;
                }
            }
            p0 += PB;
        }
    }
}
