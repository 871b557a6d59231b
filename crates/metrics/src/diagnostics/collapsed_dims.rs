use super::{Diagnostic, EpochMetric, Label};
use crate::{EpochTracker, HostBatch, collapsed_dims};

/// Per-dimension KL accumulated over the epoch (shared by the collapse metrics).
#[derive(Clone, Debug, Default)]
pub(super) struct KlAccumulator {
    sums: Vec<f64>,
    count: usize,
}

impl KlAccumulator {
    pub(super) fn update(&mut self, b: &HostBatch) {
        if self.sums.len() != b.latent {
            self.sums = vec![0.0; b.latent];
        }
        for row in b.kl_per_dim.chunks_exact(b.latent) {
            for (s, &k) in self.sums.iter_mut().zip(row) {
                *s += k as f64;
            }
        }
        self.count += b.batch;
    }

    pub(super) fn means(&self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.sums.iter().map(|s| s / n).collect()
    }
}

/// Number of collapsed dimensions (epoch-mean KL_j below a threshold); also records the
/// per-dimension KL vector of the epoch.
#[derive(Clone, Debug)]
pub struct CollapsedDims {
    threshold: f64,
    kl: KlAccumulator,
}

impl CollapsedDims {
    /// Collapsed dimensions with the given KL threshold in nats.
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            kl: KlAccumulator::default(),
        }
    }
}

impl Diagnostic for CollapsedDims {
    fn label(&self) -> Label {
        Label::new("Collapsed dims", "collapsed_dims", 0, false)
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "latent dims with epoch-mean KL < {} nats",
            self.threshold
        ))
    }

    fn update(&mut self, b: &HostBatch) {
        self.kl.update(b);
    }

    fn value(&self) -> f64 {
        collapsed_dims(&self.kl.means(), self.threshold) as f64
    }

    /// Writes the count, then the per-dimension KL vector.
    fn record(&self, tracker: &EpochTracker, value: f64) {
        tracker.record(self.label().column, value);
        tracker.record_kl_per_dim(self.kl.means());
    }

    fn clear(&mut self) {
        self.kl = KlAccumulator::default();
    }
}

/// Number of collapsed dimensions (epoch-mean KL_j below a threshold); also records the
/// per-dimension KL vector of the epoch.
pub type CollapsedDimsMetric = EpochMetric<CollapsedDims>;

impl CollapsedDimsMetric {
    /// Collapsed dimensions with the given KL threshold in nats.
    pub fn new(threshold: f64, tracker: EpochTracker) -> Self {
        Self::of(CollapsedDims::new(threshold), tracker)
    }
}
