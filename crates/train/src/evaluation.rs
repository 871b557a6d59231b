//! `evaluate` on a run folder: loads its `config.toml` and `model.bpk`, evaluates with
//! [`ae_eval::evaluate`] and writes `eval.json` and `eval.md` beside the training files
//! (atomically; the training files are never touched, rerunning overwrites only these two).
use crate::{ExperimentConfig, device, write_atomic};
use ae_data::ImageDataset;
use ae_eval::{EvalOptions, EvalReport, evaluate};
use anyhow::{Context, bail};
use burn::data::dataset::Dataset;
use burn::module::Module;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to evaluate, as the `evaluate` binary's flags say.
#[derive(Clone, Debug)]
pub struct EvalRequest {
    /// `elbo` (always computed), `iwae`, `decomposition`, `disentanglement` (dSprites).
    pub metrics: Vec<String>,
    /// Importance-sample counts; a single K means 1, 10, … < K and K.
    pub ks: Vec<usize>,
    /// `valid` or `train`.
    pub split: String,
    /// Only the first N images of the split.
    pub limit: Option<usize>,
    /// Data directory overriding the run's.
    pub data_dir: Option<PathBuf>,
    /// Device overriding the run's.
    pub device: Option<String>,
    /// Seed of the evaluation noise (default: the run's seed).
    pub seed: Option<u64>,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Print progress lines.
    pub progress: bool,
    /// Anomaly detection: `Some(classes)` scores these held-out labels against the rest;
    /// `Some(empty)` takes the run's `exclude_classes`.
    pub anomaly: Option<Vec<u32>>,
}

impl Default for EvalRequest {
    fn default() -> Self {
        Self {
            metrics: vec![
                "elbo".into(),
                "iwae".into(),
                "decomposition".into(),
                "disentanglement".into(),
            ],
            ks: vec![1, 10, 100, 1000, 5000],
            split: "valid".into(),
            limit: None,
            data_dir: None,
            device: None,
            seed: None,
            batch_size: 100,
            progress: false,
            anomaly: None,
        }
    }
}

/// `[K]` → 1, 10, 100, … below K, then K; a longer list is kept as it is.
pub fn k_list(ks: &[usize]) -> anyhow::Result<Vec<usize>> {
    if ks.is_empty() || ks.contains(&0) {
        bail!("--k: give one or more sample counts, each at least 1");
    }
    Ok(match ks {
        [max] => {
            let mut v: Vec<usize> = std::iter::successors(Some(1usize), |x| Some(x * 10))
                .take_while(|x| x < max)
                .collect();
            v.push(*max);
            v
        }
        list => list.to_vec(),
    })
}

/// A finished run folder opened for evaluation: its config, its trained model on the chosen
/// device, and one split of its data.
pub struct FinishedRun {
    /// The run's saved config (with `--data-dir` applied).
    pub cfg: ExperimentConfig,
    /// The trained model (`model.bpk`).
    pub model: ae_models::Model,
    /// The device it runs on.
    pub device: burn::prelude::Device,
    /// The device's name (`flex`, `cuda:0`, …).
    pub device_name: String,
    /// The split asked for (the first `limit` images when a limit was given).
    pub data: ImageDataset,
}

impl FinishedRun {
    /// Opens `dir` (which must hold `config.toml` and `model.bpk`), loads the `split`
    /// (`valid` or `train`) of its data, at most `limit` images, and its model on `device`
    /// (default: the run's).
    pub fn open(
        dir: &Path,
        split: &str,
        limit: Option<usize>,
        data_dir: Option<&Path>,
        device: Option<&str>,
    ) -> anyhow::Result<Self> {
        let cfg_path = dir.join("config.toml");
        if !cfg_path.is_file() {
            bail!(
                "{} is not a run folder (no config.toml); pass the folder `train` printed",
                dir.display()
            );
        }
        let weights = dir.join("model.bpk");
        if !weights.is_file() {
            bail!(
                "{} has no model.bpk: the run has not finished; continue it with train --resume {}",
                dir.display(),
                dir.display()
            );
        }
        let mut cfg = ExperimentConfig::load(&cfg_path)?;
        if let Some(d) = data_dir {
            cfg.data.set_data_dir(d.to_path_buf());
        }
        let device_name = device
            .map(str::to_string)
            .or(cfg.device.clone())
            .unwrap_or_else(|| device::default_name().to_string());
        let device = device::parse(&device_name)?;
        let (train, valid) = cfg.data.load().context("cannot load the dataset")?;
        let data: ImageDataset = match split {
            "valid" => valid,
            "train" => train,
            other => bail!("--split {other}: use valid or train"),
        };
        let data = match limit {
            Some(0) => bail!("--limit must be at least 1"),
            Some(n) => data.head(n),
            None => data,
        };
        let record = burn::store::ModuleRecord::load(&weights)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", weights.display()))?;
        let model = cfg
            .model
            .init(cfg.data.shape(), &device)
            .load_record(record);
        Ok(Self {
            cfg,
            model,
            device,
            device_name,
            data,
        })
    }
}

/// Evaluates the run in `dir` and writes `eval.json` and `eval.md` there.
pub fn evaluate_run(dir: &Path, req: &EvalRequest) -> anyhow::Result<EvalReport> {
    for m in &req.metrics {
        if !["elbo", "iwae", "decomposition", "disentanglement"].contains(&m.as_str()) {
            bail!("--metrics {m}: use elbo, iwae, decomposition, disentanglement");
        }
    }
    let FinishedRun {
        cfg,
        model,
        device,
        device_name,
        data,
    } = FinishedRun::open(
        dir,
        &req.split,
        req.limit,
        req.data_dir.as_deref(),
        req.device.as_deref(),
    )?;
    let wants = |m: &str| req.metrics.iter().any(|x| x == m);
    let seed = req.seed.unwrap_or(cfg.seed);
    let anomaly_classes = match &req.anomaly {
        None => Vec::new(),
        Some(c) if !c.is_empty() => c.clone(),
        Some(_) => {
            let c = cfg.data.excluded_classes();
            if c.is_empty() {
                bail!(
                    "--anomaly without classes uses the run's data.exclude_classes, and this run \
                     excluded none; name the anomalous labels, e.g. --anomaly 9"
                );
            }
            c
        }
    };
    let opts = EvalOptions {
        anomaly_classes,
        ks: if wants("iwae") {
            k_list(&req.ks)?
        } else {
            Vec::new()
        },
        decomposition: wants("decomposition"),
        batch_size: req.batch_size.max(1),
        seed,
        active_unit_threshold: cfg.diagnostics.active_unit_threshold,
        disentanglement: wants("disentanglement").then(|| {
            ae_eval::disentangle::DisentanglementConfig {
                seed,
                ..Default::default()
            }
        }),
        ..EvalOptions::default()
    };
    if req.progress {
        println!(
            "evaluating {} ({} on {}, {} {} images, device {device_name}); k = {:?}",
            dir.display(),
            cfg.model.family(),
            cfg.data.name(),
            data.len(),
            req.split,
            opts.ks
        );
    }
    let started = Instant::now();
    let mut last_tenth = usize::MAX;
    let report = evaluate(
        &model,
        &cfg.model,
        &data,
        &cfg.data.batcher(),
        cfg.data.shape(),
        &opts,
        &device,
        &mut |stage, done, total| {
            let tenth = done * 10 / total.max(1);
            if req.progress && (tenth != last_tenth || done == 0) {
                last_tenth = tenth;
                println!(
                    "  {stage}: {done}/{total} ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    );
    let seconds = started.elapsed().as_secs_f64();
    let title = format!("{} ({} split)", dir.display(), req.split);
    if let Some(a) = &report.anomaly {
        crate::plots::roc_curves(a, &dir.join("roc.png"))?;
    }
    save_interpolations(&model, &data, &cfg, &device, &dir.join("interpolation.png"))?;
    let mut json = serde_json::to_value(&report)?;
    json["split"] = req.split.clone().into();
    json["dataset"] = cfg.data.name().into();
    write_atomic(
        &dir.join("eval.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    if let Err(e) = crate::tensorboard::log_evaluation(dir, cfg.epochs, &json) {
        eprintln!("warning: eval.json's figures are not in TensorBoard: {e}");
    }
    let md = format!(
        "{}\nEvaluated in {seconds:.1} s on {device_name}.\n",
        report.to_markdown(&title)
    );
    write_atomic(&dir.join("eval.md"), md.as_bytes())?;
    Ok(report)
}

/// Spherical interpolation between `a` and `b` at `t` (linear when they are parallel).
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    let cos = if na > 0.0 && nb > 0.0 {
        (a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (na * nb)).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let theta = cos.acos();
    if theta.abs() < 1e-4 {
        return a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    }
    let (wa, wb) = (
        ((1.0 - t) * theta).sin() / theta.sin(),
        (t * theta).sin() / theta.sin(),
    );
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}

/// `interpolation.png`: for 4 pairs of validation images, the decodes along the linear path
/// between their encodings (odd rows) and along the spherical one (even rows), 10 steps from
/// the first image's code to the second's.
fn save_interpolations(
    model: &ae_models::Model,
    data: &ImageDataset,
    cfg: &ExperimentConfig,
    device: &burn::prelude::Device,
    path: &Path,
) -> anyhow::Result<()> {
    use ae_core::Autoencoder;
    use burn::prelude::*;
    let pairs = 4.min(data.len() / 2);
    if pairs == 0 {
        return Ok(());
    }
    let batcher = cfg.data.batcher();
    let batch = batcher
        .batches(data, 2 * pairs, 2 * pairs, device)
        .next()
        .expect("pairs > 0");
    let codes: Vec<f32> = model
        .encode(batch.images, batch.labels.clone())
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let labels: Vec<i64> = batch
        .labels
        .into_data()
        .convert::<i64>()
        .try_to_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let d = model.latent_dim();
    let steps = 10;
    let (mut z, mut y) = (Vec::new(), Vec::new());
    for p in 0..pairs {
        let (a, b) = (
            &codes[2 * p * d..(2 * p + 1) * d],
            &codes[(2 * p + 1) * d..(2 * p + 2) * d],
        );
        for spherical in [false, true] {
            for s in 0..steps {
                let t = s as f32 / (steps - 1) as f32;
                z.extend(if spherical {
                    slerp(a, b, t)
                } else {
                    a.iter().zip(b).map(|(x, w)| x + t * (w - x)).collect()
                });
                // A conditional model keeps the first image's class along the path.
                y.push(labels[2 * p]);
            }
        }
    }
    let n = y.len();
    let z = Tensor::<2>::from_data(burn::tensor::TensorData::new(z, [n, d]), device);
    let y = Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(y, [n]), device);
    crate::save_grid(model.decode(z, y), steps, 2, path)
}
