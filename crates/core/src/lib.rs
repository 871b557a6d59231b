//! `ae-core`: the contract every autoencoder in the workspace obeys.
//!
//! - [`ImageBatch`]: what a model consumes.
//! - [`AeOutput`]: what a model returns: per-sample loss breakdown in nats, per-dimension KL,
//!   posterior mean and reconstruction.
//! - [`DiagonalGaussian`]: the posterior q(z|x) with reparameterised sampling and closed-form KL.
//! - [`Likelihood`]: the decoder's observation model (Bernoulli, Gaussian with fixed σ).
//! - [`Autoencoder`]: the trait model families implement.
//!
//! **Invariant:** no I/O and no burn-train here; this crate is pure tensor maths.
#![warn(missing_docs)]

mod autoencoder;
mod batch;
pub mod fused;
#[cfg(feature = "flex")]
mod host;
mod likelihood;
pub mod linear;
mod output;
mod posterior;

pub use autoencoder::*;
pub use batch::*;
pub use likelihood::*;
pub use output::*;
pub use posterior::*;
