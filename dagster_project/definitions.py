"""The one Definitions object of Sentence Topics."""

import os

import dagster as dg

from .assets.adaptation import adapt_and_compare, adaptation_assets
from .assets.clusterings import cluster_assets, clustering_checks
from .assets.topics import topic_assets
from .assets.embeddings import (
    every_sentence_embedded_once,
    sentence_embeddings,
    vectors_are_finite_unit_and_model_sized,
)
from .assets.evaluation import clustering_metrics, recommended, topic_report
from .assets.evaluation_map import sentence_map
from .assets.neighbors import sentence_neighbors
from .assets.sentences import SENTENCE_PARTITIONS, sentences
from .assets.settings import DEFAULT_DUCKDB_PATH, embedding_engine, env_or_default, served
from .automation import (
    cluster_on_demand,
    daily_refresh,
    ingest_sentence_file,
    refresh_everything,
    sentence_file_partitions,
    sentence_files_changed,
    weekly_refit,
)
from .resources import DuckDBWarehouse, SentenceEmbedder


def ray_resources() -> dict:
    """EMBEDDING_ENGINE=ray: the cluster the embedding actors run on."""
    if embedding_engine() != "ray":
        return {}
    from .resources.ray_embedding import RayCluster

    return {"ray_cluster": RayCluster(
        address=env_or_default("RAY_ADDRESS", ""),
        workers=int(os.environ.get("RAY_EMBEDDING_WORKERS", "2")),
        gpus_per_worker=float(os.environ.get("RAY_GPUS_PER_WORKER", "0")),
        staging_dir=env_or_default("EMBEDDING_STAGING_DIR", "data/staging"),
    )}


def build_resources() -> dict:
    return {
        **ray_resources(),
        "warehouse": DuckDBWarehouse(database=env_or_default("DUCKDB_PATH", DEFAULT_DUCKDB_PATH),
                                     cluster_window=env_or_default("CLUSTER_WINDOW", "")),
        "embedder": SentenceEmbedder(
            model=env_or_default("EMBEDDING_MODEL", ""),
            device=env_or_default("EMBEDDING_DEVICE", "auto"),
            backend=env_or_default("EMBEDDING_BACKEND", "torch"),
            batch_size=dg.EnvVar.int("EMBEDDING_BATCH_SIZE") if os.environ.get("EMBEDDING_BATCH_SIZE") else 0,
            export_dir=env_or_default("EMBEDDING_EXPORT_DIR", "data/models"),
            pipeline=env_or_default("EMBEDDING_PIPELINE", "auto"),
        ),
    }


all_assets = [
    sentences, sentence_embeddings, sentence_neighbors, sentence_map, *cluster_assets, *topic_assets,
    clustering_metrics, recommended, topic_report,
]

all_checks = [every_sentence_embedded_once, vectors_are_finite_unit_and_model_sized, *clustering_checks]

defs = dg.Definitions(
    assets=[*all_assets, *adaptation_assets],
    asset_checks=all_checks,
    resources=build_resources(),
    jobs=[refresh_everything, cluster_on_demand, adapt_and_compare,
          *([ingest_sentence_file] if SENTENCE_PARTITIONS else [])],
    # Steps run in parallel processes forked from a server that has already imported the project:
    # no per-step interpreter start and import (seconds each on a small machine).
    executor=dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": ["dagster_project.definitions"]}}}
    ),
    schedules=[daily_refresh, weekly_refit],
    sensors=[sentence_file_partitions if SENTENCE_PARTITIONS else sentence_files_changed],
    metadata=served(),
)
