import time

import dagster as dg
import numpy as np
import pandas as pd

from ..core.clustering import sample_rows
from ..core.projection import fit_projection, place_near_neighbours, project_2d
from ..resources import DuckDBWarehouse, SentenceEmbedder


class MapConfig(dg.Config):
    method: str = "auto"
    """auto (UMAP when umap-learn is installed, else PCA), umap or pca."""
    fit_sample: int = 20_000
    """Above this many sentences the projection is fitted on a sample and applied to all."""
    reproject_when_changed: float = 0.25
    """Project every sentence again once the sentences added, removed or placed since the last projection reach
    this share of it; until then new sentences are placed beside their most similar sentences on the map."""


@dg.asset(deps=["sentence_embeddings"], group_name="evaluation", kinds={"scikitlearn", "duckdb"})
def sentence_map(config: MapConfig, warehouse: DuckDBWarehouse, embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """2-D coordinates of every sentence in `sentence_map`, for plots and maps. New sentences are placed at the
    similarity-weighted position of their nearest projected sentences (a sample of at most `fit_sample`), so a
    run that adds a few costs what they cost; the whole corpus is projected again when enough changed, or the
    model or method did."""
    started = time.perf_counter()
    model_key = embedder.model_key
    state = warehouse.map_state()
    projected = state["mapped"] - state["placed"]
    changed = (state["new"] + state["stale"] + state["placed"]) / max(projected, 1)
    same = state["models"] == [model_key] and (config.method == "auto" or state["methods"] == [config.method])
    if projected and same and changed < config.reproject_when_changed:
        new, vectors = warehouse.load_embeddings(
            model_key, "s.sentence_id NOT IN (SELECT sentence_id FROM sentence_map)")
        reference, reference_vectors = warehouse.load_embeddings(
            model_key, "s.sentence_id IN (SELECT sentence_id FROM (SELECT sentence_id FROM sentence_map WHERE NOT "
                       f"coalesce(placed, false)) USING SAMPLE reservoir({int(config.fit_sample)} ROWS) REPEATABLE (0))")
        where = warehouse.query("SELECT sentence_id, x, y FROM sentence_map WHERE NOT coalesce(placed, false)")
        xy = reference[["sentence_id"]].merge(where, on="sentence_id")[["x", "y"]].to_numpy(np.float32)
        points = place_near_neighbours(vectors, reference_vectors, xy)
        warehouse.update_map(pd.DataFrame({
            "sentence_id": new["sentence_id"], "x": points[:, 0], "y": points[:, 1], "method": state["methods"][0],
            "model_key": model_key, "placed": True}))
        return dg.MaterializeResult(metadata={
            "status": "new sentences placed beside their nearest neighbours", "placed": len(new),
            "removed": int(state["stale"]), "dagster/row_count": int(state["mapped"] + len(new)),
            "method": state["methods"][0], "seconds": round(time.perf_counter() - started, 3)})
    ids = warehouse.window_ids()
    if len(ids) <= config.fit_sample:
        points, method = project_2d(warehouse.load_embeddings(model_key)[1], config.method, config.fit_sample)
    else:  # fitted on a sample, applied a chunk at a time
        model, method = fit_projection(
            warehouse.embeddings_of(model_key, ids[sample_rows(len(ids), config.fit_sample, 0)])[1], config.method)
        points = np.zeros((len(ids), 2), dtype=np.float32)
        for chunk_ids, vectors in warehouse.embedding_chunks(model_key):
            points[np.searchsorted(ids, chunk_ids)] = model.transform(vectors)
    warehouse.replace_table("sentence_map", pd.DataFrame(
        {"sentence_id": ids, "x": points[:, 0], "y": points[:, 1], "method": method,
         "model_key": model_key, "placed": False}))
    return dg.MaterializeResult(metadata={
        "status": "projected", "dagster/row_count": len(ids), "method": method,
        "seconds": round(time.perf_counter() - started, 3)})
