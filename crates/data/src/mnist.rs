//! MNIST from the four standard IDX files (`train-images-idx3-ubyte[.gz]`, ...).
use crate::DataError;
use crate::idx::read_idx;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Environment variable naming the MNIST directory when neither the flag nor the config does.
pub const MNIST_DIR_ENV: &str = "AE_MNIST_DIR";

/// How to get MNIST, printed whenever it is missing.
pub const MNIST_HINT: &str = "Get MNIST: download train-images-idx3-ubyte.gz, \
train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz \
(e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/) into one directory, then pass \
--data-dir DIR, set `data_dir` in the [data] table of the config, or set AE_MNIST_DIR=DIR. \
Raw (gunzipped) files work too.";

/// One MNIST split held in memory: `n` 28×28 images of bytes and their labels.
#[derive(Debug, Clone)]
pub struct MnistSplit {
    /// Row-major pixels, `n * 784` bytes.
    pub images: Arc<Vec<u8>>,
    /// Digit labels, `n` bytes.
    pub labels: Arc<Vec<u8>>,
}

impl MnistSplit {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Finds `<stem>.gz` or `<stem>` in `dir`.
fn locate(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    if !dir.is_dir() {
        return Err(DataError::Missing {
            what: "MNIST directory".into(),
            path: dir.into(),
            hint: MNIST_HINT.into(),
        });
    }
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::Missing {
        what: format!("MNIST file {stem}[.gz]"),
        path: dir.join(format!("{stem}.gz")),
        hint: MNIST_HINT.into(),
    })
}

/// Loads one split (`"train"` or `"t10k"`) from `dir`.
pub fn load_split(dir: &Path, prefix: &str) -> Result<MnistSplit, DataError> {
    let img_path = locate(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lbl_path = locate(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&img_path, 3)?;
    let labels = read_idx(&lbl_path, 1)?;
    let corrupt = |path: &Path, reason: String| DataError::Corrupt {
        path: path.into(),
        reason,
        hint: MNIST_HINT.into(),
    };
    if images.dims[1..] != [28, 28] {
        return Err(corrupt(
            &img_path,
            format!("images are {:?}, not 28×28", &images.dims[1..]),
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(corrupt(
            &lbl_path,
            format!("{} labels for {} images", labels.dims[0], images.dims[0]),
        ));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(corrupt(&lbl_path, format!("label {bad} is not a digit")));
    }
    Ok(MnistSplit {
        images: Arc::new(images.data),
        labels: Arc::new(labels.data),
    })
}

/// Resolves the MNIST directory: the explicit one (flag or config) first, then
/// [`MNIST_DIR_ENV`].
pub fn resolve_dir(explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    match std::env::var_os(MNIST_DIR_ENV) {
        Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
        _ => Err(DataError::Missing {
            what: "MNIST directory (no --data-dir, no data_dir in the config, no AE_MNIST_DIR)"
                .into(),
            path: PathBuf::from("<unset>"),
            hint: MNIST_HINT.into(),
        }),
    }
}
