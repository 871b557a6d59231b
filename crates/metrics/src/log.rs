use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The split a metric instance reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SplitKind {
    /// Training batches (figures under the training-time weights of each batch).
    Train,
    /// Validation set at the end of the epoch.
    Valid,
}

impl SplitKind {
    /// "train" or "valid".
    pub fn as_str(&self) -> &'static str {
        match self {
            SplitKind::Train => "train",
            SplitKind::Valid => "valid",
        }
    }
}

/// One epoch of one split: the epoch-level value of every metric, keyed by column name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochRow {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Column name → value (`loss`, `recon`, `kl`, `beta_loss`, `active_units`, ...).
    pub values: BTreeMap<String, f64>,
    /// Mean KL of each latent dimension over the epoch, nats.
    pub kl_per_dim: Vec<f64>,
}

type Listener = Box<dyn Fn(&BTreeMap<(usize, SplitKind), EpochRow>) + Send>;

#[derive(Default)]
struct LogState {
    rows: BTreeMap<(usize, SplitKind), EpochRow>,
    listener: Option<Listener>,
}

/// Epoch-level results shared by the metrics of a run; a listener is told after each change
/// (ae-train rewrites `metrics.csv` there).
#[derive(Clone, Default)]
pub struct EpochLog {
    inner: Arc<Mutex<LogState>>,
}

impl std::fmt::Debug for EpochLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochLog")
            .field("rows", &self.rows().len())
            .finish()
    }
}

impl EpochLog {
    /// A log pre-filled with `rows` (for resumed runs), calling `listener` on each change.
    pub fn new(rows: BTreeMap<(usize, SplitKind), EpochRow>, listener: Option<Listener>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LogState { rows, listener })),
        }
    }

    fn with_row(&self, epoch: usize, split: SplitKind, f: impl FnOnce(&mut EpochRow)) {
        let mut state = self.inner.lock().expect("epoch log poisoned");
        let row = state.rows.entry((epoch, split)).or_default();
        row.epoch = epoch;
        f(row);
        if let Some(listener) = &state.listener {
            listener(&state.rows);
        }
    }

    /// Records one value.
    pub fn record(&self, epoch: usize, split: SplitKind, column: &str, value: f64) {
        self.with_row(epoch, split, |row| {
            row.values.insert(column.to_string(), value);
        });
    }

    /// Records the per-dimension KL vector.
    pub fn record_kl_per_dim(&self, epoch: usize, split: SplitKind, kl: Vec<f64>) {
        self.with_row(epoch, split, |row| row.kl_per_dim = kl);
    }

    /// A snapshot of all rows.
    pub fn rows(&self) -> BTreeMap<(usize, SplitKind), EpochRow> {
        self.inner.lock().expect("epoch log poisoned").rows.clone()
    }

    /// The last row of `split`, if any.
    pub fn last(&self, split: SplitKind) -> Option<EpochRow> {
        self.rows()
            .into_iter()
            .rev()
            .find(|((_, s), _)| *s == split)
            .map(|(_, r)| r)
    }
}

/// Where a metric instance writes: the log, its split, and the epoch it is accumulating.
#[derive(Clone, Debug)]
pub struct EpochTracker {
    log: EpochLog,
    split: SplitKind,
    epoch: usize,
}

impl EpochTracker {
    /// A tracker whose first epoch is `first_epoch` (> 1 when resuming).
    pub fn new(log: EpochLog, split: SplitKind, first_epoch: usize) -> Self {
        Self {
            log,
            split,
            epoch: first_epoch,
        }
    }

    /// Records a value for the current epoch.
    pub fn record(&self, column: &str, value: f64) {
        self.log.record(self.epoch, self.split, column, value);
    }

    /// Records the per-dimension KL for the current epoch.
    pub fn record_kl_per_dim(&self, kl: Vec<f64>) {
        self.log.record_kl_per_dim(self.epoch, self.split, kl);
    }

    /// Moves to the next epoch (called when burn-train clears the metric).
    pub fn advance(&mut self) {
        self.epoch += 1;
    }

    /// The split.
    pub fn split(&self) -> SplitKind {
        self.split
    }
}
