//! Wasserstein autoencoder with an MMD penalty, WAE-MMD (Tolstikhin et al. 2018, "Wasserstein
//! Auto-Encoders").
//!
//! A deterministic encoder z = f(x) and decoder p(x|z), trained on
//! loss = −log p(x|g(f(x))) + λ · MMD²(q(z), p(z)), where q(z) is the *aggregate* posterior
//! (the codes of the batch) and p(z) = N(0, I). Unlike the VAE's per-image KL, the penalty only
//! asks the codes as a whole to look like prior samples, so each image keeps a sharp code
//! while the prior stays samplable: [`Autoencoder::sample`] decodes z ~ N(0, I).
//!
//! MMD² is the unbiased estimate between the batch's codes and as many prior draws, with the
//! inverse multiquadratic kernel k(a, b) = C / (C + ‖a − b‖²) summed over the scales
//! C = 2 · d · s, s ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10} of the paper's code (d: latent dimension).
//! There is no posterior q(z|x): no KL, no β, no likelihood bound.
use crate::ae::{Ae, AeConfig};
use crate::family::{Capabilities, Family};
use crate::nets::Architecture;
use ae_core::{AeOutput, Autoencoder, ImageBatch, ImageShape, Likelihood};
use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};

/// The kernel scales s of C = 2 · d · s (Tolstikhin et al.'s implementation).
pub const IMQ_SCALES: [f64; 7] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

fn default_lambda() -> f64 {
    10.0
}

/// Configuration of a [`Wae`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaeConfig {
    /// Size of the code z.
    pub latent_dim: usize,
    /// Encoder/decoder networks.
    pub architecture: Architecture,
    /// Observation model used as reconstruction loss.
    #[serde(default)]
    pub likelihood: Likelihood,
    /// Weight λ of the MMD penalty (per image, against the reconstruction loss in nats).
    #[serde(default = "default_lambda")]
    pub lambda: f64,
}

impl WaeConfig {
    /// The autoencoder underneath: the same networks and reconstruction loss.
    fn autoencoder(&self) -> AeConfig {
        AeConfig {
            latent_dim: self.latent_dim,
            architecture: self.architecture.clone(),
            likelihood: self.likelihood,
        }
    }

    /// Builds the model for images of `shape`.
    pub fn init(&self, shape: ImageShape, device: &Device) -> Wae {
        Wae {
            ae: self.autoencoder().init(shape, device),
            lambda: self.lambda,
        }
    }
}

impl Family for WaeConfig {
    fn validate(&self) -> Result<(), String> {
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return Err(format!(
                "model.lambda must be a finite number ≥ 0, got {}",
                self.lambda
            ));
        }
        self.autoencoder().validate()
    }

    fn check_shape(&self, shape: ImageShape) -> Result<(), String> {
        self.autoencoder().check_shape(shape)
    }

    fn latent_dim(&self) -> usize {
        self.latent_dim
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            prior: true,
            ..Capabilities::deterministic(
                "a Wasserstein autoencoder's encoder is deterministic: there is no posterior \
                 q(z|x) to bound p(x) with",
            )
        }
    }

    fn set_beta(&mut self, _beta: f64) -> Result<(), String> {
        Err(
            "a Wasserstein autoencoder (family = \"wae\") has no KL term to weight by β (its \
             MMD weight is model.lambda)"
                .into(),
        )
    }

    fn prior_variances(&self) -> Option<Vec<f64>> {
        Some(vec![1.0; self.latent_dim])
    }

    fn parameter_count(&self, shape: ImageShape) -> u128 {
        self.autoencoder().parameter_count(shape)
    }
}

/// Wasserstein autoencoder (WAE-MMD): an [`Ae`] trained with the MMD penalty.
#[derive(Module, Debug)]
pub struct Wae {
    ae: Ae,
    lambda: f64,
}

/// Squared Euclidean distances between the rows of `a` (`[n, d]`) and `b` (`[m, d]`), `[n, m]`.
fn squared_distances(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let a2 = a.clone().square().sum_dim(1); // [n, 1]
    let b2 = b.clone().square().sum_dim(1).transpose(); // [1, m]
    (a2 + b2 - a.matmul(b.transpose()) * 2.0).clamp_min(0.0)
}

/// The unbiased MMD² between the samples `z` (`[n, d]`) and `p` (`[n, d]`) with the IMQ
/// kernel summed over [`IMQ_SCALES`], `[1]`; 0 for fewer than two samples.
pub fn mmd_imq(z: Tensor<2>, p: Tensor<2>) -> Tensor<1> {
    let [n, d] = z.dims();
    if n < 2 {
        return Tensor::zeros([1], &z.device());
    }
    let (zz, pp, zp) = (
        squared_distances(z.clone(), z.clone()),
        squared_distances(p.clone(), p.clone()),
        squared_distances(z, p),
    );
    let nf = n as f64;
    let mut total: Option<Tensor<1>> = None;
    for s in IMQ_SCALES {
        let c = 2.0 * d as f64 * s;
        let k = |dist: Tensor<2>| (dist + c).recip().mul_scalar(c).sum();
        // The diagonals of k(z, z) and k(p, p) are k(0) = 1: the unbiased estimate leaves them out.
        let within = (k(zz.clone()) + k(pp.clone()) - 2.0 * nf) / (nf * (nf - 1.0));
        let term = within - k(zp.clone()) * (2.0 / (nf * nf));
        total = Some(match total {
            Some(t) => t + term,
            None => term,
        });
    }
    total.expect("IMQ_SCALES is not empty")
}

impl Autoencoder for Wae {
    fn forward(&self, batch: ImageBatch) -> AeOutput {
        let mut out = self.ae.forward(batch);
        let z = out.latent_mean.clone(); // [batch, latent]
        let prior = Tensor::random(z.dims(), Distribution::Normal(0.0, 1.0), &z.device());
        out.loss = out.loss + mmd_imq(z, prior) * self.lambda; // [batch] + [1]
        out
    }

    fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
        self.ae.encode(images, labels)
    }

    fn decode(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        self.ae.decode(z, labels)
    }

    fn sample(&self, n: usize, device: &Device) -> Option<Tensor<4>> {
        let z = Tensor::random(
            [n, self.ae.latent_dim()],
            Distribution::Normal(0.0, 1.0),
            device,
        );
        Some(self.decode(z, Tensor::zeros([n], device)))
    }

    fn latent_dim(&self) -> usize {
        self.ae.latent_dim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, GradientsParams};

    /// The IMQ MMD² written out in f64 loops, independently of the tensor version.
    fn mmd_reference(z: &[Vec<f64>], p: &[Vec<f64>]) -> f64 {
        let (n, d) = (z.len() as f64, z[0].len() as f64);
        let dist = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum() };
        let mut total = 0.0;
        for s in IMQ_SCALES {
            let c = 2.0 * d * s;
            let k = |a: &[f64], b: &[f64]| c / (c + dist(a, b));
            let (mut zz, mut pp, mut zp) = (0.0, 0.0, 0.0);
            for i in 0..z.len() {
                for j in 0..z.len() {
                    if i != j {
                        zz += k(&z[i], &z[j]);
                        pp += k(&p[i], &p[j]);
                    }
                    zp += k(&z[i], &p[j]);
                }
            }
            total += (zz + pp) / (n * (n - 1.0)) - 2.0 * zp / (n * n);
        }
        total
    }

    fn rows(t: &Tensor<2>) -> Vec<Vec<f64>> {
        let [_, d] = t.dims();
        let v: Vec<f32> = t.clone().into_data().try_to_vec().unwrap();
        v.chunks(d)
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect()
    }

    #[test]
    fn mmd_matches_the_loop_reference() {
        let d = Device::default();
        d.seed(5);
        let z = Tensor::<2>::random([9, 3], Distribution::Normal(0.7, 1.5), &d);
        let p = Tensor::<2>::random([9, 3], Distribution::Normal(0.0, 1.0), &d);
        let got = mmd_imq(z.clone(), p.clone()).into_scalar::<f32>() as f64;
        let want = mmd_reference(&rows(&z), &rows(&p));
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(want > 0.0, "shifted samples should be told apart: {want}");
    }

    #[test]
    fn mmd_is_near_zero_for_two_prior_samples_and_large_for_a_shift() {
        let d = Device::default();
        d.seed(6);
        let draw = |mean| Tensor::<2>::random([256, 4], Distribution::Normal(mean, 1.0), &d);
        let same = mmd_imq(draw(0.0), draw(0.0)).into_scalar::<f32>();
        let shifted = mmd_imq(draw(2.0), draw(0.0)).into_scalar::<f32>();
        assert!(same.abs() < 0.02, "same distribution: {same}");
        assert!(shifted > 0.5, "shifted by 2: {shifted}");
    }

    fn tiny(lambda: f64) -> WaeConfig {
        WaeConfig {
            latent_dim: 2,
            architecture: Architecture::Mlp { hidden: vec![32] },
            likelihood: Likelihood::Bernoulli,
            lambda,
        }
    }

    /// Trains on fixed random binary images and returns the MMD² of the codes of 64 images
    /// to 64 prior draws (the same draws for every λ).
    fn codes_to_prior_after_training(lambda: f64) -> f32 {
        let d = Device::default().autodiff();
        d.seed(1);
        let shape = ImageShape::new(1, 6, 6);
        let mut m = tiny(lambda).init(shape, &d);
        let images = Tensor::<4>::random([64, 1, 6, 6], Distribution::Uniform(0.0, 1.0), &d)
            .greater_elem(0.5)
            .float();
        let batch = ImageBatch {
            images: images.clone(),
            labels: Tensor::zeros([64], &d),
        };
        let mut optim = AdamConfig::new().init();
        for _ in 0..150 {
            let out = m.forward(batch.clone());
            let grads = GradientsParams::from_grads(out.objective().backward(), &m);
            m = optim.step(1e-2, m, grads);
        }
        let z = m.encode(images, Tensor::zeros([64], &d)).without_autodiff();
        let plain = Device::default();
        plain.seed(99);
        let prior = Tensor::<2>::random([64, 2], Distribution::Normal(0.0, 1.0), &plain);
        mmd_imq(z, prior).into_scalar::<f32>()
    }

    #[test]
    fn the_penalty_pulls_the_codes_to_the_prior() {
        // λ = 0 is a plain AE: nothing shapes its codes. λ = 100 must bring them to N(0, I).
        let (ae, wae) = (
            codes_to_prior_after_training(0.0),
            codes_to_prior_after_training(100.0),
        );
        assert!(wae < 0.5 * ae, "MMD² to the prior: AE {ae}, WAE {wae}");
    }

    #[test]
    fn it_samples_from_its_prior_and_has_no_kl() {
        let d = Device::default();
        let m = tiny(10.0).init(ImageShape::new(1, 6, 6), &d);
        assert_eq!(m.sample(3, &d).unwrap().dims(), [3, 1, 6, 6]);
        let out = m.forward(ImageBatch {
            images: Tensor::ones([4, 1, 6, 6], &d) * 0.5,
            labels: Tensor::zeros([4], &d),
        });
        assert_eq!(out.kl.sum().into_scalar::<f32>(), 0.0);
        let (loss, recon): (Vec<f32>, Vec<f32>) = (
            out.loss.into_data().try_to_vec().unwrap(),
            out.recon_loss.into_data().try_to_vec().unwrap(),
        );
        // The penalty is one batch-level number added to every image's loss.
        let extra: Vec<f32> = loss.iter().zip(&recon).map(|(l, r)| l - r).collect();
        assert!(extra.iter().all(|e| (e - extra[0]).abs() < 1e-4), "{extra:?}");
    }

    #[test]
    fn bad_lambda_and_beta_are_refused() {
        assert!(tiny(-1.0).validate().unwrap_err().contains("model.lambda"));
        assert!(tiny(1.0).set_beta(2.0).unwrap_err().contains("model.lambda"));
    }
}
