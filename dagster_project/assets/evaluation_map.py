import time

import dagster as dg
import pandas as pd

from ..core.projection import project_2d
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .embeddings import sentence_embeddings


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
