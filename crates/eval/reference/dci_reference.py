#!/usr/bin/env python3
"""Reference values of the DCI formula test in crates/eval/src/dci.rs: disentanglement_lib's
disentanglement() and completeness() (evaluation/metrics/dci.py) on a fixed importance
matrix R[code, factor], with numpy and scipy.

    python3 crates/eval/reference/dci_reference.py
"""
import numpy as np
import scipy.stats

R = np.array([[0.5, 0.1, 0.0], [0.05, 0.4, 0.1], [0.0, 0.0, 0.2], [0.1, 0.1, 0.1]])


def disentanglement(importance_matrix):
    per_code = 1. - scipy.stats.entropy(importance_matrix.T + 1e-11, base=importance_matrix.shape[1])
    if importance_matrix.sum() == 0.:
        importance_matrix = np.ones_like(importance_matrix)
    code_importance = importance_matrix.sum(axis=1) / importance_matrix.sum()
    return np.sum(per_code * code_importance)


def completeness(importance_matrix):
    per_factor = 1. - scipy.stats.entropy(importance_matrix + 1e-11, base=importance_matrix.shape[0])
    if importance_matrix.sum() == 0.:
        importance_matrix = np.ones_like(importance_matrix)
    factor_importance = importance_matrix.sum(axis=0) / importance_matrix.sum()
    return np.sum(per_factor * factor_importance)


print(f"disentanglement {disentanglement(R):.12f}, completeness {completeness(R):.12f}")
