"""Fast community detection (as `sentence_transformers.util.community_detection`), with bounded memory.

The reference materializes `batch_size x n` similarity blocks and drops every sentence that lands in no
community. This version scores rows in blocks sized to a memory budget, keeps only the indices above the
threshold, returns one label per sentence (-1 = in no community) and yields exactly the reference's communities.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BLOCK_BYTES = 256 * 2**20


def _block_rows(n: int, block_bytes: int) -> int:
    return max(1, min(n, block_bytes // max(1, 4 * n)))


def neighbour_lists(
    embeddings: np.ndarray, threshold: float, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """CSR form (indptr, indices) of every row's neighbours at cosine >= threshold, itself included.

    Similarity is symmetric, so each block of rows is scored only against itself and the rows after it
    (half the multiply-adds of scoring every row against all), and every pair found is recorded both ways.
    Memory: one block of scores plus the pairs above the threshold."""
    n = len(embeddings)
    index_type = np.int32 if n < 2**31 else np.int64
    threshold = np.float32(threshold)
    step = _block_rows(n, block_bytes)
    rows, cols = [], []
    for start in range(0, n, step):
        stop = min(n, start + step)
        r, c = np.nonzero(embeddings[start:stop] @ embeddings[start:].T >= threshold)
        r = (r + start).astype(index_type)
        c = (c + start).astype(index_type)
        later = c >= stop  # pairs with a row of a later block: record the mirror pair too
        rows += [r, c[later]]
        cols += [c, r[later]]
    rows_all = np.concatenate(rows) if rows else np.zeros(0, index_type)
    cols_all = np.concatenate(cols) if cols else np.zeros(0, index_type)
    order = np.lexsort((cols_all, rows_all))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows_all, minlength=n), out=indptr[1:])
    return indptr, cols_all[order]


def candidate_communities(
    embeddings: np.ndarray, threshold: float, min_size: int, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> list[tuple[int, np.ndarray]]:
    """(center, members) for every row with at least `min_size` rows at cosine >= threshold (itself included),
    in row order."""
    indptr, indices = neighbour_lists(embeddings, threshold, block_bytes)
    counts = np.diff(indptr)
    return [(int(row), indices[indptr[row] : indptr[row + 1]]) for row in np.flatnonzero(counts >= min_size)]


def community_labels(
    embeddings: np.ndarray, threshold: float = 0.75, min_size: int = 10, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> np.ndarray:
    """Label per row: communities numbered largest first, -1 for rows in no community.

    `embeddings` must be L2-normalized float32 (cosine = dot product).
    """
    n = len(embeddings)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0 or n < min_size:
        return labels
    candidates = candidate_communities(np.ascontiguousarray(embeddings, dtype=np.float32), threshold, min_size, block_bytes)
    candidates.sort(key=lambda c: len(c[1]), reverse=True)  # stable: ties keep row order, as the reference
    accepted: list[np.ndarray] = []
    used = np.zeros(n, dtype=bool)
    for center, members in candidates:
        if used[center]:
            continue
        free = members[~used[members]]
        if len(free) >= min_size:
            community = np.union1d(free, [center])  # the reference always keeps the center
            accepted.append(community)
            used[community] = True
    order = sorted(range(len(accepted)), key=lambda i: len(accepted[i]), reverse=True)
    for cluster_id, index in enumerate(order):
        labels[accepted[index]] = cluster_id
    return labels


def kth_neighbor_similarity(
    queries: np.ndarray, k: int, corpus: np.ndarray | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> np.ndarray:
    """Cosine similarity of each query row to its k-th most similar row of `corpus` (default: the queries
    themselves; a query that is in the corpus counts itself as the first)."""
    corpus = queries if corpus is None else corpus
    n = len(corpus)
    k = max(1, min(k, n))
    out = np.empty(len(queries), dtype=np.float32)
    step = _block_rows(n, block_bytes)
    for start in range(0, len(queries), step):
        scores = queries[start : start + step] @ corpus.T
        out[start : start + step] = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    return out
