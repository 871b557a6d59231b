//! `ae-models`: the model families, one per file, each a config plus a module.
//!
//! - [`ae`]: deterministic autoencoder.
//! - [`vae`]: variational autoencoder with β (β = 1: VAE; β ≠ 1: β-VAE).
//! - [`cvae`]: conditional VAE, q(z|x,c) and p(x|z,c) with a one-hot class c.
//! - [`skip_vae`]: VAE with U-Net skips into the decoder, plain (collapses) or FiLM-gated by z.
//! - [`vq_vae`]: VQ-VAE with straight-through codebook, optional EMA and dead-code restarts.
//! - [`nets`]: the encoder and decoder networks (MLP, conv for 28×28 and 64×64).
//!
//! [`ModelConfig`] is the tagged union experiment configs hold; [`Model`] is the matching
//! module the training loop drives.
//!
//! **Invariant:** no I/O and no burn-train; models only see tensors.
#![warn(missing_docs)]

pub mod ae;
pub mod cvae;
pub mod nets;
pub mod skip_vae;
pub mod vae;
pub mod vq_vae;

use ae::{Ae, AeConfig};
use ae_core::{AeOutput, Autoencoder, ImageBatch, ImageShape};
use burn::prelude::*;
use cvae::{Cvae, CvaeConfig};
use serde::{Deserialize, Serialize};
use skip_vae::{SkipVae, SkipVaeConfig};
use vae::{Vae, VaeConfig};
use vq_vae::{VqVae, VqVaeConfig};

/// Any model family, as written in an experiment config (`family = "vae"`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelConfig {
    /// Deterministic autoencoder.
    Ae(AeConfig),
    /// VAE / β-VAE.
    Vae(VaeConfig),
    /// Conditional VAE.
    Cvae(CvaeConfig),
    /// VQ-VAE.
    VqVae(VqVaeConfig),
    /// VAE with skip connections into the decoder (plain or FiLM-gated).
    SkipVae(SkipVaeConfig),
}

impl ModelConfig {
    /// Builds the model for images of `shape` on `device`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Model {
        match self {
            ModelConfig::Ae(c) => Model::Ae(c.init(shape, device)),
            ModelConfig::Vae(c) => Model::Vae(c.init(shape, device)),
            ModelConfig::Cvae(c) => Model::Cvae(c.init(shape, device)),
            ModelConfig::VqVae(c) => Model::VqVae(c.init(shape, device)),
            ModelConfig::SkipVae(c) => Model::SkipVae(c.init(shape, device)),
        }
    }

    /// Checks hyper-parameters, returning a message that names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelConfig::Ae(c) => c.validate(),
            ModelConfig::Vae(c) => c.validate(),
            ModelConfig::Cvae(c) => c.validate(),
            ModelConfig::VqVae(c) => c.validate(),
            ModelConfig::SkipVae(c) => c.validate(),
        }
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        match self {
            ModelConfig::Ae(c) => c.latent_dim,
            ModelConfig::Vae(c) => c.latent_dim,
            ModelConfig::Cvae(c) => c.latent_dim,
            ModelConfig::VqVae(c) => c.code_dim,
            ModelConfig::SkipVae(c) => c.latent_dim,
        }
    }

    /// β weighting the KL term (0 for an AE).
    pub fn beta(&self) -> f64 {
        match self {
            ModelConfig::Ae(_) | ModelConfig::VqVae(_) => 0.0,
            ModelConfig::Vae(c) => c.beta,
            ModelConfig::Cvae(c) => c.beta,
            ModelConfig::SkipVae(c) => c.beta,
        }
    }

    /// Whether the model has a prior to sample from.
    pub fn has_prior(&self) -> bool {
        matches!(
            self,
            ModelConfig::Vae(_) | ModelConfig::Cvae(_) | ModelConfig::SkipVae(_)
        )
    }

    /// Checks that the model fits images of `shape`.
    pub fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        match self {
            ModelConfig::Ae(c) => c.architecture.validate(Some(shape)),
            ModelConfig::Vae(c) => c.architecture.validate(Some(shape)),
            ModelConfig::Cvae(c) => c.architecture.validate(Some(shape)),
            ModelConfig::VqVae(VqVaeConfig { channels, .. })
            | ModelConfig::SkipVae(SkipVaeConfig { channels, .. }) => {
                let f = 1 << channels.len();
                if !shape.height.is_multiple_of(f) || !shape.width.is_multiple_of(f) {
                    Err(format!(
                        "model.channels: {} stride-2 layers need height and width divisible by {f}",
                        channels.len()
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Short family name ("ae", "vae", "cvae").
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Ae(_) => "ae",
            ModelConfig::Vae(_) => "vae",
            ModelConfig::Cvae(_) => "cvae",
            ModelConfig::VqVae(_) => "vq_vae",
            ModelConfig::SkipVae(_) => "skip_vae",
        }
    }
}

/// Any model family, as a module.
#[derive(Module, Debug)]
pub enum Model {
    /// Deterministic autoencoder.
    Ae(Ae),
    /// VAE / β-VAE.
    Vae(Vae),
    /// Conditional VAE.
    Cvae(Cvae),
    /// VQ-VAE.
    VqVae(VqVae),
    /// VAE with skip connections into the decoder.
    SkipVae(SkipVae),
}

impl Autoencoder for Model {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        match self {
            Model::Ae(m) => m.forward(batch),
            Model::Vae(m) => m.forward(batch),
            Model::Cvae(m) => m.forward(batch),
            Model::VqVae(m) => m.forward(batch),
            Model::SkipVae(m) => m.forward(batch),
        }
    }

    fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
        match self {
            Model::Ae(m) => m.encode(images, labels),
            Model::Vae(m) => m.encode(images, labels),
            Model::Cvae(m) => m.encode(images, labels),
            Model::VqVae(m) => m.encode(images, labels),
            Model::SkipVae(m) => m.encode(images, labels),
        }
    }

    fn decode(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        match self {
            Model::Ae(m) => m.decode(z, labels),
            Model::Vae(m) => m.decode(z, labels),
            Model::Cvae(m) => m.decode(z, labels),
            Model::VqVae(m) => m.decode(z, labels),
            Model::SkipVae(m) => m.decode(z, labels),
        }
    }

    fn reconstruct(&self, batch: ImageBatch) -> Tensor<4> {
        match self {
            Model::VqVae(m) => m.reconstruct(batch),
            Model::SkipVae(m) => m.reconstruct(batch),
            _ => {
                let z = self.encode(batch.images, batch.labels.clone());
                self.decode(z, batch.labels)
            }
        }
    }

    fn num_classes(&self) -> Option<usize> {
        match self {
            Model::Cvae(m) => m.num_classes(),
            _ => None,
        }
    }

    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
        match self {
            Model::Ae(m) => m.sample(n, device),
            Model::Vae(m) => m.sample(n, device),
            Model::Cvae(m) => m.sample(n, device),
            Model::VqVae(m) => m.sample(n, device),
            Model::SkipVae(m) => m.sample(n, device),
        }
    }

    fn latent_dim(&self) -> usize {
        match self {
            Model::Ae(m) => m.latent_dim(),
            Model::Vae(m) => m.latent_dim(),
            Model::Cvae(m) => m.latent_dim(),
            Model::VqVae(m) => m.latent_dim(),
            Model::SkipVae(m) => m.latent_dim(),
        }
    }

    fn variational_posterior(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> Option<ae_core::DiagonalGaussian> {
        match self {
            Model::Ae(m) => m.variational_posterior(images, labels),
            Model::Vae(m) => m.variational_posterior(images, labels),
            Model::Cvae(m) => m.variational_posterior(images, labels),
            Model::VqVae(m) => m.variational_posterior(images, labels),
            Model::SkipVae(m) => m.variational_posterior(images, labels),
        }
    }

    fn log_prior(&self, z: Tensor<2>) -> Tensor<1> {
        match self {
            Model::Ae(m) => m.log_prior(z),
            Model::Vae(m) => m.log_prior(z),
            Model::Cvae(m) => m.log_prior(z),
            Model::VqVae(m) => m.log_prior(z),
            Model::SkipVae(m) => m.log_prior(z),
        }
    }

    fn log_likelihood(
        &self,
        images: Tensor<4>,
        z: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Option<Tensor<1>> {
        match self {
            Model::Ae(m) => m.log_likelihood(images, z, labels),
            Model::Vae(m) => m.log_likelihood(images, z, labels),
            Model::Cvae(m) => m.log_likelihood(images, z, labels),
            Model::VqVae(m) => m.log_likelihood(images, z, labels),
            Model::SkipVae(m) => m.log_likelihood(images, z, labels),
        }
    }
}
