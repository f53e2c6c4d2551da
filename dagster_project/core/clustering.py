"""Clustering algorithms over L2-normalized sentence embeddings, and the registry that drives the assets.

Every algorithm takes the embedding matrix, a frozen parameter dataclass and a torch device, and returns one
label per row, -1 for noise / unassigned, clusters numbered largest first, deterministic under the seed.
On a GPU device, k-means, community detection, DBSCAN's neighbourhoods, Louvain's neighbour graph and the
silhouette run there in torch; everything else (and everything on "cpu") runs on the CPU. Each family lives in
`core/algorithms/`; adding an algorithm is its function and parameters there, one entry here, and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .algorithms.agglomerative import AgglomerativeParams, agglomerative
from .algorithms.base import (  # noqa: F401  (the types every caller of the registry uses)
    ClusteringError,
    ClusteringResult,
    PreviousFit,
    relabel_by_size,
    sample_rows,
)
from .algorithms.kmeans import KMeansParams, MiniBatchKMeansParams, kmeans, minibatch_kmeans
from .algorithms.louvain import LouvainParams, louvain
from .algorithms.threshold import CommunityParams, DBSCANParams, HDBSCANParams, community_detection, dbscan, hdbscan


@dataclass(frozen=True)
class Algorithm:
    name: str
    fit: Callable[[np.ndarray, Any, str], ClusteringResult]
    params: type
    description: str
    follows_previous: bool = False  # its fit takes `previous` (a PreviousFit) on a re-fit
    uses_neighbours: bool = False  # its fit takes `neighbours` (from sentence_neighbors)
    on_demand: str = ""  # why it is left out of the scheduled refresh (materialized when asked); empty: scheduled
    family: str = ""  # algorithms of one family share an objective (and its failures); empty: its own name

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a
    for a in [
        Algorithm("kmeans", kmeans, KMeansParams,
                  "k-means; k fixed, or chosen from the Leiden communities of the nearest-neighbour graph (the "
                  "least k) and the cosine silhouette above them.", follows_previous=True),
        Algorithm("minibatch_kmeans", minibatch_kmeans, MiniBatchKMeansParams,
                  "Mini-batch k-means for large corpora; k fixed or chosen as k-means chooses it.",
                  follows_previous=True, family="kmeans"),
        Algorithm("agglomerative", agglomerative, AgglomerativeParams,
                  "Agglomerative clustering (Ward) cut at a distance threshold, by default the cut k-means' rule "
                  "chooses for k; quadratic memory.", follows_previous=True),
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
FAMILY = {name: algorithm.family or name for name, algorithm in ALGORITHMS.items()}

def run_clustering(name: str, embeddings: np.ndarray, params: Any | None = None,
                   device: str = "cpu") -> ClusteringResult:
    """Run a registered algorithm; `params` defaults to its dataclass defaults."""
    algorithm = ALGORITHMS[name]
    return algorithm.fit(embeddings, params if params is not None else algorithm.params(), device)
