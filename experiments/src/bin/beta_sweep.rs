//! `beta_sweep`: the rate–distortion study. One β-VAE per (β, seed), then results, plots and a
//! report in `<out>/<name>/<sweep-id>/`.
//!
//! ```text
//! cargo run --release -p experiments --bin beta_sweep                    # the default study
//! cargo run --release -p experiments --bin beta_sweep -- --betas 0.5,1,4 --epochs 2
//! cargo run --release -p experiments --bin beta_sweep -- --resume runs/beta_sweep/<sweep-id>
//! ```
use ae_train::run::{Display, RunOptions};
use ae_train::sweep::{SweepConfig, SweepPoint, run_point, run_sweep, train_points};
use ae_train::{data::DataConfig, device};
use anyhow::{Context, bail};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// mimalloc, as in the `bench` binary, so that `bench` measures the allocator `train` and
/// `beta_sweep` run with (Burn allocates and frees a few MB of tensors per step).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_SWEEP: &str = include_str!("../../../assets/experiments/beta_sweep.toml");

/// β-VAE rate–distortion sweep with results table, plots and report.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Sweep config (TOML). Default: assets/experiments/beta_sweep.toml (built in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Comma-separated β values, e.g. 0.5,1,4.
    #[arg(long, value_delimiter = ',')]
    betas: Option<Vec<f64>>,
    /// Epochs per run.
    #[arg(long)]
    epochs: Option<usize>,
    /// Training images per run (seeded subset).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Dataset: dsprites or mnist.
    #[arg(long)]
    dataset: Option<String>,
    /// MNIST directory (for --dataset mnist).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Backend: flex, ndarray, wgpu[:N], cuda[:N].
    // The brackets are `--help` text, not links (escaping them would show in `--help`).
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long)]
    device: Option<String>,
    /// Root of the output folders.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Seeds per β.
    #[arg(long)]
    seeds: Option<usize>,
    /// Runs in parallel on CPU (separate processes).
    #[arg(long)]
    jobs: Option<usize>,
    /// Continue the sweep in this folder: finished runs are skipped, an unfinished one resumes
    /// from its checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Plain log lines even in a terminal.
    #[arg(long)]
    plain: bool,
    /// Internal: train one point of the sweep in this folder (used for --jobs > 1).
    #[arg(long, hide = true, requires_all = ["beta", "seed"])]
    worker: Option<PathBuf>,
    /// Internal: β of the worker's point.
    #[arg(long, hide = true)]
    beta: Option<f64>,
    /// Internal: seed of the worker's point.
    #[arg(long, hide = true)]
    seed: Option<u64>,
}

fn load_sweep(args: &Args) -> anyhow::Result<(SweepConfig, PathBuf)> {
    if let Some(dir) = &args.resume {
        let path = dir.join("sweep.toml");
        if !path.is_file() {
            bail!("{} is not a sweep folder (no sweep.toml)", dir.display());
        }
        let cfg = SweepConfig::load(&path)?;
        return Ok((cfg, dir.clone()));
    }
    let mut cfg: SweepConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read sweep config {}", path.display()))?;
            SweepConfig::from_toml(&text, &path.display().to_string())?
        }
        None => SweepConfig::from_toml(DEFAULT_SWEEP, "(built-in)")?,
    };
    if let Some(b) = &args.betas {
        cfg.betas = b.clone();
    }
    if let Some(e) = args.epochs {
        cfg.base.epochs = e;
    }
    if let Some(s) = args.seeds {
        cfg.seeds = s;
    }
    if let Some(j) = args.jobs {
        cfg.jobs = j;
    }
    match args.dataset.as_deref() {
        None => {}
        Some("dsprites") if cfg.base.data.name() == "dsprites" => {}
        Some("dsprites") => cfg.base.data = DataConfig::dsprites(None),
        Some("mnist") if cfg.base.data.name() == "mnist" => {}
        Some("mnist") => cfg.base.data = DataConfig::mnist(None),
        Some(other) => bail!("--dataset {other}: use dsprites or mnist"),
    }
    if args.train_limit.is_some() {
        cfg.base.data.set_train_limit(args.train_limit);
    }
    if let Some(d) = &args.data_dir {
        cfg.base.data.set_data_dir(d.clone());
    }
    device::choose(&mut cfg.base.device, args.device.as_deref())?;
    cfg.validate().context("invalid sweep")?;
    let stamp = ae_train::run::utc_stamp();
    let dir = ae_train::run::claim_folder(&args.out.join(&cfg.name), &stamp)?;
    Ok((cfg, dir))
}

/// The command that trains point `p` of the sweep in `dir`: this binary in worker mode.
fn worker(exe: &Path, dir: &Path, p: SweepPoint) -> Command {
    let mut command = Command::new(exe);
    command.arg("--worker").arg(dir).args([
        "--beta",
        &p.beta.to_string(),
        "--seed",
        &p.seed.to_string(),
    ]);
    command
}

fn run(args: Args) -> anyhow::Result<()> {
    let display = if args.plain {
        Display::Plain
    } else {
        Display::Auto
    };
    if let Some(dir) = &args.worker {
        let cfg = SweepConfig::load(&dir.join("sweep.toml"))?;
        let p = SweepPoint {
            beta: args.beta.expect("clap requires it"),
            seed: args.seed.expect("clap requires it"),
        };
        let opts = RunOptions {
            out_dir: dir.clone(),
            device: None,
            run_id: None,
            display: Display::Plain,
        };
        return run_point(&cfg, dir, p, &opts);
    }
    let (cfg, dir) = load_sweep(&args)?;
    let opts = RunOptions {
        out_dir: dir.clone(),
        device: args.device.clone(),
        run_id: None,
        display,
    };
    println!("sweep folder: {}", dir.display());
    let started = Instant::now();
    let exe = std::env::current_exe()?;
    let outcome = run_sweep(&cfg, &dir, &|todo| {
        train_points(&cfg, &dir, &opts, todo, &|p| worker(&exe, &dir, p))
    })?;
    println!(
        "\n{}",
        std::fs::read_to_string(outcome.dir.join("results.md"))?
    );
    println!(
        "sweep finished in {:.0} s: {}",
        started.elapsed().as_secs_f64(),
        outcome.dir.display()
    );
    println!("read {}/report.md and rd_curve.png", outcome.dir.display());
    Ok(())
}

fn main() {
    // The training loop's thread joins the CPU kernels' pool (see ae_train::threads).
    ae_train::threads::run_main(|| run(Args::parse()));
}
