"""k-means in torch (Lloyd's algorithm, greedy k-means++ seeding), for embeddings on a GPU.

The objective, the seeding and the stopping rule are scikit-learn's KMeans (lloyd); the work is a few matrix
products per iteration, done on whatever device holds the tensor (the same code runs on CPU tensors).
Centre sums are one-hot matrix products rather than scatter-adds, so results do not depend on the order in
which a GPU accumulates them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .community import as_tensor
from .metrics import BLOCK_ROWS


def _squared_distances(x: Any, x_norms: Any, centers: Any) -> Any:
    """||x - c||^2 for every row of x and every centre, clamped at 0."""
    return (x_norms[:, None] - 2.0 * (x @ centers.T) + (centers * centers).sum(1)[None, :]).clamp_min_(0.0)


def _assign(x: Any, x_norms: Any, centers: Any) -> tuple[Any, Any]:
    """Nearest centre and its squared distance per row, block by block (memory: one block x k)."""
    import torch

    labels = torch.empty(len(x), dtype=torch.int64, device=x.device)
    distances = torch.empty(len(x), dtype=torch.float32, device=x.device)
    for start in range(0, len(x), BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        distances[block], labels[block] = _squared_distances(x[block], x_norms[block], centers).min(dim=1)
    return labels, distances


def _centre_sums(x: Any, labels: Any, k: int) -> tuple[Any, Any]:
    import torch

    sums = torch.zeros((k, x.shape[1]), dtype=torch.float64, device=x.device)
    for start in range(0, len(x), BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        one_hot = torch.nn.functional.one_hot(labels[block], k).to(torch.float32)
        sums += (one_hot.T @ x[block]).double()
    counts = torch.bincount(labels, minlength=k)
    return sums, counts


def kmeans_plus_plus(x: Any, x_norms: Any, k: int, generator: Any) -> Any:
    """Greedy k-means++ (as scikit-learn): each new centre is the best of 2 + log(k) candidates drawn in
    proportion to the squared distance to the nearest centre so far."""
    import torch

    n = len(x)
    trials = 2 + int(math.log(k))
    centers = torch.empty((k, x.shape[1]), dtype=x.dtype, device=x.device)
    first = int(torch.randint(n, (1,), generator=generator, device=generator.device).item())
    centers[0] = x[first]
    closest = _squared_distances(x, x_norms, centers[:1])[:, 0]
    potential = closest.double().sum()
    for c in range(1, k):
        draws = torch.rand(trials, generator=generator, device=generator.device, dtype=torch.float64)
        cumulative = torch.cumsum(closest.double(), 0)
        candidates = torch.searchsorted(cumulative, draws.to(x.device) * potential).clamp_(max=n - 1)
        candidate_distances = torch.minimum(closest[:, None], _squared_distances(x, x_norms, x[candidates]))
        potentials = candidate_distances.double().sum(0)
        best = int(torch.argmin(potentials).item())
        closest, potential = candidate_distances[:, best].contiguous(), potentials[best]
        centers[c] = x[candidates[best]]
    return centers


def lloyd(x: Any, k: int, seed: int = 0, n_init: int = 3, max_iter: int = 300, tol: float = 1e-4,
          device: str = "cpu") -> tuple[np.ndarray, float, np.ndarray]:
    """(labels, inertia, centres) of the best of `n_init` k-means runs by inertia (sum of squared distances).

    Stops a run when the centres move less than `tol` times the mean per-feature variance, as scikit-learn."""
    import torch

    x = as_tensor(x, device)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= {n} rows, got k={k}")
    x_norms = (x * x).sum(1)
    threshold = tol * float(x.var(dim=0).mean())
    generator = torch.Generator(device=x.device if x.device.type != "mps" else "cpu").manual_seed(seed)
    best: tuple[Any, float, Any] | None = None
    for _ in range(max(1, n_init)):
        centers = kmeans_plus_plus(x, x_norms, k, generator)
        for _ in range(max_iter):
            labels, _ = _assign(x, x_norms, centers)
            sums, counts = _centre_sums(x, labels, k)
            moved = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers.double()).float()
            shift = float(((moved - centers) ** 2).sum())
            centers = moved
            if shift <= threshold:
                break
        labels, distances = _assign(x, x_norms, centers)
        inertia = float(distances.double().sum())
        if best is None or inertia < best[1]:
            best = (labels, inertia, centers)
    labels, inertia, centers = best
    return labels.cpu().numpy(), inertia, centers.cpu().numpy()


class TorchKMeans:
    """The slice of scikit-learn's KMeans interface the registry uses (fit -> labels_, inertia_), in torch."""

    def __init__(self, n_clusters: int, n_init: int = 3, random_state: int = 0, device: str = "cpu"):
        self.n_clusters, self.n_init, self.random_state, self.device = n_clusters, n_init, random_state, device

    def fit(self, x: Any) -> "TorchKMeans":
        self.labels_, self.inertia_, self.cluster_centers_ = lloyd(
            x, self.n_clusters, seed=self.random_state, n_init=self.n_init, device=self.device)
        return self
