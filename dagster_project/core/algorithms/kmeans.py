"""k-means and mini-batch k-means over unit vectors; k fixed, or chosen by the granularity rule (`granularity.py`)."""

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
    relabel_by_size,
    sample_rows,
)
from .granularity import SPAN, TOLERANCE, choose_count, community_floor

FIT_STARTS = 3  # k-means starts of the fit at the chosen k

SEARCH_STARTS = 2  # of each k-means fit while choosing k, up to ONE_START_ABOVE_K

ONE_START_ABOVE_K = 50  # while choosing k, fits above this k start once


def choose_k(
    embeddings: np.ndarray, make_estimator: Callable[[int, int], Any], params: Any, device: str = "cpu",
    starts: int = SEARCH_STARTS, previous: int | None = None,
    start_previous: Callable[[np.ndarray], Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """k by the granularity rule (`granularity.py`): from the Leiden communities of the sentences'
    nearest-neighbour graph (`k_min` when set) to SPAN times them (`k_max` when set), the cosine silhouette of
    k-means fits on a sample, at the start of its plateau (`silhouette_tolerance`). The sample holds at least 10
    sentences per k searched (`sample_size` or more). `make_estimator(k, n_init)` gets `starts` up to k = 50,
    where one poor start moves the silhouette enough to change the choice, and one above, where the silhouette
    averages over many clusters (the large k are most of the search's cost). Inertia per k is kept for an elbow
    plot. `previous`: the k of the last fit, kept by `steady_score`; with `start_previous` (sample -> an estimator
    started from the previous topics), that k is scored as the re-fit would fit it, from the previous topics, not
    from one random start (mini-batch fits from random starts moved its silhouette by more than the margin)."""
    n = len(embeddings)
    floor, details = community_floor(embeddings, params.n_neighbors, params.seed, device)
    low = max(2, params.k_min or floor)
    high = max(low, params.k_max or SPAN * floor)
    sample = embeddings[sample_rows(n, max(params.sample_size, 10 * high), params.seed)]
    limit = min(high if params.k_max else 2**31, max(2, len(sample) // 10), len(sample) - 1,
                len(np.unique(sample, axis=0)))
    if limit < 2:
        return 1, {**details, "k_selection": "too few distinct sentences to compare k; one cluster"}
    inertias = {}

    def silhouette(k: int) -> float | None:
        model = (start_previous(sample) if k == previous and start_previous is not None else
                 make_estimator(k, starts if k <= ONE_START_ABOVE_K else 1)).fit(sample)
        inertias[k] = float(model.inertia_)
        return cosine_silhouette(sample, model.labels_, device) if len(np.unique(model.labels_)) >= 2 else None

    why = "k_max" if params.k_max else "at most one cluster per 10 sentences of the sample, every sentence sampled"
    k, search = choose_count(silhouette, min(low, limit), min(high, limit), limit, why,
                             params.silhouette_tolerance, previous)
    if not search:
        return 1, {**details, "k_selection": "no k gave two clusters; one cluster"}
    low_searched, high_searched = search["searched"]
    return k, {
        **details,
        **({"k_previous": search["previous"]} if "previous" in search else {}),
        **({"k_ceiling": search["ceiling"]} if "ceiling" in search else {}),
        "k_selection": f"the graph's {floor} communities as the least k, then the cosine silhouette of k-means on a "
                       f"sample of {len(sample):,} over k in [{low_searched}, {high_searched}] ({starts} starts up "
                       f"to k={ONE_START_ABOVE_K}, one above): the smallest k within "
                       f"{params.silhouette_tolerance:.0%} of the best silhouette",
        "silhouette_by_k": search["scores"],
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
    """k-means at k (chosen by silhouette when None, the previous topics' count kept while steady); with
    `init` (the previous topics' centres) and a `warm` estimator, also a fit started from them, kept unless its
    inertia is WARM_START_SLACK worse than the cold fit's, so that a re-fit of a grown corpus finds the topics it
    had."""
    n = len(embeddings)
    details: dict[str, Any] = {}
    if n_clusters is None:
        started = time.perf_counter()
        known = init is not None and len(init)
        n_clusters, details = choose_k(
            embeddings, make, params, device, search_starts, previous=len(init) if known else None,
            start_previous=(lambda sample: warm(warm_centres(sample, init, len(init)))) if known and warm else None)
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
    n_clusters: int | None = doc(
        "Number of clusters; leave empty to choose k: from the Leiden communities of the sentences' "
        "nearest-neighbour graph to three times them, by cosine silhouette (see details).")
    k_min: int | None = doc("Smallest k tried when choosing k; empty: the graph's community count.")
    k_max: int | None = doc("Largest k tried when choosing k; empty: three times the graph's community count, "
                            "searched further while the best silhouette is at the largest k.")
    silhouette_tolerance: float = doc(
        "Choose the smallest k whose silhouette is within this share of the best (0: the best k).", TOLERANCE)
    n_neighbors: int = doc("Neighbours per sentence of the graph whose communities give the least k.", 10)
    sample_size: int = doc("Sentences sampled to choose k (at least 10 per k searched).", 5000)
    seed: int = doc("Random seed.", 0)


def previous_centres(previous: PreviousFit | None) -> np.ndarray | None:
    return previous.centres if previous is not None and len(previous.centres) else None


def kmeans(embeddings: np.ndarray, params: KMeansParams, device: str = "cpu",
           previous: PreviousFit | None = None) -> ClusteringResult:
    """scikit-learn's KMeans on the CPU; Lloyd with k-means++ in torch (same objective) on a GPU. `previous`:
    its topics' centres are tried as a start and its k kept while steady (see `_kmeans_family`)."""
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
