//! `sample`: a PNG grid of decodes of prior samples from a finished run (one class of a
//! conditional model with `--class`).
//!
//! ```sh
//! cargo run --release -p experiments --bin sample -- runs/cvae_mnist/RUN -n 64 --class 3 --out threes.png
//! ```
#[path = "../run_args.rs"]
mod run_args;

use clap::Parser;
use run_args::RunArgs;
use std::path::PathBuf;

/// Prior samples of a trained run as a PNG grid.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The run to read.
    #[command(flatten)]
    run: RunArgs,
    /// Number of samples (8 per row).
    #[arg(short, default_value_t = 64)]
    n: usize,
    /// Sample this class only (conditional models).
    #[arg(long)]
    class: Option<usize>,
    /// Seed of the prior draws (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Output PNG (default: RUN_DIR/samples-N.png, or samples-N-class-C.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    ae_train::threads::run_main(|| {
        let args = Args::parse();
        let run = args.run.open("valid", Some(1))?;
        let name = match args.class {
            Some(c) => format!("samples-{}-class-{c}.png", args.n),
            None => format!("samples-{}.png", args.n),
        };
        let out = args.out.unwrap_or_else(|| args.run.run_dir.join(name));
        let seed = args.seed.unwrap_or(run.cfg.seed);
        ae_train::decodes::sample(&run, args.n, args.class, seed, &out)?;
        println!("wrote {}", out.display());
        Ok(())
    });
}
