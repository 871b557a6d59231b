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
//! | `tensorboard/`          | TensorBoard event files: per-epoch scalars of both splits, the image grids, the hparams session ([`crate::tensorboard`]) |
//! | `train/`, `valid/`, `experiment.log` | burn-train's own logs                              |
//!
//! Results files are written atomically (temporary file + rename). A resumed run writes the
//! same files, byte for byte, as an uninterrupted one (see [`crate::loader`]).
use crate::checkpoint::AtomicCheckpointer;
use crate::loader::{EpochLoader, Split};
use crate::results::{CODEBOOK_COLUMNS, metrics_csv, parse_metrics_csv};
use crate::tensorboard::RunBoard;
use crate::{
    ExperimentConfig, PlainRenderer, Trainable, device, save_grid, save_traversal, write_atomic,
};
use ae_core::Autoencoder;
use ae_data::ImageDataset;
use ae_metrics::{
    ActiveUnitsMetric, AeItem, CodebookFigure, CodebookMetric, CollapseAlarmMetric,
    CollapsedDimsMetric, EpochLog, EpochRow, EpochTracker, MeanMetric, Quantity, SplitKind,
};
use ae_models::Model;
use anyhow::{Context, bail};
use burn::data::dataset::Dataset;
use burn::module::Module;
use burn::prelude::*;
use burn::train::checkpoint::KeepLastNCheckpoints;
use burn::train::metric::{Adaptor, Metric, Numeric};
use burn::train::{ExecutionStrategy, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining};
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
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub use crate::checkpoint::last_checkpoint;

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
        if !has_codebook(cfg) {
            // Active units read a posterior mean; a VQ code map has none (see Codes used).
            st = add(
                st,
                split,
                ActiveUnitsMetric::new(cfg.diagnostics.active_unit_threshold, t()),
            );
        }
        if has_codebook(cfg) {
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

fn has_codebook(cfg: &ExperimentConfig) -> bool {
    cfg.model.capabilities().codebook.is_some()
}

fn first_valid_batch(
    valid: &ImageDataset,
    cfg: &ExperimentConfig,
    n: usize,
    device: &Device,
) -> ae_core::ImageBatch {
    let batcher = cfg.data.batcher();
    let batch = batcher.batches(valid, n, n, device).next();
    batch.expect("a validation set is never empty")
}

/// Trains `cfg` and writes a new run folder under `opts.out_dir`.
pub fn train(cfg: ExperimentConfig, opts: &RunOptions) -> anyhow::Result<RunOutcome> {
    let base = opts.out_dir.join(&cfg.name);
    let id = opts
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}-s{}", utc_stamp(), cfg.seed));
    let dir = claim_folder(&base, &id)?;
    let outcome = train_in(cfg, &dir, opts);
    // A run that failed before writing anything (e.g. data that passed validation but not
    // loading) leaves no empty folder behind.
    if outcome.is_err() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(&dir);
    }
    outcome
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
        .or(cfg.devices.first().cloned())
        .unwrap_or_else(|| device::default_name().to_string());
    let _ = device::parse(&device_name)?;
    // A single device given on the command line replaces a device list.
    if cfg.devices.first() != Some(&device_name) {
        cfg.devices.clear();
    }
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
        // A single device given on the command line replaces a device list.
        if cfg.devices.first() != Some(d) {
            cfg.devices.clear();
        }
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

/// Trains a run whose config is resolved (device and version set) into `dir`, from the
/// start or, with `checkpoint`, from that epoch's checkpoint. The stages in order: load the
/// data, open the run folder, learn, save the artefacts, summarise, report.
fn execute(
    cfg: ExperimentConfig,
    dir: PathBuf,
    checkpoint: Option<usize>,
    opts: &RunOptions,
) -> anyhow::Result<RunOutcome> {
    let run = Run::new(cfg, dir, checkpoint)?;
    let data = run.load_data()?;
    let _lock = run.open_folder(&data)?;
    let learned = run.learn(&data, opts);
    if learned.is_err() {
        run.board(|b| Ok(b.end_session(false)?));
    }
    let Some(learned) = learned? else {
        return Ok(RunOutcome {
            dir: run.dir,
            summary: None,
            interrupted: true,
        });
    };
    run.save_artefacts(&learned, &data.valid)?;
    let summary = run.summary(&learned, &data);
    run.write_summary(&learned, &data, &summary)?;
    run.board(|b| Ok(b.end_session(true)?));
    run.report(&learned);
    Ok(RunOutcome {
        dir: run.dir,
        summary: Some(summary),
        interrupted: false,
    })
}

/// A run being trained: what every stage of [`execute`] reads.
struct Run {
    cfg: ExperimentConfig,
    dir: PathBuf,
    device: Device,
    /// The device as named in `config.toml`.
    device_name: String,
    /// Epoch of the checkpoint resumed from (None: a fresh run).
    checkpoint: Option<usize>,
    /// This session's TensorBoard writers (None until the folder is open, or after a write
    /// failed: TensorBoard logging never stops a run).
    board: Arc<Mutex<Option<RunBoard>>>,
}

/// The data stage's output.
struct RunData {
    train: ImageDataset,
    valid: ImageDataset,
}

/// The learner stage's output: a finished training.
struct Learned {
    /// The trained model.
    model: Model,
    /// Every epoch's metrics (also in `metrics.csv`).
    log: EpochLog,
    /// The last epoch trained.
    completed: usize,
    /// Wall time of this session's training, seconds.
    seconds: f64,
}

impl Learned {
    /// The last validation row.
    fn valid(&self) -> EpochRow {
        self.log.last(SplitKind::Valid).unwrap_or_default()
    }

    /// The validation figure `k` of the last epoch.
    fn valid_figure(&self, k: &str) -> Option<f64> {
        self.valid().values.get(k).copied()
    }
}

impl Run {
    fn new(cfg: ExperimentConfig, dir: PathBuf, checkpoint: Option<usize>) -> anyhow::Result<Self> {
        let device_name = cfg.device.clone().expect("resolved above");
        let device = device::parse(&device_name)?;
        Ok(Self {
            cfg,
            dir,
            device,
            device_name,
            checkpoint,
            board: Arc::default(),
        })
    }

    /// Runs `f` on the TensorBoard writers, if any; a failure is a warning and ends the
    /// TensorBoard logging of this session.
    fn board(&self, f: impl FnOnce(&mut RunBoard) -> anyhow::Result<()>) {
        with_board(&self.board, f);
    }

    /// The first epoch this session trains.
    fn first_epoch(&self) -> usize {
        self.checkpoint.map_or(1, |n| n + 1)
    }

    /// Data stage: the training and validation sets.
    fn load_data(&self) -> anyhow::Result<RunData> {
        let (train, valid) = self.cfg.data.load().context("cannot load the dataset")?;
        Ok(RunData { train, valid })
    }

    /// Creates and locks the run folder, writes `config.toml`, says what is about to run.
    fn open_folder(&self, data: &RunData) -> anyhow::Result<crate::lock::FolderLock> {
        let (cfg, dir) = (&self.cfg, &self.dir);
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create run folder {}", dir.display()))?;
        let lock = crate::lock::FolderLock::acquire(dir, "run")?;
        write_atomic(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;
        match RunBoard::open(dir, self.first_epoch()) {
            Ok(board) => *self.board.lock().expect("board") = Some(board),
            Err(e) => eprintln!("warning: no TensorBoard logs for this run: {e}"),
        }
        if self.checkpoint.is_none() {
            let doc: toml::Table = toml::from_str(&cfg.to_toml()).expect("config round-trips");
            self.board(|b| Ok(b.start_session(crate::tensorboard::hparams_of(&doc))?));
        }
        println!(
            "run folder: {}\n  {} on {} ({} train / {} valid images), {} epochs, seed {}, device {}",
            dir.display(),
            cfg.model.family(),
            cfg.data.name(),
            data.train.len(),
            data.valid.len(),
            cfg.epochs,
            cfg.seed,
            self.device_name
        );
        Ok(lock)
    }

    /// The epoch log: the rows of `metrics.csv` up to the checkpoint resumed from, and a sink
    /// that rewrites `metrics.csv` after every epoch.
    fn epoch_log(&self) -> EpochLog {
        let latent = self.cfg.model.latent_dim();
        let codebook = has_codebook(&self.cfg);
        let csv_path = self.dir.join("metrics.csv");
        let previous = match (self.checkpoint, std::fs::read_to_string(&csv_path)) {
            (Some(n), Ok(text)) => parse_metrics_csv(&text, n),
            _ => BTreeMap::new(),
        };
        let board = self.board.clone();
        EpochLog::new(
            previous,
            Some(Box::new(move |rows| {
                if let Err(e) =
                    write_atomic(&csv_path, metrics_csv(rows, latent, codebook).as_bytes())
                {
                    eprintln!("warning: cannot write metrics.csv: {e}");
                }
                with_board(&board, |b| Ok(b.log_rows(rows)?));
            })),
        )
    }

    /// burn-train's supervised training: loaders, atomic checkpoints, metrics, display, and
    /// the checkpoint to resume from. `ad` is the autodiff device.
    fn training(&self, data: &RunData, ad: &Device, log: &EpochLog, opts: &RunOptions) -> Training {
        let (cfg, dir) = (&self.cfg, &self.dir);
        let first_epoch = self.first_epoch();
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
        let train_loader = loader(&data.train, Split::Train, ad);
        let valid_loader = loader(&data.valid, Split::Valid, &self.device);
        let checkpoints = dir.join("checkpoint");
        let mut training =
            SupervisedTraining::new(dir, Arc::new(train_loader), Arc::new(valid_loader))
                .num_epochs(cfg.epochs)
                .with_custom_checkpointers(
                    AtomicCheckpointer::new(&checkpoints, "model"),
                    AtomicCheckpointer::new(&checkpoints, "optim"),
                    AtomicCheckpointer::new(&checkpoints, "scheduler"),
                )
                .with_checkpointing_strategy(KeepLastNCheckpoints::new(2));
        training = register_metrics(training, cfg, log, first_epoch);
        let tui = opts.display == Display::Auto && std::io::stdout().is_terminal();
        if !tui {
            training = training.renderer(Box::new(PlainRenderer::new(cfg.name.clone())));
        }
        if let Some(n) = self.checkpoint {
            println!("resuming from the checkpoint of epoch {n}");
            training = training.checkpoint(n);
        }
        if cfg.devices.len() > 1 {
            // Data-parallel: one batch per device per step, gradients summed on the first.
            let devices = cfg
                .devices
                .iter()
                .map(|d| device::parse(d).expect("validated with the config"))
                .collect();
            training = training.with_training_strategy(
                ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice).into(),
            );
        }
        training
    }

    /// Learner stage: trains from the initial weights (or the checkpoint). None when the run
    /// was interrupted (resumable); an error when training failed or diverged.
    fn learn(&self, data: &RunData, opts: &RunOptions) -> anyhow::Result<Option<Learned>> {
        let cfg = &self.cfg;
        // Seed before anything random: the initial weights. Shuffling and noise are reseeded
        // at the start of every epoch from (seed, epoch) by the loaders, so that a resumed run
        // sees exactly the batches and noise of the uninterrupted one.
        self.device.seed(cfg.seed);
        let ad = self.device.clone().autodiff();
        let steps_per_epoch = data.train.len().div_ceil(cfg.batch_size);
        let log = self.epoch_log();
        let training = self.training(data, &ad, &log, opts);
        install_ctrl_c();
        *CURRENT.lock().expect("ctrl-c slot") = Some(training.interrupter());

        let model = Trainable::new(
            cfg.model.init(cfg.data.shape(), &ad),
            cfg.kl_schedule,
            cfg.kl_penalty,
            self.checkpoint.unwrap_or(0) * steps_per_epoch,
            steps_per_epoch,
        )
        .stop_on_fault(training.interrupter());
        let fault = model.fault_watch();

        let started = Instant::now();
        let learner = Learner::new(
            model,
            crate::optim::optimizer(&cfg.optimizer, &self.device_name),
            cfg.optimizer.lr,
        );
        let result = training.launch(learner);
        let seconds = started.elapsed().as_secs_f64();
        *CURRENT.lock().expect("ctrl-c slot") = None;
        if let Some(f) = fault.fault() {
            return Err(self.fault_error(f));
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
                self.dir.display()
            );
        }
        if result.interrupted.is_some() || completed < cfg.epochs {
            println!(
                "interrupted after epoch {}; continue with: train --resume {}",
                last_checkpoint(&self.dir).unwrap_or(0),
                self.dir.display()
            );
            return Ok(None);
        }
        Ok(Some(Learned {
            model: result.model.model,
            log,
            completed,
            seconds,
        }))
    }

    /// The error for a non-finite loss or gradient met in training, with what to do next.
    fn fault_error(&self, f: crate::NumericalFault) -> anyhow::Error {
        let dir = &self.dir;
        let kept = match last_checkpoint(dir) {
            Some(n) => format!(
                "the last good checkpoint (epoch {n}) is kept: fix config.toml in the run folder, \
                 then train --resume {}",
                dir.display()
            ),
            None => "there is no checkpoint yet (the fault came in the first epoch)".into(),
        };
        anyhow::anyhow!(
            "training stopped at a non-finite value, {f}. Nothing of this epoch was saved; \
             {kept}. Usual remedies: lower optimizer.lr (now {}), set optimizer.grad_clip_norm \
             (e.g. 1.0), check the likelihood against the data (Bernoulli needs pixels in \
             [0, 1], Poisson and negative binomial need counts)",
            self.cfg.optimizer.lr
        )
    }

    /// Artefacts stage: `model.bpk` and the figures (reconstructions, samples, traversal).
    fn save_artefacts(&self, learned: &Learned, valid_ds: &ImageDataset) -> anyhow::Result<()> {
        let (cfg, dir, device) = (&self.cfg, &self.dir, &self.device);
        let model = &learned.model;
        let tmp = dir.join(".model.bpk.tmp");
        model
            .clone()
            .save_file(&tmp)
            .map_err(|e| anyhow::anyhow!("cannot save weights: {e:?}"))?;
        std::fs::rename(&tmp, dir.join("model.bpk"))?;

        // Figures: fixed images, fixed noise, so reruns give identical PNGs.
        device.seed(cfg.seed.wrapping_add(0x5EED));
        let batch = first_valid_batch(valid_ds, cfg, 10, device);
        let recon = model.reconstruct(batch.clone());
        save_grid(
            Tensor::cat(vec![batch.images, recon], 0),
            10,
            2,
            &dir.join("reconstructions.png"),
        )?;
        // Conditional models: one row of 8 samples per class.
        let n = model.num_classes().map_or(64, |k| 8 * k);
        if let Some(samples) = model.sample(n, device) {
            save_grid(samples, 8, 2, &dir.join("samples.png"))?;
        }
        let step = learned.completed;
        for name in ["reconstructions", "samples"] {
            let png = dir.join(format!("{name}.png"));
            if png.is_file() {
                self.board(|b| b.image(&format!("images/{name}"), step, &png));
            }
        }

        let valid = learned.valid();
        if cfg.model.capabilities().beta.is_some() {
            // Active dimensions (by their KL), most informative first.
            let mut dims: Vec<usize> = (0..valid.kl_per_dim.len())
                .filter(|&j| valid.kl_per_dim[j] >= cfg.diagnostics.collapsed_dim_threshold)
                .collect();
            dims.sort_by(|&a, &b| valid.kl_per_dim[b].total_cmp(&valid.kl_per_dim[a]));
            dims.truncate(10);
            if !dims.is_empty() {
                let image = first_valid_batch(valid_ds, cfg, 1, device);
                save_traversal(model, image, &dims, 9, &dir.join("traversal.png"))?;
                let png = dir.join("traversal.png");
                self.board(|b| b.image("images/traversal", step, &png));
            }
        }
        Ok(())
    }

    /// Summary stage: `summary.json`'s content (a function of the config alone).
    fn summary(&self, learned: &Learned, data: &RunData) -> serde_json::Value {
        let cfg = &self.cfg;
        let latent = cfg.model.latent_dim();
        let valid = learned.valid();
        let train_row = learned
            .log
            .rows()
            .get(&(learned.completed, SplitKind::Train))
            .cloned()
            .unwrap_or_default();
        let get = |r: &EpochRow, k: &str| r.values.get(k).copied();
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
            "posterior_collapse": collapsed(&valid),
            "train_loss": get(&train_row, "loss"),
            "epochs": learned.completed,
            "train_images": data.train.len(),
            "valid_images": data.valid.len(),
            "device": self.device_name,
            "seed": cfg.seed,
            "version": env!("CARGO_PKG_VERSION"),
        });
        if has_codebook(cfg) {
            let pixels = cfg.data.shape().numel() as f64;
            summary["units"] =
                "recon = squared error summed over pixels (no KL: discrete codes)".into();
            summary["mse_per_pixel"] = get(&valid, "recon").map(|r| r / pixels).into();
            for c in CODEBOOK_COLUMNS {
                summary[c] = get(&valid, c).into();
            }
        }
        summary
    }

    /// Writes `timing.json`, then `summary.json`, last: it marks the run finished (a sweep and
    /// `--resume` read it so). The summary goes out only once every other file is written.
    fn write_summary(
        &self,
        learned: &Learned,
        data: &RunData,
        summary: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let cfg = &self.cfg;
        let epochs_run = cfg.epochs + 1 - self.first_epoch();
        write_timing(
            &self.dir,
            self.checkpoint,
            epochs_run,
            data.train.len(),
            learned.seconds,
        )?;
        write_atomic(
            &self.dir.join("summary.json"),
            serde_json::to_string_pretty(summary)?.as_bytes(),
        )?;
        Ok(())
    }

    /// Report stage: the validation figures (and the codebook's, for a VQ model) and, loudly,
    /// a posterior collapse.
    fn report(&self, learned: &Learned) {
        let cfg = &self.cfg;
        if has_codebook(cfg) {
            let pixels = cfg.data.shape().numel() as f64;
            println!(
                "codebook: perplexity {:.1}, {} of {} codes used; MSE/pixel {:.5}",
                learned.valid_figure("perplexity").unwrap_or(f64::NAN),
                learned.valid_figure("codes_used").unwrap_or(f64::NAN),
                cfg.model.capabilities().codebook.unwrap_or(0),
                learned.valid_figure("recon").unwrap_or(f64::NAN) / pixels
            );
        }
        let get = |k| learned.valid_figure(k);
        // A VQ model has codes, not a posterior mean: no active units (its codebook line above).
        let units = get("active_units")
            .map(|a| format!(", {a} active units of {}", cfg.model.latent_dim()))
            .unwrap_or_default();
        println!(
            "done in {:.1}s: valid loss {:.3} (recon {:.3} + KL {:.3}) per sample{units}",
            learned.seconds,
            get("loss").unwrap_or(f64::NAN),
            get("recon").unwrap_or(f64::NAN),
            get("kl").unwrap_or(0.0),
        );
        if collapsed(&learned.valid()) {
            eprintln!(
                "\n!!! POSTERIOR COLLAPSE: the validation KL is ~0 in every latent dimension; the decoder \
                 ignores z.\n!!! Remedies: lower beta, KL annealing, free bits, a weaker decoder. \
                 See {}/metrics.csv (kl_dim_*).\n",
                self.dir.display()
            );
        }
        println!("results in {}", self.dir.display());
    }
}

/// Runs `f` on the TensorBoard writers in `slot`, if any; a failure is a warning and closes
/// the slot.
fn with_board(slot: &Mutex<Option<RunBoard>>, f: impl FnOnce(&mut RunBoard) -> anyhow::Result<()>) {
    let mut slot = slot.lock().expect("tensorboard writers");
    if let Some(board) = slot.as_mut()
        && let Err(e) = f(board)
    {
        eprintln!("warning: TensorBoard logging stopped: {e:#}");
        *slot = None;
    }
}

/// Whether the collapse alarm fired on this (validation) row.
fn collapsed(valid: &EpochRow) -> bool {
    valid
        .values
        .get("posterior_collapse")
        .copied()
        .unwrap_or(0.0)
        > 0.5
}
