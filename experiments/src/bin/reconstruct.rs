//! `reconstruct`: a PNG grid of a finished run's images over their reconstructions.
//!
//! ```sh
//! cargo run --release -p experiments --bin reconstruct -- runs/vae_mnist/RUN -n 50 --out recon.png
//! ```
#[path = "../run_args.rs"]
mod run_args;

use clap::Parser;
use run_args::RunArgs;
use std::path::PathBuf;

/// Images of a trained run's data over their reconstructions, as a PNG grid.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The run to read.
    #[command(flatten)]
    run: RunArgs,
    /// Number of images (10 per row, over their reconstructions).
    #[arg(short, default_value_t = 50)]
    n: usize,
    /// Which split: valid (the held-out images) or train.
    #[arg(long, default_value = "valid")]
    split: String,
    /// Output PNG (default: RUN_DIR/reconstructions-SPLIT-N.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    ae_train::threads::run_main(|| {
        let args = Args::parse();
        let run = args.run.open(&args.split, Some(args.n.max(1)))?;
        let name = format!("reconstructions-{}-{}.png", args.split, args.n);
        let out = args.out.unwrap_or_else(|| args.run.run_dir.join(name));
        ae_train::decodes::reconstruct(&run, args.n, &out)?;
        println!("wrote {}", out.display());
        Ok(())
    });
}
