"""What every clustering algorithm shares: its result, the previous fit a re-fit starts from, parameter fields
with descriptions, labels numbered by size, seeded samples, and the rule that picks a count on a score plateau."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


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


def on_plateau(scores: dict[int, float], tolerance: float) -> int:
    """The count to choose among scored ones: the smallest within `tolerance` (relative) of the best score."""
    top = max(scores.values())
    return min(k for k, v in scores.items() if v >= top - tolerance * abs(top))
