"""Topics people expect (`topic_seeds`): a name, or a few example sentences, per topic. A sentence belongs to the
seed of the example it stands out most for, when it stands out enough: its cosine similarity to the example is
`threshold` spreads or more above the corpus's typical similarity to that example (`Seeds.calibrated`), and at least
MIN_COSINE. The others are clustered, and a cluster whose centre stands out so for a seed joins that seed's topic
(the sentences of a topic are often less alike than their centre is to its name).

Standardized rather than plain cosine: how similar unrelated sentences are depends on the corpus (one bank's support
questions all resemble each other, news from four desks do not) and on the example (a two-word name is less similar
to any sentence than a whole sentence is). A plain cosine of 0.5 put 89% of banking77 in seeds for half its labels,
at a precision of 0.41; see docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .assign import ASSIGN_CHUNK
from .topic_memory import TopicShapes

SEED_THRESHOLD = 8.0  # spreads above the typical similarity to an example (docs/benchmarks.md)
MIN_COSINE = 0.3  # and at least this cosine: a seed that nothing resembles takes no sentence
CALIBRATION_ROWS = 20_000  # sentences the background similarity to the examples is measured on, at most
NEAR_IDENTICAL = 0.95  # seeds whose example centres are this similar are reported: their topics compete


@dataclass(frozen=True)
class Seeds:
    """The seeds of one algorithm: names (sorted), every example's unit vector and the seed it belongs to."""

    names: tuple[str, ...]
    examples: np.ndarray  # (examples x dim), unit rows
    owner: np.ndarray  # index into `names` of each example
    threshold: float
    key: str  # identifies the names, examples and threshold: a fit made with other seeds is fitted again
    mean: np.ndarray | None = None  # the corpus's typical cosine similarity to each example (None: not calibrated)
    std: np.ndarray | None = None  # and its spread

    def __len__(self) -> int:
        return len(self.names)

    def calibrated(self, vectors: np.ndarray, rows: int = CALIBRATION_ROWS) -> Seeds:
        """These seeds with the typical similarity of `vectors` (the corpus, or a sample of it; at most `rows` of
        them, drawn seeded) to each example: its median and its spread (1.4826 x the median absolute deviation, the
        standard deviation of a normal background). Robust, so that a seed's own topic, however large, does not
        raise its background: the mean and standard deviation would (a topic of a third of the corpus, perfectly
        apart, sits only 1.4 standard deviations above the mean)."""
        if len(vectors) > rows:
            vectors = vectors[np.sort(np.random.default_rng(0).choice(len(vectors), rows, replace=False))]
        scores = np.asarray(vectors, np.float32) @ self.examples.T
        median = np.median(scores, axis=0)
        spread = 1.4826 * np.median(np.abs(scores - median), axis=0)
        return dataclasses.replace(self, mean=median.astype(np.float64), std=np.maximum(spread, 1e-6))

    def calibration(self) -> dict:
        """The calibration as plain lists (kept with a fit: the runs that assign new sentences use it)."""
        return {"mean": self.mean.round(6).tolist(), "std": self.std.round(6).tolist()}

    def with_calibration(self, calibration: dict) -> Seeds:
        return dataclasses.replace(self, mean=np.asarray(calibration["mean"]), std=np.asarray(calibration["std"]))

    def nearest(self, vectors: np.ndarray, chunk: int = ASSIGN_CHUNK) -> np.ndarray:
        """For each row of `vectors` (unit), the seed of the example it stands out most for (standardized
        similarity, among the examples at least MIN_COSINE similar) when that reaches the threshold, else -1."""
        if self.mean is None:
            raise ValueError("seeds must be calibrated on the corpus (Seeds.calibrated) before they assign")
        seed = np.full(len(vectors), -1, dtype=np.int64)
        for start in range(0, len(vectors), chunk):
            cosine = np.asarray(vectors[start:start + chunk], np.float32) @ self.examples.T
            scores = np.where(cosine >= MIN_COSINE, (cosine - self.mean) / self.std, -np.inf)
            best = np.argmax(scores, axis=1)
            close = scores[np.arange(len(scores)), best] >= self.threshold
            seed[start:start + chunk] = np.where(close, self.owner[best], -1)
        return seed

    def centres(self) -> np.ndarray:
        """Each seed's unit mean example direction."""
        sums = np.zeros((len(self.names), self.examples.shape[1]), dtype=np.float64)
        np.add.at(sums, self.owner, self.examples)
        return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def near_identical(self) -> list[dict]:
        """Pairs of seeds whose example centres are at least NEAR_IDENTICAL similar (their topics compete for the
        same sentences), most similar first."""
        similarity = self.centres() @ self.centres().T
        pairs = [{"seed": self.names[i], "other_seed": self.names[j], "similarity": round(float(similarity[i, j]), 3)}
                 for i, j in zip(*np.triu_indices(len(self.names), 1)) if similarity[i, j] >= NEAR_IDENTICAL]
        return sorted(pairs, key=lambda pair: -pair["similarity"])


def seed_examples(rows: pd.DataFrame, algorithm: str) -> pd.DataFrame:
    """The (name, example) pairs of `topic_seeds` rows (algorithm, name, example) that apply to `algorithm` (its
    own and those for every algorithm, NULL): a row without an example has its name as its example; blank names
    are left out. Sorted, without repeats."""
    mine = rows[rows["algorithm"].isna() | (rows["algorithm"] == algorithm)]
    names = mine["name"].astype("string").str.strip()
    examples = mine["example"].astype("string").str.strip().replace("", pd.NA).fillna(names)
    pairs = pd.DataFrame({"name": names, "example": examples}).dropna()
    pairs = pairs[pairs["name"] != ""].astype(str)
    return pairs.drop_duplicates().sort_values(["name", "example"], ignore_index=True)


def seeds_from(pairs: pd.DataFrame, vectors: np.ndarray, threshold: float = SEED_THRESHOLD) -> Seeds | None:
    """Seeds from `seed_examples` pairs and their examples' unit `vectors` (same order); None without pairs."""
    if not len(pairs):
        return None
    names = tuple(sorted(pairs["name"].unique()))
    owner = pd.Series(range(len(names)), index=names)[pairs["name"]].to_numpy(np.int64)
    key = hashlib.sha256(json.dumps([threshold, pairs.values.tolist()]).encode()).hexdigest()[:16]
    return Seeds(names, np.asarray(vectors, np.float32), owner, float(threshold), key)


def seed_report(seeds: Seeds, sizes: dict[str, int], topic_ids: dict[str, int], claims: dict[int, int]) -> dict:
    """What a run says of its seeds: each seed's topic, sentences, examples and the fitted clusters it took in
    (`claims`: cluster -> seed index), the names that matched none, and seeds too alike to tell apart."""
    table = pd.DataFrame({"seed": seeds.names, "topic_id": [topic_ids.get(n) for n in seeds.names],
                          "sentences": [int(sizes.get(n, 0)) for n in seeds.names],
                          "examples": np.bincount(seeds.owner, minlength=len(seeds)).tolist(),
                          "clusters_joined": np.bincount(list(claims.values()), minlength=len(seeds)).tolist()})
    return {"table": table, "unmatched": [n for n in seeds.names if not sizes.get(n)],
            "near_identical": seeds.near_identical()}


def seed_names(seeds: Seeds | None, first_cluster: int) -> dict[int, str]:
    """Cluster id -> the seed it holds (seed s is cluster `first_cluster` + s)."""
    return {} if seeds is None else {first_cluster + s: name for s, name in enumerate(seeds.names)}


def with_empty_seeds(shapes: TopicShapes, seeds: Seeds | None, names: dict[int, str]) -> TopicShapes:
    """`shapes` with a cluster for every seed that no sentence is close to (empty: its seed's centre, no sentence),
    so that each seed has its topic."""
    empty = np.array(sorted(set(names) - set(shapes.cluster_ids.tolist())), dtype=np.int64)
    if seeds is None or not len(empty):
        return shapes
    centres = seeds.centres()[empty - min(names)]
    return TopicShapes(np.r_[shapes.cluster_ids, empty], np.r_[shapes.centres, centres],
                       np.r_[shapes.radii, np.zeros(len(empty))],
                       np.r_[shapes.sizes, np.zeros(len(empty), dtype=np.int64)])


def seed_topics(names: dict[int, str], shapes: TopicShapes, registry: pd.DataFrame,
                next_topic_id: int) -> tuple[dict[int, int], list[dict]]:
    """Each seed's cluster -> its topic id: the active topic of that seed in `registry` (the `topics` rows), or a
    new id from `next_topic_id` (with a `seeded` event)."""
    known = registry[(registry["status"] == "active") & seed_column(registry).notna()].set_index("seed")["topic_id"]
    size_of = dict(zip(shapes.cluster_ids.tolist(), shapes.sizes.tolist()))
    fixed, events = {}, []
    for cluster, name in names.items():
        if name in known.index:
            fixed[cluster] = int(known[name])
        else:
            fixed[cluster] = next_topic_id
            events.append({"topic_id": next_topic_id, "event": "seeded", "other_topic_id": None,
                           "size": int(size_of[cluster])})
            next_topic_id += 1
    return fixed, events


def seed_column(registry: pd.DataFrame) -> pd.Series:
    """The seed of each `topics` row (None: found by the algorithm)."""
    return registry["seed"] if "seed" in registry else pd.Series(None, index=registry.index, dtype=object)
