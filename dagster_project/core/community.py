"""Fast community detection (as `sentence_transformers.util.community_detection`), with bounded memory.

The reference materializes `batch_size x n` similarity blocks and drops every sentence that lands in no
community. This version scores rows in blocks sized to a memory budget, keeps only the indices above the
threshold, returns one label per sentence (-1 = in no community) and yields exactly the reference's communities.
The block products run in torch on the given device (a GPU when the embeddings come from one; CPU otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_BLOCK_BYTES = 256 * 2**20


def as_tensor(x: Any, device: str = "cpu") -> Any:
    """float32 torch tensor of `x` on `device` (no copy for a writable float32 array on the CPU)."""
    import torch

    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(x, np.float32, ["C", "W"]))
    return tensor.to(device=device, dtype=torch.float32)


def _block_rows(n: int, block_bytes: int) -> int:
    return max(1, min(n, block_bytes // max(1, 4 * n)))


def neighbour_lists(
    embeddings: np.ndarray, threshold: float, block_bytes: int = DEFAULT_BLOCK_BYTES, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """CSR form (indptr, indices) of every row's neighbours at cosine >= threshold, itself included.

    Similarity is symmetric, so each block of rows is scored only against itself and the rows after it
    (half the multiply-adds of scoring every row against all), and every pair found is recorded both ways.
    Memory: one block of scores plus the pairs above the threshold."""
    n = len(embeddings)
    index_type = np.int32 if n < 2**31 else np.int64
    x = as_tensor(embeddings, device)
    step = _block_rows(n, block_bytes)
    rows, cols = [], []
    for start in range(0, n, step):
        stop = min(n, start + step)
        pairs = ((x[start:stop] @ x[start:].T) >= float(np.float32(threshold))).nonzero().cpu().numpy()
        r = (pairs[:, 0] + start).astype(index_type)
        c = (pairs[:, 1] + start).astype(index_type)
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
    embeddings: np.ndarray, threshold: float, min_size: int, block_bytes: int = DEFAULT_BLOCK_BYTES,
    device: str = "cpu",
) -> list[tuple[int, np.ndarray]]:
    """(center, members) for every row with at least `min_size` rows at cosine >= threshold (itself included),
    in row order."""
    indptr, indices = neighbour_lists(embeddings, threshold, block_bytes, device)
    counts = np.diff(indptr)
    return [(int(row), indices[indptr[row] : indptr[row + 1]]) for row in np.flatnonzero(counts >= min_size)]


def community_labels(
    embeddings: np.ndarray, threshold: float = 0.75, min_size: int = 10, block_bytes: int = DEFAULT_BLOCK_BYTES,
    device: str = "cpu",
) -> np.ndarray:
    """Label per row: communities numbered largest first, -1 for rows in no community.

    `embeddings` must be L2-normalized float32 (cosine = dot product).
    """
    n = len(embeddings)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0 or n < min_size:
        return labels
    candidates = candidate_communities(embeddings, threshold, min_size, block_bytes, device)
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
    queries: np.ndarray, k: int, corpus: np.ndarray | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
    device: str = "cpu",
) -> np.ndarray:
    """Cosine similarity of each query row to its k-th most similar row of `corpus` (default: the queries
    themselves; a query that is in the corpus counts itself as the first)."""
    q = as_tensor(queries, device)
    corpus_t = q if corpus is None else as_tensor(corpus, device)
    n = len(corpus_t)
    k = max(1, min(k, n))
    out = np.empty(len(q), dtype=np.float32)
    step = _block_rows(n, block_bytes)
    for start in range(0, len(q), step):
        scores = q[start : start + step] @ corpus_t.T
        out[start : start + step] = scores.topk(k, dim=1).values[:, k - 1].cpu().numpy()
    return out
