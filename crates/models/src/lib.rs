//! `ae-models`: the model families, one per file, each a config plus a module.
//!
//! - [`ae`]: deterministic autoencoder.
//! - [`vae`]: variational autoencoder with β (β = 1: VAE; β ≠ 1: β-VAE).
//! - [`cvae`]: conditional VAE, q(z|x,c) and p(x|z,c) with a one-hot class c.
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
pub mod vae;

use ae::{Ae, AeConfig};
use ae_core::{AeOutput, Autoencoder, ImageBatch, ImageShape};
use burn::prelude::*;
use cvae::{Cvae, CvaeConfig};
use serde::{Deserialize, Serialize};
use vae::{Vae, VaeConfig};

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
}

impl ModelConfig {
    /// Builds the model for images of `shape` on `device`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Model {
        match self {
            ModelConfig::Ae(c) => Model::Ae(c.init(shape, device)),
            ModelConfig::Vae(c) => Model::Vae(c.init(shape, device)),
            ModelConfig::Cvae(c) => Model::Cvae(c.init(shape, device)),
        }
    }

    /// Checks hyper-parameters, returning a message that names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelConfig::Ae(c) => c.validate(),
            ModelConfig::Vae(c) => c.validate(),
            ModelConfig::Cvae(c) => c.validate(),
        }
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        match self {
            ModelConfig::Ae(c) => c.latent_dim,
            ModelConfig::Vae(c) => c.latent_dim,
            ModelConfig::Cvae(c) => c.latent_dim,
        }
    }

    /// β weighting the KL term (0 for an AE).
    pub fn beta(&self) -> f64 {
        match self {
            ModelConfig::Ae(_) => 0.0,
            ModelConfig::Vae(c) => c.beta,
            ModelConfig::Cvae(c) => c.beta,
        }
    }

    /// Whether the model has a prior to sample from.
    pub fn has_prior(&self) -> bool {
        matches!(self, ModelConfig::Vae(_) | ModelConfig::Cvae(_))
    }

    /// The encoder/decoder architecture.
    pub fn architecture(&self) -> &nets::Architecture {
        match self {
            ModelConfig::Ae(c) => &c.architecture,
            ModelConfig::Vae(c) => &c.architecture,
            ModelConfig::Cvae(c) => &c.architecture,
        }
    }

    /// Short family name ("ae", "vae", "cvae").
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Ae(_) => "ae",
            ModelConfig::Vae(_) => "vae",
            ModelConfig::Cvae(_) => "cvae",
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
}

impl Autoencoder for Model {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        match self {
            Model::Ae(m) => m.forward(batch),
            Model::Vae(m) => m.forward(batch),
            Model::Cvae(m) => m.forward(batch),
        }
    }

    fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
        match self {
            Model::Ae(m) => m.encode(images, labels),
            Model::Vae(m) => m.encode(images, labels),
            Model::Cvae(m) => m.encode(images, labels),
        }
    }

    fn decode(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        match self {
            Model::Ae(m) => m.decode(z, labels),
            Model::Vae(m) => m.decode(z, labels),
            Model::Cvae(m) => m.decode(z, labels),
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
        }
    }

    fn latent_dim(&self) -> usize {
        match self {
            Model::Ae(m) => m.latent_dim(),
            Model::Vae(m) => m.latent_dim(),
            Model::Cvae(m) => m.latent_dim(),
        }
    }
}
