//! The importance-weighted bound (Burda et al. 2015, "Importance Weighted Autoencoders"):
//!
//! NLL_k(x) = −log (1/k) Σ_i p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x),
//!
//! an upper bound on −log p(x) that falls towards it as k grows; k = 1 is the negative ELBO
//! (one sample, with the KL estimated by Monte Carlo rather than in closed form).
//!
//! The k samples of an image are drawn in chunks of at most `chunk_rows` decoder rows, so
//! memory stays bounded whatever k; each log-weight is computed in f32 on the device and the
//! log-mean-exp over the k weights in f64 on the host. The estimates for several k reuse the
//! same samples (the first k of the largest), as in Burda et al.'s evaluation.
use ae_core::{Autoencoder, ImageBatch, LN_2PI};
use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

/// log (1/n) Σ exp(w_i), stable in f64 (−∞ for an empty slice).
pub fn log_mean_exp(w: &[f64]) -> f64 {
    let max = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = w.iter().map(|&x| (x - max).exp()).sum();
    max + sum.ln() - (w.len() as f64).ln()
}

/// The log importance weights log p(x, z_i) − log q(z_i|x) of `k` posterior samples for each
/// image of `batch`: `[batch][k]`. `None` when the model has no posterior and likelihood
/// (AE, VQ-VAE, skip-VAE).
pub fn log_weights<M: Autoencoder>(
    model: &M,
    batch: &ImageBatch,
    k: usize,
    chunk_rows: usize,
) -> Option<Vec<Vec<f64>>> {
    let images = batch.images.clone();
    let labels = batch.labels.clone();
    let q = model.variational_posterior(images.clone(), labels.clone())?;
    let [b, l] = q.mean.dims();
    let [_, c, h, w] = images.dims();
    let device = q.mean.device();
    let per_chunk = (chunk_rows / b.max(1)).clamp(1, k.max(1));
    let mut out = vec![Vec::with_capacity(k); b];
    let mut done = 0;
    while done < k {
        let n = per_chunk.min(k - done);
        let repeat2 = |t: Tensor<2>| {
            t.unsqueeze_dim::<3>(1)
                .expand([b, n, l])
                .reshape([b * n, l])
        };
        let (mean, log_var) = (repeat2(q.mean.clone()), repeat2(q.log_var.clone()));
        let eps = Tensor::<2>::random([b * n, l], Distribution::Normal(0.0, 1.0), &device);
        let z = mean + eps.clone() * (log_var.clone() * 0.5).exp();
        // log N(z; μ, σ²) in terms of ε = (z − μ)/σ.
        let log_q = (eps.square() + log_var + LN_2PI)
            .sum_dim(1)
            .squeeze_dim::<1>(1)
            * -0.5;
        let x = images
            .clone()
            .unsqueeze_dim::<5>(1)
            .expand([b, n, c, h, w])
            .reshape([b * n, c, h, w]);
        let y = labels
            .clone()
            .unsqueeze_dim::<2>(1)
            .expand([b, n])
            .reshape([b * n]);
        let log_px = model.log_likelihood(x, z.clone(), y)?;
        let lw = log_px + model.log_prior(z) - log_q;
        let v: Vec<f32> = lw
            .into_data()
            .convert::<f32>()
            .try_to_vec()
            .expect("f32 data");
        for (i, row) in out.iter_mut().enumerate() {
            row.extend(v[i * n..(i + 1) * n].iter().map(|&x| x as f64));
        }
        done += n;
    }
    Some(out)
}

/// NLL_k of one evaluation set, in nats per sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IwaeEstimate {
    /// Number of importance samples.
    pub k: usize,
    /// Mean over images of NLL_k(x), nats.
    pub nll: f64,
    /// Standard error of that mean over images, nats.
    pub std_err: f64,
    /// NLL_k / (D ln 2): bits per data dimension.
    pub bits_per_dim: f64,
}

/// Accumulates NLL_k over batches for every k of a list (nested: the first k weights).
#[derive(Clone, Debug)]
pub struct IwaeAccumulator {
    ks: Vec<usize>,
    dims: usize,
    /// Per k: Σ NLL_k(x), Σ NLL_k(x)², count.
    sums: Vec<(f64, f64, usize)>,
}

impl IwaeAccumulator {
    /// For the sample counts `ks` (each ≥ 1) and images of `dims` values.
    pub fn new(ks: &[usize], dims: usize) -> Self {
        let mut ks = ks.to_vec();
        ks.sort_unstable();
        ks.dedup();
        Self {
            sums: vec![(0.0, 0.0, 0); ks.len()],
            ks,
            dims,
        }
    }

    /// The largest k: how many weights each image needs.
    pub fn k_max(&self) -> usize {
        self.ks.last().copied().unwrap_or(1)
    }

    /// Adds the log-weights of a batch (`[batch][≥ k_max]`).
    pub fn add(&mut self, weights: &[Vec<f64>]) {
        for w in weights {
            for (s, &k) in self.sums.iter_mut().zip(&self.ks) {
                let nll = -log_mean_exp(&w[..k.min(w.len())]);
                s.0 += nll;
                s.1 += nll * nll;
                s.2 += 1;
            }
        }
    }

    /// The estimates, by increasing k.
    pub fn estimates(&self) -> Vec<IwaeEstimate> {
        self.ks
            .iter()
            .zip(&self.sums)
            .map(|(&k, &(s, s2, n))| {
                let n = n.max(1) as f64;
                let mean = s / n;
                let var = (s2 / n - mean * mean).max(0.0) * n / (n - 1.0).max(1.0);
                IwaeEstimate {
                    k,
                    nll: mean,
                    std_err: (var / n).sqrt(),
                    bits_per_dim: mean / (self.dims as f64 * std::f64::consts::LN_2),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_mean_exp_is_stable_and_exact() {
        assert!((log_mean_exp(&[0.0, 0.0]) - 0.0).abs() < 1e-15);
        let w = [-1000.0, -1001.0, -1002.0];
        let direct = -1000.0 + ((1.0 + (-1.0f64).exp() + (-2.0f64).exp()) / 3.0).ln();
        assert!((log_mean_exp(&w) - direct).abs() < 1e-12);
        assert_eq!(log_mean_exp(&[]), f64::NEG_INFINITY);
        assert_eq!(log_mean_exp(&[f64::NEG_INFINITY, 2.0]), 2.0 - 2f64.ln());
    }

    #[test]
    fn nested_estimates_use_the_first_k_weights() {
        let mut acc = IwaeAccumulator::new(&[2, 1], 4);
        acc.add(&[vec![-1.0, -3.0], vec![-2.0, -2.0]]);
        let e = acc.estimates();
        assert_eq!((e[0].k, e[1].k), (1, 2));
        assert!((e[0].nll - 1.5).abs() < 1e-12);
        let k2 = -(log_mean_exp(&[-1.0, -3.0]) + log_mean_exp(&[-2.0, -2.0])) / 2.0;
        assert!((e[1].nll - k2).abs() < 1e-12);
        assert!((e[0].bits_per_dim - 1.5 / (4.0 * std::f64::consts::LN_2)).abs() < 1e-12);
        // Standard error of {1, 2}: sample std 0.707 / √2.
        assert!((e[0].std_err - 0.5).abs() < 1e-12);
    }
}
