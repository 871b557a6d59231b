//! Per-op wall time of the fused conv kernels, for `bench --conv-ops` (off unless
//! [`enable`]d; when off, an op costs one relaxed atomic load).
//!
//! Each forward and backward call of [`super::conv2d`] and [`super::conv_transpose2d`] adds
//! its wall time, a call and its multiply-adds to one entry per (op, layer shape), so that a
//! profile says which layer takes the time and how close to the core's peak it runs, without
//! `perf` and without editing the kernels (BENCHMARKS.md, "Convolutional models").
use super::Geometry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
static TIMES: Mutex<Vec<OpTime>> = Mutex::new(Vec::new());

/// One op on one layer shape, summed over its calls.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// `conv forward`, `conv backward`, `conv_transpose forward` or `conv_transpose backward`.
    pub op: String,
    /// The layer, `c_in×h×w → c_out×oh×ow` as the transposed conv's input and output for a
    /// transposed conv.
    pub layer: String,
    /// Calls.
    pub calls: usize,
    /// Wall time of the calls, seconds.
    pub seconds: f64,
    /// Multiply-adds of the calls' products (the unfolded products' sizes: padding taps
    /// included).
    pub macs: f64,
}

/// Starts recording (for the rest of the process).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// The entries recorded since the last call, in first-call order; clears them.
pub fn take() -> Vec<OpTime> {
    std::mem::take(&mut *TIMES.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Which op [`time`] measures.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    ConvForward,
    ConvBackward,
    TransposedForward,
    TransposedBackward,
}

/// Runs `f`, one call of `op` on geometry `g` with `products` products of the layer's size
/// (1 for a forward pass, 1 or 2 for a backward pass: input and/or weight gradient), and
/// records it when profiling is on; `f` returns its result and the batch size.
pub(super) fn time<R>(op: Op, g: &Geometry, products: usize, f: impl FnOnce() -> (R, usize)) -> R {
    if !ON.load(Ordering::Relaxed) {
        return f().0;
    }
    let start = Instant::now();
    let (out, batch) = f();
    let seconds = start.elapsed().as_secs_f64();
    let (name, transposed) = match op {
        Op::ConvForward => ("conv forward", false),
        Op::ConvBackward => ("conv backward", false),
        Op::TransposedForward => ("conv_transpose forward", true),
        Op::TransposedBackward => ("conv_transpose backward", true),
    };
    let (a, b) = (
        format!("{}×{}×{}", g.c_in, g.h, g.w),
        format!("{}×{}×{}", g.c_out, g.oh, g.ow),
    );
    let layer = match transposed {
        false => format!("{a} → {b}"),
        true => format!("{b} → {a}"),
    };
    let macs = (batch * products * g.p() * g.k() * g.c_out) as f64;
    let mut times = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    match times.iter_mut().find(|t| t.op == name && t.layer == layer) {
        Some(t) => {
            t.calls += 1;
            t.seconds += seconds;
            t.macs += macs;
        }
        None => times.push(OpTime {
            op: name.to_string(),
            layer,
            calls: 1,
            seconds,
            macs,
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_calls_time_and_multiply_adds_per_op_and_layer() {
        let g = Geometry::conv2d([2, 3, 8, 8], [4, 3, 4, 4], [2, 2], [(1, 1), (1, 1)]).unwrap();
        let run = || time(Op::ConvBackward, &g, 2, || ((), 5));
        run(); // off: nothing recorded
        enable();
        run();
        run();
        let mine: Vec<OpTime> = take()
            .into_iter()
            .filter(|t| t.op == "conv backward" && t.layer == "3×8×8 → 4×4×4")
            .collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0].calls, 2);
        // 2 calls × 2 products × 5 images × 16 pixels × 48 terms × 4 channels.
        assert_eq!(mine[0].macs, (2 * 2 * 5 * 16 * 48 * 4) as f64);
        assert!(mine[0].seconds >= 0.0);
    }
}
