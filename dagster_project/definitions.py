"""The one Definitions object of Sentence Topics, built from the settings of the environment it is loaded in."""

import dagster as dg

from . import settings
from .assets.adaptation import adapt_and_compare, adaptation_assets
from .assets.clusterings import cluster_assets, clustering_checks
from .assets.embeddings import build_embedding_assets
from .assets.evaluation import clustering_metrics, recommended, topic_report
from .assets.evaluation_map import sentence_map
from .assets.neighbors import sentence_neighbors
from .assets.sentences import build_sentences, sentence_partitions
from .assets.topics import topic_assets
from .automation import build_automation
from .resources import DuckDBWarehouse, SentenceEmbedder

# Everything after the embeddings: the same whatever the settings.
downstream_assets = [sentence_neighbors, sentence_map, *cluster_assets, *topic_assets, clustering_metrics,
                     recommended, topic_report]


def ray_resources() -> dict:
    """EMBEDDING_ENGINE=ray: the cluster the embedding actors run on."""
    from .resources.ray_embedding import RayCluster

    return {"ray_cluster": RayCluster(
        address=settings.RAY_ADDRESS.resource_value(),
        workers=settings.RAY_EMBEDDING_WORKERS.resource_int(),
        gpus_per_worker=settings.RAY_GPUS_PER_WORKER.resource_float(),
        staging_dir=settings.EMBEDDING_STAGING_DIR.resource_value(),
    )}


def build_resources(engine: str = "local") -> dict:
    return {
        **(ray_resources() if engine == "ray" else {}),
        "warehouse": DuckDBWarehouse(database=settings.DUCKDB_PATH.resource_value(),
                                     cluster_window=settings.CLUSTER_WINDOW.resource_value()),
        "embedder": SentenceEmbedder(
            model=settings.EMBEDDING_MODEL.resource_value(),
            device=settings.EMBEDDING_DEVICE.resource_value(),
            backend=settings.EMBEDDING_BACKEND.resource_value(),
            batch_size=settings.EMBEDDING_BATCH_SIZE.resource_int(),
            export_dir=settings.EMBEDDING_EXPORT_DIR.resource_value(),
            pipeline=settings.EMBEDDING_PIPELINE.resource_value(),
            static_model=settings.STATIC_MODEL.resource_value(),
            static_cache_dir=settings.STATIC_CACHE_DIR.resource_value(),
            static_dims=settings.STATIC_DIMS.resource_int(),
        ),
    }


def build_assets(partitions: dg.DynamicPartitionsDefinition | None = None, engine: str = "local") -> list:
    """Every asset and check of the scheduled pipeline: ingestion and embedding shaped by the settings, then the
    rest."""
    return [build_sentences(partitions), *build_embedding_assets(partitions, engine), *downstream_assets,
            *clustering_checks]


def build_definitions() -> dg.Definitions:
    """The Definitions for the environment as it is now: SENTENCE_PARTITIONS and EMBEDDING_ENGINE shape the asset
    graph; every other setting is read by the resources and assets when they run."""
    partitions = sentence_partitions(settings.SENTENCE_PARTITIONS.value())
    engine = settings.EMBEDDING_ENGINE.value()
    automation = build_automation(partitions)
    return dg.Definitions(
        assets=[*build_assets(partitions, engine), *adaptation_assets],
        resources=build_resources(engine),
        jobs=[*automation["jobs"], adapt_and_compare],
        # Steps run in parallel processes forked from a server that has already imported the project:
        # no per-step interpreter start and import (seconds each on a small machine).
        executor=dg.multiprocess_executor.configured(
            {"start_method": {"forkserver": {"preload_modules": ["dagster_project.definitions"]}}}
        ),
        schedules=automation["schedules"],
        sensors=automation["sensors"],
        metadata=settings.served(),
    )


defs = build_definitions()
