use super::{Diagnostic, EpochMetric, Label};
use crate::{EpochTracker, HostBatch};

/// A per-sample quantity averaged over the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    /// Negative ELBO (recon + KL), metric `Loss`, column `loss`.
    NegElbo,
    /// Reconstruction NLL, metric `Recon`, column `recon`.
    Recon,
    /// KL, metric `KL`, column `kl`.
    Kl,
    /// Trained objective recon + β·KL, metric `Beta loss`, column `beta_loss`.
    Objective,
}

impl Quantity {
    /// Display name in the dashboard.
    pub fn metric_name(&self) -> &'static str {
        match self {
            Quantity::NegElbo => "Loss",
            Quantity::Recon => "Recon",
            Quantity::Kl => "KL",
            Quantity::Objective => "Beta loss",
        }
    }

    /// Column name in `metrics.csv` and `summary.json`.
    pub fn column(&self) -> &'static str {
        match self {
            Quantity::NegElbo => "loss",
            Quantity::Recon => "recon",
            Quantity::Kl => "kl",
            Quantity::Objective => "beta_loss",
        }
    }

    fn per_sample(&self, b: &HostBatch, i: usize) -> f64 {
        match self {
            Quantity::NegElbo => (b.recon[i] + b.kl[i]) as f64,
            Quantity::Recon => b.recon[i] as f64,
            Quantity::Kl => b.kl[i] as f64,
            Quantity::Objective => b.loss[i] as f64,
        }
    }
}

/// Epoch mean of a per-sample [`Quantity`], in nats per sample (weighted by samples, not
/// batches); its batch value is the mean of the last batch.
#[derive(Clone, Debug)]
pub struct EpochMean {
    quantity: Quantity,
    sum: f64,
    count: usize,
    current: f64,
}

impl EpochMean {
    /// An empty epoch of `quantity`.
    pub fn new(quantity: Quantity) -> Self {
        Self {
            quantity,
            sum: 0.0,
            count: 0,
            current: f64::NAN,
        }
    }
}

impl Diagnostic for EpochMean {
    fn label(&self) -> Label {
        let q = self.quantity;
        Label {
            unit: Some("nats"),
            ..Label::new(q.metric_name(), q.column(), 3, false)
        }
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "{} in nats per sample (sum over pixels/dims, mean over samples)",
            self.quantity.metric_name()
        ))
    }

    fn update(&mut self, b: &HostBatch) {
        let batch_sum: f64 = (0..b.batch).map(|i| self.quantity.per_sample(b, i)).sum();
        self.sum += batch_sum;
        self.count += b.batch;
        self.current = batch_sum / b.batch.max(1) as f64;
    }

    fn value(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    fn batch_value(&self) -> f64 {
        self.current
    }

    fn clear(&mut self) {
        *self = Self::new(self.quantity);
    }
}

/// Epoch mean of a per-sample [`Quantity`], in nats per sample.
pub type MeanMetric = EpochMetric<EpochMean>;

impl MeanMetric {
    /// A metric of `quantity` writing its epoch values through `tracker`.
    pub fn new(quantity: Quantity, tracker: EpochTracker) -> Self {
        Self::of(EpochMean::new(quantity), tracker)
    }
}
