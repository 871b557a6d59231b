//! Fully connected layers (`x·W + b`, optionally followed by ReLU) as one fused, differentiable
//! operation on the CPU, for `f32` tensors on Burn's `flex` backend.
//!
//! Burn's `Linear::forward` on `flex` is a matmul into a fresh output (allocated zeroed, then
//! copied once more to re-align it: `FlexTensor::empty` in burn-flex 0.22), then a broadcast
//! bias add into another fresh tensor, then `relu` into a third; the backward pass allocates
//! the same way for each of its matmuls. On the reference MNIST VAE those zero-fills and
//! copies ran on the training thread while the other core waited. Here:
//!
//! - forward: each thread's block of the output starts as the bias broadcast over its rows,
//!   `gemm` accumulates `x·W` into it (no zero-fill, no copy, no separate add), and ReLU is
//!   applied in place;
//! - backward: `∂x = g·Wᵀ` and `∂W = xᵀ·g` are written by `gemm` straight into new buffers
//!   (skipped for inputs that need no gradient), `∂b = Σ_rows g`, where `g` is the upstream
//!   gradient masked by `y > 0` after a ReLU.
//!
//! Products of ≥ 64·64·128 multiply-adds are split over the rayon pool along their longer
//! output side, one block per thread and one fork-join per product; the calling thread's block
//! follows the threads' measured speeds (`Share`). **Invariant:** a split only decides which
//! thread computes which output elements, each element is one `gemm` sum over the whole depth,
//! so results are bit-identical for any split or thread count (tested).
//!
//! **Safety.** Operands reach `gemm` only as [`MatRef`]s, whose constructors check that every
//! element they address lies inside their slice, through one safe entry point (`gemm_into`)
//! that checks the operands' inner sizes and the output's and the bias's lengths; a shape
//! error is refused there ([`ShapeError`]), before any pointer is formed. The `unsafe` below
//! that point is the `gemm` call and the threads' writes into disjoint blocks of one output.
//!
//! `ae_core::linear` calls [`linear`] when [`applies`] says so (and the kernels are
//! [`enabled`](crate::enabled)), `Linear::forward` otherwise; `ae-core`'s tests compare both
//! paths on values and gradients.
use crate::host::{LayerState, contiguous, filled, is_flex_f32, record_layer, tensor};
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
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Whether the fused path can run: all three tensors `f32` on the `flex` device, shapes
/// consistent, no empty dimension.
pub fn applies(x: &Tensor<2>, w: &Tensor<2>, b: &Tensor<1>) -> bool {
    let ([rows, d_in], [w_in, d_out], [b_out]) = (x.dims(), w.dims(), b.dims());
    is_flex_f32(x)
        && is_flex_f32(w)
        && is_flex_f32(b)
        && d_in == w_in
        && d_out == b_out
        && rows > 0
        && d_in > 0
        && d_out > 0
}

/// `x·W + b` for `x: [batch, d_in]`, `w: [d_in, d_out]`, `b: [d_out]`, then ReLU if `with_relu`;
/// differentiable. Only for tensors where [`applies`] holds.
pub fn linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, with_relu: bool) -> Tensor<2> {
    let out = <burn::backend::Dispatch as LinearOps>::fused_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        with_relu,
    );
    Tensor::from_dispatch(out)
}

/// The backend extension: a fully connected layer with an optional ReLU.
#[backend_extension(Flex, Autodiff)]
pub trait LinearOps: Backend {
    /// `[batch, d_in] · [d_in, d_out] + [d_out]`, then ReLU if `with_relu`.
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        with_relu: bool,
    ) -> FloatTensor<Self>;
}

/// Products of at least this many multiply-adds (m·n·k) are split over the pool: about
/// 12 µs of one core's work at its peak, several times the cost of one fork-join.
const PARALLEL_THRESHOLD: usize = 64 * 64 * 128;

/// gemm's small-product bound: a product with both output sides at most this is summed in
/// depth blocks of 512, a larger one in blocks sized from the L1 cache (see [`gemm_into`]).
const GEMM_SMALL: usize = 64;

/// gemm's depth block for a small product (`k.min(512)`); the L1-sized block is at least this.
const GEMM_SMALL_DEPTH: usize = 512;

/// A shape that the fused products refuse: operands whose sizes do not fit together, or a
/// view that would address elements outside its slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError(String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fused linear product: {}", self.0)
    }
}

impl std::error::Error for ShapeError {}

/// A read-only `rows × cols` matrix inside a slice: element `(r, c)` is `data[r·rs + c·cs]`.
/// The constructors check that the largest such index lies inside `data`, so a view carries
/// its extent and the slice's lifetime, and nothing it hands to `gemm` can reach past it.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A view with row stride `rs` and column stride `cs`; refuses an empty shape, strides
    /// beyond `isize::MAX`, and any element `(r, c)` outside `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Result<Self, ShapeError> {
        if rows == 0 || cols == 0 {
            return Err(ShapeError(format!("empty {rows} × {cols} operand")));
        }
        let last = (rows - 1)
            .checked_mul(rs)
            .zip((cols - 1).checked_mul(cs))
            .and_then(|(a, b)| a.checked_add(b));
        let strides_fit = rs <= isize::MAX as usize && cs <= isize::MAX as usize;
        match last {
            Some(last) if last < data.len() && strides_fit => Ok(Self {
                data,
                rows,
                cols,
                rs,
                cs,
            }),
            _ => Err(ShapeError(format!(
                "a {rows} × {cols} operand with strides ({rs}, {cs}) does not fit in {} elements",
                data.len()
            ))),
        }
    }

    /// `data` as a row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, ShapeError> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// A pointer to element `(r, c)`, bounds-checked by the slice index.
    fn ptr(&self, r: usize, c: usize) -> *const f32 {
        &self.data[r * self.rs + c * self.cs]
    }
}

/// Which part of the output one thread computes: rows or columns `start..end`.
#[derive(Clone, Copy)]
enum Block {
    Rows(usize, usize),
    Cols(usize, usize),
}

/// How a product's output starts and ends, applied by each thread to its own block.
#[derive(Clone, Copy)]
struct Fill<'a> {
    /// Start from this bias broadcast over rows and accumulate into it; `None`: overwrite.
    bias: Option<&'a [f32]>,
    /// Apply ReLU to the result.
    relu: bool,
}

impl Fill<'_> {
    /// Overwrite with the product, nothing else.
    const PLAIN: Fill<'static> = Fill {
        bias: None,
        relu: false,
    };
}

/// The shape `(m, n, k)` of `lhs·rhs` into `dst_len` elements: refuses operands whose inner
/// sizes differ and an output that is not `m·n` long (the checks of every safe entry point).
fn product_shape(
    lhs: &MatRef<'_>,
    rhs: &MatRef<'_>,
    dst_len: usize,
) -> Result<(usize, usize, usize), ShapeError> {
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    if rhs.rows != k {
        return Err(ShapeError(format!(
            "{m} × {k} times {} × {n}: inner sizes differ",
            rhs.rows
        )));
    }
    if m.checked_mul(n) != Some(dst_len) {
        return Err(ShapeError(format!(
            "a {m} × {n} product into {dst_len} elements"
        )));
    }
    Ok((m, n, k))
}

/// `dst ← [relu](bias + lhs·rhs)` (see [`Fill`]) for a row-major `dst` of `m × n` elements
/// (`lhs`: `m × k`, `rhs`: `k × n`); on `Ok`, every element of `dst` has been written, none
/// read before. The one safe entry point to the kernels below: it refuses operands whose inner
/// sizes differ, a `dst` that is not `m·n` long and a bias that is not `n` long, before any
/// pointer is formed.
///
/// A large product is split along its longer output side into one block per rayon thread
/// (multiples of 8 rows or columns, and wider than 64 where the other side is at most 64:
/// see `GEMM_SMALL`), each a single-threaded `gemm` over the whole depth:
/// one fork-join per product, where gemm's own splitting joins once per depth block, and
/// every element is summed in the same order however the product is split. The calling
/// thread's block is sized by [`Share`] from the threads' measured speeds.
fn gemm_into(
    dst: &mut [MaybeUninit<f32>],
    fill: Fill<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
) -> Result<(), ShapeError> {
    let (m, n, k) = product_shape(&lhs, &rhs, dst.len())?;
    if let Some(bias) = fill.bias
        && bias.len() != n
    {
        return Err(ShapeError(format!(
            "a bias of {} elements for {n} columns",
            bias.len()
        )));
    }
    let dst = dst.as_mut_ptr().cast::<f32>();
    let threads = rayon::current_num_threads();
    let side = m.max(n);
    // gemm 0.19 sums a product with m ≤ 64 and n ≤ 64 in depth blocks of 512 and a larger
    // one in depth blocks sized from the L1 cache (`gemm_common::cache::kernel_params`: 512
    // with a 32 KiB 8-way L1, 1024 with a 48 KiB 12-way one). A block must fall on the same
    // side of that line as the whole product, or its sums would be rounded differently
    // (a depth of at most 512 is one block either way, so those products split as before).
    let min_block = if m.min(n) <= GEMM_SMALL && side > GEMM_SMALL && k > GEMM_SMALL_DEPTH {
        GEMM_SMALL + 8
    } else {
        8
    };
    // Fewer than two blocks of `min_block` (one thread, or a side under 16): no split.
    let blocks = threads.min(side / min_block);
    if m.saturating_mul(n).saturating_mul(k) < PARALLEL_THRESHOLD || blocks < 2 {
        // SAFETY: dst holds m·n elements, the bias n, the operands are m × k and k × n inside
        // their slices (all checked above); the block is the whole output.
        unsafe { gemm_block(dst, fill, (m, n, k), &lhs, &rhs, Block::Cols(0, n)) };
        return Ok(());
    }
    let share = SHARE.get(threads);
    // The calling thread's block, then equal blocks for the others, in multiples of 8; a
    // remainder narrower than `min_block` joins the block before it.
    let first = ((side as f64 * share / 8.0).round() as usize * 8)
        .clamp(min_block, side - min_block * (blocks - 1));
    let width = (side - first).div_ceil(blocks - 1).div_ceil(8) * 8;
    let mut bounds = Vec::with_capacity(blocks);
    let mut start = first;
    while start < side {
        let mut end = (start + width).min(side);
        if side - end < min_block {
            end = side;
        }
        bounds.push((start, end));
        start = end;
    }
    let block = |start: usize, end: usize| {
        if n >= m {
            Block::Cols(start, end)
        } else {
            Block::Rows(start, end)
        }
    };
    let (dst, lhs, rhs) = (SendPtr(dst), &lhs, &rhs);
    let other_ns = AtomicU64::new(0);
    let mut own_ns = 0;
    rayon::scope(|s| {
        for &(start, end) in &bounds {
            let other_ns = &other_ns;
            s.spawn(move |_| {
                let dst = dst;
                let t = std::time::Instant::now();
                // SAFETY: as above; blocks are disjoint parts of dst, inside m × n.
                unsafe { gemm_block(dst.0, fill, (m, n, k), lhs, rhs, block(start, end)) };
                // Per column (or row) of the block, the first block to finish.
                let per = t.elapsed().as_nanos() as u64 * 1024 / (end - start) as u64;
                let _ =
                    other_ns.compare_exchange(0, per.max(1), Ordering::Relaxed, Ordering::Relaxed);
            });
        }
        let t = std::time::Instant::now();
        // SAFETY: as above; the first block, on this thread, disjoint from the spawned ones.
        unsafe { gemm_block(dst.0, fill, (m, n, k), lhs, rhs, block(0, first)) };
        own_ns = t.elapsed().as_nanos() as u64 * 1024 / first as u64;
    });
    SHARE.update(threads, own_ns, other_ns.into_inner());
    Ok(())
}

/// The calling thread's share of a split product, adapted to how fast the threads run.
///
/// On a shared or virtual machine the cores do not run at one speed: measured on the
/// development VM, the other core took 30 % longer than the training thread for the same
/// block over a whole epoch, and the reverse in another; with equal blocks the faster thread
/// waits. After each split product, the time per column of the calling thread's block and
/// of the first other block to finish give the share that would have made both end
/// together; the share moves an eighth of the way there, staying between half and one and
/// a half of an equal share. The split changes only who computes which elements, never the
/// order of any sum, so results do not depend on it (tested bit for bit).
struct Share(AtomicU32);

static SHARE: Share = Share(AtomicU32::new(0));

impl Share {
    /// The current share for `threads` threads (1/threads until measured).
    fn get(&self, threads: usize) -> f64 {
        match self.0.load(Ordering::Relaxed) {
            0 => 1.0 / threads as f64,
            bits => f32::from_bits(bits) as f64,
        }
    }

    /// Moves the share towards equal finishing times, given the nanoseconds per 1024
    /// columns of the calling thread's block and of another thread's.
    fn update(&self, threads: usize, own: u64, other: u64) {
        if own == 0 || other == 0 {
            return;
        }
        // Speeds are inverse times per column; the ideal share is own speed over the sum.
        let (own_speed, other_speed) = (1.0 / own as f64, 1.0 / other as f64);
        let ideal = own_speed / (own_speed + (threads - 1) as f64 * other_speed);
        let current = self.get(threads);
        let next =
            (current + (ideal - current) / 8.0).clamp(0.5 / threads as f64, 1.5 / threads as f64);
        self.0.store((next as f32).to_bits(), Ordering::Relaxed);
    }
}

/// A raw output pointer handed to the pool's threads (each writes its own block).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: the threads write disjoint blocks, and the scope outlives none of them.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// One block of the product, single-threaded: the bias into the block, `gemm` over the
/// whole depth, then ReLU, as `fill` says.
///
/// # Safety
/// `dst` has room for `m·n` elements, the bias (if any) holds `n`, `lhs` is `m × k` and `rhs`
/// `k × n`, the block lies inside `m × n`, and no other thread touches it (as checked and
/// arranged by [`gemm_into`]).
unsafe fn gemm_block(
    dst: *mut f32,
    fill: Fill<'_>,
    (m, n, k): (usize, usize, usize),
    lhs: &MatRef<'_>,
    rhs: &MatRef<'_>,
    block: Block,
) {
    // The block's rows and columns in dst, and its first element in lhs and rhs.
    let ((r0, r1), (c0, c1), lhs_start, rhs_start) = match block {
        Block::Cols(a, b) => ((0, m), (a, b), lhs.ptr(0, 0), rhs.ptr(0, a)),
        Block::Rows(a, b) => ((a, b), (0, n), lhs.ptr(a, 0), rhs.ptr(0, 0)),
    };
    if let Some(bias) = fill.bias {
        for r in r0..r1 {
            // SAFETY: row r's columns c0..c1 lie inside dst (room for m·n), bias has n.
            unsafe {
                std::ptr::copy_nonoverlapping(bias[c0..c1].as_ptr(), dst.add(r * n + c0), c1 - c0)
            };
        }
    }
    // SAFETY: forwarded; the block's first elements are bounds-checked by `MatRef::ptr`, the
    // views' extents by their constructors, and dst's block is initialised when gemm reads it
    // (accumulating onto the bias).
    unsafe {
        gemm::gemm(
            r1 - r0,
            c1 - c0,
            k,
            dst.add(r0 * n + c0),
            1,
            n as isize,
            fill.bias.is_some(),
            lhs_start,
            lhs.cs as isize,
            lhs.rs as isize,
            rhs_start,
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    if fill.relu {
        for r in r0..r1 {
            // SAFETY: gemm has written the block's rows; no other thread touches them.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.add(r * n + c0), c1 - c0) };
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}

/// `dst ← lhs·rhs` (or `dst ← dst + lhs·rhs` when `accumulate`) for a row-major `dst` of
/// `lhs.rows() × rhs.cols()` elements, on the calling thread: the products of the conv
/// kernels ([`crate::conv`]), which split their work over images instead. Refuses operands
/// whose inner sizes differ and a `dst` of the wrong length, before any pointer is formed.
pub(crate) fn gemm_serial(
    dst: &mut [f32],
    accumulate: bool,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
) -> Result<(), ShapeError> {
    let shape = product_shape(&lhs, &rhs, dst.len())?;
    // SAFETY: dst holds m·n initialised elements (checked above; gemm reads them only when
    // accumulating), and it is borrowed mutably.
    unsafe { gemm_on_thread(dst.as_mut_ptr(), accumulate, shape, &lhs, &rhs) };
    Ok(())
}

/// `dst = lhs·rhs` on the calling thread into a buffer that need not be initialised (`gemm`
/// writes every element without reading it); returns it initialised. Refuses operands whose
/// inner sizes differ or a `dst` of the wrong length.
pub(crate) fn gemm_serial_new<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
) -> Result<&'a mut [f32], ShapeError> {
    let shape = product_shape(&lhs, &rhs, dst.len())?;
    if shape.2 == 0 {
        return Ok(crate::host::fill_uninit(dst, 0.0));
    }
    // SAFETY: dst has room for m·n elements (checked above), gemm is told not to read it and
    // writes each of them once for k > 0, and it is borrowed mutably.
    unsafe { gemm_on_thread(dst.as_mut_ptr().cast::<f32>(), false, shape, &lhs, &rhs) };
    // SAFETY: all m·n = dst.len() elements were written by gemm above, and MaybeUninit<f32>
    // has f32's layout.
    Ok(unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) })
}

/// The one serial `gemm` call of [`gemm_serial`] and [`gemm_serial_new`]: row-major `dst`
/// (`m × n`) ← `lhs·rhs`, plus `dst` when `read_dst`.
///
/// # Safety
/// `dst` points to `m·n` writable elements, initialised when `read_dst`, that nothing else
/// touches during the call; `(m, n, k)` is [`product_shape`]'s answer for `lhs` and `rhs`
/// (their constructors checked their extents, and `ptr` bounds-checks the first element).
unsafe fn gemm_on_thread(
    dst: *mut f32,
    read_dst: bool,
    (m, n, k): (usize, usize, usize),
    lhs: &MatRef<'_>,
    rhs: &MatRef<'_>,
) {
    // SAFETY: forwarded from the caller (see above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            read_dst,
            lhs.ptr(0, 0),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.ptr(0, 0),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// A new row-major `lhs.rows() × rhs.cols()` matrix `lhs·rhs`, written once by `gemm` (split
/// over the rayon pool when large; the result does not depend on the split). Refuses operands
/// whose inner sizes differ.
pub fn product(lhs: MatRef<'_>, rhs: MatRef<'_>) -> Result<Vec<f32>, ShapeError> {
    let len = lhs
        .rows
        .checked_mul(rhs.cols)
        .ok_or_else(|| ShapeError(format!("a {} × {} product", lhs.rows, rhs.cols)))?;
    // SAFETY: gemm_into writes every element of its output when it returns Ok.
    unsafe { filled(len, |out| gemm_into(out, Fill::PLAIN, lhs, rhs)) }
}

/// Panics with the shape error: the backend extension's operations cannot return one, and
/// [`applies`] has checked the shapes before any of them runs.
pub(crate) fn checked<T>(r: Result<T, ShapeError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Forward on host tensors: `y = x·W + b` (ReLU applied in place when asked).
fn run_forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor, with_relu: bool) -> FlexTensor {
    let (rows, d_in) = (x.layout().shape()[0], x.layout().shape()[1]);
    let d_out = w.layout().shape()[1];
    let (xs, ws, bs) = (contiguous(x), contiguous(w), contiguous(b));
    let fill = Fill {
        bias: Some(&bs),
        relu: with_relu,
    };
    let (lhs, rhs) = (
        checked(MatRef::row_major(&xs, rows, d_in)),
        checked(MatRef::row_major(&ws, d_in, d_out)),
    );
    // SAFETY: gemm_into writes every element of its output when it returns Ok.
    let y = checked(unsafe { filled(rows * d_out, |y| gemm_into(y, fill, lhs, rhs)) });
    tensor(y, [rows, d_out])
}

impl LinearOps for Flex {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        with_relu: bool,
    ) -> FloatTensor<Self> {
        run_forward(&x, &w, &b, with_relu)
    }
}

/// Elements per rayon task in the backward pass's element-wise work (ReLU mask, bias sums).
const ELEMENTS_PER_TASK: usize = 16 * 1024;

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = LayerState;

    fn backward(self, ops: Ops<LayerState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let (x, w, y) = ops.state;
        let grad = grads.consume::<Flex>(&ops.node);
        let (rows, d_out) = (grad.layout().shape()[0], grad.layout().shape()[1]);
        let g = match y {
            // Through the ReLU: the gradient where the output was positive, else 0.
            Some(y) => {
                let (gs, ys) = (contiguous(&grad), contiguous(&y));
                let mut masked = vec![0.0f32; gs.len()];
                masked
                    .par_chunks_mut(ELEMENTS_PER_TASK)
                    .zip(gs.par_chunks(ELEMENTS_PER_TASK))
                    .zip(ys.par_chunks(ELEMENTS_PER_TASK))
                    .for_each(|((m, g), y)| {
                        for ((m, &g), &y) in m.iter_mut().zip(g).zip(y) {
                            *m = if y > 0.0 { g } else { 0.0 };
                        }
                    });
                Cow::Owned(masked)
            }
            None => contiguous(&grad),
        };
        if let (Some(node), Some(w)) = (node_x, w) {
            // ∂x = g·Wᵀ: [rows, d_out]·[d_out, d_in].
            let ws = contiguous(&w);
            let d_in = ws.len() / d_out;
            let dx = checked(product(
                checked(MatRef::row_major(&g, rows, d_out)),
                checked(MatRef::row_major(&ws, d_in, d_out)).t(),
            ));
            grads.register::<Flex>(node.id, tensor(dx, [rows, d_in]));
        }
        if let (Some(node), Some(x)) = (node_w, x) {
            // ∂W = xᵀ·g: [d_in, rows]·[rows, d_out].
            let xs = contiguous(&x);
            let d_in = xs.len() / rows;
            let dw = checked(product(
                checked(MatRef::row_major(&xs, rows, d_in)).t(),
                checked(MatRef::row_major(&g, rows, d_out)),
            ));
            grads.register::<Flex>(node.id, tensor(dw, [d_in, d_out]));
        }
        if let Some(node) = node_b {
            // Column sums, split by columns: each sum still runs over the rows in order.
            let mut db = vec![0.0f32; d_out];
            let cols = (ELEMENTS_PER_TASK / rows).max(16);
            db.par_chunks_mut(cols).enumerate().for_each(|(i, db)| {
                let c0 = i * cols;
                for row in g.chunks_exact(d_out) {
                    let row = &row[c0..c0 + db.len()];
                    db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
                }
            });
            grads.register::<Flex>(node.id, tensor(db, [d_out]));
        }
    }
}

impl<C: CheckpointStrategy> LinearOps for Autodiff<Flex, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        with_relu: bool,
    ) -> FloatTensor<Self> {
        record_layer::<C, _>(LinearBackward, [x, w, b], with_relu, |x, w, b| {
            run_forward(x, w, b, with_relu)
        })
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    /// `len` deterministic values in [−2, 2) (a multiplicative hash of the index).
    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    /// `product` of two views that must be valid.
    fn mul(lhs: Result<MatRef<'_>, ShapeError>, rhs: Result<MatRef<'_>, ShapeError>) -> Vec<f32> {
        product(lhs.unwrap(), rhs.unwrap()).unwrap()
    }

    /// Views that would read past their slice, operands whose sizes do not fit together, and
    /// outputs or biases of the wrong length are refused with a message, before `gemm` runs.
    #[test]
    fn bad_shapes_are_refused_before_gemm() {
        let a = data(6, 1);
        // 2 × 3 fits in 6 elements; 3 × 3 does not, nor does a stride that steps past the end.
        assert!(MatRef::row_major(&a, 2, 3).is_ok());
        let err = MatRef::row_major(&a, 3, 3).unwrap_err();
        assert!(
            err.to_string().contains("does not fit in 6 elements"),
            "{err}"
        );
        assert!(MatRef::new(&a, 2, 2, 5, 1).is_err());
        assert!(
            MatRef::new(&a, 2, 3, usize::MAX, 1).is_err(),
            "overflowing index"
        );
        assert!(MatRef::row_major(&a, 0, 3).is_err(), "empty");
        // 2 × 3 times 2 × 3: inner sizes 3 and 2.
        let m = MatRef::row_major(&a, 2, 3).unwrap();
        let err = product(m, m).unwrap_err();
        assert!(err.to_string().contains("inner sizes differ"), "{err}");
        assert_eq!(product(m, m.t()).unwrap().len(), 4);
        // The safe entry point checks the output's and the bias's lengths.
        let mut short = vec![MaybeUninit::new(0.0f32); 5];
        assert!(
            gemm_into(&mut short, Fill::PLAIN, m.t(), m).is_err(),
            "3 × 3 into 5"
        );
        let mut out = vec![MaybeUninit::new(0.0f32); 9];
        let bias = Fill {
            bias: Some(&a[..2]),
            relu: false,
        };
        let err = gemm_into(&mut out, bias, m.t(), m).unwrap_err();
        assert!(err.to_string().contains("bias of 2 elements"), "{err}");
    }

    /// The share moves towards the speeds' ratio, an eighth of the way per product, and
    /// stays inside its bounds.
    #[test]
    fn share_converges_to_the_speed_ratio() {
        let share = Share(AtomicU32::new(0));
        assert_eq!(share.get(2), 0.5);
        // The calling thread needs 1000 ns per column, the other 1500: ideal 0.6.
        share.update(2, 1000, 1500);
        assert!((share.get(2) - (0.5 + 0.1 / 8.0)).abs() < 1e-6);
        for _ in 0..200 {
            share.update(2, 1000, 1500);
        }
        assert!((share.get(2) - 0.6).abs() < 1e-4, "{}", share.get(2));
        for _ in 0..200 {
            share.update(2, 1, 1_000_000);
        }
        assert!((share.get(2) - 0.75).abs() < 1e-6, "clamped at 1.5/threads");
        share.update(2, 0, 5);
        assert!(
            (share.get(2) - 0.75).abs() < 1e-6,
            "no measurement, no change"
        );
        for _ in 0..200 {
            share.update(2, 1_000_000, 1);
        }
        assert!((share.get(2) - 0.25).abs() < 1e-6, "clamped at 0.5/threads");
    }

    /// However the calling thread's share is set, a split product is bit-identical to the
    /// single-threaded one, split by columns and by rows, plain and transposed operands.
    #[test]
    fn split_products_do_not_depend_on_the_share() {
        // (m, n, k): wide output (column split) and tall output (row split).
        for (m, n, k) in [(128, 400, 300), (400, 40, 128)] {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let serial = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let reference =
                serial.install(|| mul(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n)));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            for s in [0.3f32, 0.5, 0.7, 0.95] {
                SHARE.0.store(s.to_bits(), Ordering::Relaxed);
                let split =
                    pool.install(|| mul(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n)));
                assert!(split == reference, "share {s}, {m}x{n}x{k}");
                // Aᵀ read through strides: the same product from a transposed copy of A.
                let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
                let split_t = pool.install(|| {
                    mul(
                        MatRef::row_major(&at, k, m).map(MatRef::t),
                        MatRef::row_major(&b, k, n),
                    )
                });
                assert!(split_t == reference, "share {s}, {m}x{n}x{k}, Aᵀ");
            }
        }
        SHARE.0.store(0, Ordering::Relaxed);
    }

    /// The β sweep's dense-layer products, forward (64×4096 · 4096×512 and back) and
    /// backward (∂W = xᵀ·∂y, ∂x = ∂y·Wᵀ), are bit-identical with 1, 2, 3, 8 and 16 threads:
    /// narrower blocks must not change `gemm`'s summation order.
    #[test]
    fn sweep_layer_products_do_not_depend_on_the_thread_count() {
        let (batch, wide, narrow) = (64, 4096, 512);
        // (m, n, k, lhs transposed, rhs transposed): x·W, h·W₂, ∂W = xᵀ·∂y, ∂x = ∂y·Wᵀ.
        for (m, n, k, lhs_t, rhs_t) in [
            (batch, narrow, wide, false, false),
            (batch, wide, narrow, false, false),
            (wide, narrow, batch, true, false),
            (batch, wide, narrow, false, true),
        ] {
            let (a, b) = (data(m * k, 3), data(k * n, 4));
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let lhs = if lhs_t {
                        MatRef::row_major(&a, k, m).map(MatRef::t)
                    } else {
                        MatRef::row_major(&a, m, k)
                    };
                    let rhs = if rhs_t {
                        MatRef::row_major(&b, n, k).map(MatRef::t)
                    } else {
                        MatRef::row_major(&b, k, n)
                    };
                    mul(lhs, rhs)
                })
            };
            let reference = run(1);
            for threads in [2, 3, 8, 16] {
                let got = run(threads);
                let differing = got
                    .iter()
                    .zip(&reference)
                    .filter(|(x, y)| x.to_bits() != y.to_bits())
                    .count();
                assert_eq!(differing, 0, "{m}x{n}x{k} with {threads} threads");
            }
        }
    }
}
