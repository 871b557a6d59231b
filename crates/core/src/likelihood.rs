use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softplus};
use serde::{Deserialize, Serialize};

/// The decoder's observation model p(x|z). The decoder emits one parameter per pixel
/// (`logits` for Bernoulli, the mean for Gaussian); [`Likelihood::nll`] turns it into a
/// per-sample negative log-likelihood in nats (sum over pixels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Likelihood {
    /// Bernoulli per pixel: −log p = Σ BCE(sigmoid(logit), x), computed from logits as
    /// softplus(l) − x·l = −(log σ(−l) + x·l), stable for any l (one fused log-sigmoid instead
    /// of Burn's seven-op softplus, forward and backward). Valid for x in [0, 1] (the usual relaxation for
    /// grey levels).
    #[default]
    Bernoulli,
    /// Gaussian N(f(z), σ²) per pixel with fixed σ:
    /// −log p = ‖x − f(z)‖² / (2σ²) + (D/2) log(2πσ²). The constant term is included, so
    /// values are true NLLs in nats (and can be negative for small σ).
    Gaussian {
        /// Fixed observation standard deviation σ > 0.
        sigma: f64,
    },
    /// Gaussian N(μ, σ²) per pixel with σ learned by the decoder (two parameters per pixel),
    /// σ = `min_sigma` + softplus(s). The bound matters: with σ free the likelihood is
    /// unbounded — a decoder that reproduces any one pixel exactly can send σ → 0 and
    /// −log p → −∞ — so the problem is ill-posed without a floor.
    GaussianLearnedSigma {
        /// Lower bound of σ (> 0).
        min_sigma: f64,
    },
    /// Poisson counts with rate λ = exp(η): −log p = λ − x log λ + log x!.
    Poisson,
    /// Negative binomial counts (over-dispersed, variance μ + μ²/r) with mean μ = exp(η₁) and
    /// dispersion r = exp(η₂) (two parameters per pixel):
    /// −log p = −lgamma(x + r) + lgamma(r) + lgamma(x + 1) − r log(r/(r+μ)) − x log(μ/(r+μ)).
    NegativeBinomial,
}

impl Likelihood {
    /// Per-sample negative log-likelihood in nats, summed over pixels.
    ///
    /// # Shapes
    /// - `params`: `[batch, params_per_pixel · pixels]`, parameter blocks one after the other
    /// - `x`: `[batch, pixels]`
    /// - returns `[batch]`
    pub fn nll(&self, params: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
        let [_, width] = params.dims();
        let d = width / self.params_per_pixel();
        let first = || params.clone().narrow(1, 0, d);
        let second = || params.clone().narrow(1, d, d);
        match *self {
            Likelihood::GaussianLearnedSigma { min_sigma } => {
                let sigma = softplus(second(), 1.0) + min_sigma;
                let z = (x - first()) / sigma.clone();
                (z.square() * 0.5 + sigma.log() + 0.5 * (2.0 * std::f64::consts::PI).ln())
                    .sum_dim(1)
                    .squeeze_dim(1)
            }
            Likelihood::Poisson => {
                let eta = first().clamp(-MAX_LOG, MAX_LOG);
                (eta.clone().exp() - x.clone() * eta + lgamma(x + 1.0))
                    .sum_dim(1)
                    .squeeze_dim(1)
            }
            Likelihood::NegativeBinomial => {
                let log_mu = first().clamp(-MAX_LOG, MAX_LOG);
                let log_r = second().clamp(-MAX_LOG, MAX_LOG);
                let r = log_r.clone().exp();
                // log(r + μ) computed stably as log_r + softplus(log_mu − log_r).
                let log_r_plus_mu = log_r.clone() + softplus(log_mu.clone() - log_r.clone(), 1.0);
                (lgamma(r.clone()) - lgamma(x.clone() + r.clone()) + lgamma(x.clone() + 1.0)
                    - r * (log_r - log_r_plus_mu.clone())
                    - x * (log_mu - log_r_plus_mu))
                    .sum_dim(1)
                    .squeeze_dim(1)
            }
            Likelihood::Bernoulli => {
                // Σ softplus(l) − x·l, fused into one parallel pass on CPU (see `bernoulli`).
                crate::bernoulli::bernoulli_nll(first(), x)
            }
            Likelihood::Gaussian { sigma } => {
                let var = sigma * sigma;
                let constant = 0.5 * d as f64 * (2.0 * std::f64::consts::PI * var).ln();
                ((first() - x).square().sum_dim(1) / (2.0 * var) + constant).squeeze_dim(1)
            }
        }
    }

    /// What the encoder sees of the data: counts enter as log(1 + x) (raw counts span orders
    /// of magnitude and saturate an MLP); images enter unchanged.
    pub fn encoder_input(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Likelihood::Poisson | Likelihood::NegativeBinomial => x.log1p(),
            _ => x,
        }
    }

    /// Shape of the decoder output for images of `shape`: `params_per_pixel` times the channels.
    pub fn param_shape(&self, shape: crate::ImageShape) -> crate::ImageShape {
        crate::ImageShape {
            channels: shape.channels * self.params_per_pixel(),
            ..shape
        }
    }

    /// [`Likelihood::nll`] for images: `params` `[batch, k · channels, h, w]` and `x`
    /// `[batch, channels, h, w]`, flattened per sample; returns `[batch]`.
    pub fn nll_images(&self, params: Tensor<4>, x: Tensor<4>) -> Tensor<1> {
        let [b, c, h, w] = x.dims();
        let k = self.params_per_pixel();
        self.nll(
            params.reshape([b, k * c * h * w]),
            x.reshape([b, c * h * w]),
        )
    }

    /// Distribution parameters the decoder emits per pixel (1 or 2).
    pub fn params_per_pixel(&self) -> usize {
        match self {
            Likelihood::GaussianLearnedSigma { .. } | Likelihood::NegativeBinomial => 2,
            _ => 1,
        }
    }

    /// The decoder's point estimate of x, E[x|z], from the first parameter block (the first
    /// `channels` channels of a `[batch, params_per_pixel · channels, h, w]` decoder output):
    /// sigmoid(logits) for Bernoulli, the mean for Gaussians, exp(η) for counts.
    pub fn mean(&self, params: Tensor<4>) -> Tensor<4> {
        let [_, c, _, _] = params.dims();
        let first = params.narrow(1, 0, c / self.params_per_pixel());
        match self {
            Likelihood::Bernoulli => sigmoid(first),
            Likelihood::Gaussian { .. } | Likelihood::GaussianLearnedSigma { .. } => first,
            Likelihood::Poisson | Likelihood::NegativeBinomial => {
                first.clamp(-MAX_LOG, MAX_LOG).exp()
            }
        }
    }

    /// Checks the parameters, returning a message naming the bad value.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Likelihood::Gaussian { sigma } if !(sigma > 0.0 && sigma.is_finite()) => Err(format!(
                "likelihood.sigma must be a positive finite number, got {sigma}"
            )),
            Likelihood::GaussianLearnedSigma { min_sigma }
                if !(min_sigma > 0.0 && min_sigma.is_finite()) =>
            {
                Err(format!(
                    "likelihood.min_sigma must be a positive finite number, got {min_sigma} \
                     (σ → 0 makes the Gaussian likelihood unbounded)"
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Log-rates are clamped to ±20 (rates up to 4.9e8) so that exp never overflows.
const MAX_LOG: f64 = 20.0;

/// log Γ(z) for z > 0, elementwise: Stirling's series at z + 6 (error < 1e-10) shifted back by
/// the recurrence Γ(z + 1) = z Γ(z).
pub fn lgamma<const D: usize>(z: Tensor<D>) -> Tensor<D> {
    let w = z.clone() + 6.0;
    let shift = (0..6)
        .map(|k| (z.clone() + k as f64).log())
        .reduce(|a, b| a + b)
        .expect("six terms");
    let inv = w.clone().recip();
    let inv2 = inv.clone().square();
    let series = inv.clone() * (inv2.clone() * (inv2 / 1260.0 - 1.0 / 360.0) + 1.0 / 12.0);
    (w.clone() - 0.5) * w.clone().log() - w + 0.5 * (2.0 * std::f64::consts::PI).ln() + series
        - shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    #[test]
    fn bernoulli_nll_matches_bce_by_hand() {
        // torch: F.binary_cross_entropy_with_logits(l, x, reduction='none').sum(1)
        // l = [[0, 2, -1]], x = [[1, 0.5, 0]]
        // 0: log 2 = 0.693147; 2: softplus(2) - 1 = 2.126928 - 1 = 1.126928;
        // -1: softplus(-1) = 0.313262  -> 2.133337
        let d = Device::default();
        let l = Tensor::<2>::from_floats([[0.0, 2.0, -1.0]], &d);
        let x = Tensor::<2>::from_floats([[1.0, 0.5, 0.0]], &d);
        Likelihood::Bernoulli
            .nll(l, x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([2.133_337f32]), Tolerance::absolute(1e-5));
    }

    #[test]
    fn bernoulli_nll_is_finite_and_exact_for_saturated_logits() {
        // torch: F.binary_cross_entropy_with_logits(tensor([100., -100., 50., -1000.]),
        //        tensor([1., 0., 0., 1.]), reduction='sum') = 1050.0
        let d = Device::default();
        let l = Tensor::<2>::from_floats([[100.0, -100.0, 50.0, -1000.0]], &d);
        let x = Tensor::<2>::from_floats([[1.0, 0.0, 0.0, 1.0]], &d);
        Likelihood::Bernoulli
            .nll(l, x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([1050.0f32]), Tolerance::absolute(1e-3));
    }

    #[test]
    fn gaussian_nll_includes_the_constant() {
        // σ = 0.5, D = 2, x − f = (1, −0.5): 1.25 / 0.5 + ln(2π·0.25) = 2.5 + 0.451583 = 2.951583
        let d = Device::default();
        let f = Tensor::<2>::from_floats([[1.0, 0.0]], &d);
        let x = Tensor::<2>::from_floats([[0.0, 0.5]], &d);
        Likelihood::Gaussian { sigma: 0.5 }
            .nll(f, x)
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([2.951_583f32]), Tolerance::absolute(1e-5));
    }

    #[test]
    fn lgamma_matches_scipy() {
        // python: [float(scipy.special.gammaln(v)) for v in [0.5, 1.0, 3.7, 20.0, 250.5]]
        let d = Device::default();
        let z = Tensor::<1>::from_floats([0.5, 1.0, 3.7, 20.0, 250.5], &d);
        lgamma(z).into_data().assert_approx_eq::<f32>(
            &TensorData::from([0.572_364_9f32, 0.0, 1.428_072_3, 39.339_884, 1131.284]),
            Tolerance::relative(1e-5).set_absolute(1e-5),
        );
    }

    #[test]
    fn poisson_nll_matches_scipy() {
        // python: -scipy.stats.poisson.logpmf([0, 3, 7], [0.5, 2, 10]).sum() = 4.6193836376553135
        let d = Device::default();
        let eta = Tensor::<2>::from_floats([[0.5f32.ln(), 2f32.ln(), 10f32.ln()]], &d);
        let x = Tensor::<2>::from_floats([[0.0, 3.0, 7.0]], &d);
        let nll: f32 = Likelihood::Poisson.nll(eta, x).into_scalar();
        assert!((nll - 4.619_384).abs() < 1e-4, "{nll}");
    }

    #[test]
    fn negative_binomial_nll_matches_scipy() {
        // python: mu = [0.5, 2, 10]; r = [1, 5, 2]
        //   -scipy.stats.nbinom.logpmf([0, 3, 7], r, r / (r + mu)).sum() = 5.071095429544875
        let d = Device::default();
        let params = Tensor::<2>::from_floats(
            [[
                0.5f32.ln(),
                2f32.ln(),
                10f32.ln(),
                1f32.ln(),
                5f32.ln(),
                2f32.ln(),
            ]],
            &d,
        );
        let x = Tensor::<2>::from_floats([[0.0, 3.0, 7.0]], &d);
        let nll: f32 = Likelihood::NegativeBinomial.nll(params, x).into_scalar();
        assert!((nll - 5.071_095).abs() < 1e-4, "{nll}");
    }

    #[test]
    fn learned_sigma_gaussian_nll_matches_scipy() {
        // python: -scipy.stats.norm.logpdf([0.2, 0.9], [0.5, 0.4], [0.1, 0.5]).sum()
        //   = 3.842144792855354; raw = log(expm1(sigma - 0.01)) = [-2.36260813, -0.45836566]
        let d = Device::default();
        let params = Tensor::<2>::from_floats([[0.5, 0.4, -2.362_608_1, -0.458_365_66]], &d);
        let x = Tensor::<2>::from_floats([[0.2, 0.9]], &d);
        let nll: f32 = Likelihood::GaussianLearnedSigma { min_sigma: 0.01 }
            .nll(params, x)
            .into_scalar();
        assert!((nll - 3.842_144_8).abs() < 1e-4, "{nll}");
        assert!(
            Likelihood::GaussianLearnedSigma { min_sigma: 0.0 }
                .validate()
                .is_err()
        );
    }

    #[test]
    fn gaussian_sigma_must_be_positive() {
        assert!(Likelihood::Gaussian { sigma: 0.0 }.validate().is_err());
        assert!(Likelihood::Gaussian { sigma: 0.1 }.validate().is_ok());
    }
}
