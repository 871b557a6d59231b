//! `ae-data`: datasets and batchers.
//!
//! - [`idx`]: parser for the IDX format of MNIST (`.gz` or raw), with errors that name the file.
//! - [`mnist`]: the four standard MNIST files from a user-given directory.
//! - [`dsprites`]: dSprites (Matthey et al. 2017) generated procedurally: 3 shapes × 6 scales ×
//!   40 orientations × 32 × 32 positions = 737,280 64×64 binary images with their factors.
//! - [`array`](mod@array): the user's own images: any IDX image file, NumPy `.npy` arrays (uint8 or
//!   float32), with optional labels.
//! - [`folder`]: folders of PNG/JPEG images (grey or RGB, resized and centre-cropped, class
//!   sub-folders as labels).
//! - [`counts`]: synthetic spike counts (latent factors → Poisson / negative-binomial rates).
//! - [`DataConfig`]: the `[data]` table of an experiment config, resolved into train/valid
//!   [`ImageDataset`]s with deterministic seeded subsets.
//! - [`ImageBatcher`]: items to [`ae_core::ImageBatch`] tensors.
//! - [`seeded`]: counter-based random numbers (shuffling, binarisation) from (seed, epoch).
#![warn(missing_docs)]

pub mod array;
mod batcher;
mod config;
pub mod counts;
pub mod dsprites;
mod error;
pub mod folder;
pub mod idx;
pub mod mnist;
pub mod seeded;

pub use batcher::*;
pub use config::*;
pub use error::*;
