//! Anomaly detection scores: how well a per-image score (−ELBO, NLL_k, reconstruction error)
//! separates held-out classes (positives) from the classes the model was trained on.
//!
//! - [`auroc`]: area under the ROC curve, the Mann–Whitney statistic with ties counted as ½.
//! - [`auprc`]: area under the precision–recall curve as average precision (scikit-learn's
//!   `average_precision_score`: Σ_n (R_n − R_{n−1}) P_n over distinct thresholds).
//! - [`roc_curve`]: its points, one per distinct threshold.
use serde::{Deserialize, Serialize};

/// Positions of `scores` sorted by decreasing score, grouped by equal score.
fn tie_groups(scores: &[f64]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(g) if scores[g[0]] == scores[i] => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// Area under the ROC curve of `scores` (higher = more anomalous) for `positive` labels: the
/// probability that a random positive scores above a random negative, ties counting ½.
/// `None` without both classes.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let p = positive.iter().filter(|&&x| x).count();
    let n = positive.len() - p;
    if p == 0 || n == 0 {
        return None;
    }
    // Σ over positives of (negatives below + ½ negatives tied), via tie groups from the top.
    let mut negatives_above = 0usize;
    let mut area = 0.0;
    for g in tie_groups(scores) {
        let (gp, gn) = g.iter().fold((0usize, 0usize), |(a, b), &i| {
            if positive[i] { (a + 1, b) } else { (a, b + 1) }
        });
        let below = n - negatives_above - gn;
        area += gp as f64 * (below as f64 + 0.5 * gn as f64);
        negatives_above += gn;
    }
    Some(area / (p as f64 * n as f64))
}

/// Average precision of `scores` for `positive` labels (`None` without positives).
pub fn auprc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let p = positive.iter().filter(|&&x| x).count();
    if p == 0 {
        return None;
    }
    let (mut tp, mut fp, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    for g in tie_groups(scores) {
        for &i in &g {
            if positive[i] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        let recall = tp as f64 / p as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    Some(ap)
}

/// ROC points (false-positive rate, true-positive rate), from (0, 0) to (1, 1).
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<(f64, f64)> {
    let p = positive.iter().filter(|&&x| x).count().max(1) as f64;
    let n = positive.iter().filter(|&&x| !x).count().max(1) as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    for g in tie_groups(scores) {
        for &i in &g {
            if positive[i] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
        }
        pts.push((fp / n, tp / p));
    }
    pts
}

/// One anomaly score's separation of the held-out classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScore {
    /// `neg_elbo`, `nll_k<k>` or `recon`.
    pub score: String,
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Average precision.
    pub auprc: f64,
    /// ROC points (not stored in `eval.json`; drawn into `roc.png`).
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
}

/// Anomaly detection of held-out classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyReport {
    /// The held-out classes (positives).
    pub classes: Vec<u32>,
    /// Positive (held-out) images evaluated.
    pub positives: usize,
    /// Negative images evaluated.
    pub negatives: usize,
    /// One entry per score.
    pub scores: Vec<AnomalyScore>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_score_has_area_one_and_a_reversed_one_zero() {
        let labels = [false, false, true, true];
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(auprc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(auroc(&[1.0; 4], &[true; 4]), None);
    }

    #[test]
    fn ties_count_one_half() {
        // Every score equal: AUROC ½; AP = the positive rate.
        let labels = [true, false, false, true, false];
        assert_eq!(auroc(&[3.0; 5], &labels), Some(0.5));
        assert!((auprc(&[3.0; 5], &labels).unwrap() - 0.4).abs() < 1e-12);
        // sklearn: roc_auc_score([0,0,1,1], [0.1,0.5,0.5,0.9]) = 0.875.
        let a = auroc(&[0.1, 0.5, 0.5, 0.9], &[false, false, true, true]).unwrap();
        assert!((a - 0.875).abs() < 1e-12);
        // sklearn: average_precision_score([0,0,1,1], [0.1,0.5,0.5,0.9]) = 0.8333.
        let ap = auprc(&[0.1, 0.5, 0.5, 0.9], &[false, false, true, true]).unwrap();
        assert!((ap - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn a_random_score_has_area_one_half() {
        let mut s = 1u64;
        let mut next = || {
            s = ae_data::seeded::splitmix64(s);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let labels: Vec<bool> = (0..20_000).map(|i| i % 10 == 0).collect();
        let scores: Vec<f64> = (0..20_000).map(|_| next()).collect();
        let a = auroc(&scores, &labels).unwrap();
        assert!((a - 0.5).abs() < 0.02, "{a}");
        let roc = roc_curve(&scores, &labels);
        assert_eq!((roc[0], *roc.last().unwrap()), ((0.0, 0.0), (1.0, 1.0)));
    }
}
