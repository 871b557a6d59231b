use crate::util::{options, small_mnist_vae, training_lock};
use ae::train::run::train;
use ae::train::sweep::{SweepConfig, run_point, run_sweep};
use std::path::Path;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn small_sweep(betas: &[f64]) -> SweepConfig {
    let mut base = small_mnist_vae();
    base.data.set_train_limit(Some(1_500));
    base.device = Some("flex".into());
    SweepConfig {
        name: "beta_sweep".into(),
        betas: betas.to_vec(),
        seeds: 1,
        jobs: 1,
        base,
    }
}

fn run(cfg: &SweepConfig, dir: &Path) -> ae::train::sweep::SweepOutcome {
    let opts = options(dir);
    run_sweep(cfg, dir, &|todo| {
        for &p in todo {
            run_point(cfg, dir, p, &opts)?;
        }
        Ok(())
    })
    .unwrap()
}

#[test]
fn a_sweep_traces_the_rate_distortion_trade_off_and_beta_1_is_a_plain_run() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let cfg = small_sweep(&[0.25, 1.0, 16.0]);
    let dir = out.path().join("sweep");
    let outcome = run(&cfg, &dir);
    for f in [
        "sweep.toml",
        "results.csv",
        "results.md",
        "report.md",
        "rd_curve.png",
        "active_units.png",
        "kl_heatmap.png",
    ] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    for b in ["0.25", "1", "16"] {
        assert!(dir.join(format!("beta_{b}_seed1/summary.json")).is_file());
    }
    let r = &outcome.rows;
    // Physics: the rate falls and the distortion rises as β grows; fewer active units.
    assert!(r[0].rate > r[1].rate && r[1].rate > r[2].rate, "{r:?}");
    assert!(r[0].distortion < r[2].distortion, "{r:?}");
    assert!(r[2].active_units <= r[0].active_units);
    assert!(read(&dir.join("results.csv")).starts_with(
        "beta,seed,rate,distortion,elbo,active_units,collapsed_dims,posterior_collapse,\
         mig,factor_vae,sap,dci,mutual_information,total_correlation,kl_dim_0"
    ));
    // Every run was evaluated: MI and TC from its eval.json; MNIST has no factors, so the
    // disentanglement columns stay empty rather than zero.
    for row in r {
        let (mi, tc) = (
            row.mutual_information.unwrap(),
            row.total_correlation.unwrap(),
        );
        assert!(
            mi > 0.0 && mi <= 500f64.ln() + 1e-9 && tc.is_finite(),
            "{row:?}"
        );
        assert!(
            row.mig.is_none() && row.factor_vae.is_none() && row.sap.is_none() && row.dci.is_none()
        );
    }
    // I(x; z) falls as β rises (the rate it is part of falls).
    assert!(r[0].mutual_information > r[2].mutual_information, "{r:?}");
    assert!(
        read(&dir.join("results.csv"))
            .lines()
            .nth(1)
            .unwrap()
            .contains(",0,,,")
    );
    assert!(
        read(&dir.join("report.md")).contains("Knee of the R–D curve")
            || read(&dir.join("report.md")).contains("too few")
    );

    // β = 1 of the sweep is the plain `train` run of the same config and seed, to the digit.
    let plain = train(cfg.base.clone(), &options(out.path())).unwrap().dir;
    assert_eq!(
        read(&plain.join("metrics.csv")),
        read(&dir.join("beta_1_seed1/metrics.csv"))
    );
}

#[test]
fn a_sweep_is_reproducible_and_resumes_by_skipping_finished_runs() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let cfg = small_sweep(&[0.5, 4.0]);
    let (a, b) = (out.path().join("a"), out.path().join("b"));
    run(&cfg, &a);
    run(&cfg, &b);
    let results = read(&a.join("results.csv"));
    assert_eq!(
        results,
        read(&b.join("results.csv")),
        "same config, same results"
    );

    // Lose one run and the results; the resumed sweep redoes only that run and gets the same table.
    let kept = a.join("beta_0.5_seed1/summary.json");
    let kept_before = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::remove_dir_all(a.join("beta_4_seed1")).unwrap();
    std::fs::remove_file(a.join("results.csv")).unwrap();
    let saved = SweepConfig::load(&a.join("sweep.toml")).unwrap();
    run(&saved, &a);
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        kept_before,
        "finished run untouched"
    );
    assert_eq!(read(&a.join("results.csv")), results);
}

#[test]
fn bad_sweep_configs_are_refused_before_training_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sweep.toml");
    let good =
        read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/experiments/beta_sweep.toml"));
    std::fs::write(&p, &good).unwrap();
    SweepConfig::load(&p).unwrap();
    // The shipped conv variant of the study loads too.
    let conv =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/experiments/beta_sweep_conv.toml");
    SweepConfig::load(&conv).unwrap();
    for (bad, needle) in [
        (
            good.replace("seeds = 1", "seeds = 1\nbetass = [1.0]"),
            "betass",
        ),
        (
            good.replace(
                "betas = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]",
                "betas = [1.0, -2.0]",
            ),
            "betas[1]",
        ),
        (
            good.replace(
                "betas = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]",
                "betas = []",
            ),
            "betas",
        ),
        (good.replace("epochs = 4", "epochs = 0"), "base.epochs"),
        (
            good.replace("warmup_steps = 400", "warmup_steps = 400\nwarmup = 3"),
            "warmup",
        ),
    ] {
        assert_ne!(bad, good, "the replacement must apply for {needle}");
        std::fs::write(&p, bad).unwrap();
        let err = format!("{:#}", SweepConfig::load(&p).unwrap_err());
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    }
}

#[test]
fn a_sweep_folder_in_use_by_another_live_process_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sweep");
    std::fs::create_dir_all(&dir).unwrap();
    // A live process holds the folder (here: a child that sleeps).
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(dir.join(".lock"), other.id().to_string()).unwrap();
    let cfg = small_sweep(&[1.0]);
    let err = run_sweep(&cfg, &dir, &|_| panic!("must not train"))
        .map(|_| ())
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("in use by process") && msg.contains(&other.id().to_string()),
        "{msg}"
    );
    assert!(!dir.join("sweep.toml").exists(), "nothing written");
    // Once that process is gone, its stale lock is taken over.
    other.kill().unwrap();
    other.wait().unwrap();
    let _g = training_lock();
    run(&cfg, &dir);
    assert!(dir.join("results.csv").is_file());
    assert!(!dir.join(".lock").exists(), "released at the end");
}
