//! A VAE whose decoder has U-Net-style skip connections from the encoder, and its FiLM-gated
//! variant — the posterior-collapse experiment of the theory (Dieng et al. 2019 "Avoiding
//! latent variable collapse with generative skip models"; Perez et al. 2018 for FiLM).
//!
//! - `gate = "plain"`: the decoder adds the encoder's feature maps at each resolution. It can
//!   reconstruct x from the skips alone, so the KL term drives q(z|x) to the prior: the
//!   posterior collapses and the alarm fires.
//! - `gate = "film"`: each skip is scaled and shifted by z before it is added,
//!   γ(z) ⊙ skip + β(z), with γ and β linear in z and **without bias**: a skip only helps
//!   through z, so the decoder cannot bypass the latent.
//!
//! Prior samples decode with zero skips (there is no image to take them from).
use crate::nets::{downsampling_convs, upsampling_deconvs};
use ae_core::conv::{conv_transpose2d, conv_transpose2d_relu, conv2d_relu};
use ae_core::{AeOutput, Autoencoder, DiagonalGaussian, ImageBatch, ImageShape, Likelihood};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{Linear, LinearConfig};
use crate::family::{Capabilities, Family, check_beta};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

fn default_beta() -> f64 {
    1.0
}

/// How encoder features reach the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipGate {
    /// Added as they are (U-Net).
    Plain,
    /// Scaled and shifted by bias-free linear functions of z (FiLM).
    Film,
}

/// Configuration of a [`SkipVae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipVaeConfig {
    /// Latent dimension.
    pub latent_dim: usize,
    /// Output channels of the stride-2 4×4 conv layers.
    pub channels: Vec<usize>,
    /// Width of the dense layer.
    pub hidden: usize,
    /// Skip gating.
    pub gate: SkipGate,
    /// Observation model.
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Weight of the KL term.
    #[serde(default = "default_beta")]
    pub beta: f64,
}

impl SkipVaeConfig {
    /// Builds the model for images of `shape`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> SkipVae {
        let n = self.channels.len();
        let (h0, w0) = (shape.height >> n, shape.width >> n);
        let convs = downsampling_convs(shape.channels, &self.channels, device);
        let last = *self.channels.last().expect("validated: non-empty");
        let out_channels = shape.channels * self.likelihood.params_per_pixel();
        let deconvs = upsampling_deconvs(&self.channels, out_channels, device);
        // One FiLM pair per skip level, deepest first; bias-free so that z is the only way in.
        let film = |c: usize| {
            LinearConfig::new(self.latent_dim, c)
                .with_bias(false)
                .init(device)
        };
        let (scales, shifts) = match self.gate {
            SkipGate::Film => (
                self.channels.iter().rev().map(|&c| film(c)).collect(),
                self.channels.iter().rev().map(|&c| film(c)).collect(),
            ),
            SkipGate::Plain => (Vec::new(), Vec::new()),
        };
        SkipVae {
            convs,
            fc: LinearConfig::new(last * h0 * w0, self.hidden).init(device),
            head: LinearConfig::new(self.hidden, 2 * self.latent_dim).init(device),
            dec_fc1: LinearConfig::new(self.latent_dim, self.hidden).init(device),
            dec_fc2: LinearConfig::new(self.hidden, last * h0 * w0).init(device),
            deconvs,
            scales,
            shifts,
            likelihood: self.likelihood,
            latent_dim: self.latent_dim,
            beta: self.beta,
            start: [last, h0, w0],
        }
    }
}

impl Family for SkipVaeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.latent_dim == 0 || self.hidden == 0 {
            return Err("model.latent_dim and model.hidden must be at least 1".into());
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err("model.channels must list positive channel counts".into());
        }
        check_beta(self.beta)?;
        self.likelihood.validate()
    }

    fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        crate::check_stride_2(self.channels.len(), shape)
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            no_likelihood: Some(
                "the skip-VAE's decoder also sees x through its skips, so p(x|z) is not a \
                 likelihood of x given z",
            ),
            ..Capabilities::variational(self.beta)
        }
    }

    fn set_beta(&mut self, beta: f64) -> Result<(), String> {
        self.beta = beta;
        Ok(())
    }

    fn prior_variances(&self) -> Option<Vec<f64>> {
        Some(vec![1.0; self.latent_dim])
    }

    fn parameter_count(&self, shape: ImageShape) -> u128 {
        use crate::nets::{conv_stack_parameters, deconv_stack_parameters, dense_parameters};
        let n = self.channels.len().min(usize::BITS as usize - 1);
        let last = self.channels.last().copied().unwrap_or(0);
        let flat = last * (shape.height >> n) * (shape.width >> n);
        let film: u128 = match self.gate {
            SkipGate::Film => self
                .channels
                .iter()
                .map(|&c| 2 * self.latent_dim as u128 * c as u128)
                .sum(),
            SkipGate::Plain => 0,
        };
        conv_stack_parameters(shape.channels, &self.channels)
            + dense_parameters(flat, self.hidden)
            + dense_parameters(self.hidden, 2 * self.latent_dim)
            + dense_parameters(self.latent_dim, self.hidden)
            + dense_parameters(self.hidden, flat)
            + deconv_stack_parameters(&self.channels, shape.channels * self.likelihood.params_per_pixel())
            + film
    }
}

/// VAE with skip connections from encoder to decoder.
#[derive(Module, Debug)]
pub struct SkipVae {
    convs: Vec<Conv2d>,
    fc: Linear,
    head: Linear,
    dec_fc1: Linear,
    dec_fc2: Linear,
    deconvs: Vec<ConvTranspose2d>,
    scales: Vec<Linear>,
    shifts: Vec<Linear>,
    #[module(skip)]
    likelihood: Likelihood,
    latent_dim: usize,
    beta: f64,
    start: [usize; 3],
}

impl SkipVae {
    /// Posterior and the encoder feature maps, deepest first.
    fn encode_with_skips(&self, images: Tensor<4>) -> (DiagonalGaussian, Vec<Tensor<4>>) {
        let mut h = self.likelihood.encoder_input(images);
        let mut skips = Vec::new();
        for conv in &self.convs {
            h = conv2d_relu(conv, h);
            skips.push(h.clone());
        }
        skips.reverse();
        let out = self
            .head
            .forward(relu(self.fc.forward(h.flatten::<2>(1, 3))));
        let l = self.latent_dim;
        (
            DiagonalGaussian::new(out.clone().narrow(1, 0, l), out.narrow(1, l, l)),
            skips,
        )
    }

    /// Decoder parameters from z and the skips (None: zero skips).
    fn decode_params(&self, z: Tensor<2>, skips: Option<Vec<Tensor<4>>>) -> Tensor<4> {
        let [b, _] = z.dims();
        let [c, h, w] = self.start;
        let mut x =
            relu(self.dec_fc2.forward(relu(self.dec_fc1.forward(z.clone())))).reshape([b, c, h, w]);
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            if let Some(skips) = &skips {
                let s = skips[i].clone(); // [b, c_i, h_i, w_i], same shape as x
                let gated = if self.scales.is_empty() {
                    s
                } else {
                    let [_, ci, _, _] = s.dims();
                    let zc = z.clone() - z.clone().mean_dim(0); // centred over the batch
                    let scale = self.scales[i].forward(zc.clone()).reshape([b, ci, 1, 1]);
                    let shift = self.shifts[i].forward(zc).reshape([b, ci, 1, 1]);
                    s * scale + shift
                };
                x = x + gated;
            }
            x = if i < last {
                conv_transpose2d_relu(deconv, x)
            } else {
                conv_transpose2d(deconv, x)
            };
        }
        x
    }
}

impl Autoencoder for SkipVae {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        let x = batch.images;
        let (q, skips) = self.encode_with_skips(x.clone());
        let params = self.decode_params(q.sample(), Some(skips)); // [batch, k * c, h, w]
        AeOutput::variational(
            x,
            params,
            &self.likelihood,
            q.kl_per_dim(),
            q.mean,
            self.beta,
        )
    }

    fn encode(&self, images: Tensor<4>, _labels: Tensor<1, Int>) -> Tensor<2> {
        self.encode_with_skips(images).0.mean
    }

    /// Decodes with zero skips (there is no image to take them from).
    fn decode(&self, z: Tensor<2>, _labels: Tensor<1, Int>) -> Tensor<4> {
        self.likelihood.mean(self.decode_params(z, None))
    }

    fn reconstruct(&self, batch: ImageBatch) -> Tensor<4> {
        let (q, skips) = self.encode_with_skips(batch.images);
        self.likelihood
            .mean(self.decode_params(q.mean, Some(skips)))
    }

    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
        let z = Tensor::random(
            [n, self.latent_dim],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        Some(self.decode(z, Tensor::zeros([n], device)))
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}
