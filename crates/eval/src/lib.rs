//! `ae-eval`: measures a trained model the way papers report results. No burn-train, no run
//! folders: the `evaluate` binary and the tests call [`evaluate`] directly.
//!
//! - [`iwae`]: the importance-weighted bound NLL_k (Burda et al. 2015), k = 1 … 5000, chunked.
//! - [`decompose`]: mutual information, total correlation and dimension-wise KL of the
//!   aggregate posterior (Hoffman & Johnson 2016; Chen et al. 2018).
//! - [`disentangle`]: MIG and the FactorVAE score on data with known factors (dSprites).
//! - [`dci`]: DCI disentanglement / completeness / informativeness (random-forest importances).
//! - [`anomaly`]: AUROC / AUPRC of per-image scores against held-out classes.
//! - [`evaluate`]: all of it over a data set, with what does not apply to a family said, not
//!   printed as zeros ([`EvalReport::not_applicable`]).
#![warn(missing_docs)]

pub mod anomaly;
pub mod dci;
pub mod decompose;
pub mod disentangle;
pub mod iwae;

use ae_core::{Autoencoder, ImageShape};
use ae_data::{ImageBatcher, ImageDataset};
use ae_models::{Model, ModelConfig};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use decompose::KlDecomposition;
use iwae::{IwaeAccumulator, IwaeEstimate};
use serde::{Deserialize, Serialize};

/// What to compute.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// Importance-sample counts of the NLL_k bounds (empty: no IWAE).
    pub ks: Vec<usize>,
    /// Whether to compute the KL decomposition (MI, TC, dimension-wise KL).
    pub decomposition: bool,
    /// At most this many points enter the decomposition (its cost grows as N²).
    pub decomposition_points: usize,
    /// Images per forward pass.
    pub batch_size: usize,
    /// At most this many decoder rows per IWAE chunk (bounds memory whatever k).
    pub chunk_rows: usize,
    /// Seed of the evaluation's noise (posterior samples).
    pub seed: u64,
    /// Active-unit threshold on Var_x E[z_j|x] (0.01, Burda et al. 2016).
    pub active_unit_threshold: f64,
    /// Disentanglement scores (on data with known factors: dSprites), with these settings.
    pub disentanglement: Option<disentangle::DisentanglementConfig>,
    /// Anomaly detection: these labels are the positives (classes held out of training).
    pub anomaly_classes: Vec<u32>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            ks: vec![1, 10, 100, 1000, 5000],
            decomposition: true,
            decomposition_points: 10_000,
            batch_size: 100,
            chunk_rows: 4096,
            seed: 0,
            active_unit_threshold: 0.01,
            disentanglement: None,
            anomaly_classes: Vec::new(),
        }
    }
}

/// The ELBO terms with one posterior sample per image and the KL in closed form; a model
/// without a posterior has only its reconstruction loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElboTerms {
    /// Negative ELBO (recon + KL), nats per sample (models with a posterior).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neg_elbo: Option<f64>,
    /// Reconstruction loss per sample: the likelihood's NLL in nats (the squared error for a
    /// VQ-VAE).
    pub recon: f64,
    /// KL(q(z|x) ‖ p(z)), nats per sample (models with a posterior).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
}

/// Everything [`evaluate`] measured, as `eval.json` stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Model family.
    pub family: String,
    /// Evaluated images.
    pub images: usize,
    /// Values per image (pixels × channels), the D of bits per dimension.
    pub dims: usize,
    /// Seed of the evaluation noise.
    pub seed: u64,
    /// ELBO terms.
    pub elbo: ElboTerms,
    /// Mean KL per latent dimension (models with a posterior).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl_per_dim: Option<Vec<f64>>,
    /// Active units (models with a posterior).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_units: Option<usize>,
    /// NLL_k by increasing k.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iwae: Option<Vec<IwaeEstimate>>,
    /// The KL decomposition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decomposition: Option<KlDecomposition>,
    /// MIG and FactorVAE score (data with known factors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disentanglement: Option<disentangle::Disentanglement>,
    /// AUROC / AUPRC of held-out classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<anomaly::AnomalyReport>,
    /// Metrics that do not apply to this model, and why.
    pub not_applicable: Vec<String>,
}

/// The prior variances of a model's latent dimensions (1 unless the config sets others).
pub fn prior_variances(cfg: &ModelConfig) -> Vec<f64> {
    cfg.as_family()
        .prior_variances()
        .unwrap_or_else(|| vec![1.0; cfg.latent_dim()])
}

/// Evaluates `model` on `data`. `progress(stage, done, total)` is called after each batch.
pub fn evaluate(
    model: &Model,
    cfg: &ModelConfig,
    data: &ImageDataset,
    batcher: &ImageBatcher,
    shape: ImageShape,
    opts: &EvalOptions,
    device: &Device,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> EvalReport {
    device.seed(opts.seed);
    let n = data.len();
    let dims = shape.numel();
    let variational = {
        let probe = batcher.batch(vec![data.get(0).expect("non-empty")], device);
        model
            .variational_posterior(probe.images, probe.labels)
            .is_some()
    };
    let mut not_applicable = Vec::new();
    if !variational {
        let why = cfg
            .capabilities()
            .no_likelihood
            .unwrap_or("the model has no posterior and likelihood");
        for m in ["iwae", "kl", "active_units", "decomposition"] {
            not_applicable.push(format!("{m}: {why}"));
        }
    }
    let iwae_ks: Vec<usize> = opts.ks.iter().copied().filter(|&k| k >= 1).collect();
    let mut iwae =
        (variational && !iwae_ks.is_empty()).then(|| IwaeAccumulator::new(&iwae_ks, dims));
    let decompose = variational && opts.decomposition;
    let latent = model.latent_dim();
    let (mut recon, mut kl, mut kl_dim) = (0.0, 0.0, vec![0.0; latent]);
    // Streaming mean and M2 of the posterior means (active units).
    let (mut mu_mean, mut mu_m2) = (vec![0.0; latent], vec![0.0; latent]);
    let (mut means, mut log_vars, mut samples) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = 0usize;
    // Per-image scores and labels, for anomaly detection.
    let (mut img_recon, mut img_kl, mut img_nll, mut img_label) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Images evaluated so far, the current batch included.
    let mut end = 0;
    for batch in batcher.batches(data, n, opts.batch_size, device) {
        let b = batch.images.dims()[0];
        end += b;
        let out = model.forward(batch.clone());
        let host = |t: Tensor<1>| -> Vec<f64> {
            let v: Vec<f32> = t.into_data().convert::<f32>().try_to_vec().expect("f32");
            v.into_iter().map(f64::from).collect()
        };
        let (r, k) = (host(out.recon_loss.clone()), host(out.kl.clone()));
        recon += r.iter().sum::<f64>();
        kl += k.iter().sum::<f64>();
        if !opts.anomaly_classes.is_empty() {
            img_recon.extend(r);
            img_kl.extend(k);
            let labels: Vec<i64> = batch
                .labels
                .clone()
                .into_data()
                .convert::<i64>()
                .try_to_vec()
                .expect("i64");
            img_label.extend(labels);
        }
        if variational {
            let per_dim = host(out.kl_per_dim.clone().reshape([b * latent]));
            for (i, v) in per_dim.iter().enumerate() {
                kl_dim[i % latent] += v;
            }
            // The forward's latent mean is q's mean: no second encoder pass for it.
            let mu = host(out.latent_mean.clone().reshape([b * latent]));
            for r in 0..b {
                seen += 1;
                for j in 0..latent {
                    let x = mu[r * latent + j];
                    let delta = x - mu_mean[j];
                    mu_mean[j] += delta / seen as f64;
                    mu_m2[j] += delta * (x - mu_mean[j]);
                }
            }
            if decompose && means.len() < opts.decomposition_points {
                let q = model
                    .variational_posterior(batch.images.clone(), batch.labels.clone())
                    .expect("checked above");
                let lv = host(q.log_var.clone().reshape([b * latent]));
                let z = host(q.sample().reshape([b * latent]));
                for r in 0..b.min(opts.decomposition_points - means.len()) {
                    let row = |v: &[f64]| v[r * latent..(r + 1) * latent].to_vec();
                    means.push(row(&mu));
                    log_vars.push(row(&lv));
                    samples.push(row(&z));
                }
            }
        }
        if let Some(acc) = iwae.as_mut() {
            let w = iwae::log_weights(model, &batch, acc.k_max(), opts.chunk_rows)
                .expect("variational model");
            acc.add(&w);
            if !opts.anomaly_classes.is_empty() {
                img_nll.extend(w.iter().map(|w| -iwae::log_mean_exp(w)));
            }
        }
        progress(
            if iwae.is_some() {
                "evaluating (IWAE)"
            } else {
                "evaluating"
            },
            end,
            n,
        );
    }
    let count = n.max(1) as f64;
    let decomposition = decompose.then(|| {
        progress("KL decomposition", 0, means.len());
        decompose::decompose(&means, &log_vars, &samples, &prior_variances(cfg))
    });
    let disentanglement = match (&opts.disentanglement, data.factors(0)) {
        (Some(dcfg), Some(_)) => {
            progress("disentanglement (MIG, FactorVAE)", 0, 1);
            let mut represent = |batch: &[Vec<usize>]| -> Vec<Vec<f64>> {
                let items = batch
                    .iter()
                    .map(|f| {
                        let f = ae_data::dsprites::Factors {
                            shape: f[0],
                            scale: f[1],
                            orientation: f[2],
                            pos_x: f[3],
                            pos_y: f[4],
                        };
                        ae_data::ImageItem::bytes(f.render(), f.shape as u32)
                    })
                    .collect();
                let b = batcher.batch(items, device);
                let codes: Vec<f32> = model
                    .encode(b.images, b.labels)
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec()
                    .expect("f32");
                codes
                    .chunks(latent)
                    .map(|c| c.iter().map(|&v| f64::from(v)).collect())
                    .collect()
            };
            Some(disentangle::disentanglement(
                &mut represent,
                &disentangle::FactorSpace::dsprites(),
                dcfg,
            ))
        }
        (Some(_), None) => {
            not_applicable.push(
                "disentanglement: the data set has no ground-truth factors (dSprites has)".into(),
            );
            None
        }
        (None, _) => None,
    };
    let anomaly = (!opts.anomaly_classes.is_empty()).then(|| {
        let positive: Vec<bool> = img_label
            .iter()
            .map(|&l| opts.anomaly_classes.contains(&(l as u32)))
            .collect();
        let mut candidates: Vec<(String, Vec<f64>)> = vec![("recon".into(), img_recon.clone())];
        if variational {
            let neg_elbo = img_recon.iter().zip(&img_kl).map(|(r, k)| r + k).collect();
            candidates.insert(0, ("neg_elbo".into(), neg_elbo));
        }
        if img_nll.len() == img_recon.len() && !img_nll.is_empty() {
            let k = iwae.as_ref().map_or(1, IwaeAccumulator::k_max);
            candidates.insert(1, (format!("nll_k{k}"), img_nll.clone()));
        }
        anomaly::AnomalyReport {
            classes: opts.anomaly_classes.clone(),
            positives: positive.iter().filter(|&&p| p).count(),
            negatives: positive.iter().filter(|&&p| !p).count(),
            scores: candidates
                .into_iter()
                .filter_map(|(name, s)| {
                    Some(anomaly::AnomalyScore {
                        auroc: anomaly::auroc(&s, &positive)?,
                        auprc: anomaly::auprc(&s, &positive)?,
                        roc: anomaly::roc_curve(&s, &positive),
                        score: name,
                    })
                })
                .collect(),
        }
    });
    let active = variational.then(|| {
        mu_m2
            .iter()
            .filter(|&&m2| m2 / (seen.max(2) - 1) as f64 > opts.active_unit_threshold)
            .count()
    });
    EvalReport {
        family: cfg.family().to_string(),
        images: n,
        dims,
        seed: opts.seed,
        elbo: ElboTerms {
            neg_elbo: variational.then_some((recon + kl) / count),
            recon: recon / count,
            kl: variational.then_some(kl / count),
        },
        kl_per_dim: variational.then(|| kl_dim.iter().map(|v| v / count).collect()),
        active_units: active,
        iwae: iwae.map(|a| a.estimates()),
        decomposition,
        disentanglement,
        anomaly,
        not_applicable,
    }
}

impl EvalReport {
    /// `eval.md`: the report for a reader.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut s = format!(
            "# Evaluation: {title}\n\n{} model, {} images of {} values, evaluation seed {}. \
             All figures in nats per sample unless marked.\n\n",
            self.family, self.images, self.dims, self.seed
        );
        s.push_str("| quantity | value |\n|---|---|\n");
        if let Some(v) = self.elbo.neg_elbo {
            s.push_str(&format!("| −ELBO (1 sample, closed-form KL) | {v:.3} |\n"));
        }
        let recon = if self.family == "vq_vae" {
            "reconstruction loss (squared error summed over pixels, not nats)"
        } else {
            "reconstruction loss (−log p(x|z), 1 sample)"
        };
        s.push_str(&format!("| {recon} | {:.3} |\n", self.elbo.recon));
        if let Some(k) = self.elbo.kl {
            s.push_str(&format!("| KL | {k:.3} |\n"));
        }
        if let Some(a) = self.active_units {
            s.push_str(&format!(
                "| active units | {a} of {} |\n",
                self.kl_per_dim.as_ref().map_or(0, Vec::len)
            ));
        }
        if let Some(est) = &self.iwae {
            s.push_str(
                "\n## Importance-weighted bound (Burda et al. 2015)\n\n\
                 | k | NLL_k (nats) | ± std. err. | bits/dim |\n|---|---|---|---|\n",
            );
            for e in est {
                s.push_str(&format!(
                    "| {} | {:.3} | {:.3} | {:.4} |\n",
                    e.k, e.nll, e.std_err, e.bits_per_dim
                ));
            }
            s.push_str(
                "\nNLL_1 is the one-sample negative ELBO; NLL_k falls towards −log p(x) as k \
                 grows.\n",
            );
        }
        if let Some(d) = &self.decomposition {
            s.push_str(&format!(
                "\n## What the posterior uses (ELBO surgery, β-TCVAE decomposition)\n\n\
                 | term | nats |\n|---|---|\n| index-code mutual information I(x; z) | {:.3} |\n\
                 | total correlation TC(z) | {:.3} |\n| dimension-wise KL | {:.3} |\n\
                 | sum = Monte Carlo average KL | {:.3} |\n\nEstimator: {}. I(x; z) ≤ log N = \
                 {:.3} nats.\n",
                d.mutual_information,
                d.total_correlation,
                d.dimension_wise_kl,
                d.kl,
                d.estimator,
                (d.points.max(1) as f64).ln()
            ));
        }
        if let Some(d) = &self.disentanglement {
            s.push_str(&format!(
                "\n## Disentanglement (representation: encoder mean)\n\n| score | value |\n|---|---|\n\
                 | MIG ({} points, {} bins) | {:.3} |\n| FactorVAE score ({} / {} votes of {}) | {:.3} \
                 (train {:.3}) |\n| dimensions kept by the FactorVAE pruning (std ≥ {}) | {} |\n\
                 | SAP (linear SVM, C = {}, {} / {} points) | {:.3} |\n\
                 | DCI disentanglement / completeness / informativeness (random forest, {} trees) \
                 | {:.3} / {:.3} / {:.3} |\n",
                d.config.mig_points,
                d.config.mig_bins,
                d.mig,
                d.config.fvae_train_votes,
                d.config.fvae_eval_votes,
                d.config.fvae_batch,
                d.factor_vae,
                d.factor_vae_train,
                d.config.fvae_prune_std,
                d.active_dims,
                d.config.sap_c,
                d.config.sap_train_points,
                d.config.sap_test_points,
                d.sap,
                d.config.dci_trees,
                d.dci.disentanglement,
                d.dci.completeness,
                d.dci.informativeness
            ));
        }
        if let Some(a) = &self.anomaly {
            s.push_str(&format!(
                "\n## Anomaly detection (held-out classes {:?}: {} images against {})\n\n\
                 | score | AUROC | AUPRC |\n|---|---|---|\n",
                a.classes, a.positives, a.negatives
            ));
            for sc in &a.scores {
                s.push_str(&format!(
                    "| {} | {:.4} | {:.4} |\n",
                    sc.score, sc.auroc, sc.auprc
                ));
            }
        }
        if let Some(k) = &self.kl_per_dim {
            s.push_str("\n## KL per latent dimension\n\n");
            let cells: Vec<String> = k.iter().map(|v| format!("{v:.3}")).collect();
            s.push_str(&cells.join(", "));
            s.push('\n');
        }
        if !self.not_applicable.is_empty() {
            s.push_str("\n## Not applicable to this model\n\n");
            for n in &self.not_applicable {
                s.push_str(&format!("- {n}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod ppca_tests;
