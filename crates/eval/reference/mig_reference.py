#!/usr/bin/env python3
"""Reference value of the MIG test in crates/eval/src/disentangle.rs, computed the way
disentanglement_lib does (google-research/disentanglement_lib, evaluation/metrics/mig.py and
utils.py: _histogram_discretize, discrete_mutual_info, discrete_entropy), with numpy and
scikit-learn's mutual_info_score.

    python3 crates/eval/reference/mig_reference.py

The arrays are the fixed ones the Rust test builds (same formulas).
"""
import numpy as np
from sklearn.metrics import mutual_info_score

N = 600
n = np.arange(N)
factors = np.stack([n % 3, (n * 7) % 6, (n * 13) % 40, (n * 5 + n // 7) % 32])  # [4, N]
codes = np.stack([
    factors[0] + 0.1 * np.sin(n),
    factors[1] * 0.5 + np.cos(n * 0.37),
    np.sin(n * 0.11) * 3.0,
    factors[2] * 0.2 + factors[3] * 0.05,
    factors[3] * 1.0 + 0.3 * np.cos(n * 1.3),
])  # [5, N]


def histogram_discretize(target, num_bins=20):
    out = np.zeros_like(target, dtype=np.int64)
    for i in range(target.shape[0]):
        out[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return out


disc = histogram_discretize(codes)
m = np.array([[mutual_info_score(factors[j], disc[i]) for j in range(4)] for i in range(5)])
entropy = np.array([mutual_info_score(factors[j], factors[j]) for j in range(4)])
sorted_m = np.sort(m, axis=0)[::-1]
print(f"MIG = {np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:])):.12f}")
