use super::{Diagnostic, EpochMetric, Label};
use crate::{EpochTracker, HostBatch, StreamingMoments, active_units};

/// Active units over the epoch: streaming mean/variance of E[z|x] over every sample seen.
#[derive(Clone, Debug)]
pub struct ActiveUnits {
    threshold: f64,
    moments: StreamingMoments,
}

impl ActiveUnits {
    /// Active units with the given variance threshold.
    pub fn new(threshold: f64) -> Self {
        Self {
            threshold,
            moments: StreamingMoments::default(),
        }
    }
}

impl Diagnostic for ActiveUnits {
    fn label(&self) -> Label {
        Label::new("Active units", "active_units", 0, true)
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "latent dims with Var_x E[z|x] > {} over the epoch",
            self.threshold
        ))
    }

    fn update(&mut self, b: &HostBatch) {
        self.moments.update(&b.latent_mean, b.latent);
    }

    fn value(&self) -> f64 {
        active_units(&self.moments.variance(), self.threshold) as f64
    }

    fn clear(&mut self) {
        self.moments = StreamingMoments::default();
    }
}

/// Active units over the epoch: streaming mean/variance of E[z|x] over every sample seen.
pub type ActiveUnitsMetric = EpochMetric<ActiveUnits>;

impl ActiveUnitsMetric {
    /// Active units with the given variance threshold.
    pub fn new(threshold: f64, tracker: EpochTracker) -> Self {
        Self::of(ActiveUnits::new(threshold), tracker)
    }
}
