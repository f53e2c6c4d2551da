"""The fitted topic model: fit a registered algorithm on a corpus's vectors (on a sample beyond `fit_sample`, every
other sentence then assigned in chunks), hold what the fit leaves (labels, centres, radii, exemplars, its automatic
choices), name its clusters by the previous topics' ids (events, registry), and assign new sentences to the topics
it knows. Arrays and chunk iterators in, arrays and frames out: no Dagster, no DuckDB."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .assign import UNFITTED, assign_to_topics, centroids, label_streamed, stratified_rows
from .clock import utc_now
from .clustering import Algorithm, PreviousFit, sample_rows
from .neighbors import Neighbours
from .seeds import Seeds, seed_column, seed_names, seed_topics, with_empty_seeds
from .topic_memory import (
    SPREAD_QUANTILE,
    Hysteresis,
    Matching,
    RefitPolicy,
    TopicShapes,
    drift_reason,
    lineage_after_fit,
    match_topics,
    shapes_from_sums,
    topic_means,
    topic_shapes,
)

CORPUS_SPREAD = 0.995  # a topic of a fit without noise reaches at least as far as this share of all sentences do
FIT_SAMPLE = 200_000  # sentences a fit reads at most (the rest assigned, streamed)
WHOLE_GRAPH_UP_TO = 2_000_000  # sentences up to which Louvain fits the whole stored neighbour graph

Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]  # (row positions, their vectors), in any order
VectorsOf = Callable[[np.ndarray], np.ndarray]  # the vectors of the given row positions


def plain(value: Any) -> Any:
    """`value` as it reads back from a JSON column."""
    return json.loads(json.dumps(value, default=str))


def active_topics(registry: pd.DataFrame, dim: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The active rows of a `topics` registry and their centres as a (topics x dim) matrix."""
    active = registry[registry["status"] == "active"].reset_index(drop=True)
    if not len(active):
        return active, np.zeros((0, dim), dtype=np.float32)
    return active, np.array(active["centroid"].tolist(), dtype=np.float32)


def previous_fit(last: dict | None, params: Any, model_key: str, ids: np.ndarray, before: np.ndarray,
                 centres: np.ndarray) -> PreviousFit | None:
    """What a re-fit of the sentences `ids` starts from (`PreviousFit`: their topics `before`, the previous topics'
    mean embeddings `centres`): only when the last run fitted (or assigned after a fit) with the same parameters
    and model, and some sentence of this fit had a topic (after a failed run, `last` is the fit before it)."""
    details = (last or {}).get("details") or {}
    if (not last or last.get("model_key") != model_key
            or last.get("params") != plain(dataclasses.asdict(params)) or not (before >= 0).any()):
        return None
    rows = pd.Series(np.arange(len(ids)), index=ids)
    exemplars = rows.reindex(details.get("exemplars", [])).dropna().to_numpy(dtype=np.int64)
    return PreviousFit(labels=before, centres=centres, exemplars=exemplars, details=details)


@dataclass
class TopicModel:
    """One algorithm with its parameters, fitted on the sentences `ids` (sorted) of a corpus.

    `plan` says which rows the fit reads; `fit` runs the algorithm on them; `extend` labels every other row from a
    pass over the vectors and measures the topics' shapes; `match` names the clusters by the previous topics' ids.
    After them: `labels_` (every row's cluster, -1 noise), `shapes_`, `result_`, `details_`.

    With `seeds`, a fitted cluster whose centre stands out for a seed, and every row that does (`Seeds.nearest`),
    join that seed's cluster (`seed_cluster` + the seed's index); `match` names it by its seed's topic."""

    algorithm: Algorithm
    params: Any
    device: str = "cpu"
    fit_sample: int = FIT_SAMPLE
    whole_graph_up_to: int = WHOLE_GRAPH_UP_TO

    def plan(self, n: int) -> tuple[np.ndarray, bool]:
        """The sorted rows whose vectors the fit reads (a seeded sample beyond `fit_sample`), and whether it would
        rather fit every row on the stored neighbour graph (Louvain, up to `whole_graph_up_to`)."""
        sample = sample_rows(n, self.fit_sample, getattr(self.params, "seed", 0))
        wants_graph = self.algorithm.uses_neighbours and n <= max(self.fit_sample, self.whole_graph_up_to)
        return sample, wants_graph

    def fit(self, ids: np.ndarray, sample: np.ndarray, vectors: np.ndarray, neighbours: Neighbours | None = None,
            before: np.ndarray | None = None, last: dict | None = None, model_key: str = "",
            seeds: Seeds | None = None) -> TopicModel:
        """Run the algorithm on the rows `sample` (their `vectors`), or on every row from `neighbours` (stored
        lists of every row) when given for a sampled corpus; start from the last fit where the algorithm can
        (`before`: every row's previous topic, `last`: the last run); note the clusters `seeds` claim. Raises what
        the algorithm raises."""
        seeds = seeds.calibrated(vectors) if seeds is not None else None
        self.ids, self.sample, self.vectors, self.before, self.seeds = ids, sample, vectors, before, seeds
        n = len(ids)
        self.on_graph = neighbours is not None and len(sample) < n
        self.fit_rows = np.arange(n) if self.on_graph else sample
        extra: dict[str, Any] = {}
        if self.algorithm.follows_previous and before is not None:
            start = previous_fit(last, self.params, model_key, ids[self.fit_rows], before[self.fit_rows],
                                 topic_means(vectors, before[sample]))
            extra = {"previous": start} if start is not None else {}
        if self.algorithm.uses_neighbours:
            extra["neighbours"] = neighbours
        self.started = time.perf_counter()
        result = self.algorithm.fit(None if self.on_graph else vectors, self.params, self.device, **extra)
        self.labels_ = np.full(n, UNFITTED, dtype=np.int64)
        self.labels_[self.fit_rows] = result.labels
        self.result_ = result
        self.seed_cluster = int(result.labels.max(initial=-1)) + 1  # seed s: cluster seed_cluster + s
        self.claims = self.claimed_clusters(vectors, self.labels_[sample])
        return self

    def extend(self, chunks: Chunks, vectors_of: VectorsOf) -> TopicModel:
        """Every row's label and the clusters' shapes: when the fit saw part of the corpus, in one pass over the
        vectors (`chunks`), an unseen row joining the nearest centre of the fit's sampled clusters, or none when the
        fit left noise and it lies beyond that cluster's spread; radii from a stratified sample (`vectors_of`)."""
        # a topic's radius, within which a new sentence is assigned to it: for a fit that leaves noise, the spread
        # of 95% of its sentences; for one that puts every sentence in a topic, its farthest sentence, and at least
        # as far as 99.5% of all sentences lie from their topics' centres
        noisy_fit = (self.result_.labels == -1).any()
        spread = (SPREAD_QUANTILE, None) if noisy_fit else (1.0, CORPUS_SPREAD)
        keeper, seeded = self.line_keeper(), self.seed_cluster

        claimed = pd.Series({c: seeded + s for c, s in self.claims.items()}, dtype=np.int64)

        def adjust(labels: np.ndarray, before: np.ndarray, x: np.ndarray) -> np.ndarray:
            """Border rows kept on their line; the clusters a seed claimed and the rows close to a seed in the
            seed's cluster."""
            free = labels < seeded
            if keeper is not None and free.any():
                labels[free] = keeper.apply(labels[free], before[free], x[free])
            if len(claimed):
                labels = pd.Series(labels).map(claimed).fillna(pd.Series(labels)).to_numpy(np.int64)
            if self.seeds is not None:
                seed_of = self.seeds.nearest(x)
                labels = np.where(seed_of >= 0, seeded + seed_of, labels)
            return labels

        if len(self.sample) == len(self.ids):
            self.labels_ = adjust(self.labels_, self.before, self.vectors)
            self.shapes_ = topic_shapes(self.vectors, self.labels_, *spread)
        else:
            seen = self.labels_[self.sample]
            free = (seen >= 0) & (seen < seeded)
            fitted = keeper.shapes if keeper is not None else topic_shapes(self.vectors[free], seen[free])
            self.labels_, sums = label_streamed(chunks(), self.labels_, fitted.centres, fitted.cluster_ids,
                                                fitted.radii if (seen == -1).any() else None,
                                                lambda rows, x, labels: adjust(labels, self.before_of(rows), x),
                                                seeded + len(self.seeds or ()))
            rows = stratified_rows(self.labels_, len(self.sample))
            self.shapes_ = shapes_from_sums(sums, self.labels_, vectors_of(rows), self.labels_[rows], *spread)
        result, fit_rows = self.result_, self.fit_rows
        self.result_ = dataclasses.replace(result, labels=self.labels_, details={**result.details, **self.scale_note()},
                                           exemplars=None if result.exemplars is None else fit_rows[result.exemplars])
        self.seconds = time.perf_counter() - self.started  # the fit and the pass that labels every row
        return self

    def claimed_clusters(self, vectors: np.ndarray, labels: np.ndarray) -> dict[int, int]:
        """The fitted clusters (of `vectors`, `labels`) that join a seed's topic: those whose centre stands out
        for one of its examples as a sentence must to join it (`Seeds.nearest`). Cluster -> seed index."""
        if self.seeds is None or not (labels >= 0).any():
            return {}
        found, centres = centroids(vectors, labels)
        return {int(c): int(s) for c, s in zip(found, self.seeds.nearest(centres)) if s >= 0}

    def before_of(self, rows: np.ndarray) -> np.ndarray | None:
        return None if self.before is None else self.before[rows]

    def line_keeper(self) -> Hysteresis | None:
        """On a re-fit, what keeps sentences at the borders of continuing topics where they were: the fit's
        clusters on its sample matched to the topics those sentences had. None on a first fit, and for a fit built
        around exemplars (a community holds what lies within its threshold of its centre)."""
        if self.before is None:
            return None
        free = self.labels_[self.sample] < self.seed_cluster  # the rows the algorithm fitted
        before, seen, vectors = self.before[self.sample][free], self.labels_[self.sample][free], self.vectors[free]
        if self.result_.exemplars is not None or not (before >= 0).any() or not (seen >= 0).any():
            return None
        fitted = topic_shapes(vectors[seen >= 0], seen[seen >= 0])
        topic_ids, topic_centres = centroids(vectors[before >= 0], before[before >= 0])
        ids = self.ids[self.sample][free]
        matching = match_topics(pd.DataFrame({"sentence_id": ids, "cluster_id": seen}),
                                pd.DataFrame({"sentence_id": ids, "topic_id": before}), fitted, topic_ids,
                                topic_centres, np.bincount(before[before >= 0])[topic_ids], int(before.max()) + 1)
        return Hysteresis.of(matching, topic_ids, fitted)

    @property
    def n_clusters(self) -> int:
        return self.result_.n_clusters

    def summary(self) -> dict:
        """What a person reads of the fit after `match`, as plain values."""
        details = self.details_
        sampled = "fitted_on_sample" in details or details.get("fit_sample", {}).get("assigned")
        return {"status": "fitted" + (" on a sample, the rest assigned" if sampled else ""),
                "why": details["refit_reason"], "dagster/row_count": len(self.ids), "n_clusters": self.n_clusters,
                "noise_sentences": int((self.labels_ < 0).sum()), "topic_changes": details["topics"],
                "seconds": round(self.seconds, 3), "params": plain(dataclasses.asdict(self.params)),
                "details": plain({k: v for k, v in details.items() if k not in ("exemplars", "seed_calibration")})}

    def scale_note(self) -> dict:
        """What the details say of a fit that did not read every sentence's vector."""
        n, fitted = len(self.ids), len(self.fit_rows)
        if self.on_graph:
            return {"fit_sample": {"fitted": n, "note": f"{n:,} sentences, over fit_sample={self.fit_sample:,}: "
                                   "fitted on the whole sentence_neighbors graph (no vectors); shapes from a streamed "
                                   "pass"}}
        if fitted == n:
            return {}
        graph = f" and whole_graph_up_to={self.whole_graph_up_to:,}" if self.algorithm.uses_neighbours else ""
        return {"fit_sample": {
            "fitted": fitted, "assigned": n - fitted,
            "note": f"{n:,} sentences, over fit_sample={self.fit_sample:,}{graph}: fitted on a seeded sample of "
                    f"{fitted:,}, every other sentence assigned to the most similar cluster centre, a chunk at a time"}}

    def match(self, previous: pd.DataFrame, registry: pd.DataFrame, lineage: pd.DataFrame, next_topic_id: int,
              model_key: str, reason: str, now: pd.Timestamp) -> FitTables:
        """The fit's rows for the warehouse, its clusters named by the previous topics' ids (`previous`:
        sentence_id, topic_id as assigned before; `registry`: the algorithm's `topics` rows; `lineage`: its
        `topic_lineage` rows)."""
        names = seed_names(self.seeds, self.seed_cluster)
        labels, ids, shapes = self.result_.labels, self.ids, with_empty_seeds(self.shapes_, self.seeds, names)
        active, centres = active_topics(registry, self.vectors.shape[1])
        fixed, seed_events = seed_topics(names, shapes, registry, next_topic_id)
        next_topic_id = max([next_topic_id, *[t + 1 for t in fixed.values()]])
        matching = match_topics(pd.DataFrame({"sentence_id": ids, "cluster_id": labels}), previous, shapes,
                                active["topic_id"].to_numpy(), centres, active["size"].to_numpy(), next_topic_id,
                                fixed, reserved=registry.loc[seed_column(registry).notna(), "topic_id"])
        matching = dataclasses.replace(matching, events=seed_events + matching.events)
        topic_ids = pd.Series(labels).map(matching.topic_of_cluster).fillna(-1).to_numpy(dtype=np.int64)
        changes = pd.Series([e["event"] for e in matching.events], dtype=object).value_counts().to_dict()
        memory = {"fitted_at": str(now), "fitted_sentences": len(ids), "added": 0, "removed": 0, "unassigned": 0}
        exemplars = {} if self.result_.exemplars is None else {"exemplars": ids[self.result_.exemplars].tolist()}
        continued = len(shapes.cluster_ids) - changes.get("born", 0) - changes.get("split_from", 0)
        seeds = ({} if self.seeds is None else
                 {"seed_key": self.seeds.key, "seed_calibration": self.seeds.calibration()})
        self.details_ = {**self.result_.details, **exemplars, **seeds, "mode": "fitted", "refit_reason": reason,
                         "memory": memory, "topics": {"continued": continued, **changes}}
        events = pd.DataFrame(matching.events, columns=["topic_id", "event", "other_topic_id", "size"])
        topics = registry_after_fit(registry, matching, shapes, model_key, now, names)
        return FitTables(
            assignments=pd.DataFrame({"sentence_id": ids, "cluster_id": labels, "topic_id": topic_ids}),
            run=run_row(model_key, plain(dataclasses.asdict(self.params)), self.details_, len(ids),
                        self.result_.n_clusters, self.seconds, now),
            topics=topics, lineage=lineage_after_fit(lineage, topics["topic_id"], matching.links),
            events=events.assign(materialized_at=now), topic_ids=topic_ids)


@dataclass(frozen=True)
class FitTables:
    """A fit's rows for the warehouse: `cluster_assignments`, its `clustering_runs` row, the `topics` registry
    and `topic_lineage` after it, and its `topic_events`; `topic_ids`: every row's topic."""

    assignments: pd.DataFrame
    run: pd.DataFrame
    topics: pd.DataFrame
    lineage: pd.DataFrame
    events: pd.DataFrame
    topic_ids: np.ndarray

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"cluster_assignments": self.assignments, "clustering_runs": self.run, "topics": self.topics,
                "topic_lineage": self.lineage}


def run_row(model_key: str, params: dict, details: dict, n_sentences: int, n_clusters: int, seconds: float,
            now: pd.Timestamp) -> pd.DataFrame:
    """One `clustering_runs` row."""
    return pd.DataFrame([{"model_key": model_key, "params": params, "details": details, "n_sentences": n_sentences,
                          "n_clusters": n_clusters, "seconds": seconds, "materialized_at": now}])


def registry_after_fit(registry: pd.DataFrame, matching: Matching, shapes: TopicShapes, model_key: str,
                       now: pd.Timestamp, seed_names: dict[int, str] | None = None) -> pd.DataFrame:
    """The `topics` rows of an algorithm after a fit: continued topics updated, new ones added, unmatched active
    ones retired; topics retired before stay as they were. `seed_names`: the seed each seeded cluster holds."""
    registry = registry.copy()
    retired = registry["topic_id"].isin(matching.retired)
    registry.loc[retired, ["status", "cluster_id"]] = ["retired", None]
    fitted = pd.DataFrame({
        "topic_id": [matching.topic_of_cluster[int(c)] for c in shapes.cluster_ids],
        "cluster_id": shapes.cluster_ids.astype(int), "status": "active", "last_seen": now,
        "size": shapes.sizes.astype(int), "centroid": [row.tolist() for row in shapes.centres],
        "radius": shapes.radii, "model_key": model_key,
        "seed": pd.Series([(seed_names or {}).get(int(c)) for c in shapes.cluster_ids], dtype=object),
    })
    known = registry.set_index("topic_id")
    fitted["first_seen"] = pd.to_datetime(fitted["topic_id"].map(known["first_seen"].to_dict()).fillna(now))
    fitted["label"] = fitted["topic_id"].map(known["label"].to_dict())
    return pd.concat([registry[~registry["topic_id"].isin(fitted["topic_id"])], fitted], ignore_index=True)


def failed_run(model_key: str, params: Any, reason: str, n_sentences: int, last: dict | None) -> pd.DataFrame:
    """The `clustering_runs` row of a fit that could not run: its reason (`failed`), parameters and model beside
    the last fit's row, which stays whole (the topics and assignments it made are kept, and the next fit starts
    from them)."""
    failed = {"failed": reason, "failed_params": plain(dataclasses.asdict(params)), "failed_model_key": model_key,
              "failed_on_sentences": n_sentences}
    if last is None:
        return run_row(model_key, failed["failed_params"], failed, n_sentences, 0, 0.0, utc_now())
    return run_row(last["model_key"], last["params"], {**last["details"], **failed}, last["n_sentences"],
                   last["n_clusters"], last["seconds"], utc_now())


def exemplar_balls(details: dict, active: pd.DataFrame, centres: np.ndarray, radii: np.ndarray,
                   vectors_of_ids: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Centres and radii that assign new sentences as the fit would: for a fit built around exemplars at a
    similarity threshold (community detection), a topic's exemplar sentence and 1 - threshold, where the exemplar
    is still stored (`vectors_of_ids`: sentence ids -> the ids found and their vectors); every other topic keeps
    its mean direction and spread."""
    exemplars, threshold = details.get("exemplars"), details.get("threshold")
    if not exemplars or threshold is None:
        return centres, radii
    wanted = pd.Series([exemplars[c] if 0 <= c < len(exemplars) else -1
                        for c in active["cluster_id"].fillna(-1).astype(int)], dtype=np.int64)
    found_ids, found_vectors = vectors_of_ids(np.unique(wanted[wanted >= 0].to_numpy(np.int64)))
    row_of = pd.Series(np.arange(len(found_ids)), index=found_ids)
    centres, radii = centres.copy(), radii.copy()
    for i, sentence_id in enumerate(wanted):
        if sentence_id in row_of.index:
            centres[i], radii[i] = found_vectors[row_of[sentence_id]], 1.0 - float(threshold)
    return centres, radii


@dataclass(frozen=True)
class Assignment:
    """New sentences assigned to the known topics without a fit: their rows, the memory since the last fit, the
    counts of this run, and `drift` (why the topics must be fitted again instead; None: they hold)."""

    rows: pd.DataFrame
    memory: dict
    this_run: dict
    drift: str | None

    @property
    def total(self) -> int:
        return self.memory["fitted_sentences"] + self.memory["added"] - self.memory["removed"]

    @property
    def status(self) -> str:
        return "assigned" if self.this_run["added"] or self.this_run["removed"] else "unchanged"

    @property
    def why(self) -> str:
        return (f"{self.this_run['added']} new and {self.this_run['removed']} removed sentences since the last run; "
                f"the topics fitted at {self.memory['fitted_at']} still hold them (no refit condition met)")

    def summary(self, n_topics: int) -> dict:
        """What a person reads of the run, as plain values."""
        return {"status": self.status, "why": self.why, "dagster/row_count": self.total, "n_clusters": n_topics,
                "new_sentences": self.this_run["added"], "removed_sentences": self.this_run["removed"],
                "unassigned_new_sentences": self.this_run["unassigned"]}


def assign_new(policy: RefitPolicy, memory: dict, active: pd.DataFrame, centres: np.ndarray, radii: np.ndarray,
               sentence_ids: np.ndarray, vectors: np.ndarray, removed: int, seeds: Seeds | None = None) -> Assignment:
    """Assign the new sentences (`sentence_ids`, `vectors`) to their seed's topic when close to a seed, else to
    the nearest active topic (or -1 beyond its spread), and count them into the `memory` of the last fit;
    `removed`: assigned sentences gone since the last run."""
    index = assign_to_topics(vectors, centres, radii) if len(sentence_ids) else np.zeros(0, int)
    if seeds is not None and len(sentence_ids):
        seed_of_topic = seed_column(active)
        row_of_seed = pd.Series(np.flatnonzero(seed_of_topic.notna()), index=seed_of_topic.dropna().to_numpy())
        seed_rows = row_of_seed.reindex(list(seeds.names)).fillna(-1).to_numpy(np.int64)
        seed_of = seeds.nearest(vectors)
        index = np.where((seed_of >= 0) & (seed_rows[np.maximum(seed_of, 0)] >= 0),
                         seed_rows[np.maximum(seed_of, 0)], index)
    unassigned = int((index < 0).sum())
    memory = dict(memory)
    memory.update(added=memory["added"] + len(sentence_ids), removed=memory["removed"] + removed,
                  unassigned=memory["unassigned"] + unassigned)
    def of_topic(column: str) -> np.ndarray:
        known = active[column].to_numpy(dtype=np.int64)
        return np.where(index >= 0, known[np.maximum(index, 0)] if len(known) else -1, -1)

    rows = pd.DataFrame({"sentence_id": sentence_ids, "cluster_id": of_topic("cluster_id"),
                         "topic_id": of_topic("topic_id")})
    this_run = {"added": len(sentence_ids), "removed": removed, "unassigned": unassigned}
    return Assignment(rows, memory, this_run, drift_reason(policy, memory))
