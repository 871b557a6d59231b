use crate::{AeOutput, DiagonalGaussian, ImageBatch};
use burn::module::{Module, ModuleDisplay};
use burn::prelude::*;

/// The trait every model family implements.
///
/// `forward` computes the full loss breakdown; the other methods are the researcher's tools
/// (encode, decode, reconstruct, sample from the prior).
pub trait Autoencoder: Module + ModuleDisplay {
    /// Loss breakdown and reconstruction for a batch (one sampled z per image for VAEs).
    fn forward(&self, batch: ImageBatch) -> AeOutput;

    /// Posterior mean E[z|x], `[batch, latent]`. `labels` (`[batch]`) condition conditional
    /// models and are ignored by the others.
    fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2>;

    /// Decoder mean for latent codes `z` (`[n, latent]`) and labels (`[n]`, used by
    /// conditional models), `[n, channels, height, width]`.
    fn decode(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4>;

    /// Deterministic reconstruction through the posterior mean.
    fn reconstruct(&self, batch: ImageBatch) -> Tensor<4> {
        let z = self.encode(batch.images, batch.labels.clone());
        self.decode(z, batch.labels)
    }

    /// `n` samples decoded from the prior, or `None` where the model has no prior (a plain AE:
    /// its latent space has holes and sampling it is not meaningful). Conditional models
    /// sample classes in blocks: sample `i` has class `i · classes / n`.
    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>>;

    /// Number of classes of a conditional model (None for unconditional ones).
    fn num_classes(&self) -> Option<usize> {
        None
    }

    /// Latent dimension.
    fn latent_dim(&self) -> usize;

    /// The amortised posterior q(z|x), for models whose latent-variable likelihood is
    /// defined: p(x) = ∫ p(x|z) p(z) dz with a decoder that sees only z (and the condition).
    /// `None` for models without one (AE, VQ-VAE) or whose decoder also sees x (skip-VAE):
    /// likelihood bounds and the KL decompositions are not defined for them.
    fn variational_posterior(
        &self,
        _images: Tensor<4>,
        _labels: Tensor<1, Int>,
    ) -> Option<DiagonalGaussian> {
        None
    }

    /// log p(z) of each row of `z` (`[n, latent]`) under the prior, in nats, `[n]`
    /// (standard normal unless the model says otherwise).
    fn log_prior(&self, z: Tensor<2>) -> Tensor<1> {
        let [_, d] = z.dims();
        (z.square().sum_dim(1).squeeze_dim::<1>(1) + d as f64 * LN_2PI) * -0.5
    }

    /// log p(x|z) of each image given its code (`images` `[n, c, h, w]`, `z` `[n, latent]`,
    /// `labels` `[n]`), in nats, `[n]`; `None` where [`Self::variational_posterior`] is.
    fn log_likelihood(
        &self,
        _images: Tensor<4>,
        _z: Tensor<2>,
        _labels: Tensor<1, Int>,
    ) -> Option<Tensor<1>> {
        None
    }
}

/// ln 2π.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// log N(z; 0, diag(v)) of each row of `z`, in nats, for per-dimension prior variances `v`.
pub fn log_normal_prior(z: Tensor<2>, variances: &[f64]) -> Tensor<1> {
    let [_, d] = z.dims();
    assert_eq!(
        d,
        variances.len(),
        "one prior variance per latent dimension"
    );
    let inv: Vec<f32> = variances.iter().map(|&v| (1.0 / v) as f32).collect();
    let log_det: f64 = variances.iter().map(|v| v.ln()).sum();
    let inv = Tensor::<1>::from_floats(inv.as_slice(), &z.device()).unsqueeze_dim::<2>(0);
    ((z.square() * inv).sum_dim(1).squeeze_dim::<1>(1) + log_det + d as f64 * LN_2PI) * -0.5
}
