use crate::util::{mnist_dir, options, saved_model, shipped, small_mnist_vae, training_lock};
use ae::core::{Autoencoder, ImageBatch, ImageShape, Likelihood};
use ae::models::ae::AeConfig;
use ae::models::cvae::CvaeConfig;
use ae::models::nets::Architecture;
use ae::models::skip_vae::{SkipGate, SkipVaeConfig};
use ae::models::vae::VaeConfig;
use ae::models::vq_vae::{EmaConfig, VqVaeConfig};
use ae::models::wae::WaeConfig;
use ae::models::{Model, ModelConfig};
use ae::train::run::train;
use ae::train::{ExperimentConfig, KlPenalty};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use std::path::Path;

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// Every family and likelihood, small enough for a unit-sized check.
fn families() -> Vec<(&'static str, ModelConfig)> {
    let mlp = || Architecture::Mlp { hidden: vec![32] };
    let vae = |likelihood| VaeConfig {
        latent_dim: 3,
        architecture: mlp(),
        likelihood,
        beta: 2.0,
        prior_variances: None,
    };
    vec![
        (
            "ae",
            ModelConfig::Ae(AeConfig {
                latent_dim: 3,
                architecture: mlp(),
                likelihood: Likelihood::Bernoulli,
            }),
        ),
        (
            "vae bernoulli",
            ModelConfig::Vae(vae(Likelihood::Bernoulli)),
        ),
        (
            "vae gaussian",
            ModelConfig::Vae(vae(Likelihood::Gaussian { sigma: 0.3 })),
        ),
        (
            "vae learned sigma",
            ModelConfig::Vae(vae(Likelihood::GaussianLearnedSigma { min_sigma: 0.05 })),
        ),
        ("vae poisson", ModelConfig::Vae(vae(Likelihood::Poisson))),
        (
            "vae negative binomial",
            ModelConfig::Vae(vae(Likelihood::NegativeBinomial)),
        ),
        (
            "vae anisotropic prior",
            ModelConfig::Vae(VaeConfig {
                prior_variances: Some(vec![2.0, 1.0, 0.5]),
                ..vae(Likelihood::Bernoulli)
            }),
        ),
        (
            "vae conv",
            ModelConfig::Vae(VaeConfig {
                architecture: Architecture::Conv {
                    channels: vec![4, 8],
                    hidden: 16,
                },
                ..vae(Likelihood::Bernoulli)
            }),
        ),
        (
            "cvae",
            ModelConfig::Cvae(CvaeConfig {
                latent_dim: 3,
                num_classes: 3,
                architecture: mlp(),
                likelihood: Likelihood::Bernoulli,
                beta: 2.0,
            }),
        ),
        ("vq_vae", ModelConfig::VqVae(vq(None))),
        (
            "vq_vae ema",
            ModelConfig::VqVae(vq(Some(EmaConfig {
                decay: 0.9,
                restart_below: 0.5,
            }))),
        ),
        (
            "skip_vae plain",
            ModelConfig::SkipVae(skip(SkipGate::Plain)),
        ),
        ("skip_vae film", ModelConfig::SkipVae(skip(SkipGate::Film))),
        (
            "wae",
            ModelConfig::Wae(WaeConfig {
                latent_dim: 3,
                architecture: mlp(),
                likelihood: Likelihood::Bernoulli,
                lambda: 10.0,
            }),
        ),
    ]
}

/// A VQ-VAE for 8×8 images: two stride-2 convs, a 2×2 map of 3-dimensional codes.
fn vq(ema: Option<EmaConfig>) -> VqVaeConfig {
    VqVaeConfig {
        codebook_size: 16,
        code_dim: 3,
        channels: vec![4, 8],
        commitment: 0.25,
        ema,
    }
}

fn skip(gate: SkipGate) -> SkipVaeConfig {
    SkipVaeConfig {
        latent_dim: 3,
        channels: vec![4, 8],
        hidden: 16,
        gate,
        likelihood: Likelihood::Bernoulli,
        beta: 2.0,
    }
}

/// |gradient| summed over the first parameter a module visits: for every family that is the
/// encoder's first layer.
struct FirstParamGrad<'a> {
    grads: &'a GradientsParams,
    value: Option<Option<f32>>,
}

impl ModuleVisitor for FirstParamGrad<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.value.is_none() {
            self.value = Some(
                self.grads
                    .get::<D>(param.id)
                    .map(|g| g.abs().sum().into_scalar::<f32>()),
            );
        }
    }
}

fn fixed_batch(device: &Device, counts: bool) -> ImageBatch {
    device.seed(5);
    let u = Tensor::<4>::random(
        [6, 1, 8, 8],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        device,
    );
    let images = if counts {
        (u * 6.0).floor()
    } else {
        u.greater_elem(0.5).float()
    };
    ImageBatch {
        images,
        labels: Tensor::from_ints([0, 1, 2, 0, 1, 2], device),
    }
}

/// pythae's per-model checklist: builds from config, output shapes, loss decomposition, finite
/// loss, the reconstruction gradient reaching the encoder's first layer (through the
/// straight-through estimator for VQ-VAEs), save/load round trip of everything the model's
/// outputs depend on (an EMA codebook included), one optimiser step lowers the loss,
/// sample/reconstruct shapes.
#[test]
fn every_family_passes_the_model_checklist() {
    let _g = training_lock(); // it seeds the shared CPU RNG
    let shape = ImageShape::new(1, 8, 8);
    for (name, cfg) in families() {
        cfg.validate().unwrap();
        let counts = name.contains("poisson") || name.contains("binomial");
        let device = Device::flex().autodiff();
        device.seed(1);
        let model = cfg.init(shape, &device);
        let batch = fixed_batch(&device, counts);
        let out = model.forward(batch.clone());
        assert_eq!(out.loss.dims(), [6], "{name}");
        assert_eq!(out.kl_per_dim.dims(), [6, 3], "{name}");
        if let Some(c) = &out.codes {
            assert_eq!(
                c.indices.dims(),
                [6, 4],
                "{name}: one code per 2×2 position"
            );
        }
        assert_eq!(out.latent_mean.dims(), [6, 3], "{name}");
        assert_eq!(out.reconstruction().dims(), [6, 1, 8, 8], "{name}");
        let v = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        let (loss, recon, kl) = (
            v(out.loss.clone()),
            v(out.recon_loss.clone()),
            v(out.kl.clone()),
        );
        let caps = cfg.capabilities();
        for i in 0..6 {
            assert!(loss[i].is_finite(), "{name}: loss {loss:?}");
            if caps.beta.is_none() {
                assert_eq!(kl[i], 0.0, "{name}: a KL without a β");
            }
            if caps.codebook.is_some() {
                // recon + the (positive) codebook and commitment terms; no KL.
                assert!(loss[i] > recon[i], "{name}: {loss:?} {recon:?}");
                continue;
            }
            // loss = recon + β·KL + a batch-level term: λ·MMD² for the WAE, 0 for the others.
            let extra = loss[i] - (recon[i] + cfg.beta() as f32 * kl[i]);
            let first = loss[0] - (recon[0] + cfg.beta() as f32 * kl[0]);
            let expected = if name == "wae" { first } else { 0.0 };
            assert!(
                (extra - expected).abs() < 1e-3 * loss[i].abs().max(1.0),
                "{name}: loss ≠ recon + β·KL (+ batch term): {extra} vs {expected}"
            );
        }
        // The reconstruction term alone trains the encoder's first layer.
        let grads = GradientsParams::from_grads(out.recon_loss.clone().mean().backward(), &model);
        let mut first = FirstParamGrad {
            grads: &grads,
            value: None,
        };
        model.visit(&mut first);
        let g = first.value.flatten().unwrap_or(0.0);
        assert!(g > 0.0 && g.is_finite(), "{name}: encoder gradient {g}");
        // Sample / reconstruct shapes.
        assert_eq!(
            model.reconstruct(batch.clone()).dims(),
            [6, 1, 8, 8],
            "{name}"
        );
        match model.sample(4, &device) {
            Some(s) => assert_eq!(s.dims(), [4, 1, 8, 8], "{name}"),
            None => assert!(!caps.prior, "{name} has a prior but gave no samples"),
        }
        assert_eq!(model.num_classes(), caps.classes, "{name}: classes");
        // Save / load round trip: identical deterministic outputs.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bpk");
        model.clone().save_file(&path).unwrap();
        let fresh = |seed| {
            device.seed(seed);
            cfg.init(shape, &device)
        };
        let loaded = fresh(99).load_record(burn::store::ModuleRecord::load(&path).unwrap());
        // Encodings and reconstructions (through the codebook for VQ-VAEs) on the plain
        // device: no EMA update, no sampled noise.
        let plain = device.clone().inner();
        let images = Tensor::<4>::from_data(batch.images.to_data(), &plain);
        let labels = Tensor::<1, Int>::from_data(batch.labels.to_data(), &plain);
        let outputs = |m: &Model| {
            let m = m.valid();
            let mut v = m
                .encode(images.clone(), labels.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            v.extend(
                m.reconstruct(ImageBatch {
                    images: images.clone(),
                    labels: labels.clone(),
                })
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
            );
            v
        };
        assert_eq!(outputs(&model), outputs(&loaded), "{name}: round trip");
        assert_ne!(
            outputs(&model),
            outputs(&fresh(99)),
            "{name}: vacuous round trip"
        );
        if let (Model::VqVae(m), Model::VqVae(l), Model::VqVae(init)) = (&model, &loaded, &fresh(1))
        {
            // The codebook survives the round trip; with EMA it is a running state, not a
            // parameter, and the training forwards above have moved it from its initial value.
            let v = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(v(m.codebook()), v(l.codebook()), "{name}: codebook");
            if name.contains("ema") {
                assert_ne!(
                    v(m.codebook()),
                    v(init.codebook()),
                    "{name}: EMA never moved"
                );
            }
        }
        // One Adam step on a fixed batch lowers the loss (same noise before and after).
        let objective = |m: &ae::models::Model| {
            device.seed(11);
            m.forward(batch.clone()).objective().into_scalar::<f32>()
        };
        let before = objective(&model);
        device.seed(11);
        let grads = GradientsParams::from_grads(
            model.forward(batch.clone()).objective().backward(),
            &model,
        );
        let mut optim = AdamConfig::new().init();
        let stepped = optim.step(1e-3, model, grads);
        let after = objective(&stepped);
        assert!(after < before, "{name}: {before} -> {after}");
    }
}

#[test]
fn a_poisson_vae_recovers_the_number_of_generating_factors_as_active_units() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let cfg = ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/vae_counts_poisson.toml"),
    )
    .unwrap();
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let s = summary(&dir);
    assert_eq!(s["active_units"], 3.0, "{s}");
    assert_eq!(s["collapsed_dims"], 5.0, "{s}");
}

#[test]
fn free_bits_prevent_the_collapse_that_a_large_beta_causes() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    cfg.epochs = 2;
    if let ModelConfig::Vae(v) = &mut cfg.model {
        v.beta = 100.0;
    }
    let plain = summary(&train(cfg.clone(), &options(out.path())).unwrap().dir);
    assert_eq!(plain["posterior_collapse"], true, "{plain}");
    cfg.kl_penalty = KlPenalty::FreeBits { lambda: 0.5 };
    let free = summary(&train(cfg, &options(out.path())).unwrap().dir);
    assert_eq!(free["posterior_collapse"], false, "{free}");
    assert!(free["collapsed_dims"].as_f64().unwrap() < plain["collapsed_dims"].as_f64().unwrap());
    assert!(free["kl"].as_f64().unwrap() > 1.0, "{free}");
}

#[test]
fn a_cvae_generates_by_class_and_its_condition_changes_the_output() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/cvae_mnist.toml"),
    )
    .unwrap();
    // The whole fixture (2,000 images) for 5 epochs: 80 steps, as many as 2 epochs of the
    // 5,000 full-MNIST images this test used before the fixture.
    cfg.epochs = 5;
    cfg.data = ae::data::DataConfig::Mnist {
        data_dir: Some(mnist_dir()),
        train_limit: None,
        valid_limit: None,
        split_seed: 0,
        binarize: Default::default(),
        exclude_classes: Vec::new(),
    };
    let dir = train(cfg.clone(), &options(out.path())).unwrap().dir;
    // One row of 8 samples per digit: 10 rows of 28·2 px cells plus gutters.
    let png = std::fs::read(dir.join("samples.png")).unwrap();
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    assert_eq!(height, 10 * (56 + 2) + 2);
    // The model relies on its condition: the validation NLL with the true digit is clearly
    // lower than with a wrong one (same images, same noise).
    let device = Device::flex();
    let model = saved_model(&dir, &cfg, &device);
    let (_, valid) = cfg.data.load().unwrap();
    let items = (0..200)
        .map(|i| burn::data::dataset::Dataset::get(&valid, i).unwrap())
        .collect();
    let batch =
        burn::data::dataloader::batcher::Batcher::batch(&cfg.data.batcher(), items, &device);
    let nll = |labels: Tensor<1, Int>| -> f32 {
        device.seed(3);
        let b = ImageBatch {
            images: batch.images.clone(),
            labels,
        };
        model.forward(b).recon_loss.mean().into_scalar()
    };
    let right = nll(batch.labels.clone());
    let wrong = nll((batch.labels.clone() + 1).remainder_scalar(10));
    assert!(
        wrong > right + 5.0,
        "recon NLL with the true digit {right}, with a wrong one {wrong}"
    );
    // And the same z decoded as a 1 and as an 8 gives different images.
    let z = Tensor::<2>::random(
        [16, 20],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let ones = model.decode(z.clone(), Tensor::ones([16], &device));
    let eights = model.decode(z, Tensor::ones([16], &device) * 8);
    let diff: f32 = (ones - eights).abs().mean().into_scalar();
    assert!(diff > 0.01, "mean |x(z,1) − x(z,8)| = {diff}");
}

#[test]
fn a_vq_vae_reports_codebook_usage_and_refuses_to_sample_noise() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = shipped("vq_vae_mnist");
    cfg.epochs = 1;
    cfg.data = ae::data::DataConfig::Mnist {
        data_dir: Some(mnist_dir()),
        train_limit: Some(1_000),
        valid_limit: Some(300),
        split_seed: 0,
        binarize: Default::default(),
        exclude_classes: Vec::new(),
    };
    let dir = train(cfg.clone(), &options(out.path())).unwrap().dir;
    let s = summary(&dir);
    let p = s["perplexity"].as_f64().unwrap();
    let used = s["codes_used"].as_f64().unwrap();
    // Perplexity is exp(entropy) of the code histogram: at most the number of codes used.
    assert!(p >= 1.0 && p <= used, "{s}");
    // Count the codes ourselves: encode the validation images with the saved weights.
    let device = Device::flex();
    let model = saved_model(&dir, &cfg, &device);
    let (_, valid) = cfg.data.load().unwrap();
    let items = (0..burn::data::dataset::Dataset::len(&valid))
        .map(|i| burn::data::dataset::Dataset::get(&valid, i).unwrap())
        .collect();
    let batch =
        burn::data::dataloader::batcher::Batcher::batch(&cfg.data.batcher(), items, &device);
    let codes = model.forward(batch).codes.unwrap().indices;
    let codes: Vec<i64> = codes.into_data().convert::<i64>().try_to_vec().unwrap();
    let mut distinct = codes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len() as f64,
        used,
        "codes used over the validation set"
    );
    assert_eq!(s["dead_codes"].as_f64().unwrap(), 128.0 - used);
    assert!(s["mse_per_pixel"].as_f64().unwrap() < 0.2);
    assert!(!dir.join("samples.png").exists(), "no prior, no samples");
    assert!(dir.join("reconstructions.png").is_file());
    let header = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(
        header
            .lines()
            .next()
            .unwrap()
            .ends_with("perplexity,codes_used,dead_codes")
    );
}

/// An EMA VQ-VAE with 64 codes for 8×8 images whose three stride-2 convs make a 1×1 code map,
/// so that `encode` returns exactly the encoder outputs z_e the codebook is updated from (one
/// per image); with the fixed batch and those outputs.
fn ema_vq(restart_below: f64, device: &Device) -> (Model, ImageBatch, Vec<f32>) {
    device.seed(1);
    let cfg = ModelConfig::VqVae(VqVaeConfig {
        codebook_size: 64,
        channels: vec![4, 8, 8],
        ..vq(Some(EmaConfig {
            decay: 0.99,
            restart_below,
        }))
    });
    let model = cfg.init(ImageShape::new(1, 8, 8), device);
    let batch = fixed_batch(device, false);
    let z: Vec<f32> = model
        .encode(batch.images.clone(), batch.labels.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    (model, batch, z)
}

/// The codebook of a VQ-VAE, `[codes × 3]` row by row.
fn codebook_values(model: &Model) -> Vec<f32> {
    let Model::VqVae(vq) = model else {
        unreachable!()
    };
    vq.codebook().into_data().try_to_vec().unwrap()
}

#[test]
fn ema_dead_code_restarts_move_dead_codes_onto_encoder_outputs() {
    let _g = training_lock();
    let device = Device::flex().autodiff();
    let codes_on_encoder_outputs = |restart_below: f64| {
        let (model, batch, z) = ema_vq(restart_below, &device);
        let _ = model.forward(batch); // a training forward: EMA update and restarts
        let book = codebook_values(&model);
        (0..64)
            .filter(|&k| (0..6).any(|i| book[k * 3..k * 3 + 3] == z[i * 3..i * 3 + 3]))
            .count()
    };
    // 6 assignments after one batch: every code's EMA count (≤ 0.06) is below 0.5, so every
    // code restarts from an encoder output of the batch; without restarts none does.
    assert_eq!(codes_on_encoder_outputs(0.5), 64);
    assert_eq!(codes_on_encoder_outputs(0.0), 0);
}

/// Without restarts, every EMA code is the mean of the encoder outputs assigned to it, or its
/// initial value while none has been: none grows beyond the outputs' scale. (A code's EMA sum
/// used to start at its initial value while its count started at zero, which multiplied every
/// never-used code by about 10⁵.)
#[test]
fn ema_codes_stay_on_the_scale_of_the_encoder_outputs_without_restarts() {
    let _g = training_lock();
    let device = Device::flex().autodiff();
    let (model, batch, z) = ema_vq(0.0, &device);
    let initial = codebook_values(&model);
    for _ in 0..5 {
        let _ = model.forward(batch.clone()); // a training forward: EMA update
    }
    let book = codebook_values(&model);
    let scale = z.iter().chain(&initial).fold(0.0f32, |m, v| m.max(v.abs()));
    let largest = book.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        book.iter().all(|v| v.is_finite()) && largest <= 1.01 * scale,
        "largest code element {largest}, encoder outputs and initial codes up to {scale}"
    );
    let kept = (0..64)
        .filter(|&k| book[k * 3..k * 3 + 3] == initial[k * 3..k * 3 + 3])
        .count();
    assert!(
        kept > 0 && kept < 64,
        "{kept} codes kept their initial value: the unassigned ones, not all"
    );
}

#[test]
fn plain_skips_collapse_the_posterior_and_film_gated_skips_do_not() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let mut cfg = ExperimentConfig::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("assets/configs/{name}.toml")),
        )
        .unwrap();
        // The whole fixture for 4 epochs: 64 steps, as many as the 2 epochs of 4,000
        // full-MNIST images this test used before the fixture.
        cfg.epochs = 4;
        cfg.data = ae::data::DataConfig::Mnist {
            data_dir: Some(mnist_dir()),
            train_limit: None,
            valid_limit: None,
            split_seed: 0,
            binarize: Default::default(),
            exclude_classes: Vec::new(),
        };
        summary(&train(cfg, &options(out.path())).unwrap().dir)
    };
    let plain = run("skip_vae_mnist");
    assert_eq!(plain["posterior_collapse"], true, "{plain}");
    assert_eq!(plain["active_units"], 0.0, "{plain}");
    let film = run("skip_vae_mnist_film");
    assert_eq!(film["posterior_collapse"], false, "{film}");
    assert!(film["active_units"].as_f64().unwrap() >= 8.0, "{film}");
    assert!(film["kl"].as_f64().unwrap() > 1.0, "{film}");
}
