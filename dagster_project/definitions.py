"""The one Definitions object of Sentence Topics."""

import dagster as dg

from .assets.clusterings import cluster_assets, clustering_checks, topic_assets
from .assets.embeddings import every_sentence_embedded_once, sentence_embeddings, vectors_are_finite_unit_and_model_sized
from .assets.evaluation import clustering_metrics, sentence_map
from .assets.sentences import sentences
from .assets.settings import DEFAULT_DUCKDB_PATH, env_or_default
from .automation import daily_refresh, refresh_everything, sentence_files_changed
from .resources import DuckDBWarehouse, SentenceEmbedder


def build_resources() -> dict:
    return {
        "warehouse": DuckDBWarehouse(database=env_or_default("DUCKDB_PATH", DEFAULT_DUCKDB_PATH)),
        "embedder": SentenceEmbedder(
            model=env_or_default("EMBEDDING_MODEL", ""),
            device=env_or_default("EMBEDDING_DEVICE", "auto"),
        ),
    }


all_assets = [sentences, sentence_embeddings, *cluster_assets, *topic_assets, clustering_metrics, sentence_map]

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=[every_sentence_embedded_once, vectors_are_finite_unit_and_model_sized, *clustering_checks],
    resources=build_resources(),
    jobs=[refresh_everything],
    schedules=[daily_refresh],
    sensors=[sentence_files_changed],
)
