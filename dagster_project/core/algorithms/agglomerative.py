"""Agglomerative clustering (Ward by default) cut at a distance, by default at as many clusters as the graph has
communities (`granularity.py`); a re-fit continues Ward's tree from the previous topics."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..assign import assign_to_fit, label_means
from .base import (
    ClusteringError,
    ClusteringResult,
    PreviousFit,
    doc,
    relabel_by_size,
    sample_rows,
)
from .granularity import community_floor, steady_count

LINKAGES = ("ward", "average", "complete", "single")


@dataclass(frozen=True)
class AgglomerativeParams:
    distance_threshold: float | None = doc(
        "Linkage distance above which clusters are not merged (cosine for average, complete and single; euclidean "
        "between the unit vectors for ward); empty: the cut holding as many clusters as the Leiden communities of "
        "the n_neighbors graph (the last fit's count while within 20% of them; see details).")
    linkage: str = doc("Linkage: ward, average, complete or single.", "ward")
    n_neighbors: int = doc("Neighbours per sentence of the graph whose communities give the automatic cut.", 10)
    max_memory_gb: float = doc(
        "Memory for the pairwise distances; a larger corpus is clustered on a sample that fits, every other "
        "sentence then assigned to its nearest cluster centre (see details).", 8.0)
    seed: int = doc("Seed of that sample.", 0)


def tree_cut(heights: np.ndarray, clusters: int) -> float:
    """The distance threshold midway between the merges that leave `clusters` clusters of the n = len(heights) + 1
    leaves (heights ascending)."""
    n = len(heights) + 1
    below = heights[n - clusters - 1] if clusters < n else 0.0
    above = heights[n - clusters] if clusters > 1 else heights[-1] + 1.0
    return float((below + above) / 2)


def tree_memory_gb(n: int) -> float:
    """GB of a hierarchical clustering of n rows: condensed float64 distances plus the merge workspace."""
    return n * (n - 1) / 2 * 8 / 2**30 * 2


WARD_LEAVES_UP_TO = 5_000  # a re-fit builds on from the previous topics up to this many leaves, else a new tree:


def weighted_ward(centres: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """SciPy's linkage matrix of Ward's method over groups of points, each given by its mean and size: the tree
    Ward builds on from a partition it had reached. Found by the nearest-neighbour chain (what SciPy runs for
    Ward), in O(groups) memory; on groups of one point it is SciPy's Ward tree."""
    m, total = len(centres), 2 * len(centres) - 1
    means = np.zeros((total, centres.shape[1]))
    means[:m] = centres
    size = np.zeros(total)
    size[:m] = sizes
    norms = np.zeros(total)
    norms[:m] = (means[:m] ** 2).sum(axis=1)
    alive = np.zeros(total, dtype=bool)
    alive[:m] = True
    leaves = np.ones(total, dtype=np.int64)  # SciPy's fourth column counts leaves, not points
    merges, chain, node = [], [], m
    while node < total:
        if not chain:
            chain.append(int(np.argmax(alive)))
        a = chain[-1]
        squared = np.clip(norms[:node] + norms[a] - 2 * (means[:node] @ means[a]), 0.0, None)
        cost = 2 * size[a] * size[:node] / (size[a] + size[:node]) * squared
        cost[~alive[:node]] = np.inf
        cost[a] = np.inf
        b = int(np.argmin(cost))
        if len(chain) > 1 and cost[chain[-2]] <= cost[b]:
            b = chain[-2]
        if len(chain) == 1 or b != chain[-2]:
            chain.append(b)
            continue
        del chain[-2:]
        size[node] = size[a] + size[b]
        means[node] = (size[a] * means[a] + size[b] * means[b]) / size[node]
        norms[node] = means[node] @ means[node]
        alive[[a, b]], alive[node] = False, True
        leaves[node] = leaves[a] + leaves[b]
        merges.append((a, b, float(np.sqrt(cost[b])), leaves[node]))
        node += 1
    order = sorted(range(len(merges)), key=lambda t: (merges[t][2], t))  # by height; a child before its parent
    renamed = np.arange(total)
    renamed[m + np.asarray(order, dtype=np.int64)] = m + np.arange(len(order))
    return np.array([[*sorted((renamed[merges[t][0]], renamed[merges[t][1]])), merges[t][2], merges[t][3]]
                     for t in order], dtype=np.float64).reshape(-1, 4)


def groups_as_leaves(embeddings: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(leaf of each row, leaf means, leaf sizes): a leaf per group of `start` (its mean), and one per row at -1."""
    groups, means = label_means(embeddings, start)
    alone = np.flatnonzero(start < 0)
    leaf_of_row = np.searchsorted(groups, start)
    leaf_of_row[alone] = len(groups) + np.arange(len(alone))
    return leaf_of_row, np.vstack([means, embeddings[alone]]), np.bincount(leaf_of_row).astype(np.float64)


def agglomerative(embeddings: np.ndarray, params: AgglomerativeParams, device: str = "cpu",
                  previous: PreviousFit | None = None) -> ClusteringResult:
    """SciPy's hierarchical clustering (what scikit-learn's AgglomerativeClustering runs), cut at a distance.
    With `previous` and Ward linkage, the tree is built on from the previous topics (`weighted_ward`, their
    sentences kept together until merged, the sentences in none as leaves of their own), as Ward would have
    continued from them: a re-fit can merge topics and grow new ones from the sentences no topic holds."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    n = len(embeddings)
    if params.linkage not in LINKAGES:
        raise ClusteringError(f"agglomerative: linkage '{params.linkage}' is not one of {', '.join(LINKAGES)}.")
    needed_gb = tree_memory_gb(n)
    if needed_gb > params.max_memory_gb:
        fits = int((1 + np.sqrt(1 + 4 * params.max_memory_gb * 2**30 / 8)) / 2)
        while fits > 1 and tree_memory_gb(fits) > params.max_memory_gb:  # rounding: the sample must fit
            fits -= 1
        if fits < 2:
            raise ClusteringError(f"agglomerative: max_memory_gb={params.max_memory_gb} holds no tree of even 2 "
                                  "sentences; raise it (8 GB holds about 32,000 sentences).")
        sample = sample_rows(n, fits, params.seed)
        fitted = agglomerative(embeddings[sample], params, device, None if previous is None else dataclasses.replace(
            previous, labels=previous.labels[sample]))
        labels = assign_to_fit(embeddings, sample, fitted.labels)
        return ClusteringResult(relabel_by_size(labels), {
            **fitted.details, "fitted_on_sample": len(sample), "assigned_to_nearest_centre": n - len(sample),
            "sample_note": f"{n:,} sentences would need about {needed_gb:.1f} GB of pairwise distances, over "
                           f"max_memory_gb={params.max_memory_gb}: the tree was built on a seeded sample of "
                           f"{len(sample):,} and every other sentence assigned to the most similar cluster centre"})
    if n < 2:
        return ClusteringResult(np.zeros(n, dtype=np.int64), {"note": "fewer than 2 sentences; one cluster"})
    x = np.asarray(embeddings, dtype=np.float64)
    metric = "euclidean" if params.linkage == "ward" else "cosine"
    details: dict[str, Any] = {"estimated_gb": round(needed_gb, 3), "linkage": params.linkage, "metric": metric}
    leaf_of_row, previous_count = np.arange(n), None
    if params.linkage == "ward" and previous is not None and (previous.labels >= 0).any():
        grouped, means, sizes = groups_as_leaves(x, previous.labels)
        topics = len(sizes) - int((previous.labels < 0).sum())
        if len(sizes) <= WARD_LEAVES_UP_TO:
            leaf_of_row, previous_count = grouped, topics
        details["started_from"] = (
            f"the previous topics: {len(sizes):,} leaves, {topics} of them topics" if previous_count else
            f"a new tree: the {topics} previous topics and the {len(sizes) - topics:,} sentences without one make "
            f"{len(sizes):,} leaves, over {WARD_LEAVES_UP_TO:,}")
    if previous_count:
        tree = weighted_ward(means, sizes)
    else:
        tree = linkage(x, method="ward") if params.linkage == "ward" else linkage(
            np.clip(pdist(x, metric="cosine"), 0.0, None), method=params.linkage)
    leaves = len(tree) + 1
    if leaves < 2:
        return ClusteringResult(np.zeros(n, dtype=np.int64), {**details, "note": "every sentence in one topic"})
    threshold = params.distance_threshold
    if threshold is None:
        communities, found = community_floor(embeddings, min(params.n_neighbors, n - 1), params.seed, device)
        before = len(np.unique(previous.labels[previous.labels >= 0])) if previous is not None else None
        clusters, kept = steady_count(min(communities, leaves), before)
        threshold = tree_cut(tree[:, 2], clusters)
        details.update(found, **({"clusters_previous": kept} if kept else {}))
        details["threshold_selection"] = (
            f"the tree cut holding {clusters} clusters: the {communities} Leiden communities of the "
            f"{found['communities_of']}" + (", the last fit's count kept (within 20%)" if clusters == before else ""))
    details["distance_threshold"] = threshold
    labels = fcluster(tree, threshold, criterion="distance")[leaf_of_row] - 1
    return ClusteringResult(relabel_by_size(labels), details)
