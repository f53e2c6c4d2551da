"""One clustering asset and one topic asset per registered algorithm (an asset factory over the registry)."""

import dataclasses
import json
import time
import typing

import dagster as dg
import numpy as np
import pandas as pd
import pydantic

from ..core.clustering import ALGORITHMS, Algorithm, ClusteringResult
from ..core.plots import hierarchy_png, k_selection_png, markdown_image, top_topics_png, topic_map_png
from ..core.topics import summarize_topics, topic_hierarchy
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .embeddings import sentence_embeddings
from .evaluation_map import sentence_map


def config_class(params: type, name: str) -> type[dg.Config]:
    """A typed dagster Config (editable in the launchpad) mirroring a parameter dataclass."""
    hints = typing.get_type_hints(params)
    fields = {
        f.name: (hints[f.name], pydantic.Field(default=f.default, description=f.metadata.get("description")))
        for f in dataclasses.fields(params)
    }
    return pydantic.create_model("".join(part.title() for part in name.split("_")) + "Config", __base__=dg.Config,
                                 **fields)


class TopicConfig(dg.Config):
    n_keywords: int = pydantic.Field(default=8, description="Keywords per topic (class-based TF-IDF).")
    n_representatives: int = pydantic.Field(default=3, description="Representative sentences per topic.")
    max_ngram: int = pydantic.Field(default=2, description="Longest keyword n-gram (1: single words).")
    diversity: float = pydantic.Field(
        default=0.2, description="MMR diversity of keywords, 0 (plain c-TF-IDF order) to 1 (most diverse).")


def cluster_sizes_markdown(labels: np.ndarray, limit: int = 15) -> str:
    ids, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:limit]
    rows = [f"| {'noise' if ids[i] < 0 else int(ids[i])} | {int(counts[i])} |" for i in order]
    return "\n".join(["| cluster | sentences |", "|---|---|", *rows])


def topics_markdown(topics: pd.DataFrame, limit: int = 10) -> str:
    head = topics.head(limit)
    rows = [
        f"| {r.cluster_id} | {r.size} | {r.label} | {', '.join(r.keywords)} | {r.representative_sentences[0] if r.representative_sentences else ''} |"
        for r in head.itertuples()
    ]
    return "\n".join(["| cluster | size | label | keywords | example |", "|---|---|---|---|---|", *rows])


def clustering_tables(frame: pd.DataFrame, result: ClusteringResult, model_key: str, params: typing.Any,
                      seconds: float) -> dict[str, pd.DataFrame]:
    """The `cluster_assignments` and `clustering_runs` rows of one clustering of the sentences in `frame`."""
    return {
        "cluster_assignments": pd.DataFrame({"sentence_id": frame["sentence_id"], "cluster_id": result.labels}),
        "clustering_runs": pd.DataFrame([{
            "model_key": model_key, "params": dataclasses.asdict(params), "details": result.details,
            "n_sentences": len(frame), "n_clusters": result.n_clusters, "seconds": seconds,
            "materialized_at": pd.Timestamp.now(),
        }]),
    }


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


def build_clustering_assets(algorithm: Algorithm) -> list:
    name = algorithm.name
    ClusterConfig = config_class(algorithm.params, algorithm.name)

    fit_check = dg.AssetCheckSpec("fit_succeeded", asset=f"{name}_clusters",
                                  description="The algorithm ran on the current sentences; if not, why.")

    @dg.asset(
        name=f"{name}_clusters",
        deps=[sentence_embeddings],
        group_name="clusterings",
        kinds={"scikitlearn", "duckdb"},
        check_specs=[fit_check],
        description=f"{algorithm.description} One row per sentence in `cluster_assignments` (algorithm = '{name}'). "
                    "If the algorithm cannot run, its rows are cleared, its check `fit_succeeded` fails with the "
                    "reason and the rest of the refresh goes on.",
    )
    def clusters(context: dg.AssetExecutionContext, config: ClusterConfig, warehouse: DuckDBWarehouse,
                 embedder: SentenceEmbedder) -> dg.MaterializeResult:
        params = algorithm.params(**config.model_dump())
        model_key = embedder.model_key
        frame, embeddings = warehouse.load_embeddings(model_key)
        started = time.perf_counter()
        try:
            result = algorithm.fit(embeddings, params, embedder.compute_device)
        except Exception as err:  # one algorithm that cannot run must not stop the others' refresh
            reason = f"{type(err).__name__}: {err}"
            context.log.error(f"{name} could not run; its rows are cleared, the other algorithms go on. {reason}")
            warehouse.replace_algorithm_rows(name, failed_tables(model_key, params, reason, len(frame)))
            return dg.MaterializeResult(
                metadata={"status": "failed", "reason": reason, "params": dg.MetadataValue.json(
                    dataclasses.asdict(params))},
                check_results=[dg.AssetCheckResult(check_name="fit_succeeded", passed=False,
                                                   severity=dg.AssetCheckSeverity.ERROR, metadata={"reason": reason})])
        seconds = time.perf_counter() - started
        details = result.details
        warehouse.replace_algorithm_rows(name, clustering_tables(frame, result, model_key, params, seconds))
        noise = int((result.labels < 0).sum())
        figures = {}
        if "silhouette_by_k" in details:
            png = k_selection_png(details["silhouette_by_k"], details["inertia_by_k"], details["n_clusters"])
            figures["k_selection"] = dg.MetadataValue.md(markdown_image(png, "silhouette and inertia per k"))
        if "silhouette_by_clusters" in details:
            png = k_selection_png(details["silhouette_by_clusters"], None, result.n_clusters,
                                  "cosine silhouette of the tree's cut")
            figures["k_selection"] = dg.MetadataValue.md(markdown_image(png, "silhouette per cut of the tree"))
        context.log.info(f"{name}: {result.n_clusters} clusters, {noise} noise, {seconds:.2f}s")
        metadata = {
            "status": "fitted" + (" on a sample, the rest assigned" if "fitted_on_sample" in details else ""),
            "dagster/row_count": len(frame),
            "n_clusters": result.n_clusters,
            "noise_sentences": noise,
            "seconds": round(seconds, 3),
            "params": dg.MetadataValue.json(dataclasses.asdict(params)),
            "details": dg.MetadataValue.json(json.loads(json.dumps(details, default=str))),
            "cluster_sizes": dg.MetadataValue.md(cluster_sizes_markdown(result.labels)),
            "model_key": model_key,
            "device": embedder.compute_device,
            **figures,
        }
        return dg.MaterializeResult(metadata=metadata,
                                    check_results=[dg.AssetCheckResult(check_name="fit_succeeded", passed=True)])

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
        group_name="topics",
        kinds={"scikitlearn", "duckdb"},
        description=f"Topic per {name} cluster in `topic_summaries`: size, share, class-based TF-IDF keywords, "
                    "sentences closest to the cluster centre, a short label. Noise (-1) is summarized apart.",
    )
    def topics(context: dg.AssetExecutionContext, config: TopicConfig, warehouse: DuckDBWarehouse,
               embedder: SentenceEmbedder) -> dg.MaterializeResult:
        failed = warehouse.failed_fit(name)
        if failed:  # the clustering could not run: nothing to summarize, and nothing stopped
            context.log.warning(f"{name}_topics skipped: {name}_clusters could not run ({failed}).")
            return dg.MaterializeResult(metadata={"status": "skipped", "reason": f"{name}_clusters failed: {failed}"})
        frame, embeddings = warehouse.load_embeddings(embedder.model_key)
        assigned = warehouse.assignments(name)
        if not np.array_equal(assigned["sentence_id"].to_numpy(), frame["sentence_id"].to_numpy()):
            raise RuntimeError(
                f"cluster_assignments for '{name}' do not cover the current sentences. "
                f"Materialize {name}_clusters again, then {name}_topics."
            )
        started = time.perf_counter()
        summary = summarize_topics(
            frame["text"].tolist(), embeddings, assigned["cluster_id"].to_numpy(),
            n_keywords=config.n_keywords, n_representatives=config.n_representatives,
            ngram_range=(1, max(1, config.max_ngram)), embed=embedder.encode if config.diversity > 0 else None,
            diversity=config.diversity,
        )
        labels = assigned["cluster_id"].to_numpy()
        hierarchy = topic_hierarchy(embeddings, labels)
        warehouse.replace_algorithm_rows(name, {"topic_summaries": summary, "topic_hierarchy": hierarchy})
        seconds = time.perf_counter() - started
        names = {int(r.cluster_id): r.label for r in summary.itertuples() if r.cluster_id >= 0}
        points = warehouse.query("SELECT x, y FROM sentence_map ORDER BY sentence_id")
        figures = {"top_topics_chart": top_topics_png(summary, f"Largest {name} topics")}
        if len(points) == len(labels):
            figures["topic_map"] = topic_map_png(points[["x", "y"]].to_numpy(), labels, names,
                                                 f"{name}: sentences by topic")
        tree = hierarchy_png(hierarchy, names, f"{name}: topic hierarchy")
        if tree:
            figures["topic_hierarchy"] = tree
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(summary),
            "topics": int((summary["cluster_id"] >= 0).sum()),
            "seconds": round(seconds, 3),
            "top_topics": dg.MetadataValue.md(topics_markdown(summary)),
            **{key: dg.MetadataValue.md(markdown_image(png, key.replace("_", " "))) for key, png in figures.items()},
        })

    return [clusters, topics, every_sentence_assigned_once]


CLUSTERING_ASSETS = {name: build_clustering_assets(algorithm) for name, algorithm in ALGORITHMS.items()}
cluster_assets = [group[0] for group in CLUSTERING_ASSETS.values()]
topic_assets = [group[1] for group in CLUSTERING_ASSETS.values()]
clustering_checks = [group[2] for group in CLUSTERING_ASSETS.values()]
