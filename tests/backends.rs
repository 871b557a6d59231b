use crate::util::training_lock;
use ae::core::{Autoencoder, ImageBatch, ImageShape, Likelihood};
use ae::models::ModelConfig;
use ae::models::ae::AeConfig;
use ae::models::nets::Architecture;
use ae::models::vae::VaeConfig;
use ae::train::device;
use burn::module::Module;
use burn::prelude::*;

/// Max |a − b| / max(1, |b|) over two vectors.
fn rel_gap(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// The same model, weights and batch give the same loss and codes on every compiled backend
/// (flex is the reference), within 1e-4 relative.
#[test]
fn every_compiled_backend_computes_the_same_loss() {
    let _g = training_lock();
    let shape = ImageShape::new(1, 28, 28);
    let configs = [
        ModelConfig::Ae(AeConfig {
            latent_dim: 8,
            architecture: Architecture::conv_28(),
            likelihood: Likelihood::Bernoulli,
        }),
        ModelConfig::Vae(VaeConfig::mnist_reference()),
    ];
    let reference = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let backends = device::compiled();
    assert!(
        backends.len() >= 2,
        "the test build compiles flex and ndarray: {backends:?}"
    );
    for (k, cfg) in configs.iter().enumerate() {
        reference.seed(7);
        let model = cfg.init(shape, &reference);
        let path = dir.path().join(format!("m{k}.bpk"));
        model.clone().save_file(&path).unwrap();
        let pixels: Vec<f32> = (0..4 * 784)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let run = |device: &Device, m: &ae::models::Model| {
            let images = Tensor::<4>::from_data(
                burn::tensor::TensorData::new(pixels.clone(), [4, 1, 28, 28]),
                device,
            );
            let batch = ImageBatch {
                images,
                labels: Tensor::zeros([4], device),
            };
            let z = m.encode(batch.images.clone(), batch.labels.clone());
            let recon = m.reconstruct(batch.clone());
            let mut v: Vec<f32> = z.into_data().convert::<f32>().try_to_vec().unwrap();
            v.extend(
                recon
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
            if matches!(cfg, ModelConfig::Ae(_)) {
                v.extend(
                    m.forward(batch)
                        .loss
                        .into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap(),
                );
            }
            v
        };
        let expected = run(&reference, &model);
        for name in &backends {
            let device = device::parse(name).unwrap();
            let other = cfg
                .init(shape, &device)
                .load_record(burn::store::ModuleRecord::load(&path).unwrap());
            let got = run(&device, &other);
            let gap = rel_gap(&got, &expected);
            eprintln!(
                "{name}: largest relative gap to flex {gap:.2e} ({})",
                cfg.family()
            );
            assert!(
                gap < 1e-4,
                "{name} differs from flex by {gap} ({})",
                cfg.family()
            );
        }
    }
}
