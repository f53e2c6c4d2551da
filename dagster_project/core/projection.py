"""2-D projection of the embeddings for the sentence map."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA


def fit_projection(sample: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[Any, str]:
    """A 2-D projection fitted on the rows `sample` (its `transform` applies it to any rows), and the method
    used: `auto` uses UMAP when umap-learn is installed, else PCA."""
    if method == "auto":
        try:
            import umap  # noqa: F401

            method = "umap"
        except ImportError:
            method = "pca"
    if method == "umap":
        import umap

        return umap.UMAP(n_components=2, metric="cosine", random_state=seed).fit(sample), method
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit(sample), method
    raise ValueError(f"projection method '{method}' is not one of auto, umap, pca")


def project_2d(embeddings: np.ndarray, method: str = "auto", fit_sample: int = 20_000,
               seed: int = 0) -> tuple[np.ndarray, str]:
    """(n x 2 coordinates, method used) of `fit_projection`; large corpora are fitted on a sample of `fit_sample`
    rows and the fit applied to all."""
    n = len(embeddings)
    if n < 3:
        return np.zeros((n, 2), dtype=np.float32), "none"
    rng = np.random.default_rng(seed)
    fit_rows = embeddings if n <= fit_sample else embeddings[rng.choice(n, fit_sample, replace=False)]
    model, method = fit_projection(fit_rows, method, seed)
    return model.transform(embeddings).astype(np.float32), method


def place_near_neighbours(new: np.ndarray, reference: np.ndarray, reference_xy: np.ndarray,
                          neighbours: int = 10) -> np.ndarray:
    """Map coordinates for `new` embeddings without projecting again: the similarity-weighted mean position of
    each one's most cosine-similar `reference` rows (unit vectors, already on the map at `reference_xy`), which is
    where UMAP's own transform starts a new point."""
    if not len(new):
        return np.zeros((0, 2), dtype=np.float32)
    k = min(neighbours, len(reference))
    out = np.empty((len(new), 2), dtype=np.float32)
    for start in range(0, len(new), 4096):
        scores = np.asarray(new[start:start + 4096], np.float32) @ np.asarray(reference, np.float32).T
        nearest = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        weights = np.maximum(np.take_along_axis(scores, nearest, axis=1), 1e-6)
        out[start:start + 4096] = (weights[:, :, None] * reference_xy[nearest]).sum(axis=1) / weights.sum(
            axis=1, keepdims=True)
    return out
