"""Fast community detection (as `sentence_transformers.util.community_detection`), with bounded memory.

The reference materializes `batch_size x n` similarity blocks and drops every sentence that lands in no
community. This version scores rows in blocks sized to a memory budget, keeps only the indices above the
threshold, returns one label per sentence (-1 = in no community) and yields exactly the reference's communities.
The block products run in torch on the given device (a GPU when the embeddings come from one; CPU otherwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, identity

DEFAULT_BLOCK_BYTES = 256 * 2**20


def as_tensor(x: Any, device: str = "cpu") -> Any:
    """float32 torch tensor of `x` on `device` (no copy for a writable float32 array on the CPU)."""
    import torch

    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(x, np.float32, ["C", "W"]))
    return tensor.to(device=device, dtype=torch.float32)


def block_rows(n: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows per block so that one block of float32 scores against n rows fits in `block_bytes`."""
    return max(1, min(n, block_bytes // max(1, 4 * n)))


def block_pairs(x: Any, start: int, stop: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pairs at cosine >= threshold between rows start:stop of the tensor `x` and rows
    start: (itself included); `csr_from_pairs` adds their mirrors."""
    index_type = np.int32 if len(x) < 2**31 else np.int64
    pairs = ((x[start:stop] @ x[start:].T) >= float(np.float32(threshold))).nonzero().cpu().numpy()
    return (pairs[:, 0] + start).astype(index_type), (pairs[:, 1] + start).astype(index_type)


def csr_from_pairs(pairs: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR form (indptr, indices, each row's columns sorted) of the (rows, cols) pairs of every block, each pair
    recorded both ways and every row its own neighbour: a boolean sparse matrix, so that about 30 bytes a pair
    are held at most while it is built (the lists of a low threshold hold hundreds of pairs a row)."""
    rows = np.concatenate([r for r, _ in pairs]) if pairs else np.zeros(0, np.int32)
    cols = np.concatenate([c for _, c in pairs]) if pairs else np.zeros(0, np.int32)
    pairs.clear()  # the blocks' arrays go as soon as they are joined
    graph = csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, n))
    del rows, cols
    graph = graph + graph.T + identity(n, dtype=bool, format="csr")
    graph.sort_indices()
    return graph.indptr.astype(np.int64), graph.indices


def neighbour_lists(
    embeddings: np.ndarray, threshold: float, block_bytes: int = DEFAULT_BLOCK_BYTES, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """CSR form (indptr, indices) of every row's neighbours at cosine >= threshold, itself included.

    Similarity is symmetric, so each block of rows is scored only against itself and the rows after it
    (half the multiply-adds of scoring every row against all), and every pair found is recorded both ways.
    Memory: one block of scores plus the pairs above the threshold."""
    n = len(embeddings)
    x = as_tensor(embeddings, device)
    step = block_rows(n, block_bytes)
    return csr_from_pairs([block_pairs(x, start, min(n, start + step), threshold) for start in range(0, n, step)], n)


def communities_from_neighbours(
    indptr: np.ndarray, indices: np.ndarray, min_size: int, first: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(label per row, centre row per community) from the neighbour lists: as the reference, candidate centres
    (rows with at least `min_size` neighbours) largest first, each taking its not yet used neighbours if at least
    `min_size` remain; communities numbered largest first, -1 for rows in none. `first`: rows tried as centres
    before all others, in their order (a re-fit's previous centres, so that their communities come back)."""
    n = len(indptr) - 1
    labels = np.full(n, -1, dtype=np.int64)
    counts = np.diff(indptr)
    centers = np.flatnonzero(counts >= min_size)
    centers = centers[np.argsort(-counts[centers], kind="stable")]  # ties keep row order, as the reference
    if first is not None and len(first):
        first = np.asarray(first, dtype=np.int64)
        centers = np.concatenate([first[counts[first] >= min_size], centers])
    accepted: list[tuple[int, np.ndarray]] = []
    used = np.zeros(n, dtype=bool)
    for center in centers:
        if used[center]:
            continue
        members = indices[indptr[center] : indptr[center + 1]]
        free = members[~used[members]]
        if len(free) >= min_size:
            community = np.union1d(free, [center])  # the reference always keeps the center
            accepted.append((int(center), community))
            used[community] = True
    accepted.sort(key=lambda pair: len(pair[1]), reverse=True)
    for cluster_id, (_, community) in enumerate(accepted):
        labels[community] = cluster_id
    return labels, np.array([center for center, _ in accepted], dtype=np.int64)


def top_neighbours(
    queries: np.ndarray, k: int, corpus: np.ndarray | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices), each queries x k, of every query row's k most similar rows of `corpus`
    (default: the queries themselves; a query that is in the corpus counts itself as the first), most similar
    first. Scored in blocks: memory is one block of scores, never queries x corpus."""
    q = as_tensor(queries, device)
    corpus_t = q if corpus is None else as_tensor(corpus, device)
    n = len(corpus_t)
    k = max(1, min(k, n))
    values = np.empty((len(q), k), dtype=np.float32)
    indices = np.empty((len(q), k), dtype=np.int64)
    step = block_rows(n, block_bytes)
    for start in range(0, len(q), step):
        top = (q[start : start + step] @ corpus_t.T).topk(k, dim=1)
        values[start : start + step] = top.values.cpu().numpy()
        indices[start : start + step] = top.indices.cpu().numpy()
    return values, indices


def kth_neighbor_similarity(
    queries: np.ndarray, k: int, corpus: np.ndarray | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
    device: str = "cpu",
) -> np.ndarray:
    """Cosine similarity of each query row to its k-th most similar row of `corpus` (default: the queries
    themselves; a query that is in the corpus counts itself as the first)."""
    return top_neighbours(queries, k, corpus, block_bytes, device)[0][:, -1]
