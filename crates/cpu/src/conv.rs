//! 2-D convolutions and transposed convolutions (bias, optionally then ReLU) as fused,
//! differentiable operations on the CPU, for `f32` NCHW tensors on Burn's `flex` backend.
//!
//! burn-flex 0.22 runs a convolution as: a copy of the input to NHWC on the calling thread,
//! im2col per 512-pixel tile, a `gemm` into a fresh tile buffer, and a strided scalar scatter
//! of that buffer back to NCHW; a transposed convolution as `gemm` plus a scatter-add per
//! image. It overrides no backward op, so Burn's defaults apply, and the weight gradients
//! become convolutions with batch and channels swapped (one task for a 1-channel layer, with
//! the swapped views copied first). On the conv β-VAE that left the second core idle a third
//! of the time and spent more time moving data than multiplying (BENCHMARKS.md). Here every
//! operation splits its work over **images**, one thread per image at a time, with one
//! scratch buffer per thread:
//!
//! - forward: `y_b = W · unfold(x_b)`, written by `gemm` pixel by pixel (`unfold(x_b)ᵀ · Wᵀ`)
//!   straight into image `b` of the channels-last output, which starts as the bias (so no
//!   zero-fill and no separate add); ReLU in place. A 1×1 stride-1 unpadded convolution
//!   multiplies `x_b` itself (no unfold).
//! - the adjoint (the input gradient of a convolution, and the forward pass of a transposed
//!   convolution): `cols = Wᵀ · g_b`, folded back (col2im, a scatter-add) into image `b`,
//!   channels-last for layers with many input channels.
//! - weight gradient: `∂W = Σ_b g_b · unfold(x_b)ᵀ`, images accumulated by `gemm` into one
//!   partial sum per fixed group of images, the partials added in order; bias gradient: the
//!   sums of each channel's plane, grouped the same way.
//!
//! Outputs stay channels-last (`Order::Pixels`): Burn sees NCHW tensors with permuted
//! strides, the next convolution reads them without a transpose, and every kernel reads its
//! inputs in either order.
//!
//! A transposed convolution is the adjoint of the convolution that maps its output shape back
//! to its input shape with the same kernel, stride and padding, and its weight
//! `[c_in, c_out, kh, kw]` is that convolution's weight as it lies in memory; so both layers
//! use the three kernels above, in swapped roles.
//!
//! **Invariant:** the work is split over images, and the groups of images whose weight
//! gradients are summed together depend only on the batch size, so results do not depend on
//! the thread count (tested bit for bit).
//!
//! Layers with **one input channel** (an image's first conv, a decoder's last transposed
//! conv) have only `kh·kw` terms per product, too few for `gemm` to pay off; on CPUs with AVX2
//! and FMA they run direct kernels over a zero-padded copy of each image instead
//! (`conv/single.rs`).
//!
//! **Safety.** Operands reach `gemm` as bounds-checked [`MatRef`]s through `gemm_serial`,
//! which checks the inner sizes and the output's length; unfold and fold are safe, indexed
//! loops. The only `unsafe` blocks are the output buffers written in full before they are
//! read (`new_output`), the AVX transposes, and `single`'s AVX2 kernels, whose callers
//! assert every operand's size first.
//!
//! `ae_core::conv` calls [`conv2d`] and [`conv_transpose2d`] when [`applies`] holds and a
//! [`Geometry`] exists for the layer (no groups, no dilation, explicit padding), Burn's
//! `Conv2d`/`ConvTranspose2d` otherwise; `ae-core`'s tests compare both paths on values and
//! gradients.
use crate::host::{
    LayerState, contiguous, fill_rows, fill_uninit, filled, is_flex_f32, record_layer, tensor,
};
use crate::linear::{MatRef, checked, gemm_serial, gemm_serial_new};
use burn::backend::autodiff::{
    Autodiff,
    checkpoint::{base::Checkpointer, strategy::CheckpointStrategy},
    grads::Gradients,
    ops::{Backward, Ops},
};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;
use std::borrow::Cow;
use std::convert::Infallible;
use std::mem::MaybeUninit;

pub mod profile;
mod single;

/// The shape of one 2-D convolution (no groups, no dilation) over one image: input
/// `[c_in, h, w]`, weight `[c_out, c_in, kh, kw]`, output `[c_out, oh, ow]`, stride
/// `(sh, sw)`, and `(ph, pw)` zero rows and columns padded before the first input row and
/// column. Output pixel `(oy, ox)` reads input rows `oy·sh + i − ph` and columns
/// `ox·sw + j − pw` for kernel taps `(i, j)`; taps outside the image read zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub sh: usize,
    /// Horizontal stride.
    pub sw: usize,
    /// Zero rows before the first input row.
    pub ph: usize,
    /// Zero columns before the first input column.
    pub pw: usize,
}

impl Geometry {
    /// The convolution of `x: [batch, c_in, h, w]` with `w: [c_out, c_in, kh, kw]`, `stride`
    /// and `padding` `[(top, bottom), (left, right)]`, as Burn's `conv2d` computes it
    /// (`oh = (h + top + bottom − kh) / sh + 1`). `None` when the shapes do not fit: input
    /// channels differ, a zero size or stride, or a kernel larger than the padded input.
    pub fn conv2d(
        x: [usize; 4],
        w: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
    ) -> Option<Self> {
        let [_, c_in, h, wd] = x;
        let [c_out, w_in, kh, kw] = w;
        let [(top, bottom), (left, right)] = padding;
        if c_in != w_in || stride.contains(&0) || [c_in, h, wd, c_out, kh, kw].contains(&0) {
            return None;
        }
        let oh = (h + top + bottom).checked_sub(kh)? / stride[0] + 1;
        let ow = (wd + left + right).checked_sub(kw)? / stride[1] + 1;
        Some(Self {
            c_in,
            h,
            w: wd,
            c_out,
            oh,
            ow,
            kh,
            kw,
            sh: stride[0],
            sw: stride[1],
            ph: top,
            pw: left,
        })
    }

    /// The convolution whose adjoint is the transposed convolution of `x: [batch, c_in, h, w]`
    /// with `w: [c_in, c_out, kh, kw]`, `stride`, `padding` and `padding_out`, as Burn's
    /// `conv_transpose2d` computes it (`h_out = (h − 1)·sh + kh − 2·ph + padding_out`): that
    /// convolution maps `[c_out, h_out, w_out]` to `[c_in, h, w]`. `None` when the shapes do
    /// not fit (channels differ, a zero size or stride, an empty output).
    pub fn conv_transpose2d(
        x: [usize; 4],
        w: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        padding_out: [usize; 2],
    ) -> Option<Self> {
        let [_, c_in, h, wd] = x;
        let [w_in, c_out, kh, kw] = w;
        if c_in != w_in || stride.contains(&0) || [c_in, h, wd, c_out, kh, kw].contains(&0) {
            return None;
        }
        let h_out = ((h - 1) * stride[0] + kh + padding_out[0]).checked_sub(2 * padding[0])?;
        let w_out = ((wd - 1) * stride[1] + kw + padding_out[1]).checked_sub(2 * padding[1])?;
        if h_out == 0 || w_out == 0 {
            return None;
        }
        Some(Self {
            c_in: c_out,
            h: h_out,
            w: w_out,
            c_out: c_in,
            oh: h,
            ow: wd,
            kh,
            kw,
            sh: stride[0],
            sw: stride[1],
            ph: padding[0],
            pw: padding[1],
        })
    }

    /// Rows of the unfolded input: `c_in·kh·kw`.
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output pixels per channel: `oh·ow`.
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Elements of one input image.
    fn in_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// Elements of one output image.
    fn out_len(&self) -> usize {
        self.c_out * self.p()
    }

    /// A 1×1, stride-1, unpadded convolution: the unfolded input is the input itself.
    fn pointwise(&self) -> bool {
        (self.kh, self.kw, self.sh, self.sw, self.ph, self.pw) == (1, 1, 1, 1, 0, 0)
            && (self.oh, self.ow) == (self.h, self.w)
    }

    /// The input row read by output row `oy` through kernel row `i`, if inside the image.
    fn in_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.sh + i)
            .checked_sub(self.ph)
            .filter(|&r| r < self.h)
    }

    /// The output columns `lo..hi` whose input column `ox·sw + j − pw` (kernel column `j`)
    /// lies inside the image, and the input column of `lo`; `None` if there are none.
    fn in_cols(&self, j: usize) -> Option<(usize, usize, usize)> {
        let lo = (self.pw.saturating_sub(j)).div_ceil(self.sw);
        let hi = ((self.w + self.pw).checked_sub(j + 1)? / self.sw + 1).min(self.ow);
        (lo < hi).then(|| (lo, hi, lo * self.sw + j - self.pw))
    }
}

impl Geometry {
    /// Columns of one phase of an input row (see [`Scratch::split_phases`]).
    fn phase_len(&self) -> usize {
        self.w.div_ceil(self.sw)
    }

    /// Elements of one input image split by phase: `c_in·h` rows of `sw` phases.
    fn phased_len(&self) -> usize {
        self.c_in * self.h * self.sw * self.phase_len()
    }
}

/// How one image is unfolded for `gemm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// A 1×1, stride-1, unpadded convolution: the image itself is the unfolded input.
    Pointwise,
    /// `[c_in·kh·kw, oh·ow]`, row `(c, i, j)`: for few input channels (runs of `ow` values).
    Rows,
    /// `[oh·ow, kh·kw·c_in]`, row `(oy, ox)` with columns `(i, j, c)`, from the image in
    /// channels-last order: for many input channels (runs of `kw·c_in` values). The weight is
    /// used in the matching order `[c_out, kh, kw, c_in]`.
    Pixels,
}

impl Geometry {
    /// The unfolding used for this convolution: the one with the longer contiguous runs.
    fn layout(&self) -> Layout {
        if self.pointwise() {
            Layout::Pointwise
        } else if self.kw * self.c_in > self.ow {
            Layout::Pixels
        } else {
            Layout::Rows
        }
    }

    /// Images multiplied in one `gemm` product: with `Layout::Pixels` (and a 1 × 1 layer
    /// whose input is channels-last), the unfolded images are stacked (`[images·oh·ow,
    /// kh·kw·c_in]`) up to about 256 rows, so that small feature maps make products of a
    /// useful size while the unfolded block stays in the core's L2 cache (256 rows: 9 % less
    /// conv time on the conv β-VAE than 512, 4 % less than 128; BENCHMARKS.md); one image
    /// otherwise.
    fn images_per_product(&self) -> usize {
        match self.layout() {
            Layout::Pixels | Layout::Pointwise => (256 / self.p()).clamp(1, 16),
            Layout::Rows => 1,
        }
    }

    /// Whether the products run over stacked channels-last images for an input in `order`:
    /// always for `Layout::Pixels`, for a 1 × 1 layer when its input is channels-last.
    fn stacked(&self, order: Order) -> bool {
        match self.layout() {
            Layout::Pixels => true,
            Layout::Pointwise => order == Order::Pixels,
            Layout::Rows => false,
        }
    }

    /// The kernel columns `jlo..jhi` whose input column `ox·sw + j − pw` (output column `ox`)
    /// lies inside the image, and the input column of `jlo` (`jlo == jhi`: none).
    fn pixel_taps(&self, ox: usize) -> (usize, usize, usize) {
        let ix0 = (ox * self.sw) as isize - self.pw as isize;
        let jlo = (-ix0).clamp(0, self.kw as isize) as usize;
        let jhi = (self.w as isize - ix0).clamp(0, self.kw as isize) as usize;
        (jlo, jhi.max(jlo), (ix0 + jlo as isize).max(0) as usize)
    }
}

/// How an activation's elements lie in memory.
///
/// The kernels write their outputs channels-last wherever their products produce them pixel
/// by pixel, and hand them to Burn as NCHW tensors with permuted strides
/// ([`activation_tensor`]): the next convolution reads them without a transpose, and any other
/// Burn operation sees an ordinary strided tensor. With one channel, or a 1 × 1 map, both
/// orders are the same memory, and such a tensor is contiguous NCHW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// `[batch, channels, h, w]` (NCHW): Burn's contiguous layout.
    Planes,
    /// `[batch, h, w, channels]` (NHWC).
    Pixels,
}

/// The order of a 4-D flex tensor the kernels can read in place: `Planes` when it is
/// contiguous, `Pixels` when it is a whole NHWC buffer seen as NCHW; `None` for any other
/// view.
fn order_of(t: &FlexTensor) -> Option<Order> {
    if t.as_slice::<f32>().is_some() {
        return Some(Order::Planes);
    }
    let layout = t.layout();
    let s = layout.shape();
    if s.num_dims() != 4 || layout.start_offset() != 0 {
        return None;
    }
    let (c, h, w) = (s[1], s[2], s[3]);
    let nhwc = [(h * w * c) as isize, 1, (w * c) as isize, c as isize];
    let whole = t.storage::<f32>().len() == s.num_elements();
    (layout.strides() == nhwc && whole).then_some(Order::Pixels)
}

/// An activation's values in the order they lie in: borrowed for the two orders the kernels
/// read, copied to NCHW for any other view.
fn activation(t: &FlexTensor) -> (Cow<'_, [f32]>, Order) {
    match order_of(t) {
        Some(Order::Pixels) => (Cow::Borrowed(t.storage::<f32>()), Order::Pixels),
        _ => (contiguous(t), Order::Planes),
    }
}

/// A flex tensor `[batch, channels, h, w]` owning `values`, which lie in `order`.
fn activation_tensor(values: Vec<f32>, [n, c, h, w]: [usize; 4], order: Order) -> FlexTensor {
    match order {
        Order::Pixels if c > 1 && h * w > 1 => tensor(values, [n, h, w, c]).permute(&[0, 3, 1, 2]),
        _ => tensor(values, [n, c, h, w]),
    }
}

/// Images `values: [images, channels, plane]` in `order`, as planes (borrowed when they
/// already are, or when both orders are the same memory).
fn in_planes(values: &[f32], order: Order, channels: usize, plane: usize) -> Cow<'_, [f32]> {
    if order == Order::Planes || channels == 1 || plane == 1 {
        return Cow::Borrowed(values);
    }
    let mut out = vec![0.0f32; values.len()];
    out.par_chunks_mut(channels * plane)
        .zip(values.par_chunks(channels * plane))
        .for_each(|(dst, src)| transpose(src, dst, plane, channels));
    Cow::Owned(out)
}

/// One image's values `[channels, plane]` in `order`, as a `channels × plane` matrix.
fn plane_matrix(v: &[f32], order: Order, channels: usize, plane: usize) -> MatRef<'_> {
    match order {
        Order::Planes => checked(MatRef::row_major(v, channels, plane)),
        Order::Pixels => checked(MatRef::row_major(v, plane, channels)).t(),
    }
}

/// A weight `[c_out, c_in, kh, kw]` in `Layout::Pixels` order `[c_out, kh, kw, c_in]`.
fn to_pixel_order(g: &Geometry, w: &[f32]) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let mut out = vec![0.0f32; w.len()];
    for (wo, po) in w
        .chunks_exact(g.c_in * taps)
        .zip(out.chunks_exact_mut(g.c_in * taps))
    {
        for (c, kernel) in wo.chunks_exact(taps).enumerate() {
            for (t, &v) in kernel.iter().enumerate() {
                po[t * g.c_in + c] = v;
            }
        }
    }
    out
}

/// The inverse of [`to_pixel_order`].
fn from_pixel_order(g: &Geometry, wp: &[f32]) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let mut out = vec![0.0f32; wp.len()];
    for (po, wo) in wp
        .chunks_exact(g.c_in * taps)
        .zip(out.chunks_exact_mut(g.c_in * taps))
    {
        for (c, kernel) in wo.chunks_exact_mut(taps).enumerate() {
            for (t, v) in kernel.iter_mut().enumerate() {
                *v = po[t * g.c_in + c];
            }
        }
    }
    out
}

/// `dst[p, c] = src[c, p]` for `src: [channels, plane]`, in 8 × 8 tiles (each tile's rows
/// read as contiguous runs, its columns written as contiguous runs); full tiles with AVX
/// shuffles where the CPU has them.
fn transpose(src: &[f32], dst: &mut [f32], channels: usize, plane: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports the features `transpose_avx` is compiled for.
        return unsafe { transpose_avx(src, dst, channels, plane) };
    }
    transpose_generic(src, dst, channels, plane);
}

/// [`transpose`] without SIMD intrinsics (full tiles through fixed-size arrays).
fn transpose_generic(src: &[f32], dst: &mut [f32], channels: usize, plane: usize) {
    transpose_tiles(
        src,
        dst,
        channels,
        plane,
        |src, dst, (from, stride), (to, dst_stride)| {
            let rows: [[f32; 8]; 8] = std::array::from_fn(|c| {
                src[from + c * stride..][..8]
                    .try_into()
                    .expect("a full row")
            });
            for p in 0..8 {
                let out = &mut dst[to + p * dst_stride..][..8];
                for (o, row) in out.iter_mut().zip(&rows) {
                    *o = row[p];
                }
            }
        },
    );
}

/// [`transpose`] with full 8 × 8 tiles transposed in AVX registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn transpose_avx(src: &[f32], dst: &mut [f32], channels: usize, plane: usize) {
    use std::arch::x86_64::*;
    transpose_tiles(
        src,
        dst,
        channels,
        plane,
        |src, dst, (from, stride), (to, dst_stride)| {
            let r: [__m256; 8] = std::array::from_fn(|c| {
                let row = &src[from + c * stride..][..8];
                // SAFETY: `row` holds the 8 values read (bounds-checked slice).
                unsafe { _mm256_loadu_ps(row.as_ptr()) }
            });
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (p, col) in cols.into_iter().enumerate() {
                let out = &mut dst[to + p * dst_stride..][..8];
                // SAFETY: `out` has room for the 8 values written (bounds-checked slice).
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), col) };
            }
        },
    );
}

/// The tiling of [`transpose`]: full 8 × 8 tiles go to `full` (given the tile's first source
/// index and the source row stride, and its first destination index and the destination row
/// stride); the edges are copied one element at a time.
#[inline(always)]
fn transpose_tiles(
    src: &[f32],
    dst: &mut [f32],
    channels: usize,
    plane: usize,
    mut full: impl FnMut(&[f32], &mut [f32], (usize, usize), (usize, usize)),
) {
    const T: usize = 8;
    for p0 in (0..plane).step_by(T) {
        let pn = T.min(plane - p0);
        for c0 in (0..channels).step_by(T) {
            let cn = T.min(channels - c0);
            if pn == T && cn == T {
                full(
                    src,
                    dst,
                    (c0 * plane + p0, plane),
                    (p0 * channels + c0, channels),
                );
                continue;
            }
            for p in 0..pn {
                let out = &mut dst[(p0 + p) * channels + c0..][..cn];
                for (c, o) in out.iter_mut().enumerate() {
                    *o = src[(c0 + c) * plane + p0 + p];
                }
            }
        }
    }
}

/// Runs `f` with this thread's [`Scratch`], kept across operations, so that a training step
/// allocates (and zero-fills) no scratch buffers once they have grown to the largest layer.
/// (A nested call, which the kernels never make, gets a fresh one.)
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

/// One thread's scratch buffers, kept across the images and operations it handles.
#[derive(Default)]
struct Scratch {
    /// The unfolded input, or the columns to fold.
    col: Vec<f32>,
    /// The input (or the folded sums) with each row split by phase, for strides above 1.
    phases: Vec<f32>,
    /// One input image in channels-last order, for `Layout::Pixels` when it came as planes.
    nhwc: Vec<f32>,
    /// Images pixel by pixel, `[images·oh·ow, c_out]`, for `Layout::Pixels` when they came
    /// as planes.
    pixels: Vec<f32>,
    /// Images of the upstream gradient masked by the ReLU's output ([`upstream_chunk`]).
    grad: Vec<f32>,
    /// One zero-padded image for the single-channel kernels ([`single::Padded`]).
    padded: Vec<f32>,
}

impl Scratch {
    /// Splits each row of `x: [c_in, h, w]` by column phase: row `(c, r)` becomes `sw`
    /// phases of [`Geometry::phase_len`] columns, phase `q` holding columns `q, q + sw, …`,
    /// so that every kernel column reads a contiguous run of one phase.
    fn split_phases(&mut self, g: &Geometry, x: &[f32]) {
        let (sw, wq) = (g.sw, g.phase_len());
        self.phases.resize(g.phased_len(), 0.0);
        for (src, dst) in x
            .chunks_exact(g.w)
            .zip(self.phases.chunks_exact_mut(sw * wq))
        {
            for (q, dst) in dst.chunks_exact_mut(wq).enumerate() {
                for (d, s) in dst.iter_mut().zip(src[q..].iter().step_by(sw)) {
                    *d = *s;
                }
            }
        }
    }

    /// Unfolds one input image `x: [c_in, h, w]` into `col: [c_in·kh·kw, oh·ow]` (im2col):
    /// row `(c, i, j)`, column `(oy, ox)` holds `x[c, oy·sh + i − ph, ox·sw + j − pw]`, zero
    /// outside. Every run of a row is one contiguous copy (from the phases when `sw > 1`).
    fn unfold(&mut self, g: &Geometry, x: &[f32]) -> &[f32] {
        let (p, ow) = (g.p(), g.ow);
        let (src, row_len) = if g.sw == 1 {
            (x, g.w)
        } else {
            self.split_phases(g, x);
            (&self.phases[..], g.sw * g.phase_len())
        };
        self.col.resize(g.k() * p, 0.0);
        let col = &mut self.col[..g.k() * p];
        let wq = g.phase_len();
        for (n, row) in col.chunks_exact_mut(p).enumerate() {
            let (c, i, j) = (n / (g.kh * g.kw), (n / g.kw) % g.kh, n % g.kw);
            let cols = g.in_cols(j);
            for (oy, dst) in row.chunks_exact_mut(ow).enumerate() {
                let (Some(r), Some((lo, hi, start))) = (g.in_row(oy, i), cols) else {
                    dst.fill(0.0);
                    continue;
                };
                // Input column `start` lies in phase start % sw at position start / sw.
                let from = (c * g.h + r) * row_len + (start % g.sw) * wq + start / g.sw;
                dst[..lo].fill(0.0);
                dst[lo..hi].copy_from_slice(&src[from..from + hi - lo]);
                dst[hi..].fill(0.0);
            }
        }
        &self.col[..g.k() * p]
    }

    /// Folds `self.col: [c_in·kh·kw, oh·ow]` back onto one image `x: [c_in, h, w]` (col2im),
    /// adding each element to the input pixel [`Scratch::unfold`] reads it from (taps outside
    /// the image are dropped). The sums run over the phases (contiguous runs) when `sw > 1`,
    /// and are interleaved into `x` at the end.
    fn fold_add(&mut self, g: &Geometry, x: &mut [f32]) {
        let (p, ow, sw, wq) = (g.p(), g.ow, g.sw, g.phase_len());
        let row_len = sw * wq;
        if sw > 1 {
            self.split_phases(g, x);
        }
        let dst_all: &mut [f32] = if sw == 1 { &mut *x } else { &mut self.phases };
        for (n, row) in self.col[..g.k() * p].chunks_exact(p).enumerate() {
            let (c, i, j) = (n / (g.kh * g.kw), (n / g.kw) % g.kh, n % g.kw);
            let Some((lo, hi, start)) = g.in_cols(j) else {
                continue;
            };
            for (oy, src) in row.chunks_exact(ow).enumerate() {
                let Some(r) = g.in_row(oy, i) else { continue };
                let to = (c * g.h + r) * row_len + (start % sw) * wq + start / sw;
                for (d, s) in dst_all[to..to + hi - lo].iter_mut().zip(&src[lo..hi]) {
                    *d += *s;
                }
            }
        }
        if sw > 1 {
            for (dst, src) in x
                .chunks_exact_mut(g.w)
                .zip(self.phases.chunks_exact(row_len))
            {
                for (q, src) in src.chunks_exact(wq).enumerate() {
                    for (d, s) in dst[q..].iter_mut().step_by(sw).zip(src) {
                        *d = *s;
                    }
                }
            }
        }
    }
}

/// Images `v: [images, channels, plane]` in `order` as channels-last rows `[images·plane,
/// channels]`: `v` itself when it is laid out so, else transposed into `buf`.
fn pixel_rows<'a>(
    v: &'a [f32],
    order: Order,
    (channels, plane): (usize, usize),
    buf: &'a mut Vec<f32>,
) -> &'a [f32] {
    if order == Order::Pixels || channels == 1 || plane == 1 {
        return v;
    }
    buf.resize(v.len(), 0.0);
    for (src, dst) in v
        .chunks_exact(channels * plane)
        .zip(buf.chunks_exact_mut(channels * plane))
    {
        transpose(src, dst, channels, plane);
    }
    &buf[..v.len()]
}

/// Unfolds images `x: [images, c_in, h, w]` (in `order`) into `col: [images·oh·ow,
/// kh·kw·c_in]`: row `(b, oy, ox)`, column `(i, j, c)` holds `x[b, c, oy·sh + i − ph, ox·sw +
/// j − pw]`, zero outside. Each kernel row of a pixel is one contiguous copy from the
/// channels-last image (transposed into `nhwc` first when it came as planes).
fn unfold_pixels<'a>(
    g: &Geometry,
    x: &[f32],
    order: Order,
    nhwc: &mut Vec<f32>,
    col: &'a mut Vec<f32>,
) -> &'a [f32] {
    let (k, p) = (g.k(), g.p());
    let images = x.len() / g.in_len();
    col.resize(images * p * k, 0.0);
    for (x, col) in x.chunks_exact(g.in_len()).zip(col.chunks_exact_mut(p * k)) {
        let image = pixel_rows(x, order, (g.c_in, g.h * g.w), nhwc);
        unfold_image_pixels(g, image, col);
    }
    &col[..images * p * k]
}

/// Unfolds one channels-last image `x: [h·w, c_in]` into `col: [oh·ow, kh·kw·c_in]`.
fn unfold_image_pixels(g: &Geometry, x: &[f32], col: &mut [f32]) {
    let c = g.c_in;
    for (pix, dst) in col.chunks_exact_mut(g.k()).enumerate() {
        let (oy, ox) = (pix / g.ow, pix % g.ow);
        let (jlo, jhi, ix) = g.pixel_taps(ox);
        for (i, dst) in dst.chunks_exact_mut(g.kw * c).enumerate() {
            match g.in_row(oy, i) {
                Some(r) if jlo < jhi => {
                    let from = (r * g.w + ix) * c;
                    dst[..jlo * c].fill(0.0);
                    dst[jlo * c..jhi * c].copy_from_slice(&x[from..from + (jhi - jlo) * c]);
                    dst[jhi * c..].fill(0.0);
                }
                _ => dst.fill(0.0),
            }
        }
    }
}

/// Folds one image's block `col: [oh·ow, kh·kw·c_in]` (the [`unfold_pixels`] layout) onto the
/// channels-last image `x: [h·w, c_in]`, adding each element to the pixel it was read from
/// (taps outside the image are dropped).
fn fold_image_pixels(g: &Geometry, col: &[f32], x: &mut [f32]) {
    let c = g.c_in;
    for (pix, src) in col.chunks_exact(g.k()).enumerate() {
        let (oy, ox) = (pix / g.ow, pix % g.ow);
        let (jlo, jhi, ix) = g.pixel_taps(ox);
        if jlo == jhi {
            continue;
        }
        for (i, src) in src.chunks_exact(g.kw * c).enumerate() {
            if let Some(r) = g.in_row(oy, i) {
                let to = (r * g.w + ix) * c;
                let dst = &mut x[to..to + (jhi - jlo) * c];
                for (d, s) in dst.iter_mut().zip(&src[jlo * c..jhi * c]) {
                    *d += *s;
                }
            }
        }
    }
}

/// Adds the bias to every pixel of channels-last images `y: [pixels, channels]` and applies
/// the ReLU, as asked, in one pass.
fn bias_relu(y: &mut [f32], bias: Option<&[f32]>, relu: bool) {
    match (bias, relu) {
        (Some(b), true) => y.chunks_exact_mut(b.len()).for_each(|px| {
            px.iter_mut()
                .zip(b)
                .for_each(|(v, b)| *v = (*v + b).max(0.0));
        }),
        (Some(b), false) => y.chunks_exact_mut(b.len()).for_each(|px| {
            px.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }),
        (None, true) => relu_in_place(y),
        (None, false) => {}
    }
}

/// `max(v, 0)` for every element.
fn relu_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// One image `[channels, plane]` of a new output, each channel's plane filled with its bias
/// (or zero): returned initialised.
fn init_planes<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    bias: Option<&[f32]>,
    plane: usize,
) -> &'a mut [f32] {
    let dst = fill_uninit(dst, 0.0);
    if let Some(bias) = bias {
        for (d, &b) in dst.chunks_exact_mut(plane).zip(bias) {
            d.fill(b);
        }
    }
    dst
}

/// Images of a new channels-last output `[images·plane, channels]`, every pixel set to the
/// bias (or zero): returned initialised.
fn init_pixels<'a>(dst: &'a mut [MaybeUninit<f32>], bias: Option<&[f32]>) -> &'a mut [f32] {
    match bias {
        Some(bias) => fill_rows(dst, bias),
        None => fill_uninit(dst, 0.0),
    }
}

/// A new output of `images` images of `out_image` elements, written in parallel by `write`
/// in chunks of `per_chunk` images (the last may have fewer), each with the matching chunk
/// of `inputs` (images of `in_image` elements) and one [`Scratch`] per rayon job: no
/// zero-fill of the whole output first.
fn new_output<T: Sync>(
    images: usize,
    (out_image, in_image): (usize, usize),
    per_chunk: usize,
    inputs: &[T],
    write: impl Fn(&mut Scratch, &mut [MaybeUninit<f32>], &[T]) + Sync,
) -> Vec<f32> {
    // SAFETY: `write` initialises its chunk in full (every caller starts with `init_planes`
    // or `init_pixels` for each of its images, writes it whole with `gemm_serial_new`, or
    // hands it to a `single` kernel that stores every element), and the chunks cover the
    // output.
    let out = unsafe {
        filled(images * out_image, |out| {
            assert!(
                out_image > 0 && in_image > 0 && inputs.len() == images * in_image,
                "one input image per output image"
            );
            out.par_chunks_mut(per_chunk * out_image)
                .zip(inputs.par_chunks(per_chunk * in_image))
                .for_each(|(o, i)| with_scratch(|scratch| write(scratch, o, i)));
            Ok::<(), Infallible>(())
        })
    };
    out.unwrap_or_else(|e| match e {})
}

/// `w: [rows, cols]` transposed, `[cols, rows]`.
fn transposed(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut w_t = vec![0.0f32; w.len()];
    transpose(w, &mut w_t, rows, cols);
    w_t
}

/// Output channels per block of a weight-gradient product ([`add_weight_product`]).
const WEIGHT_BLOCK: usize = 32;

/// `∂Wᵀ += colᵀ · rows` for the unfolded block `col: [n, k]` and the channels-last rows
/// `rows: [n, c_out]`, with `∂Wᵀ` held as column blocks of at most [`WEIGHT_BLOCK`] channels
/// (`dw`: block `c0` is `[k, width]` at `c0·k`; [`from_weight_blocks`] reassembles them). Per
/// block, `gemm` multiplies the unfolded block where it lies: with more than 32 output
/// channels it would first copy (pack) all of it for each product (BENCHMARKS.md).
fn add_weight_product(dw: &mut [f32], col: MatRef<'_>, rows: &[f32], c_out: usize) {
    let (n, k) = (col.rows(), col.cols());
    for c0 in (0..c_out).step_by(WEIGHT_BLOCK) {
        let width = WEIGHT_BLOCK.min(c_out - c0);
        let rhs = checked(MatRef::new(&rows[c0..], n, width, c_out, 1));
        checked(gemm_serial(
            &mut dw[c0 * k..(c0 + width) * k],
            true,
            col.t(),
            rhs,
        ));
    }
}

/// `∂W: [c_out, k]` from the column blocks of [`add_weight_product`].
fn from_weight_blocks(dw: &[f32], k: usize, c_out: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(dw.len());
    for c0 in (0..c_out).step_by(WEIGHT_BLOCK) {
        let width = WEIGHT_BLOCK.min(c_out - c0);
        out.extend(transposed(&dw[c0 * k..(c0 + width) * k], k, width));
    }
    out
}

/// The convolution of a batch, `y_b = W · unfold(x_b) (+ bias)`, then ReLU if asked;
/// `x: [batch, c_in, h, w]` in `order`, `w: [c_out, c_in·kh·kw]`, `bias: [c_out]`. Returns
/// `[batch, c_out, oh, ow]` channels-last: every layout multiplies `unfold(x_b)ᵀ · Wᵀ`, pixel
/// by pixel, with both operands as `gemm` reads them best (`Wᵀ` row-major, `unfold(x_b)ᵀ`
/// row-major for `Layout::Pixels`, column-major otherwise).
fn forward(
    g: &Geometry,
    x: &[f32],
    order: Order,
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    let (k, p, layout) = (g.k(), g.p(), g.layout());
    let batch = x.len() / g.in_len();
    if single::applies(g) {
        // One input channel: both orders are the same memory.
        let w_t = transposed(w, g.c_out, k);
        let zeros = vec![0.0f32; g.c_out];
        let pad = single::Padded::new(g);
        let sizes = (g.out_len(), g.in_len());
        return new_output(batch, sizes, 1, x, |scratch, y, x| {
            let wb = (&w_t[..], bias.unwrap_or(&zeros));
            single::forward_image(g, &pad, x, wb, relu, y, &mut scratch.padded);
        });
    }
    let w_t = transposed(&weight_in(g, w), g.c_out, k);
    let w_t = checked(MatRef::row_major(&w_t, k, g.c_out));
    // Stacked products read either order (a 1 × 1 layer's channels-last input is its own
    // unfolding); the others read planes.
    let stacked = g.stacked(order);
    let x = match stacked {
        true => Cow::Borrowed(x),
        false => in_planes(x, order, g.c_in, g.h * g.w),
    };
    let sizes = (g.out_len(), g.in_len());
    new_output(batch, sizes, g.images_per_product(), &x, |scratch, y, x| {
        // Each product is written by gemm (no fill first), then the bias and ReLU in one pass.
        if stacked {
            // The chunk's images stacked: [images·p, k] · [k, c_out].
            let rows = x.len() / g.in_len() * p;
            let Scratch { col, nhwc, .. } = scratch;
            let col = match layout {
                Layout::Pointwise => x,
                _ => unfold_pixels(g, x, order, nhwc, col),
            };
            let col = checked(MatRef::row_major(col, rows, k));
            bias_relu(checked(gemm_serial_new(y, col, w_t)), bias, relu);
        } else {
            for (y, x) in y
                .chunks_exact_mut(g.out_len())
                .zip(x.chunks_exact(g.in_len()))
            {
                let col = match layout {
                    Layout::Pointwise => x,
                    _ => scratch.unfold(g, x),
                };
                let col_t = checked(MatRef::row_major(col, k, p)).t();
                bias_relu(checked(gemm_serial_new(y, col_t, w_t)), bias, relu);
            }
        }
    })
}

/// The adjoint of the convolution over a batch, `x_b = fold(Wᵀ · g_b) (+ bias)`, then ReLU
/// if asked; `gy: [batch, c_out, oh, ow]` in `order`, `bias: [c_in]`. Returns
/// `[batch, c_in, h, w]` and its order: channels-last for stacked products
/// ([`Geometry::stacked`]: folded, or for a 1 × 1 layer written, pixel by pixel), planes
/// otherwise.
fn adjoint(
    g: &Geometry,
    gy: &[f32],
    order: Order,
    w: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
) -> (Vec<f32>, Order) {
    let (k, p, plane) = (g.k(), g.p(), g.h * g.w);
    let batch = gy.len() / g.out_len();
    if single::applies(g) && order == Order::Pixels {
        let w_pad = single::adjoint_weight(g, w);
        let bias = bias.map_or(0.0, |b| b[0]);
        let pad = single::Padded::new(g);
        let sizes = (g.in_len(), g.out_len());
        let x = new_output(batch, sizes, 1, gy, |scratch, x, gy| {
            single::adjoint_image(g, &pad, gy, (&w_pad, bias), relu, x, &mut scratch.padded);
        });
        return (x, Order::Planes);
    }
    let (layout, w) = (g.layout(), weight_in(g, w));
    let wm = checked(MatRef::row_major(&w, g.c_out, k));
    let sizes = (g.in_len(), g.out_len());
    let stacked = g.stacked(order);
    let x = new_output(
        batch,
        sizes,
        g.images_per_product(),
        gy,
        |scratch, x, gy| {
            if stacked {
                // cols [images·p, k] = [g_bᵀ stacked] · W, folded channels-last per image (for
                // a 1 × 1 layer, the cols are the images).
                let rows = gy.len() / g.out_len() * p;
                let Scratch { col, pixels, .. } = scratch;
                let gt = pixel_rows(gy, order, (g.c_out, p), pixels);
                if layout == Layout::Pointwise {
                    let gt = checked(MatRef::row_major(gt, rows, g.c_out));
                    bias_relu(checked(gemm_serial_new(x, gt, wm)), bias, relu);
                    return;
                }
                col.resize(rows * k, 0.0);
                checked(gemm_serial(
                    &mut col[..rows * k],
                    false,
                    checked(MatRef::row_major(gt, rows, g.c_out)),
                    wm,
                ));
                for (x, col) in x.chunks_exact_mut(g.in_len()).zip(col.chunks_exact(p * k)) {
                    let x = init_pixels(x, bias);
                    fold_image_pixels(g, col, x);
                    if relu {
                        relu_in_place(x);
                    }
                }
                return;
            }
            for (x, gy) in x
                .chunks_exact_mut(g.in_len())
                .zip(gy.chunks_exact(g.out_len()))
            {
                let gm = plane_matrix(gy, order, g.c_out, p);
                let x = init_planes(x, bias, plane);
                if layout == Layout::Pointwise {
                    checked(gemm_serial(x, true, wm.t(), gm));
                } else {
                    scratch.col.resize(k * p, 0.0);
                    checked(gemm_serial(&mut scratch.col[..k * p], false, wm.t(), gm));
                    scratch.fold_add(g, x);
                }
                if relu {
                    relu_in_place(x);
                }
            }
        },
    );
    let order = match stacked {
        true => Order::Pixels,
        false => Order::Planes,
    };
    (x, order)
}

/// The weight as the layout's products read it (reordered for `Layout::Pixels`).
fn weight_in<'a>(g: &Geometry, w: &'a [f32]) -> Cow<'a, [f32]> {
    match g.layout() {
        Layout::Pixels => Cow::Owned(to_pixel_order(g, w)),
        _ => Cow::Borrowed(w),
    }
}

/// Images per group whose gradient contributions are summed into one partial: the batch in
/// at most this many groups, a number fixed by the batch size alone.
const GROUPS: usize = 8;

/// A sum over a batch of `batch` images: `add` adds the terms of a range of images into a
/// partial of `len` zeros, one partial per fixed group of images (in parallel), then the
/// partials are added in order, so the result does not depend on the thread count.
fn grouped_sum(
    batch: usize,
    len: usize,
    add: impl Fn(std::ops::Range<usize>, &mut [f32], &mut Scratch) + Sync,
) -> Vec<f32> {
    let per_group = batch.div_ceil(GROUPS).max(1);
    let starts: Vec<usize> = (0..batch).step_by(per_group).collect();
    let partials: Vec<Vec<f32>> = starts
        .into_par_iter()
        .map(|start| {
            let mut sum = vec![0.0f32; len];
            let images = start..(start + per_group).min(batch);
            with_scratch(|scratch| add(images, &mut sum, scratch));
            sum
        })
        .collect();
    sum_in_order(partials, len)
}

/// The partial sums added in order (zeros when there are none).
fn sum_in_order(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0.0; len]);
    for part in parts {
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
    }
    total
}

/// The upstream gradient of a run of images as the products read it: masked by the ReLU's
/// output `y` (the same images in the same order) into `buf` when there was a ReLU, else `g`
/// itself; each channel's sum (the bias gradient's terms) is added to `sums`. Masking here,
/// image by image, replaces two passes over the whole gradient (mask, then bias sums) by one
/// read while the images are in cache.
fn upstream_chunk<'a>(
    g: &'a [f32],
    y: Option<&[f32]>,
    (order, channels, plane): (Order, usize, usize),
    buf: &'a mut Vec<f32>,
    sums: &mut [f32],
) -> &'a [f32] {
    let g = match y {
        Some(y) => {
            assert_eq!(y.len(), g.len(), "a ReLU output per gradient");
            buf.resize(g.len(), 0.0);
            for ((d, &g), &y) in buf.iter_mut().zip(g).zip(y) {
                *d = if y > 0.0 { g } else { 0.0 };
            }
            &buf[..g.len()]
        }
        None => g,
    };
    add_channel_sums(g, order, (channels, plane), sums);
    g
}

/// The weight gradient `∂W = Σ_b g_b · unfold(x_b)ᵀ` and the bias gradient `Σ_b Σ_pixels g_b`:
/// `x: [batch, c_in, h, w]` in `x_order`, `gy: [batch, c_out, oh, ow]` in `gy_order`, masked
/// by the ReLU's output `relu_y` (in `gy_order`) when there was one; returns
/// (`[c_out, c_in·kh·kw]`, `[c_out]`).
fn weight_grad(
    g: &Geometry,
    (x, x_order): (&[f32], Order),
    (gy, gy_order): (&[f32], Order),
    relu_y: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let (k, p, in_len, out_len) = (g.k(), g.p(), g.in_len(), g.out_len());
    let batch = x.len() / in_len;
    let layout = g.layout();
    let per_product = g.images_per_product();
    let stacked = g.stacked(x_order);
    let x = match stacked {
        true => Cow::Borrowed(x),
        false => in_planes(x, x_order, g.c_in, g.h * g.w),
    };
    let ck = g.c_out * k;
    let chunk = |range: std::ops::Range<usize>| (&gy[range.clone()], relu_y.map(|y| &y[range]));
    if single::applies(g) && gy_order == Order::Pixels {
        // One input channel (both orders the same memory); ∂Wᵀ `[k, c_out]` summed per group.
        let pad = single::Padded::new(g);
        let sums = grouped_sum(batch, ck + g.c_out, |images, partial, scratch| {
            let (dw_t, db) = partial.split_at_mut(ck);
            for b in images {
                let (gy, y) = chunk(b * out_len..(b + 1) * out_len);
                let Scratch { grad, padded, .. } = &mut *scratch;
                let gy = upstream_chunk(gy, y, (gy_order, g.c_out, p), grad, db);
                let x = &x[b * in_len..(b + 1) * in_len];
                single::weight_grad_image(g, &pad, x, gy, dw_t, padded);
            }
        });
        let (dw_t, db) = sums.split_at(ck);
        return (transposed(dw_t, k, g.c_out), db.to_vec());
    }
    let sums = grouped_sum(batch, ck + g.c_out, |images, partial, scratch| {
        let (dw, db) = partial.split_at_mut(ck);
        if stacked {
            // ∂Wᵀ += [unfold(x_b) stacked]ᵀ · [g_bᵀ stacked], a few images per product
            // (∂Wᵀ, `[k, c_out]`, so that gemm's 6-column panels run along k, not c_out).
            for start in images.clone().step_by(per_product) {
                let end = (start + per_product).min(images.end);
                let rows = (end - start) * p;
                let Scratch {
                    col,
                    nhwc,
                    pixels,
                    grad,
                    ..
                } = &mut *scratch;
                let x = &x[start * in_len..end * in_len];
                let col = match layout {
                    Layout::Pointwise => x,
                    _ => unfold_pixels(g, x, x_order, nhwc, col),
                };
                let (gy, y) = chunk(start * out_len..end * out_len);
                let gy = upstream_chunk(gy, y, (gy_order, g.c_out, p), grad, db);
                let gt = pixel_rows(gy, gy_order, (g.c_out, p), pixels);
                let col = checked(MatRef::row_major(col, rows, k));
                add_weight_product(dw, col, gt, g.c_out);
            }
            return;
        }
        let mut grad = std::mem::take(&mut scratch.grad);
        for b in images {
            let x = &x[b * in_len..][..in_len];
            let (gy, y) = chunk(b * out_len..(b + 1) * out_len);
            let gy = upstream_chunk(gy, y, (gy_order, g.c_out, p), &mut grad, db);
            let gm = plane_matrix(gy, gy_order, g.c_out, p);
            let unfolded_t = match layout {
                Layout::Pointwise => checked(MatRef::row_major(x, k, p)).t(),
                _ => checked(MatRef::row_major(scratch.unfold(g, x), k, p)).t(),
            };
            checked(gemm_serial(dw, true, gm, unfolded_t));
        }
        scratch.grad = grad;
    });
    let (dw, db) = sums.split_at(ck);
    let dw = match stacked {
        true => from_weight_blocks(dw, k, g.c_out),
        false => dw.to_vec(),
    };
    let dw = match layout {
        Layout::Pixels => from_pixel_order(g, &dw),
        _ => dw,
    };
    (dw, db.to_vec())
}

/// The sum of `v` in 8 interleaved partial sums (so that it vectorises), then those in order.
fn lane_sum(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (l, x) in lanes.iter_mut().zip(chunk) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Which backward pass [`both_grads`] computes: the convolution's (input gradient by the
/// adjoint), or the transposed convolution's (input gradient by the forward convolution).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Conv,
    ConvTranspose,
}

/// The input and weight gradients of a `Layout::Pixels` layer in one pass over the batch, so
/// that each image's shared operand is prepared once for both products:
///
/// - `Pass::Conv` (`a` = the layer's input `[batch, c_in, h, w]`, `b` = the upstream
///   gradient `[batch, c_out, oh, ow]`): the gradient pixel by pixel feeds both
///   `cols = gᵀ · W` (folded into ∂x) and `∂W += gᵀᵀ · unfold(x)`;
/// - `Pass::ConvTranspose` (`a` = the upstream gradient, on the convolution's input side, `b`
///   = the layer's input, on its output side): the unfolded gradient feeds both
///   `∂x = unfold(g) · Wᵀ` and `∂W += xᵀᵀ · unfold(g)`.
///
/// `a` and `b` come in either order; the upstream gradient is masked by the ReLU's output
/// `relu_y` (in its order) when there was one. Returns (∂ of `b` for `ConvTranspose` or of `a`
/// for `Conv`, channels-last; ∂W `[c_out, c_in·kh·kw]`; the bias gradient, the upstream
/// gradient's channel sums). The weight and bias gradients are summed (∂W as ∂Wᵀ, like
/// [`weight_grad`]'s) over the same fixed groups as [`grouped_sum`]'s.
fn both_grads(
    g: &Geometry,
    pass: Pass,
    (a, a_order): (&[f32], Order),
    (b, b_order): (&[f32], Order),
    w: &[f32],
    relu_y: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (k, p, in_len, out_len) = (g.k(), g.p(), g.in_len(), g.out_len());
    let batch = a.len() / in_len;
    assert_eq!(
        b.len(),
        batch * out_len,
        "one upstream image per input image"
    );
    let wp = to_pixel_order(g, w);
    let w_t = transposed(&wp, g.c_out, k);
    let (wm, w_tm) = (
        checked(MatRef::row_major(&wp, g.c_out, k)),
        checked(MatRef::row_major(&w_t, k, g.c_out)),
    );
    let (dx_image, bias_len) = match pass {
        Pass::Conv => (in_len, g.c_out),
        Pass::ConvTranspose => (out_len, g.c_in),
    };
    let ck = g.c_out * k;
    let masked = |range: std::ops::Range<usize>| relu_y.map(|y| &y[range]);
    let (per_group, per_product) = (batch.div_ceil(GROUPS).max(1), g.images_per_product());
    let mut partials = Vec::new();
    // SAFETY: every group writes each of its images' input gradient in full (`init_pixels`
    // or `fill_uninit` first), and the groups cover the batch.
    let dx = unsafe {
        filled(batch * dx_image, |dx| {
            partials = dx
                .par_chunks_mut(per_group * dx_image)
                .enumerate()
                .map(|(group, dx)| {
                    with_scratch(|s| {
                        let start = group * per_group;
                        let end = (start + per_group).min(batch);
                        let mut partial = vec![0.0f32; ck + bias_len];
                        let (dw, db) = partial.split_at_mut(ck);
                        for first in (start..end).step_by(per_product) {
                            let last = (first + per_product).min(end);
                            let rows = (last - first) * p;
                            let dx = &mut dx[(first - start) * dx_image..(last - start) * dx_image];
                            let (a, b) = (
                                &a[first * in_len..last * in_len],
                                &b[first * out_len..last * out_len],
                            );
                            let Scratch {
                                col,
                                nhwc,
                                pixels,
                                grad,
                                ..
                            } = &mut *s;
                            match pass {
                                Pass::Conv => {
                                    // gᵀ stacked [rows, c_out]; cols = gᵀ · W, folded per image.
                                    let y = masked(first * out_len..last * out_len);
                                    let b = upstream_chunk(b, y, (b_order, g.c_out, p), grad, db);
                                    let gt_rows = pixel_rows(b, b_order, (g.c_out, p), pixels);
                                    let gt = checked(MatRef::row_major(gt_rows, rows, g.c_out));
                                    col.resize(rows * k, 0.0);
                                    checked(gemm_serial(&mut col[..rows * k], false, gt, wm));
                                    for (dx, col) in
                                        dx.chunks_exact_mut(in_len).zip(col.chunks_exact(p * k))
                                    {
                                        fold_image_pixels(g, col, init_pixels(dx, None));
                                    }
                                    // ∂Wᵀ += unfold(x)ᵀ · gᵀ.
                                    let col = unfold_pixels(g, a, a_order, nhwc, col);
                                    let col = checked(MatRef::row_major(col, rows, k));
                                    add_weight_product(dw, col, gt_rows, g.c_out);
                                }
                                Pass::ConvTranspose => {
                                    // unfold(g) [rows, k]; ∂x = unfold(g) · Wᵀ, pixel by pixel.
                                    let y = masked(first * in_len..last * in_len);
                                    let shape = (a_order, g.c_in, g.h * g.w);
                                    let a = upstream_chunk(a, y, shape, grad, db);
                                    let col = unfold_pixels(g, a, a_order, nhwc, col);
                                    let col = checked(MatRef::row_major(col, rows, k));
                                    checked(gemm_serial_new(dx, col, w_tm));
                                    // ∂Wᵀ += unfold(g)ᵀ · xᵀ, x pixel by pixel.
                                    let xt = pixel_rows(b, b_order, (g.c_out, p), pixels);
                                    add_weight_product(dw, col, xt, g.c_out);
                                }
                            }
                        }
                        partial
                    })
                })
                .collect();
            Ok::<(), Infallible>(())
        })
    }
    .unwrap_or_else(|e| match e {});
    let sums = sum_in_order(partials, ck + bias_len);
    let (dw_t, db) = sums.split_at(ck);
    let dw = from_pixel_order(g, &from_weight_blocks(dw_t, k, g.c_out));
    (dx, dw, db.to_vec())
}

/// Sum of each channel's values over a batch: `t: [batch, channels, plane]` in `order` →
/// `[channels]`.
fn channel_sums(t: &[f32], order: Order, channels: usize, plane: usize) -> Vec<f32> {
    let batch = t.len() / (channels * plane);
    grouped_sum(batch, channels, |images, sums, _| {
        let image = channels * plane;
        let t = &t[images.start * image..images.end * image];
        add_channel_sums(t, order, (channels, plane), sums);
    })
}

/// Adds each channel's sum over the images `t: [images, channels, plane]` (in `order`) to
/// `sums`, image by image.
fn add_channel_sums(t: &[f32], order: Order, (channels, plane): (usize, usize), sums: &mut [f32]) {
    let mut image_sums = vec![0.0f32; channels];
    for image in t.chunks_exact(channels * plane) {
        match order {
            Order::Planes => {
                for (s, plane) in sums.iter_mut().zip(image.chunks_exact(plane)) {
                    *s += lane_sum(plane);
                }
            }
            Order::Pixels => {
                image_sums.fill(0.0);
                for px in image.chunks_exact(channels) {
                    image_sums.iter_mut().zip(px).for_each(|(s, v)| *s += v);
                }
                sums.iter_mut().zip(&image_sums).for_each(|(s, v)| *s += v);
            }
        }
    }
}

/// The upstream gradient where the ReLU's output was positive, else 0.
fn relu_mask(grad: &[f32], y: &[f32]) -> Vec<f32> {
    const CHUNK: usize = 16 * 1024;
    assert_eq!(grad.len(), y.len(), "a gradient per output");
    // SAFETY: the chunks of `m` pair with equally long chunks of `grad` and `y` (same
    // lengths), and every element of each is written.
    let masked = unsafe {
        filled(grad.len(), |m| {
            m.par_chunks_mut(CHUNK)
                .zip(grad.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
                .for_each(|(m, (g, y))| {
                    for ((m, &g), &y) in m.iter_mut().zip(g).zip(y) {
                        m.write(if y > 0.0 { g } else { 0.0 });
                    }
                });
            Ok::<(), Infallible>(())
        })
    };
    masked.unwrap_or_else(|e| match e {})
}

/// Whether the fused path can run: all three tensors `f32` on the `flex` device. (The shapes
/// are checked by [`Geometry`]'s constructors.)
pub fn applies(x: &Tensor<4>, w: &Tensor<4>, b: &Tensor<1>) -> bool {
    is_flex_f32(x) && is_flex_f32(w) && is_flex_f32(b) && x.dims()[0] > 0
}

/// The convolution of `x: [batch, c_in, h, w]` with `w: [c_out, c_in, kh, kw]` and `b:
/// [c_out]` of geometry `g` (from [`Geometry::conv2d`] for these shapes), then ReLU if
/// `relu`; differentiable. Only for tensors where [`applies`] holds.
pub fn conv2d(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, g: Geometry, relu: bool) -> Tensor<4> {
    let out = <burn::backend::Dispatch as ConvOps>::fused_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        g,
        relu,
    );
    Tensor::from_dispatch(out)
}

/// The transposed convolution of `x: [batch, c_in, h, w]` with `w: [c_in, c_out, kh, kw]`
/// and `b: [c_out]` of geometry `g` (from [`Geometry::conv_transpose2d`] for these shapes),
/// then ReLU if `relu`; differentiable. Only for tensors where [`applies`] holds.
pub fn conv_transpose2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Tensor<1>,
    g: Geometry,
    relu: bool,
) -> Tensor<4> {
    let out = <burn::backend::Dispatch as ConvOps>::fused_conv_transpose2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        g,
        relu,
    );
    Tensor::from_dispatch(out)
}

/// The backend extension: convolutions and transposed convolutions with an optional ReLU.
#[backend_extension(Flex, Autodiff)]
pub trait ConvOps: Backend {
    /// Convolution of geometry `g` plus bias, then ReLU if `relu`.
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Geometry,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// Transposed convolution, the adjoint of the convolution of geometry `g`, plus bias,
    /// then ReLU if `relu`.
    fn fused_conv_transpose2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Geometry,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// Checks that the tensors have the shapes `g` says (the extension's operations cannot
/// return an error; the public entry points' callers built `g` from these shapes).
fn check(g: &Geometry, x: &FlexTensor, x_image: [usize; 3], w: &FlexTensor, b: &FlexTensor) {
    let (xs, ws, bs) = (x.layout().shape(), w.layout().shape(), b.layout().shape());
    let w_ok = ws.num_elements() == g.c_out * g.k() && ws[2] == g.kh && ws[3] == g.kw;
    assert!(
        xs.num_dims() == 4 && xs[1..] == x_image[..] && w_ok && bs.num_elements() == bs[0],
        "fused conv: input {xs:?}, weight {ws:?}, bias {bs:?} do not fit {g:?}"
    );
}

/// Convolution forward on host tensors (the output channels-last).
fn run_conv(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, g: Geometry, relu: bool) -> FlexTensor {
    check(&g, x, [g.c_in, g.h, g.w], w, b);
    assert_eq!(b.layout().shape()[0], g.c_out, "fused conv: bias size");
    let batch = x.layout().shape()[0];
    profile::time(profile::Op::ConvForward, &g, 1, || {
        let ((xs, order), ws, bs) = (activation(x), contiguous(w), contiguous(b));
        let y = forward(&g, &xs, order, &ws, Some(&bs), relu);
        let y = activation_tensor(y, [batch, g.c_out, g.oh, g.ow], Order::Pixels);
        (y, batch)
    })
}

/// Transposed convolution forward on host tensors.
fn run_conv_transpose(
    x: &FlexTensor,
    w: &FlexTensor,
    b: &FlexTensor,
    g: Geometry,
    relu: bool,
) -> FlexTensor {
    check(&g, x, [g.c_out, g.oh, g.ow], w, b);
    assert_eq!(
        b.layout().shape()[0],
        g.c_in,
        "fused conv transpose: bias size"
    );
    let batch = x.layout().shape()[0];
    profile::time(profile::Op::TransposedForward, &g, 1, || {
        let ((xs, order), ws, bs) = (activation(x), contiguous(w), contiguous(b));
        let (y, order) = adjoint(&g, &xs, order, &ws, Some(&bs), relu);
        (
            activation_tensor(y, [batch, g.c_in, g.h, g.w], order),
            batch,
        )
    })
}

impl ConvOps for Flex {
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Geometry,
        relu: bool,
    ) -> FloatTensor<Self> {
        run_conv(&x, &w, &b, g, relu)
    }

    fn fused_conv_transpose2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Geometry,
        relu: bool,
    ) -> FloatTensor<Self> {
        run_conv_transpose(&x, &w, &b, g, relu)
    }
}

/// The upstream gradient, masked by the ReLU's output when there was one: in place when
/// this op owns the gradient's whole buffer and it lies in the output's order (the usual
/// case), else into a new NCHW tensor.
fn upstream(mut grad: FlexTensor, y: Option<FlexTensor>) -> FlexTensor {
    let Some(y) = y else { return grad };
    let n = grad.layout().shape().num_elements();
    let whole = |t: &FlexTensor| t.layout().start_offset() == 0 && t.storage::<f32>().len() == n;
    let order = order_of(&grad);
    if order.is_some()
        && order == order_of(&y)
        && whole(&y)
        && whole(&grad)
        && let Some(gs) = grad.try_storage_mut::<f32>()
    {
        const CHUNK: usize = 16 * 1024;
        gs.par_chunks_mut(CHUNK)
            .zip(y.storage::<f32>().par_chunks(CHUNK))
            .for_each(|(g, y)| {
                for (g, &y) in g.iter_mut().zip(y) {
                    *g = if y > 0.0 { *g } else { 0.0 };
                }
            });
        return grad;
    }
    let shape = grad.layout().shape().to_vec();
    let masked = relu_mask(&contiguous(&grad), &contiguous(&y));
    FlexTensor::from_data(burn::tensor::TensorData::new(masked, shape))
}

/// The upstream gradient and the ReLU output (if any) for a backward pass: the kernels that
/// read the mask image by image (`reads_mask`) get the output when it lies in the gradient's
/// order; otherwise the gradient is masked first ([`upstream`]) and no output is passed on.
fn gradient_and_mask(
    grad: FlexTensor,
    y: Option<FlexTensor>,
    reads_mask: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    let same_order = |y: &FlexTensor| order_of(&grad).is_some() && order_of(&grad) == order_of(y);
    match y {
        Some(y) if reads_mask && same_order(&y) => (grad, Some(y)),
        y => (upstream(grad, y), None),
    }
}

/// Backward of [`ConvOps::fused_conv2d`].
#[derive(Debug)]
struct ConvBackward(Geometry);

impl Backward<Flex, 3> for ConvBackward {
    type State = LayerState;

    fn backward(self, ops: Ops<LayerState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = self.0;
        let products = ops.parents[..2].iter().filter(|n| n.is_some()).count();
        profile::time(profile::Op::ConvBackward, &g, products, || {
            let batch = self.run(ops, grads);
            ((), batch)
        })
    }
}

impl ConvBackward {
    /// The backward pass; returns the batch size.
    fn run(self, ops: Ops<LayerState, 3>, grads: &mut Gradients) -> usize {
        let g = self.0;
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w, y) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let batch = grad.layout().shape()[0];
        let x_shape = [batch, g.c_in, g.h, g.w];
        let fused = node_x.is_some() && node_w.is_some() && g.layout() == Layout::Pixels;
        // The fused pass and the weight gradient alone mask the gradient as they read it.
        let weight_only = node_x.is_none() && node_w.is_some();
        let (grad, y) = gradient_and_mask(grad, y, fused || weight_only);
        let (gy, go) = activation(&grad);
        let ys = y.as_ref().map(activation);
        let relu_y = ys.as_ref().map(|(y, _)| &y[..]);
        let db = if let (true, Some(nx), Some(nw), Some(w), Some(x)) =
            (fused, &node_x, &node_w, &w, &x)
        {
            let (xs, xo) = activation(x);
            let (dx, dw, db) =
                both_grads(&g, Pass::Conv, (&xs, xo), (&gy, go), &contiguous(w), relu_y);
            grads.register::<Flex>(nx.id, activation_tensor(dx, x_shape, Order::Pixels));
            grads.register::<Flex>(nw.id, tensor(dw, [g.c_out, g.c_in, g.kh, g.kw]));
            db
        } else {
            if let (Some(node), Some(w)) = (node_x, w) {
                let (dx, order) = adjoint(&g, &gy, go, &contiguous(&w), None, false);
                grads.register::<Flex>(node.id, activation_tensor(dx, x_shape, order));
            }
            match (node_w, x) {
                (Some(node), Some(x)) => {
                    let (xs, xo) = activation(&x);
                    let (dw, db) = weight_grad(&g, (&xs, xo), (&gy, go), relu_y);
                    grads.register::<Flex>(node.id, tensor(dw, [g.c_out, g.c_in, g.kh, g.kw]));
                    db
                }
                _ => channel_sums(&gy, go, g.c_out, g.p()),
            }
        };
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor(db, [g.c_out]));
        }
        batch
    }
}

/// Backward of [`ConvOps::fused_conv_transpose2d`]: the convolution's three kernels with
/// input and output swapped.
#[derive(Debug)]
struct ConvTransposeBackward(Geometry);

impl Backward<Flex, 3> for ConvTransposeBackward {
    type State = LayerState;

    fn backward(self, ops: Ops<LayerState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = self.0;
        let products = ops.parents[..2].iter().filter(|n| n.is_some()).count();
        profile::time(profile::Op::TransposedBackward, &g, products, || {
            let batch = self.run(ops, grads);
            ((), batch)
        })
    }
}

impl ConvTransposeBackward {
    /// The backward pass; returns the batch size.
    fn run(self, ops: Ops<LayerState, 3>, grads: &mut Gradients) -> usize {
        let g = self.0;
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w, y) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let batch = grad.layout().shape()[0];
        // The upstream gradient has the convolution's input shape, x its output shape.
        let x_shape = [batch, g.c_out, g.oh, g.ow];
        let fused = node_x.is_some() && node_w.is_some() && g.layout() == Layout::Pixels;
        let (grad, y) = gradient_and_mask(grad, y, fused);
        let (gy, go) = activation(&grad);
        let ys = y.as_ref().map(activation);
        let relu_y = ys.as_ref().map(|(y, _)| &y[..]);
        let db = if let (true, Some(nx), Some(nw), Some(w), Some(x)) =
            (fused, &node_x, &node_w, &w, &x)
        {
            let (xs, xo) = activation(x);
            let pass = Pass::ConvTranspose;
            let (dx, dw, db) = both_grads(&g, pass, (&gy, go), (&xs, xo), &contiguous(w), relu_y);
            grads.register::<Flex>(nx.id, activation_tensor(dx, x_shape, Order::Pixels));
            grads.register::<Flex>(nw.id, tensor(dw, [g.c_out, g.c_in, g.kh, g.kw]));
            db
        } else {
            if let (Some(node), Some(w)) = (node_x, w) {
                let dx = forward(&g, &gy, go, &contiguous(&w), None, false);
                grads.register::<Flex>(node.id, activation_tensor(dx, x_shape, Order::Pixels));
            }
            if let (Some(node), Some(x)) = (node_w, x) {
                let (xs, xo) = activation(&x);
                let (dw, _) = weight_grad(&g, (&gy, go), (&xs, xo), None);
                grads.register::<Flex>(node.id, tensor(dw, [g.c_out, g.c_in, g.kh, g.kw]));
            }
            channel_sums(&gy, go, g.c_in, g.h * g.w)
        };
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor(db, [g.c_in]));
        }
        batch
    }
}

impl<C: CheckpointStrategy> ConvOps for Autodiff<Flex, C> {
    fn fused_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Geometry,
        relu: bool,
    ) -> FloatTensor<Self> {
        record_layer::<C, _>(ConvBackward(g), [x, w, b], relu, |x, w, b| {
            run_conv(x, w, b, g, relu)
        })
    }

    fn fused_conv_transpose2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        g: Geometry,
        relu: bool,
    ) -> FloatTensor<Self> {
        record_layer::<C, _>(ConvTransposeBackward(g), [x, w, b], relu, |x, w, b| {
            run_conv_transpose(x, w, b, g, relu)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `len` deterministic values in [−2, 2).
    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    /// The definition, one output element at a time, in f64.
    fn naive_forward(g: &Geometry, x: &[f32], w: &[f32]) -> Vec<f64> {
        let batch = x.len() / g.in_len();
        let mut y = vec![0.0f64; batch * g.out_len()];
        for b in 0..batch {
            for co in 0..g.c_out {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0.0f64;
                        for ci in 0..g.c_in {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let iy = (oy * g.sh + i) as isize - g.ph as isize;
                                    let ix = (ox * g.sw + j) as isize - g.pw as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((b * g.c_in + ci) * g.h + iy as usize) * g.w
                                        + ix as usize];
                                    let wv = w[((co * g.c_in + ci) * g.kh + i) * g.kw + j];
                                    s += xv as f64 * wv as f64;
                                }
                            }
                        }
                        y[((b * g.c_out + co) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{what}: element {i}: {a} vs {b}"
            );
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum()
    }

    /// [`weight_grad`] without a ReLU mask, the weight gradient alone.
    fn wgrad(g: &Geometry, x: (&[f32], Order), v: (&[f32], Order)) -> Vec<f32> {
        weight_grad(g, x, v, None).0
    }

    /// Images `[channels, plane]` in planes → channels-last.
    fn pixels_of(v: &[f32], channels: usize, plane: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; v.len()];
        for (src, dst) in v
            .chunks_exact(channels * plane)
            .zip(out.chunks_exact_mut(channels * plane))
        {
            transpose(src, dst, channels, plane);
        }
        out
    }

    /// Images `[channels, plane]` channels-last → planes.
    fn planes_of(v: &[f32], channels: usize, plane: usize) -> Vec<f32> {
        in_planes(v, Order::Pixels, channels, plane).into_owned()
    }

    /// [`forward`] of planes, its output as planes.
    fn fwd(g: &Geometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool) -> Vec<f32> {
        planes_of(&forward(g, x, Order::Planes, w, bias, relu), g.c_out, g.p())
    }

    /// [`adjoint`] of planes, its output as planes.
    fn adj(g: &Geometry, v: &[f32], w: &[f32]) -> Vec<f32> {
        let (x, order) = adjoint(g, v, Order::Planes, w, None, false);
        in_planes(&x, order, g.c_in, g.h * g.w).into_owned()
    }

    /// Every kernel gives the same results for inputs channels-last as for planes.
    #[test]
    fn inputs_in_either_order_give_the_same_results() {
        for (n, g) in geometries().iter().enumerate() {
            let batch = 3;
            let (plane, p) = (g.h * g.w, g.p());
            let x = data(batch * g.in_len(), 31 + n as u32);
            let w = data(g.c_out * g.k(), 37 + n as u32);
            let v = data(batch * g.out_len(), 41 + n as u32);
            let (xp, vp) = (pixels_of(&x, g.c_in, plane), pixels_of(&v, g.c_out, p));
            let (xs, vs) = ((&x[..], Order::Planes), (&v[..], Order::Planes));
            let (xps, vps) = ((&xp[..], Order::Pixels), (&vp[..], Order::Pixels));
            let same = |a: &[f32], b: &[f32], what: &str| {
                assert_eq!(a.len(), b.len());
                for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                        "{g:?} {what} {i}: {a} vs {b}"
                    );
                }
            };
            let y = forward(g, &x, Order::Planes, &w, None, true);
            same(
                &forward(g, &xp, Order::Pixels, &w, None, true),
                &y,
                "forward",
            );
            let bias = data(g.c_in, 43 + n as u32);
            let (gx, order) = adjoint(g, &v, Order::Planes, &w, Some(&bias), true);
            let (gxp, order_p) = adjoint(g, &vp, Order::Pixels, &w, Some(&bias), true);
            let as_planes = |v: &[f32], order| in_planes(v, order, g.c_in, plane).into_owned();
            same(&as_planes(&gxp, order_p), &as_planes(&gx, order), "adjoint");
            let dw = wgrad(g, xs, vs);
            same(&wgrad(g, xps, vs), &dw, "∂W, x channels-last");
            same(&wgrad(g, xs, vps), &dw, "∂W, g channels-last");
            same(&wgrad(g, xps, vps), &dw, "∂W, both channels-last");
            let sums = channel_sums(&v, Order::Planes, g.c_out, p);
            same(
                &channel_sums(&vp, Order::Pixels, g.c_out, p),
                &sums,
                "bias ∂",
            );
            if g.layout() == Layout::Pixels {
                for pass in [Pass::Conv, Pass::ConvTranspose] {
                    let (dx, dw, _) = both_grads(g, pass, xs, vs, &w, None);
                    for (a, b) in [(xps, vs), (xs, vps), (xps, vps)] {
                        let (dx2, dw2, _) = both_grads(g, pass, a, b, &w, None);
                        same(&dx2, &dx, "fused ∂x");
                        same(&dw2, &dw, "fused ∂W");
                    }
                }
            }
        }
    }

    /// Geometries the models use (4×4 stride 2 padding 1, 1×1) and odd ones (asymmetric
    /// stride, padding larger than a tap reaches, a kernel as wide as the padded input), in
    /// each of the three layouts.
    fn geometries() -> Vec<Geometry> {
        let x = |c, h, w| [3, c, h, w];
        vec![
            Geometry::conv2d(x(2, 8, 8), [3, 2, 4, 4], [2, 2], [(1, 1), (1, 1)]),
            Geometry::conv2d(x(3, 5, 5), [4, 3, 1, 1], [1, 1], [(0, 0), (0, 0)]),
            Geometry::conv2d(x(2, 7, 6), [2, 2, 3, 2], [2, 1], [(2, 0), (1, 3)]),
            Geometry::conv2d(x(1, 4, 5), [2, 1, 6, 7], [3, 3], [(1, 1), (1, 1)]),
            Geometry::conv_transpose2d(x(3, 4, 4), [3, 2, 4, 4], [2, 2], [1, 1], [0, 0]),
            Geometry::conv_transpose2d(x(2, 3, 5), [2, 3, 3, 3], [2, 3], [1, 0], [1, 2]),
            Geometry::conv2d(x(1, 16, 16), [3, 1, 4, 4], [2, 2], [(1, 1), (1, 1)]),
            Geometry::conv_transpose2d(x(3, 8, 8), [3, 1, 4, 4], [2, 2], [1, 1], [0, 0]),
            // One input channel and a multiple of 8 outputs: the direct kernels (`single`) on
            // CPUs with AVX2 and FMA (16 channels; 40 = 32 + 8 with 9 taps, transposed).
            Geometry::conv2d(x(1, 9, 10), [16, 1, 4, 4], [2, 2], [(1, 1), (1, 1)]),
            Geometry::conv_transpose2d(x(40, 5, 4), [40, 1, 3, 3], [2, 2], [1, 1], [1, 0]),
            Geometry::conv2d(x(1, 7, 6), [8, 1, 3, 2], [2, 1], [(2, 0), (1, 3)]),
            // 49 taps: the adjoint's tap blocks of 16, 16, 16 and a last one of 1.
            Geometry::conv2d(x(1, 9, 11), [8, 1, 7, 7], [1, 1], [(3, 3), (3, 3)]),
            // More than 32 output channels: weight gradients in channel blocks of 32 + 8.
            Geometry::conv2d(x(8, 6, 6), [40, 8, 3, 3], [2, 2], [(1, 1), (1, 1)]),
            Geometry::conv_transpose2d(x(40, 3, 3), [40, 8, 4, 4], [2, 2], [1, 1], [0, 0]),
        ]
        .into_iter()
        .map(|g| g.expect("a valid geometry"))
        .collect()
    }

    /// The forward pass equals the definition; the adjoint satisfies ⟨conv(x), v⟩ =
    /// ⟨x, adjoint(v)⟩; the weight gradient satisfies ⟨conv_W(x), v⟩ = ⟨W, ∂W(x, v)⟩; the
    /// bias adds per channel and ReLU clips.
    #[test]
    fn kernels_match_the_definition_and_their_adjoints() {
        let layouts: Vec<Layout> = geometries().iter().map(Geometry::layout).collect();
        for layout in [Layout::Pointwise, Layout::Rows, Layout::Pixels] {
            assert!(layouts.contains(&layout), "{layout:?} is tested");
        }
        for (n, g) in geometries().iter().enumerate() {
            let batch = 3;
            let x = data(batch * g.in_len(), 1 + n as u32);
            let w = data(g.c_out * g.k(), 7 + n as u32);
            let v = data(batch * g.out_len(), 13 + n as u32);
            let y = fwd(g, &x, &w, None, false);
            close(&y, &naive_forward(g, &x, &w), &format!("{g:?} forward"));
            let lhs = dot(&y, &v);
            let adj = adj(g, &v, &w);
            let rhs = dot(&x, &adj);
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{g:?}: adjoint {lhs} vs {rhs}"
            );
            let dw = wgrad(g, (&x, Order::Planes), (&v, Order::Planes));
            let rhs = dot(&w, &dw);
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{g:?}: ∂W {lhs} vs {rhs}"
            );
            let bias = data(g.c_out, 99);
            let yb = fwd(g, &x, &w, Some(&bias), true);
            for (i, (&a, &b)) in yb.iter().zip(&y).enumerate() {
                let c = (i / g.p()) % g.c_out;
                assert!((a - (b + bias[c]).max(0.0)).abs() < 1e-5, "{g:?} bias+relu");
            }
            let sums = channel_sums(&v, Order::Planes, g.c_out, g.p());
            let want: f64 = v.iter().map(|&a| a as f64).sum();
            assert!((sums.iter().map(|&s| s as f64).sum::<f64>() - want).abs() < 1e-3);
        }
    }

    /// Every kernel gives bit-identical results with 1, 2, 3 and 8 threads, in both
    /// unfolding layouts.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let p = [(1, 1), (1, 1)];
        for (c_in, side) in [(4, 16), (1, 32)] {
            let g = Geometry::conv2d([37, c_in, side, side], [8, c_in, 4, 4], [2, 2], p).unwrap();
            same_for_any_thread_count(&g);
        }
    }

    fn same_for_any_thread_count(g: &Geometry) {
        let g = *g;
        let batch = 37;
        let x = data(batch * g.in_len(), 3);
        let w = data(g.c_out * g.k(), 4);
        let v = data(batch * g.out_len(), 5);
        let yp = data(batch * g.out_len(), 6);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let vp = pixels_of(&v, g.c_out, g.p());
                (
                    forward(&g, &x, Order::Planes, &w, None, true),
                    adjoint(&g, &v, Order::Planes, &w, None, false),
                    wgrad(&g, (&x, Order::Planes), (&v, Order::Planes)),
                    channel_sums(&v, Order::Planes, g.c_out, g.p()),
                    channel_sums(&vp, Order::Pixels, g.c_out, g.p()),
                    weight_grad(&g, (&x, Order::Planes), (&vp, Order::Pixels), Some(&yp)),
                    adjoint(&g, &vp, Order::Pixels, &w, None, true),
                )
            })
        };
        let reference = run(1);
        for threads in [2, 3, 8] {
            assert!(run(threads) == reference, "{threads} threads");
        }
    }

    /// The transposes (AVX where the CPU has it, and the generic one) equal the definition,
    /// for sizes with full tiles and edges.
    #[test]
    fn transposes_match_the_definition() {
        for (channels, plane) in [(8, 8), (32, 1024), (13, 29), (1, 9), (64, 16)] {
            let src = data(channels * plane, 17);
            let want: Vec<f32> = (0..plane * channels)
                .map(|i| src[(i % channels) * plane + i / channels])
                .collect();
            let mut got = vec![0.0f32; want.len()];
            transpose(&src, &mut got, channels, plane);
            assert!(got == want, "{channels} × {plane}");
            let mut got = vec![0.0f32; want.len()];
            transpose_generic(&src, &mut got, channels, plane);
            assert!(got == want, "{channels} × {plane}, generic");
        }
    }

    /// The fused backward pass equals the separate kernels (to float rounding: the weight
    /// gradient's sums are grouped differently), for both layer kinds.
    #[test]
    fn fused_backward_matches_the_separate_kernels() {
        let g = Geometry::conv2d([19, 8, 12, 12], [6, 8, 4, 4], [2, 2], [(1, 1), (1, 1)]).unwrap();
        assert_eq!(g.layout(), Layout::Pixels);
        let batch = 19;
        let x = data(batch * g.in_len(), 21);
        let w = data(g.c_out * g.k(), 22);
        let v = data(batch * g.out_len(), 23);
        let near = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len(), "{what}");
            for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{what} {i}: {a} vs {b}"
                );
            }
        };
        let (xs, vs) = ((&x[..], Order::Planes), (&v[..], Order::Planes));
        let (dx, dw, _) = both_grads(&g, Pass::Conv, xs, vs, &w, None);
        let in_planes = |t: &[f32]| planes_of(t, g.c_in, g.h * g.w);
        near(&in_planes(&dx), &adj(&g, &v, &w), "conv ∂x");
        near(&dw, &wgrad(&g, xs, vs), "conv ∂W");
        // The transposed convolution: upstream gradient on the input side, its input on the
        // output side.
        let (dx, dw, _) = both_grads(&g, Pass::ConvTranspose, xs, vs, &w, None);
        let out_planes = planes_of(&dx, g.c_out, g.p());
        near(
            &out_planes,
            &fwd(&g, &x, &w, None, false),
            "conv-transpose ∂x",
        );
        near(&dw, &wgrad(&g, xs, vs), "conv-transpose ∂W");
    }

    /// Masking the upstream gradient by the ReLU's output inside the backward kernels, and
    /// summing the bias gradient there, equals masking first and summing separately.
    #[test]
    fn backward_kernels_apply_the_relu_mask_as_they_read() {
        let premask = |v: &[f32], y: &[f32]| -> Vec<f32> {
            v.iter()
                .zip(y)
                .map(|(&v, &y)| if y > 0.0 { v } else { 0.0 })
                .collect()
        };
        for (n, g) in geometries().iter().enumerate() {
            let batch = 5;
            let x = data(batch * g.in_len(), 51 + n as u32);
            let w = data(g.c_out * g.k(), 53 + n as u32);
            let v = data(batch * g.out_len(), 57 + n as u32);
            let y = data(batch * g.out_len(), 59 + n as u32);
            let vm = premask(&v, &y);
            for order in [Order::Planes, Order::Pixels] {
                let conv = |t: &[f32], c, plane| match order {
                    Order::Planes => t.to_vec(),
                    Order::Pixels => pixels_of(t, c, plane),
                };
                let (vo, yo, vmo) = (
                    conv(&v, g.c_out, g.p()),
                    conv(&y, g.c_out, g.p()),
                    conv(&vm, g.c_out, g.p()),
                );
                let xs = (&x[..], Order::Planes);
                let (dw, db) = weight_grad(g, xs, (&vo, order), Some(&yo));
                let (dw_want, db_want) = weight_grad(g, xs, (&vmo, order), None);
                assert!(dw == dw_want, "{g:?} {order:?}: ∂W");
                let sums = channel_sums(&vm, Order::Planes, g.c_out, g.p());
                for (a, b) in db.iter().zip(&db_want).chain(db.iter().zip(&sums)) {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{g:?} {order:?}: ∂b"
                    );
                }
                if g.layout() != Layout::Pixels {
                    continue;
                }
                let got = both_grads(g, Pass::Conv, xs, (&vo, order), &w, Some(&yo));
                let want = both_grads(g, Pass::Conv, xs, (&vmo, order), &w, None);
                assert!(got.0 == want.0 && got.1 == want.1, "{g:?} {order:?}: conv");
                assert!(got.2 == want.2, "{g:?} {order:?}: conv ∂b");
                // The transposed convolution: the masked gradient is on the input side.
                let yx = data(batch * g.in_len(), 61 + n as u32);
                let xm = premask(&x, &yx);
                let xo = conv(&x, g.c_in, g.h * g.w);
                let (yxo, xmo) = (conv(&yx, g.c_in, g.h * g.w), conv(&xm, g.c_in, g.h * g.w));
                let vs = (&v[..], Order::Planes);
                let got = both_grads(g, Pass::ConvTranspose, (&xo, order), vs, &w, Some(&yxo));
                let want = both_grads(g, Pass::ConvTranspose, (&xmo, order), vs, &w, None);
                assert!(
                    got.0 == want.0 && got.1 == want.1,
                    "{g:?} {order:?}: conv-T"
                );
                let sums = channel_sums(&xm, Order::Planes, g.c_in, g.h * g.w);
                for (a, b) in got.2.iter().zip(&sums) {
                    assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{g:?}: conv-T ∂b");
                }
            }
        }
    }

    /// Shapes that do not fit give no geometry.
    #[test]
    fn geometry_refuses_shapes_that_do_not_fit() {
        let p = [(1, 1), (1, 1)];
        assert!(
            Geometry::conv2d([1, 2, 8, 8], [3, 3, 4, 4], [2, 2], p).is_none(),
            "channels"
        );
        assert!(
            Geometry::conv2d([1, 2, 8, 8], [3, 2, 4, 4], [0, 2], p).is_none(),
            "stride"
        );
        assert!(
            Geometry::conv2d([1, 2, 1, 1], [3, 2, 4, 4], [1, 1], p).is_none(),
            "kernel"
        );
        let g = Geometry::conv2d([1, 2, 8, 8], [3, 2, 4, 4], [2, 2], p).unwrap();
        assert_eq!((g.oh, g.ow), (4, 4));
        let t = Geometry::conv_transpose2d([1, 3, 4, 4], [3, 2, 4, 4], [2, 2], [1, 1], [0, 0]);
        let t = t.unwrap();
        assert_eq!((t.c_in, t.h, t.w, t.c_out, t.oh, t.ow), (2, 8, 8, 3, 4, 4));
        assert!(
            Geometry::conv_transpose2d([1, 3, 4, 4], [2, 2, 4, 4], [2, 2], [1, 1], [0, 0])
                .is_none()
        );
    }
}
