"""Sentences to the topics of a fit: cluster centres, and each sentence's nearest centre, streamed in chunks."""

from __future__ import annotations

import numpy as np

ASSIGN_CHUNK = 65_536  # rows scored at a time: memory is one chunk of scores, whatever the corpus


def label_means(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids >= 0, their plain mean embeddings)."""
    ids = np.unique(labels[labels >= 0])
    means = (np.stack([embeddings[labels == c].mean(axis=0) for c in ids]) if len(ids)
             else np.zeros((0, embeddings.shape[1]), dtype=np.float32))
    return ids, means


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids >= 0, their normalized mean embeddings)."""
    ids, means = label_means(embeddings, labels)
    return ids, means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def closest_centres(embeddings: np.ndarray, centres: np.ndarray,
                    chunk: int = ASSIGN_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """The index of the most cosine-similar centre (unit rows) of every embedding row (unit too), and that
    similarity."""
    centres = np.asarray(centres, dtype=np.float32)
    best = np.empty(len(embeddings), dtype=np.int64)
    similarity = np.empty(len(embeddings), dtype=np.float32)
    for start in range(0, len(embeddings), chunk):
        scores = np.asarray(embeddings[start:start + chunk], np.float32) @ centres.T
        best[start:start + chunk] = np.argmax(scores, axis=1)
        similarity[start:start + chunk] = scores[np.arange(len(scores)), best[start:start + chunk]]
    return best, similarity


def nearest_centre(embeddings: np.ndarray, centres: np.ndarray, chunk: int = ASSIGN_CHUNK) -> np.ndarray:
    """The index of the most cosine-similar centre (unit rows) of every embedding row (unit too)."""
    return closest_centres(embeddings, centres, chunk)[0]


def assign_to_fit(embeddings: np.ndarray, fitted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels of every row of `embeddings`: the rows `fitted` (indices) keep their `labels`; every other row
    takes the label of the nearest centre of the fitted clusters (-1 when the fit found no cluster)."""
    ids, centres = centroids(embeddings[fitted], labels)
    out = np.full(len(embeddings), -1, dtype=np.int64)
    if len(ids):
        out[:] = ids[nearest_centre(embeddings, centres)]
    out[fitted] = labels
    return out
