use super::*;
use crate::{EpochLog, EpochRow, SplitKind};
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
    let mut m = ActiveUnitsMetric::new(0.01, EpochTracker::new(log.clone(), SplitKind::Valid, 1));
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
    let mut m = CollapsedDimsMetric::new(0.01, EpochTracker::new(log.clone(), SplitKind::Train, 4));
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
    let mut m = CollapseAlarmMetric::new(cfg, EpochTracker::new(log.clone(), SplitKind::Valid, 1));
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

/// A toy diagnostic: the number of samples seen, with the size of the last batch as its
/// batch value.
#[derive(Clone, Default)]
struct Samples {
    seen: usize,
    last: usize,
}

impl Diagnostic for Samples {
    fn label(&self) -> Label {
        Label::new("Samples", "samples", 2, true)
    }

    fn update(&mut self, batch: &HostBatch) {
        self.seen += batch.batch;
        self.last = batch.batch;
    }

    fn value(&self) -> f64 {
        self.seen as f64
    }

    fn batch_value(&self) -> f64 {
        self.last as f64
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[test]
fn epoch_metric_formats_records_and_advances_the_epoch() {
    let log = EpochLog::default();
    let mut m = EpochMetric::of(
        Samples::default(),
        EpochTracker::new(log.clone(), SplitKind::Train, 3),
    );
    assert_eq!(*m.name(), "Samples");
    m.update(&synthetic(4, 0), &meta()).unwrap();
    let e = m.update(&synthetic(3, 0), &meta()).unwrap();
    assert_eq!(e.formatted, "epoch 7.00 - batch 3.00");
    assert_eq!(e.serialized, NumericEntry::Value(3.0).serialize());
    assert_eq!(m.value().unwrap().serialize(), "3");
    assert_eq!(m.running_value().unwrap().serialize(), "7");
    let e = m.compute().unwrap();
    assert_eq!(e.formatted, "epoch 7.00");
    assert_eq!(e.serialized, NumericEntry::Final(7.0).serialize());
    m.clear();
    m.update(&synthetic(2, 0), &meta()).unwrap();
    m.compute().unwrap();
    let rows = log.rows();
    assert_eq!(rows[&(3, SplitKind::Train)].values["samples"], 7.0);
    assert_eq!(rows[&(4, SplitKind::Train)].values["samples"], 2.0);
}

#[test]
fn codebook_clear_keeps_the_codebook_size() {
    let log = EpochLog::default();
    let mut m = CodebookMetric::new(
        CodebookFigure::DeadCodes,
        EpochTracker::new(log.clone(), SplitKind::Valid, 1),
    );
    let mut b = synthetic(3, 0);
    let h = Arc::make_mut(&mut b.0);
    h.codes = vec![0, 1, 1];
    h.codebook_size = 4;
    let e = m.update(&b, &meta()).unwrap();
    assert_eq!(e.formatted, "epoch 2.0 - batch 2.0");
    m.compute().unwrap();
    m.clear();
    // An epoch without a batch: every code of the known codebook is dead.
    assert_eq!(m.compute().unwrap().formatted, "epoch 4.0");
    assert_eq!(
        log.last(SplitKind::Valid).unwrap(),
        EpochRow {
            epoch: 2,
            values: [("dead_codes".to_string(), 4.0)].into(),
            kl_per_dim: Vec::new(),
        }
    );
}

#[test]
fn alarm_text_is_the_verdict_reason() {
    let log = EpochLog::default();
    let mut m = CollapseAlarmMetric::new(
        DiagnosticsConfig::default(),
        EpochTracker::new(log, SplitKind::Train, 1),
    );
    let e = m.update(&synthetic(10, 0), &meta()).unwrap();
    assert!(e.formatted.starts_with("ok: KL "), "{}", e.formatted);
    assert_eq!(e.serialized, NumericEntry::Value(0.0).serialize());
    assert_eq!(m.final_value().serialize(), "0,final");
}
