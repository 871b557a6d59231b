//! Deterministic autoencoder: z = f(x), x̂ = g(z), loss = −log p(x | g(f(x))).
//!
//! Its latent space has holes: there is no prior, so [`Autoencoder::sample`] returns `None`.
//! A linear AE trained with squared error on centred data spans the top principal subspace.
use crate::nets::{Architecture, Decoder, Encoder};
use ae_core::{AeOutput, Autoencoder, ImageBatch, ImageShape, Likelihood};
use crate::family::{Capabilities, Family};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Configuration of an [`Ae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeConfig {
    /// Size of the code z.
    pub latent_dim: usize,
    /// Encoder/decoder networks.
    pub architecture: Architecture,
    /// Observation model used as reconstruction loss.
    #[serde(default)]
    pub likelihood: Likelihood,
}

impl AeConfig {
    /// Builds the model for images of `shape`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Ae {
        Ae {
            encoder: self.architecture.encoder(shape, self.latent_dim, device),
            decoder: self.architecture.decoder(
                self.likelihood.param_shape(shape),
                self.latent_dim,
                device,
            ),
            likelihood: self.likelihood,
            latent_dim: self.latent_dim,
        }
    }
}

impl Family for AeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.latent_dim == 0 {
            return Err("model.latent_dim must be at least 1".into());
        }
        self.likelihood.validate()?;
        self.architecture.validate(None)
    }

    fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        self.architecture.validate(Some(shape))
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::deterministic("a deterministic autoencoder has no posterior or prior")
    }

    fn set_beta(&mut self, _beta: f64) -> Result<(), String> {
        Err("a deterministic autoencoder (family = \"ae\") has no KL term to weight by β".into())
    }

    fn prior_variances(&self) -> Option<Vec<f64>> {
        None
    }

    fn parameter_count(&self, shape: ImageShape) -> u128 {
        self.architecture.encoder_parameters(shape, 0, self.latent_dim)
            + self
                .architecture
                .decoder_parameters(self.likelihood.param_shape(shape), self.latent_dim)
    }
}

/// Deterministic autoencoder.
#[derive(Module, Debug)]
pub struct Ae {
    encoder: Encoder,
    decoder: Decoder,
    #[module(skip)]
    likelihood: Likelihood,
    latent_dim: usize,
}

impl Autoencoder for Ae {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        let x = batch.images;
        let z = self
            .encoder
            .forward(self.likelihood.encoder_input(x.clone())); // [batch, latent]
        let params = self.decoder.forward(z.clone()); // [batch, k * c, h, w]
        AeOutput::deterministic(x, params, &self.likelihood, z)
    }

    fn encode(&self, images: Tensor<4>, _labels: Tensor<1, Int>) -> Tensor<2> {
        self.encoder.forward(self.likelihood.encoder_input(images))
    }

    fn decode(&self, z: Tensor<2>, _labels: Tensor<1, Int>) -> Tensor<4> {
        self.likelihood.mean(self.decoder.forward(z))
    }

    fn sample(&self, _n: usize, _device: &Device) -> Option<Tensor<4>> {
        None
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ae_has_no_kl_and_no_prior() {
        let d = Device::default();
        let cfg = AeConfig {
            latent_dim: 4,
            architecture: Architecture::Mlp { hidden: vec![16] },
            likelihood: Likelihood::Bernoulli,
        };
        let m = cfg.init(ImageShape::new(1, 8, 8), &d);
        let batch = ImageBatch {
            images: Tensor::ones([3, 1, 8, 8], &d) * 0.5,
            labels: Tensor::zeros([3], &d),
        };
        let out = m.forward(batch);
        assert_eq!(out.kl_per_dim.dims(), [3, 4]);
        assert_eq!(out.kl.sum().into_scalar::<f32>(), 0.0);
        assert!(m.sample(2, &d).is_none());
    }
}
