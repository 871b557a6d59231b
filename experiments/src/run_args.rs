//! The arguments every tool that reads a finished run takes (`evaluate`, `encode`, `sample`,
//! `reconstruct`): its folder, where its data lives, and the backend. Each binary includes
//! this file as a module and flattens [`RunArgs`] into its own arguments.
use ae_train::evaluation::FinishedRun;
use std::path::PathBuf;

/// A finished run to read.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The run folder (with config.toml and model.bpk).
    pub run_dir: PathBuf,
    /// Directory with the MNIST files (else the run's config, else $AE_MNIST_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Backend: flex, ndarray, wgpu[:N], cuda[:N] (default: the run's).
    // The brackets are `--help` text, not links (escaping them would show in `--help`).
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long)]
    pub device: Option<String>,
}

impl RunArgs {
    /// Opens the run with `split` (`valid` or `train`), at most `limit` images of it.
    #[allow(dead_code)] // `evaluate` passes the arguments to `evaluate_run` instead.
    pub fn open(&self, split: &str, limit: Option<usize>) -> anyhow::Result<FinishedRun> {
        FinishedRun::open(
            &self.run_dir,
            split,
            limit,
            self.data_dir.as_deref(),
            self.device.as_deref(),
        )
    }
}
