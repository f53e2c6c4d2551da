"""Embedding on a Ray cluster through dagster-ray: one long-lived actor per worker holds the model, each chunk's
vectors are written by the worker as a Parquet file, and the Dagster step commits the files to DuckDB."""

from __future__ import annotations

import hashlib
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster_ray import LocalRay
from pydantic import Field

from .embedder import SentenceEmbedder

NAMESPACE = "sentence_topics"


class RayCluster(LocalRay):
    """The Ray cluster at `address` (ray://host:10001 or host:6379); empty: RAY_ADDRESS, or a Ray started in
    this process when that is unset too."""

    address: str = Field(default="", description="Ray cluster address; empty: RAY_ADDRESS or a local Ray.")
    workers: int = Field(default=2, description="Embedding actors, each holding the model once.")
    gpus_per_worker: float = Field(default=0.0, description="GPUs per actor (1 on a GPU cluster).")
    staging_dir: str = Field(default="data/staging", description="Where workers write Parquet (shared storage).")
    start_timeout: float = Field(default=600.0, description="Seconds to wait for the actors to load the model.")

    @property
    def ray_address(self) -> str | None:  # type: ignore[override]
        return self.address or None


class EmbeddingWorker:
    """A Ray actor: loads the embedder once, then encodes chunks into Parquet files (text_hash, embedding)."""

    def __init__(self, settings: dict) -> None:
        self.embedder = SentenceEmbedder(**settings)
        self.embedder.prepare()

    def ready(self) -> bool:
        return True

    def embed_to_parquet(self, hashes: list[str], texts: list[str], path: str) -> dict:
        """Writes the chunk's vectors to `path`; returns this worker's pid, texts, encode seconds and peak RSS."""
        started = time.perf_counter()
        vectors = np.ascontiguousarray(self.embedder.encode(texts), dtype=np.float32)
        seconds = time.perf_counter() - started
        dim = vectors.shape[1]
        table = pa.table({
            "text_hash": pa.array(hashes, pa.string()),
            "embedding": pa.ListArray.from_arrays(pa.array(np.arange(0, (len(hashes) + 1) * dim, dim, np.int32)),
                                                  pa.array(vectors.ravel())),
        })
        partial = f"{path}.{os.getpid()}.partial"
        pq.write_table(table, partial)
        os.replace(partial, path)  # a file is whole or absent
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"pid": os.getpid(), "texts": len(hashes), "encode_seconds": seconds, "peak_rss_mb": peak_mb}


def embedder_settings(embedder: SentenceEmbedder) -> dict:
    return {name: getattr(embedder, name) for name in SentenceEmbedder.model_fields}


def embedding_actors(embedder: SentenceEmbedder, cluster: RayCluster) -> list:
    """The cluster's embedding actors for this model, created on first use and kept (detached) for later runs."""
    import ray

    actor = ray.remote(EmbeddingWorker)
    # No CPU held for the actor's lifetime (Ray's default for actors): detached actors that kept CPUs would
    # starve every later task on the cluster, dagster-ray's own connection task among them. A GPU is held.
    pool = f"embedder-{embedder.model_key}-gpu{cluster.gpus_per_worker:g}"  # one pool per model and shape
    actors = [
        actor.options(name=f"{pool}-{i}", namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                      num_cpus=0, num_gpus=cluster.gpus_per_worker).remote(embedder_settings(embedder))
        for i in range(cluster.workers)
    ]
    try:
        ray.get([a.ready.remote() for a in actors], timeout=cluster.start_timeout)
    except ray.exceptions.GetTimeoutError:
        for waiting in actors:  # not left pending on the cluster
            ray.kill(waiting)
        raise RuntimeError(
            f"{cluster.workers} embedding actor(s) with {cluster.gpus_per_worker} GPU each did not start within "
            f"{cluster.start_timeout:.0f} s on the Ray cluster (resources: {ray.cluster_resources()}, free: "
            f"{ray.available_resources()}). Lower RAY_EMBEDDING_WORKERS or RAY_GPUS_PER_WORKER, or add nodes."
        ) from None
    return actors


def staged_files(cluster: RayCluster, model_key: str, scope: str) -> tuple[Path, str]:
    """The folder for `model_key` and the file-name prefix of one scope (a partition, or the whole corpus)."""
    folder = Path(cluster.staging_dir).expanduser().resolve() / model_key
    folder.mkdir(parents=True, exist_ok=True)
    return folder, hashlib.sha256(scope.encode()).hexdigest()[:12]


def embed_on_ray(pending: pd.DataFrame, embedder: SentenceEmbedder, cluster: RayCluster, scope: str,
                 chunk_size: int) -> tuple[list[Path], pd.DataFrame]:
    """Encode `pending` (text_hash, text) on the cluster's actors, chunk by chunk in parallel; returns every
    staged Parquet file of `scope` (this run's and any left by a run that stopped before committing) and, per
    worker process, its texts, encode seconds and peak RSS (MB)."""
    import ray

    folder, prefix = staged_files(cluster, embedder.model_key, scope)
    actors = embedding_actors(embedder, cluster) if len(pending) else []  # leftover files only: no actors
    calls = []
    for number, start in enumerate(range(0, len(pending), chunk_size)):
        chunk = pending.iloc[start : start + chunk_size]
        path = folder / f"{prefix}-{number:06d}.parquet"
        calls.append(actors[number % len(actors)].embed_to_parquet.remote(
            chunk["text_hash"].tolist(), chunk["text"].tolist(), str(path)))
    chunks = pd.DataFrame(ray.get(calls), columns=["pid", "texts", "encode_seconds", "peak_rss_mb"])
    workers = chunks.groupby("pid").agg(texts=("texts", "sum"), encode_seconds=("encode_seconds", "sum"),
                                        peak_rss_mb=("peak_rss_mb", "max")).reset_index()
    return sorted(folder.glob(f"{prefix}-*.parquet")), workers
