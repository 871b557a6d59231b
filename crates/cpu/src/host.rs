//! Helpers shared by the fused `flex` kernels ([`crate::fused`], [`crate::linear`]): which
//! tensors they accept, and moving `f32` data between flex tensors and plain slices.
use burn::backend::DispatchDevice;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use std::borrow::Cow;

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
