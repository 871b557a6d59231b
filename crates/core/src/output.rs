use crate::Likelihood;
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
    /// What the decoder produced; [`AeOutput::reconstruction`] reads the data-space mean from
    /// it only when asked (training never needs it, so the step does not pay for it).
    pub decoded: Decoded,
    /// The β weighting the KL in `loss` (1 for a VAE, 0 for an AE).
    pub beta: f64,
    /// Discrete models (VQ-VAE): the code index chosen at each latent position,
    /// `[batch, positions]`, and the codebook size.
    pub codes: Option<Codes>,
}

/// The decoder's output, kept in the form the model produced it.
#[derive(Clone, Debug)]
pub enum Decoded {
    /// The parameters of p(x|z) per pixel, `[batch, k · channels, h, w]`, read by `likelihood`.
    Params {
        /// Decoder output (logits, means, log-rates, …).
        params: Tensor<4>,
        /// The observation model the parameters belong to.
        likelihood: Likelihood,
    },
    /// The reconstruction itself, `[batch, channels, h, w]` (models that compute it anyway).
    Mean(Tensor<4>),
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
    /// The output of a model with a Gaussian posterior: reconstruction NLL of `x` under
    /// `likelihood` given the decoder output `params` (`[batch, k · channels, h, w]`), KL from
    /// `kl_per_dim` (`[batch, latent]`), objective recon + β·KL.
    pub fn variational(
        x: Tensor<4>,
        params: Tensor<4>,
        likelihood: &Likelihood,
        kl_per_dim: Tensor<2>,
        latent_mean: Tensor<2>,
        beta: f64,
    ) -> Self {
        let recon_loss = likelihood.nll_images(params.clone(), x);
        let kl = kl_per_dim.clone().sum_dim(1).squeeze_dim(1); // [batch]
        Self {
            loss: recon_loss.clone() + kl.clone() * beta,
            recon_loss,
            kl,
            kl_per_dim,
            latent_mean,
            decoded: Decoded::Params {
                params,
                likelihood: *likelihood,
            },
            beta,
            codes: None,
        }
    }

    /// The output of a deterministic autoencoder with code `z`: the loss is the reconstruction
    /// NLL alone, KL and β are zero.
    pub fn deterministic(
        x: Tensor<4>,
        params: Tensor<4>,
        likelihood: &Likelihood,
        z: Tensor<2>,
    ) -> Self {
        let [b, latent] = z.dims();
        let device = z.device();
        let recon_loss = likelihood.nll_images(params.clone(), x);
        Self {
            loss: recon_loss.clone(),
            recon_loss,
            kl: Tensor::zeros([b], &device),
            kl_per_dim: Tensor::zeros([b, latent], &device),
            latent_mean: z,
            decoded: Decoded::Params {
                params,
                likelihood: *likelihood,
            },
            beta: 0.0,
            codes: None,
        }
    }

    /// The scalar that is differentiated: the batch mean of [`AeOutput::loss`].
    pub fn objective(&self) -> Tensor<1> {
        self.loss.clone().mean()
    }

    /// Per-sample negative ELBO, recon + KL (β-independent), `[batch]`.
    pub fn neg_elbo(&self) -> Tensor<1> {
        self.recon_loss.clone() + self.kl.clone()
    }

    /// Reconstruction in data space (the mean of p(x|z)), `[batch, channels, height, width]`.
    pub fn reconstruction(&self) -> Tensor<4> {
        match &self.decoded {
            Decoded::Params { params, likelihood } => likelihood.mean(params.clone()),
            Decoded::Mean(mean) => mean.clone(),
        }
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
            decoded: match self.decoded {
                Decoded::Params { params, likelihood } => Decoded::Params {
                    params: params.without_autodiff(),
                    likelihood,
                },
                Decoded::Mean(mean) => Decoded::Mean(mean.without_autodiff()),
            },
            beta: self.beta,
            codes: self.codes,
        }
    }
}
