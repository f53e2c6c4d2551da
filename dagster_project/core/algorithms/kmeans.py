"""k-means and mini-batch k-means over unit vectors; k fixed, or chosen on the cosine silhouette plateau."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from ..assign import closest_centres
from ..metrics import cosine_silhouette
from ..torch_kmeans import TorchKMeans
from .base import (
    ClusteringResult,
    PreviousFit,
    doc,
    on_plateau,
    relabel_by_size,
    sample_rows,
)

FIT_STARTS = 3  # k-means starts of the fit at the chosen k

SEARCH_STARTS = 2  # of each k-means fit while choosing k, up to ONE_START_ABOVE_K

ONE_START_ABOVE_K = 50  # while choosing k, fits above this k start once


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
    `init` (the previous topics' centres) and a `warm` estimator, also a fit started from them, kept unless its
    inertia is WARM_START_SLACK worse than the cold fit's, so that a re-fit of a grown corpus finds the topics it
    had."""
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
