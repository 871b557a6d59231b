//! `ae-metrics`: the diagnostics researchers read, as burn-train metrics.
//!
//! Every metric consumes an [`AeItem`] (the model output, read to the host once per batch on
//! the metric thread) and reports per-sample figures in nats:
//!
//! | metric            | meaning                                                             |
//! |-------------------|---------------------------------------------------------------------|
//! | `Loss`            | negative ELBO, recon + KL (β-independent)                            |
//! | `Recon`           | −log p(x|z)                                                          |
//! | `KL`              | KL(q(z|x) ‖ p(z))                                                    |
//! | `Beta loss`       | the trained objective, recon + β·KL                                  |
//! | `Active units`    | dims with Var_x E[z_u|x] > 0.01 over the whole epoch (Burda et al.)  |
//! | `Collapsed dims`  | dims with epoch-mean KL_j < 0.01 nats                                |
//! | `Collapse alarm`  | 1 when every dim collapsed or total KL < threshold                   |
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
