use crate::util::{
    assert_run_files, options, small_mnist_vae, tensorboard_matches_metrics_csv, training_lock,
};
use ae::models::ModelConfig;
use ae::train::ExperimentConfig;
use ae::train::run::{resume, train};
use std::path::Path;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Loads `model.bpk` of a run and encodes a fixed batch.
fn encode_with_saved_weights(dir: &Path) -> Vec<f32> {
    use ae::core::Autoencoder;
    use burn::prelude::*;
    let cfg = ExperimentConfig::load(&dir.join("config.toml")).unwrap();
    let device = Device::flex();
    let model = crate::util::saved_model(dir, &cfg, &device);
    let x = Tensor::<4>::ones([2, 1, 28, 28], &device) * 0.3;
    model
        .encode(x, Tensor::zeros([2], &device))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&read(&dir.join("summary.json"))).unwrap()
}

#[test]
fn one_epoch_of_mnist_through_the_learner_writes_the_run_folder() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let run = train(small_mnist_vae(), &options(out.path())).unwrap();
    let dir = &run.dir;
    assert!(dir.starts_with(out.path().join("vae_mnist")));
    assert_run_files(dir);
    assert!(dir.join("checkpoint/model-1.bpk").is_file());
    let png = std::fs::read(dir.join("samples.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let s = summary(dir);
    for key in [
        "loss",
        "recon",
        "kl",
        "active_units",
        "latent_dim",
        "kl_per_dim",
        "posterior_collapse",
        "epochs",
        "device",
        "seed",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}");
    }
    // Timings vary from run to run, so they live in timing.json, not in the summary.
    assert!(s.get("train_seconds").is_none());
    let timing: serde_json::Value = serde_json::from_str(&read(&dir.join("timing.json"))).unwrap();
    assert!(timing["train_seconds"].as_f64().unwrap() > 0.0, "{timing}");
    assert!(
        timing["samples_per_second"].as_f64().unwrap() > 0.0,
        "{timing}"
    );
    let (loss, kl) = (s["loss"].as_f64().unwrap(), s["kl"].as_f64().unwrap());
    // The KL and the per-dimension KL are accumulated by different metrics: their sums agree.
    let per_dim: f64 = s["kl_per_dim"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!(
        (per_dim - kl).abs() < 1e-3 * kl.max(1.0),
        "Σ KL_j {per_dim} vs KL {kl}"
    );
    // The summary is the last validation row of metrics.csv.
    let last = read(&dir.join("metrics.csv"))
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert_eq!(
        last.split(',').nth(2).unwrap().parse::<f64>().unwrap(),
        loss
    );
    // One epoch on 2,000 images: well below the 543 nats of a uniform Bernoulli, well above 80.
    assert!(loss > 100.0 && loss < 300.0, "loss {loss}");
    assert_eq!(s["kl_per_dim"].as_array().unwrap().len(), 20);
    assert_eq!(s["posterior_collapse"], false);
    assert_eq!(s["device"], "flex");

    let csv = read(&dir.join("metrics.csv"));
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with(
        "epoch,split,loss,recon,kl,beta_loss,active_units,collapsed_dims,posterior_collapse,kl_dim_0"
    ));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].starts_with("1,train,") && rows[1].starts_with("1,valid,"));
    assert_eq!(rows[1].split(',').count(), 9 + 20);
    // Both rows, every column (7 figures and 20 per-dimension KLs each) are in TensorBoard.
    assert_eq!(tensorboard_matches_metrics_csv(dir), 2 * (7 + 20));
}

#[test]
fn rerunning_a_saved_config_reproduces_the_run_bit_for_bit() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    cfg.data.set_train_limit(Some(1_000));
    let a = train(cfg, &options(out.path())).unwrap().dir;
    let saved = ExperimentConfig::load(&a.join("config.toml")).unwrap();
    let b = train(saved, &options(out.path())).unwrap().dir;
    assert_ne!(a, b);
    assert_eq!(read(&a.join("metrics.csv")), read(&b.join("metrics.csv")));
    // Burnpack files carry random parameter ids, so compare the weights through the model.
    assert_eq!(encode_with_saved_weights(&a), encode_with_saved_weights(&b));
    assert_eq!(
        std::fs::read(a.join("samples.png")).unwrap(),
        std::fs::read(b.join("samples.png")).unwrap()
    );
}

#[test]
fn resume_continues_from_the_last_checkpoint_and_keeps_earlier_rows() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    cfg.data.set_train_limit(Some(1_000));
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let epoch1 = read(&dir.join("metrics.csv"));
    // Pretend the run had been asked for 2 epochs and was killed after the first.
    let text = read(&dir.join("config.toml")).replace("epochs = 1", "epochs = 2");
    std::fs::write(dir.join("config.toml"), text).unwrap();
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let run = resume(&dir, &options(out.path())).unwrap();
    assert!(!run.interrupted);
    let csv = read(&dir.join("metrics.csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    // Epoch-1 rows survive the resume untouched.
    for (old, new) in epoch1.lines().zip(&lines) {
        assert_eq!(old, *new);
    }
    assert!(lines[3].starts_with("2,train") && lines[4].starts_with("2,valid"));
    assert_eq!(summary(&dir)["epochs"], 2);
    // The resumed session appended its own event files; together they hold each epoch once.
    assert_eq!(tensorboard_matches_metrics_csv(&dir), 4 * (7 + 20));
    let files = std::fs::read_dir(dir.join("tensorboard/valid"))
        .unwrap()
        .count();
    assert_eq!(files, 2);
    assert!(dir.join("checkpoint/model-2.bpk").is_file());
    // A finished run resumes to a no-op.
    assert!(
        resume(&dir, &options(out.path()))
            .unwrap()
            .summary
            .is_some()
    );
}

#[test]
fn a_huge_beta_forces_posterior_collapse_and_the_alarm_fires() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    if let ModelConfig::Vae(v) = &mut cfg.model {
        v.beta = 500.0;
    }
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let s = summary(&dir);
    assert_eq!(s["posterior_collapse"], true, "{s}");
    assert_eq!(s["collapsed_dims"], 20.0);
    assert!(s["kl"].as_f64().unwrap() < 0.1);
    assert!(
        read(&dir.join("metrics.csv"))
            .lines()
            .last()
            .unwrap()
            .split(',')
            .nth(8)
            == Some("1")
    );
}

#[test]
fn a_plain_autoencoder_on_dsprites_trains_and_has_no_prior_samples() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let text = r#"
        name = "ae_dsprites_tiny"
        seed = 3
        epochs = 1
        batch_size = 32
        [model]
        family = "ae"
        latent_dim = 4
        architecture = { kind = "mlp", hidden = [64] }
        [data]
        dataset = "dsprites"
        train_limit = 256
        valid_size = 128
    "#;
    let cfg = ExperimentConfig::from_str_any(text).unwrap();
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    assert!(dir.join("reconstructions.png").is_file());
    assert!(
        !dir.join("samples.png").exists(),
        "an AE has no prior to sample"
    );
    let s = summary(&dir);
    assert_eq!(s["family"], "ae");
    assert_eq!(s["kl"], 0.0);
    assert_eq!(s["latent_dim"], 4);
}
