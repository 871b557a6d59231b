//! `encode`: writes the latents of a finished run's images (label, posterior mean μ, and
//! log σ² for models with a Gaussian posterior) to a `.npy` array or a `.csv` table.
//!
//! ```sh
//! cargo run --release -p experiments --bin encode -- runs/vae_mnist/RUN --out latents.npy
//! ```
#[path = "../run_args.rs"]
mod run_args;

use clap::Parser;
use run_args::RunArgs;
use std::path::PathBuf;

/// Latents of a trained run, for analysis outside the framework.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The run to read.
    #[command(flatten)]
    run: RunArgs,
    /// Output file: `.npy` (float32 [n, 1 + d (+ d)]: label, μ, log σ²) or `.csv` (the same
    /// columns, named).
    #[arg(long)]
    out: PathBuf,
    /// Which split: valid (the held-out images) or train.
    #[arg(long, default_value = "valid")]
    split: String,
    /// Encode only the first N images of the split.
    #[arg(long)]
    limit: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

fn main() {
    ae_train::threads::run_main(|| {
        let args = Args::parse();
        ae_train::latents::check_output(&args.out)?;
        let run = args.run.open(&args.split, args.limit)?;
        let latents = ae_train::latents::encode(&run, args.batch_size)?;
        latents.write(&args.out)?;
        println!(
            "wrote the latents of {} {} images to {}",
            latents.labels.len(),
            args.split,
            args.out.display()
        );
        Ok(())
    });
}
