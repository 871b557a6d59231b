#!/usr/bin/env python3
"""Reference value of the FactorVAE test in crates/eval/src/disentangle.rs: disentanglement_lib's
evaluation/metrics/factor_vae.py (_prune_dims, _compute_variances, _generate_training_sample's
vote, and compute_factor_vae's majority-vote accuracies) on fixed arrays instead of sampled
batches, with numpy.

    python3 crates/eval/reference/factor_vae_reference.py

The arrays are the fixed ones the Rust test builds (same formulas).
"""
import numpy as np

n = np.arange(300)
# Global sample: 4 code dimensions, the third nearly constant (pruned: std < 0.05).
glob = np.stack([np.sin(n * 0.7), np.cos(n * 0.3) * 2.0, 0.01 * np.sin(n), (n % 7) * 0.3], axis=1)
global_variances = np.var(glob, axis=0, ddof=1)
active_dims = np.sqrt(global_variances) >= 0.05


def batch(v):
    """Vote v: factor v % 3 fixed; 16 codes."""
    m = np.arange(16) + 16 * v
    factor = v % 3
    codes = np.stack([np.sin(m * 0.7), np.cos(m * 0.3) * 2.0, 0.01 * np.sin(m), (m % 7) * 0.3], axis=1)
    # The fixed factor shrinks "its" dimension (0, 1, 3), more or less cleanly.
    dim = [0, 1, 3][factor]
    codes[:, dim] *= [0.05, 0.3, 0.9][v % 4 % 3]
    return factor, codes


def votes(vote_ids):
    out = np.zeros((3, int(active_dims.sum())), dtype=np.int64)
    for v in vote_ids:
        factor, codes = batch(v)
        local_variances = np.var(codes, axis=0, ddof=1)
        argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
        out[factor, argmin] += 1
    return out


train_votes, eval_votes = votes(range(0, 60)), votes(range(60, 90))
classifier = np.argmax(train_votes, axis=0)
other_index = np.arange(train_votes.shape[1])
train_accuracy = np.sum(train_votes[classifier, other_index]) * 1. / np.sum(train_votes)
eval_accuracy = np.sum(eval_votes[classifier, other_index]) * 1. / np.sum(eval_votes)
print(f"active dims {int(active_dims.sum())}, train {train_accuracy:.12f}, eval {eval_accuracy:.12f}")
