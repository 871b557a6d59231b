//! `encode`: the posterior of every image of a finished run's split, written as CSV or as a
//! NumPy array, for analysis outside the framework (clustering, t-SNE, probing).
use crate::evaluation::FinishedRun;
use crate::write_atomic;
use ae_core::Autoencoder;
use anyhow::bail;
use burn::data::dataset::Dataset;
use burn::prelude::*;
use std::path::Path;

/// The latents of a split: per image its label, the posterior mean μ and, for models with a
/// Gaussian posterior, log σ² (`None` for AE, VQ-VAE, WAE and skip-VAE codes).
pub struct Latents {
    /// Latent dimension.
    pub dim: usize,
    /// One label per image.
    pub labels: Vec<i64>,
    /// `[n, dim]` posterior means (the code, for models without a posterior).
    pub mean: Vec<f32>,
    /// `[n, dim]` posterior log-variances, where the model has a Gaussian posterior.
    pub log_var: Option<Vec<f32>>,
}

/// Encodes every image of `run.data`, `batch_size` at a time.
pub fn encode(run: &FinishedRun, batch_size: usize) -> anyhow::Result<Latents> {
    let FinishedRun {
        cfg,
        model,
        device,
        data,
        ..
    } = run;
    let to_vec = |t: Tensor<2>| -> anyhow::Result<Vec<f32>> {
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    };
    let batcher = cfg.data.batcher();
    let mut out = Latents {
        dim: model.latent_dim(),
        labels: Vec::new(),
        mean: Vec::new(),
        log_var: Some(Vec::new()),
    };
    for batch in batcher.batches(data, data.len(), batch_size, device) {
        let labels: Vec<i64> = batch
            .labels
            .clone()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        out.labels.extend(labels);
        match model.variational_posterior(batch.images.clone(), batch.labels.clone()) {
            Some(q) => {
                out.mean.extend(to_vec(q.mean)?);
                if let Some(v) = &mut out.log_var {
                    v.extend(to_vec(q.log_var)?);
                }
            }
            None => {
                out.mean
                    .extend(to_vec(model.encode(batch.images, batch.labels))?);
                out.log_var = None;
            }
        }
    }
    Ok(out)
}

impl Latents {
    /// CSV: `label,mu_0,…,mu_{d-1}[,logvar_0,…]`, one row per image.
    pub fn to_csv(&self) -> String {
        let d = self.dim;
        let mut header = vec!["label".to_string()];
        header.extend((0..d).map(|j| format!("mu_{j}")));
        if self.log_var.is_some() {
            header.extend((0..d).map(|j| format!("logvar_{j}")));
        }
        let mut s = header.join(",") + "\n";
        for (i, label) in self.labels.iter().enumerate() {
            let mut row = vec![label.to_string()];
            row.extend(self.mean[i * d..(i + 1) * d].iter().map(|v| v.to_string()));
            if let Some(lv) = &self.log_var {
                row.extend(lv[i * d..(i + 1) * d].iter().map(|v| v.to_string()));
            }
            s += &(row.join(",") + "\n");
        }
        s
    }

    /// A float32 `.npy` array `[n, 1 + d (+ d)]`: the label, then μ, then log σ² when there is
    /// one (the CSV's columns).
    pub fn to_npy(&self) -> Vec<u8> {
        let d = self.dim;
        let cols = 1 + d + if self.log_var.is_some() { d } else { 0 };
        let mut values = Vec::with_capacity(self.labels.len() * cols);
        for (i, &label) in self.labels.iter().enumerate() {
            values.push(label as f32);
            values.extend_from_slice(&self.mean[i * d..(i + 1) * d]);
            if let Some(lv) = &self.log_var {
                values.extend_from_slice(&lv[i * d..(i + 1) * d]);
            }
        }
        ae_data::array::npy_f32(&[self.labels.len(), cols], &values)
    }

    /// Writes the latents to `path` (atomically): `.npy` or `.csv` by its extension.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = match check_output(path)? {
            Format::Npy => self.to_npy(),
            Format::Csv => self.to_csv().into_bytes(),
        };
        write_atomic(path, &bytes)?;
        Ok(())
    }
}

/// The file formats of [`Latents::write`].
pub enum Format {
    /// A float32 `.npy` array.
    Npy,
    /// A `.csv` table with a header.
    Csv,
}

/// The format `path`'s extension names, or an error saying which extensions work.
pub fn check_output(path: &Path) -> anyhow::Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => Ok(Format::Npy),
        Some("csv") => Ok(Format::Csv),
        _ => bail!(
            "--out {}: name a .npy or .csv file (the format follows the extension)",
            path.display()
        ),
    }
}
