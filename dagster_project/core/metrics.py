"""Clustering quality: internal metrics on the embeddings, external ones against labels when present."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics

from .community import as_tensor

BLOCK_ROWS = 65_536  # rows per block of the blockwise passes (metrics here, k-means in torch)
PAIR_BLOCK = 2**22  # centroid pairs scored at a time (Davies-Bouldin)


def _groups(labels: np.ndarray, x: Any) -> tuple[Any, Any, Any]:
    """Cluster index per row (0..k-1), rows per cluster, and per-cluster sums of `x` (float64 torch tensors)."""
    import torch

    _, index, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    index_t = torch.from_numpy(index.astype(np.int64)).to(x.device)
    sums = torch.zeros((len(counts), x.shape[1]), dtype=torch.float64, device=x.device).index_add_(0, index_t, x)
    return index_t, torch.from_numpy(counts).to(device=x.device, dtype=torch.float64), sums


def _float64(embeddings: Any, device: str) -> Any:
    import torch

    return as_tensor(embeddings, device).to(torch.float64 if device != "mps" else torch.float32)


def cosine_silhouette(embeddings: np.ndarray, labels: np.ndarray, device: str = "cpu") -> float:
    """Exact mean silhouette with cosine distance, as scikit-learn's silhouette_score(metric="cosine"), in
    O(n k d) time and O(k d) extra memory instead of O(n^2); in torch on `device`.

    For unit rows, cosine distance 1 - x.y is linear in y, so the mean distance from x to a cluster C is
    1 - x.mean(C), and to the rest of its own cluster (|C| - x.sum(C)) / (|C| - 1). Points in singleton
    clusters score 0, as in scikit-learn."""
    import torch

    x = torch.nn.functional.normalize(_float64(embeddings, device), dim=1)
    index, counts, sums = _groups(labels, x)
    if not 2 <= len(counts) < len(x):
        raise ValueError(f"silhouette needs 2 <= clusters < samples, got {len(counts)} clusters of {len(x)} samples")
    total = 0.0
    for start in range(0, len(x), BLOCK_ROWS):
        own = index[start : start + BLOCK_ROWS]
        dots = x[start : start + BLOCK_ROWS] @ sums.T  # rows x k
        rows = torch.arange(len(own), device=x.device)
        size = counts[own]
        a = (size - dots[rows, own]) / (size - 1).clamp_min(1)
        mean_distance = 1.0 - dots / counts
        mean_distance[rows, own] = torch.inf
        b = mean_distance.min(dim=1).values
        score = (b - a) / torch.maximum(a, b).clamp_min(1e-300)
        total += float(torch.where(size > 1, score, 0.0).sum())
    return total / len(x)


def davies_bouldin(embeddings: np.ndarray, labels: np.ndarray, device: str = "cpu") -> float:
    """scikit-learn's davies_bouldin_score (euclidean), in torch on `device`."""
    import torch

    x = _float64(embeddings, device)
    index, counts, sums = _groups(labels, x)
    centroids = sums / counts[:, None]
    spread = torch.zeros(len(counts), dtype=x.dtype, device=x.device)
    for start in range(0, len(x), BLOCK_ROWS):
        own = index[start : start + BLOCK_ROWS]
        spread.index_add_(0, own, torch.linalg.vector_norm(x[start : start + BLOCK_ROWS] - centroids[own], dim=1))
    spread /= counts
    if torch.allclose(spread, torch.zeros_like(spread)):
        return 0.0
    k, worst, apart = len(counts), torch.empty_like(spread), False
    step = max(1, PAIR_BLOCK // k)  # a block of centroids against all: memory is never k x k
    for start in range(0, k, step):
        block = slice(start, start + step)
        separation = torch.cdist(centroids[block], centroids, compute_mode="donot_use_mm_for_euclid_dist")
        apart = apart or not torch.allclose(separation, torch.zeros_like(separation))
        separation[separation == 0] = torch.inf  # itself (and equal centroids) never the worst pair, as scikit-learn
        worst[block] = ((spread[block, None] + spread[None, :]) / separation).max(dim=1).values
    return float(worst.mean()) if apart else 0.0


def calinski_harabasz(embeddings: np.ndarray, labels: np.ndarray, device: str = "cpu") -> float:
    """scikit-learn's calinski_harabasz_score, in torch on `device`."""
    x = _float64(embeddings, device)
    index, counts, sums = _groups(labels, x)
    n, k = len(x), len(counts)
    centroids = sums / counts[:, None]
    mean = x.mean(dim=0)
    between = float((counts * ((centroids - mean) ** 2).sum(dim=1)).sum())
    within = 0.0
    for start in range(0, n, BLOCK_ROWS):
        own = index[start : start + BLOCK_ROWS]
        within += float(((x[start : start + BLOCK_ROWS] - centroids[own]) ** 2).sum())
    return 1.0 if within == 0.0 else between * (n - k) / (within * (k - 1))


def clustering_metrics(
    embeddings: np.ndarray,
    labels: np.ndarray,
    true_labels: np.ndarray | None = None,
    device: str = "cpu",
    rows: np.ndarray | None = None,
) -> dict[str, Any]:
    """n_clusters, noise_fraction, silhouette (cosine, exact over every clustered row),
    davies_bouldin, calinski_harabasz over non-noise rows; nmi, ari, v_measure over all rows with noise as one
    group. A metric that is undefined (fewer than two clusters, no labels) is None. With `rows`, `embeddings`
    are those rows of the corpus only (a sample): silhouette, Davies-Bouldin and Calinski-Harabasz are then of
    that sample (`silhouette_sample_size`), the rest still of every row."""
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
    measured = labels if rows is None else labels[rows]
    x, y = embeddings[measured >= 0], measured[measured >= 0]
    if 2 <= len(np.unique(y)) < len(y):
        result["silhouette"] = cosine_silhouette(x, y, device)
        result["silhouette_sample_size"] = int(len(y))  # every clustered sentence measured, or those sampled
        result["davies_bouldin"] = davies_bouldin(x, y, device)
        result["calinski_harabasz"] = calinski_harabasz(x, y, device)
    if true_labels is not None:
        truth = np.asarray(true_labels, dtype=object)
        known = np.array([t is not None for t in truth])
        if known.any():
            t, p = truth[known].astype(str), labels[known]
            result["nmi"] = float(metrics.normalized_mutual_info_score(t, p))
            result["ari"] = float(metrics.adjusted_rand_score(t, p))
            result["v_measure"] = float(metrics.v_measure_score(t, p))
    return result
