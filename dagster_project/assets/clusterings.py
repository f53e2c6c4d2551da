"""One clustering asset and one topic asset per registered algorithm (an asset factory over the registry)."""

import dataclasses
import json
import time
import typing

import dagster as dg
import numpy as np
import pandas as pd
import pydantic

from ..core.assign import UNFITTED, label_streamed, stratified_rows
from ..core.clustering import ALGORITHMS, Algorithm, ClusteringResult, PreviousFit, sample_rows
from ..core.neighbors import Neighbours, as_neighbours
from ..core.plots import hierarchy_png, k_selection_png, markdown_image, top_topics_png, topic_map_png, trends_png
from ..core.topic_memory import (
    RefitPolicy,
    TopicShapes,
    assign_to_topics,
    drift_reason,
    match_topics,
    refit_reason,
    shapes_from_sums,
    topic_means,
    topic_shapes,
)
from ..core.topics import NOISE_LABEL, summarize_topics, topic_hierarchy
from ..core.trends import rising_topics
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .embeddings import sentence_embeddings
from .evaluation_map import sentence_map
from .neighbors import sentence_neighbors


def config_class(params: type, name: str, base: type[dg.Config] = dg.Config) -> type[dg.Config]:
    """A typed dagster Config (editable in the launchpad) mirroring a parameter dataclass, on top of `base`."""
    hints = typing.get_type_hints(params)
    fields = {
        f.name: (hints[f.name], pydantic.Field(default=f.default, description=f.metadata.get("description")))
        for f in dataclasses.fields(params)
    }
    return pydantic.create_model("".join(part.title() for part in name.split("_")) + "Config", __base__=base,
                                 **fields)


FIT_SAMPLE = 200_000  # sentences a fit reads at most (the rest assigned, streamed)


class RefitConfig(dg.Config):
    """When a run fits again rather than assigning the new sentences to the topics it knows."""

    refit: bool = pydantic.Field(default=False, description=(
        "Fit again now, whatever arrived (the weekly_refit schedule sets it); topic ids are then matched to the "
        "previous topics."))
    refit_when_changed: float = pydantic.Field(default=0.25, description=(
        "Fit again once the sentences added and removed since the last fit reach this share of it."))
    refit_when_unassigned: float = pydantic.Field(default=0.05, description=(
        "Fit again once the new sentences that fit no topic (farther from the nearest centre than the topic's "
        "own spread) reach this share of the last fit."))


WHOLE_GRAPH_UP_TO = 2_000_000  # sentences up to which Louvain fits the whole stored neighbour graph


class ClusteringRunConfig(RefitConfig):
    """A clustering run: when it fits again, and how much of the corpus a fit reads."""

    fit_sample: int = pydantic.Field(default=FIT_SAMPLE, description=(
        "Most sentences a fit reads: a larger corpus is fitted on a seeded sample of this many (Louvain: on the "
        "whole neighbour graph of sentence_neighbors, up to whole_graph_up_to) and every other sentence then "
        "assigned to the nearest cluster centre in chunks, so memory stays bounded whatever the corpus (details "
        "say so)."))
    whole_graph_up_to: int = pydantic.Field(default=WHOLE_GRAPH_UP_TO, description=(
        "Louvain only: up to this many sentences it fits every one of them on the graph of sentence_neighbors "
        "(no vectors read, about 2 KB of memory per sentence); beyond, it fits fit_sample sentences on their "
        "neighbours among themselves, as the other algorithms fit a sample."))


def plain(value: typing.Any) -> typing.Any:
    """`value` as it reads back from a JSON column."""
    return json.loads(json.dumps(value, default=str))


SUMMARY_SAMPLE = 200_000  # sentences a topic summary reads at most


class TopicConfig(dg.Config):
    n_keywords: int = pydantic.Field(default=10, description=(
        "Keywords per topic (class-based TF-IDF; the first 10 are scored by clustering_metrics.coherence_npmi)."))
    n_representatives: int = pydantic.Field(default=3, description="Representative sentences per topic.")
    max_ngram: int = pydantic.Field(default=2, description="Longest keyword n-gram (1: single words).")
    diversity: float = pydantic.Field(default=0.0, description=(
        "0: keywords in c-TF-IDF order (the default: the most coherent and diverse keywords measured, see "
        "docs/benchmarks.md). Above 0: candidates re-ranked by similarity to the topic's centre (KeyBERT-style) and "
        "picked by maximal marginal relevance with this diversity, up to 1 (most diverse)."))
    trend_period: typing.Literal["day", "week", "month"] = pydantic.Field(
        default="day", description="Period of `topic_trends` (by sentences.timestamp).")
    sample_size: int = pydantic.Field(default=SUMMARY_SAMPLE, description=(
        "Most sentences the keywords and representatives are drawn from: beyond it, a seeded sample holding every "
        "topic in proportion to its size (one sentence at least); sizes always count every sentence."))


def cluster_sizes_markdown(topic_ids: np.ndarray, limit: int = 15) -> str:
    ids, counts = np.unique(topic_ids, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:limit]
    rows = [f"| {'noise' if ids[i] < 0 else int(ids[i])} | {int(counts[i])} |" for i in order]
    return "\n".join(["| topic_id | sentences |", "|---|---|", *rows])


def topics_markdown(topics: pd.DataFrame, limit: int = 10) -> str:
    head = topics.head(limit)
    rows = [
        f"| {r.topic_id} | {r.size} | {r.label} | {', '.join(r.keywords)} | {example} |"
        for r in head.itertuples()
        for example in [r.representative_sentences[0] if len(r.representative_sentences) else ""]
    ]
    return "\n".join(["| topic_id | size | label | keywords | example |", "|---|---|---|---|---|", *rows])


def clustering_tables(frame: pd.DataFrame, result: ClusteringResult, model_key: str, params: typing.Any,
                      seconds: float, topic_ids: np.ndarray | None = None,
                      details: dict | None = None) -> dict[str, pd.DataFrame]:
    """The `cluster_assignments` and `clustering_runs` rows of one clustering of the sentences in `frame`
    (topic ids: the cluster ids unless given)."""
    return {
        "cluster_assignments": pd.DataFrame({
            "sentence_id": frame["sentence_id"], "cluster_id": result.labels,
            "topic_id": result.labels if topic_ids is None else topic_ids}),
        "clustering_runs": pd.DataFrame([{
            "model_key": model_key, "params": dataclasses.asdict(params), "details": details or result.details,
            "n_sentences": len(frame), "n_clusters": result.n_clusters, "seconds": seconds,
            "materialized_at": pd.Timestamp.now(),
        }]),
    }


def registry_after_fit(registry: pd.DataFrame, matching: typing.Any, shapes: typing.Any, model_key: str,
                       now: pd.Timestamp) -> pd.DataFrame:
    """The `topics` rows of an algorithm after a fit: continued topics updated, new ones added, unmatched active
    ones retired; topics retired before stay as they were."""
    registry = registry.copy()
    retired = registry["topic_id"].isin(matching.retired)
    registry.loc[retired, ["status", "cluster_id"]] = ["retired", None]
    fitted = pd.DataFrame({
        "topic_id": [matching.topic_of_cluster[int(c)] for c in shapes.cluster_ids],
        "cluster_id": shapes.cluster_ids.astype(int), "status": "active", "last_seen": now,
        "size": shapes.sizes.astype(int), "centroid": [row.tolist() for row in shapes.centres],
        "radius": shapes.radii, "model_key": model_key,
    })
    known = registry.set_index("topic_id")
    fitted["first_seen"] = pd.to_datetime(fitted["topic_id"].map(known["first_seen"].to_dict()).fillna(now))
    fitted["label"] = fitted["topic_id"].map(known["label"].to_dict())
    return pd.concat([registry[~registry["topic_id"].isin(fitted["topic_id"])], fitted], ignore_index=True)


def failed_tables(model_key: str, params: typing.Any, reason: str, n_sentences: int) -> dict[str, pd.DataFrame]:
    """The per-algorithm rows after a fit that could not run: none but a `clustering_runs` row with the reason."""
    return {
        "cluster_assignments": pd.DataFrame({"sentence_id": pd.Series(dtype="int64"),
                                             "cluster_id": pd.Series(dtype="int64")}),
        "topic_summaries": pd.DataFrame({"cluster_id": pd.Series(dtype="int64"), "size": pd.Series(dtype="int64")}),
        "topic_hierarchy": pd.DataFrame({"merge_id": pd.Series(dtype="int64")}),
        "clustering_runs": pd.DataFrame([{
            "model_key": model_key, "params": dataclasses.asdict(params), "details": {"failed": reason},
            "n_sentences": n_sentences, "materialized_at": pd.Timestamp.now()}]),
    }


def active_topics(registry: pd.DataFrame, dim: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The active rows of a `topics` registry and their centres as a (topics x dim) matrix."""
    active = registry[registry["status"] == "active"].reset_index(drop=True)
    if not len(active):
        return active, np.zeros((0, dim), dtype=np.float32)
    return active, np.array(active["centroid"].tolist(), dtype=np.float32)


def previous_fit(last: dict | None, params: typing.Any, model_key: str, ids: np.ndarray, before: np.ndarray,
                 centres: np.ndarray) -> PreviousFit | None:
    """What a re-fit of the sentences `ids` starts from (`PreviousFit`: their topics `before`, the previous topics'
    mean embeddings `centres`): only when the last run fitted (or assigned after a fit) with the same parameters
    and model, and some sentence of this fit had a topic."""
    details = (last or {}).get("details") or {}
    if (not last or "failed" in details or last.get("model_key") != model_key
            or last.get("params") != plain(dataclasses.asdict(params)) or not (before >= 0).any()):
        return None
    rows = pd.Series(np.arange(len(ids)), index=ids)
    exemplars = rows.reindex(details.get("exemplars", [])).dropna().to_numpy(dtype=np.int64)
    return PreviousFit(labels=before, centres=centres, exemplars=exemplars, details=details)


def stored_neighbours(warehouse: DuckDBWarehouse, model_key: str, ids: np.ndarray, k: int) -> Neighbours | None:
    """The `sentence_neighbors` lists of the sentences `ids` as row positions, when every one of them has its
    min(k, sentences - 1) neighbours stored for this model; else None (the fit scores neighbours exactly)."""
    k = min(k, len(ids) - 1)
    if k < 1:
        return None
    rows = warehouse.neighbour_rows(model_key, k)
    if not (rows["sentence_id"].value_counts().reindex(ids).fillna(0) >= k).all():
        return None
    return as_neighbours(ids, rows, k)


def label_everything(warehouse: DuckDBWarehouse, model_key: str, ids: np.ndarray, labels: np.ndarray,
                     sample: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, TopicShapes]:
    """Every sentence's label and the clusters' shapes after a fit of part of the corpus (`labels`: UNFITTED for
    the sentences the fit did not see), in one pass over the embeddings, a chunk at a time: an unseen sentence
    joins the nearest centre of the fit's sampled clusters (`sample`: rows, `vectors`: their embeddings), or none
    when the fit left noise and it lies beyond that cluster's spread. Radii from a stratified sample."""
    if len(sample) == len(ids):
        return labels, topic_shapes(vectors, labels)
    seen = labels[sample]
    fitted = topic_shapes(vectors[seen >= 0], seen[seen >= 0])
    noisy = bool((seen == -1).any())
    chunks = ((np.searchsorted(ids, chunk_ids), chunk) for chunk_ids, chunk in warehouse.embedding_chunks(model_key))
    labels, sums = label_streamed(chunks, labels, fitted.centres, fitted.cluster_ids,
                                  fitted.radii if noisy else None)
    rows = stratified_rows(labels, len(sample))
    _, measured = warehouse.embeddings_of(model_key, ids[rows])
    return labels, shapes_from_sums(sums, labels, measured, labels[rows])


def fit_and_match(context: dg.AssetExecutionContext, algorithm: Algorithm, params: typing.Any, reason: str,
                  config: ClusteringRunConfig, warehouse: DuckDBWarehouse, embedder: SentenceEmbedder,
                  last: dict | None) -> dg.MaterializeResult:
    """Fit on the sentences of the window (on a sample beyond `fit_sample`, the rest assigned; starting from the
    last fit where the algorithm can), then name the clusters by the previous topics' ids."""
    name, model_key = algorithm.name, embedder.model_key
    ids = warehouse.window_ids()
    n = len(ids)
    previous = warehouse.assignments(name)[["sentence_id", "topic_id"]]
    before = pd.Series(ids).map(previous.set_index("sentence_id")["topic_id"]).fillna(-1).to_numpy(np.int64)
    fit_sample = config.fit_sample
    on_stored = algorithm.uses_neighbours and n <= max(fit_sample, config.whole_graph_up_to)
    neighbours = stored_neighbours(warehouse, model_key, ids, params.n_neighbors) if on_stored else None
    sample = sample_rows(n, fit_sample, getattr(params, "seed", 0))
    frame, vectors = warehouse.sampled_embeddings(model_key, ids, sample)
    on_graph = neighbours is not None and len(sample) < n  # every sentence, from its stored neighbours
    fit_rows = np.arange(n) if on_graph else sample
    extra = {}
    if algorithm.follows_previous:
        start = previous_fit(last, params, model_key, ids[fit_rows], before[fit_rows],
                             topic_means(vectors, before[sample]))
        extra = {"previous": start} if start is not None else {}
    if algorithm.uses_neighbours:
        extra["neighbours"] = neighbours
    started = time.perf_counter()
    try:
        result = algorithm.fit(None if on_graph else vectors, params, embedder.compute_device, **extra)
    except Exception as err:  # one algorithm that cannot run must not stop the others' refresh
        failure = f"{type(err).__name__}: {err}"
        context.log.error(f"{name} could not run; its rows are cleared, the other algorithms go on. {failure}")
        warehouse.replace_algorithm_rows(name, failed_tables(model_key, params, failure, n))
        return dg.MaterializeResult(
            metadata={"status": "failed", "reason": failure, "params": dg.MetadataValue.json(
                dataclasses.asdict(params))},
            check_results=[dg.AssetCheckResult(check_name="fit_succeeded", passed=False,
                                               severity=dg.AssetCheckSeverity.ERROR, metadata={"reason": failure})])
    labels = np.full(n, UNFITTED, dtype=np.int64)
    labels[fit_rows] = result.labels
    labels, shapes = label_everything(warehouse, model_key, ids, labels, sample, vectors)
    scale = {} if len(fit_rows) == n else {"fit_sample": {
        "fitted": len(fit_rows), "assigned": n - len(fit_rows),
        "note": f"{n:,} sentences, over fit_sample={fit_sample:,}"
                + (f" and whole_graph_up_to={config.whole_graph_up_to:,}" if algorithm.uses_neighbours else "")
                + f": fitted on a seeded sample of {len(fit_rows):,}, "
                "every other sentence assigned to the most similar cluster centre, a chunk at a time"}}
    if on_graph:
        scale = {"fit_sample": {"fitted": n, "note": f"{n:,} sentences, over fit_sample={fit_sample:,}: fitted on "
                                "the whole sentence_neighbors graph (no vectors); shapes from a streamed pass"}}
    result = dataclasses.replace(result, labels=labels, details={**result.details, **scale},
                                 exemplars=None if result.exemplars is None else fit_rows[result.exemplars])
    frame = pd.DataFrame({"sentence_id": ids})
    seconds = time.perf_counter() - started
    now = pd.Timestamp.now()
    registry = warehouse.topic_registry(name)
    active, centres = active_topics(registry, vectors.shape[1])
    matching = match_topics(
        pd.DataFrame({"sentence_id": ids, "cluster_id": result.labels}), previous, shapes,
        active["topic_id"].to_numpy(), centres, active["size"].to_numpy(), warehouse.next_topic_id(name))
    topic_ids = pd.Series(result.labels).map(matching.topic_of_cluster).fillna(-1).to_numpy(dtype=np.int64)
    changes = pd.Series([e["event"] for e in matching.events], dtype=object).value_counts().to_dict()
    memory = {"fitted_at": str(now), "fitted_sentences": len(frame), "added": 0, "removed": 0, "unassigned": 0}
    exemplars = {} if result.exemplars is None else {"exemplars": ids[result.exemplars].tolist()}
    details = {**result.details, **exemplars, "mode": "fitted", "refit_reason": reason, "memory": memory,
               "topics": {"continued": len(shapes.cluster_ids) - changes.get("born", 0) - changes.get("split_from", 0),
                          **changes}}
    tables = clustering_tables(frame, result, model_key, params, seconds, topic_ids, details)
    tables["topics"] = registry_after_fit(registry, matching, shapes, model_key, now)
    events = pd.DataFrame(matching.events, columns=["topic_id", "event", "other_topic_id", "size"])
    warehouse.replace_algorithm_rows(name, tables, events.assign(materialized_at=now))
    noise = int((result.labels < 0).sum())
    figures = {}
    if "silhouette_by_k" in details:
        png = k_selection_png(details["silhouette_by_k"], details["inertia_by_k"], details["n_clusters"])
        figures["k_selection"] = dg.MetadataValue.md(markdown_image(png, "silhouette and inertia per k"))
    if "silhouette_by_clusters" in details:
        png = k_selection_png(details["silhouette_by_clusters"], None, result.n_clusters,
                              "cosine silhouette of the tree's cut")
        figures["k_selection"] = dg.MetadataValue.md(markdown_image(png, "silhouette per cut of the tree"))
    context.log.info(f"{name}: fitted ({reason}): {result.n_clusters} clusters, {noise} noise, {seconds:.2f}s")
    metadata = {
        "status": "fitted" + (" on a sample, the rest assigned" if "fitted_on_sample" in details
                              or details.get("fit_sample", {}).get("assigned") else ""),
        "why": reason,
        "dagster/row_count": len(frame),
        "n_clusters": result.n_clusters,
        "noise_sentences": noise,
        "topic_changes": dg.MetadataValue.json(details["topics"]),
        "seconds": round(seconds, 3),
        "params": dg.MetadataValue.json(dataclasses.asdict(params)),
        "details": dg.MetadataValue.json(plain({k: v for k, v in details.items() if k != "exemplars"})),
        "cluster_sizes": dg.MetadataValue.md(cluster_sizes_markdown(topic_ids)),
        "model_key": model_key,
        "device": embedder.compute_device,
        **figures,
    }
    return dg.MaterializeResult(metadata=metadata,
                                check_results=[dg.AssetCheckResult(check_name="fit_succeeded", passed=True)])


def exemplar_balls(details: dict, active: pd.DataFrame, centres: np.ndarray, radii: np.ndarray,
                   warehouse: DuckDBWarehouse, model_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Centres and radii that assign new sentences as the fit would: for a fit built around exemplars at a
    similarity threshold (community detection), a topic's exemplar sentence and 1 - threshold, where the exemplar
    is still stored; every other topic keeps its mean direction and spread."""
    exemplars, threshold = details.get("exemplars"), details.get("threshold")
    if not exemplars or threshold is None:
        return centres, radii
    wanted = pd.Series([exemplars[c] if 0 <= c < len(exemplars) else -1
                        for c in active["cluster_id"].fillna(-1).astype(int)])
    found, vectors = warehouse.embeddings_of(model_key, np.unique(wanted[wanted >= 0].to_numpy(np.int64)))
    row_of = pd.Series(np.arange(len(found)), index=found["sentence_id"].to_numpy())
    centres, radii = centres.copy(), radii.copy()
    for i, sentence_id in enumerate(wanted):
        if sentence_id in row_of.index:
            centres[i], radii[i] = vectors[row_of[sentence_id]], 1.0 - float(threshold)
    return centres, radii


def assign_new(context: dg.AssetExecutionContext, name: str, policy: RefitPolicy, last: dict,
               warehouse: DuckDBWarehouse, model_key: str) -> dg.MaterializeResult | str:
    """Assign the sentences that arrived since the last run to the nearest active topic (or -1 beyond its
    spread), without fitting; or the reason to fit again. Reads only the new sentences' embeddings."""
    started = time.perf_counter()
    frame, embeddings, removed = warehouse.new_sentences(name, model_key)
    active, centres = active_topics(warehouse.topic_registry(name), embeddings.shape[1])
    radii = active["radius"].to_numpy(dtype=np.float64)
    if len(frame):
        centres, radii = exemplar_balls(last["details"], active, centres, radii, warehouse, model_key)
    index = assign_to_topics(embeddings, centres, radii) if len(frame) else np.zeros(0, int)
    unassigned = int((index < 0).sum())
    memory = dict(last["details"]["memory"])
    memory.update(added=memory["added"] + len(frame), removed=memory["removed"] + removed,
                  unassigned=memory["unassigned"] + unassigned)
    drift = drift_reason(policy, memory)
    if drift:
        return drift
    total = memory["fitted_sentences"] + memory["added"] - memory["removed"]
    this_run = {"added": len(frame), "removed": removed, "unassigned": unassigned}
    status = "assigned" if len(frame) or removed else "unchanged"
    if status == "assigned":
        pick = np.maximum(index, 0)
        rows = pd.DataFrame({
            "sentence_id": frame["sentence_id"],
            "cluster_id": np.where(index >= 0, active["cluster_id"].to_numpy(dtype=np.int64)[pick], -1),
            "topic_id": np.where(index >= 0, active["topic_id"].to_numpy(dtype=np.int64)[pick], -1)})
        details = {**last["details"], "mode": "assigned", "memory": memory, "this_run": this_run}
        seconds = time.perf_counter() - started
        warehouse.add_assignments(name, rows, pd.DataFrame([{
            "model_key": model_key, "params": last["params"], "details": details, "n_sentences": total,
            "n_clusters": len(active), "seconds": seconds, "materialized_at": pd.Timestamp.now()}]))
    why = (f"{len(frame)} new and {removed} removed sentences since the last run; the topics fitted at "
           f"{memory['fitted_at']} still hold them (no refit condition met)")
    context.log.info(f"{name}: {status}, no fit: {why}; {unassigned} fit no topic")
    return dg.MaterializeResult(
        metadata={"status": status, "why": why, "dagster/row_count": total, "n_clusters": len(active),
                  "new_sentences": len(frame), "removed_sentences": removed, "unassigned_new_sentences": unassigned,
                  "since_last_fit": dg.MetadataValue.json(memory),
                  "seconds": round(time.perf_counter() - started, 3), "model_key": model_key},
        check_results=[dg.AssetCheckResult(check_name="fit_succeeded", passed=True,
                                           metadata={"fit": f"kept from {memory['fitted_at']}"})])


def summarize(name: str, config: TopicConfig, warehouse: DuckDBWarehouse,
              embedder: SentenceEmbedder) -> dict[str, bytes]:
    """Keywords, representatives and labels of every topic of the latest fit (`topic_summaries`; beyond
    `sample_size` sentences, from a sample holding every topic in proportion, sizes still of every sentence), and
    the topic hierarchy; returns the map and hierarchy figures."""
    assigned = warehouse.assignments(name)
    ids = warehouse.window_ids()
    if not np.array_equal(assigned["sentence_id"].to_numpy(), ids):
        raise RuntimeError(
            f"cluster_assignments for '{name}' do not cover the current sentences. "
            f"Materialize {name}_clusters again, then {name}_topics."
        )
    labels = assigned["cluster_id"].to_numpy()
    rows = stratified_rows(labels, config.sample_size)
    frame, embeddings = warehouse.sampled_embeddings(embedder.model_key, ids, rows)
    summary = summarize_topics(
        frame["text"].tolist(), embeddings, labels[rows],
        n_keywords=config.n_keywords, n_representatives=config.n_representatives,
        ngram_range=(1, max(1, config.max_ngram)), embed=embedder.encode if config.diversity > 0 else None,
        diversity=config.diversity,
    )
    sizes = pd.Series(labels).value_counts()
    summary = summary.assign(size=summary["cluster_id"].map(sizes).astype("int64"),
                             share=lambda t: t["size"] / max(len(labels), 1))
    summary = summary.sort_values(["size", "cluster_id"], ascending=[False, True], ignore_index=True)
    topic_of = assigned.drop_duplicates("cluster_id").set_index("cluster_id")["topic_id"]
    summary = summary.assign(topic_id=summary["cluster_id"].map(topic_of).fillna(-1).astype("int64"),
                             keyword_label=summary["label"])
    hierarchy = topic_hierarchy(embeddings, labels[rows], sizes.to_dict())
    warehouse.replace_algorithm_rows(name, {"topic_summaries": summary, "topic_hierarchy": hierarchy})
    names = {int(r.cluster_id): r.label for r in summary.itertuples() if r.cluster_id >= 0}
    figures = {}
    points = warehouse.query("SELECT x, y FROM sentence_map ORDER BY sentence_id")
    if len(points) == len(labels):
        figures["topic_map"] = topic_map_png(points[["x", "y"]].to_numpy(), labels, names,
                                             f"{name}: sentences by topic")
    tree = hierarchy_png(hierarchy, names, f"{name}: topic hierarchy")
    if tree:
        figures["topic_hierarchy"] = tree
    return figures


ON_DEMAND_GROUP = "on_demand"  # clusterings left out of the scheduled refresh


def on_demand_note(algorithm: Algorithm) -> str:
    return (f" Not in the scheduled refresh ({algorithm.on_demand}; docs/benchmarks.md): materialize it from the "
            "UI or with the cluster_on_demand job." if algorithm.on_demand else "")


def build_clustering_assets(algorithm: Algorithm) -> list:
    name = algorithm.name
    ClusterConfig = config_class(algorithm.params, algorithm.name, ClusteringRunConfig)

    fit_check = dg.AssetCheckSpec("fit_succeeded", asset=f"{name}_clusters",
                                  description="The algorithm ran on the current sentences; if not, why.")

    @dg.asset(
        name=f"{name}_clusters",
        deps=[sentence_embeddings, *([sentence_neighbors] if algorithm.uses_neighbours else [])],
        group_name=ON_DEMAND_GROUP if algorithm.on_demand else "clusterings",
        kinds={"scikitlearn", "duckdb"},
        check_specs=[fit_check],
        description=f"{algorithm.description} One row per sentence in `cluster_assignments` (algorithm = '{name}'), "
                    "with a `topic_id` that stays the same across runs. New sentences are assigned to the nearest "
                    "known topic without fitting again, until the share of sentences changed or left unassigned "
                    "since the last fit passes its threshold (or the parameters or the model change, or `refit` is "
                    "set); a fit's clusters are then matched to the previous topics, and `topics` and "
                    "`topic_events` record what was born, continued, split, merged or retired. If the algorithm "
                    "cannot run, its rows are cleared, its check `fit_succeeded` fails with the reason and the rest "
                    "of the refresh goes on." + on_demand_note(algorithm),
    )
    def clusters(context: dg.AssetExecutionContext, config: ClusterConfig, warehouse: DuckDBWarehouse,
                 embedder: SentenceEmbedder) -> dg.MaterializeResult:
        policy = RefitPolicy(**{field: getattr(config, field) for field in RefitConfig.model_fields})
        params = algorithm.params(**config.model_dump(exclude=set(ClusteringRunConfig.model_fields)))
        last = warehouse.last_run(name)
        reason = refit_reason(policy, last, plain(dataclasses.asdict(params)), embedder.model_key)
        if reason is None:
            outcome = assign_new(context, name, policy, last, warehouse, embedder.model_key)
            if isinstance(outcome, dg.MaterializeResult):
                return outcome
            reason = outcome
        return fit_and_match(context, algorithm, params, reason, config, warehouse, embedder, last)

    @dg.asset_check(asset=clusters, name="every_sentence_assigned_once")
    def every_sentence_assigned_once(warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        """Each sentence of the cluster window has exactly one cluster_id for this algorithm, and no assignment
        names a sentence outside it."""
        window, params = warehouse.window_scope()
        row = warehouse.query(
            f"""SELECT
                 (SELECT count(*) FROM sentences s WHERE {window} AND (SELECT count(*) FROM cluster_assignments a
                    WHERE a.algorithm = ? AND a.sentence_id = s.sentence_id) <> 1) AS not_once,
                 (SELECT count(*) FROM cluster_assignments a ANTI JOIN (SELECT * FROM sentences s WHERE {window})
                    USING (sentence_id) WHERE a.algorithm = ?) AS unknown,
                 (SELECT count(*) FROM cluster_assignments WHERE algorithm = ? AND cluster_id < -1) AS bad_label""",
            [*params, name, *params, name, name],
        ).iloc[0]
        counts = {k: int(v) for k, v in row.items()}
        return dg.AssetCheckResult(passed=not any(counts.values()), metadata=counts)

    @dg.asset(
        name=f"{name}_topics",
        deps=[clusters, sentence_map],
        group_name=ON_DEMAND_GROUP if algorithm.on_demand else "topics",
        kinds={"scikitlearn", "duckdb"},
        description=f"Topic per {name} cluster in `topic_summaries` (by its stable `topic_id`): size, share, "
                    "class-based TF-IDF keywords, sentences closest to the cluster centre, a short label, replaced "
                    "by a person's label from `topic_curation` while the topic lives. Noise (-1) is summarized "
                    "apart. After a run that only assigned new sentences, keywords stay those of the last fit and "
                    "sizes are brought up to date. `topic_trends` counts each topic's sentences per period."
                    + on_demand_note(algorithm),
    )
    def topics(context: dg.AssetExecutionContext, config: TopicConfig, warehouse: DuckDBWarehouse,
               embedder: SentenceEmbedder) -> dg.MaterializeResult:
        failed = warehouse.failed_fit(name)
        if failed:  # the clustering could not run: nothing to summarize, and nothing stopped
            context.log.warning(f"{name}_topics skipped: {name}_clusters could not run ({failed}).")
            return dg.MaterializeResult(metadata={"status": "skipped", "reason": f"{name}_clusters failed: {failed}"})
        try:
            warehouse.check_curation()
        except LookupError as err:
            raise dg.Failure(description=str(err), allow_retries=False) from None
        started = time.perf_counter()
        mode = (warehouse.last_run(name) or {}).get("details", {}).get("mode", "fitted")
        summarized = mode == "fitted" or not warehouse.summaries_cover_topics(name)
        figures = {}
        if summarized:
            figures = summarize(name, config, warehouse, embedder)
        else:
            warehouse.refresh_topic_sizes(name, NOISE_LABEL)
        orphans = warehouse.apply_curation(name)
        trends = warehouse.replace_trends(name, config.trend_period)
        summary = warehouse.query("SELECT * FROM topic_summaries WHERE algorithm = ? ORDER BY size DESC, topic_id",
                                  [name])
        names = {int(r.topic_id): r.label for r in summary.itertuples() if r.topic_id >= 0}
        figures["top_topics_chart"] = top_topics_png(summary, f"Largest {name} topics")
        over_time = trends_png(trends, names, f"{name}: largest topics per {config.trend_period}")
        if over_time:
            figures["topics_over_time"] = over_time
        rising = rising_topics(trends).assign(label=lambda t: t["topic_id"].map(names))
        return dg.MaterializeResult(metadata={
            "status": "summarized" if summarized else "sizes updated, keywords of the last fit kept",
            "dagster/row_count": len(summary),
            "topics": int((summary["topic_id"] >= 0).sum()),
            "curated_labels": int((summary["label"] != summary["keyword_label"]).sum()),
            "curation_not_applied": dg.MetadataValue.md(
                orphans.to_markdown(index=False) if len(orphans) else "none: every curated topic is active"),
            "seconds": round(time.perf_counter() - started, 3),
            "top_topics": dg.MetadataValue.md(topics_markdown(summary)),
            "rising_topics": dg.MetadataValue.md(
                rising[["topic_id", "label", "previous", "latest", "change"]].round(2).to_markdown(index=False)
                if len(rising) else f"one {config.trend_period} of sentences so far"),
            **{key: dg.MetadataValue.md(markdown_image(png, key.replace("_", " "))) for key, png in figures.items()},
        })

    return [clusters, topics, every_sentence_assigned_once]


CLUSTERING_ASSETS = {name: build_clustering_assets(algorithm) for name, algorithm in ALGORITHMS.items()}
cluster_assets = [group[0] for group in CLUSTERING_ASSETS.values()]
topic_assets = [group[1] for group in CLUSTERING_ASSETS.values()]
clustering_checks = [group[2] for group in CLUSTERING_ASSETS.values()]
