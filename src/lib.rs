//! `ae`: an autoencoder research framework on Burn 0.22.
//!
//! This facade re-exports the workspace crates (ripgrep-style) and owns the single
//! integration-test binary in `tests/`.
//!
//! - [`core`]: the model contract, posterior, KL, likelihoods.
//! - [`models`]: AE, VAE / β-VAE and their networks.
//! - [`data`]: MNIST (IDX) and procedural dSprites.
//! - [`metrics`]: burn-train diagnostics (active units, collapse alarm, ...).
//! - [`train`]: Learner glue, experiment configs, run folders.
//! - [`eval`]: evaluation of trained models (IWAE bounds, KL decompositions).
#![warn(missing_docs)]

pub use ae_core as core;
pub use ae_data as data;
pub use ae_eval as eval;
pub use ae_metrics as metrics;
pub use ae_models as models;
pub use ae_train as train;
