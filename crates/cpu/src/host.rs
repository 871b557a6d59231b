//! Helpers shared by the kernels ([`crate::bernoulli`], [`crate::linear`], [`crate::conv`],
//! [`crate::adam`]): which tensors they accept, moving `f32` data between flex tensors and
//! plain slices, buffers that a kernel writes in full, and recording a fused layer on the
//! autodiff graph.
use burn::backend::autodiff::{
    Autodiff,
    checkpoint::strategy::CheckpointStrategy,
    ops::{Backward, OpsKind},
};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{DispatchDevice, Flex};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// Whether `t` is an `f32` tensor on the `flex` device (with or without autodiff).
pub fn is_flex_f32<const D: usize>(t: &Tensor<D>) -> bool {
    t.dtype() == DType::F32 && matches!(t.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

/// A contiguous `f32` view of a flex tensor (copying only when it is strided).
pub fn contiguous(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().storage::<f32>().to_vec()),
    }
}

/// A flex tensor owning `values` (row-major, no copy).
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A vector of `len` values written by `write` into its uninitialised buffer (no zero-fill
/// first); `write`'s error is passed on, and the buffer dropped, when it fails.
///
/// # Safety
/// When `write` returns `Ok`, it must have written every element of the slice it was given.
pub unsafe fn filled<E>(
    len: usize,
    write: impl FnOnce(&mut [MaybeUninit<f32>]) -> Result<(), E>,
) -> Result<Vec<f32>, E> {
    let mut v = Vec::<f32>::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len])?;
    // SAFETY: the caller guarantees that `write` initialised all `len` elements.
    unsafe { v.set_len(len) };
    Ok(v)
}

/// Writes `value` into every element of `s` and returns it as initialised `f32`s.
pub fn fill_uninit(s: &mut [MaybeUninit<f32>], value: f32) -> &mut [f32] {
    write_from(s, std::iter::repeat(value))
}

/// Writes `row` into each consecutive run of `row.len()` elements of `dst` (a whole number
/// of rows) and returns it as initialised `f32`s.
pub fn fill_rows<'a>(dst: &'a mut [MaybeUninit<f32>], row: &[f32]) -> &'a mut [f32] {
    assert!(
        !row.is_empty() && dst.len().is_multiple_of(row.len()),
        "whole rows"
    );
    for run in dst.chunks_exact_mut(row.len()) {
        write_from(run, row.iter().copied());
    }
    // SAFETY: the runs cover `dst` (checked above), each written in full by `write_from`
    // (which panics otherwise), and MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Writes the values of `values` into `dst` in order and returns it as initialised `f32`s;
/// panics (before returning anything) if `values` runs out first.
pub fn write_from(dst: &mut [MaybeUninit<f32>], values: impl Iterator<Item = f32>) -> &mut [f32] {
    let mut written = 0;
    for (d, v) in dst.iter_mut().zip(values) {
        d.write(v);
        written += 1;
    }
    assert_eq!(written, dst.len(), "a value for every element");
    // SAFETY: all `dst.len()` elements have just been written (checked), and
    // MaybeUninit<f32> has f32's layout.
    unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Backward state of a fused layer `y = [relu](op(x, w) + b)`: the input (for ∂W), the weight
/// (for ∂x), and the output when a ReLU followed (its sign is the ReLU's derivative).
pub type LayerState = (Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>);

/// Runs a fused layer `run(x, w, b)` (ReLU applied by `run` when `relu`) on autodiff tensors
/// and records `backward` for it, keeping only what the backward pass will read: `x` when `w`
/// needs a gradient, `w` when `x` does, the output when a ReLU followed.
pub fn record_layer<C: CheckpointStrategy, B: Backward<Flex, 3, State = LayerState>>(
    backward: B,
    [x, w, b]: [FloatTensor<Autodiff<Flex, C>>; 3],
    relu: bool,
    run: impl Fn(&FlexTensor, &FlexTensor, &FlexTensor) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>> {
    let (x_tracked, w_tracked) = (x.is_tracked(), w.is_tracked());
    match backward
        .prepare::<C>([x.node(), w.node(), b.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = run(x.primitive(), w.primitive(), b.primitive());
            let state = (
                w_tracked.then(|| x.primitive().clone()),
                x_tracked.then(|| w.primitive().clone()),
                relu.then(|| y.clone()),
            );
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(x.primitive(), w.primitive(), b.primitive())),
    }
}
