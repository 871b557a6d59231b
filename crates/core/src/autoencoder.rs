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

    /// Posterior mean E[z|x], `[batch, latent]`.
    fn encode(&self, images: Tensor<4>) -> Tensor<2>;

    /// Decoder mean for latent codes `z` (`[n, latent]`), `[n, channels, height, width]`.
    fn decode(&self, z: Tensor<2>) -> Tensor<4>;

    /// Deterministic reconstruction through the posterior mean.
    fn reconstruct(&self, images: Tensor<4>) -> Tensor<4> {
        self.decode(self.encode(images))
    }

    /// `n` samples decoded from the prior, or `None` where the model has no prior (a plain AE:
    /// its latent space has holes and sampling it is not meaningful).
    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>>;

    /// Latent dimension.
    fn latent_dim(&self) -> usize;
}
