//! Conditional VAE (Sohn et al. 2015): encoder q(z|x,c) and decoder p(x|z,c) with a one-hot
//! condition c (the MNIST digit, the dSprites shape). Sampling with a chosen c generates that
//! class; `samples.png` of a run shows one row per class.
use crate::nets::{Architecture, Decoder, Encoder};
use ae_core::{AeOutput, Autoencoder, DiagonalGaussian, ImageBatch, ImageShape, Likelihood};
use crate::family::{Capabilities, Family, check_beta};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

fn default_beta() -> f64 {
    1.0
}

/// Configuration of a [`Cvae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvaeConfig {
    /// Latent dimension.
    pub latent_dim: usize,
    /// Number of classes of the condition (10 for MNIST digits, 3 for dSprites shapes).
    pub num_classes: usize,
    /// Encoder/decoder networks (the condition joins the pixels or the conv features).
    pub architecture: Architecture,
    /// Observation model p(x|z,c).
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Weight of the KL term.
    #[serde(default = "default_beta")]
    pub beta: f64,
}

impl CvaeConfig {
    /// Builds the model for images of `shape`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Cvae {
        let k = self.num_classes;
        Cvae {
            encoder: self
                .architecture
                .conditional_encoder(shape, k, 2 * self.latent_dim, device),
            decoder: self.architecture.decoder(
                self.likelihood.param_shape(shape),
                self.latent_dim + k,
                device,
            ),
            likelihood: self.likelihood,
            latent_dim: self.latent_dim,
            num_classes: k,
            beta: self.beta,
        }
    }
}

impl Family for CvaeConfig {
    fn validate(&self) -> Result<(), String> {
        if self.latent_dim == 0 {
            return Err("model.latent_dim must be at least 1".into());
        }
        if self.num_classes < 2 {
            return Err("model.num_classes must be at least 2".into());
        }
        check_beta(self.beta)?;
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
        Capabilities {
            classes: Some(self.num_classes),
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
        let k = self.num_classes;
        self.architecture
            .encoder_parameters(shape, k, 2 * self.latent_dim)
            + self
                .architecture
                .decoder_parameters(self.likelihood.param_shape(shape), self.latent_dim + k)
    }
}

/// Conditional VAE.
#[derive(Module, Debug)]
pub struct Cvae {
    encoder: Encoder,
    decoder: Decoder,
    #[module(skip)]
    likelihood: Likelihood,
    latent_dim: usize,
    num_classes: usize,
    beta: f64,
}

/// One-hot rows for integer labels, `[n, classes]`.
pub fn one_hot(labels: Tensor<1, Int>, classes: usize) -> Tensor<2> {
    let device = labels.device();
    let range = Tensor::<1, Int>::arange(0..classes as i64, &device).unsqueeze_dim::<2>(0);
    labels.unsqueeze_dim::<2>(1).equal(range).float()
}

impl Cvae {
    fn posterior(&self, images: Tensor<4>, c: Tensor<2>) -> DiagonalGaussian {
        let h = self
            .encoder
            .forward_conditional(self.likelihood.encoder_input(images), Some(c)); // [batch, 2 * latent]
        let l = self.latent_dim;
        DiagonalGaussian::new(h.clone().narrow(1, 0, l), h.narrow(1, l, l))
    }

    fn decode_params(&self, z: Tensor<2>, c: Tensor<2>) -> Tensor<4> {
        self.decoder.forward(Tensor::cat(vec![z, c], 1))
    }
}

impl Autoencoder for Cvae {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        let x = batch.images;
        let c = one_hot(batch.labels, self.num_classes);
        let q = self.posterior(x.clone(), c.clone());
        let params = self.decode_params(q.sample(), c); // [batch, k * channels, h, w]
        AeOutput::variational(
            x,
            params,
            &self.likelihood,
            q.kl_per_dim(),
            q.mean,
            self.beta,
        )
    }

    fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
        self.posterior(images, one_hot(labels, self.num_classes))
            .mean
    }

    fn decode(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        self.likelihood
            .mean(self.decode_params(z, one_hot(labels, self.num_classes)))
    }

    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
        let z = Tensor::random(
            [n, self.latent_dim],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            device,
        );
        let labels: Vec<i64> = (0..n)
            .map(|i| (i * self.num_classes / n.max(1)) as i64)
            .collect();
        let labels =
            Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(labels, [n]), device);
        Some(self.decode(z, labels))
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.num_classes)
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn variational_posterior(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> Option<DiagonalGaussian> {
        Some(self.posterior(images, one_hot(labels, self.num_classes)))
    }

    /// log p(x|z, c): the likelihood is conditional on the class, as is the whole bound.
    fn log_likelihood(
        &self,
        images: Tensor<4>,
        z: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Option<Tensor<1>> {
        let params = self.decode_params(z, one_hot(labels, self.num_classes));
        Some(-self.likelihood.nll_images(params, images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_rows() {
        let d = Device::default();
        let l = Tensor::<1, Int>::from_ints([2, 0], &d);
        let v: Vec<f32> = one_hot(l, 3).into_data().try_to_vec().unwrap();
        assert_eq!(v, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn shapes_loss_and_class_blocks() {
        let d = Device::default();
        for arch in [
            Architecture::Mlp { hidden: vec![16] },
            Architecture::Conv {
                channels: vec![4, 8],
                hidden: 16,
            },
        ] {
            let cfg = CvaeConfig {
                latent_dim: 2,
                num_classes: 3,
                architecture: arch,
                likelihood: Likelihood::Bernoulli,
                beta: 2.0,
            };
            let m = cfg.init(ImageShape::new(1, 8, 8), &d);
            let batch = ImageBatch {
                images: Tensor::ones([4, 1, 8, 8], &d) * 0.5,
                labels: Tensor::from_ints([0, 1, 2, 1], &d),
            };
            let out = m.forward(batch);
            assert_eq!(out.kl_per_dim.dims(), [4, 2]);
            let l: Vec<f32> = out.loss.into_data().try_to_vec().unwrap();
            let r: Vec<f32> = out.recon_loss.into_data().try_to_vec().unwrap();
            let k: Vec<f32> = out.kl.into_data().try_to_vec().unwrap();
            for i in 0..4 {
                assert!((l[i] - (r[i] + 2.0 * k[i])).abs() < 1e-4);
            }
            assert_eq!(m.sample(6, &d).unwrap().dims(), [6, 1, 8, 8]);
        }
    }
}
