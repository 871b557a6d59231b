use crate::array::{self, ImageArray};
use crate::counts::CountModel;
use crate::dsprites::{self, Factors};
use crate::mnist::{self, MnistSplit};
use crate::{DataError, ImageItem};
use ae_core::ImageShape;
use burn::data::dataset::{Dataset, DatasetError};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

fn default_dsprites_valid() -> usize {
    10_000
}

/// How grey-level pixels become binary. A Bernoulli likelihood is a likelihood only of binary
/// data: on grey levels its "NLL" is a cross-entropy, not comparable to published likelihoods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binarize {
    /// Pixels as they are (grey levels in [0, 1]).
    #[default]
    None,
    /// Each training image resampled, x ~ Bernoulli(pixel), every time it is used (a new draw
    /// each epoch, from (seed, epoch, image)); the validation images binarised once with a
    /// fixed seed. The protocol of Burda et al. (2015) and most published MNIST likelihoods.
    Dynamic,
    /// pixel ≥ 0.5 → 1, else 0, once for both splits.
    Threshold,
}

impl Binarize {
    /// No binarisation.
    pub fn is_none(&self) -> bool {
        *self == Binarize::None
    }
}

/// The `[data]` table of an experiment config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dataset", rename_all = "snake_case", deny_unknown_fields)]
pub enum DataConfig {
    /// Real MNIST: train on the 60,000 training images, validate on the 10,000 test images.
    Mnist {
        /// Directory holding the four IDX files; `--data-dir` overrides it, `AE_MNIST_DIR`
        /// is used when both are absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data_dir: Option<PathBuf>,
        /// Train on a seeded random subset of this many images.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        train_limit: Option<usize>,
        /// Validate on a seeded random subset of this many test images.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_limit: Option<usize>,
        /// Seed of the subsets (independent of the training seed).
        #[serde(default)]
        split_seed: u64,
        /// Binary pixels for Bernoulli likelihoods: `"dynamic"` or `"threshold"`.
        #[serde(default, skip_serializing_if = "Binarize::is_none")]
        binarize: Binarize,
        /// Digits left out of the training split (the validation split keeps them): the
        /// anomalies of `evaluate --anomaly`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude_classes: Vec<u8>,
    },
    /// Procedural dSprites (64×64): a seeded permutation of all 737,280 images; the first
    /// `valid_size` validate, the rest (or `train_limit` of them) train.
    Dsprites {
        /// Train on this many images (all remaining when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        train_limit: Option<usize>,
        /// Number of validation images.
        #[serde(default = "default_dsprites_valid")]
        valid_size: usize,
        /// Seed of the split.
        #[serde(default)]
        split_seed: u64,
    },
    /// Synthetic spike counts (see [`crate::counts`]): `neurons` counts per sample driven by
    /// `factors` latent factors; an image of shape 1 × 1 × neurons with raw counts (no scaling).
    Counts {
        /// Data dimension.
        #[serde(default = "default_neurons")]
        neurons: usize,
        /// Number of generating factors.
        #[serde(default = "default_factors")]
        factors: usize,
        /// Negative-binomial dispersion r (absent: Poisson counts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dispersion: Option<f64>,
        /// Training samples.
        #[serde(default = "default_count_train")]
        train_limit: usize,
        /// Validation samples.
        #[serde(default = "default_count_valid")]
        valid_size: usize,
        /// Seed of the generator (loadings and samples).
        #[serde(default)]
        split_seed: u64,
    },
    /// Any IDX image files (MNIST's format: Fashion-MNIST, KMNIST, EMNIST, the 8×8 digits,
    /// …), the image shape read from the header.
    Idx(FilesConfig),
    /// NumPy `.npy` arrays: `uint8` pixels (0–255, scaled to [0, 1]) or `float32` values
    /// (used as they are).
    Npy(FilesConfig),
    /// A folder of PNG/JPEG images, grey or RGB, class sub-folders as labels.
    ImageFolder(FolderConfig),
}

/// Where the user's own images are (the `idx` and `npy` data sets) and how to split them.
/// Relative paths are relative to the working directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Training images: `[n, h, w]`, `[n, c, h, w]` (or, for `.npy`, `[n, d]`).
    pub train_images: PathBuf,
    /// Training labels, one integer per image (absent: every label is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_labels: Option<PathBuf>,
    /// Validation images of the same shape (absent: a seeded `valid_fraction` of the training
    /// images is held out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_images: Option<PathBuf>,
    /// Validation labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_labels: Option<PathBuf>,
    /// Share of the training images held out for validation when there are no
    /// `valid_images`.
    #[serde(default = "default_valid_fraction")]
    pub valid_fraction: f64,
    /// Train on a seeded random subset of this many images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Validate on a seeded random subset of this many images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_limit: Option<usize>,
    /// Seed of the split and the subsets (independent of the training seed).
    #[serde(default)]
    pub split_seed: u64,
    /// Binary pixels for Bernoulli likelihoods: `"dynamic"` or `"threshold"` (at 0.5).
    #[serde(default, skip_serializing_if = "Binarize::is_none")]
    pub binarize: Binarize,
}

fn default_valid_fraction() -> f64 {
    0.1
}

impl FilesConfig {
    /// Training images from `path`, everything else at its default.
    pub fn new(train_images: impl Into<PathBuf>) -> Self {
        Self {
            train_images: train_images.into(),
            train_labels: None,
            valid_images: None,
            valid_labels: None,
            valid_fraction: default_valid_fraction(),
            train_limit: None,
            valid_limit: None,
            split_seed: 0,
            binarize: Binarize::None,
        }
    }

    /// Checks the files' headers and the split, naming the file or key at fault.
    fn validate(&self) -> Result<(), DataError> {
        let shape = array::image_shape(&self.train_images)?;
        if let Some(valid) = &self.valid_images {
            let vshape = array::image_shape(valid)?;
            if vshape != shape {
                return Err(DataError::Config(format!(
                    "data.valid_images {} holds {}×{}×{} images but data.train_images {} holds \
                     {}×{}×{}; give both splits the same shape",
                    valid.display(),
                    vshape.channels,
                    vshape.height,
                    vshape.width,
                    self.train_images.display(),
                    shape.channels,
                    shape.height,
                    shape.width
                )));
            }
        }
        if self.valid_labels.is_some() && self.valid_images.is_none() {
            return Err(DataError::Config(
                "data.valid_labels needs data.valid_images".into(),
            ));
        }
        check_split(
            self.valid_images.is_some(),
            "valid_images",
            self.valid_fraction,
            (self.train_limit, self.valid_limit),
        )?;
        Ok(())
    }

    /// The classes of the labels: the largest label plus one over both splits (1 without
    /// labels).
    fn num_classes(&self) -> usize {
        [&self.train_labels, &self.valid_labels]
            .into_iter()
            .flatten()
            .map(|p| array::label_classes(p).unwrap_or(1))
            .max()
            .unwrap_or(1)
    }

    /// The train and validation splits.
    fn load(&self) -> Result<(ImageDataset, ImageDataset), DataError> {
        self.validate()?;
        let train = Arc::new(ImageArray::load(
            &self.train_images,
            self.train_labels.as_deref(),
        )?);
        let valid = match &self.valid_images {
            Some(path) => Some(Arc::new(ImageArray::load(
                path,
                self.valid_labels.as_deref(),
            )?)),
            None => None,
        };
        make_splits(
            (train, &self.train_images),
            valid,
            Split {
                valid_fraction: self.valid_fraction,
                train_limit: self.train_limit,
                valid_limit: self.valid_limit,
                split_seed: self.split_seed,
                binarize: self.binarize,
            },
        )
    }
}

/// How the user's own images are split and subset.
struct Split {
    valid_fraction: f64,
    train_limit: Option<usize>,
    valid_limit: Option<usize>,
    split_seed: u64,
    binarize: Binarize,
}

/// The train and validation sets of the user's own images: the validation images when there
/// are some, else a seeded `valid_fraction` of the training images; seeded subsets; binarised
/// when asked.
fn make_splits(
    (train, train_path): (Arc<ImageArray>, &std::path::Path),
    valid: Option<Arc<ImageArray>>,
    split: Split,
) -> Result<(ImageDataset, ImageDataset), DataError> {
    let Split {
        valid_fraction,
        train_limit,
        valid_limit,
        split_seed,
        binarize,
    } = split;
    let (train, valid) = match valid {
        Some(valid) => {
            let train_idx = subset(train.len(), train_limit, split_seed);
            let valid_idx = subset(valid.len(), valid_limit, split_seed.wrapping_add(1));
            (
                ImageDataset::Array {
                    array: train,
                    indices: train_idx,
                },
                ImageDataset::Array {
                    array: valid,
                    indices: valid_idx,
                },
            )
        }
        None => {
            let n = train.len();
            if n < 2 {
                return Err(DataError::Config(format!(
                    "{} holds {n} image; a validation split needs at least 2 (or give \
                     separate validation images)",
                    train_path.display()
                )));
            }
            let n_valid = ((n as f64 * valid_fraction).round() as usize).clamp(1, n - 1);
            let mut all: Vec<u32> = (0..n as u32).collect();
            all.shuffle(&mut SmallRng::seed_from_u64(split_seed));
            let mut valid_idx = all[..n_valid].to_vec();
            let mut train_idx = all[n_valid..].to_vec();
            if let Some(l) = train_limit {
                train_idx.truncate(l);
            }
            if let Some(l) = valid_limit {
                valid_idx.truncate(l);
            }
            (
                ImageDataset::Array {
                    array: train.clone(),
                    indices: Arc::new(train_idx),
                },
                ImageDataset::Array {
                    array: train,
                    indices: Arc::new(valid_idx),
                },
            )
        }
    };
    if binarize.is_none() {
        return Ok((train, valid));
    }
    let wrap = |inner, stream: u64| ImageDataset::Binarized {
        inner: Arc::new(inner),
        mode: binarize,
        seed: crate::seeded::mix(&[split_seed, stream]),
    };
    Ok((wrap(train, 0x0074_7261_696e), wrap(valid, 0x7465_7374)))
}

/// The split settings the own-data sets share: a `valid_fraction` in (0, 1) unless separate
/// validation data (`valid_key`) is given, and limits of at least 1.
fn check_split(
    separate_valid: bool,
    valid_key: &str,
    valid_fraction: f64,
    (train_limit, valid_limit): (Option<usize>, Option<usize>),
) -> Result<(), DataError> {
    let fraction_ok = valid_fraction > 0.0 && valid_fraction < 1.0;
    if !(separate_valid || fraction_ok) {
        return Err(DataError::Config(format!(
            "data.valid_fraction must be in (0, 1) when there is no data.{valid_key}, got \
             {valid_fraction}"
        )));
    }
    if train_limit == Some(0) || valid_limit == Some(0) {
        return Err(DataError::Config(
            "data.train_limit and data.valid_limit must be at least 1".into(),
        ));
    }
    Ok(())
}

/// A folder of PNG/JPEG images (the `image_folder` data set): files directly in `train_dir`
/// (label 0) or in one sub-folder per class (labels in the sorted order of the folder names).
/// Relative paths are relative to the working directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// The training images.
    pub train_dir: PathBuf,
    /// Validation images, with the same class sub-folders (absent: a seeded `valid_fraction`
    /// of the training images is held out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_dir: Option<PathBuf>,
    /// Share of the training images held out when there is no `valid_dir`.
    #[serde(default = "default_valid_fraction")]
    pub valid_fraction: f64,
    /// `[height, width]`: every image resized (shorter side) and centre-cropped to it
    /// (absent: all images must have the first image's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<[usize; 2]>,
    /// 1 (grey) or 3 (RGB).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Train on a seeded random subset of this many images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Validate on a seeded random subset of this many images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_limit: Option<usize>,
    /// Seed of the split and the subsets.
    #[serde(default)]
    pub split_seed: u64,
    /// Binary pixels for Bernoulli likelihoods: `"dynamic"` or `"threshold"`.
    #[serde(default, skip_serializing_if = "Binarize::is_none")]
    pub binarize: Binarize,
    /// Leave the images on disk and decode each when a batch needs it, on the data loader's
    /// `num_workers` threads (for folders larger than memory); otherwise every image is
    /// decoded into memory up front (`channels × height × width` bytes each).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

fn default_channels() -> usize {
    3
}

impl FolderConfig {
    /// The folder `train_dir`, RGB, everything else at its default.
    pub fn new(train_dir: impl Into<PathBuf>) -> Self {
        Self {
            train_dir: train_dir.into(),
            valid_dir: None,
            valid_fraction: default_valid_fraction(),
            size: None,
            channels: default_channels(),
            train_limit: None,
            valid_limit: None,
            split_seed: 0,
            binarize: Binarize::None,
            stream: false,
        }
    }

    fn validate(&self) -> Result<(), DataError> {
        if ![1, 3].contains(&self.channels) {
            return Err(DataError::Config(format!(
                "data.channels must be 1 (grey) or 3 (RGB), got {}",
                self.channels
            )));
        }
        if self.size.is_some_and(|[h, w]| h == 0 || w == 0) {
            return Err(DataError::Config("data.size must be positive".into()));
        }
        check_split(
            self.valid_dir.is_some(),
            "valid_dir",
            self.valid_fraction,
            (self.train_limit, self.valid_limit),
        )?;
        crate::folder::shape(&self.train_dir, self.size, self.channels).map(|_| ())
    }

    fn load(&self) -> Result<(ImageDataset, ImageDataset), DataError> {
        self.validate()?;
        let (train, classes) =
            crate::folder::load(&self.train_dir, None, self.size, self.channels, self.stream)?;
        // Validation images take the training images' size and class order.
        let size = Some(self.size.unwrap_or([train.shape.height, train.shape.width]));
        let valid = match &self.valid_dir {
            Some(dir) => {
                let classes = (!classes.is_empty()).then_some(&classes[..]);
                Some(Arc::new(
                    crate::folder::load(dir, classes, size, self.channels, self.stream)?.0,
                ))
            }
            None => None,
        };
        make_splits(
            (Arc::new(train), &self.train_dir),
            valid,
            Split {
                valid_fraction: self.valid_fraction,
                train_limit: self.train_limit,
                valid_limit: self.valid_limit,
                split_seed: self.split_seed,
                binarize: self.binarize,
            },
        )
    }

    fn num_classes(&self) -> usize {
        crate::folder::list(&self.train_dir, None).map_or(1, |l| l.classes.len().max(1))
    }
}

fn default_neurons() -> usize {
    50
}
fn default_factors() -> usize {
    3
}
fn default_count_train() -> usize {
    20_000
}
fn default_count_valid() -> usize {
    2_000
}

impl DataConfig {
    /// dSprites with a train subset of `train_limit` images and 10,000 validation images.
    pub fn dsprites(train_limit: Option<usize>) -> Self {
        Self::Dsprites {
            train_limit,
            valid_size: default_dsprites_valid(),
            split_seed: 0,
        }
    }

    /// MNIST from `data_dir` (or the environment).
    pub fn mnist(data_dir: Option<PathBuf>) -> Self {
        Self::Mnist {
            data_dir,
            train_limit: None,
            valid_limit: None,
            split_seed: 0,
            binarize: Binarize::None,
            exclude_classes: Vec::new(),
        }
    }

    /// Classes left out of training (MNIST `exclude_classes`).
    pub fn excluded_classes(&self) -> Vec<u32> {
        match self {
            Self::Mnist {
                exclude_classes, ..
            } => exclude_classes.iter().map(|&c| c as u32).collect(),
            _ => Vec::new(),
        }
    }

    /// How pixels are binarised (MNIST and the user's own images offer it).
    pub fn binarize(&self) -> Binarize {
        match self {
            Self::Mnist { binarize, .. } => *binarize,
            Self::Idx(f) | Self::Npy(f) => f.binarize,
            Self::ImageFolder(f) => f.binarize,
            _ => Binarize::None,
        }
    }

    /// Name of the dataset ("mnist", "dsprites").
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mnist { .. } => "mnist",
            Self::Dsprites { .. } => "dsprites",
            Self::Counts { .. } => "counts",
            Self::Idx(_) => "idx",
            Self::Npy(_) => "npy",
            Self::ImageFolder(_) => "image_folder",
        }
    }

    /// Shape of one image.
    pub fn shape(&self) -> ImageShape {
        match self {
            Self::Mnist { .. } => ImageShape::new(1, 28, 28),
            Self::Dsprites { .. } => ImageShape::new(1, dsprites::SIZE, dsprites::SIZE),
            Self::Counts { neurons, .. } => ImageShape::new(1, 1, *neurons),
            // Read from the file's header; `validate` reports a file that cannot be read.
            Self::Idx(f) | Self::Npy(f) => {
                array::image_shape(&f.train_images).unwrap_or(ImageShape::new(1, 1, 1))
            }
            Self::ImageFolder(f) => crate::folder::shape(&f.train_dir, f.size, f.channels)
                .unwrap_or(ImageShape::new(f.channels, 1, 1)),
        }
    }

    /// Number of label classes (digits, shapes).
    pub fn num_classes(&self) -> usize {
        match self {
            Self::Mnist { .. } => 10,
            Self::Dsprites { .. } => dsprites::SHAPES,
            Self::Counts { .. } => 1,
            Self::Idx(f) | Self::Npy(f) => f.num_classes(),
            Self::ImageFolder(f) => f.num_classes(),
        }
    }

    /// The batcher for this data: pixels scaled to [0, 1] for images, raw values for counts.
    pub fn batcher(&self) -> crate::ImageBatcher {
        let b = crate::ImageBatcher::new(self.shape());
        match self {
            Self::Counts { .. } => b.with_scale(1.0),
            _ => b,
        }
    }

    /// Sets the train subset size.
    pub fn set_train_limit(&mut self, limit: Option<usize>) {
        match self {
            Self::Mnist { train_limit, .. } | Self::Dsprites { train_limit, .. } => {
                *train_limit = limit
            }
            Self::Idx(f) | Self::Npy(f) => f.train_limit = limit,
            Self::ImageFolder(f) => f.train_limit = limit,
            Self::Counts { train_limit, .. } => {
                if let Some(l) = limit {
                    *train_limit = l
                }
            }
        }
    }

    /// Sets the MNIST directory (no effect on dSprites).
    pub fn set_data_dir(&mut self, dir: PathBuf) {
        if let Self::Mnist { data_dir, .. } = self {
            *data_dir = Some(dir);
        }
    }

    /// Checks values, naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Mnist {
                train_limit: Some(0),
                ..
            }
            | Self::Dsprites {
                train_limit: Some(0),
                ..
            } => Err("data.train_limit must be at least 1".into()),
            Self::Mnist {
                valid_limit: Some(0),
                ..
            } => Err("data.valid_limit must be at least 1".into()),
            Self::Mnist {
                ref exclude_classes,
                ..
            } if exclude_classes.iter().any(|&c| c > 9) || exclude_classes.len() >= 10 => {
                Err(format!(
                    "data.exclude_classes must list digits 0–9 and leave at least one, got {exclude_classes:?}"
                ))
            }
            Self::Dsprites { valid_size, .. } if valid_size == 0 || valid_size >= dsprites::LEN => {
                Err(format!("data.valid_size must be in 1..{}", dsprites::LEN))
            }
            // Checked with their files by `FilesConfig::load` (typed errors); here for `validate`.
            Self::Idx(ref f) | Self::Npy(ref f) => f.validate().map_err(|e| e.to_string()),
            Self::ImageFolder(ref f) => f.validate().map_err(|e| e.to_string()),
            Self::Counts {
                neurons,
                factors,
                train_limit,
                valid_size,
                dispersion,
                ..
            } => {
                if neurons == 0 || factors == 0 {
                    Err("data.neurons and data.factors must be at least 1".into())
                } else if train_limit == 0 || valid_size == 0 {
                    Err("data.train_limit and data.valid_size must be at least 1".into())
                } else if dispersion.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                    Err("data.dispersion must be positive".into())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Loads (MNIST) or indexes (dSprites) the train and validation splits.
    pub fn load(&self) -> Result<(ImageDataset, ImageDataset), DataError> {
        // The user's own files validate themselves once, with errors that keep their type.
        match self {
            Self::Idx(f) | Self::Npy(f) => return f.load(),
            Self::ImageFolder(f) => return f.load(),
            _ => self.validate().map_err(DataError::Config)?,
        }
        match self {
            Self::Idx(_) | Self::Npy(_) | Self::ImageFolder(_) => unreachable!("loaded above"),
            Self::Mnist {
                data_dir,
                train_limit,
                valid_limit,
                split_seed,
                binarize,
                exclude_classes,
            } => {
                let dir = mnist::resolve_dir(data_dir.as_deref())?;
                let train = Arc::new(mnist::load_split(&dir, "train")?);
                let test = Arc::new(mnist::load_split(&dir, "t10k")?);
                let mut train_idx = subset(train.len(), *train_limit, *split_seed);
                if !exclude_classes.is_empty() {
                    train_idx = Arc::new(
                        train_idx
                            .iter()
                            .copied()
                            .filter(|&i| !exclude_classes.contains(&train.labels[i as usize]))
                            .collect(),
                    );
                }
                let test_idx = subset(test.len(), *valid_limit, split_seed.wrapping_add(1));
                let (train, test) = (
                    ImageDataset::Mnist {
                        split: train,
                        indices: train_idx,
                    },
                    ImageDataset::Mnist {
                        split: test,
                        indices: test_idx,
                    },
                );
                if binarize.is_none() {
                    return Ok((train, test));
                }
                let wrap = |inner, stream: u64| ImageDataset::Binarized {
                    inner: Arc::new(inner),
                    mode: *binarize,
                    seed: crate::seeded::mix(&[*split_seed, stream]),
                };
                Ok((wrap(train, 0x0074_7261_696e), wrap(test, 0x7465_7374)))
            }
            Self::Dsprites {
                train_limit,
                valid_size,
                split_seed,
            } => {
                let mut all: Vec<u32> = (0..dsprites::LEN as u32).collect();
                all.shuffle(&mut SmallRng::seed_from_u64(*split_seed));
                let valid = all[..*valid_size].to_vec();
                let mut train = all[*valid_size..].to_vec();
                if let Some(limit) = train_limit {
                    train.truncate(*limit);
                }
                Ok((
                    ImageDataset::Dsprites {
                        indices: Arc::new(train),
                    },
                    ImageDataset::Dsprites {
                        indices: Arc::new(valid),
                    },
                ))
            }
            Self::Counts {
                neurons,
                factors,
                dispersion,
                train_limit,
                valid_size,
                split_seed,
            } => {
                let model = Arc::new(CountModel::new(
                    *neurons,
                    *factors,
                    *dispersion,
                    *split_seed,
                ));
                Ok((
                    ImageDataset::Counts {
                        model: model.clone(),
                        offset: 0,
                        len: *train_limit,
                    },
                    ImageDataset::Counts {
                        model,
                        offset: *train_limit,
                        len: *valid_size,
                    },
                ))
            }
        }
    }
}

/// `limit` indices out of `0..n` (all of them, in order, when `limit` is `None` or ≥ n).
fn subset(n: usize, limit: Option<usize>, seed: u64) -> Arc<Vec<u32>> {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    if let Some(limit) = limit.filter(|&l| l < n) {
        idx.shuffle(&mut SmallRng::seed_from_u64(seed));
        idx.truncate(limit);
    }
    Arc::new(idx)
}

/// A train or validation split, as a burn [`Dataset`] of [`ImageItem`]s.
#[derive(Clone, Debug)]
pub enum ImageDataset {
    /// Indices into an in-memory MNIST split.
    Mnist {
        /// The images.
        split: Arc<MnistSplit>,
        /// Which of them belong to this dataset.
        indices: Arc<Vec<u32>>,
    },
    /// Indices of procedurally rendered dSprites images.
    Dsprites {
        /// dSprites indices (see [`Factors::from_index`]).
        indices: Arc<Vec<u32>>,
    },
    /// Indices into images held in memory (the user's own files).
    Array {
        /// The images.
        array: Arc<ImageArray>,
        /// Which of them belong to this dataset.
        indices: Arc<Vec<u32>>,
    },
    /// Samples `offset..offset + len` of a synthetic count generator.
    Counts {
        /// The generator.
        model: Arc<CountModel>,
        /// First sample index.
        offset: usize,
        /// Number of samples.
        len: usize,
    },
    /// Another data set with binary pixels (0 or 255).
    Binarized {
        /// The grey-level images.
        inner: Arc<ImageDataset>,
        /// Threshold, or Bernoulli draws.
        mode: Binarize,
        /// Seed of the draws of [`Dataset::get`]; a training loader passes one per epoch to
        /// [`ImageDataset::get_resampled`] instead.
        seed: u64,
    },
}

impl ImageDataset {
    /// The first `n` items (all of them when there are fewer).
    pub fn head(&self, n: usize) -> Self {
        let cut = |v: &Arc<Vec<u32>>| Arc::new(v[..n.min(v.len())].to_vec());
        match self {
            Self::Mnist { split, indices } => Self::Mnist {
                split: split.clone(),
                indices: cut(indices),
            },
            Self::Dsprites { indices } => Self::Dsprites {
                indices: cut(indices),
            },
            Self::Array { array, indices } => Self::Array {
                array: array.clone(),
                indices: cut(indices),
            },
            Self::Counts { model, offset, len } => Self::Counts {
                model: model.clone(),
                offset: *offset,
                len: n.min(*len),
            },
            Self::Binarized { inner, mode, seed } => Self::Binarized {
                inner: Arc::new(inner.head(n)),
                mode: *mode,
                seed: *seed,
            },
        }
    }

    /// dSprites factors of item `i` (None for MNIST).
    pub fn factors(&self, i: usize) -> Option<Factors> {
        match self {
            Self::Dsprites { indices } => Some(Factors::from_index(indices[i] as usize)),
            Self::Binarized { inner, .. } => inner.factors(i),
            _ => None,
        }
    }

    /// Whether [`ImageDataset::get_resampled`] draws new pixels for each seed (dynamic
    /// binarisation): a training loader then passes a seed per epoch.
    pub fn resampled(&self) -> bool {
        matches!(
            self,
            Self::Binarized {
                mode: Binarize::Dynamic,
                ..
            }
        )
    }

    /// Item `index` with its random draws (dynamic binarisation) taken from `seed` rather
    /// than the data set's own; the same as [`Dataset::get`] for every other data set.
    pub fn get_resampled(&self, index: usize, seed: u64) -> Result<ImageItem, DatasetError> {
        match self {
            Self::Binarized {
                inner,
                mode: Binarize::Dynamic,
                ..
            } => {
                let mut item = inner.get(index)?;
                binarize_item(
                    &mut item,
                    Binarize::Dynamic,
                    crate::seeded::mix(&[seed, index as u64]),
                );
                Ok(item)
            }
            _ => self.get(index),
        }
    }
}

impl Dataset<ImageItem> for ImageDataset {
    /// # Panics
    /// When `index >= len()`, as burn's `Dataset` contract requires.
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        match self {
            Self::Mnist { split, indices } => {
                let i = indices[index] as usize;
                Ok(ImageItem::bytes(
                    split.images[i * 784..(i + 1) * 784].to_vec(),
                    split.labels[i] as u32,
                ))
            }
            Self::Dsprites { indices } => {
                let f = Factors::from_index(indices[index] as usize);
                Ok(ImageItem::bytes(f.render(), f.shape as u32))
            }
            Self::Counts { model, offset, len } => {
                assert!(index < *len, "index {index} out of range");
                Ok(ImageItem::bytes(model.sample(offset + index).1, 0))
            }
            Self::Binarized { inner, mode, seed } => {
                let mut item = inner.get(index)?;
                binarize_item(&mut item, *mode, crate::seeded::mix(&[*seed, index as u64]));
                Ok(item)
            }
            Self::Array { array, indices } => Ok(array.item(indices[index] as usize)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Mnist { indices, .. }
            | Self::Dsprites { indices }
            | Self::Array { indices, .. } => indices.len(),
            Self::Counts { len, .. } => *len,
            Self::Binarized { inner, .. } => inner.len(),
        }
    }
}

/// Binary pixels for one item: bytes become 0 or 255 (threshold at 128, or a draw with
/// P(255) = p / 255), float values 0 or 1 (threshold at 0.5, or a draw with P(1) = v clamped
/// to [0, 1]); the draws come from `seed`.
fn binarize_item(item: &mut ImageItem, mode: Binarize, seed: u64) {
    match (mode, &mut item.values) {
        (Binarize::None, _) => {}
        (Binarize::Threshold, None) => item
            .pixels
            .iter_mut()
            .for_each(|p| *p = if *p >= 128 { 255 } else { 0 }),
        (Binarize::Dynamic, None) => crate::seeded::sample_binary(&mut item.pixels, seed),
        (Binarize::Threshold, Some(v)) => v
            .iter_mut()
            .for_each(|x| *x = if *x >= 0.5 { 1.0 } else { 0.0 }),
        (Binarize::Dynamic, Some(v)) => crate::seeded::sample_binary_floats(v, seed),
    }
}
