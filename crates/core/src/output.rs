use burn::prelude::*;

/// What every model returns for a batch: the loss breakdown **per sample, in nats** (sums over
/// pixels and latent dimensions; averaging over the batch happens only in [`AeOutput::objective`]
/// and in the metrics).
#[derive(Clone, Debug)]
pub struct AeOutput {
    /// Per-sample training objective: recon + β·KL (+ model-specific terms), `[batch]`.
    pub loss: Tensor<1>,
    /// Per-sample reconstruction negative log-likelihood −log p(x|z), `[batch]`.
    pub recon_loss: Tensor<1>,
    /// Per-sample KL(q(z|x) ‖ p(z)), `[batch]` (zeros for a deterministic AE).
    pub kl: Tensor<1>,
    /// Per-sample, per-dimension KL, `[batch, latent]`.
    pub kl_per_dim: Tensor<2>,
    /// Posterior mean E[z|x] (the code itself for a deterministic AE), `[batch, latent]`.
    pub latent_mean: Tensor<2>,
    /// Reconstruction in data space (mean of p(x|z)), `[batch, channels, height, width]`.
    pub reconstruction: Tensor<4>,
    /// The β weighting the KL in `loss` (1 for a VAE, 0 for an AE).
    pub beta: f64,
    /// Discrete models (VQ-VAE): the code index chosen at each latent position,
    /// `[batch, positions]`, and the codebook size.
    pub codes: Option<Codes>,
}

/// Code assignments of a vector-quantised model.
#[derive(Clone, Debug)]
pub struct Codes {
    /// Chosen code per latent position, `[batch, positions]`.
    pub indices: Tensor<2, Int>,
    /// Number of codes K.
    pub codebook_size: usize,
}

impl AeOutput {
    /// The scalar that is differentiated: the batch mean of [`AeOutput::loss`].
    pub fn objective(&self) -> Tensor<1> {
        self.loss.clone().mean()
    }

    /// Per-sample negative ELBO, recon + KL (β-independent), `[batch]`.
    pub fn neg_elbo(&self) -> Tensor<1> {
        self.recon_loss.clone() + self.kl.clone()
    }

    /// Batch size.
    pub fn batch_size(&self) -> usize {
        self.loss.dims()[0]
    }

    /// Latent dimension.
    pub fn latent_dim(&self) -> usize {
        self.latent_mean.dims()[1]
    }

    /// Detaches every tensor from the autodiff graph (for metrics).
    pub fn detach(self) -> Self {
        Self {
            loss: self.loss.without_autodiff(),
            recon_loss: self.recon_loss.without_autodiff(),
            kl: self.kl.without_autodiff(),
            kl_per_dim: self.kl_per_dim.without_autodiff(),
            latent_mean: self.latent_mean.without_autodiff(),
            reconstruction: self.reconstruction.without_autodiff(),
            beta: self.beta,
            codes: self.codes,
        }
    }
}
