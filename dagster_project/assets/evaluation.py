import json
import time

import dagster as dg
import numpy as np
import pandas as pd

from ..core.clustering import ALGORITHMS
from ..core.metrics import clustering_metrics as compute_metrics
from ..core.projection import project_2d
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .clusterings import cluster_assets
from .embeddings import sentence_embeddings

METRIC_COLUMNS = ["n_clusters", "noise_fraction", "silhouette", "davies_bouldin", "calinski_harabasz", "nmi", "ari",
                  "v_measure", "seconds"]


class MetricsConfig(dg.Config):
    silhouette_sample: int = 10_000
    """Silhouette is computed on a sample of this many sentences above that size."""


@dg.asset(deps=cluster_assets, group_name="evaluation", kinds={"scikitlearn", "duckdb"})
def clustering_metrics(context: dg.AssetExecutionContext, config: MetricsConfig, warehouse: DuckDBWarehouse,
                       embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """Silhouette, Davies-Bouldin, Calinski-Harabasz of every clustering, and NMI / ARI / V-measure against the
    input's labels when it has them. Appends one row per algorithm to `clustering_metrics` (history kept)."""
    model_key = embedder.model_key
    frame, embeddings = warehouse.load_embeddings(model_key)
    runs = warehouse.query("SELECT algorithm, params, seconds FROM clustering_runs").set_index("algorithm")
    truth = frame["label"].to_numpy(dtype=object) if frame["label"].notna().any() else None
    now = pd.Timestamp.now()
    rows = []
    for name in ALGORITHMS:
        assigned = warehouse.assignments(name)
        if name not in runs.index or not np.array_equal(assigned["sentence_id"], frame["sentence_id"]):
            context.log.warning(f"{name}: no assignments for the current sentences; skipped")
            continue
        values = compute_metrics(embeddings, assigned["cluster_id"].to_numpy(), truth, config.silhouette_sample)
        rows.append({"algorithm": name, "model_key": model_key, "params": json.loads(runs.at[name, "params"]),
                     **values, "seconds": float(runs.at[name, "seconds"]), "materialized_at": now})
    table = pd.DataFrame(rows)
    if not table.empty:
        warehouse.append_rows("clustering_metrics", table)
    shown = table[["algorithm", *METRIC_COLUMNS]].round(3) if not table.empty else table
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(table),
        "labelled": truth is not None,
        "comparison": dg.MetadataValue.md(shown.to_markdown(index=False) if not table.empty else "no clustering yet"),
    })


class MapConfig(dg.Config):
    method: str = "auto"
    """auto (UMAP when umap-learn is installed, else PCA), umap or pca."""
    fit_sample: int = 20_000
    """Above this many sentences the projection is fitted on a sample and applied to all."""


@dg.asset(deps=[sentence_embeddings], group_name="evaluation", kinds={"scikitlearn", "duckdb"})
def sentence_map(config: MapConfig, warehouse: DuckDBWarehouse, embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """2-D coordinates of every sentence in `sentence_map`, for plots and maps."""
    frame, embeddings = warehouse.load_embeddings(embedder.model_key)
    started = time.perf_counter()
    points, method = project_2d(embeddings, config.method, config.fit_sample)
    warehouse.replace_table("sentence_map", pd.DataFrame(
        {"sentence_id": frame["sentence_id"], "x": points[:, 0], "y": points[:, 1], "method": method}))
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(frame), "method": method, "seconds": round(time.perf_counter() - started, 3)})
