//! The diagnostics as burn-train metrics: one generic [`EpochMetric`] over a [`Diagnostic`]
//! accumulator, and one file per diagnostic.

use crate::{AeItem, EpochTracker, HostBatch};
use burn::tensor::TensorReadError;
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod active_units;
mod codebook;
mod collapse_alarm;
mod collapsed_dims;
mod mean;

pub use active_units::*;
pub use codebook::*;
pub use collapse_alarm::*;
pub use collapsed_dims::*;
pub use mean::*;

/// Thresholds of the diagnostics (the `[diagnostics]` table of an experiment config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosticsConfig {
    /// Unit u is active when Var_x E[z_u|x] exceeds this (Burda et al.: 0.01).
    pub active_unit_threshold: f64,
    /// Dimension j is collapsed when its epoch-mean KL is below this many nats.
    pub collapsed_dim_threshold: f64,
    /// The collapse alarm also fires when the epoch-mean total KL is below this many nats.
    pub collapse_kl_threshold: f64,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        Self {
            active_unit_threshold: 0.01,
            collapsed_dim_threshold: 0.01,
            collapse_kl_threshold: 0.1,
        }
    }
}

impl DiagnosticsConfig {
    /// Checks the thresholds.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            (
                "diagnostics.active_unit_threshold",
                self.active_unit_threshold,
            ),
            (
                "diagnostics.collapsed_dim_threshold",
                self.collapsed_dim_threshold,
            ),
            (
                "diagnostics.collapse_kl_threshold",
                self.collapse_kl_threshold,
            ),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("{k} must be a finite number ≥ 0, got {v}"));
            }
        }
        Ok(())
    }
}

/// Input of every diagnostic metric: the host copy of one batch.
#[derive(Clone, Debug)]
pub struct DiagnosticsInput(pub Arc<HostBatch>);

impl Adaptor<DiagnosticsInput> for AeItem {
    fn adapt(&self) -> DiagnosticsInput {
        DiagnosticsInput(self.host())
    }
}

/// How a [`Diagnostic`] is named and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    /// Metric name in the dashboard.
    pub name: &'static str,
    /// Column name in `metrics.csv` and `summary.json`.
    pub column: &'static str,
    /// Decimals of the value in the dashboard text.
    pub precision: usize,
    /// Whether larger values are better.
    pub higher_is_better: bool,
    /// Unit of the value, if any.
    pub unit: Option<&'static str>,
}

impl Label {
    /// A label with no unit: `name` in the dashboard, `column` in the epoch log, `precision`
    /// decimals in the dashboard text, and whether larger values are better.
    pub const fn new(
        name: &'static str,
        column: &'static str,
        precision: usize,
        higher_is_better: bool,
    ) -> Self {
        Self {
            name,
            column,
            precision,
            higher_is_better,
            unit: None,
        }
    }
}

/// One diagnostic accumulated over an epoch: the part of a metric that differs from the
/// others. [`EpochMetric`] turns it into a burn-train metric.
pub trait Diagnostic: Clone + Send + Sync {
    /// Name, column, precision, direction and unit.
    fn label(&self) -> Label;

    /// Short description for the dashboard, if any.
    fn description(&self) -> Option<String> {
        None
    }

    /// Adds one batch to the epoch.
    fn update(&mut self, batch: &HostBatch);

    /// Value over the epoch so far.
    fn value(&self) -> f64;

    /// Value of the last batch alone; by default the epoch value (for figures that only make
    /// sense over the whole epoch).
    fn batch_value(&self) -> f64 {
        self.value()
    }

    /// Dashboard text: `epoch E` at the end of the epoch, `epoch E - batch B` before.
    fn text(&self, batch: f64, epoch: f64, final_entry: bool) -> String {
        let p = self.label().precision;
        if final_entry {
            format!("epoch {epoch:.p$}")
        } else {
            format!("epoch {epoch:.p$} - batch {batch:.p$}")
        }
    }

    /// Writes the epoch `value` through `tracker` (by default under the label's column).
    fn record(&self, tracker: &EpochTracker, value: f64) {
        tracker.record(self.label().column, value);
    }

    /// Forgets the epoch.
    fn clear(&mut self);
}

/// A [`Diagnostic`] as a burn-train numeric metric: updated on every batch, written to the
/// epoch log when burn-train computes the epoch value, cleared (and moved to the next epoch)
/// after.
#[derive(Clone)]
pub struct EpochMetric<D> {
    diagnostic: D,
    name: MetricName,
    tracker: EpochTracker,
}

impl<D: Diagnostic> EpochMetric<D> {
    /// The metric of `diagnostic`, writing its epoch values through `tracker`.
    pub fn of(diagnostic: D, tracker: EpochTracker) -> Self {
        Self {
            name: Arc::new(diagnostic.label().name.to_string()),
            diagnostic,
            tracker,
        }
    }

    fn entry(&self, batch: f64, epoch: f64, final_entry: bool) -> SerializedEntry {
        let numeric = if final_entry {
            NumericEntry::Final(epoch)
        } else {
            NumericEntry::Value(batch)
        };
        SerializedEntry::new(
            self.diagnostic.text(batch, epoch, final_entry),
            numeric.serialize(),
        )
    }
}

impl<D: Diagnostic> Metric for EpochMetric<D> {
    type Input = DiagnosticsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        self.diagnostic.description()
    }

    fn attributes(&self) -> MetricAttributes {
        let label = self.diagnostic.label();
        NumericAttributes {
            unit: label.unit.map(Into::into),
            higher_is_better: label.higher_is_better,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &DiagnosticsInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.diagnostic.update(&input.0);
        let batch = self.diagnostic.batch_value();
        Ok(self.entry(batch, self.diagnostic.value(), false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.diagnostic.value();
        self.diagnostic.record(&self.tracker, v);
        Ok(self.entry(v, v, true))
    }

    fn clear(&mut self) {
        self.diagnostic.clear();
        self.tracker.advance();
    }
}

impl<D: Diagnostic> Numeric for EpochMetric<D> {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.diagnostic.batch_value()))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.diagnostic.value()))
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.diagnostic.value())
    }
}

#[cfg(test)]
mod tests;
