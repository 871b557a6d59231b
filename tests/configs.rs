use ae::train::ExperimentConfig;
use std::path::Path;

#[test]
fn every_shipped_config_loads_validates_and_fits_its_data() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = ExperimentConfig::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            cfg.check_shapes().unwrap();
            // The count the memory check uses is the built model's.
            let model = cfg
                .model
                .init(cfg.data.shape(), &burn::prelude::Device::flex());
            assert_eq!(
                cfg.model.as_family().parameter_count(cfg.data.shape()),
                burn::module::Module::num_params(&model) as u128,
                "{}",
                path.display()
            );
            // Round trip through the resolved form a run folder stores.
            assert_eq!(ExperimentConfig::from_str_any(&cfg.to_toml()).unwrap(), cfg);
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn malformed_configs_get_one_clear_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/vae_mnist.toml"),
    )
    .unwrap();
    for (bad, needle) in [
        (good.replace("beta = 1.0", "beta = -2.0"), "model.beta"),
        (good.replace("epochs = 10", "epochs = 0"), "epochs"),
        (
            good.replace("batch_size = 128", "batch_size = 128\nbatchsize = 3"),
            "batchsize",
        ),
        (good.replace("family = \"vae\"", "family = \"gan\""), "gan"),
        ("name = ".to_string(), "malformed"),
    ] {
        std::fs::write(&p, bad).unwrap();
        let err = format!("{:#}", ExperimentConfig::load(&p).unwrap_err());
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(err.contains("bad.toml"), "the error names the file: {err}");
    }
    let err = format!(
        "{:#}",
        ExperimentConfig::load(&dir.path().join("missing.toml")).unwrap_err()
    );
    assert!(err.contains("missing.toml"));
}

/// A latent size three zeros too large (`4000000000`) is refused at once with the key named,
/// before the model is allocated (it used to grow to 12.5 GB in a minute and keep going).
#[test]
fn a_model_too_large_for_the_machine_is_refused_before_allocating() {
    let mut cfg = ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/vae_mnist.toml"),
    )
    .unwrap();
    if let ae::models::ModelConfig::Vae(m) = &mut cfg.model {
        m.latent_dim = 4_000_000_000;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let err = ae::train::run::train_in(
        cfg,
        &dir.path().join("run"),
        &crate::util::options(dir.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("model.latent_dim = 4000000000"), "{err}");
    assert!(err.contains("does not fit this machine's memory"), "{err}");
    assert!(start.elapsed().as_secs() < 5, "refused before allocating");
}
