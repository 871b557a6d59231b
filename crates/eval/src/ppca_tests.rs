//! Exactness of the IWAE estimator against a closed form: probabilistic PCA.
//!
//! x = z·W + b + σε with z ~ N(0, I_L), ε ~ N(0, I_D) has the marginal likelihood
//! p(x) = N(x; b, WᵀW + σ²I) (Tipping & Bishop 1999). A "VAE" with that linear decoder, a
//! Gaussian likelihood of fixed σ and a linear encoder whose diagonal posterior is deliberately
//! off (shifted mean, doubled variance, no correlations) must give NLL_5000 within a small
//! tolerance of the exact −log p(x), NLL_1 clearly above it, and NLL_k falling towards it.
use crate::iwae::{IwaeAccumulator, log_weights};
use ae_core::{AeOutput, Autoencoder, DiagonalGaussian, ImageBatch, Likelihood};
use burn::module::Param;
use burn::prelude::*;

const L: usize = 2;
const D: usize = 6;
const SIGMA: f64 = 0.5;
const W: [[f64; D]; L] = [
    [1.0, 0.5, -0.3, 0.8, 0.0, 0.2],
    [0.3, -0.7, 0.9, 0.1, 0.6, -0.4],
];
const B: [f64; D] = [0.1, -0.2, 0.3, 0.0, 0.5, -0.1];

#[derive(Module, Debug)]
struct Ppca {
    w: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
    enc: Param<Tensor<2>>,
    enc_b: Param<Tensor<1>>,
    log_var: Param<Tensor<1>>,
}

impl Autoencoder for Ppca {
    fn forward(&self, _batch: ImageBatch) -> AeOutput {
        unreachable!("the IWAE estimator does not call forward")
    }

    fn encode(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
        self.variational_posterior(images, labels)
            .expect("has one")
            .mean
    }

    fn decode(&self, z: Tensor<2>, _labels: Tensor<1, Int>) -> Tensor<4> {
        let [n, _] = z.dims();
        (z.matmul(self.w.val()) + self.b.val().unsqueeze_dim::<2>(0)).reshape([n, 1, 1, D])
    }

    fn sample(&self, _n: usize, _device: &Device) -> Option<Tensor<4>> {
        None
    }

    fn latent_dim(&self) -> usize {
        L
    }

    fn variational_posterior(
        &self,
        images: Tensor<4>,
        _labels: Tensor<1, Int>,
    ) -> Option<DiagonalGaussian> {
        let [n, ..] = images.dims();
        let mean =
            images.reshape([n, D]).matmul(self.enc.val()) + self.enc_b.val().unsqueeze_dim::<2>(0);
        let log_var = self.log_var.val().unsqueeze_dim::<2>(0).expand([n, L]);
        Some(DiagonalGaussian::new(mean, log_var))
    }

    fn log_likelihood(
        &self,
        images: Tensor<4>,
        z: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Option<Tensor<1>> {
        let mean = self.decode(z, labels);
        Some(-Likelihood::Gaussian { sigma: SIGMA }.nll_images(mean, images))
    }
}

/// Inverse and log-determinant of a small symmetric positive-definite matrix (Cholesky).
#[allow(clippy::needless_range_loop)] // textbook index form of the triangular solves
fn inv_logdet(a: &[Vec<f64>]) -> (Vec<Vec<f64>>, f64) {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            l[i][j] = if i == j {
                (a[i][i] - s).sqrt()
            } else {
                (a[i][j] - s) / l[j][j]
            };
        }
    }
    let logdet = 2.0 * (0..n).map(|i| l[i][i].ln()).sum::<f64>();
    // Solve L Lᵀ X = I column by column.
    let mut inv = vec![vec![0.0; n]; n];
    for c in 0..n {
        let mut y = vec![0.0; n];
        for i in 0..n {
            let s: f64 = (0..i).map(|k| l[i][k] * y[k]).sum();
            y[i] = ((i == c) as u8 as f64 - s) / l[i][i];
        }
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| l[k][i] * inv[k][c]).sum();
            inv[i][c] = (y[i] - s) / l[i][i];
        }
    }
    (inv, logdet)
}

/// Exact −log p(x) under the PPCA model.
fn exact_nll(x: &[f64]) -> f64 {
    let c: Vec<Vec<f64>> = (0..D)
        .map(|i| {
            (0..D)
                .map(|j| {
                    (0..L).map(|k| W[k][i] * W[k][j]).sum::<f64>()
                        + if i == j { SIGMA * SIGMA } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let (inv, logdet) = inv_logdet(&c);
    let r: Vec<f64> = (0..D).map(|i| x[i] - B[i]).collect();
    let quad: f64 = (0..D)
        .map(|i| (0..D).map(|j| r[i] * inv[i][j] * r[j]).sum::<f64>())
        .sum();
    0.5 * (D as f64 * ae_core::LN_2PI + logdet + quad)
}

fn tensor2(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let (n, m) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(burn::tensor::TensorData::new(flat, [n, m]), device)
}

#[test]
fn iwae_converges_to_the_exact_ppca_likelihood() {
    let device = Device::flex();
    // Exact posterior: mean (x − b)·Wᵀ M⁻¹, covariance σ² M⁻¹, M = W Wᵀ + σ² I.
    let m: Vec<Vec<f64>> = (0..L)
        .map(|i| {
            (0..L)
                .map(|j| {
                    (0..D).map(|k| W[i][k] * W[j][k]).sum::<f64>()
                        + if i == j { SIGMA * SIGMA } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let (m_inv, _) = inv_logdet(&m);
    // enc (D × L) = Wᵀ M⁻¹; the encoder's bias is −b·enc plus a deliberate 0.15 offset.
    let enc: Vec<Vec<f64>> = (0..D)
        .map(|i| {
            (0..L)
                .map(|j| (0..L).map(|k| W[k][i] * m_inv[k][j]).sum())
                .collect()
        })
        .collect();
    let enc_b: Vec<f64> = (0..L)
        .map(|j| 0.15 - (0..D).map(|i| B[i] * enc[i][j]).sum::<f64>())
        .collect();
    // Twice the exact marginal variances, correlations dropped.
    let log_var: Vec<f64> = (0..L)
        .map(|j| (2.0 * SIGMA * SIGMA * m_inv[j][j]).ln())
        .collect();
    let v1 = |v: &[f64]| {
        Tensor::<1>::from_floats(
            v.iter().map(|&x| x as f32).collect::<Vec<_>>().as_slice(),
            &device,
        )
    };
    let model = Ppca {
        w: Param::from_tensor(tensor2(
            &W.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
            &device,
        )),
        b: Param::from_tensor(v1(&B)),
        enc: Param::from_tensor(tensor2(&enc, &device)),
        enc_b: Param::from_tensor(v1(&enc_b)),
        log_var: Param::from_tensor(v1(&log_var)),
    };
    // 40 points drawn from the model itself (a fixed host stream).
    let mut state = 7u64;
    let mut normal = || ae_data::seeded::standard_normal(&mut state);
    let xs: Vec<Vec<f64>> = (0..40)
        .map(|_| {
            let z = [normal(), normal()];
            (0..D)
                .map(|i| z[0] * W[0][i] + z[1] * W[1][i] + B[i] + SIGMA * normal())
                .collect()
        })
        .collect();
    let exact = xs.iter().map(|x| exact_nll(x)).sum::<f64>() / xs.len() as f64;
    let batch = ImageBatch {
        images: tensor2(&xs, &device).reshape([40, 1, 1, D]),
        labels: Tensor::zeros([40], &device),
    };
    device.seed(3);
    let ks = [1, 10, 100, 1000, 5000];
    let mut acc = IwaeAccumulator::new(&ks, D);
    // Small chunks: the estimate must not depend on how the samples are split.
    acc.add(&log_weights(&model, &batch, 5000, 10_000).unwrap());
    let gaps: Vec<f64> = acc.estimates().iter().map(|e| e.nll - exact).collect();
    println!("exact −log p(x) {exact:.4}; NLL_k − exact for k = {ks:?}: {gaps:?}");
    assert!(
        gaps[0] > 0.1,
        "NLL_1 (the ELBO) lies above the exact NLL: {gaps:?}"
    );
    assert!(
        gaps[0] > gaps[1] && gaps[1] > gaps[2],
        "falls with k: {gaps:?}"
    );
    assert!(
        gaps[3].abs() < 0.02 && gaps[4].abs() < 0.01,
        "NLL_5000 ≈ exact: {gaps:?}"
    );
}
