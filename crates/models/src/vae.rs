//! Variational autoencoder (Kingma & Welling 2014) with β (Higgins et al. 2017).
//!
//! The encoder outputs μ and log σ² of a diagonal Gaussian q(z|x); z = μ + σ ⊙ ε;
//! loss per sample = −log p(x|z) + β · KL(q(z|x) ‖ N(0, I)). β = 1 is the VAE (the loss is the
//! negative ELBO); β > 1 trades reconstruction for a lower rate.
//!
//! Reference: the PyTorch examples MNIST VAE (784-400-20, Adam 1e-3, batch 128); see
//! [`VaeConfig::mnist_reference`] and `assets/configs/vae_mnist.toml`.
use crate::nets::{Architecture, Decoder, Encoder};
use ae_core::{AeOutput, Autoencoder, DiagonalGaussian, ImageBatch, ImageShape, Likelihood};
use crate::family::{Capabilities, Family, check_beta};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

fn default_beta() -> f64 {
    1.0
}

/// Configuration of a [`Vae`] (and of a β-VAE: set `beta`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Latent dimension.
    pub latent_dim: usize,
    /// Encoder/decoder networks.
    pub architecture: Architecture,
    /// Observation model p(x|z).
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Weight of the KL term (β = 1: VAE). Must be ≥ 0.
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Per-dimension prior variances (absent: the isotropic N(0, I)). Distinct variances
    /// break the rotation symmetry of the isotropic prior, so the latent axes become
    /// identifiable up to sign flips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_variances: Option<Vec<f64>>,
}

impl VaeConfig {
    /// The PyTorch examples MNIST VAE: MLP 784-400-20, Bernoulli likelihood, β = 1.
    pub fn mnist_reference() -> Self {
        Self {
            latent_dim: 20,
            architecture: Architecture::mlp_400(),
            likelihood: Likelihood::Bernoulli,
            beta: 1.0,
            prior_variances: None,
        }
    }

    /// β-VAE on 64×64 dSprites with the Burgess et al. conv architecture and 10 latents.
    pub fn beta_vae_dsprites(beta: f64) -> Self {
        Self {
            latent_dim: 10,
            architecture: Architecture::conv_64(),
            likelihood: Likelihood::Bernoulli,
            beta,
            prior_variances: None,
        }
    }

    /// This configuration with another β.
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// Builds the model for images of `shape`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Vae {
        Vae {
            encoder: self
                .architecture
                .encoder(shape, 2 * self.latent_dim, device),
            decoder: self.architecture.decoder(
                self.likelihood.param_shape(shape),
                self.latent_dim,
                device,
            ),
            likelihood: self.likelihood,
            latent_dim: self.latent_dim,
            beta: self.beta,
            prior_variances: self.prior_variances.clone(),
        }
    }
}

impl Family for VaeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.latent_dim == 0 {
            return Err("model.latent_dim must be at least 1".into());
        }
        check_beta(self.beta)?;
        if let Some(v) = &self.prior_variances {
            if v.len() != self.latent_dim {
                return Err(format!(
                    "model.prior_variances has {} values for latent_dim = {}",
                    v.len(),
                    self.latent_dim
                ));
            }
            if let Some(bad) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(format!("model.prior_variances must be positive, got {bad}"));
            }
        }
        self.likelihood.validate()?;
        self.architecture.validate(None)
    }

    fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        self.architecture.validate(Some(shape))
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::variational(self.beta)
    }

    fn set_beta(&mut self, beta: f64) -> Result<(), String> {
        self.beta = beta;
        Ok(())
    }

    fn prior_variances(&self) -> Option<Vec<f64>> {
        Some(
            self.prior_variances
                .clone()
                .unwrap_or_else(|| vec![1.0; self.latent_dim]),
        )
    }

    fn parameter_count(&self, shape: ImageShape) -> u128 {
        self.architecture
            .encoder_parameters(shape, 0, 2 * self.latent_dim)
            + self
                .architecture
                .decoder_parameters(self.likelihood.param_shape(shape), self.latent_dim)
    }
}

/// VAE / β-VAE.
#[derive(Module, Debug)]
pub struct Vae {
    encoder: Encoder,
    decoder: Decoder,
    #[module(skip)]
    likelihood: Likelihood,
    latent_dim: usize,
    beta: f64,
    #[module(skip)]
    prior_variances: Option<Vec<f64>>,
}

impl Vae {
    /// The posterior q(z|x).
    pub fn posterior(&self, images: Tensor<4>) -> DiagonalGaussian {
        let h = self.encoder.forward(self.likelihood.encoder_input(images)); // [batch, 2 * latent]
        let l = self.latent_dim;
        DiagonalGaussian::new(h.clone().narrow(1, 0, l), h.narrow(1, l, l))
    }

    /// β of this model.
    pub fn beta(&self) -> f64 {
        self.beta
    }
}

impl Autoencoder for Vae {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        let x = batch.images;
        let q = self.posterior(x.clone());
        let params = self.decoder.forward(q.sample()); // [batch, k * c, h, w]
        let kl_per_dim = match &self.prior_variances {
            None => q.kl_per_dim(),
            Some(v) => q.kl_per_dim_to(Tensor::from_floats(
                v.iter().map(|&x| x as f32).collect::<Vec<_>>().as_slice(),
                &q.mean.device(),
            )),
        }; // [batch, latent]
        AeOutput::variational(x, params, &self.likelihood, kl_per_dim, q.mean, self.beta)
    }

    fn encode(&self, images: Tensor<4>, _labels: Tensor<1, Int>) -> Tensor<2> {
        self.posterior(images).mean
    }

    fn decode(&self, z: Tensor<2>, _labels: Tensor<1, Int>) -> Tensor<4> {
        self.likelihood.mean(self.decoder.forward(z))
    }

    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
        let mut z = Tensor::random(
            [n, self.latent_dim],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        if let Some(v) = &self.prior_variances {
            let sd: Vec<f32> = v.iter().map(|&x| x.sqrt() as f32).collect();
            z = z * Tensor::<1>::from_floats(sd.as_slice(), device).unsqueeze_dim::<2>(0);
        }
        let labels = Tensor::zeros([n], device);
        Some(self.decode(z, labels))
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn variational_posterior(
        &self,
        images: Tensor<4>,
        _labels: Tensor<1, Int>,
    ) -> Option<DiagonalGaussian> {
        Some(self.posterior(images))
    }

    fn log_prior(&self, z: Tensor<2>) -> Tensor<1> {
        match &self.prior_variances {
            None => ae_core::log_normal_prior(z.clone(), &vec![1.0; z.dims()[1]]),
            Some(v) => ae_core::log_normal_prior(z, v),
        }
    }

    fn log_likelihood(
        &self,
        images: Tensor<4>,
        z: Tensor<2>,
        _labels: Tensor<1, Int>,
    ) -> Option<Tensor<1>> {
        Some(-self.likelihood.nll_images(self.decoder.forward(z), images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};

    fn tiny(beta: f64) -> VaeConfig {
        VaeConfig {
            latent_dim: 3,
            architecture: Architecture::Mlp { hidden: vec![32] },
            likelihood: Likelihood::Bernoulli,
            beta,
            prior_variances: None,
        }
    }

    fn batch(d: &Device) -> ImageBatch {
        d.seed(3);
        let images = Tensor::<4>::random(
            [8, 1, 6, 6],
            burn::tensor::Distribution::Uniform(0.0, 1.0),
            d,
        )
        .greater_elem(0.5)
        .float();
        ImageBatch {
            images,
            labels: Tensor::zeros([8], d),
        }
    }

    #[test]
    fn loss_is_recon_plus_beta_kl() {
        let d = Device::default();
        let m = tiny(4.0).init(ImageShape::new(1, 6, 6), &d);
        let out = m.forward(batch(&d));
        let lhs: Vec<f32> = out.loss.clone().into_data().try_to_vec().unwrap();
        let r: Vec<f32> = out.recon_loss.clone().into_data().try_to_vec().unwrap();
        let k: Vec<f32> = out.kl.clone().into_data().try_to_vec().unwrap();
        let kd: Vec<f32> = out
            .kl_per_dim
            .clone()
            .sum_dim(1)
            .into_data()
            .try_to_vec()
            .unwrap();
        for i in 0..lhs.len() {
            assert!((lhs[i] - (r[i] + 4.0 * k[i])).abs() < 1e-4);
            assert!((k[i] - kd[i]).abs() < 1e-5);
            assert!(lhs[i].is_finite());
        }
        assert_eq!(out.reconstruction().dims(), [8, 1, 6, 6]);
        assert_eq!(out.latent_mean.dims(), [8, 3]);
    }

    #[test]
    fn one_adam_step_lowers_the_loss_on_a_fixed_batch() {
        let d = Device::default().autodiff();
        let mut m = tiny(1.0).init(ImageShape::new(1, 6, 6), &d);
        let b = batch(&d);
        let mut optim = AdamConfig::new().init();
        // Average over several noise draws to compare expectations, not single samples.
        let eval = |m: &Vae| -> f32 {
            d.seed(11);
            (0..20)
                .map(|_| m.forward(b.clone()).objective().into_scalar::<f32>())
                .sum::<f32>()
                / 20.0
        };
        let before = eval(&m);
        for _ in 0..5 {
            let out = m.forward(b.clone());
            let grads = GradientsParams::from_grads(out.objective().backward(), &m);
            m = optim.step(1e-2, m, grads);
        }
        let after = eval(&m);
        assert!(after < before, "loss did not fall: {before} -> {after}");
    }

    #[test]
    fn samples_and_reconstructions_have_image_shape() {
        let d = Device::default();
        let m = tiny(1.0).init(ImageShape::new(1, 6, 6), &d);
        assert_eq!(m.sample(5, &d).unwrap().dims(), [5, 1, 6, 6]);
        assert_eq!(m.reconstruct(batch(&d)).dims(), [8, 1, 6, 6]);
    }

    #[test]
    fn negative_beta_is_rejected() {
        assert!(tiny(-1.0).validate().unwrap_err().contains("model.beta"));
    }
}
