//! `evaluate`: measures a trained run the way papers report results, and writes `eval.json`
//! and `eval.md` into its folder (never touching the training files).
//!
//! ```text
//! cargo run --release -p experiments --bin evaluate -- runs/vae_mnist/<run-id> \
//!     --data-dir ../shared/datasets/mnist
//! cargo run --release -p experiments --bin evaluate -- RUN_DIR --k 100 --metrics iwae
//! ```
use ae_train::evaluation::{EvalRequest, evaluate_run};
#[path = "../run_args.rs"]
mod run_args;

use clap::Parser;
use run_args::RunArgs;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Evaluate a trained run: importance-weighted NLL, ELBO terms, active units, KL decomposition.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The run to read.
    #[command(flatten)]
    run: RunArgs,
    /// What to compute, comma-separated: elbo (always), iwae, decomposition, disentanglement
    /// (MIG and FactorVAE score, on dSprites).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "elbo,iwae,decomposition,disentanglement"
    )]
    metrics: Vec<String>,
    /// Importance-sample counts of NLL_k, comma-separated; one value K means 1, 10, … < K and K.
    #[arg(long, value_delimiter = ',', default_value = "5000")]
    k: Vec<usize>,
    /// Which split: valid (the held-out images) or train.
    #[arg(long, default_value = "valid")]
    split: String,
    /// Evaluate only the first N images of the split.
    #[arg(long)]
    limit: Option<usize>,
    /// Seed of the evaluation noise (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Anomaly detection: AUROC/AUPRC of these labels (comma-separated) against the rest,
    /// scored by −ELBO, NLL_k and reconstruction error, with roc.png; alone, the run's
    /// data.exclude_classes.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    anomaly: Option<Vec<u32>>,
}

fn main() {
    ae_train::threads::run_main(|| {
        let args = Args::parse();
        let req = EvalRequest {
            metrics: args.metrics,
            ks: args.k,
            split: args.split,
            limit: args.limit,
            data_dir: args.run.data_dir,
            device: args.run.device,
            seed: args.seed,
            batch_size: args.batch_size,
            progress: true,
            anomaly: args.anomaly,
        };
        let started = Instant::now();
        let report = evaluate_run(&args.run.run_dir, &req)?;
        print!(
            "{}",
            report.to_markdown(&args.run.run_dir.display().to_string())
        );
        println!(
            "\nwrote {}/eval.json and eval.md ({:.1} s)",
            args.run.run_dir.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    });
}
