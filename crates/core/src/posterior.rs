use burn::prelude::*;
use burn::tensor::Distribution;

/// A diagonal Gaussian q(z|x) = N(μ, diag(σ²)), parameterised by mean and log-variance.
///
/// The encoder outputs log σ² rather than σ so that the variance is positive without a
/// constraint and the KL is numerically stable.
#[derive(Clone, Debug)]
pub struct DiagonalGaussian {
    /// Posterior mean μ, shape `[batch, latent]`.
    pub mean: Tensor<2>,
    /// Posterior log-variance log σ², shape `[batch, latent]`.
    pub log_var: Tensor<2>,
}

impl DiagonalGaussian {
    /// Builds the posterior from its mean and log-variance.
    pub fn new(mean: Tensor<2>, log_var: Tensor<2>) -> Self {
        Self { mean, log_var }
    }

    /// Reparameterised sample z = μ + σ ⊙ ε with ε ~ N(0, I) drawn on the tensors' device.
    ///
    /// Gradients flow through μ and log σ²; ε is an input, not a parameter.
    pub fn sample(&self) -> Tensor<2> {
        let eps = self.mean.random_like(Distribution::Normal(0.0, 1.0));
        self.sample_with(eps)
    }

    /// z = μ + σ ⊙ ε for a given noise tensor ε (shape `[batch, latent]`).
    pub fn sample_with(&self, eps: Tensor<2>) -> Tensor<2> {
        self.mean.clone() + eps * (self.log_var.clone() * 0.5).exp()
    }

    /// Closed-form KL(q ‖ N(0, I)) per dimension: ½ (μ² + σ² − log σ² − 1), shape
    /// `[batch, latent]`, in nats.
    pub fn kl_per_dim(&self) -> Tensor<2> {
        (self.mean.clone().square() + self.log_var.clone().exp() - self.log_var.clone() - 1.0) * 0.5
    }

    /// Closed-form KL(q ‖ N(0, diag(v))) per dimension for a prior with per-dimension
    /// variances `prior_var` (shape `[latent]`):
    /// ½ (log v − log σ² + (σ² + μ²)/v − 1).
    pub fn kl_per_dim_to(&self, prior_var: Tensor<1>) -> Tensor<2> {
        let v = prior_var.unsqueeze_dim::<2>(0);
        let ratio = (self.log_var.clone().exp() + self.mean.clone().square()) / v.clone();
        (v.log() - self.log_var.clone() + ratio - 1.0) * 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    fn device() -> Device {
        Device::default()
    }

    #[test]
    fn kl_is_zero_for_standard_normal() {
        let d = device();
        let q = DiagonalGaussian::new(Tensor::zeros([2, 3], &d), Tensor::zeros([2, 3], &d));
        q.kl_per_dim().into_data().assert_approx_eq::<f32>(
            &TensorData::zeros::<f32, _>([2, 3]),
            Tolerance::absolute(1e-7),
        );
    }

    #[test]
    fn kl_matches_hand_values() {
        // Hand values: ½(μ² + σ² − log σ² − 1).
        // μ=1, logσ²=0   -> ½(1 + 1 − 0 − 1) = 0.5
        // μ=0, logσ²=1   -> ½(0 + e − 1 − 1) = 0.359140914
        // μ=−2, logσ²=−1 -> ½(4 + e⁻¹ + 1 − 1) = 2.183939721
        let d = device();
        let mean = Tensor::<2>::from_floats([[1.0, 0.0, -2.0]], &d);
        let log_var = Tensor::<2>::from_floats([[0.0, 1.0, -1.0]], &d);
        let kl = DiagonalGaussian::new(mean, log_var).kl_per_dim();
        kl.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.5f32, 0.359_140_9, 2.183_939_7]]),
            Tolerance::absolute(1e-5),
        );
    }

    #[test]
    fn kl_to_unit_variance_prior_equals_standard_kl() {
        let d = device();
        let mean = Tensor::<2>::from_floats([[0.3, -1.2], [2.0, 0.1]], &d);
        let log_var = Tensor::<2>::from_floats([[0.5, -0.7], [0.0, 1.3]], &d);
        let q = DiagonalGaussian::new(mean, log_var);
        let a = q.kl_per_dim();
        let b = q.kl_per_dim_to(Tensor::ones([2], &d));
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::absolute(1e-6));
    }

    #[test]
    fn reparameterised_samples_have_the_posterior_moments() {
        let d = device();
        d.seed(7);
        let n = 20_000;
        let mean = Tensor::<2>::from_floats([[1.5, -2.0]], &d).repeat_dim(0, n);
        // σ² = 0.25 and 4.0
        let log_var = Tensor::<2>::from_floats([[0.25f32.ln(), 4.0f32.ln()]], &d).repeat_dim(0, n);
        let z = DiagonalGaussian::new(mean, log_var).sample();
        let m: Vec<f32> = z.clone().mean_dim(0).into_data().try_to_vec().unwrap();
        let v: Vec<f32> = z.var(0).into_data().try_to_vec().unwrap();
        // Standard errors: σ/√n ≈ 0.0035 and 0.014; variance SE ≈ σ²√(2/n).
        assert!((m[0] - 1.5).abs() < 0.02, "mean {m:?}");
        assert!((m[1] + 2.0).abs() < 0.06, "mean {m:?}");
        assert!((v[0] - 0.25).abs() < 0.015, "var {v:?}");
        assert!((v[1] - 4.0).abs() < 0.2, "var {v:?}");
    }
}
