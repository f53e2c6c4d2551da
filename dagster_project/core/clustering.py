"""Clustering algorithms over L2-normalized sentence embeddings, and the registry that drives the assets.

Every algorithm takes the embedding matrix, a frozen parameter dataclass and a torch device, and returns one
label per row, -1 for noise / unassigned, clusters numbered largest first, deterministic under the seed.
On a GPU device, k-means, community detection, DBSCAN's neighbourhoods, Louvain's neighbour graph and the
silhouette run there in torch; everything else (and everything on "cpu") runs on the CPU.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.cluster import DBSCAN, HDBSCAN, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA

from .assign import assign_to_fit, closest_centres, label_means
from .community import communities_from_neighbours, kth_neighbor_similarity, neighbour_lists, top_neighbours
from .metrics import cosine_silhouette
from .neighbors import INDEX_ABOVE, THRESHOLD_INDEX_ABOVE, Neighbours, indexed, neighbours_above, search
from .torch_kmeans import TorchKMeans


class ClusteringError(ValueError):
    """The corpus or the parameters do not allow this clustering; the message says what to do."""


@dataclass(frozen=True)
class ClusteringResult:
    labels: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    exemplars: np.ndarray | None = None  # the row each cluster was built around (community centres), by cluster id

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {-1}))


@dataclass(frozen=True)
class PreviousFit:
    """The last fit of the same algorithm, parameters and model, for a re-fit of the grown corpus to start from,
    so that the topics it had come back where the data still hold them: each row's previous topic (-1: none, or
    arrived since and fitting none), the topics' plain mean embeddings (largest first), the rows of the fit's
    exemplars still present (in its cluster order) and the fit's details (its automatic choices)."""

    labels: np.ndarray
    centres: np.ndarray
    exemplars: np.ndarray
    details: dict[str, Any]


def doc(text: str, default: Any = None) -> Any:
    """A dataclass field with a description (shown in the Dagster launchpad)."""
    return field(default=default, metadata={"description": text})


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1, largest first (ties by old id); -1 stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    mapping = {int(old): new for new, old in enumerate(order)}
    return np.array([mapping.get(int(v), -1) for v in labels], dtype=np.int64)


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of `size` of n rows (all when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


FIT_STARTS = 3  # k-means starts of the fit at the chosen k
SEARCH_STARTS = 2  # of each k-means fit while choosing k, up to ONE_START_ABOVE_K
ONE_START_ABOVE_K = 50  # while choosing k, fits above this k start once


def on_plateau(scores: dict[int, float], tolerance: float, previous: int | None = None) -> tuple[int, str | None]:
    """The count to choose among scored ones: the smallest within `tolerance` (relative) of the best score, or
    `previous` (the last fit's) when it is within it too; and, with `previous`, whether it was kept."""
    top = max(scores.values())
    plateau = [k for k, v in scores.items() if v >= top - tolerance * abs(top)]
    chosen = previous if previous in plateau else min(plateau)
    if previous is None:
        return chosen, None
    return chosen, f"{previous}: {'kept (on the plateau)' if chosen == previous else 'off the plateau'}"


def choose_k(
    embeddings: np.ndarray, make_estimator: Callable[[int, int], Any], k_min: int, k_max: int, sample_size: int,
    seed: int, tolerance: float = 0.02, device: str = "cpu", starts: int = SEARCH_STARTS, previous: int | None = None,
) -> tuple[int, dict[str, Any]]:
    """k by cosine silhouette on a sample, searched coarse to fine (a geometric grid, then five points between
    the best grid point's neighbours). Silhouette curves of sentence embeddings often rise to a plateau on which
    the values differ by noise, so the smallest k within `tolerance` (relative) of the best wins: the start of
    the plateau. `make_estimator(k, n_init)` gets `starts` up to k = 50, where one poor start moves the
    silhouette enough to change the choice, and one above, where the silhouette averages over many
    clusters (the large k are most of the search's cost). At most one cluster per 10 sampled sentences.
    Inertia per k is kept for an elbow plot. With `previous` (the k of the last fit) that k is scored too and
    kept when it is on the plateau, so that a re-fit of a grown corpus keeps its topics' granularity."""
    sample = embeddings[sample_rows(len(embeddings), sample_size, seed)]
    k_max = min(k_max, max(2, len(sample) // 10), len(sample) - 1, len(np.unique(sample, axis=0)))
    if k_max < 2:
        return 1, {"k_selection": "too few distinct sentences to compare k; one cluster"}
    k_min = max(2, min(k_min, k_max))
    scores, inertias = {}, {}

    def evaluate(k: int) -> None:
        if k in inertias:
            return
        model = make_estimator(k, starts if k <= ONE_START_ABOVE_K else 1).fit(sample)
        inertias[k] = float(model.inertia_)
        if len(np.unique(model.labels_)) >= 2:
            scores[k] = cosine_silhouette(sample, model.labels_, device)

    grid = sorted(set(np.geomspace(k_min, k_max, num=min(10, k_max - k_min + 1)).round().astype(int).tolist()))
    for k in grid:
        evaluate(k)
    if not scores:
        return 1, {"k_selection": "no k gave two clusters; one cluster"}
    best_on_grid = max(scores, key=lambda k: (scores[k], -k))
    position = grid.index(best_on_grid)
    low, high = grid[max(0, position - 1)], grid[min(len(grid) - 1, position + 1)]
    for k in sorted(set(np.linspace(low, high, num=min(5, high - low + 1)).round().astype(int).tolist())):
        evaluate(k)
    if previous is not None and k_min <= previous <= k_max:
        evaluate(previous)
    best, kept = on_plateau(scores, tolerance, previous)
    return best, {
        **({"k_previous": kept} if kept else {}),
        "k_selection": f"cosine silhouette on a sample of {len(sample)}, coarse-to-fine over k in [{k_min}, {k_max}] "
                       f"({starts} k-means starts up to k={ONE_START_ABOVE_K}, one above); "
                       f"the smallest k within {tolerance:.0%} of the best silhouette",
        "silhouette_by_k": dict(sorted(scores.items())),
        "inertia_by_k": dict(sorted(inertias.items())),
    }


WARM_START_SLACK = 0.01  # a fit from the previous topics' centres wins unless its inertia is this much worse


def warm_centres(embeddings: np.ndarray, previous: np.ndarray, k: int) -> np.ndarray:
    """k starting centres: the first k `previous` centres (largest topics first), topped up with the sentences
    farthest from every centre so far."""
    centres = [row for row in np.asarray(previous, np.float32)[:k]]
    while len(centres) < k:
        _, similarity = closest_centres(embeddings, np.stack(centres))
        centres.append(np.asarray(embeddings[int(np.argmin(similarity))], np.float32))
    return np.stack(centres)


def _kmeans_family(embeddings: np.ndarray, n_clusters: int | None, params: Any, make: Callable[[int, int], Any],
                   device: str = "cpu", search_starts: int = SEARCH_STARTS,
                   warm: Callable[[np.ndarray], Any] | None = None,
                   init: np.ndarray | None = None) -> ClusteringResult:
    """k-means at k (chosen by silhouette when None, the previous topics' count kept when on the plateau); with
    `init` (the previous topics' centres) and a `warm` estimator, also a fit started from them, kept unless its inertia is WARM_START_SLACK worse than the cold fit's,
    so that a re-fit of a grown corpus finds the topics it had."""
    n = len(embeddings)
    details: dict[str, Any] = {}
    if n_clusters is None:
        started = time.perf_counter()
        n_clusters, details = choose_k(embeddings, make, params.k_min, params.k_max, params.sample_size, params.seed,
                                       params.silhouette_tolerance, device, search_starts,
                                       previous=len(init) if init is not None and len(init) else None)
        details["k_selection_seconds"] = round(time.perf_counter() - started, 3)
    elif n_clusters > n:
        details["k_capped"] = f"n_clusters={n_clusters} > {n} sentences; used {n}"
        n_clusters = n
    details["n_clusters"] = n_clusters
    if n_clusters <= 1:
        return ClusteringResult(np.zeros(n, dtype=np.int64), details)
    model = make(n_clusters, FIT_STARTS).fit(embeddings)
    if warm is not None and init is not None and len(init):
        warmed = warm(warm_centres(embeddings, init, n_clusters)).fit(embeddings)
        chosen = warmed.inertia_ <= model.inertia_ * (1 + WARM_START_SLACK)
        details["warm_start"] = (f"{'kept' if chosen else 'dropped'}: started from the previous topics' centres, "
                                 f"inertia {warmed.inertia_:.1f} against {model.inertia_:.1f} from k-means++")
        model = warmed if chosen else model
    return ClusteringResult(relabel_by_size(model.labels_), details)


@dataclass(frozen=True)
class KMeansParams:
    n_clusters: int | None = doc("Number of clusters; leave empty to choose k by silhouette between k_min and k_max.")
    k_min: int = doc("Smallest k tried when choosing k.", 2)
    k_max: int = doc("Largest k tried when choosing k (at most one per 10 sampled sentences).", 200)
    silhouette_tolerance: float = doc(
        "Choose the smallest k whose silhouette is within this share of the best (0: the best k).", 0.02)
    sample_size: int = doc("Sentences sampled to choose k.", 5000)
    seed: int = doc("Random seed.", 0)


def previous_centres(previous: PreviousFit | None) -> np.ndarray | None:
    return previous.centres if previous is not None and len(previous.centres) else None


def kmeans(embeddings: np.ndarray, params: KMeansParams, device: str = "cpu",
           previous: PreviousFit | None = None) -> ClusteringResult:
    """scikit-learn's KMeans on the CPU; Lloyd with k-means++ in torch (same objective) on a GPU. `previous`:
    its topics' centres are tried as a start and its k kept on the plateau (see `_kmeans_family`)."""
    if device == "cpu":
        make = lambda k, starts: KMeans(n_clusters=k, n_init=starts, random_state=params.seed)  # noqa: E731
    else:
        make = lambda k, starts: TorchKMeans(  # noqa: E731
            n_clusters=k, n_init=starts, random_state=params.seed, device=device)
    warm = lambda centres: KMeans(n_clusters=len(centres), init=centres, n_init=1)  # noqa: E731
    return _kmeans_family(embeddings, params.n_clusters, params, make, device, warm=warm,
                          init=previous_centres(previous))


@dataclass(frozen=True)
class MiniBatchKMeansParams(KMeansParams):
    batch_size: int = doc("Mini-batch size.", 4096)


def minibatch_kmeans(embeddings: np.ndarray, params: MiniBatchKMeansParams, device: str = "cpu",
                     previous: PreviousFit | None = None) -> ClusteringResult:
    """scikit-learn's MiniBatchKMeans; choosing k fits three starts per k up to 50, as its noisier fits need
    (two moved biomedical's choice from k=26 to k=8). `previous`: as for `kmeans`."""
    make = lambda k, starts: MiniBatchKMeans(  # noqa: E731
        n_clusters=k, batch_size=params.batch_size, n_init=starts, random_state=params.seed
    )
    warm = lambda centres: MiniBatchKMeans(  # noqa: E731
        n_clusters=len(centres), init=centres, n_init=1, batch_size=params.batch_size, random_state=params.seed)
    return _kmeans_family(embeddings, params.n_clusters, params, make, device, search_starts=3, warm=warm,
                          init=previous_centres(previous))


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


def leiden(graph: csr_matrix, resolution: float, start: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Modularity communities of the weighted graph at `resolution`, found by the Leiden algorithm (leidenalg:
    Louvain's moves, refined so that every community stays connected), from singletons or from the partition
    `start`. Deterministic for a seed."""
    import igraph
    import leidenalg

    upper = csr_matrix(graph).tocoo()
    keep = upper.row < upper.col
    network = igraph.Graph(n=graph.shape[0], edges=np.column_stack([upper.row[keep], upper.col[keep]]))  # no lists
    weights = upper.data[keep].tolist()
    del upper, keep  # leidenalg holds its own copy of the graph
    partition = leidenalg.RBConfigurationVertexPartition(
        network, weights=weights, resolution_parameter=resolution,
        initial_membership=None if start is None else np.asarray(start).tolist())
    del weights
    optimiser = leidenalg.Optimiser()
    optimiser.set_rng_seed(seed)
    optimiser.optimise_partition(partition, n_iterations=LEIDEN_ITERATIONS)
    return np.asarray(partition.membership, dtype=np.int64)


def communities_from(graph: csr_matrix, start: np.ndarray, resolution: float, seed: int = 0) -> np.ndarray:
    """`leiden` starting from the partition `start` (a previous fit's communities) rather than from singletons:
    the same objective, reached from where the previous fit left it. Rows at -1 start in the communities they
    form among themselves, so that a new subject starts as one group."""
    alone = np.flatnonzero(start < 0)
    membership = np.asarray(start, dtype=np.int64).copy()
    among = csr_matrix(graph)[alone][:, alone]
    groups = leiden(among, resolution, seed=seed) if among.nnz else np.arange(len(alone))
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
    from sknetwork.clustering import get_modularity

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
    labels = (communities_from(graph, previous.labels, params.resolution, params.seed) if warm
              else leiden(graph, params.resolution, seed=params.seed))
    details = {"n_neighbors": k, "resolution": params.resolution, "seed": params.seed,
               "graph_edges": int(graph.nnz // 2),
               "neighbours": "sentence_neighbors (approximate index)" if found is not None else "exact",
               "modularity": round(float(get_modularity(graph, labels, resolution=params.resolution)), 4),
               **({"started_from": "the previous communities"} if warm else {})}
    return ClusteringResult(relabel_by_size(labels), details)


LINKAGES = ("ward", "average", "complete", "single")


@dataclass(frozen=True)
class AgglomerativeParams:
    distance_threshold: float | None = doc(
        "Linkage distance above which clusters are not merged (cosine for average, complete and single; euclidean "
        "between the unit vectors for ward); empty: chosen from the corpus, by silhouette among the tree's cuts "
        "holding between a quarter of and as many clusters as the Louvain communities of the n_neighbors graph "
        "(see details).")
    linkage: str = doc("Linkage: ward, average, complete or single.", "ward")
    n_neighbors: int = doc("Neighbours per sentence of the graph whose communities bound the automatic cut.", 10)
    max_memory_gb: float = doc(
        "Memory for the pairwise distances; a larger corpus is clustered on a sample that fits, every other "
        "sentence then assigned to its nearest cluster centre (see details).", 8.0)
    seed: int = doc("Seed of that sample.", 0)


CUT_SEARCH_SPAN = 4  # the automatic cut looks at counts from (Louvain communities / 4) to the communities
CUT_CANDIDATES = 16


def tree_cut(heights: np.ndarray, clusters: int) -> float:
    """The distance threshold midway between the merges that leave `clusters` clusters of the n = len(heights) + 1
    leaves (heights ascending)."""
    n = len(heights) + 1
    below = heights[n - clusters - 1] if clusters < n else 0.0
    above = heights[n - clusters] if clusters > 1 else heights[-1] + 1.0
    return float((below + above) / 2)


def choose_cut(embeddings: np.ndarray, tree: np.ndarray, most: int, device: str = "cpu",
               leaf_of_row: np.ndarray | None = None, previous: int | None = None) -> tuple[int, dict]:
    """The cut of a linkage tree with the best cosine silhouette (the smallest cluster count within 2% of the
    best) among counts from most / CUT_SEARCH_SPAN to `most`, on a geometric grid. Silhouette alone prefers the
    tree's first split (two clusters) on corpora with one dominant subject; bounding the counts by the graph's
    communities keeps the cut at the scale of topics, and the silhouette chooses the level within it.
    `leaf_of_row`: the tree's leaf of each row, when its leaves are groups of rows (default: a leaf per row);
    counts above the leaves are left out. `previous`: the last fit's count, scored too and kept when within 2%."""
    from scipy.cluster.hierarchy import fcluster

    low = max(2, -(-most // CUT_SEARCH_SPAN))
    candidates = set(np.geomspace(low, most, num=min(CUT_CANDIDATES, most - low + 1)).round().astype(int))
    if previous is not None and low <= previous <= most:
        candidates.add(previous)
    candidates = sorted(c for c in candidates if c <= len(tree) + 1) or [len(tree) + 1]
    scores = {}
    for clusters in candidates:
        labels = fcluster(tree, clusters, criterion="maxclust")
        labels = labels if leaf_of_row is None else labels[leaf_of_row]
        if 2 <= len(np.unique(labels)) < len(embeddings):
            scores[int(clusters)] = round(cosine_silhouette(embeddings, labels, device), 5)
    if not scores:
        return most, {}
    chosen, kept = on_plateau(scores, 0.02, previous)
    return chosen, {"silhouette_by_clusters": scores, **({"clusters_previous": kept} if kept else {})}


def tree_memory_gb(n: int) -> float:
    """GB of a hierarchical clustering of n rows: condensed float64 distances plus the merge workspace."""
    return n * (n - 1) / 2 * 8 / 2**30 * 2


WARD_LEAVES_UP_TO = 5_000  # a re-fit builds on from the previous topics up to this many leaves, else a new tree:
# its time grows faster than their square (6 s at 5,000 leaves of 384 dimensions on 2 cores, a minute at 10,000)


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
        communities = louvain(embeddings, LouvainParams(n_neighbors=params.n_neighbors), device).n_clusters
        clusters, search = (min(communities, leaves), {}) if communities < 3 or communities >= n else choose_cut(
            x, tree, communities, device, leaf_of_row, previous_count)
        threshold = tree_cut(tree[:, 2], clusters)
        details.update(search)
        details["threshold_selection"] = (
            f"the tree cut holding {clusters} clusters: the best cosine silhouette among cuts holding "
            f"{max(2, -(-communities // CUT_SEARCH_SPAN))}-{communities} clusters, {communities} being the number "
            f"of Louvain communities of the {min(params.n_neighbors, n - 1)}-nearest-neighbour graph"
            if search else f"the tree cut holding the {communities} Louvain communities of the "
                           f"{min(params.n_neighbors, n - 1)}-nearest-neighbour graph")
    details["distance_threshold"] = threshold
    labels = fcluster(tree, threshold, criterion="distance")[leaf_of_row] - 1
    return ClusteringResult(relabel_by_size(labels), details)


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


def nearest_centroid(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
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
        labels = nearest_centroid(embeddings, labels)
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


@dataclass(frozen=True)
class Algorithm:
    name: str
    fit: Callable[[np.ndarray, Any, str], ClusteringResult]
    params: type
    description: str
    follows_previous: bool = False  # its fit takes `previous` (a PreviousFit) on a re-fit
    uses_neighbours: bool = False  # its fit takes `neighbours` (from sentence_neighbors)
    on_demand: str = ""  # why it is left out of the scheduled refresh (materialized when asked); empty: scheduled


ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm("kmeans", kmeans, KMeansParams,
                  "k-means; k fixed, or chosen by cosine silhouette on a sample.", follows_previous=True),
        Algorithm("minibatch_kmeans", minibatch_kmeans, MiniBatchKMeansParams,
                  "Mini-batch k-means for large corpora; k fixed or chosen by silhouette.", follows_previous=True),
        Algorithm("agglomerative", agglomerative, AgglomerativeParams,
                  "Agglomerative clustering (Ward) cut at a distance threshold, by default the cut with the best "
                  "silhouette below the number of Louvain communities; quadratic memory.", follows_previous=True),
        Algorithm("community_detection", community_detection, CommunityParams,
                  "Fast community detection: cosine threshold and minimum community size; -1 = in no community.",
                  follows_previous=True, on_demand=(
                      "below BERTopic's NMI on 5 of the 8 labelled datasets with its defaults (hundreds of small "
                      "communities, 12-18% of sentences in none)")),
        Algorithm("louvain", louvain, LouvainParams,
                  "Modularity communities (Louvain method, Leiden refinement) of the k-nearest-neighbour graph; k "
                  "follows from the graph, no noise.",
                  follows_previous=True, uses_neighbours=True),
        Algorithm("hdbscan", hdbscan, HDBSCANParams,
                  "HDBSCAN on a PCA (or UMAP) reduction; k unknown, -1 = noise.", on_demand=(
                      "52-89% noise with its defaults and below BERTopic's NMI on all 8 labelled datasets; with "
                      "reassign_noise still below on 3 of 8")),
        Algorithm("dbscan", dbscan, DBSCANParams,
                  "DBSCAN with cosine distance, eps given or chosen from the corpus; k unknown, -1 = noise.",
                  on_demand="one cluster on 4 of the 8 labelled datasets with its automatic eps, below BERTopic's NMI "
                            "on 7 of 8"),
    ]
}

SCHEDULED = [name for name, algorithm in ALGORITHMS.items() if not algorithm.on_demand]  # in the daily refresh


def run_clustering(name: str, embeddings: np.ndarray, params: Any | None = None, device: str = "cpu") -> ClusteringResult:
    """Run a registered algorithm; `params` defaults to its dataclass defaults."""
    algorithm = ALGORITHMS[name]
    return algorithm.fit(embeddings, params if params is not None else algorithm.params(), device)
