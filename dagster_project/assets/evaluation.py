import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from ..core.clock import utc_now
from ..core.clustering import ALGORITHMS, sample_rows
from ..core.metrics import clustering_metrics as compute_metrics
from ..core.plots import hierarchy_png, topic_names, trends_png
from ..core.recommend import recommend
from ..core.report import HOVER_POINTS, MAP_POINTS, render_report, stratified_sample
from ..core.topics import coherence_npmi, topic_diversity
from ..core.trends import rising_topics
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .clusterings import cluster_assets
from .topics import topic_assets

METRIC_COLUMNS = ["n_clusters", "noise_fraction", "silhouette", "davies_bouldin", "calinski_harabasz",
                  "coherence_npmi", "topic_diversity", "nmi", "ari", "v_measure", "seconds"]
COHERENCE_SAMPLE = 200_000  # sentences the keywords' co-occurrence is counted in (seeded sample beyond)
GEOMETRY_SAMPLE = 50_000  # sentences silhouette, Davies-Bouldin and Calinski-Harabasz are measured on (exact below)


def keyword_metrics(warehouse: DuckDBWarehouse, name: str, texts: list[str]) -> dict[str, float | None]:
    """coherence_npmi (top 10 keywords) and topic_diversity (all stored keywords, up to 25) of an algorithm's
    topics in `topic_summaries`, noise left out."""
    keywords = warehouse.query("SELECT keywords FROM topic_summaries WHERE algorithm = ? AND cluster_id >= 0",
                               [name])["keywords"].map(list).tolist()
    return {"coherence_npmi": coherence_npmi(texts, keywords), "topic_diversity": topic_diversity(keywords)}


@dg.asset(deps=[*cluster_assets, *topic_assets], group_name="evaluation", kinds={"scikitlearn", "duckdb"})
def clustering_metrics(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse,
                       embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """Silhouette, Davies-Bouldin, Calinski-Harabasz of every clustering; the coherence (NPMI) and diversity of
    its topics' keywords, which need no labels; and NMI / ARI / V-measure against the input's labels when it has
    them. Appends one row per algorithm to `clustering_metrics` (history kept). Beyond 50,000 sentences the
    geometric metrics are of a seeded sample (`silhouette_sample_size`), the coherence of 200,000 sentences."""
    model_key = embedder.model_key
    frame = warehouse.window_sentences("label")
    ids = frame["sentence_id"].to_numpy()
    measured = sample_rows(len(ids), GEOMETRY_SAMPLE, 0)
    _, embeddings = warehouse.sampled_embeddings(model_key, ids, measured)
    texts = warehouse.window_sentences("text", ids[sample_rows(len(ids), COHERENCE_SAMPLE, 0)])["text"].tolist()
    runs = warehouse.query("SELECT algorithm, params, seconds FROM clustering_runs").set_index("algorithm")
    truth = frame["label"].to_numpy(dtype=object) if frame["label"].notna().any() else None
    now = utc_now()
    rows = []
    for name in ALGORITHMS:
        assigned = warehouse.assignments(name)
        if name not in runs.index or not np.array_equal(assigned["sentence_id"], frame["sentence_id"]):
            context.log.warning(f"{name}: no assignments for the current sentences; skipped")
            continue
        values = compute_metrics(embeddings, assigned["cluster_id"].to_numpy(), truth, embedder.compute_device,
                                 None if len(measured) == len(ids) else measured)
        values.update(keyword_metrics(warehouse, name, texts))
        rows.append({"algorithm": name, "model_key": model_key, "params": json.loads(runs.at[name, "params"]),
                     **values, "seconds": float(runs.at[name, "seconds"]), "materialized_at": now})
    table = pd.DataFrame(rows)
    if not table.empty:
        warehouse.append_rows("clustering_metrics", table)
    shown = table[["algorithm", *METRIC_COLUMNS]].round(3) if not table.empty else table
    failed = warehouse.failed_fits()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(table),
        "labelled": truth is not None,
        "comparison": dg.MetadataValue.md(shown.to_markdown(index=False) if not table.empty else "no clustering yet"),
        "failed": dg.MetadataValue.md("\n".join(f"- {k}: {v}" for k, v in failed.items()) or "none"),
    })


def current_clusterings(warehouse: DuckDBWarehouse) -> dict[str, np.ndarray]:
    """The cluster ids of every clustering that ran on exactly the current sentences (an on-demand clustering
    of an older corpus, or one that failed, is left out), in sentence_id order."""
    window, params = warehouse.window_scope()
    ids = warehouse.query(f"SELECT s.sentence_id FROM sentences s WHERE {window} ORDER BY s.sentence_id",
                          params)["sentence_id"].to_numpy()
    failed = warehouse.failed_fits()
    partitions = {}
    for name in ALGORITHMS:
        assigned = warehouse.assignments(name)
        if name not in failed and len(ids) and np.array_equal(assigned["sentence_id"].to_numpy(), ids):
            partitions[name] = assigned["cluster_id"].to_numpy()
    return partitions


@dg.asset(deps=[clustering_metrics], group_name="evaluation", kinds={"duckdb"})
def recommended(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """The clustering whose topics the product leads with, in `recommended` (algorithm, reason, chosen_at; one
    row): chosen without labels, among the clusterings of the current sentences that leave at most 20% in no
    topic, as the one that agrees best with the other kinds of clustering (mean adjusted Rand index; k-means and
    mini-batch k-means are one kind); of those within 5% of the best, the one recommended before, else the one
    with the fewest clusters. `make show`, the report and the README's SQL put it first."""
    before = warehouse.query("SELECT algorithm FROM recommended")["algorithm"]
    algorithm, reason, evidence = recommend(current_clusterings(warehouse),
                                            previous=before.iloc[0] if len(before) else None)
    rows = pd.DataFrame([{"algorithm": algorithm, "reason": reason, "chosen_at": utc_now()}] if algorithm
                        else [], columns=["algorithm", "reason", "chosen_at"])
    warehouse.replace_table("recommended", rows)
    context.log.info(f"recommended: {algorithm}: {reason}")
    return dg.MaterializeResult(metadata={
        "algorithm": algorithm or "none", "reason": reason,
        "evidence": dg.MetadataValue.md(evidence.round(3).to_markdown(index=False)),
    })


class ReportConfig(dg.Config):
    file_name: str | None = None
    """Written beside the DuckDB file (a plain *.html file name, no folders); empty: the warehouse's own name,
    `<DUCKDB_PATH without .duckdb>.report.html`, so that two warehouses in one folder keep their own reports."""


def report_path(database: str, file_name: str | None = None) -> Path:
    """Where the report of the warehouse `database` is written (see ReportConfig)."""
    path = Path(database).expanduser().resolve()
    return path.parent / (file_name or f"{path.stem}.report.html")


@dg.asset(deps=[*topic_assets, clustering_metrics, recommended], group_name="evaluation", kinds={"html"})
def topic_report(config: ReportConfig, warehouse: DuckDBWarehouse) -> dg.MaterializeResult:
    """One self-contained HTML file (works offline): per algorithm a map of the sentences (a sample of at most
    20,000 with every topic in it, the largest topics labelled, a legend; sentence and topic on hover), the topic
    table with keywords and representative sentences, the topic hierarchy; and the latest metrics of every
    algorithm side by side. Its size does not grow with the corpus."""
    name = config.file_name
    if name is not None and (Path(name).name != name or not name.endswith(".html")):
        raise ValueError(f"file_name '{name}' must be a plain *.html file name, without folders.")
    path = report_path(warehouse.database, name)
    metrics = warehouse.query(
        f"""SELECT algorithm, {", ".join(METRIC_COLUMNS)} FROM clustering_metrics
            QUALIFY row_number() OVER (PARTITION BY algorithm ORDER BY materialized_at DESC) = 1
            ORDER BY nmi DESC NULLS LAST, silhouette DESC NULLS LAST""")
    failed = warehouse.failed_fits()
    current = current_clusterings(warehouse)
    metrics = metrics[metrics["algorithm"].isin(current)]  # the others' latest metrics are of an older corpus
    lead = warehouse.query("SELECT algorithm, reason FROM recommended")
    first = lead["algorithm"].tolist()
    algorithms = {}
    for name in sorted(current, key=lambda a: a not in first):  # the recommended one first
        summary = warehouse.query(
            "SELECT * FROM topic_summaries WHERE algorithm = ? ORDER BY size DESC, topic_id", [name])
        if summary.empty:
            continue
        points = stratified_sample(warehouse.query(
            """SELECT a.sentence_id, m.x, m.y, a.topic_id FROM cluster_assignments a
               JOIN sentence_map m USING (sentence_id) WHERE a.algorithm = ? ORDER BY a.sentence_id""", [name]),
            MAP_POINTS)
        hover = points["sentence_id"].sample(min(len(points), HOVER_POINTS), random_state=0).tolist()
        texts = warehouse.query("SELECT sentence_id, text FROM sentences WHERE list_contains(?, sentence_id)",
                                [hover])
        points = points.merge(texts, on="sentence_id", how="left")
        hierarchy = warehouse.query("SELECT * FROM topic_hierarchy WHERE algorithm = ? ORDER BY merge_id", [name])
        names = topic_names(summary)
        trends = warehouse.query("SELECT topic_id, period, sentences FROM topic_trends WHERE algorithm = ?", [name])
        by_topic = {int(r.topic_id): r.label for r in summary.itertuples()}
        rising = rising_topics(trends).assign(label=lambda t: t["topic_id"].map(by_topic))
        algorithms[name] = {"summary": summary, "points": points,
                            "hierarchy_png": hierarchy_png(hierarchy, names, f"{name}: topic hierarchy"),
                            "trends_png": trends_png(trends, by_topic, f"{name}: largest topics over time"),
                            "rising": rising[["topic_id", "label", "previous", "latest", "change"]]}
    path.write_text(render_report("Sentence Topics report", metrics, algorithms, failed,
                                  tuple(lead.iloc[0]) if len(lead) else None), encoding="utf-8")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "algorithms": len(algorithms),
        "failed": ", ".join(failed) or "none",
        "size_kb": round(path.stat().st_size / 1024, 1),
    })
