//! Reference checks on the full MNIST files: `#[ignore]`d, run with
//! `AE_MNIST_DIR=<dir> cargo test --release -p ae --test integration -- --ignored`
//! (`.ci/run` does, with `../shared/datasets/mnist`). They fail, not skip, without the data.
use crate::util::{full_mnist_dir, metrics_rows, options, shipped, training_lock};
use ae::data::DataConfig;
use ae::data::mnist::load_split;
use ae::metrics::SplitKind;
use ae::train::run::train;
use burn::data::dataset::Dataset;

#[test]
#[ignore = "needs the full MNIST files in AE_MNIST_DIR"]
fn full_mnist_loads_with_the_standard_sizes() {
    let dir = full_mnist_dir();
    let train = load_split(&dir, "train").unwrap();
    let test = load_split(&dir, "t10k").unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.images.len(), 60_000 * 784);
    // First training label of MNIST is a 5, first test label a 7.
    assert_eq!((train.labels[0], test.labels[0]), (5, 7));
    let (tr, va) = DataConfig::mnist(Some(dir)).load().unwrap();
    assert_eq!((tr.len(), va.len()), (60_000, 10_000));
    assert_eq!(tr.get(0).unwrap().pixels.len(), 784);
}

#[test]
#[ignore = "needs the full MNIST files in AE_MNIST_DIR"]
fn the_committed_fixture_is_the_subset_its_script_says() {
    // tests/fixtures/cut_mnist.py: a seeded sample, original order kept. Every fixture image
    // must be an image of the full set, and in increasing index order.
    let full = load_split(&full_mnist_dir(), "t10k").unwrap();
    let small = load_split(&crate::util::mnist_dir(), "t10k").unwrap();
    let mut from = 0;
    for i in 0..small.len() {
        let img = &small.images[i * 784..(i + 1) * 784];
        let at = (from..full.len())
            .find(|&j| {
                &full.images[j * 784..(j + 1) * 784] == img && full.labels[j] == small.labels[i]
            })
            .unwrap_or_else(|| panic!("fixture test image {i} is not in MNIST after index {from}"));
        from = at + 1;
    }
}

/// The reference VAE against PyTorch 2.15 on the same architecture, optimiser and batch
/// (README, "Reference MNIST VAE vs PyTorch"): test loss 126.9 after epoch 1, 105.3 after 10.
#[test]
#[ignore = "needs the full MNIST files in AE_MNIST_DIR"]
fn the_reference_vae_follows_the_pytorch_curve() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = shipped("vae_mnist");
    cfg.data.set_data_dir(full_mnist_dir());
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let valid: Vec<f64> = metrics_rows(&dir)
        .iter()
        .filter(|((_, split), _)| *split == SplitKind::Valid)
        .map(|(_, row)| row.values["loss"])
        .collect();
    assert_eq!(valid.len(), 10);
    println!("reference VAE test loss by epoch: {valid:?}");
    // One seed of each framework: within 1 nat of PyTorch's figures.
    assert!((valid[0] - 126.9).abs() < 1.0, "epoch 1: {}", valid[0]);
    assert!((valid[9] - 105.3).abs() < 1.0, "epoch 10: {}", valid[9]);
    assert!(
        valid.windows(2).all(|w| w[1] < w[0]),
        "falls every epoch: {valid:?}"
    );
}

/// The VQ-VAE against PyTorch 2.15 (README, "Model zoo"): after 3 epochs MSE/pixel 0.00555,
/// perplexity 19.7, 54 of 128 codes used.
#[test]
#[ignore = "needs the full MNIST files in AE_MNIST_DIR"]
fn the_reference_vq_vae_matches_pytorch() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = shipped("vq_vae_mnist");
    cfg.data.set_data_dir(full_mnist_dir());
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    println!("reference VQ-VAE: {s}");
    let mse = s["mse_per_pixel"].as_f64().unwrap();
    let perplexity = s["perplexity"].as_f64().unwrap();
    let used = s["codes_used"].as_f64().unwrap();
    assert!((mse / 0.00555 - 1.0).abs() < 0.1, "MSE/pixel {mse}");
    assert!(
        (perplexity / 19.7 - 1.0).abs() < 0.3,
        "perplexity {perplexity}"
    );
    assert!((used - 54.0).abs() <= 12.0, "codes used {used}");
}
