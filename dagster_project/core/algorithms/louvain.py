"""Modularity communities (Louvain method, Leiden refinement) of the k-nearest-neighbour graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from ..community import (
    top_neighbours,
)
from ..neighbors import (
    INDEX_ABOVE,
    Neighbours,
    indexed,
    search,
)
from .base import ClusteringError, ClusteringResult, PreviousFit, doc, relabel_by_size


@dataclass(frozen=True)
class LouvainParams:
    n_neighbors: int = doc("Neighbours per sentence in the k-nearest-neighbour graph (cosine similarity weights).", 10)
    resolution: float = doc("Modularity resolution: higher makes more, smaller communities.", 1.0)
    seed: int = doc("Random seed of the Leiden optimisation.", 0)


def knn_graph(embeddings: np.ndarray, neighbours: int, device: str = "cpu",
              found: Neighbours | None = None) -> csr_matrix:
    """Symmetric sparse graph linking every row to its `neighbours` most similar other rows, weighted by cosine
    similarity (negative similarities dropped); an edge found from either end is kept. The neighbours are `found`
    (from the `sentence_neighbors` index) when given, else found through an index of the rows from INDEX_ABOVE
    rows, else scored exactly."""
    n = len(embeddings) if found is None else len(found.indices)
    if found is None and n >= INDEX_ABOVE:
        found = Neighbours(*search(indexed(embeddings), np.arange(n), embeddings, neighbours))
    if found is None:
        similarities, indices = top_neighbours(embeddings, neighbours + 1, device=device)
    else:
        similarities, indices = found.similarities[:, :neighbours], found.indices[:, :neighbours]
    rows = np.repeat(np.arange(n), indices.shape[1])
    keep = (indices.ravel() != rows) & (indices.ravel() >= 0) & (np.nan_to_num(similarities.ravel()) > 0)
    graph = csr_matrix((similarities.ravel()[keep].astype(np.float64), (rows[keep], indices.ravel()[keep])),
                       shape=(n, n))
    return graph.maximum(graph.T).tocsr()


LEIDEN_ITERATIONS = 2  # leidenalg's default; iterating until nothing moves took 6x longer for 0.2% more modularity


def leiden(graph: csr_matrix, resolution: float, start: np.ndarray | None = None,
           seed: int = 0) -> tuple[np.ndarray, float]:
    """Modularity communities of the weighted graph at `resolution`, found by the Leiden algorithm (leidenalg:
    Louvain's moves, refined so that every community stays connected), from singletons or from the partition
    `start`, and their modularity at that resolution. Deterministic for a seed."""
    import igraph
    import leidenalg

    upper = csr_matrix(graph).tocoo()
    keep = upper.row < upper.col
    network = igraph.Graph(n=graph.shape[0], edges=np.column_stack([upper.row[keep], upper.col[keep]]))  # no lists
    weights = upper.data[keep].tolist()
    total = float(upper.data[keep].sum())
    del upper, keep  # leidenalg holds its own copy of the graph
    partition = leidenalg.RBConfigurationVertexPartition(
        network, weights=weights, resolution_parameter=resolution,
        initial_membership=None if start is None else np.asarray(start).tolist())
    del weights
    optimiser = leidenalg.Optimiser()
    optimiser.set_rng_seed(seed)
    optimiser.optimise_partition(partition, n_iterations=LEIDEN_ITERATIONS)
    # leidenalg's quality of this partition type is modularity (at the resolution) times twice the total weight
    modularity = partition.quality() / (2 * total) if total else 0.0
    return np.asarray(partition.membership, dtype=np.int64), modularity


def communities_from(graph: csr_matrix, start: np.ndarray, resolution: float,
                     seed: int = 0) -> tuple[np.ndarray, float]:
    """`leiden` starting from the partition `start` (a previous fit's communities) rather than from singletons:
    the same objective, reached from where the previous fit left it. Rows at -1 start in the communities they
    form among themselves, so that a new subject starts as one group."""
    alone = np.flatnonzero(start < 0)
    membership = np.asarray(start, dtype=np.int64).copy()
    among = csr_matrix(graph)[alone][:, alone]
    groups = leiden(among, resolution, seed=seed)[0] if among.nnz else np.arange(len(alone))
    membership[alone] = membership.max(initial=-1) + 1 + groups
    return leiden(graph, resolution, np.unique(membership, return_inverse=True)[1], seed)


def louvain(embeddings: np.ndarray | None, params: LouvainParams, device: str = "cpu",
            previous: PreviousFit | None = None, neighbours: Neighbours | None = None) -> ClusteringResult:
    """Modularity communities of the k-nearest-neighbour graph, optimised by the Leiden algorithm (the Louvain
    method refined; it measured better on every tuning dataset, see docs/benchmarks.md): the number of clusters
    follows from the graph, every sentence is assigned. With `previous`, the same modularity is optimised from
    the previous communities (`communities_from`). `neighbours`: each row's most similar rows already found (the
    `sentence_neighbors` table), used when they hold n_neighbors per row (the embeddings are then not needed:
    None)."""
    n = len(embeddings) if embeddings is not None else len(neighbours.indices)
    if params.n_neighbors < 1 or params.resolution <= 0:
        raise ClusteringError(
            f"louvain: n_neighbors ({params.n_neighbors}) must be at least 1 and resolution ({params.resolution}) "
            "above 0.")
    if n < 3:
        return ClusteringResult(np.zeros(n, dtype=np.int64), {"note": "fewer than 3 sentences; one cluster"})
    k = min(params.n_neighbors, n - 1)
    found = neighbours if neighbours is not None and neighbours.indices.shape[1] >= k else None
    graph = knn_graph(embeddings, k, device, found)
    if graph.nnz == 0:
        return ClusteringResult(np.arange(n, dtype=np.int64),
                                {"note": "no two sentences have a positive cosine similarity; each is its own cluster"})
    warm = previous is not None and bool((previous.labels >= 0).any())
    labels, modularity = (communities_from(graph, previous.labels, params.resolution, params.seed) if warm
                          else leiden(graph, params.resolution, seed=params.seed))
    details = {"n_neighbors": k, "resolution": params.resolution, "seed": params.seed,
               "graph_edges": int(graph.nnz // 2),
               "neighbours": "sentence_neighbors (approximate index)" if found is not None else "exact",
               "modularity": round(modularity, 4),
               **({"started_from": "the previous communities"} if warm else {})}
    return ClusteringResult(relabel_by_size(labels), details)
