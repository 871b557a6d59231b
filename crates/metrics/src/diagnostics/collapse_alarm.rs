use super::collapsed_dims::KlAccumulator;
use super::{Diagnostic, DiagnosticsConfig, EpochMetric, Label};
use crate::{EpochTracker, HostBatch, StreamingMoments, active_units, collapsed_dims};

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

/// Posterior-collapse check over the epoch: [`collapse_verdict`] of the epoch-mean KL per
/// dimension and the epoch's active units. Value 1 when it fires, else 0; the dashboard text
/// is the verdict's reason.
#[derive(Clone, Debug)]
pub struct CollapseAlarm {
    cfg: DiagnosticsConfig,
    kl: KlAccumulator,
    moments: StreamingMoments,
}

impl CollapseAlarm {
    /// The alarm with the given thresholds.
    pub fn new(cfg: DiagnosticsConfig) -> Self {
        Self {
            cfg,
            kl: KlAccumulator::default(),
            moments: StreamingMoments::default(),
        }
    }

    /// The verdict on the epoch so far.
    pub fn verdict(&self) -> CollapseVerdict {
        let au = active_units(&self.moments.variance(), self.cfg.active_unit_threshold);
        collapse_verdict(&self.kl.means(), Some(au), &self.cfg)
    }
}

impl Diagnostic for CollapseAlarm {
    fn label(&self) -> Label {
        Label::new("Collapse alarm", "posterior_collapse", 0, false)
    }

    fn description(&self) -> Option<String> {
        Some("1 when the posterior has collapsed (q(z|x) ≈ p(z), or no longer depends on x)".into())
    }

    fn update(&mut self, b: &HostBatch) {
        self.kl.update(b);
        self.moments.update(&b.latent_mean, b.latent);
    }

    fn value(&self) -> f64 {
        self.verdict().collapsed as u8 as f64
    }

    /// The verdict's reason, during and at the end of the epoch.
    fn text(&self, _batch: f64, _epoch: f64, _final_entry: bool) -> String {
        self.verdict().reason
    }

    fn clear(&mut self) {
        self.kl = KlAccumulator::default();
        self.moments = StreamingMoments::default();
    }
}

/// Posterior-collapse alarm: 1 when [`collapse_verdict`] fires for the epoch, else 0. Its text
/// in the dashboard says `POSTERIOR COLLAPSE` in capitals.
pub type CollapseAlarmMetric = EpochMetric<CollapseAlarm>;

impl CollapseAlarmMetric {
    /// The alarm with the given thresholds.
    pub fn new(cfg: DiagnosticsConfig, tracker: EpochTracker) -> Self {
        Self::of(CollapseAlarm::new(cfg), tracker)
    }
}
