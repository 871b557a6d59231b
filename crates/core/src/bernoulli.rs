//! The Bernoulli reconstruction term, `Σ_j softplus(l_j) − x_j·l_j` per sample.
//!
//! With the `fast-cpu` feature (default) and the CPU kernels enabled (`AE_CPU_KERNELS` not
//! `off`), `f32` tensors on `flex` go through `ae_cpu::bernoulli`: one vectorised,
//! rayon-parallel pass with a hand-written backward. Everything else (ndarray, GPUs, the
//! feature or the kernels off) uses Burn's composed ops, [`bernoulli_nll_composed`]; the two
//! agree to float rounding (tested here and by the backend-parity test).
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

/// Per-sample Bernoulli negative log-likelihood from logits, in nats:
/// `Σ_j softplus(l_j) − x_j·l_j` over the columns of `logits` and `x` (both `[batch, pixels]`),
/// returning `[batch]`. Differentiable in both arguments; fused on `flex` (see the module docs).
pub fn bernoulli_nll(logits: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
    #[cfg(feature = "fast-cpu")]
    if ae_cpu::enabled() && ae_cpu::bernoulli::applies(&logits, &x) {
        return ae_cpu::bernoulli::bernoulli_nll(logits, x);
    }
    bernoulli_nll_composed(logits, x)
}

/// The same function from Burn's tensor ops (`−(log σ(−l) + x·l)` summed over pixels): the
/// path for every backend without the fused kernel, and the reference the kernel is tested
/// against.
pub fn bernoulli_nll_composed(logits: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
    (log_sigmoid(-logits.clone()) + x * logits)
        .sum_dim(1)
        .squeeze_dim::<1>(1)
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "fast-cpu")]
    use burn::tensor::{Distribution, Tolerance};

    /// Hand values: softplus(l) − x·l for l = 0 (log 2), large |l| (no overflow), mixed x.
    #[test]
    fn matches_hand_values() {
        let d = Device::default();
        let l = Tensor::<2>::from_floats([[0.0, 100.0, -100.0, 2.0]], &d);
        let x = Tensor::<2>::from_floats([[1.0, 1.0, 0.0, 0.25]], &d);
        // log 2; softplus(100) − 100 ≈ 0; softplus(−100) ≈ 0; log(1 + e²) − 0.5.
        let want = std::f64::consts::LN_2 + 0.0 + 0.0 + ((1.0 + 2f64.exp()).ln() - 0.5);
        let got = bernoulli_nll(l, x).into_scalar::<f32>() as f64;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[cfg(feature = "fast-cpu")]
    /// The fused operation of `ae-cpu` and Burn's composed ops agree on values and on both
    /// gradients.
    #[test]
    fn fused_matches_composed_with_gradients() {
        let d = Device::default().autodiff();
        let (l, x) = (
            Tensor::<2>::zeros([2, 3], &d),
            Tensor::<2>::zeros([2, 3], &d),
        );
        assert!(
            ae_cpu::bernoulli::applies(&l, &x),
            "the fused path is tested"
        );
        let logits = Tensor::<2>::random([37, 301], Distribution::Normal(0.0, 4.0), &d);
        let x = Tensor::<2>::random([37, 301], Distribution::Uniform(0.0, 1.0), &d);
        let w = Tensor::<1>::random([37], Distribution::Uniform(0.5, 2.0), &d);
        let run = |f: fn(Tensor<2>, Tensor<2>) -> Tensor<1>| {
            let (l, x) = (logits.clone().require_grad(), x.clone().require_grad());
            let y = f(l.clone(), x.clone());
            let grads = (y.clone() * w.clone()).sum().backward();
            (
                y.into_data(),
                l.grad(&grads).unwrap().into_data(),
                x.grad(&grads).unwrap().into_data(),
            )
        };
        let (fy, fl, fx) = run(ae_cpu::bernoulli::bernoulli_nll);
        let (cy, cl, cx) = run(bernoulli_nll_composed);
        fy.assert_approx_eq::<f32>(&cy, Tolerance::relative(1e-5));
        fl.assert_approx_eq::<f32>(&cl, Tolerance::absolute(1e-5));
        fx.assert_approx_eq::<f32>(&cx, Tolerance::absolute(1e-4));
    }
}
