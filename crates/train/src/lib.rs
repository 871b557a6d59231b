//! `ae-train`: glue between the models and burn-train's `Learner`.
//!
//! - [`ExperimentConfig`]: one TOML file describes a run (model, data, optimiser, seed).
//! - [`device`]: backend selection among the compiled cargo features.
//! - [`Trainable`]: the `TrainStep`/`InferenceStep` wrapper around [`ae_models::Model`].
//! - [`run`]: trains and writes the run folder (the contract scripts read).
//! - [`loader`]: data loaders whose shuffling and noise are functions of (seed, epoch), so a
//!   resumed run is bit-identical to an uninterrupted one.
//! - [`checkpoint`]: atomic checkpoints and the choice of the one to resume from.
//! - [`lock`]: one process per run or sweep folder.
//! - [`results`]: the results tables (`metrics.csv`, `results.csv`, `results.md`), their rows,
//!   writers and readers.
//! - [`sweep`]: the β sweep (`beta_sweep`); [`grid`]: sweeps over any grid of config keys
//!   (`sweep`), with plan / point / collect for job arrays; [`scheduler`]: the process pool
//!   behind `--jobs N`.
//! - [`plots`]: the sweep's figures, drawn from any slice of [`results::ResultRow`]s.
//! - [`evaluation`]: `evaluate` on a run folder (`eval.json`, `eval.md`).
//! - [`optim`]: Adam, fused into one parallel pass per parameter on CPU backends.
//! - [`tensorboard`], [`tfevents`]: the run's TensorBoard event files (scalars, images,
//!   hparams), written with `prost`, and a checking reader.
//! - [`mod@bench`]: the training-throughput benchmark behind the `bench` binary.
//!
//! **Invariant:** this is the only crate that knows the run-folder layout.
#![warn(missing_docs)]

mod atomic;
pub mod bench;
pub mod checkpoint;
mod config;
pub mod decodes;
pub mod device;
pub mod evaluation;
pub mod grid;
mod images;
pub mod latents;
pub mod loader;
pub mod lock;
pub mod optim;
pub mod plots;
mod renderer;
pub mod results;
pub mod run;
mod schedule;
pub mod scheduler;
pub mod sweep;
pub mod tensorboard;
pub mod tfevents;
pub mod threads;
mod trainable;

pub use atomic::*;
pub use config::*;
pub use images::*;
pub use renderer::*;
pub use run::{RunOptions, RunOutcome, train};
pub use schedule::*;
pub use trainable::*;

pub use ae_data as data;
pub use ae_metrics as metrics;
pub use ae_models as models;
