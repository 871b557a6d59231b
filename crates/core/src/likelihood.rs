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
    /// softplus(l) − x·l for stability. Valid for x in [0, 1] (the usual relaxation for
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
}

impl Likelihood {
    /// Per-sample negative log-likelihood in nats, summed over pixels.
    ///
    /// # Shapes
    /// - `params`: `[batch, pixels]` (logits or means)
    /// - `x`: `[batch, pixels]`
    /// - returns `[batch]`
    pub fn nll(&self, params: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
        match *self {
            Likelihood::Bernoulli => (softplus(params.clone(), 1.0) - x * params)
                .sum_dim(1)
                .squeeze_dim(1),
            Likelihood::Gaussian { sigma } => {
                let [_, d] = params.dims();
                let var = sigma * sigma;
                let constant = 0.5 * d as f64 * (2.0 * std::f64::consts::PI * var).ln();
                ((params - x).square().sum_dim(1) / (2.0 * var) + constant).squeeze_dim(1)
            }
        }
    }

    /// The decoder's point estimate of x: sigmoid(logits) for Bernoulli, the mean for Gaussian.
    pub fn mean<const D: usize>(&self, params: Tensor<D>) -> Tensor<D> {
        match self {
            Likelihood::Bernoulli => sigmoid(params),
            Likelihood::Gaussian { .. } => params,
        }
    }

    /// Checks the parameters, returning a message naming the bad value.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Likelihood::Gaussian { sigma } if !(sigma > 0.0 && sigma.is_finite()) => Err(format!(
                "likelihood.sigma must be a positive finite number, got {sigma}"
            )),
            _ => Ok(()),
        }
    }
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
    fn gaussian_sigma_must_be_positive() {
        assert!(Likelihood::Gaussian { sigma: 0.0 }.validate().is_err());
        assert!(Likelihood::Gaussian { sigma: 0.1 }.validate().is_ok());
    }
}
