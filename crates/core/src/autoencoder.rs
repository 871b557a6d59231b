use crate::{AeOutput, ImageBatch};
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
}
