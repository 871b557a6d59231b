use ae_data::DataConfig;
use ae_metrics::DiagnosticsConfig;
use ae_models::ModelConfig;
use ae_models::vae::VaeConfig;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Optimiser settings (Adam). Defaults follow PyTorch (`eps = 1e-8`), not burn (`1e-5`), so
/// that reference numbers reproduce.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Learning rate.
    pub lr: f64,
    /// Adam β₁.
    pub beta1: f32,
    /// Adam β₂.
    pub beta2: f32,
    /// Adam ε.
    pub epsilon: f32,
    /// L2 weight decay (0 = none).
    pub weight_decay: f32,
    /// Clip the gradient norm to this value (absent = no clipping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_clip_norm: Option<f32>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            grad_clip_norm: None,
        }
    }
}

fn default_workers() -> usize {
    1
}

/// One training run, as written in `assets/configs/*.toml` and saved as `config.toml` in every
/// run folder (with every default filled in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name: the run folder is `<out>/<name>/<run-id>/`.
    pub name: String,
    /// Seed of weights, reparameterisation noise and shuffling.
    pub seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Data-loading threads (burn `DataLoader` workers). 1 (default) prepares batches on a
    /// background thread in a fixed order; more than 1 is faster but the batch order, and so
    /// the run, is no longer bit-reproducible.
    #[serde(default = "default_workers")]
    pub num_workers: usize,
    /// Model family and hyper-parameters.
    pub model: ModelConfig,
    /// Dataset.
    pub data: DataConfig,
    /// Adam settings.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// KL annealing: how β ramps up over the first optimiser steps.
    #[serde(default)]
    pub kl_schedule: crate::KlSchedule,
    /// How the KL enters the objective: plain, free bits, or capacity annealing.
    #[serde(default)]
    pub kl_penalty: crate::KlPenalty,
    /// Thresholds of the diagnostics.
    #[serde(default)]
    pub diagnostics: DiagnosticsConfig,
    /// Backend the run used (`flex`, `ndarray`, `wgpu`, `cuda:0`); written by the run,
    /// overridden by `--device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Several GPUs for one run, data-parallel (`["cuda:0", "cuda:1"]`; the first is the main
    /// device and `device` names it): each optimiser step takes one batch of `batch_size` per
    /// device, sums their gradients on the main device and steps once, so the effective batch
    /// is `batch_size` × devices. Empty: one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Framework version that wrote this file (provenance only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ExperimentConfig {
    /// The PyTorch-examples MNIST VAE (784-400-20, Adam 1e-3, batch 128, seed 1, 10 epochs).
    pub fn vae_mnist() -> Self {
        Self {
            name: "vae_mnist".into(),
            seed: 1,
            epochs: 10,
            batch_size: 128,
            num_workers: default_workers(),
            model: ModelConfig::Vae(VaeConfig::mnist_reference()),
            data: DataConfig::mnist(None),
            optimizer: OptimizerConfig::default(),
            kl_schedule: Default::default(),
            kl_penalty: Default::default(),
            diagnostics: DiagnosticsConfig::default(),
            device: None,
            devices: Vec::new(),
            version: None,
        }
    }

    /// β-VAE on a 20,000-image dSprites subset (the quick default of `train`).
    pub fn beta_vae_dsprites(beta: f64) -> Self {
        Self {
            name: "beta_vae_dsprites".into(),
            seed: 1,
            epochs: 5,
            batch_size: 64,
            num_workers: default_workers(),
            model: ModelConfig::Vae(VaeConfig::beta_vae_dsprites(beta)),
            data: DataConfig::Dsprites {
                train_limit: Some(20_000),
                valid_size: 2_000,
                split_seed: 0,
            },
            optimizer: OptimizerConfig {
                lr: 5e-4,
                ..OptimizerConfig::default()
            },
            // β ramps up over the first 500 steps: without it a short run collapses.
            kl_schedule: crate::KlSchedule::Linear { warmup_steps: 500 },
            kl_penalty: Default::default(),
            diagnostics: DiagnosticsConfig::default(),
            device: None,
            devices: Vec::new(),
            version: None,
        }
    }

    /// Parses TOML (or JSON when the text starts with `{`), naming the bad key on error.
    pub fn from_str_any(text: &str) -> anyhow::Result<Self> {
        let cfg: Self = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?
        } else {
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?
        };
        Ok(cfg)
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let cfg = Self::from_str_any(&text)
            .with_context(|| format!("malformed config {}", path.display()))?;
        cfg.validate()
            .with_context(|| format!("invalid config {}", path.display()))?;
        Ok(cfg)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks every value, naming the key of the first bad one.
    pub fn validate(&self) -> anyhow::Result<()> {
        let bad = |m: String| Err(anyhow::anyhow!(m));
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            return bad(format!(
                "name must be a non-empty folder name, got {:?}",
                self.name
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        crate::device::check_devices(&self.devices)?;
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return bad(format!(
                "optimizer.lr must be positive, got {}",
                self.optimizer.lr
            ));
        }
        if let Some(c) = self.optimizer.grad_clip_norm
            && (c.is_nan() || c <= 0.0)
        {
            return bad(format!(
                "optimizer.grad_clip_norm must be positive, got {c}"
            ));
        }
        self.model.validate().map_err(anyhow::Error::msg)?;
        self.data.validate().map_err(anyhow::Error::msg)?;
        self.diagnostics.validate().map_err(anyhow::Error::msg)?;
        self.kl_schedule.validate().map_err(anyhow::Error::msg)?;
        self.kl_penalty.validate().map_err(anyhow::Error::msg)?;
        let remedy = match (self.kl_schedule, self.kl_penalty) {
            (crate::KlSchedule::Constant, crate::KlPenalty::Plain) => None,
            (crate::KlSchedule::Constant, _) => Some("kl_penalty"),
            _ => Some("kl_schedule"),
        };
        if let Some(key) = remedy
            && self.model.capabilities().beta.is_none()
        {
            // The schedule and penalties rebuild the objective as recon + (β or γ)·KL, which
            // would silently drop a VQ-VAE's codebook and commitment terms.
            return bad(format!(
                "{key} applies to the KL term, and model.family = \"{}\" has none; remove \
                 the [{key}] table (collapse remedies are for families with a KL weighted by β)",
                self.model.family()
            ));
        }
        Ok(())
    }

    /// Fails when the model does not fit the data (e.g. a conv stack too deep for 28×28).
    pub fn check_shapes(&self) -> anyhow::Result<()> {
        if let Err(e) = self.model.check_shape(self.data.shape()) {
            bail!("{e}");
        }
        if let Some(total) = machine_memory_bytes() {
            self.check_memory(total)?;
        }
        if let Some(classes) = self.model.capabilities().classes
            && classes != self.data.num_classes()
        {
            bail!(
                "model.num_classes = {} but {} has {} classes",
                classes,
                self.data.name(),
                self.data.num_classes()
            );
        }
        Ok(())
    }
}

impl ExperimentConfig {
    /// Bytes the run needs at least: the parameters with their gradients and Adam's two
    /// moments (4 × f32 each), and one batch's images, decoder outputs and codes, forward
    /// and backward. A lower bound: the layers' own activations come on top.
    pub fn memory_estimate(&self) -> u128 {
        let shape = self.data.shape();
        let params = self.model.as_family().parameter_count(shape);
        let per_image = 2 * shape.numel() as u128 + 2 * self.model.as_family().latent_dim() as u128;
        params * 16 + self.batch_size as u128 * per_image * 4 * 2
    }

    /// Refuses a model that cannot fit in `total` bytes of memory (the machine's), naming
    /// the keys that size it, before anything is allocated: a typo such as
    /// `latent_dim = 4000000000` would otherwise grow until the machine runs out.
    pub fn check_memory(&self, total: u64) -> anyhow::Result<()> {
        let need = self.memory_estimate();
        if need > total as u128 {
            let params = self.model.as_family().parameter_count(self.data.shape());
            bail!(
                "the model does not fit this machine's memory: model.latent_dim = {}, \
                 model.architecture and the image size {} give {params} parameters, and with \
                 their gradients, Adam's moments and a batch of batch_size = {} it needs at \
                 least {} where the machine has {}; lower model.latent_dim, the layer widths \
                 or batch_size",
                self.model.as_family().latent_dim(),
                {
                    let s = self.data.shape();
                    format!("{}×{}×{}", s.channels, s.height, s.width)
                },
                self.batch_size,
                human_bytes(need),
                human_bytes(total as u128),
            );
        }
        Ok(())
    }
}

/// `bytes` in GiB (or TiB, PiB) with three significant figures.
fn human_bytes(bytes: u128) -> String {
    let mut v = bytes as f64 / (1u64 << 30) as f64;
    let mut unit = "GiB";
    for next in ["TiB", "PiB", "EiB"] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = next;
    }
    format!("{v:.3} {unit}")
}

/// The machine's memory (`MemTotal` of `/proc/meminfo`), where the system says it.
pub fn machine_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A latent size three zeros too large is refused before the model is built, naming
    /// the key and the sizes; the reference VAE fits in 1 GiB.
    #[test]
    fn a_model_larger_than_memory_is_refused_naming_the_key() {
        let mut cfg = ExperimentConfig::vae_mnist();
        cfg.check_memory(1 << 30).unwrap();
        if let ModelConfig::Vae(m) = &mut cfg.model {
            m.latent_dim = 4_000_000_000;
        }
        let err = cfg.check_memory(24 << 30).unwrap_err().to_string();
        assert!(err.contains("model.latent_dim = 4000000000"), "{err}");
        assert!(err.contains("TiB"), "{err}");
        assert!(err.contains("24.000 GiB"), "{err}");
    }

    /// `train` without `--config` runs the shipped `beta_vae_dsprites.toml`.
    #[test]
    fn the_built_in_default_is_the_shipped_dsprites_config() {
        let shipped = ExperimentConfig::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../assets/configs/beta_vae_dsprites.toml"),
        )
        .unwrap();
        assert_eq!(shipped, ExperimentConfig::beta_vae_dsprites(4.0));
    }

    #[test]
    fn config_round_trips_through_toml() {
        for cfg in [
            ExperimentConfig::vae_mnist(),
            ExperimentConfig::beta_vae_dsprites(4.0),
        ] {
            let text = cfg.to_toml();
            assert_eq!(
                ExperimentConfig::from_str_any(&text).unwrap(),
                cfg,
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let mut text = ExperimentConfig::vae_mnist().to_toml();
        text = text.replace("beta = 1.0", "beta = 1.0\nbetta = 2.0");
        let err = ExperimentConfig::from_str_any(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("betta"), "{err}");

        let mut cfg = ExperimentConfig::vae_mnist();
        if let ModelConfig::Vae(v) = &mut cfg.model {
            v.beta = -1.0;
        }
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("model.beta")
        );
        cfg = ExperimentConfig::vae_mnist();
        cfg.epochs = 0;
        assert!(cfg.validate().unwrap_err().to_string().contains("epochs"));
    }

    #[test]
    fn kl_remedies_on_a_model_without_kl_are_refused() {
        let mut cfg = ExperimentConfig::vae_mnist();
        cfg.model = ModelConfig::VqVae(ae_models::vq_vae::VqVaeConfig::mnist_reference());
        cfg.validate().unwrap();
        cfg.kl_schedule = crate::KlSchedule::Linear { warmup_steps: 10 };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("kl_schedule") && err.contains("vq_vae"),
            "{err}"
        );
        cfg.kl_schedule = crate::KlSchedule::Constant;
        cfg.kl_penalty = crate::KlPenalty::FreeBits { lambda: 0.5 };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("kl_penalty"), "{err}");
        // The VAE keeps its remedies.
        let mut vae = ExperimentConfig::vae_mnist();
        vae.kl_penalty = crate::KlPenalty::FreeBits { lambda: 0.5 };
        vae.validate().unwrap();
    }
}
