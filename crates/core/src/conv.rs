//! 2-D convolutions and transposed convolutions (optionally followed by ReLU): the entry point
//! of the models' conv layers.
//!
//! With the `fast-cpu` feature (default) and the CPU kernels enabled (`AE_CPU_KERNELS` not
//! `off`), a layer with a bias, no groups, no dilation and explicit (or no) padding on `flex`
//! in `f32` runs as one fused operation of `ae_cpu::conv` (unfold and `gemm` per image, bias
//! and ReLU in the output write, a hand-written backward). Everything else (ndarray, GPUs,
//! other layers, the feature or the kernels off) is `Conv2d::forward` /
//! `ConvTranspose2d::forward` (+ `relu`). The parameters are Burn's modules either way, so
//! records are unchanged; the two paths agree to float rounding on values and gradients
//! (tested).
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// `conv.forward(x)` for `x: [batch, c_in, h, w]`, fused on `flex`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv_forward(conv, x, false)
}

/// `relu(conv.forward(x))` for `x: [batch, c_in, h, w]`, fused on `flex`.
pub fn conv2d_relu(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv_forward(conv, x, true)
}

/// `deconv.forward(x)` for `x: [batch, c_in, h, w]`, fused on `flex`.
pub fn conv_transpose2d(deconv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    deconv_forward(deconv, x, false)
}

/// `relu(deconv.forward(x))` for `x: [batch, c_in, h, w]`, fused on `flex`.
pub fn conv_transpose2d_relu(deconv: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    deconv_forward(deconv, x, true)
}

fn conv_forward(conv: &Conv2d, x: Tensor<4>, with_relu: bool) -> Tensor<4> {
    #[cfg(feature = "fast-cpu")]
    if let Some(b) = &conv.bias
        && ae_cpu::enabled()
        && conv.groups == 1
        && conv.dilation == [1, 1]
    {
        use burn::nn::PaddingConfig2d;
        let padding = match conv.padding {
            PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
            PaddingConfig2d::Explicit(top, left, bottom, right) => {
                Some([(top, bottom), (left, right)])
            }
            PaddingConfig2d::Same => None,
        };
        let (w, b) = (conv.weight.val(), b.val());
        let geometry = padding.and_then(|padding| {
            ae_cpu::conv::Geometry::conv2d(x.dims(), w.dims(), conv.stride, padding)
        });
        if let Some(g) = geometry
            && ae_cpu::conv::applies(&x, &w, &b)
        {
            return ae_cpu::conv::conv2d(x, w, b, g, with_relu);
        }
    }
    let y = conv.forward(x);
    if with_relu { relu(y) } else { y }
}

fn deconv_forward(deconv: &ConvTranspose2d, x: Tensor<4>, with_relu: bool) -> Tensor<4> {
    #[cfg(feature = "fast-cpu")]
    if let Some(b) = &deconv.bias
        && ae_cpu::enabled()
        && deconv.groups == 1
        && deconv.dilation == [1, 1]
    {
        let (w, b) = (deconv.weight.val(), b.val());
        let geometry = ae_cpu::conv::Geometry::conv_transpose2d(
            x.dims(),
            w.dims(),
            deconv.stride,
            deconv.padding,
            deconv.padding_out,
        );
        if let Some(g) = geometry
            && ae_cpu::conv::applies(&x, &w, &b)
        {
            return ae_cpu::conv::conv_transpose2d(x, w, b, g, with_relu);
        }
    }
    let y = deconv.forward(x);
    if with_relu { relu(y) } else { y }
}

#[cfg(all(test, feature = "fast-cpu"))]
mod tests {
    use super::*;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::{Distribution, Tolerance};

    /// Values and the gradients of input, weight and bias of a layer's two paths (the
    /// dispatcher, fused on flex, and Burn's module), for a random upstream gradient.
    fn compare(
        forward: impl Fn(Tensor<4>, bool) -> Tensor<4>,
        params: impl Fn() -> (Tensor<4>, Tensor<1>),
        x_dims: [usize; 4],
        d: &Device,
    ) {
        let x = Tensor::<4>::random(x_dims, Distribution::Normal(0.0, 1.0), d);
        for track_x in [true, false] {
            let run = |fused: bool| {
                let x = if track_x {
                    x.clone().require_grad()
                } else {
                    x.clone()
                };
                let y = forward(x.clone(), fused);
                // The same upstream gradient on both paths.
                let v = upstream(y.dims(), d);
                let grads = (y.clone() * v).sum().backward();
                let (w, b) = params();
                let gw = w.grad(&grads).unwrap().into_data();
                let gb = b.grad(&grads).unwrap().into_data();
                let gx = x.grad(&grads).map(|g| g.into_data());
                (y.into_data(), gw, gb, gx)
            };
            let (fy, fw, fb, fx) = run(true);
            let (cy, cw, cb, cx) = run(false);
            let tol = Tolerance::absolute(1e-4).set_relative(1e-4);
            fy.assert_approx_eq::<f32>(&cy, tol);
            fw.assert_approx_eq::<f32>(&cw, tol);
            fb.assert_approx_eq::<f32>(&cb, tol);
            assert_eq!(fx.is_some(), track_x);
            if let (Some(fx), Some(cx)) = (fx, cx) {
                fx.assert_approx_eq::<f32>(&cx, tol);
            }
        }
    }

    /// A fixed upstream gradient of the given shape (deterministic values in [−1, 1)).
    fn upstream(dims: [usize; 4], d: &Device) -> Tensor<4> {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        Tensor::from_data(burn::tensor::TensorData::new(v, dims), d)
    }

    /// The fused conv layers and Burn's `Conv2d`/`ConvTranspose2d` (+ ReLU) agree on values
    /// and on the gradients of input, weight and bias, for the models' layers (4×4 stride-2
    /// padding-1 down- and up-sampling, 1×1) and an odd one, with a tracked and an untracked
    /// input.
    #[test]
    fn fused_matches_burns_conv_layers_with_gradients() {
        let d = Device::default().autodiff();
        // (c_in, c_out, kernel, stride, padding, image side)
        for (c_in, c_out, k, s, p, side) in [
            (1, 32, 4, 2, 1, 64),
            (32, 64, 4, 2, 1, 14),
            (64, 64, 1, 1, 0, 7),
            (3, 5, 3, 2, 2, 9),
        ] {
            let conv = Conv2dConfig::new([c_in, c_out], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(&d);
            let deconv = ConvTranspose2dConfig::new([c_out, c_in], [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .init(&d);
            let x = Tensor::<4>::zeros([2, c_in, side, side], &d);
            let probe = conv.weight.val();
            assert!(
                ae_cpu::conv::applies(&x, &probe, &conv.bias.as_ref().unwrap().val()),
                "the fused path is tested"
            );
            for with_relu in [false, true] {
                let conv_params = || (conv.weight.val(), conv.bias.as_ref().unwrap().val());
                compare(
                    |x, fused| match (fused, with_relu) {
                        (true, false) => conv2d(&conv, x),
                        (true, true) => conv2d_relu(&conv, x),
                        (false, false) => conv.forward(x),
                        (false, true) => relu(conv.forward(x)),
                    },
                    conv_params,
                    [3, c_in, side, side],
                    &d,
                );
                let out_side = (side + 2 * p - k) / s + 1;
                let deconv_params = || (deconv.weight.val(), deconv.bias.as_ref().unwrap().val());
                compare(
                    |x, fused| match (fused, with_relu) {
                        (true, false) => conv_transpose2d(&deconv, x),
                        (true, true) => conv_transpose2d_relu(&deconv, x),
                        (false, false) => deconv.forward(x),
                        (false, true) => relu(deconv.forward(x)),
                    },
                    deconv_params,
                    [3, c_out, out_side, out_side],
                    &d,
                );
            }
        }
    }
}
