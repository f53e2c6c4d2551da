"""One topics asset per registered algorithm: the labels stage (`core/labels.py`) over its latest clustering,
curated labels applied, trends counted, the figures a person reads in the UI."""

import time

import dagster as dg
import numpy as np
import pandas as pd

from ..core.assign import stratified_rows
from ..core.clustering import ALGORITHMS, Algorithm
from ..core.labels import NOISE_LABEL, describe_topics
from ..core.plots import markdown_image, summary_figures, top_topics_png, trends_png
from ..core.report import topics_markdown
from ..core.topics import topic_hierarchy
from ..core.trends import rising_markdown
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .clusterings import CLUSTERINGS, ON_DEMAND_GROUP, on_demand_note
from .config import TopicConfig
from .evaluation_map import sentence_map


def summarize(name: str, config: TopicConfig, warehouse: DuckDBWarehouse,
              embedder: SentenceEmbedder) -> tuple[np.ndarray, pd.DataFrame, np.ndarray | None]:
    """Keywords, representatives and labels of every topic of the latest fit (`topic_summaries`; beyond
    `sample_size` sentences, from a sample holding every topic in proportion) and the topic hierarchy; returns
    what the map and hierarchy figures are drawn from (every sentence's cluster, the hierarchy, the map's points
    when it holds every sentence), after the curated labels are applied."""
    assigned, ids = warehouse.assignments(name), warehouse.window_ids()
    if not np.array_equal(assigned["sentence_id"].to_numpy(), ids):
        raise RuntimeError(f"cluster_assignments for '{name}' do not cover the current sentences. "
                           f"Materialize {name}_clusters again, then {name}_topics.")
    labels = assigned["cluster_id"].to_numpy()
    rows = stratified_rows(labels, config.sample_size)
    frame, embeddings = warehouse.sampled_embeddings(embedder.model_key, ids, rows)
    topic_of = assigned.drop_duplicates("cluster_id").set_index("cluster_id")["topic_id"]
    summary = describe_topics(frame["text"].tolist(), embeddings, labels, rows, topic_of, embed=embedder.encode,
                              **config.model_dump(include={"n_keywords", "n_representatives", "max_ngram",
                                                           "diversity", "label_method"}))
    hierarchy = topic_hierarchy(embeddings, labels[rows], pd.Series(labels).value_counts().to_dict())
    warehouse.replace_algorithm_rows(name, {"topic_summaries": summary, "topic_hierarchy": hierarchy})
    warehouse.add_empty_topics(name)
    points = warehouse.query("SELECT x, y FROM sentence_map ORDER BY sentence_id")[["x", "y"]].to_numpy()
    return labels, hierarchy, points if len(points) == len(labels) else None


def build_topics_asset(algorithm: Algorithm) -> dg.AssetsDefinition:
    name = algorithm.name

    @dg.asset(
        name=f"{name}_topics",
        deps=[CLUSTERINGS[name][0], sentence_map],
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
        drawn = summarize(name, config, warehouse, embedder) if summarized else None
        if not summarized:
            warehouse.refresh_topic_sizes(name, NOISE_LABEL)
        orphans = warehouse.apply_curation(name)
        trends = warehouse.replace_trends(name, config.trend_period)
        summary = warehouse.query("SELECT * FROM topic_summaries WHERE algorithm = ? ORDER BY size DESC, topic_id",
                                  [name])
        figures = summary_figures(name, summary, *drawn) if drawn else {}
        names = {int(r.topic_id): r.label for r in summary.itertuples() if r.topic_id >= 0}
        figures["top_topics_chart"] = top_topics_png(summary, f"Largest {name} topics")
        over_time = trends_png(trends, names, f"{name}: largest topics per {config.trend_period}")
        if over_time:
            figures["topics_over_time"] = over_time
        return dg.MaterializeResult(metadata={
            "status": "summarized" if summarized else "sizes updated, keywords of the last fit kept",
            "dagster/row_count": len(summary),
            "topics": int((summary["topic_id"] >= 0).sum()),
            "curated_labels": int(((summary["label"] != summary["keyword_label"])
                                   & summary["curated_from"].isna()).sum()),
            "labels_from_curated_ancestors": int(summary["curated_from"].notna().sum()),
            "curation_not_applied": dg.MetadataValue.md(
                orphans.to_markdown(index=False) if len(orphans) else "none: every curated topic is active"),
            "seconds": round(time.perf_counter() - started, 3),
            "top_topics": dg.MetadataValue.md(topics_markdown(summary)),
            "rising_topics": dg.MetadataValue.md(rising_markdown(trends, names, config.trend_period)),
            **{key: dg.MetadataValue.md(markdown_image(png, key.replace("_", " "))) for key, png in figures.items()},
        })

    return topics


topic_assets = [build_topics_asset(algorithm) for algorithm in ALGORITHMS.values()]
