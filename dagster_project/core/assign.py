"""Sentences to the topics of a fit: cluster centres, and each sentence's nearest centre, streamed in chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy.sparse import csr_matrix

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


def assign_to_fit(embeddings: np.ndarray, fitted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Labels of every row of `embeddings`: the rows `fitted` (indices) keep their `labels`; every other row
    takes the label of the nearest centre of the fitted clusters (-1 when the fit found no cluster)."""
    ids, centres = centroids(embeddings[fitted], labels)
    out = np.full(len(embeddings), -1, dtype=np.int64)
    if len(ids):
        out[:] = ids[closest_centres(embeddings, centres)[0]]
    out[fitted] = labels
    return out


def assign_to_topics(embeddings: np.ndarray, centres: np.ndarray, radii: np.ndarray | None = None) -> np.ndarray:
    """The index of each row's most cosine-similar centre (unit rows), or -1 when it lies farther from that centre
    than its cosine radius (with `radii`) or when there is no centre."""
    if not len(centres):
        return np.full(len(embeddings), -1, dtype=np.int64)
    best, similarity = closest_centres(embeddings, centres)
    if radii is None:
        return best
    return np.where(1.0 - similarity <= np.asarray(radii)[best] + 1e-6, best, -1)


UNFITTED = -2  # the label of a row the fit did not see, until it is assigned


def stratified_rows(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most about `limit` rows: each label in proportion to its count, every label with
    one row at least."""
    labels = np.asarray(labels)
    if len(labels) <= limit:
        return np.arange(len(labels))
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    ids, inverse, counts = np.unique(labels[shuffled], return_inverse=True, return_counts=True)
    quota = np.maximum(np.round(counts * (limit / len(labels))), 1)
    order = np.argsort(inverse, kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.sort(shuffled[rank < quota[inverse]])


def label_streamed(chunks: Iterable[tuple[np.ndarray, np.ndarray]], labels: np.ndarray, centres: np.ndarray,
                   centre_ids: np.ndarray, radii: np.ndarray | None = None,
                   adjust: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
                   clusters: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every row's label and the vector sum of every cluster (ids 0..max), in one pass over the embedding rows,
    a chunk (row positions, their vectors) at a time in any order: a row labelled UNFITTED takes the id of the
    most similar of `centres` (unit rows; -1 when farther than that centre's cosine `radius`, with `radii`);
    every other row keeps its label; then `adjust(positions, vectors, labels)` may change a chunk's labels (to
    ids below `clusters` when above the others).
    `centres` give the dimension even when there are none (0 x d)."""
    labels = np.array(labels, dtype=np.int64)
    sums = np.zeros((max(int(labels.max(initial=-1)) + 1, int(centre_ids.max(initial=-1)) + 1, clusters),
                     centres.shape[1]))
    seen = np.zeros(len(labels), dtype=bool)
    for positions, chunk in chunks:
        seen[positions] = True
        todo = positions[labels[positions] == UNFITTED]
        if len(todo) and len(centres):
            index = assign_to_topics(chunk[labels[positions] == UNFITTED], centres, radii)
            labels[todo] = np.where(index < 0, -1, centre_ids[index])
        labels[todo[labels[todo] == UNFITTED]] = -1  # no centre to join
        if adjust is not None:
            labels[positions] = adjust(positions, chunk, labels[positions])
        part = labels[positions]
        kept = part >= 0
        if kept.any():
            membership = csr_matrix((np.ones(int(kept.sum())), (part[kept], np.flatnonzero(kept))),
                                    shape=(len(sums), len(chunk)))
            sums += membership @ np.asarray(chunk, np.float64)
    if not seen.all():
        raise ValueError(f"the embedding chunks held no vector for {int((~seen).sum())} of {len(labels)} rows")
    return labels, sums
