//! `ae-metrics`: the diagnostics researchers read, as burn-train metrics.
//!
//! Every metric reads the [`HostBatch`] of an [`AeItem`] (the model output, read to the host
//! once per batch on the metric thread). Each one is an [`EpochMetric`] over a [`Diagnostic`]
//! that accumulates the whole epoch; per-sample figures are in nats:
//!
//! | metric           | column               | meaning                                                              |
//! |------------------|----------------------|----------------------------------------------------------------------|
//! | `Loss`           | `loss`               | negative ELBO, recon + KL (β-independent)                            |
//! | `Recon`          | `recon`              | −log p(x\|z)                                                         |
//! | `KL`             | `kl`                 | KL(q(z\|x) ‖ p(z))                                                   |
//! | `Beta loss`      | `beta_loss`          | the trained objective, recon + β·KL                                  |
//! | `Active units`   | `active_units`       | dims with Var_x E[z_u\|x] > 0.01 over the epoch (Burda et al.)       |
//! | `Collapsed dims` | `collapsed_dims`     | dims with epoch-mean KL_j < 0.01 nats (also records KL_j)            |
//! | `Collapse alarm` | `posterior_collapse` | 1 when every dim collapsed, total KL < 0.1 nats or no unit is active |
//! | `Perplexity`     | `perplexity`         | VQ: exp(entropy) of the epoch's code frequencies                     |
//! | `Codes used`     | `codes_used`         | VQ: codes chosen at least once in the epoch                          |
//! | `Dead codes`     | `dead_codes`         | VQ: codes never chosen in the epoch                                  |
//!
//! The thresholds are the defaults of [`DiagnosticsConfig`]. `ae-train` registers the active
//! units for every model but the VQ-VAE, the codebook figures for the VQ-VAE only, and the
//! collapse metrics for models with a prior.
//!
//! Epoch-level values (and the per-dimension KL vector) also go to an [`EpochLog`], from which
//! `ae-train` writes `metrics.csv`.
#![warn(missing_docs)]

mod diagnostics;
mod item;
mod log;
mod stats;

pub use diagnostics::*;
pub use item::*;
pub use log::*;
pub use stats::*;
