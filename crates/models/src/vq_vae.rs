//! VQ-VAE (van den Oord et al. 2017): a conv encoder whose output vectors are snapped to the
//! nearest of K codebook vectors, a straight-through gradient, and
//! loss = recon + ‖sg\[z_e\] − e‖² + β_commit ‖z_e − sg\[e\]‖² (β_commit = 0.25).
//!
//! Options: EMA codebook updates (decay 0.99, Laplace-smoothed counts; the codebook term then
//! leaves the loss) and restarting dead codes from encoder outputs of the current batch (EMA
//! codebooks only: restarts write the codebook, which the optimiser owns otherwise). The EMA
//! counts and sums both start at zero, so each code is the (moving) mean of the encoder outputs
//! assigned to it; a code never assigned keeps its initial value.
//!
//! Units: the reconstruction term is the squared error summed over pixels (the reference
//! reports MSE per pixel = recon / pixels); the VQ terms are means over latent elements scaled
//! by the number of pixels, so that `loss` = pixels × (MSE + codebook + β·commitment), the
//! reference objective up to a constant factor. There is no KL: with a uniform prior over codes
//! it is the constant log K per position.
//!
//! Prior sampling is **not defined** without a learned prior over codes (the paper fits a
//! PixelCNN): [`Autoencoder::sample`] returns `None` rather than decoding uniform noise.
use crate::nets::{downsampling_convs, upsampling_deconvs};
use ae_core::conv::{conv_transpose2d, conv_transpose2d_relu, conv2d, conv2d_relu};
use ae_core::{AeOutput, Autoencoder, Codes, Decoded, ImageBatch, ImageShape};
use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d};
use crate::family::{Capabilities, Family};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

fn default_commitment() -> f64 {
    0.25
}

/// EMA codebook settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// Decay γ of the moving averages (0.99).
    pub decay: f64,
    /// Restart codes whose EMA count falls below this many assignments (0 = never).
    #[serde(default)]
    pub restart_below: f64,
}

/// Configuration of a [`VqVae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VqVaeConfig {
    /// Number of codes K.
    pub codebook_size: usize,
    /// Dimension D of each code.
    pub code_dim: usize,
    /// Output channels of the stride-2 4×4 conv layers (each halves the image).
    pub channels: Vec<usize>,
    /// Weight of the commitment term.
    #[serde(default = "default_commitment")]
    pub commitment: f64,
    /// EMA codebook updates (absent: the codebook is learnt by gradient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<EmaConfig>,
}

impl VqVaeConfig {
    /// The reference MNIST VQ-VAE: conv 1→32→64 (k4 s2), 1×1 to D = 64, K = 128, β = 0.25.
    pub fn mnist_reference() -> Self {
        Self {
            codebook_size: 128,
            code_dim: 64,
            channels: vec![32, 64],
            commitment: 0.25,
            ema: None,
        }
    }

    /// Builds the model for images of `shape`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> VqVae {
        let encoder = downsampling_convs(shape.channels, &self.channels, device);
        let last = *self.channels.last().expect("validated: non-empty");
        let to_code = Conv2dConfig::new([last, self.code_dim], [1, 1]).init(device);
        let from_code = Conv2dConfig::new([self.code_dim, last], [1, 1]).init(device);
        let decoder = upsampling_deconvs(&self.channels, shape.channels, device);
        let (k, d) = (self.codebook_size, self.code_dim);
        let bound = 1.0 / k as f64;
        let codebook = Tensor::<2>::random([k, d], Distribution::Uniform(-bound, bound), device);
        let ema = self.ema.map(|_| EmaState {
            codebook: RunningState::new(codebook.clone()),
            // Counts and sums both start at zero (their ratio is then the moving mean itself,
            // with no bias towards zero to correct). A sum that started at the codebook while
            // its count started at zero divided never-used codes by the smoothing ε, about 10⁵.
            cluster_size: RunningState::new(Tensor::zeros([k], device)),
            embed_sum: RunningState::new(Tensor::zeros([k, d], device)),
        });
        VqVae {
            encoder,
            to_code,
            from_code,
            decoder,
            codebook: Param::from_tensor(codebook),
            ema,
            codebook_size: k,
            code_dim: d,
            commitment: self.commitment,
            decay: self.ema.map_or(0.0, |e| e.decay),
            restart_below: self.ema.map_or(0.0, |e| e.restart_below),
            map_side: [
                shape.height >> self.channels.len(),
                shape.width >> self.channels.len(),
            ],
        }
    }
}

impl Family for VqVaeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.codebook_size < 2 || self.code_dim == 0 {
            return Err("model.codebook_size must be ≥ 2 and model.code_dim ≥ 1".into());
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err("model.channels must list positive channel counts".into());
        }
        if !(self.commitment >= 0.0 && self.commitment.is_finite()) {
            return Err(format!(
                "model.commitment must be ≥ 0, got {}",
                self.commitment
            ));
        }
        if let Some(e) = self.ema
            && !(e.decay > 0.0 && e.decay < 1.0 && e.restart_below >= 0.0)
        {
            return Err(format!(
                "model.ema.decay must be in (0, 1), got {}",
                e.decay
            ));
        }
        Ok(())
    }

    fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        crate::check_stride_2(self.channels.len(), shape)
    }

    fn latent_dim(&self) -> usize {
        self.code_dim
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            codebook: Some(self.codebook_size),
            ..Capabilities::deterministic("a VQ-VAE has discrete codes and no learnt prior over them")
        }
    }

    fn set_beta(&mut self, _beta: f64) -> Result<(), String> {
        Err("a VQ-VAE (family = \"vq_vae\") has no KL term to weight by β (its commitment \
             weight is model.commitment)"
            .into())
    }

    fn prior_variances(&self) -> Option<Vec<f64>> {
        None
    }

    fn parameter_count(&self, shape: ImageShape) -> u128 {
        use crate::nets::{conv_stack_parameters, deconv_stack_parameters, dense_parameters};
        let last = self.channels.last().copied().unwrap_or(0);
        let (k, d) = (self.codebook_size as u128, self.code_dim as u128);
        // The codebook, and with EMA updates its running copy, counts and sums (which Burn
        // counts among the module's parameters too).
        let codebook = k * d + if self.ema.is_some() { 2 * k * d + k } else { 0 };
        conv_stack_parameters(shape.channels, &self.channels)
            + dense_parameters(last, self.code_dim)
            + dense_parameters(self.code_dim, last)
            + deconv_stack_parameters(&self.channels, shape.channels)
            + codebook
    }
}

/// Moving averages of an EMA codebook (recorded with the module, like batch-norm statistics).
#[derive(Module, Debug)]
pub struct EmaState {
    codebook: RunningState<Tensor<2>>,
    cluster_size: RunningState<Tensor<1>>,
    embed_sum: RunningState<Tensor<2>>,
}

/// VQ-VAE.
#[derive(Module, Debug)]
pub struct VqVae {
    encoder: Vec<Conv2d>,
    to_code: Conv2d,
    from_code: Conv2d,
    decoder: Vec<ConvTranspose2d>,
    codebook: Param<Tensor<2>>,
    ema: Option<EmaState>,
    codebook_size: usize,
    code_dim: usize,
    commitment: f64,
    decay: f64,
    restart_below: f64,
    map_side: [usize; 2],
}

impl VqVae {
    /// Encoder output z_e, `[batch, code_dim, h, w]`.
    fn encode_continuous(&self, images: Tensor<4>) -> Tensor<4> {
        let mut h = images;
        for conv in &self.encoder {
            h = conv2d_relu(conv, h);
        }
        conv2d(&self.to_code, h)
    }

    /// The codebook in use, `[K, D]`.
    pub fn codebook(&self) -> Tensor<2> {
        match &self.ema {
            Some(e) => e.codebook.value(),
            None => self.codebook.val(),
        }
    }

    /// Nearest codes of rows `z` (`[M, D]`): indices `[M]`.
    fn nearest(&self, z: Tensor<2>, codebook: Tensor<2>) -> Tensor<1, Int> {
        let d2 = z.clone().square().sum_dim(1) - z.matmul(codebook.clone().transpose()) * 2.0
            + codebook.square().sum_dim(1).transpose(); // [M, K]
        d2.argmin(1).squeeze_dim(1)
    }

    fn decode_codes(&self, z: Tensor<4>) -> Tensor<4> {
        let mut h = conv2d_relu(&self.from_code, z);
        let last = self.decoder.len() - 1;
        for (i, deconv) in self.decoder.iter().enumerate() {
            h = if i < last {
                conv_transpose2d_relu(deconv, h)
            } else {
                conv_transpose2d(deconv, h)
            };
        }
        h
    }

    /// Updates the EMA codebook from one training batch and restarts dead codes.
    fn ema_update(&self, ema: &EmaState, z: Tensor<2>, one_hot: Tensor<2>) {
        let z = z.detach();
        let g = self.decay;
        let counts = one_hot.clone().sum_dim(0).squeeze_dim::<1>(0); // [K]
        let sums = one_hot.transpose().matmul(z.clone()); // [K, D]
        let cluster = ema.cluster_size.value_sync() * g + counts * (1.0 - g);
        let embed = ema.embed_sum.value_sync() * g + sums * (1.0 - g);
        // Laplace smoothing keeps never-used codes from dividing by zero.
        let n = cluster.clone().sum();
        let k = self.codebook_size as f64;
        let smoothed = (cluster.clone() + 1e-5) / (n.clone() + k * 1e-5) * n;
        let mut codebook = embed.clone() / smoothed.unsqueeze_dim::<2>(1);
        // A code no output has ever been assigned to (count exactly zero) keeps its value.
        let never = cluster
            .clone()
            .equal_elem(0.0)
            .unsqueeze_dim::<2>(1)
            .expand([self.codebook_size, self.code_dim]);
        codebook = codebook.mask_where(never, ema.codebook.value_sync());
        let (mut cluster, mut embed) = (cluster, embed);
        if self.restart_below > 0.0 {
            // Dead codes take the value of random encoder outputs of this batch.
            let dead = cluster.clone().lower_elem(self.restart_below); // [K]
            let [m, _] = z.dims();
            let picks = Tensor::<1, Int>::random(
                [self.codebook_size],
                Distribution::Uniform(0.0, m as f64),
                &z.device(),
            );
            let fresh = z.select(0, picks); // [K, D]
            let dead2 = dead
                .clone()
                .unsqueeze_dim::<2>(1)
                .expand([self.codebook_size, self.code_dim]);
            codebook = codebook.mask_where(dead2.clone(), fresh.clone());
            embed = embed.mask_where(dead2, fresh);
            cluster = cluster.mask_fill(dead, 1.0);
        }
        // Commit each update at once (`value_sync` right after `update`). burn's RunningState
        // otherwise keeps the newest value pending until the next update: the forward would
        // quantise with a codebook one step old, and a checkpoint (which records only
        // committed values) would lose the last update, so a resumed run would differ.
        for (state, value) in [(&ema.codebook, codebook), (&ema.embed_sum, embed)] {
            state.update(value.detach());
            let _ = state.value_sync();
        }
        ema.cluster_size.update(cluster.detach());
        let _ = ema.cluster_size.value_sync();
    }
}

impl Autoencoder for VqVae {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        let x = batch.images;
        let [b, c, h, w] = x.dims();
        let ze = self.encode_continuous(x.clone()); // [b, D, h', w']
        let [_, d, hh, ww] = ze.dims();
        let positions = hh * ww;
        let z = ze.clone().permute([0, 2, 3, 1]).reshape([b * positions, d]); // [M, D]
        let codebook = self.codebook();
        let idx = self.nearest(z.clone().detach(), codebook.clone().detach()); // [M]
        // The chosen codes' rows (a gather, not a one-hot product: M·D instead of M·K·D
        // multiply-adds each way); the gradient reaches the codebook by a scatter-add.
        let zq = codebook.select(0, idx.clone()); // [M, D]
        let per_sample = |t: Tensor<2>| {
            t.reshape([b, positions * d])
                .mean_dim(1)
                .squeeze_dim::<1>(1)
        };
        let codebook_loss = per_sample((zq.clone() - z.clone().detach()).square());
        let commit_loss = per_sample((z.clone() - zq.clone().detach()).square());
        if let Some(ema) = &self.ema
            && z.device().is_autodiff()
        {
            let one_hot = crate::cvae::one_hot(idx.clone(), self.codebook_size); // [M, K]
            self.ema_update(ema, z.clone(), one_hot);
        }
        // Straight-through: the decoder sees z_q, the encoder gets the decoder's gradient.
        let zst = z.clone() + (zq - z).detach();
        let zst = zst.reshape([b, hh, ww, d]).permute([0, 3, 1, 2]);
        let logits = self.decode_codes(zst);
        let recon = sigmoid(logits);
        let pixels = (c * h * w) as f64;
        let recon_loss = (recon.clone() - x)
            .square()
            .reshape([b, c * h * w])
            .sum_dim(1)
            .squeeze_dim::<1>(1);
        let vq = if self.ema.is_some() {
            commit_loss * self.commitment
        } else {
            codebook_loss + commit_loss * self.commitment
        };
        let device = recon.device();
        AeOutput {
            loss: recon_loss.clone() + vq * pixels,
            recon_loss,
            kl: Tensor::zeros([b], &device),
            kl_per_dim: Tensor::zeros([b, d], &device),
            latent_mean: ze.mean_dims(&[2, 3]).reshape([b, d]),
            decoded: Decoded::Mean(recon),
            beta: 0.0,
            codes: Some(Codes {
                indices: idx.reshape([b, positions]),
                codebook_size: self.codebook_size,
            }),
        }
    }

    fn encode(&self, images: Tensor<4>, _labels: Tensor<1, Int>) -> Tensor<2> {
        let [b, ..] = images.dims();
        let ze = self.encode_continuous(images);
        let [_, d, _, _] = ze.dims();
        ze.mean_dims(&[2, 3]).reshape([b, d])
    }

    /// Decodes one code vector per image (`[n, D]`) repeated at every latent position. A
    /// VQ-VAE's latent is a map of codes; this is the closest reading of a vector code.
    fn decode(&self, z: Tensor<2>, _labels: Tensor<1, Int>) -> Tensor<4> {
        let [n, d] = z.dims();
        let [hh, ww] = self.map_side;
        let map = z.reshape([n, d, 1, 1]).expand([n, d, hh, ww]);
        sigmoid(self.decode_codes(map))
    }

    fn reconstruct(&self, batch: ImageBatch) -> Tensor<4> {
        self.forward(batch).reconstruction()
    }

    /// `None`: a VQ-VAE has no prior to sample from until a prior over codes is learnt.
    fn sample(&self, _n: usize, _device: &Device) -> Option<Tensor<4>> {
        None
    }

    fn latent_dim(&self) -> usize {
        self.code_dim
    }
}
