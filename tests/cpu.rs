//! The CPU kernels (`ae-cpu`, feature `fast-cpu`) against Burn's own ops: the same short
//! training run with `AE_CPU_KERNELS=on` and `=off`, each in a child process (the switch is
//! read once per process), must reach the same losses. Two tests: the dense layers (below)
//! and the conv layers (a conv VAE and the VQ-VAE, `conv_kernels_on_and_off_…`).
//!
//! The dense run: the reference MNIST VAE (784-400-20, Bernoulli) on the 2,000-image fixture, batch
//! 32, 4 epochs: 252 optimiser steps through the fused dense layers, the fused Bernoulli loss
//! and `FusedAdam` versus Burn's `Linear`, composed ops and `Adam`. The two paths differ only in
//! float rounding (summation order), which training amplifies a little; every loss, recon, KL
//! and β-loss value of every epoch (train and valid) must agree to a relative 1e-4 (measured:
//! 2.9e-7 on the development machine; two epochs of full MNIST, 938 steps, drift further, to
//! 6e-4 in the valid loss). With the feature compiled out both children run Burn's ops and
//! must agree bit for bit.
use crate::resume::child_command;
use crate::util::{metrics_rows, small_mnist_vae, training_lock};
use std::path::Path;
use std::process::Stdio;

/// Relative tolerance for the losses of the two paths (see the module docs).
const TOLERANCE: f64 = 1e-4;

/// Trains `config` into `dir` in a child process (the resume tests' child entry point) with
/// `AE_CPU_KERNELS=kernels`.
fn train_in_child(config: &Path, dir: &Path, kernels: &str) {
    let job = ["train", config.to_str().unwrap(), dir.to_str().unwrap()];
    let status = child_command(&job)
        .env("AE_CPU_KERNELS", kernels)
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "child with AE_CPU_KERNELS={kernels}: {status}"
    );
}

/// The loss columns of `metrics.csv` (loss, reconstruction, KL, β-loss) of every row (one per
/// epoch and split), named by row and column.
fn losses(dir: &Path) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for ((epoch, split), row) in metrics_rows(dir) {
        for name in ["loss", "recon", "kl", "beta_loss"] {
            if let Some(&v) = row.values.get(name) {
                out.push((format!("epoch {epoch} {} {name}", split.as_str()), v));
            }
        }
    }
    out
}

/// Trains `cfg` with the kernels on and off (in child processes) and checks every loss of
/// every epoch within [`TOLERANCE`]; returns the largest relative difference.
fn on_off_gap(cfg: &ae::train::ExperimentConfig, rows: usize) -> f64 {
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("cpu.toml");
    std::fs::write(&config, cfg.to_toml()).unwrap();
    let (on, off) = (out.path().join("on"), out.path().join("off"));
    train_in_child(&config, &on, "on");
    train_in_child(&config, &off, "off");
    let (a, b) = (losses(&on), losses(&off));
    assert_eq!(a.len(), b.len());
    assert!(a.len() >= rows, "{a:?}");
    let mut worst = 0.0f64;
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let rel = (x - y).abs() / y.abs().max(1.0);
        assert!(
            rel <= TOLERANCE,
            "{}: {name}: {x} with the kernels, {y} without",
            cfg.name
        );
        worst = worst.max(rel);
    }
    eprintln!(
        "{}: largest relative difference of the losses: {worst:e}",
        cfg.name
    );
    if cfg!(feature = "fast-cpu") {
        assert!(
            worst > 0.0,
            "the switch changed nothing: are the kernels compiled in?"
        );
    } else {
        assert_eq!(worst, 0.0, "without the kernels both runs use Burn's ops");
    }
    worst
}

#[test]
fn kernels_on_and_off_train_to_the_same_losses() {
    let _g = training_lock();
    let mut cfg = small_mnist_vae();
    cfg.epochs = 4;
    cfg.batch_size = 32;
    on_off_gap(&cfg, 3 * 4);
}

/// The conv kernels (`ae_cpu::conv`: conv and transposed conv, forward and backward, with and
/// without ReLU, 4×4 stride-2 and 1×1 layers) against Burn's `Conv2d`/`ConvTranspose2d`: a
/// conv VAE (28 → 14 → 7 and back) and the reference VQ-VAE, 2 epochs on 512 fixture images
/// each (32 optimiser steps).
#[test]
fn conv_kernels_on_and_off_train_to_the_same_losses() {
    let _g = training_lock();
    let mut vae = small_mnist_vae();
    vae.name = "conv_vae".into();
    if let ae::models::ModelConfig::Vae(m) = &mut vae.model {
        m.architecture = ae::models::nets::Architecture::conv_28();
    }
    let mut vq = ae::train::ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/vq_vae_mnist.toml"),
    )
    .unwrap();
    vq.data = vae.data.clone();
    for cfg in [&mut vae, &mut vq] {
        cfg.epochs = 2;
        cfg.batch_size = 32;
        if let ae::data::DataConfig::Mnist { train_limit, .. } = &mut cfg.data {
            *train_limit = Some(512);
        }
        on_off_gap(cfg, 2 * 2);
    }
}
