"""Clusterings around a similarity threshold: fast community detection, DBSCAN, and HDBSCAN on a reduction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.decomposition import PCA

from ..assign import assign_to_fit
from ..community import (
    communities_from_neighbours,
    kth_neighbor_similarity,
    neighbour_lists,
)
from ..neighbors import (
    THRESHOLD_INDEX_ABOVE,
    indexed,
    neighbours_above,
)
from .base import (
    ClusteringError,
    ClusteringResult,
    PreviousFit,
    doc,
    relabel_by_size,
    sample_rows,
)


def coverage_similarity(
    embeddings: np.ndarray, neighbours: int, coverage: float, sample_size: int, seed: int, device: str = "cpu"
) -> tuple[float, str]:
    """The cosine similarity at which `coverage` of the sentences have `neighbours` neighbours in the corpus
    (themselves included), estimated exactly for a sample of sentences against the whole corpus; and how it was
    chosen."""
    sample = embeddings[sample_rows(len(embeddings), sample_size, seed)]
    similarity = float(np.quantile(kth_neighbor_similarity(sample, neighbours, embeddings, device=device), 1.0 - coverage))
    return similarity, (f"{coverage:.0%} of {len(sample)} sampled sentences have {neighbours} neighbours "
                        f"(themselves included) at cosine >= {similarity:.4f}")


SEARCHES = ("auto", "exact", "index")

SEARCH_HELP = ("How each sentence's neighbours above the similarity are found: exact (every pair scored, in "
               "blocks), index (an approximate nearest-neighbour index, each pair found verified exactly), auto "
               f"(the index from {THRESHOLD_INDEX_ABOVE:,} sentences).")


def threshold_lists(embeddings: np.ndarray, search: str,
                    device: str = "cpu") -> tuple[Callable[[float], tuple], str]:
    """A function giving, for a similarity threshold, the CSR neighbour lists (indptr, indices) of every row at
    or above it, itself included: scored exactly, or through one index of the rows built on first use; and which
    of the two it is."""
    if search not in SEARCHES:
        raise ClusteringError(f"search '{search}' is not one of {', '.join(SEARCHES)}.")
    if search == "exact" or (search == "auto" and len(embeddings) < THRESHOLD_INDEX_ABOVE):
        return (lambda threshold: neighbour_lists(embeddings, threshold, device=device)), "exact"
    built: list = []

    def lists(threshold: float) -> tuple:
        if not built:
            built.append(indexed(embeddings))
        return neighbours_above(embeddings, threshold, built[0])

    return lists, "approximate index, pairs verified exactly"


@dataclass(frozen=True)
class CommunityParams:
    threshold: float | None = doc(
        "Cosine similarity a member needs to its community's center; empty: chosen from the corpus's "
        "similarities so that target_coverage of sentences end up in a community (see details).")
    min_community_size: int = doc("Smallest community kept; smaller groups become -1.", 10)
    target_coverage: float = doc("Share of sentences the automatic threshold aims to assign.", 0.8)
    sample_size: int = doc("Sentences sampled to choose the automatic threshold.", 5000)
    seed: int = doc("Random seed of the sample.", 0)
    search: str = doc(SEARCH_HELP, "auto")


def coverage_steps(target: float, fits: int = 4) -> list[float]:
    """Neighbour coverages the automatic threshold tries in turn: the target, then a third of the share it leaves
    uncovered, a ninth, ... (0.8, 0.9333, 0.9778, 0.9926)."""
    return list(dict.fromkeys(round(1 - (1 - target) / 3**step, 4) for step in range(fits)))  # 1.0: one step


COVERAGE_SLACK = 0.05  # a re-fit keeps the previous automatic threshold while it assigns this close to the target


def community_detection(embeddings: np.ndarray, params: CommunityParams, device: str = "cpu",
                        previous: PreviousFit | None = None) -> ClusteringResult:
    """Communities as sentence-transformers finds them (`core/community.py`). With `previous`, its community
    centres are tried first and its automatic threshold kept while it assigns within COVERAGE_SLACK of
    target_coverage, so that a re-fit of a grown corpus finds the communities it had."""
    n = len(embeddings)
    min_size = max(1, min(params.min_community_size, n))
    first = previous.exemplars if previous is not None else None
    lists, how = threshold_lists(embeddings, params.search, device)
    details: dict[str, Any] = {"min_community_size": min_size, "neighbours": how}

    def communities(threshold: float) -> tuple[np.ndarray, np.ndarray]:
        if n == 0 or n < min_size:
            return np.full(n, -1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return communities_from_neighbours(*lists(threshold), min_size, first)

    if params.threshold is not None:
        details["threshold"] = round(float(params.threshold), 4)
        labels, centres = communities(params.threshold)
        return ClusteringResult(labels, details, centres)
    kept = previous.details.get("threshold") if previous is not None else None
    if kept is not None:
        labels, centres = communities(kept)
        assigned = float(np.mean(labels >= 0))
        if assigned >= params.target_coverage - COVERAGE_SLACK:
            return ClusteringResult(labels, {
                **details, "threshold": kept, "threshold_selection": (
                    f"kept from the previous fit: it assigns {assigned:.1%} (target_coverage "
                    f"{params.target_coverage:.0%}, less {COVERAGE_SLACK:.0%}); its communities' centres tried first")},
                centres)
        details["previous_threshold"] = f"{kept}: assigns {assigned:.1%}, chosen again"
    # Communities are disjoint, so some sentences with enough neighbours still end up in none: while the
    # assigned share falls short of the target, leave a third as many sentences without enough neighbours and
    # fit again (at most four fits). The steps are fixed, not aimed by the shortfall, so that neighbours found
    # through an index, assigning a fraction of a percent differently, take the same steps as exact ones.
    attempts = []
    for coverage in coverage_steps(params.target_coverage):
        threshold, how = coverage_similarity(embeddings, min_size, coverage, params.sample_size, params.seed, device)
        labels, centres = communities(threshold)
        assigned = float(np.mean(labels >= 0))
        attempts.append({"threshold": round(threshold, 4), "neighbour_coverage": round(coverage, 4),
                         "assigned": round(assigned, 4)})
        if assigned >= params.target_coverage:
            break
    details.update(threshold=round(float(threshold), 4), threshold_selection=how, threshold_attempts=attempts)
    return ClusteringResult(labels, details, centres)


REDUCTIONS = ("none", "pca", "umap")


def reduce(embeddings: np.ndarray, method: str, dimensions: int, seed: int) -> np.ndarray:
    """Reduce to `dimensions` with PCA or UMAP (cosine); `none`, 0, or a target not smaller than the data: as is."""
    if method not in REDUCTIONS:
        raise ClusteringError(f"reduction '{method}' is not one of {', '.join(REDUCTIONS)}.")
    if method == "none" or dimensions <= 0 or dimensions >= min(embeddings.shape):
        return embeddings
    if method == "pca":
        return PCA(n_components=dimensions, random_state=seed).fit_transform(embeddings).astype(np.float32)
    try:
        import umap
    except ImportError as err:
        raise ClusteringError(
            "reduction 'umap' needs umap-learn: pip install 'sentence-topics[umap]' (or umap-learn), "
            "or choose reduction 'pca'."
        ) from err
    neighbours = max(2, min(15, len(embeddings) - 1))
    return umap.UMAP(n_components=dimensions, n_neighbors=neighbours, metric="cosine", random_state=seed,
                     min_dist=0.0).fit_transform(embeddings).astype(np.float32)


def noise_to_nearest_cluster(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every -1 row the label of the cluster whose mean embedding is most similar."""
    clustered = np.flatnonzero(labels >= 0)
    return assign_to_fit(embeddings, clustered, labels[clustered])


@dataclass(frozen=True)
class HDBSCANParams:
    min_cluster_size: int = doc("Smallest cluster; smaller groups become noise (-1).", 10)
    min_samples: int | None = doc("Neighbours defining a core point; empty: min_cluster_size.")
    reduction: str = doc("Reduction before clustering: pca, umap (needs umap-learn) or none.", "pca")
    reduce_dimensions: int = doc("Dimensions after the reduction (0: none).", 16)
    reassign_noise: bool = doc("Assign noise sentences to the cluster with the most similar centroid.", False)
    seed: int = doc("Random seed of the reduction.", 0)


def hdbscan(embeddings: np.ndarray, params: HDBSCANParams, device: str = "cpu") -> ClusteringResult:
    n = len(embeddings)
    min_cluster_size = max(2, min(params.min_cluster_size, n))
    if n < 2:
        return ClusteringResult(np.full(n, -1, dtype=np.int64), {"note": "fewer than 2 sentences; all noise"})
    reduced = reduce(embeddings, params.reduction, params.reduce_dimensions, params.seed)
    min_samples = None if params.min_samples is None else max(1, min(params.min_samples, n - 1))
    model = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit(reduced)
    labels = model.labels_.astype(np.int64)
    details = {"dimensions": int(reduced.shape[1]), "noise_before_reassignment": int((labels < 0).sum())}
    if params.reassign_noise:
        labels = noise_to_nearest_cluster(embeddings, labels)
    return ClusteringResult(relabel_by_size(labels), details)


@dataclass(frozen=True)
class DBSCANParams:
    eps: float | None = doc(
        "Cosine distance of a neighbourhood; empty: chosen so that about target_coverage of sentences are core "
        "points (the k-distance heuristic on a sample).")
    min_samples: int = doc("Neighbours (itself included) that make a core point.", 10)
    target_coverage: float = doc("Share of sentences that should be core points with the automatic eps.", 0.8)
    reduction: str = doc("Reduction before clustering: none, pca or umap (distances are cosine).", "none")
    reduce_dimensions: int = doc("Dimensions after the reduction.", 16)
    sample_size: int = doc("Sentences sampled to choose eps.", 5000)
    seed: int = doc("Random seed of the sample and the reduction.", 0)
    search: str = doc(SEARCH_HELP, "auto")


def dbscan(embeddings: np.ndarray, params: DBSCANParams, device: str = "cpu") -> ClusteringResult:
    n = len(embeddings)
    if n < 2:
        return ClusteringResult(np.full(n, -1, dtype=np.int64), {"note": "fewer than 2 sentences; all noise"})
    reduced = reduce(embeddings, params.reduction, params.reduce_dimensions, params.seed)
    reduced = reduced / np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)
    min_samples = max(1, min(params.min_samples, n))
    details: dict[str, Any] = {"dimensions": int(reduced.shape[1]), "min_samples": min_samples}
    eps = params.eps
    if eps is None:
        similarity, details["eps_selection"] = coverage_similarity(
            reduced.astype(np.float32), min_samples, params.target_coverage, params.sample_size, params.seed, device)
        eps = 1.0 - similarity
    eps = max(float(eps), 1e-6)
    details["eps"] = round(eps, 4)
    # The eps-neighbourhoods, found block by block (memory: the pairs within eps, never n x n), handed to
    # scikit-learn as a sparse precomputed graph: a stored entry (distance 0) marks a neighbour.
    lists, details["neighbours"] = threshold_lists(reduced.astype(np.float32), params.search, device)
    indptr, indices = lists(1.0 - eps)
    details["neighbour_pairs"] = int(len(indices))
    graph = csr_matrix((np.zeros(len(indices), dtype=np.float32), indices, indptr), shape=(n, n))
    labels = DBSCAN(eps=0.5, min_samples=min_samples, metric="precomputed").fit(graph).labels_
    return ClusteringResult(relabel_by_size(labels), details)
