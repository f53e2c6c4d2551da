"""Topics that outlive a fit: ids matched across refits, new sentences assigned to the topics already known,
and the rule that says when to fit again."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .assign import centroids, label_means

SPREAD_QUANTILE = 0.95  # a topic's radius: this quantile of its members' cosine distance to its centre
MIN_OVERLAP = 0.3  # Jaccard of shared sentences above which a cluster may continue a topic
MIN_CENTRE_COSINE = 0.9  # or: centres this similar (a topic whose sentences were all replaced)
CENTRE_WEIGHT = 0.25  # weight of centre cosine beside overlap when several clusters could continue a topic
MAJORITY = 0.5  # share of a topic's sentences that makes a retirement a merge, or a birth a split
LINK_SHARE = 0.2  # a topic descends from a previous one when it took this share of its sentences or of its own
KEEP_MARGIN = 0.05  # a re-fit moves a sentence off its topic's line only when another cluster is this much closer


@dataclass(frozen=True)
class TopicShapes:
    """The clusters of one fit: ids, unit centres, radii (cosine distance) and sizes."""

    cluster_ids: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    sizes: np.ndarray


def spread_radii(vectors: np.ndarray, labels: np.ndarray, ids: np.ndarray, centres: np.ndarray, quantile: float,
                 corpus_quantile: float | None = None) -> np.ndarray:
    """Each cluster's radius: the `quantile` of its members' cosine distance to its centre; with
    `corpus_quantile`, at least that quantile of every member's distance to its own centre (a small cluster's
    farthest member says little of how far its topic reaches)."""
    distances = [1.0 - vectors[labels == c] @ centres[i] for i, c in enumerate(ids)]
    radii = np.array([np.quantile(d, quantile) for d in distances], dtype=np.float64)
    if corpus_quantile is not None and distances:
        radii = np.maximum(radii, np.quantile(np.concatenate(distances), corpus_quantile))
    return radii


def topic_shapes(embeddings: np.ndarray, labels: np.ndarray, quantile: float = SPREAD_QUANTILE,
                 corpus_quantile: float | None = None) -> TopicShapes:
    """Centre, radius (`spread_radii`) and size of every cluster (noise, -1, left out)."""
    ids, centres = centroids(embeddings, labels)
    radii = spread_radii(embeddings, labels, ids, centres, quantile, corpus_quantile)
    sizes = np.array([(labels == c).sum() for c in ids], dtype=np.int64)
    return TopicShapes(ids, centres.astype(np.float32), radii, sizes)


def shapes_from_sums(sums: np.ndarray, labels: np.ndarray, vectors: np.ndarray, vector_labels: np.ndarray,
                     quantile: float = SPREAD_QUANTILE, corpus_quantile: float | None = None) -> TopicShapes:
    """`topic_shapes` from a pass over the corpus (`sums`: each cluster id's vector sum, `labels`: every row's) and
    a sample of its rows (`vectors`, `vector_labels`) holding every cluster, where the radii are measured."""
    sizes = np.bincount(labels[labels >= 0], minlength=len(sums))
    ids = np.flatnonzero(sizes)
    centres = sums[ids] / np.maximum(np.linalg.norm(sums[ids], axis=1, keepdims=True), 1e-12)
    radii = spread_radii(vectors, vector_labels, ids, centres, quantile, corpus_quantile)
    return TopicShapes(ids, centres.astype(np.float32), radii, sizes[ids].astype(np.int64))


def topic_means(embeddings: np.ndarray, topic_ids: np.ndarray) -> np.ndarray:
    """The plain mean embedding of each topic (ids >= 0), largest topic first: where a k-means re-fit starts so
    that, on an unchanged corpus, its first step gives back the previous partition."""
    ids, means = label_means(embeddings, topic_ids)
    sizes = np.array([(topic_ids == t).sum() for t in ids], dtype=np.int64)
    return means[np.argsort(-sizes, kind="stable")].astype(np.float32)


@dataclass(frozen=True)
class Matching:
    """A fit's clusters named by topic ids: `topic_of_cluster` (cluster_id -> topic_id), the previous topics
    continued and retired, what happened to each topic in `events` (topic_id, event, other_topic_id, size), and
    `links` (topic_id, parent_topic_id, sentences): each topic of the fit that took a part of another topic's
    sentences (LINK_SHARE of them, or LINK_SHARE of its own) descends from it: the parts of a split, a topic that
    absorbed others in a merge, a new topic made of parts of several."""

    topic_of_cluster: dict[int, int]
    retired: list[int]
    events: list[dict]
    links: list[dict]


def match_topics(current: pd.DataFrame, previous: pd.DataFrame, shapes: TopicShapes, previous_ids: np.ndarray,
                 previous_centres: np.ndarray, previous_sizes: np.ndarray, next_topic_id: int,
                 fixed: dict[int, int] | None = None, reserved: Iterable[int] = ()) -> Matching:
    """Match the clusters of a new fit to the previous active topics, one to one.

    `current`: sentence_id, cluster_id of the fit; `previous`: sentence_id, topic_id as assigned before (noise -1
    allowed in both). A cluster continues the topic it shares most sentences with (Jaccard over the sentences present
    both times, at least MIN_OVERLAP) or whose centre is within MIN_CENTRE_COSINE of its own; the
    pairing maximises overlap plus CENTRE_WEIGHT x centre cosine over all pairs. A cluster left over gets a new id
    (event `split_from` when most of its earlier sentences came from one topic, also when that topic's id lives on
    in none of the parts, else `born`); a topic left over is retired (`merged_into` the topic that took most of its
    sentences, else `retired`). `fixed` clusters (cluster_id -> topic_id: seeded topics) are named so whatever they
    hold, and a `reserved` previous topic (a seed's) is continued by no other cluster."""
    cluster_ids = [int(c) for c in shapes.cluster_ids]
    topic_ids = [int(t) for t in previous_ids]
    shared = current.merge(previous, on="sentence_id")
    shared = shared[(shared["cluster_id"] >= 0) & (shared["topic_id"] >= 0)]
    counts = shared.groupby(["cluster_id", "topic_id"]).size()
    overlap = np.zeros((len(cluster_ids), len(topic_ids)))
    row = {c: i for i, c in enumerate(cluster_ids)}
    col = {t: j for j, t in enumerate(topic_ids)}
    for (c, t), n in counts.items():
        if c in row and t in col:
            overlap[row[c], col[t]] = n
    # Jaccard over the sentences present both times
    in_cluster = current[current["sentence_id"].isin(previous["sentence_id"])].groupby("cluster_id").size()
    in_topic = previous[previous["sentence_id"].isin(current["sentence_id"])].groupby("topic_id").size()
    a = np.array([in_cluster.get(c, 0) for c in cluster_ids], dtype=float)[:, None]
    b = np.array([in_topic.get(t, 0) for t in topic_ids], dtype=float)[None, :]
    jaccard = np.divide(overlap, a + b - overlap, out=np.zeros_like(overlap), where=(a + b - overlap) > 0)
    cosine = (shapes.centres @ np.asarray(previous_centres, np.float32).T if len(cluster_ids) and len(topic_ids)
              else np.zeros((len(cluster_ids), len(topic_ids))))
    eligible = (jaccard >= MIN_OVERLAP) | (cosine >= MIN_CENTRE_COSINE)
    fixed = fixed or {}
    eligible[[row[c] for c in fixed if c in row], :] = False
    eligible[:, [col[t] for t in set(int(t) for t in reserved) | set(fixed.values()) if t in col]] = False
    score = np.where(eligible, jaccard + CENTRE_WEIGHT * cosine, -1e6)
    rows, cols = linear_sum_assignment(-score) if score.size else (np.array([], int), np.array([], int))
    topic_of_cluster = {cluster_ids[i]: topic_ids[j] for i, j in zip(rows, cols) if eligible[i, j]}
    topic_of_cluster.update(fixed)
    continued = set(topic_of_cluster.values())
    events = []
    size_of = dict(zip(cluster_ids, shapes.sizes.tolist()))
    for i, c in enumerate(cluster_ids):
        if c in topic_of_cluster:
            continue
        topic_of_cluster[c] = next_topic_id
        j = int(np.argmax(overlap[i])) if len(topic_ids) else -1
        origin = topic_ids[j] if j >= 0 and a[i, 0] and overlap[i, j] / a[i, 0] >= MAJORITY else None
        if origin is not None:
            events.append({"topic_id": next_topic_id, "event": "split_from", "other_topic_id": origin,
                           "size": size_of[c]})
        else:
            events.append({"topic_id": next_topic_id, "event": "born", "other_topic_id": None, "size": size_of[c]})
        next_topic_id += 1
    retired = [t for t in topic_ids if t not in continued]
    for t in retired:
        j = col[t]
        i = int(np.argmax(overlap[:, j])) if len(cluster_ids) else -1
        heir = topic_of_cluster[cluster_ids[i]] if i >= 0 and b[0, j] and overlap[i, j] / b[0, j] >= MAJORITY else None
        events.append({"topic_id": t, "event": "merged_into" if heir is not None else "retired",
                       "other_topic_id": heir, "size": int(previous_sizes[j])})
    linked = (overlap > 0) & ((overlap >= LINK_SHARE * b) | (overlap >= LINK_SHARE * a))
    links = [{"topic_id": topic_of_cluster[cluster_ids[i]], "parent_topic_id": topic_ids[j],
              "sentences": int(overlap[i, j])}
             for i, j in zip(*np.nonzero(linked)) if topic_of_cluster[cluster_ids[i]] != topic_ids[j]]
    return Matching(topic_of_cluster, retired, events, links)


@dataclass(frozen=True)
class Hysteresis:
    """What keeps a re-fit from churning sentences at the borders between topics that both live on: a sentence
    whose new cluster neither continues its previous topic nor descends from it stays in the cluster that continues
    that topic, unless its new cluster's centre is more than `margin` (cosine) closer."""

    continues: dict[int, int]  # previous topic_id -> the cluster that continues it
    lineage: set[tuple[int, int]]  # (cluster, previous topic_id): the cluster continues or descends from the topic
    shapes: TopicShapes  # the fit's clusters (their ids and unit centres)
    margin: float = KEEP_MARGIN

    @classmethod
    def of(cls, matching: Matching, previous_ids: Iterable[int], shapes: TopicShapes) -> Hysteresis:
        """From a matching of the fit's clusters (`shapes`) to the previous topics (`previous_ids`)."""
        previous_ids = set(int(t) for t in previous_ids)
        cluster_of = {t: c for c, t in matching.topic_of_cluster.items()}
        continues = {t: c for t, c in cluster_of.items() if t in previous_ids}
        lineage = {(c, t) for t, c in continues.items()}
        lineage |= {(cluster_of[link["topic_id"]], link["parent_topic_id"]) for link in matching.links}
        return cls(continues, lineage, shapes)

    def apply(self, labels: np.ndarray, before: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """`labels` (clusters of the rows of `vectors`, -1 noise) with the rows that keep their line moved back;
        `before`: each row's previous topic (-1 none)."""
        labels, before = np.array(labels, dtype=np.int64), np.asarray(before, dtype=np.int64)
        preferred = pd.Series(before).map(self.continues).fillna(-1).to_numpy(np.int64)
        candidate = (labels >= 0) & (preferred >= 0) & (preferred != labels)
        on_line = np.array([c * 2**32 + t for c, t in self.lineage], dtype=np.int64)
        candidate &= ~np.isin(labels * 2**32 + before, on_line)
        rows = np.flatnonzero(candidate)
        if not len(rows):
            return labels
        index = pd.Series(np.arange(len(self.shapes.cluster_ids)), index=self.shapes.cluster_ids)
        x, centres = np.asarray(vectors[rows], np.float32), self.shapes.centres
        to_new = np.einsum("ij,ij->i", x, centres[index[labels[rows]].to_numpy()])
        to_kept = np.einsum("ij,ij->i", x, centres[index[preferred[rows]].to_numpy()])
        stay = rows[to_kept >= to_new - self.margin]
        labels[stay] = preferred[stay]
        return labels


def lineage_after_fit(lineage: pd.DataFrame, topic_ids: Iterable[int], links: list[dict]) -> pd.DataFrame:
    """`topic_lineage` rows (topic_id, ancestor_topic_id, generations) after a fit: the rows before it, every
    topic its own ancestor at generation 0, and a topic linked to a parent at this fit (`Matching.links`)
    descending from each of the parent's ancestors one generation further (the fewest generations kept)."""
    key = ["topic_id", "ancestor_topic_id"]
    ids = np.fromiter(topic_ids, dtype=np.int64)
    rows = pd.concat([lineage[[*key, "generations"]],
                      pd.DataFrame({"topic_id": ids, "ancestor_topic_id": ids, "generations": 0})])
    if links:
        edges = pd.DataFrame(links)[["topic_id", "parent_topic_id"]].drop_duplicates()
        inherited = edges.merge(rows.rename(columns={"topic_id": "parent_topic_id"}), on="parent_topic_id")
        rows = pd.concat([rows, inherited.assign(generations=inherited["generations"] + 1)[rows.columns]])
    rows = rows.astype({"topic_id": "int64", "ancestor_topic_id": "int64", "generations": "int64"})
    return rows.groupby(key, as_index=False)["generations"].min().sort_values(key, ignore_index=True)


@dataclass(frozen=True)
class RefitPolicy:
    """When a run fits again instead of assigning new sentences to the known topics."""

    refit: bool = False
    refit_when_changed: float = 0.25
    refit_when_unassigned: float = 0.05


def refit_reason(policy: RefitPolicy, last: dict | None, params: dict, model_key: str,
                 seed_key: str | None = None) -> str | None:
    """Why this run must fit again before looking at the new sentences (None: they may be assigned).

    `last`: the algorithm's latest run (params, model_key, details with `memory` and the `seed_key` of its
    seeds), None when it never ran; `seed_key`: that of this run's seeds (None: no seeds)."""
    if policy.refit:
        return "asked for (refit = true)"
    if last is None:
        return "first fit"
    details = last.get("details") or {}
    if "failed" in details:
        return "the last run failed"
    if "memory" not in details:
        return "no topic memory yet"
    if last.get("model_key") != model_key:
        return f"the model changed ({last.get('model_key')} -> {model_key})"
    if last.get("params") != params:
        return "the parameters changed"
    if details.get("seed_key") != seed_key:
        return "the topic seeds changed (topic_seeds)"
    return None


def drift_reason(policy: RefitPolicy, memory: dict) -> str | None:
    """Why the topics must be fitted again after this run's assignment (None: keep them). `memory` counts the
    sentences at the last fit and those added, removed and left unassigned since."""
    fitted = max(int(memory["fitted_sentences"]), 1)
    changed = (memory["added"] + memory["removed"]) / fitted
    if changed >= policy.refit_when_changed:
        return (f"{memory['added']} added and {memory['removed']} removed since the last fit: {changed:.0%} of its "
                f"{fitted} sentences (refit_when_changed = {policy.refit_when_changed:.0%})")
    unassigned = memory["unassigned"] / fitted
    if unassigned >= policy.refit_when_unassigned:
        return (f"{memory['unassigned']} new sentences fit no topic: {unassigned:.1%} of the last fit's {fitted} "
                f"(refit_when_unassigned = {policy.refit_when_unassigned:.0%})")
    return None
