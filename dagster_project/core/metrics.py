"""Clustering quality: internal metrics on the embeddings, external ones against labels when present."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics


def clustering_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    true_labels: np.ndarray | None = None,
    silhouette_sample: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """n_clusters, noise_fraction, silhouette (cosine; sampled above `silhouette_sample` rows),
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
        sample = min(silhouette_sample, len(y))
        result["silhouette"] = float(
            metrics.silhouette_score(x, y, metric="cosine", sample_size=sample if sample < len(y) else None,
                                     random_state=seed)
        )
        result["silhouette_sample_size"] = int(sample)
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
