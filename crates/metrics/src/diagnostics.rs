use crate::{AeItem, EpochTracker, HostBatch, StreamingMoments, active_units, collapsed_dims};
use burn::tensor::TensorReadError;
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

fn entry(
    name: &str,
    precision: usize,
    current: f64,
    epoch: f64,
    final_entry: bool,
) -> SerializedEntry {
    let formatted = if final_entry {
        format!("epoch {epoch:.precision$}")
    } else {
        format!("epoch {epoch:.precision$} - batch {current:.precision$}")
    };
    let serialized = if final_entry {
        NumericEntry::Final(epoch).serialize()
    } else {
        NumericEntry::Value(current).serialize()
    };
    let _ = name;
    SerializedEntry::new(formatted, serialized)
}

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

/// Epoch mean of a per-sample [`Quantity`], in nats per sample.
#[derive(Clone)]
pub struct MeanMetric {
    quantity: Quantity,
    name: MetricName,
    tracker: EpochTracker,
    sum: f64,
    count: usize,
    current: f64,
}

impl MeanMetric {
    /// A metric of `quantity` writing its epoch values through `tracker`.
    pub fn new(quantity: Quantity, tracker: EpochTracker) -> Self {
        Self {
            quantity,
            name: Arc::new(quantity.metric_name().to_string()),
            tracker,
            sum: 0.0,
            count: 0,
            current: f64::NAN,
        }
    }

    fn epoch_value(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }
}

impl Metric for MeanMetric {
    type Input = DiagnosticsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "{} in nats per sample (sum over pixels/dims, mean over samples)",
            self.name
        ))
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("nats".into()),
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &DiagnosticsInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let b = &input.0;
        let batch_sum: f64 = (0..b.batch).map(|i| self.quantity.per_sample(b, i)).sum();
        self.sum += batch_sum;
        self.count += b.batch;
        self.current = batch_sum / b.batch.max(1) as f64;
        Ok(entry(
            &self.name,
            3,
            self.current,
            self.epoch_value(),
            false,
        ))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.epoch_value();
        self.tracker.record(self.quantity.column(), v);
        Ok(entry(&self.name, 3, v, v, true))
    }

    fn clear(&mut self) {
        self.sum = 0.0;
        self.count = 0;
        self.current = f64::NAN;
        self.tracker.advance();
    }
}

impl Numeric for MeanMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.current))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.epoch_value()))
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.epoch_value())
    }
}

/// Active units over the epoch: streaming mean/variance of E[z|x] over every sample seen.
#[derive(Clone)]
pub struct ActiveUnitsMetric {
    name: MetricName,
    threshold: f64,
    tracker: EpochTracker,
    moments: StreamingMoments,
}

impl ActiveUnitsMetric {
    /// Active units with the given variance threshold.
    pub fn new(threshold: f64, tracker: EpochTracker) -> Self {
        Self {
            name: Arc::new("Active units".into()),
            threshold,
            tracker,
            moments: Default::default(),
        }
    }

    fn value(&self) -> f64 {
        active_units(&self.moments.variance(), self.threshold) as f64
    }
}

impl Metric for ActiveUnitsMetric {
    type Input = DiagnosticsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "latent dims with Var_x E[z|x] > {} over the epoch",
            self.threshold
        ))
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &DiagnosticsInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.moments.update(&input.0.latent_mean, input.0.latent);
        let v = self.value();
        Ok(entry(&self.name, 0, v, v, false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.value();
        self.tracker.record("active_units", v);
        Ok(entry(&self.name, 0, v, v, true))
    }

    fn clear(&mut self) {
        self.moments = StreamingMoments::default();
        self.tracker.advance();
    }
}

impl Numeric for ActiveUnitsMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(ActiveUnitsMetric::value(self)))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(ActiveUnitsMetric::value(self)))
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(ActiveUnitsMetric::value(self))
    }
}

/// Per-dimension KL accumulated over the epoch (shared by the collapse metrics).
#[derive(Clone, Debug, Default)]
struct KlAccumulator {
    sums: Vec<f64>,
    count: usize,
}

impl KlAccumulator {
    fn update(&mut self, b: &HostBatch) {
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

    fn means(&self) -> Vec<f64> {
        let n = self.count.max(1) as f64;
        self.sums.iter().map(|s| s / n).collect()
    }
}

/// Number of collapsed dimensions (epoch-mean KL_j below a threshold); also records the
/// per-dimension KL vector of the epoch.
#[derive(Clone)]
pub struct CollapsedDimsMetric {
    name: MetricName,
    threshold: f64,
    tracker: EpochTracker,
    kl: KlAccumulator,
}

impl CollapsedDimsMetric {
    /// Collapsed dimensions with the given KL threshold in nats.
    pub fn new(threshold: f64, tracker: EpochTracker) -> Self {
        Self {
            name: Arc::new("Collapsed dims".into()),
            threshold,
            tracker,
            kl: Default::default(),
        }
    }

    fn value(&self) -> f64 {
        collapsed_dims(&self.kl.means(), self.threshold) as f64
    }
}

impl Metric for CollapsedDimsMetric {
    type Input = DiagnosticsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some(format!(
            "latent dims with epoch-mean KL < {} nats",
            self.threshold
        ))
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &DiagnosticsInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.kl.update(&input.0);
        let v = self.value();
        Ok(entry(&self.name, 0, v, v, false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.value();
        self.tracker.record("collapsed_dims", v);
        self.tracker.record_kl_per_dim(self.kl.means());
        Ok(entry(&self.name, 0, v, v, true))
    }

    fn clear(&mut self) {
        self.kl = KlAccumulator::default();
        self.tracker.advance();
    }
}

impl Numeric for CollapsedDimsMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(CollapsedDimsMetric::value(self)))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(CollapsedDimsMetric::value(self)))
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(CollapsedDimsMetric::value(self))
    }
}

/// Verdict of the posterior-collapse check for one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct CollapseVerdict {
    /// Whether the alarm fires.
    pub collapsed: bool,
    /// Human-readable reason.
    pub reason: String,
}

/// The collapse rule: every dimension below the per-dim threshold, or total KL below the
/// total threshold, or — when `active_units` is known — no active unit at all (the posterior
/// mean does not depend on x, whatever KL the variances cost).
pub fn collapse_verdict(
    mean_kl_per_dim: &[f64],
    active_units: Option<usize>,
    cfg: &DiagnosticsConfig,
) -> CollapseVerdict {
    let total: f64 = mean_kl_per_dim.iter().sum();
    let dead = collapsed_dims(mean_kl_per_dim, cfg.collapsed_dim_threshold);
    let n = mean_kl_per_dim.len();
    if n > 0 && dead == n {
        CollapseVerdict {
            collapsed: true,
            reason: format!(
                "POSTERIOR COLLAPSE: all {n} latent dims have KL < {} nats (total KL {total:.4})",
                cfg.collapsed_dim_threshold
            ),
        }
    } else if total < cfg.collapse_kl_threshold {
        CollapseVerdict {
            collapsed: true,
            reason: format!(
                "POSTERIOR COLLAPSE: total KL {total:.4} nats < {} ({dead}/{n} dims collapsed)",
                cfg.collapse_kl_threshold
            ),
        }
    } else if active_units == Some(0) && n > 0 {
        CollapseVerdict {
            collapsed: true,
            reason: format!(
                "POSTERIOR COLLAPSE: no active unit, E[z|x] does not vary with x (KL {total:.2} \
                 nats is spent on posterior variances only)"
            ),
        }
    } else {
        CollapseVerdict {
            collapsed: false,
            reason: format!("ok: KL {total:.2} nats, {dead}/{n} dims collapsed"),
        }
    }
}

/// Posterior-collapse alarm: 1 when [`collapse_verdict`] fires for the epoch, else 0. Its text
/// in the dashboard says `POSTERIOR COLLAPSE` in capitals.
#[derive(Clone)]
pub struct CollapseAlarmMetric {
    name: MetricName,
    cfg: DiagnosticsConfig,
    tracker: EpochTracker,
    kl: KlAccumulator,
    moments: StreamingMoments,
}

impl CollapseAlarmMetric {
    /// The alarm with the given thresholds.
    pub fn new(cfg: DiagnosticsConfig, tracker: EpochTracker) -> Self {
        Self {
            name: Arc::new("Collapse alarm".into()),
            cfg,
            tracker,
            kl: Default::default(),
            moments: Default::default(),
        }
    }

    fn verdict(&self) -> CollapseVerdict {
        let au = active_units(&self.moments.variance(), self.cfg.active_unit_threshold);
        collapse_verdict(&self.kl.means(), Some(au), &self.cfg)
    }
}

impl Metric for CollapseAlarmMetric {
    type Input = DiagnosticsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        Some("1 when the posterior has collapsed (q(z|x) ≈ p(z), or no longer depends on x)".into())
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &DiagnosticsInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.kl.update(&input.0);
        self.moments.update(&input.0.latent_mean, input.0.latent);
        let v = self.verdict();
        let x = v.collapsed as u8 as f64;
        Ok(SerializedEntry::new(
            v.reason,
            NumericEntry::Value(x).serialize(),
        ))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.verdict();
        let x = v.collapsed as u8 as f64;
        self.tracker.record("posterior_collapse", x);
        Ok(SerializedEntry::new(
            v.reason,
            NumericEntry::Final(x).serialize(),
        ))
    }

    fn clear(&mut self) {
        self.kl = KlAccumulator::default();
        self.moments = StreamingMoments::default();
        self.tracker.advance();
    }
}

impl Numeric for CollapseAlarmMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(self.verdict().collapsed as u8 as f64))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        self.value()
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.verdict().collapsed as u8 as f64)
    }
}

/// Which codebook-usage figure a [`CodebookMetric`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodebookFigure {
    /// exp(−Σ p̄_k log p̄_k) of the epoch's code frequencies: 1 (one code) to K (uniform).
    Perplexity,
    /// Codes chosen at least once in the epoch.
    CodesUsed,
    /// Codes never chosen in the epoch.
    DeadCodes,
}

impl CodebookFigure {
    fn names(&self) -> (&'static str, &'static str) {
        match self {
            CodebookFigure::Perplexity => ("Perplexity", "perplexity"),
            CodebookFigure::CodesUsed => ("Codes used", "codes_used"),
            CodebookFigure::DeadCodes => ("Dead codes", "dead_codes"),
        }
    }
}

/// Codebook usage over the whole epoch (VQ models).
#[derive(Clone)]
pub struct CodebookMetric {
    figure: CodebookFigure,
    name: MetricName,
    tracker: EpochTracker,
    counts: Vec<u64>,
}

impl CodebookMetric {
    /// A codebook metric of `figure`.
    pub fn new(figure: CodebookFigure, tracker: EpochTracker) -> Self {
        Self {
            figure,
            name: Arc::new(figure.names().0.to_string()),
            tracker,
            counts: Vec::new(),
        }
    }

    fn value(&self) -> f64 {
        codebook_figure(&self.counts, self.figure)
    }
}

/// Perplexity, codes used or dead codes of code `counts`.
pub fn codebook_figure(counts: &[u64], figure: CodebookFigure) -> f64 {
    let total: u64 = counts.iter().sum();
    let used = counts.iter().filter(|&&c| c > 0).count();
    match figure {
        CodebookFigure::Perplexity => {
            if total == 0 {
                return 0.0;
            }
            let h: f64 = counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / total as f64;
                    -p * p.ln()
                })
                .sum();
            h.exp()
        }
        CodebookFigure::CodesUsed => used as f64,
        CodebookFigure::DeadCodes => (counts.len() - used) as f64,
    }
}

impl Metric for CodebookMetric {
    type Input = DiagnosticsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: self.figure != CodebookFigure::DeadCodes,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &DiagnosticsInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let b = &input.0;
        if self.counts.len() != b.codebook_size {
            self.counts = vec![0; b.codebook_size];
        }
        for &c in &b.codes {
            if let Some(slot) = self.counts.get_mut(c as usize) {
                *slot += 1;
            }
        }
        let v = self.value();
        Ok(entry(&self.name, 1, v, v, false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let v = self.value();
        self.tracker.record(self.figure.names().1, v);
        Ok(entry(&self.name, 1, v, v, true))
    }

    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.tracker.advance();
    }
}

impl Numeric for CodebookMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(CodebookMetric::value(self)))
    }
    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Value(CodebookMetric::value(self)))
    }
    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(CodebookMetric::value(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EpochLog, SplitKind};
    use burn::data::dataloader::Progress;

    fn meta() -> MetricMetadata {
        MetricMetadata {
            progress: Progress::new(1, 1, None),
            iteration: Some(1),
            lr: None,
        }
    }

    /// A synthetic posterior: dims 0 and 2 carry information (means vary with x, KL large),
    /// dim 1 is switched off (mean 0, KL 0).
    fn synthetic(batch: usize, offset: usize) -> DiagnosticsInput {
        let latent = 3;
        let mut mean = Vec::new();
        let mut kl = Vec::new();
        for i in 0..batch {
            let x = ((i + offset) % 10) as f32 - 4.5;
            mean.extend([x, 0.0, -0.5 * x]);
            kl.extend([1.0 + 0.5 * x * x, 0.0005, 0.3]);
        }
        let kl_sum: Vec<f32> = kl.chunks(3).map(|r| r.iter().sum()).collect();
        DiagnosticsInput(Arc::new(HostBatch {
            batch,
            latent,
            beta: 1.0,
            loss: kl_sum.iter().map(|k| 10.0 + k).collect(),
            recon: vec![10.0; batch],
            kl: kl_sum,
            kl_per_dim: kl,
            latent_mean: mean,
            codes: Vec::new(),
            codebook_size: 0,
        }))
    }

    #[test]
    fn active_units_find_the_informative_dims_over_the_epoch() {
        let log = EpochLog::default();
        let mut m =
            ActiveUnitsMetric::new(0.01, EpochTracker::new(log.clone(), SplitKind::Valid, 1));
        // Batches of 1: a per-batch variance would be 0 everywhere; the epoch variance is not.
        for i in 0..20 {
            m.update(&synthetic(1, i), &meta()).unwrap();
        }
        m.compute().unwrap();
        assert_eq!(
            log.last(SplitKind::Valid).unwrap().values["active_units"],
            2.0
        );
    }

    #[test]
    fn collapsed_dims_and_kl_per_dim_are_recorded() {
        let log = EpochLog::default();
        let mut m =
            CollapsedDimsMetric::new(0.01, EpochTracker::new(log.clone(), SplitKind::Train, 4));
        m.update(&synthetic(10, 0), &meta()).unwrap();
        m.compute().unwrap();
        let row = log.last(SplitKind::Train).unwrap();
        assert_eq!(row.epoch, 4);
        assert_eq!(row.values["collapsed_dims"], 1.0);
        assert!((row.kl_per_dim[1] - 0.0005).abs() < 1e-9);
        assert!((row.kl_per_dim[2] - 0.3).abs() < 1e-6);
    }

    #[test]
    fn alarm_fires_on_forced_collapse_only() {
        let cfg = DiagnosticsConfig::default();
        assert!(!collapse_verdict(&[0.5, 0.001, 0.2], Some(2), &cfg).collapsed);
        assert!(collapse_verdict(&[0.001, 0.002, 0.0], Some(3), &cfg).collapsed);
        // Every dim just above the per-dim floor but the total still tiny.
        assert!(collapse_verdict(&[0.02, 0.02, 0.02], None, &cfg).collapsed);
        // Plenty of KL, but spent on variances: no active unit.
        let v = collapse_verdict(&[3.0, 2.0, 1.0], Some(0), &cfg);
        assert!(
            v.collapsed && v.reason.contains("no active unit"),
            "{}",
            v.reason
        );

        let log = EpochLog::default();
        let mut m =
            CollapseAlarmMetric::new(cfg, EpochTracker::new(log.clone(), SplitKind::Valid, 1));
        let mut collapsed = synthetic(8, 0);
        let b = Arc::make_mut(&mut collapsed.0);
        b.kl_per_dim.iter_mut().for_each(|k| *k = 1e-4);
        let e = m.compute_after(&collapsed);
        assert!(
            e.formatted.contains("POSTERIOR COLLAPSE"),
            "{}",
            e.formatted
        );
        assert_eq!(
            log.last(SplitKind::Valid).unwrap().values["posterior_collapse"],
            1.0
        );
    }

    #[test]
    fn codebook_figures_by_hand() {
        // Uniform over 4 of 8 codes: perplexity 4, 4 used, 4 dead; one code: perplexity 1.
        let c = [5, 5, 0, 5, 0, 5, 0, 0];
        assert!((codebook_figure(&c, CodebookFigure::Perplexity) - 4.0).abs() < 1e-9);
        assert_eq!(codebook_figure(&c, CodebookFigure::CodesUsed), 4.0);
        assert_eq!(codebook_figure(&c, CodebookFigure::DeadCodes), 4.0);
        assert!((codebook_figure(&[9, 0, 0], CodebookFigure::Perplexity) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn mean_metrics_average_per_sample_over_the_epoch() {
        let log = EpochLog::default();
        let tracker = EpochTracker::new(log.clone(), SplitKind::Valid, 1);
        let mut loss = MeanMetric::new(Quantity::NegElbo, tracker.clone());
        let mut recon = MeanMetric::new(Quantity::Recon, tracker);
        // Uneven batches: the epoch value weights samples, not batches.
        for (n, off) in [(3, 0), (7, 3)] {
            let b = synthetic(n, off);
            loss.update(&b, &meta()).unwrap();
            recon.update(&b, &meta()).unwrap();
        }
        loss.compute().unwrap();
        recon.compute().unwrap();
        let all = synthetic(10, 0);
        let expected: f64 = (0..10)
            .map(|i| (all.0.recon[i] + all.0.kl[i]) as f64)
            .sum::<f64>()
            / 10.0;
        let row = log.last(SplitKind::Valid).unwrap();
        assert!((row.values["loss"] - expected).abs() < 1e-6);
        assert_eq!(row.values["recon"], 10.0);
    }

    impl CollapseAlarmMetric {
        fn compute_after(&mut self, input: &DiagnosticsInput) -> SerializedEntry {
            self.update(input, &meta()).unwrap();
            self.compute().unwrap()
        }
    }
}
