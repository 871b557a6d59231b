//! `ae-models`: the model families, one per file, each a config plus a module.
//!
//! - [`ae`]: deterministic autoencoder.
//! - [`vae`]: variational autoencoder with β (β = 1: VAE; β ≠ 1: β-VAE).
//! - [`cvae`]: conditional VAE, q(z|x,c) and p(x|z,c) with a one-hot class c.
//! - [`skip_vae`]: VAE with U-Net skips into the decoder, plain (collapses) or FiLM-gated by z.
//! - [`vq_vae`]: VQ-VAE with straight-through codebook, optional EMA and dead-code restarts.
//! - [`wae`]: Wasserstein autoencoder with an MMD penalty (WAE-MMD).
//! - [`nets`]: the encoder and decoder networks (MLP, conv for 28×28 and 64×64).
//! - [`family`]: what a family declares ([`Family`], [`Capabilities`]) and the registry macro.
//!
//! [`ModelConfig`] is the tagged union experiment configs hold; [`Model`] is the matching
//! module the training loop drives. Both, and every dispatch over them, are written by
//! [`families!`] from the list below: adding a family is its file plus one line here (see
//! "Adding a model family" in ARCHITECTURE.md).
//!
//! **Invariant:** no I/O and no burn-train; models only see tensors.
#![warn(missing_docs)]

pub mod family;
pub mod nets;

pub use family::{Capabilities, Family};

use ae_core::ImageShape;
use burn::prelude::*;

families! {
    /// Deterministic autoencoder.
    ae::Ae(AeConfig, Ae),
    /// VAE / β-VAE.
    vae::Vae(VaeConfig, Vae),
    /// Conditional VAE.
    cvae::Cvae(CvaeConfig, Cvae),
    /// VQ-VAE.
    vq_vae::VqVae(VqVaeConfig, VqVae),
    /// VAE with skip connections into the decoder (plain or FiLM-gated).
    skip_vae::SkipVae(SkipVaeConfig, SkipVae),
    /// Wasserstein autoencoder with an MMD penalty.
    wae::Wae(WaeConfig, Wae),
}

impl ModelConfig {
    /// Checks hyper-parameters, returning a message that names the bad key.
    pub fn validate(&self) -> Result<(), String> {
        self.as_family().validate()
    }

    /// Checks that the model fits images of `shape`.
    pub fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        self.as_family().check_shape(shape)
    }

    /// Latent dimension (for a VQ-VAE: the code vectors' dimension).
    pub fn latent_dim(&self) -> usize {
        self.as_family().latent_dim()
    }

    /// What the family has: prior, KL/β, codebook, classes, likelihood.
    pub fn capabilities(&self) -> Capabilities {
        self.as_family().capabilities()
    }

    /// β weighting the KL term (0 for families without one).
    pub fn beta(&self) -> f64 {
        self.capabilities().beta.unwrap_or(0.0)
    }

    /// Sets β; an error naming the family for one without a KL term.
    pub fn set_beta(&mut self, beta: f64) -> Result<(), String> {
        self.as_family_mut().set_beta(beta)
    }

    /// Whether the model has a prior to sample from.
    pub fn has_prior(&self) -> bool {
        self.capabilities().prior
    }
}

/// Checks that `shape` is divisible by the `2^layers` of a stack of stride-2 convolutions.
pub fn check_stride_2(layers: usize, shape: ImageShape) -> Result<(), String> {
    let f = 1 << layers;
    if !shape.height.is_multiple_of(f) || !shape.width.is_multiple_of(f) {
        Err(format!(
            "model.channels: {layers} stride-2 layers need height and width divisible by {f}"
        ))
    } else {
        Ok(())
    }
}
