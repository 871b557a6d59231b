//! Checkpoints that a kill cannot half-write, and the choice of the one to resume from.
//!
//! burn-train's `FileCheckpointer` writes each record straight to its final name, so a run
//! killed while saving leaves a truncated `model-N.bpk` that `--resume` would trust (and
//! burn-train would panic on). [`AtomicCheckpointer`] writes a temporary file, syncs it and
//! renames it; [`last_checkpoint`] still loads every candidate before trusting it and falls
//! back to the previous complete epoch, saying so.
use crate::write_atomic;
use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use std::path::{Path, PathBuf};

/// The three records of an epoch's checkpoint, as burn-train names them.
pub const PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// A burn-train checkpointer writing `<dir>/<name>-<epoch>.bpk` atomically.
pub struct AtomicCheckpointer {
    dir: PathBuf,
    name: &'static str,
}

impl AtomicCheckpointer {
    /// Checkpointer of record `name` (`model`, `optim` or `scheduler`) in `dir`.
    pub fn new(dir: &Path, name: &'static str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        part_path(&self.dir, self.name, epoch)
    }
}

fn part_path(dir: &Path, name: &str, epoch: usize) -> PathBuf {
    dir.join(format!("{name}-{epoch}.bpk"))
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_atomic(&self.path(epoch), &bytes).map_err(CheckpointerError::IOError)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        R::load(self.path(epoch))
    }
}

/// Why the checkpoint of an epoch cannot be used, or `None` when all three records load.
pub fn checkpoint_problem(run_dir: &Path, epoch: usize) -> Option<String> {
    let dir = run_dir.join("checkpoint");
    for part in PARTS {
        let path = part_path(&dir, part, epoch);
        if !path.is_file() {
            return Some(format!("{} is missing", path.display()));
        }
        let loaded = match part {
            "model" => ModuleRecord::load(&path).map(drop),
            "optim" => OptimizerRecord::load(&path).map(drop),
            _ => LrSchedulerRecord::load(&path).map(drop),
        };
        if let Err(e) = loaded {
            return Some(format!("{} does not load ({e})", path.display()));
        }
    }
    None
}

/// Epochs that have at least one checkpoint record in `run_dir/checkpoint`, newest first.
fn candidate_epochs(run_dir: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoint")) else {
        return Vec::new();
    };
    let mut epochs: Vec<usize> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".bpk")?;
            let (part, epoch) = stem.rsplit_once('-')?;
            PARTS.contains(&part).then(|| epoch.parse().ok())?
        })
        .collect();
    epochs.sort_unstable_by(|a, b| b.cmp(a));
    epochs.dedup();
    epochs
}

/// The last epoch whose checkpoint (model, optimiser and scheduler) is complete and loads.
/// A newer, damaged one (a kill during a save, a full disk) is skipped with a line saying so.
pub fn last_checkpoint(run_dir: &Path) -> Option<usize> {
    for epoch in candidate_epochs(run_dir) {
        match checkpoint_problem(run_dir, epoch) {
            None => return Some(epoch),
            Some(why) => println!(
                "checkpoint of epoch {epoch} is incomplete or damaged ({why}); falling back \
                 to the previous one"
            ),
        }
    }
    None
}
