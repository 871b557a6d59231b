//! Fully connected layers (`x·W + b`, optionally followed by ReLU): the entry point of the
//! models' dense layers.
//!
//! With the `fast-cpu` feature (default) and the CPU kernels enabled (`AE_CPU_KERNELS` not
//! `off`), a layer with a bias on `flex` in `f32` runs as one fused operation of
//! `ae_cpu::linear` (bias and `gemm` product in one buffer, a hand-written backward). Everything
//! else (ndarray, GPUs, layers without bias, the feature or the kernels off) is
//! `Linear::forward` (+ `relu`). The parameters are Burn's `Linear` either way, so records are
//! unchanged; the two paths agree to float rounding on values and gradients (tested).
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;

/// `x·W + b` for `x: [batch, d_input]`: the same as `lin.forward(x)`, fused on `flex`.
pub fn linear(lin: &Linear, x: Tensor<2>) -> Tensor<2> {
    forward(lin, x, false)
}

/// `relu(x·W + b)` for `x: [batch, d_input]`: the same as `relu(lin.forward(x))`, fused on
/// `flex`.
pub fn linear_relu(lin: &Linear, x: Tensor<2>) -> Tensor<2> {
    forward(lin, x, true)
}

fn forward(lin: &Linear, x: Tensor<2>, with_relu: bool) -> Tensor<2> {
    #[cfg(feature = "fast-cpu")]
    if let Some(b) = &lin.bias
        && ae_cpu::enabled()
    {
        let (w, b) = (lin.weight.val(), b.val());
        if ae_cpu::linear::applies(&x, &w, &b) {
            return ae_cpu::linear::linear(x, w, b, with_relu);
        }
    }
    let y = lin.forward(x);
    if with_relu { relu(y) } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;
    #[cfg(feature = "fast-cpu")]
    use burn::tensor::{Distribution, Tolerance};

    #[cfg(feature = "fast-cpu")]
    /// `ae-cpu`'s fused layer and Burn's `Linear` (+ ReLU) agree on values and on the gradients
    /// of input, weight and bias, for layers whose products are split over the pool by columns
    /// (130×300→257) and by rows (200×400→40, a narrow output) and a small one, with and
    /// without ReLU, with a tracked and an untracked input.
    #[test]
    fn fused_matches_burns_linear_with_gradients() {
        let d = Device::default().autodiff();
        for (rows, d_in, d_out) in [(130, 300, 257), (200, 400, 40), (3, 5, 2)] {
            let lin = LinearConfig::new(d_in, d_out).init(&d);
            let x = Tensor::<2>::random([rows, d_in], Distribution::Normal(0.0, 1.0), &d);
            let v = Tensor::<2>::random([rows, d_out], Distribution::Normal(0.0, 1.0), &d);
            let b = lin.bias.as_ref().unwrap().val();
            assert!(
                ae_cpu::linear::applies(&x, &lin.weight.val(), &b),
                "the fused path is tested"
            );
            for (with_relu, track_x) in [(false, true), (true, true), (true, false)] {
                let run = |fused: bool| {
                    let x = if track_x {
                        x.clone().require_grad()
                    } else {
                        x.clone()
                    };
                    let (w, b) = (lin.weight.val(), b.clone());
                    let y = match (fused, with_relu) {
                        (true, _) => ae_cpu::linear::linear(x.clone(), w, b, with_relu),
                        (false, false) => lin.forward(x.clone()),
                        (false, true) => relu(lin.forward(x.clone())),
                    };
                    let grads = (y.clone() * v.clone()).sum().backward();
                    let gw = lin.weight.val().grad(&grads).unwrap().into_data();
                    let gb = lin.bias.as_ref().unwrap().val().grad(&grads).unwrap();
                    let gx = x.grad(&grads).map(|g| g.into_data());
                    (y.into_data(), gw, gb.into_data(), gx)
                };
                let (fy, fw, fb, fx) = run(true);
                let (cy, cw, cb, cx) = run(false);
                // Two summation orders of n f32 products differ by at most γ_n·Σ|terms|
                // (γ_n ≈ n·2⁻²⁴) and typically by √n·2⁻²⁴·(Σ terms²)^½: for the largest
                // sums here (∂W over 200 rows of N(0, 1)·N(0, 1), (Σ terms²)^½ ≈ 14) that is
                // about 1e-5, so 1e-4 holds for any order (any CPU's vector width) while a
                // wrong term (≥ 0.01 for these values) does not pass.
                let tol = Tolerance::absolute(1e-4);
                fy.assert_approx_eq::<f32>(&cy, tol);
                fw.assert_approx_eq::<f32>(&cw, tol);
                fb.assert_approx_eq::<f32>(&cb, tol);
                assert_eq!(fx.is_some(), track_x);
                if let (Some(fx), Some(cx)) = (fx, cx) {
                    fx.assert_approx_eq::<f32>(&cx, tol);
                }
            }
        }
    }

    /// A hand-computed layer: [1, 2]·[[1, −1], [2, 0.5]] + [0.5, −3] = [5.5, −3], ReLU → [5.5, 0].
    #[test]
    fn matches_hand_values() {
        let d = Device::default();
        let mut lin = LinearConfig::new(2, 2).init(&d);
        lin.weight =
            burn::module::Param::from_tensor(Tensor::from_floats([[1.0, -1.0], [2.0, 0.5]], &d));
        lin.bias = Some(burn::module::Param::from_tensor(Tensor::from_floats(
            [0.5, -3.0],
            &d,
        )));
        let x = Tensor::<2>::from_floats([[1.0, 2.0]], &d);
        linear(&lin, x.clone())
            .into_data()
            .assert_eq(&TensorData::from([[5.5f32, -3.0]]), false);
        linear_relu(&lin, x)
            .into_data()
            .assert_eq(&TensorData::from([[5.5f32, 0.0]]), false);
    }
}
