//! DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018), with
//! disentanglement_lib's formulas (evaluation/metrics/dci.py) on an importance matrix
//! R\[code\]\[factor\].
//!
//! **Substitution:** disentanglement_lib takes R from scikit-learn's
//! `GradientBoostingClassifier` (100 depth-3 trees per factor, impurity-based importances).
//! Here R is the impurity-based importance of a random forest (20 CART trees per factor,
//! Gini, bootstrap samples, depth ≤ 8), written out in this file — the estimator Eastwood &
//! Williams themselves used alongside the lasso. Both measure the total impurity decrease each
//! code dimension buys, so D and C read the same way; absolute values are not comparable with
//! disentanglement_lib's to the second decimal, and informativeness is the forest's test
//! accuracy rather than the boosted trees'.
use ae_data::seeded::{mix, splitmix64};
use serde::{Deserialize, Serialize};

/// DCI scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dci {
    /// Disentanglement: Σ_i ρ_i (1 − H_K(P_i·)), each code's importance spread over factors.
    pub disentanglement: f64,
    /// Completeness: Σ_j ρ_j (1 − H_D(P̃_·j)), each factor's importance spread over codes.
    pub completeness: f64,
    /// Informativeness: mean over factors of the test accuracy of the forest.
    pub informativeness: f64,
    /// Mean training accuracy.
    pub informativeness_train: f64,
}

/// Entropy of `p` (normalised first, as scipy's `entropy`) in base `base`.
fn entropy_base(p: &[f64], base: f64) -> f64 {
    let s: f64 = p.iter().sum();
    -p.iter()
        .map(|&x| x / s)
        .filter(|&x| x > 0.0)
        .map(|x| x * x.ln())
        .sum::<f64>()
        / base.ln()
}

/// Disentanglement and completeness of an importance matrix `r[code][factor]`, exactly as
/// disentanglement_lib computes them (1e-11 added before the entropies).
pub fn dci_from_importance(r: &[Vec<f64>]) -> (f64, f64) {
    let d = r.len();
    let k = r.first().map_or(0, Vec::len);
    let total: f64 = r.iter().flatten().sum();
    let disentanglement = if k > 1 {
        (0..d)
            .map(|i| {
                let row: Vec<f64> = r[i].iter().map(|v| v + 1e-11).collect();
                let weight = if total == 0.0 {
                    1.0
                } else {
                    r[i].iter().sum::<f64>() / total
                };
                (1.0 - entropy_base(&row, k as f64)) * weight
            })
            .sum()
    } else {
        0.0
    };
    let completeness = if d > 1 {
        (0..k)
            .map(|j| {
                let col: Vec<f64> = r.iter().map(|row| row[j] + 1e-11).collect();
                let weight = if total == 0.0 {
                    1.0
                } else {
                    r.iter().map(|row| row[j]).sum::<f64>() / total
                };
                (1.0 - entropy_base(&col, d as f64)) * weight
            })
            .sum()
    } else {
        0.0
    };
    (disentanglement, completeness)
}

enum Node {
    Leaf(usize),
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

/// A CART classification tree (Gini), grown on `rows` of `x`.
struct Tree {
    nodes: Vec<Node>,
}

fn gini(counts: &[usize], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    1.0 - counts
        .iter()
        .map(|&c| (c as f64 / n as f64).powi(2))
        .sum::<f64>()
}

impl Tree {
    fn grow(
        x: &[Vec<f64>],
        y: &[usize],
        classes: usize,
        rows: Vec<usize>,
        max_depth: usize,
        importance: &mut [f64],
        total: usize,
    ) -> Self {
        let mut tree = Tree { nodes: Vec::new() };
        tree.node(x, y, classes, rows, 0, max_depth, importance, total);
        tree
    }

    #[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
    fn node(
        &mut self,
        x: &[Vec<f64>],
        y: &[usize],
        classes: usize,
        rows: Vec<usize>,
        depth: usize,
        max_depth: usize,
        importance: &mut [f64],
        total: usize,
    ) -> usize {
        let mut counts = vec![0usize; classes];
        rows.iter().for_each(|&r| counts[y[r]] += 1);
        let n = rows.len();
        let majority = (0..classes)
            .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
            .unwrap_or(0);
        let here = gini(&counts, n);
        let id = self.nodes.len();
        self.nodes.push(Node::Leaf(majority));
        if depth >= max_depth || n < 4 || here == 0.0 {
            return id;
        }
        // Best split over every feature and threshold (midpoints between distinct values).
        let mut best: Option<(f64, usize, f64)> = None;
        let mut sorted = rows.clone();
        for f in 0..x[0].len() {
            sorted.sort_by(|&a, &b| x[a][f].total_cmp(&x[b][f]));
            // Gini from running sums of squared class counts: O(1) per candidate split.
            let mut left = vec![0usize; classes];
            let mut right = counts.clone();
            let (mut sq_left, mut sq_right) = (0usize, counts.iter().map(|c| c * c).sum::<usize>());
            for s in 0..n - 1 {
                let c = y[sorted[s]];
                sq_left += 2 * left[c] + 1;
                sq_right -= 2 * right[c] - 1;
                left[c] += 1;
                right[c] -= 1;
                let (a, b) = (x[sorted[s]][f], x[sorted[s + 1]][f]);
                if a == b {
                    continue;
                }
                let (nl, nr) = (s + 1, n - s - 1);
                // n_side · gini_side = n_side − Σ counts² / n_side.
                let child = ((nl as f64 - sq_left as f64 / nl as f64)
                    + (nr as f64 - sq_right as f64 / nr as f64))
                    / n as f64;
                let gain = here - child;
                if best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, f, 0.5 * (a + b)));
                }
            }
        }
        let Some((gain, feature, threshold)) = best.filter(|b| b.0 > 0.0) else {
            return id;
        };
        importance[feature] += gain * n as f64 / total as f64;
        let (l, r): (Vec<usize>, Vec<usize>) =
            rows.iter().partition(|&&i| x[i][feature] <= threshold);
        let left = self.node(x, y, classes, l, depth + 1, max_depth, importance, total);
        let right = self.node(x, y, classes, r, depth + 1, max_depth, importance, total);
        self.nodes[id] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        id
    }

    fn predict(&self, v: &[f64]) -> usize {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf(c) => return c,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => i = if v[feature] <= threshold { left } else { right },
            }
        }
    }
}

/// A random forest on codes `x` for labels `y`: (importance per code dimension, normalised to
/// sum 1 per tree and averaged, train accuracy, test accuracy).
fn forest(
    x: &[Vec<f64>],
    y: &[usize],
    x_test: &[Vec<f64>],
    y_test: &[usize],
    trees: usize,
    seed: u64,
) -> (Vec<f64>, f64, f64) {
    let d = x[0].len();
    let classes = y.iter().chain(y_test).max().map_or(1, |m| m + 1);
    let n = x.len();
    let mut importance = vec![0.0; d];
    let mut grown = Vec::with_capacity(trees);
    for t in 0..trees {
        let mut state = mix(&[seed, t as u64]);
        let rows: Vec<usize> = (0..n)
            .map(|_| {
                state = splitmix64(state);
                ((state as u128 * n as u128) >> 64) as usize
            })
            .collect();
        let mut imp = vec![0.0; d];
        grown.push(Tree::grow(x, y, classes, rows, 8, &mut imp, n));
        let s: f64 = imp.iter().sum();
        if s > 0.0 {
            importance
                .iter_mut()
                .zip(&imp)
                .for_each(|(a, b)| *a += b / s);
        }
    }
    importance.iter_mut().for_each(|v| *v /= trees as f64);
    let accuracy = |xs: &[Vec<f64>], ys: &[usize]| {
        let right = xs
            .iter()
            .zip(ys)
            .filter(|&(v, &label)| {
                let mut votes = vec![0usize; classes];
                grown.iter().for_each(|t| votes[t.predict(v)] += 1);
                (0..classes).max_by_key(|&c| (votes[c], std::cmp::Reverse(c))) == Some(label)
            })
            .count();
        right as f64 / ys.len().max(1) as f64
    };
    (importance, accuracy(x, y), accuracy(x_test, y_test))
}

/// DCI of codes for discrete factors (train and test points), with `trees` trees per factor.
pub fn dci_of(
    codes: &[Vec<f64>],
    factors: &[Vec<usize>],
    codes_test: &[Vec<f64>],
    factors_test: &[Vec<usize>],
    trees: usize,
    seed: u64,
) -> Dci {
    let d = codes.first().map_or(0, Vec::len);
    let k = factors.first().map_or(0, Vec::len);
    let mut r = vec![vec![0.0; k]; d];
    let (mut train_acc, mut test_acc) = (0.0, 0.0);
    for j in 0..k {
        let y: Vec<usize> = factors.iter().map(|f| f[j]).collect();
        let yt: Vec<usize> = factors_test.iter().map(|f| f[j]).collect();
        let (imp, tr, te) = forest(codes, &y, codes_test, &yt, trees, mix(&[seed, j as u64]));
        for i in 0..d {
            r[i][j] = imp[i];
        }
        train_acc += tr;
        test_acc += te;
    }
    let (disentanglement, completeness) = dci_from_importance(&r);
    Dci {
        disentanglement,
        completeness,
        informativeness: test_acc / k.max(1) as f64,
        informativeness_train: train_acc / k.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_formulas_match_disentanglement_lib_with_scipy() {
        // python3 crates/eval/reference/dci_reference.py →
        // disentanglement 0.438591212663, completeness 0.395363857297
        let r = vec![
            vec![0.5, 0.1, 0.0],
            vec![0.05, 0.4, 0.1],
            vec![0.0, 0.0, 0.2],
            vec![0.1, 0.1, 0.1],
        ];
        let (d, c) = dci_from_importance(&r);
        assert!((d - 0.438_591_212_663).abs() < 1e-9, "{d}");
        assert!((c - 0.395_363_857_297).abs() < 1e-9, "{c}");
        // One code per factor: D = C = 1; every code for every factor equally: D = C = 0.
        let diag = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let (d, c) = dci_from_importance(&diag);
        assert!((d - 1.0).abs() < 1e-9 && (c - 1.0).abs() < 1e-9);
        let flat = vec![vec![1.0, 1.0], vec![1.0, 1.0]];
        let (d, c) = dci_from_importance(&flat);
        assert!(d.abs() < 1e-9 && c.abs() < 1e-9);
    }

    fn draws(n: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                [3usize, 6, 10]
                    .iter()
                    .map(|&k| {
                        s = splitmix64(s);
                        ((s as u128 * k as u128) >> 64) as usize
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn ideal_codes_score_high_and_noise_low() {
        let (f, ft) = (draws(2_000, 1), draws(500, 2));
        let ideal = |f: &[Vec<usize>]| -> Vec<Vec<f64>> {
            f.iter()
                .map(|v| v.iter().map(|&x| x as f64).collect())
                .collect()
        };
        let good = dci_of(&ideal(&f), &f, &ideal(&ft), &ft, 10, 3);
        assert!(
            good.disentanglement > 0.9 && good.completeness > 0.9,
            "{good:?}"
        );
        assert!(good.informativeness > 0.99, "{good:?}");
        let mut s = 99u64;
        let mut noise = |n: usize| -> Vec<Vec<f64>> {
            (0..n)
                .map(|_| {
                    (0..3)
                        .map(|_| {
                            s = splitmix64(s);
                            (s >> 11) as f64 / (1u64 << 53) as f64
                        })
                        .collect()
                })
                .collect()
        };
        let (a, b) = (noise(2_000), noise(500));
        let bad = dci_of(&a, &f, &b, &ft, 10, 3);
        assert!(
            bad.disentanglement < 0.2 && bad.completeness < 0.2,
            "{bad:?}"
        );
        // Chance accuracy is 1/3, 1/6, 1/10: mean 0.21.
        assert!(bad.informativeness < 0.3, "{bad:?}");
    }
}
