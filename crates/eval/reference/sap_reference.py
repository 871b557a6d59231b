#!/usr/bin/env python3
"""Reference value of the SAP test in crates/eval/src/disentangle.rs, computed the way
disentanglement_lib does (evaluation/metrics/sap_score.py: compute_score_matrix with
svm.LinearSVC(C=0.01, class_weight="balanced") per (code, factor) on the 1-D code, accuracy
on the test points, then compute_avg_diff_top_two), with numpy and scikit-learn.

    python3 crates/eval/reference/sap_reference.py

The arrays are the fixed ones the Rust test builds (same formulas).
"""
import numpy as np
from sklearn import svm


def arrays(n, offset):
    i = np.arange(n) + offset
    factors = np.stack([i % 3, (i * 7) % 6, (i * 13) % 10])  # [3, n]
    codes = np.stack([
        factors[0] + 0.3 * np.sin(i),
        factors[1] * 0.5 + np.cos(i * 0.37),
        np.sin(i * 0.11) * 3.0,
        factors[2] * 0.2 + factors[1] * 0.05 + 0.2 * np.cos(i * 1.3),
    ])  # [4, n]
    return codes, factors


mus, ys = arrays(400, 0)
mus_test, ys_test = arrays(200, 1000)
score = np.zeros([mus.shape[0], ys.shape[0]])
for i in range(mus.shape[0]):
    for j in range(ys.shape[0]):
        clf = svm.LinearSVC(C=0.01, class_weight="balanced", tol=1e-10, max_iter=1_000_000)
        clf.fit(mus[i, :][:, np.newaxis], ys[j, :])
        pred = clf.predict(mus_test[i, :][:, np.newaxis])
        score[i, j] = np.mean(pred == ys_test[j, :])
sorted_matrix = np.sort(score, axis=0)
print("score matrix (codes × factors):")
print(score)
print(f"SAP = {np.mean(sorted_matrix[-1, :] - sorted_matrix[-2, :]):.12f}")
