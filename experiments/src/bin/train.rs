//! `train`: one training run from a config file, into a run folder.
//!
//! ```text
//! cargo run --release -p experiments --bin train -- --config assets/configs/vae_mnist.toml \
//!     --data-dir ../shared/datasets/mnist
//! ```
use ae_train::run::{Display, RunOptions, resume, train};
use ae_train::{ExperimentConfig, device};
use clap::Parser;
use std::path::PathBuf;

/// mimalloc, as in the `bench` binary, so that `bench` measures the allocator `train` and
/// `beta_sweep` run with (Burn allocates and frees a few MB of tensors per step).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train an autoencoder (AE, VAE, β-VAE) and write a reproducible run folder.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Experiment config (TOML or JSON). Default: β-VAE (β = 4) on a built-in dSprites subset.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override the number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Train on a seeded subset of this many images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Directory with the four MNIST IDX files (else the config's data_dir, else $AE_MNIST_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Override the seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Backend: flex, ndarray, wgpu[:N], cuda[:N] (among those compiled in).
    // The brackets are `--help` text, not links (escaping them would show in `--help`).
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long, conflicts_with = "devices")]
    device: Option<String>,
    /// Several GPUs for this run, data-parallel, e.g. cuda:0,cuda:1 (the first is the main
    /// device; the effective batch is batch_size × devices). GPU backends only.
    #[arg(long, value_delimiter = ',', conflicts_with = "resume")]
    devices: Option<Vec<String>>,
    /// Root folder of the runs.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Continue the interrupted run in this run folder from its last checkpoint.
    #[arg(long, conflicts_with_all = ["config", "epochs", "train_limit", "seed"])]
    resume: Option<PathBuf>,
    /// Plain log lines even in a terminal (no TUI).
    #[arg(long)]
    plain: bool,
}

fn run(args: Args) -> anyhow::Result<()> {
    let opts = RunOptions {
        out_dir: args.out,
        device: args.device,
        run_id: None,
        display: if args.plain {
            Display::Plain
        } else {
            Display::Auto
        },
    };
    if let Some(dir) = args.resume {
        resume(&dir, &opts)?;
        return Ok(());
    }
    let mut cfg = match &args.config {
        Some(path) => ExperimentConfig::load(path)?,
        None => ExperimentConfig::beta_vae_dsprites(4.0),
    };
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(devices) = args.devices {
        cfg.device = devices.first().cloned();
        cfg.devices = devices;
    }
    if args.train_limit.is_some() {
        cfg.data.set_train_limit(args.train_limit);
    }
    if let Some(d) = args.data_dir {
        cfg.data.set_data_dir(d);
    }
    let outcome = train(cfg, &opts)?;
    if outcome.interrupted {
        std::process::exit(130);
    }
    Ok(())
}

fn main() {
    // The training loop's thread joins the CPU kernels' pool (see ae_train::threads).
    ae_train::threads::prepare_process();
    let args = Args::parse();
    if let Err(e) = run(args) {
        let msg = format!("{e:#}");
        eprintln!("error: {msg}");
        // Only useful when the device was the problem.
        if msg.contains("device") || msg.contains("backend") {
            eprintln!("(compiled backends: {})", device::compiled().join(", "));
        }
        std::process::exit(2);
    }
}
