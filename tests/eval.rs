//! `evaluate` on run folders: IWAE bounds, ELBO terms, KL decomposition, families without a
//! posterior, binarised data, and the files it writes (and does not touch).
use crate::util::{mnist_dir, options, shipped, small_mnist_vae, training_lock};
use ae::train::evaluation::{EvalRequest, evaluate_run, k_list};
use ae::train::run::train;
use std::path::Path;

fn request(ks: &[usize], limit: usize) -> EvalRequest {
    EvalRequest {
        ks: ks.to_vec(),
        limit: Some(limit),
        ..EvalRequest::default()
    }
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_trained_vae_is_evaluated_with_iwae_bounds_and_a_kl_decomposition() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    cfg.epochs = 2;
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let training_files = ["metrics.csv", "summary.json", "config.toml", "model.bpk"];
    let before: Vec<Vec<u8>> = training_files.iter().map(|f| bytes(&dir.join(f))).collect();

    let r = evaluate_run(&dir, &request(&[1, 10, 100, 500], 200)).unwrap();
    assert_eq!(r.images, 200);
    let iwae = r.iwae.as_ref().unwrap();
    let nll: Vec<f64> = iwae.iter().map(|e| e.nll).collect();
    // The bound tightens as k grows, by more than its standard error.
    for w in iwae.windows(2) {
        assert!(w[1].nll < w[0].nll, "{nll:?}");
    }
    assert!(nll[0] - nll[3] > 3.0 * iwae[0].std_err / 10.0, "{iwae:?}");
    // NLL_1 (Monte Carlo KL) and the closed-form-KL ELBO estimate the same −ELBO.
    assert!(
        (nll[0] - r.elbo.neg_elbo.unwrap()).abs() < 2.0 + 3.0 * iwae[0].std_err,
        "NLL_1 {} vs −ELBO {}",
        nll[0],
        r.elbo.neg_elbo.unwrap()
    );
    assert!((iwae[0].bits_per_dim - nll[0] / (784.0 * 2f64.ln())).abs() < 1e-9);
    // The decomposition: its sum estimates the same KL as the closed form; I(x; z) ≤ log N.
    let d = r.decomposition.as_ref().unwrap();
    assert_eq!(d.points, 200);
    assert!(d.mutual_information > 0.0 && d.mutual_information <= 200f64.ln() + 1e-9);
    assert!(
        (d.kl - r.elbo.kl.unwrap()).abs() < 0.15 * r.elbo.kl.unwrap(),
        "MC KL {} vs closed form {}",
        d.kl,
        r.elbo.kl.unwrap()
    );
    assert_eq!(r.kl_per_dim.as_ref().unwrap().len(), 20);
    // MNIST has no ground-truth factors: the only thing that does not apply.
    assert_eq!(r.not_applicable.len(), 1, "{:?}", r.not_applicable);
    assert!(r.not_applicable[0].starts_with("disentanglement:"));
    assert!(r.disentanglement.is_none());

    // Files: eval.json and eval.md written, the training files untouched.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("eval.json")).unwrap()).unwrap();
    assert_eq!(json["iwae"][3]["k"], 500);
    assert_eq!(json["split"], "valid");
    let md = std::fs::read_to_string(dir.join("eval.md")).unwrap();
    assert!(md.contains("Importance-weighted bound") && md.contains("total correlation"));
    // interpolation.png: 4 pairs × (linear, spherical) rows of 10 steps of 28·2 px cells.
    let png = bytes(&dir.join("interpolation.png"));
    let dim = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    assert_eq!((dim(16), dim(20)), (10 * 58 + 2, 8 * 58 + 2));
    let after: Vec<Vec<u8>> = training_files.iter().map(|f| bytes(&dir.join(f))).collect();
    assert!(before == after, "training files changed");
    // Rerunning with the same seed reproduces the report.
    let again = evaluate_run(&dir, &request(&[1, 10, 100, 500], 200)).unwrap();
    assert_eq!(again, r);
    // On the run's whole validation split, the evaluation's active units and closed-form KL
    // agree with the training-time metrics (separate code: burn-train metrics over batches).
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let whole = evaluate_run(
        &dir,
        &EvalRequest {
            metrics: vec!["elbo".into()],
            ..EvalRequest::default()
        },
    )
    .unwrap();
    assert_eq!(whole.images, 500);
    assert_eq!(
        whole.active_units.map(|a| a as f64),
        summary["active_units"].as_f64()
    );
    let kl = summary["kl"].as_f64().unwrap();
    assert!(
        (whole.elbo.kl.unwrap() - kl).abs() < 1e-3 * kl,
        "{} vs {kl}",
        whole.elbo.kl.unwrap()
    );
    assert!(whole.iwae.is_none() && whole.decomposition.is_none());
}

#[test]
fn families_without_a_posterior_say_what_does_not_apply() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = shipped("ae_mnist");
    cfg.epochs = 1;
    cfg.data = small_mnist_vae().data;
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let r = evaluate_run(&dir, &request(&[1, 10], 100)).unwrap();
    assert!(r.iwae.is_none() && r.decomposition.is_none() && r.kl_per_dim.is_none());
    assert!(r.disentanglement.is_none());
    assert!(
        r.not_applicable
            .iter()
            .any(|n| n.starts_with("iwae:") && n.contains("no posterior")),
        "{:?}",
        r.not_applicable
    );
    assert!(r.elbo.recon > 0.0 && r.elbo.neg_elbo.is_none() && r.elbo.kl.is_none());
    let json = std::fs::read_to_string(dir.join("eval.json")).unwrap();
    assert!(
        !json.contains("\"iwae\""),
        "no zeros printed for what does not apply"
    );
    assert!(
        std::fs::read_to_string(dir.join("eval.md"))
            .unwrap()
            .contains("Not applicable")
    );
}

#[test]
fn bad_evaluation_requests_get_clear_errors() {
    let out = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        evaluate_run(out.path(), &EvalRequest::default()).unwrap_err()
    );
    assert!(err.contains("not a run folder"), "{err}");
    std::fs::write(out.path().join("config.toml"), "x").unwrap();
    let err = format!(
        "{:#}",
        evaluate_run(out.path(), &EvalRequest::default()).unwrap_err()
    );
    assert!(
        err.contains("model.bpk") && err.contains("--resume"),
        "{err}"
    );
    assert!(k_list(&[0]).is_err());
    assert_eq!(k_list(&[5000]).unwrap(), vec![1, 10, 100, 1000, 5000]);
    assert_eq!(k_list(&[1]).unwrap(), vec![1]);
    assert_eq!(k_list(&[3, 7]).unwrap(), vec![3, 7]);
}

#[test]
fn dynamic_binarisation_resamples_training_images_and_fixes_test_images() {
    use ae::data::{Binarize, DataConfig};
    use burn::data::dataset::Dataset;
    let cfg = DataConfig::Mnist {
        data_dir: Some(mnist_dir()),
        train_limit: None,
        valid_limit: None,
        split_seed: 0,
        binarize: Binarize::Dynamic,
        exclude_classes: Vec::new(),
    };
    let (train, valid) = cfg.load().unwrap();
    let binary = |p: &[u8]| p.iter().all(|&v| v == 0 || v == 255);
    let (a, b) = (valid.get(3).unwrap(), valid.get(3).unwrap());
    assert!(
        binary(&a.pixels) && a.pixels == b.pixels,
        "test images fixed"
    );
    // Only the training loader passes a seed per epoch (ae_train::loader): the validation
    // images above are drawn once, from the data set's own seed.
    assert!(train.resampled());
    let (e1, e2) = (
        train.get_resampled(3, 1).unwrap(),
        train.get_resampled(3, 2).unwrap(),
    );
    assert!(
        binary(&e1.pixels) && e1.pixels != e2.pixels,
        "a new draw per epoch"
    );
    // In expectation the binary image is the grey one: mean intensity within 2 %.
    let grey = DataConfig::mnist(Some(mnist_dir())).load().unwrap().0;
    let mean = |p: &[u8]| p.iter().map(|&v| v as f64).sum::<f64>() / p.len() as f64;
    let (mut g, mut s) = (0.0, 0.0);
    for i in 0..200 {
        g += mean(&grey.get(i).unwrap().pixels);
        s += mean(&train.get_resampled(i, 9).unwrap().pixels);
    }
    assert!((s / g - 1.0).abs() < 0.02, "binary {s} vs grey {g}");
}

#[test]
fn a_dsprites_run_gets_disentanglement_scores() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let text = r#"
        name = "vae_dsprites_tiny"
        seed = 2
        epochs = 1
        batch_size = 64
        [model]
        family = "vae"
        latent_dim = 4
        architecture = { kind = "mlp", hidden = [64] }
        [data]
        dataset = "dsprites"
        train_limit = 512
        valid_size = 256
    "#;
    let cfg = ae::train::ExperimentConfig::from_str_any(text).unwrap();
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let r = evaluate_run(
        &dir,
        &EvalRequest {
            metrics: vec!["elbo".into(), "disentanglement".into()],
            ..EvalRequest::default()
        },
    )
    .unwrap();
    let d = r.disentanglement.as_ref().expect("dSprites has factors");
    assert!(
        (0.0..=1.0).contains(&d.mig) && (0.0..=1.0).contains(&d.factor_vae),
        "{d:?}"
    );
    assert_eq!(
        d.config.mig_points, 10_000,
        "disentanglement_lib's settings"
    );
    assert_eq!(d.mig_top_mi.len(), 5);
    assert!(r.not_applicable.is_empty(), "{:?}", r.not_applicable);
    let md = std::fs::read_to_string(dir.join("eval.md")).unwrap();
    assert!(
        md.contains("MIG") && md.contains("FactorVAE") && md.contains("SAP") && md.contains("DCI")
    );
}

#[test]
fn a_run_trained_without_a_digit_scores_it_as_an_anomaly() {
    use burn::data::dataset::Dataset;
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    if let ae::data::DataConfig::Mnist {
        exclude_classes, ..
    } = &mut cfg.data
    {
        *exclude_classes = vec![9];
    }
    let (train_split, valid_split) = cfg.data.load().unwrap();
    assert!((0..train_split.len()).all(|i| train_split.get(i).unwrap().label != 9));
    let nines = (0..valid_split.len())
        .filter(|&i| valid_split.get(i).unwrap().label == 9)
        .count();
    assert!(nines > 20, "the validation split keeps the held-out digit");
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let r = evaluate_run(
        &dir,
        &EvalRequest {
            metrics: vec!["elbo".into(), "iwae".into()],
            ks: vec![10],
            anomaly: Some(Vec::new()), // the run's exclude_classes
            ..EvalRequest::default()
        },
    )
    .unwrap();
    let a = r.anomaly.as_ref().unwrap();
    assert_eq!((a.classes.clone(), a.positives), (vec![9], nines));
    assert_eq!(a.positives + a.negatives, 500);
    let names: Vec<&str> = a.scores.iter().map(|s| s.score.as_str()).collect();
    assert_eq!(names, ["neg_elbo", "nll_k10", "recon"]);
    for s in &a.scores {
        assert!(
            (0.0..=1.0).contains(&s.auroc) && (0.0..=1.0).contains(&s.auprc),
            "{s:?}"
        );
    }
    assert!(dir.join("roc.png").is_file());
    // Without held-out classes in the run, --anomaly needs them named.
    let plain = train(small_mnist_vae(), &options(out.path())).unwrap().dir;
    let err = format!(
        "{:#}",
        evaluate_run(
            &plain,
            &EvalRequest {
                anomaly: Some(Vec::new()),
                ..EvalRequest::default()
            }
        )
        .unwrap_err()
    );
    assert!(err.contains("--anomaly 9"), "{err}");
}

#[test]
fn spherical_interpolation_keeps_the_norm_and_ends_at_both_codes() {
    use ae::train::evaluation::slerp;
    let (a, b) = ([3.0f32, 0.0, 4.0], [0.0f32, 5.0, 0.0]);
    assert_eq!(slerp(&a, &b, 0.0), a.to_vec());
    let end = slerp(&a, &b, 1.0);
    assert!(
        end.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
        "{end:?}"
    );
    let mid = slerp(&a, &b, 0.5);
    let norm = mid.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 5.0).abs() < 1e-4,
        "{mid:?}: slerp of equal norms keeps the norm"
    );
    // The linear midpoint is shorter: the reason to interpolate spherically in a Gaussian prior.
    let lin: f32 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| ((x + y) / 2.0).powi(2))
        .sum::<f32>()
        .sqrt();
    assert!(lin < 4.0);
}
