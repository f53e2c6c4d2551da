"""Clustering quality: internal metrics on the embeddings, external ones against labels when present."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from sklearn import metrics

BLOCK_ROWS = 65_536


def cosine_silhouette(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Exact mean silhouette with cosine distance, as scikit-learn's silhouette_score(metric="cosine"), in
    O(n k d) time and O(k d) extra memory instead of O(n^2).

    For unit rows, cosine distance 1 - x.y is linear in y, so the mean distance from x to a cluster C is
    1 - x.mean(C), and to the rest of its own cluster (|C| - x.sum(C)) / (|C| - 1). Points in singleton
    clusters score 0, as in scikit-learn."""
    labels = np.asarray(labels)
    _, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    k = len(counts)
    if not 2 <= k < len(labels):
        raise ValueError(f"silhouette needs 2 <= clusters < samples, got {k} clusters of {len(labels)} samples")
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    membership = csr_matrix((np.ones(len(index)), (index, np.arange(len(index)))), shape=(k, len(index)))
    sums = membership @ x  # k x d
    total = 0.0
    for start in range(0, len(x), BLOCK_ROWS):
        own = index[start : start + BLOCK_ROWS]
        dots = x[start : start + BLOCK_ROWS] @ sums.T  # rows x k
        rows = np.arange(len(own))
        size = counts[own]
        a = (size - dots[rows, own]) / np.maximum(size - 1, 1)
        mean_distance = 1.0 - dots / counts
        mean_distance[rows, own] = np.inf
        b = mean_distance.min(axis=1)
        score = (b - a) / np.maximum(np.maximum(a, b), 1e-300)
        total += float(np.where(size > 1, score, 0.0).sum())
    return total / len(x)


def clustering_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    true_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """n_clusters, noise_fraction, silhouette (cosine, exact over every clustered row),
    davies_bouldin, calinski_harabasz over non-noise rows; nmi, ari, v_measure over all rows with noise as one
    group. A metric that is undefined (fewer than two clusters, no labels) is None."""
    labels = np.asarray(labels)
    clustered = labels >= 0
    n_clusters = len(np.unique(labels[clustered]))
    result: dict[str, Any] = {
        "n_sentences": int(len(labels)),
        "n_clusters": int(n_clusters),
        "noise_fraction": float(1 - clustered.mean()) if len(labels) else 0.0,
        "silhouette": None,
        "silhouette_sample_size": None,
        "davies_bouldin": None,
        "calinski_harabasz": None,
        "nmi": None,
        "ari": None,
        "v_measure": None,
    }
    x, y = embeddings[clustered], labels[clustered]
    if 2 <= n_clusters < len(y):
        result["silhouette"] = cosine_silhouette(x, y)
        result["silhouette_sample_size"] = int(len(y))  # exact: every clustered sentence
        result["davies_bouldin"] = float(metrics.davies_bouldin_score(x, y))
        result["calinski_harabasz"] = float(metrics.calinski_harabasz_score(x, y))
    if true_labels is not None:
        truth = np.asarray(true_labels, dtype=object)
        known = np.array([t is not None for t in truth])
        if known.any():
            t, p = truth[known].astype(str), labels[known]
            result["nmi"] = float(metrics.normalized_mutual_info_score(t, p))
            result["ari"] = float(metrics.adjusted_rand_score(t, p))
            result["v_measure"] = float(metrics.v_measure_score(t, p))
    return result
