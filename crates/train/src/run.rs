//! Training runs and the run folder.
//!
//! [`train`] writes `<out>/<experiment>/<run-id>/`:
//!
//! | file                    | content                                                        |
//! |-------------------------|----------------------------------------------------------------|
//! | `config.toml`           | resolved config (defaults, seed, device, version); rerunning it reproduces the run bit for bit on CPU |
//! | `metrics.csv`           | a row per epoch and split: `epoch,split,loss,recon,kl,beta_loss,active_units,collapsed_dims,posterior_collapse,kl_dim_0..` |
//! | `summary.json`          | final validation figures and run facts (a function of the config; written last) |
//! | `timing.json`           | wall time and samples/s of each training session                |
//! | `checkpoint/`           | burn-train checkpoints of the last two epochs (for `--resume`), written atomically |
//! | `model.bpk`             | final weights (burnpack)                                        |
//! | `reconstructions.png`   | validation images (odd rows) over their reconstructions (even rows) |
//! | `samples.png`           | 64 decodes of prior samples (models with a prior only)          |
//! | `traversal.png`         | each active latent (rows, by KL) swept over [−3, 3] around the first validation image |
//! | `train/`, `valid/`, `experiment.log` | burn-train's own logs                              |
//!
//! Results files are written atomically (temporary file + rename). A resumed run writes the
//! same files, byte for byte, as an uninterrupted one (see [`crate::loader`]).
use crate::checkpoint::AtomicCheckpointer;
use crate::loader::{EpochLoader, Split};
use crate::{
    ExperimentConfig, PlainRenderer, Trainable, device, save_grid, save_traversal, write_atomic,
};
use ae_core::Autoencoder;
use ae_data::ImageDataset;
use ae_metrics::{
    ActiveUnitsMetric, AeItem, CodebookFigure, CodebookMetric, CollapseAlarmMetric,
    CollapsedDimsMetric, EpochLog, EpochRow, EpochTracker, MeanMetric, Quantity, SplitKind,
};
use anyhow::{Context, bail};
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::prelude::*;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{Adaptor, Metric, Numeric};
use burn::train::{Interrupter, Learner, SupervisedTraining};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How training progress is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Display {
    /// burn-train's TUI when stdout is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always plain lines.
    Plain,
}

/// Options of a run that are not part of the experiment (they do not change the numbers).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Root of the run folders.
    pub out_dir: PathBuf,
    /// Device name overriding the config's (`flex`, `cuda:0`, ...).
    pub device: Option<String>,
    /// Run-folder name (default: UTC timestamp and seed).
    pub run_id: Option<String>,
    /// Progress display.
    pub display: Display,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("runs"),
            device: None,
            run_id: None,
            display: Display::Auto,
        }
    }
}

/// What a finished (or interrupted) run left behind.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The run folder.
    pub dir: PathBuf,
    /// `summary.json` as written (None when interrupted).
    pub summary: Option<serde_json::Value>,
    /// Whether training stopped early (Ctrl-C / `q` in the TUI); resume with `--resume`.
    pub interrupted: bool,
}

/// The Ctrl-C target: the interrupter of the run in progress.
static CURRENT: Mutex<Option<Interrupter>> = Mutex::new(None);

fn install_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let guard = CURRENT.lock().ok();
            match guard.as_ref().and_then(|g| g.as_ref()) {
                Some(i) if !i.should_stop() => {
                    eprintln!("\nCtrl-C: stopping after this batch (press again to abort)...");
                    i.stop(Some("Ctrl-C"));
                }
                _ => std::process::exit(130),
            }
        });
    });
}

/// The current UTC time as `YYYYmmdd-HHMMSS` (run and sweep ids).
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub use crate::checkpoint::last_checkpoint;

const COLUMNS: [&str; 7] = [
    "loss",
    "recon",
    "kl",
    "beta_loss",
    "active_units",
    "collapsed_dims",
    "posterior_collapse",
];
/// Extra columns of VQ models.
const CODEBOOK_COLUMNS: [&str; 3] = ["perplexity", "codes_used", "dead_codes"];

/// Renders the epoch log as `metrics.csv`.
pub fn metrics_csv(
    rows: &BTreeMap<(usize, SplitKind), EpochRow>,
    latent: usize,
    codebook: bool,
) -> String {
    let columns: Vec<&str> = COLUMNS
        .iter()
        .chain(if codebook { &CODEBOOK_COLUMNS[..] } else { &[] })
        .copied()
        .collect();
    // A VQ model has no KL, so no per-dimension KL columns.
    let latent = if codebook { 0 } else { latent };
    let mut s = String::from("epoch,split");
    for c in &columns {
        s.push(',');
        s.push_str(c);
    }
    for j in 0..latent {
        s.push_str(&format!(",kl_dim_{j}"));
    }
    s.push('\n');
    for ((epoch, split), row) in rows {
        s.push_str(&format!("{epoch},{}", split.as_str()));
        for c in &columns {
            s.push(',');
            if let Some(v) = row.values.get(*c) {
                s.push_str(&v.to_string());
            }
        }
        for j in 0..latent {
            s.push(',');
            if let Some(v) = row.kl_per_dim.get(j) {
                s.push_str(&v.to_string());
            }
        }
        s.push('\n');
    }
    s
}

/// Parses `metrics.csv` back (rows up to and including `max_epoch`), for resumed runs.
pub fn parse_metrics_csv(text: &str, max_epoch: usize) -> BTreeMap<(usize, SplitKind), EpochRow> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let mut rows = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(epoch), Some(split)) =
            (f.first().and_then(|e| e.parse::<usize>().ok()), f.get(1))
        else {
            continue;
        };
        let split = match *split {
            "train" => SplitKind::Train,
            "valid" => SplitKind::Valid,
            _ => continue,
        };
        if epoch > max_epoch {
            continue;
        }
        let mut row = EpochRow {
            epoch,
            ..Default::default()
        };
        for (name, v) in header.iter().zip(&f).skip(2) {
            let Ok(v) = v.parse::<f64>() else { continue };
            if name.starts_with("kl_dim_") {
                row.kl_per_dim.push(v);
            } else {
                row.values.insert(name.to_string(), v);
            }
        }
        rows.insert((epoch, split), row);
    }
    rows
}

type Training = SupervisedTraining<Trainable>;

fn add<Me>(st: Training, split: SplitKind, metric: Me) -> Training
where
    Me: Metric + Numeric + 'static,
    AeItem: Adaptor<Me::Input>,
{
    match split {
        SplitKind::Train => st.metric_train_numeric(metric),
        SplitKind::Valid => st.metric_valid_numeric(metric),
    }
}

fn register_metrics(
    mut st: Training,
    cfg: &ExperimentConfig,
    log: &EpochLog,
    first_epoch: usize,
) -> Training {
    let has_kl = cfg.model.capabilities().beta.is_some();
    for split in [SplitKind::Train, SplitKind::Valid] {
        let t = || EpochTracker::new(log.clone(), split, first_epoch);
        for q in [
            Quantity::NegElbo,
            Quantity::Recon,
            Quantity::Kl,
            Quantity::Objective,
        ] {
            st = add(st, split, MeanMetric::new(q, t()));
        }
        if !is_vq(cfg) {
            // Active units read a posterior mean; a VQ code map has none (see Codes used).
            st = add(
                st,
                split,
                ActiveUnitsMetric::new(cfg.diagnostics.active_unit_threshold, t()),
            );
        }
        if is_vq(cfg) {
            for f in [
                CodebookFigure::Perplexity,
                CodebookFigure::CodesUsed,
                CodebookFigure::DeadCodes,
            ] {
                st = add(st, split, CodebookMetric::new(f, t()));
            }
        }
        if has_kl {
            st = add(
                st,
                split,
                CollapsedDimsMetric::new(cfg.diagnostics.collapsed_dim_threshold, t()),
            );
            st = add(
                st,
                split,
                CollapseAlarmMetric::new(cfg.diagnostics.clone(), t()),
            );
        }
    }
    st
}

fn is_vq(cfg: &ExperimentConfig) -> bool {
    cfg.model.capabilities().codebook.is_some()
}

fn first_valid_batch(
    valid: &ImageDataset,
    cfg: &ExperimentConfig,
    n: usize,
    device: &Device,
) -> ae_core::ImageBatch {
    let items = (0..n.min(valid.len()))
        .map(|i| valid.get(i).expect("in range"))
        .collect();
    cfg.data.batcher().batch(items, device)
}

/// Trains `cfg` and writes a new run folder under `opts.out_dir`.
pub fn train(cfg: ExperimentConfig, opts: &RunOptions) -> anyhow::Result<RunOutcome> {
    let base = opts.out_dir.join(&cfg.name);
    let id = opts
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-s{}", utc_stamp(), cfg.seed));
    let dir = claim_folder(&base, &id)?;
    train_in(cfg, &dir, opts)
}

/// Creates and returns a new folder `base/id` (or `base/id-2`, `-3`, … when taken). Claimed
/// with `create_dir`, which fails if the folder exists, so two runs or sweeps started in the
/// same second get distinct folders, never one shared.
pub fn claim_folder(base: &Path, id: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(base)
        .with_context(|| format!("cannot create output folder {}", base.display()))?;
    let mut dir = base.join(id);
    let mut k = 2;
    loop {
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                dir = base.join(format!("{id}-{k}"));
                k += 1;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
}

/// Trains `cfg` into exactly `dir`, which must not hold a run yet. Sweeps use it: their run
/// folders have fixed names so that an interrupted sweep finds them again.
pub fn train_in(
    mut cfg: ExperimentConfig,
    dir: &Path,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    cfg.validate()?;
    cfg.check_shapes()?;
    if dir.join("config.toml").exists() {
        bail!("{} already holds a run; resume it instead", dir.display());
    }
    let device_name = opts
        .device
        .clone()
        .or(cfg.device.clone())
        .unwrap_or_else(|| device::default_name().to_string());
    let _ = device::parse(&device_name)?;
    cfg.device = Some(device_name);
    cfg.version = Some(env!("CARGO_PKG_VERSION").to_string());
    execute(cfg, dir.to_path_buf(), None, opts)
}

/// Continues the interrupted run in `dir` from its last checkpoint (its `config.toml` decides
/// everything; `opts.device` may move it to another backend).
pub fn resume(dir: &Path, opts: &RunOptions) -> anyhow::Result<RunOutcome> {
    let cfg_path = dir.join("config.toml");
    if !cfg_path.is_file() {
        bail!(
            "{} is not a run folder (no config.toml); pass the folder printed when the run started",
            dir.display()
        );
    }
    let mut cfg = ExperimentConfig::load(&cfg_path)?;
    if let Some(d) = &opts.device {
        cfg.device = Some(d.clone());
    }
    // summary.json is written last, only by a finished run (a sweep deletes the checkpoints
    // of its finished runs, so they cannot tell).
    if dir.join("summary.json").is_file() {
        let summary = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json"))?)?;
        println!("{} already finished; nothing to resume", dir.display());
        return Ok(RunOutcome {
            dir: dir.to_path_buf(),
            summary: Some(summary),
            interrupted: false,
        });
    }
    let last = last_checkpoint(dir);
    execute(cfg, dir.to_path_buf(), last, opts)
}

/// Appends this session's wall time to `timing.json`. Timings live apart from `summary.json`
/// so that the summary is a function of the config alone: a resumed run's summary is
/// byte-identical to the uninterrupted run's.
fn write_timing(
    dir: &Path,
    resumed_from: Option<usize>,
    epochs: usize,
    images: usize,
    seconds: f64,
) -> anyhow::Result<()> {
    let path = dir.join("timing.json");
    let mut sessions = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["sessions"].as_array().cloned())
        .unwrap_or_default();
    sessions.push(serde_json::json!({
        "resumed_from_epoch": resumed_from,
        "epochs": epochs,
        "train_seconds": seconds,
        "samples_per_second": (images * epochs) as f64 / seconds,
    }));
    let total: f64 = sessions
        .iter()
        .filter_map(|s| s["train_seconds"].as_f64())
        .sum();
    let timing = serde_json::json!({
        "train_seconds": total,
        "samples_per_second": (images * epochs) as f64 / seconds,
        "sessions": sessions,
    });
    write_atomic(&path, serde_json::to_string_pretty(&timing)?.as_bytes())?;
    Ok(())
}

fn execute(
    cfg: ExperimentConfig,
    dir: PathBuf,
    checkpoint: Option<usize>,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    let device_name = cfg.device.clone().expect("resolved above");
    let device = device::parse(&device_name)?;
    let shape = cfg.data.shape();
    let (train_ds, valid_ds) = cfg.data.load().context("cannot load the dataset")?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create run folder {}", dir.display()))?;
    let _lock = crate::lock::FolderLock::acquire(&dir, "run")?;
    write_atomic(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;
    println!(
        "run folder: {}\n  {} on {} ({} train / {} valid images), {} epochs, seed {}, device {device_name}",
        dir.display(),
        cfg.model.family(),
        cfg.data.name(),
        train_ds.len(),
        valid_ds.len(),
        cfg.epochs,
        cfg.seed
    );

    // Seed before anything random: the initial weights. Shuffling and noise are reseeded at
    // the start of every epoch from (seed, epoch) by the loaders, so that a resumed run sees
    // exactly the batches and noise of the uninterrupted one.
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let steps_per_epoch = train_ds.len().div_ceil(cfg.batch_size);
    let first_epoch = checkpoint.map_or(1, |n| n + 1);
    let loader = |data: &ImageDataset, split, device: &Device| {
        EpochLoader::new(
            data.clone(),
            cfg.data.batcher(),
            cfg.batch_size,
            cfg.num_workers,
            split,
            cfg.seed,
            first_epoch,
            device,
        )
    };
    let train_loader = loader(&train_ds, Split::Train, &ad);
    let valid_loader = loader(&valid_ds, Split::Valid, &device);

    let latent = cfg.model.latent_dim();
    let codebook = is_vq(&cfg);
    let csv_path = dir.join("metrics.csv");
    let previous = match (checkpoint, std::fs::read_to_string(&csv_path)) {
        (Some(n), Ok(text)) => parse_metrics_csv(&text, n),
        _ => BTreeMap::new(),
    };
    let log = EpochLog::new(
        previous,
        Some(Box::new(move |rows| {
            if let Err(e) = write_atomic(&csv_path, metrics_csv(rows, latent, codebook).as_bytes())
            {
                eprintln!("warning: cannot write metrics.csv: {e}");
            }
        })),
    );
    let checkpoints = dir.join("checkpoint");
    let mut training =
        SupervisedTraining::new(&dir, Arc::new(train_loader), Arc::new(valid_loader))
            .num_epochs(cfg.epochs)
            .with_custom_checkpointers(
                AtomicCheckpointer::new(&checkpoints, "model"),
                AtomicCheckpointer::new(&checkpoints, "optim"),
                AtomicCheckpointer::new(&checkpoints, "scheduler"),
            )
            .with_checkpointing_strategy(KeepLastNCheckpoints::new(2));
    training = register_metrics(training, &cfg, &log, first_epoch);
    let tui = opts.display == Display::Auto && std::io::stdout().is_terminal();
    if !tui {
        training = training.renderer(Box::new(PlainRenderer::new(cfg.name.clone())));
    }
    if let Some(n) = checkpoint {
        println!("resuming from the checkpoint of epoch {n}");
        training = training.checkpoint(n);
    }
    install_ctrl_c();
    *CURRENT.lock().expect("ctrl-c slot") = Some(training.interrupter());

    let model = Trainable::new(
        cfg.model.init(shape, &ad),
        cfg.kl_schedule,
        cfg.kl_penalty,
        checkpoint.unwrap_or(0) * steps_per_epoch,
        steps_per_epoch,
    )
    .stop_on_fault(training.interrupter());
    let fault = model.fault_watch();

    let started = Instant::now();
    let learner = Learner::new(
        model,
        crate::optim::optimizer(&cfg.optimizer, &device_name),
        cfg.optimizer.lr,
    );
    let result = training.launch(learner);
    let train_seconds = started.elapsed().as_secs_f64();
    *CURRENT.lock().expect("ctrl-c slot") = None;
    if let Some(f) = fault.fault() {
        let kept = match last_checkpoint(&dir) {
            Some(n) => format!(
                "the last good checkpoint (epoch {n}) is kept: fix config.toml in the run folder, \
                 then train --resume {}",
                dir.display()
            ),
            None => "there is no checkpoint yet (the fault came in the first epoch)".into(),
        };
        bail!(
            "training stopped at a non-finite value, {f}. Nothing of this epoch was saved; \
             {kept}. Usual remedies: lower optimizer.lr (now {}), set optimizer.grad_clip_norm \
             (e.g. 1.0), check the likelihood against the data (Bernoulli needs pixels in \
             [0, 1], Poisson and negative binomial need counts)",
            cfg.optimizer.lr
        );
    }
    if let Some(err) = result.error {
        bail!("training failed: {err}");
    }
    let completed = log.last(SplitKind::Valid).map_or(0, |r| r.epoch);
    if let Some(bad) = log
        .rows()
        .values()
        .find(|r| r.values.get("loss").is_some_and(|v| !v.is_finite()))
    {
        bail!(
            "training diverged: the loss is not finite at epoch {} (see {}/metrics.csv); lower \
             optimizer.lr, set optimizer.grad_clip_norm, or check the likelihood against the data",
            bad.epoch,
            dir.display()
        );
    }
    if result.interrupted.is_some() || completed < cfg.epochs {
        println!(
            "interrupted after epoch {}; continue with: train --resume {}",
            last_checkpoint(&dir).unwrap_or(0),
            dir.display()
        );
        return Ok(RunOutcome {
            dir,
            summary: None,
            interrupted: true,
        });
    }

    let model = result.model.model;
    let tmp = dir.join(".model.bpk.tmp");
    model
        .clone()
        .save_file(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot save weights: {e:?}"))?;
    std::fs::rename(&tmp, dir.join("model.bpk"))?;

    // Figures: fixed images, fixed noise, so reruns give identical PNGs.
    device.seed(cfg.seed.wrapping_add(0x5EED));
    let batch = first_valid_batch(&valid_ds, &cfg, 10, &device);
    let recon = model.reconstruct(batch.clone());
    save_grid(
        Tensor::cat(vec![batch.images, recon], 0),
        10,
        2,
        &dir.join("reconstructions.png"),
    )?;
    // Conditional models: one row of 8 samples per class.
    let n = model.num_classes().map_or(64, |k| 8 * k);
    if let Some(samples) = model.sample(n, &device) {
        save_grid(samples, 8, 2, &dir.join("samples.png"))?;
    }

    let valid = log.last(SplitKind::Valid).unwrap_or_default();
    if cfg.model.has_prior() {
        // Active dimensions, most informative first.
        let mut dims: Vec<usize> = (0..valid.kl_per_dim.len())
            .filter(|&j| valid.kl_per_dim[j] >= cfg.diagnostics.collapsed_dim_threshold)
            .collect();
        dims.sort_by(|&a, &b| valid.kl_per_dim[b].total_cmp(&valid.kl_per_dim[a]));
        dims.truncate(10);
        if !dims.is_empty() {
            let image = first_valid_batch(&valid_ds, &cfg, 1, &device);
            save_traversal(&model, image, &dims, 9, &dir.join("traversal.png"))?;
        }
    }
    let train_row = log
        .rows()
        .get(&(completed, SplitKind::Train))
        .cloned()
        .unwrap_or_default();
    let epochs_run = cfg.epochs + 1 - first_epoch;
    let get = |r: &EpochRow, k: &str| r.values.get(k).copied();
    let collapse = get(&valid, "posterior_collapse").unwrap_or(0.0) > 0.5;
    let mut summary = serde_json::json!({
        "experiment": cfg.name,
        "family": cfg.model.family(),
        "dataset": cfg.data.name(),
        "units": "nats per sample (sums over pixels and latent dims, mean over samples)",
        "loss": get(&valid, "loss"),
        "recon": get(&valid, "recon"),
        "kl": get(&valid, "kl").unwrap_or(0.0),
        "beta_loss": get(&valid, "beta_loss").or(get(&valid, "loss")),
        "beta": cfg.model.beta(),
        "active_units": get(&valid, "active_units"),
        "collapsed_dims": get(&valid, "collapsed_dims"),
        "latent_dim": latent,
        "kl_per_dim": if valid.kl_per_dim.is_empty() { vec![0.0; latent] } else { valid.kl_per_dim.clone() },
        "posterior_collapse": collapse,
        "train_loss": get(&train_row, "loss"),
        "epochs": completed,
        "train_images": train_ds.len(),
        "valid_images": valid_ds.len(),
        "device": device_name,
        "seed": cfg.seed,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if codebook {
        let pixels = cfg.data.shape().numel() as f64;
        summary["units"] =
            "recon = squared error summed over pixels (no KL: discrete codes)".into();
        summary["mse_per_pixel"] = get(&valid, "recon").map(|r| r / pixels).into();
        for c in CODEBOOK_COLUMNS {
            summary[c] = get(&valid, c).into();
        }
        println!(
            "codebook: perplexity {:.1}, {} of {} codes used; MSE/pixel {:.5}",
            get(&valid, "perplexity").unwrap_or(f64::NAN),
            get(&valid, "codes_used").unwrap_or(f64::NAN),
            cfg.model.capabilities().codebook.unwrap_or(0),
            get(&valid, "recon").unwrap_or(f64::NAN) / pixels
        );
    }
    write_timing(&dir, checkpoint, epochs_run, train_ds.len(), train_seconds)?;
    // Last: summary.json marks the run finished (a sweep and `--resume` read it so).
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    // A VQ model has codes, not a posterior mean: no active units (its codebook line above).
    let units = get(&valid, "active_units")
        .map(|a| format!(", {a} active units of {latent}"))
        .unwrap_or_default();
    println!(
        "done in {train_seconds:.1}s: valid loss {:.3} (recon {:.3} + KL {:.3}) per sample{units}",
        get(&valid, "loss").unwrap_or(f64::NAN),
        get(&valid, "recon").unwrap_or(f64::NAN),
        get(&valid, "kl").unwrap_or(0.0),
    );
    if collapse {
        eprintln!(
            "\n!!! POSTERIOR COLLAPSE: the validation KL is ~0 in every latent dimension; the decoder \
             ignores z.\n!!! Remedies: lower beta, KL annealing, free bits, a weaker decoder. \
             See {}/metrics.csv (kl_dim_*).\n",
            dir.display()
        );
    }
    println!("results in {}", dir.display());
    Ok(RunOutcome {
        dir,
        summary: Some(summary),
        interrupted: false,
    })
}
