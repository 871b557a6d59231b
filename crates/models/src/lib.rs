//! `ae-models`: the model families, one per file, each a config plus a module.
//!
//! - [`ae`]: deterministic autoencoder.
//! - [`vae`]: variational autoencoder with β (β = 1: VAE; β ≠ 1: β-VAE).
//! - [`nets`]: the encoder and decoder networks (MLP, conv for 28×28 and 64×64).
//!
//! [`ModelConfig`] is the tagged union experiment configs hold; [`Model`] is the matching
//! module the training loop drives.
//!
//! **Invariant:** no I/O and no burn-train; models only see tensors.
#![warn(missing_docs)]

pub mod ae;
pub mod nets;
pub mod vae;

use ae::{Ae, AeConfig};
use ae_core::{AeOutput, Autoencoder, ImageBatch, ImageShape};
use burn::prelude::*;
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
}

impl ModelConfig {
    /// Builds the model for images of `shape` on `device`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Model {
        match self {
            ModelConfig::Ae(c) => Model::Ae(c.init(shape, device)),
            ModelConfig::Vae(c) => Model::Vae(c.init(shape, device)),
        }
    }

    /// Checks hyper-parameters, returning a message that names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelConfig::Ae(c) => c.validate(),
            ModelConfig::Vae(c) => c.validate(),
        }
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        match self {
            ModelConfig::Ae(c) => c.latent_dim,
            ModelConfig::Vae(c) => c.latent_dim,
        }
    }

    /// β weighting the KL term (0 for an AE).
    pub fn beta(&self) -> f64 {
        match self {
            ModelConfig::Ae(_) => 0.0,
            ModelConfig::Vae(c) => c.beta,
        }
    }

    /// Whether the model has a prior to sample from.
    pub fn has_prior(&self) -> bool {
        matches!(self, ModelConfig::Vae(_))
    }

    /// Short family name ("ae", "vae").
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Ae(_) => "ae",
            ModelConfig::Vae(_) => "vae",
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
}

impl Autoencoder for Model {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        match self {
            Model::Ae(m) => m.forward(batch),
            Model::Vae(m) => m.forward(batch),
        }
    }

    fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Model::Ae(m) => m.encode(images),
            Model::Vae(m) => m.encode(images),
        }
    }

    fn decode(&self, z: Tensor<2>) -> Tensor<4> {
        match self {
            Model::Ae(m) => m.decode(z),
            Model::Vae(m) => m.decode(z),
        }
    }

    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
        match self {
            Model::Ae(m) => m.sample(n, device),
            Model::Vae(m) => m.sample(n, device),
        }
    }

    fn latent_dim(&self) -> usize {
        match self {
            Model::Ae(m) => m.latent_dim(),
            Model::Vae(m) => m.latent_dim(),
        }
    }
}
