use ae::train::ExperimentConfig;
use ae::train::run::{Display, RunOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The real MNIST files: `$AE_MNIST_DIR`, else `../shared/datasets/mnist` beside the checkout.
pub fn mnist_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AE_MNIST_DIR") {
        return PathBuf::from(d);
    }
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/mnist");
    assert!(
        d.join("train-images-idx3-ubyte.gz").is_file(),
        "tests need real MNIST at {} (or set AE_MNIST_DIR)",
        d.display()
    );
    d
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
