"""How many topics a corpus holds, for every algorithm that is given a count (k-means, mini-batch k-means, the
agglomerative cut).

The floor is the number of Leiden communities of the sentences' nearest-neighbour graph: groups more linked among
themselves than chance would link them, so their count follows the topics, not the few domains of a mixed corpus
(the cosine silhouette alone peaks at the domains: two topics for three corpora in one folder). Above the floor,
up to SPAN times it, the cosine silhouette chooses how finely, at the start of its plateau: intent corpora hold
more topics than communities, news sections fewer. When the best count is the largest searched, the search
widens once; a best still at its largest count is reported (the silhouette of fine cuts can rise without end
on corpora of near-identical sentences, so it is not followed further). Ward's tree is cut at the floor itself:
the silhouette of its cuts kept rising with the count on news headlines (2,851 clusters for 8,000 sentences when
followed), and the floor alone measured above BERTopic on every labelled dataset (docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import on_plateau, sample_rows
from .louvain import LouvainParams, louvain

GRAPH_SAMPLE = 50_000  # sentences whose nearest-neighbour graph gives the floor (a seeded sample beyond)
SPAN = 3  # the search runs from the floor to SPAN times it
TOLERANCE = 0.02  # counts whose silhouette is within this share of the best are on its plateau
GRID_POINTS = 10
WIDEN = 2  # a search whose best is its largest count goes on once, to this many times it


def community_floor(vectors: np.ndarray, n_neighbors: int = 10, seed: int = 0, device: str = "cpu",
                    sample_size: int = GRAPH_SAMPLE) -> tuple[int, dict[str, Any]]:
    """The number of Leiden communities of the `n_neighbors`-nearest-neighbour graph of the rows (of a seeded
    sample of `sample_size` beyond it), and how it was found."""
    rows = sample_rows(len(vectors), sample_size, seed)
    communities = louvain(vectors[rows], LouvainParams(n_neighbors=n_neighbors, seed=seed), device).n_clusters
    return communities, {"communities": communities,
                         "communities_of": f"the {n_neighbors}-nearest-neighbour graph of {len(rows):,} sentences"}


STEADY = 0.2  # a count that moved less than this share from the last fit's keeps the last fit's


def steady_count(found: int, previous: int | None, tolerance: float = STEADY) -> tuple[int, str | None]:
    """`previous` (the last fit's count) while `found` is within `tolerance` of it, else `found`; and, with
    `previous`, whether it was kept."""
    if previous is None:
        return found, None
    if found == previous:
        return previous, f"{previous}: found again"
    kept = abs(found - previous) <= tolerance * previous
    return (previous, f"{previous}: kept ({found} found, within {tolerance:.0%})") if kept else (
        found, f"{previous}: moved to {found} (more than {tolerance:.0%})")


MOVE_MARGIN = 0.05  # a re-fit leaves the last count by more than STEADY only for a silhouette this much better


def steady_score(found: int, previous: int, scores: dict[int, float],
                 margin: float = MOVE_MARGIN) -> tuple[int, str]:
    """`previous` while `found` is within STEADY of it (`steady_count`) or while its score is within `margin`
    (relative) of the best: on the silhouette's flat top the best moves with the sample, so a grown corpus keeps
    its count unless the data say otherwise; else `found`. And what was decided."""
    chosen, kept = steady_count(found, previous)
    if chosen == previous:
        return chosen, kept
    top = max(scores.values())
    if scores.get(previous, -np.inf) >= top - margin * abs(top):
        return previous, f"{previous}: kept ({found} found; its silhouette within {margin:.0%} of the best)"
    return found, f"{previous}: moved to {found} (its silhouette more than {margin:.0%} below the best)"


def geometric(low: int, high: int, points: int = GRID_POINTS) -> list[int]:
    return sorted(set(np.geomspace(low, high, num=min(points, high - low + 1)).round().astype(int).tolist()))


def choose_count(score: Callable[[int], float | None], low: int, high: int, limit: int, limit_reason: str,
                 tolerance: float = TOLERANCE, previous: int | None = None) -> tuple[int, dict[str, Any]]:
    """The count to fit among `low`..`high`, by `score` (a silhouette; None where a count gives fewer than two
    clusters): a geometric grid, then five points between the best grid point's neighbours; when the best is
    the largest count searched, the search goes on once, to twice it, up to `limit` (`limit_reason` says why
    there); a best still at the largest count is reported as a ceiling, not taken for a choice.
    Of the scored counts, the smallest within `tolerance` of the best (the start of the plateau); with `previous`
    (the last fit's count, scored with the grid, so that the search widens only when the largest count beats it
    too), `steady_score` decides whether a re-fit keeps it."""
    scores: dict[int, float] = {}
    tried: set[int] = set()

    def scored(k: int) -> None:
        if k not in tried:
            tried.add(k)
            value = score(k)
            if value is not None:
                scores[k] = float(value)

    first_low, high = low, min(high, limit)
    for k in geometric(low, high):
        scored(k)
    steady = previous is not None and 2 <= previous <= limit
    if steady:  # a re-fit: the last count competes from the start, and the search widens only past it
        scored(previous)
    widened = bool(scores) and max(scores, key=lambda k: (scores[k], -k)) == high < limit
    if widened:
        low, high = high, min(limit, WIDEN * high)
        for k in geometric(low, high, GRID_POINTS // 2):
            scored(k)
    if not scores:
        return 1, {}
    best = max(scores, key=lambda k: (scores[k], -k))
    keys = sorted(tried)
    position = keys.index(best)
    for k in geometric(keys[max(0, position - 1)], keys[min(len(keys) - 1, position + 1)], 5):
        scored(k)
    chosen, kept = on_plateau(scores, tolerance), None
    if steady:
        chosen, kept = steady_score(chosen, previous, scores, max(MOVE_MARGIN, tolerance))
    details: dict[str, Any] = {"searched": [first_low, high], "scores": dict(sorted(scores.items()))}
    if kept:
        details["previous"] = kept
    if chosen == high:
        details["ceiling"] = (
            f"the largest count searched ({high}): {limit_reason}" if high == limit else
            f"the largest count searched ({high}), after widening the search once: past the topics' scale the "
            "silhouette keeps rising toward groups of near-identical sentences; set the largest count to search "
            "further")
    return chosen, details
