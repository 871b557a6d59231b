//! `ae-core`: the contract every autoencoder in the workspace obeys.
//!
//! - [`ImageBatch`]: what a model consumes.
//! - [`AeOutput`]: what a model returns: per-sample loss breakdown in nats, per-dimension KL,
//!   posterior mean and reconstruction.
//! - [`DiagonalGaussian`]: the posterior q(z|x) with reparameterised sampling and closed-form KL.
//! - [`Likelihood`]: the decoder's observation model: Bernoulli from logits, Gaussian with a
//!   fixed σ or a learned, bounded σ, Poisson, and negative binomial (with an `lgamma` built
//!   from tensor ops).
//! - [`Autoencoder`]: the trait model families implement.
//! - [`linear`], [`conv`] and [`bernoulli`]: the dense and conv layers and the Bernoulli NLL as the models call
//!   them, dispatching to the fused CPU kernels of `ae-cpu` (feature `fast-cpu`, on by default
//!   through `ae-train`; run-time switch `AE_CPU_KERNELS=off`) where they apply, and to Burn's
//!   ops everywhere else.
//!
//! **Invariant:** no I/O and no burn-train here; this crate is pure tensor maths, with no
//! `unsafe` (the kernels and their `unsafe` live in `ae-cpu`).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod autoencoder;
mod batch;
pub mod bernoulli;
pub mod conv;
mod likelihood;
pub mod linear;
mod output;
mod posterior;

pub use autoencoder::*;
pub use batch::*;
pub use likelihood::*;
pub use output::*;
pub use posterior::*;
