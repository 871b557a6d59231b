use ae::metrics::{EpochRow, SplitKind};
use ae::train::ExperimentConfig;
use ae::train::results::parse_metrics_csv;
use ae::train::run::{Display, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The committed MNIST fixture: 2,000 training and 500 test images of the real MNIST files
/// (`tests/fixtures/README.md` says how they were cut), so the tests pass on a fresh clone.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist-small")
}

/// The full MNIST files, for the reference tests run with `-- --ignored`: `$AE_MNIST_DIR`.
/// Panics (fails the test) when it is not set, so that a CI run that forgot it cannot pass.
pub fn full_mnist_dir() -> PathBuf {
    let d = std::env::var_os("AE_MNIST_DIR").map(PathBuf::from).expect(
        "the full-MNIST reference tests need AE_MNIST_DIR=<folder with the four MNIST files>",
    );
    assert!(
        ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
            .iter()
            .any(|f| d.join(f).is_file()),
        "AE_MNIST_DIR={} holds no train-images-idx3-ubyte(.gz)",
        d.display()
    );
    d
}

/// The rows of a run folder's `metrics.csv` by (epoch, split), read with the parser `--resume`
/// uses.
pub fn metrics_rows(dir: &Path) -> BTreeMap<(usize, SplitKind), EpochRow> {
    parse_metrics_csv(
        &std::fs::read_to_string(dir.join("metrics.csv")).unwrap(),
        usize::MAX,
    )
}

/// An experiment config shipped in `assets/configs/`.
pub fn shipped(name: &str) -> ExperimentConfig {
    ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("assets/configs/{name}.toml")),
    )
    .unwrap()
}

/// Burn's CPU RNG is seeded per process, so runs that must be reproducible cannot overlap
/// with other runs in the same test binary.
pub fn training_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reference MNIST VAE on a small seeded subset, one epoch.
pub fn small_mnist_vae() -> ExperimentConfig {
    let mut cfg = ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/vae_mnist.toml"),
    )
    .unwrap();
    cfg.epochs = 1;
    cfg.data = ae::data::DataConfig::Mnist {
        data_dir: Some(mnist_dir()),
        train_limit: Some(2_000),
        valid_limit: Some(500),
        split_seed: 0,
        binarize: Default::default(),
        exclude_classes: Vec::new(),
    };
    cfg
}

/// Plain output into `out`.
pub fn options(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        device: Some("flex".into()),
        run_id: None,
        display: Display::Plain,
    }
}

/// The model of a finished run folder: `cfg`'s architecture with the weights of `model.bpk`.
pub fn saved_model(
    dir: &Path,
    cfg: &ExperimentConfig,
    device: &burn::prelude::Device,
) -> ae::models::Model {
    use burn::module::Module;
    cfg.model
        .init(cfg.data.shape(), device)
        .load_record(burn::store::ModuleRecord::load(dir.join("model.bpk")).unwrap())
}
