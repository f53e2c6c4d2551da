import time

import dagster as dg

from ..resources import DuckDBWarehouse, SentenceEmbedder
from ..resources.warehouse import source_scope


class EmbeddingConfig(dg.Config):
    chunk_size: int = 0
    """Texts encoded and committed per transaction; a crash loses at most one chunk of work. 0: 4,096, or 65,536
    for EMBEDDING_BACKEND=static (whose encoding is so fast that a commit per 4,096 would take most of the time)."""


DESCRIPTION = ("L2-normalized float32 vectors of every distinct sentence text in `embedding_cache`, keyed by "
               "(model_key, text_hash). Only texts not yet cached for this model are encoded, chunk by chunk, each "
               "chunk committed on its own. With SENTENCE_PARTITIONS=files or folders: the texts of one file or "
               "folder. With EMBEDDING_ENGINE=ray: on the Ray cluster's actors, committed when all are done.")


def build_embedding_assets(partitions: dg.DynamicPartitionsDefinition | None, engine: str) -> list:
    """The `sentence_embeddings` asset (embedded here, or on Ray actors with engine "ray") and its checks."""
    asset = dg.asset(name="sentence_embeddings", deps=["sentences"], group_name="embeddings",
                     kinds={"pytorch", "duckdb"}, partitions_def=partitions, description=DESCRIPTION)
    if engine == "ray":
        from ..resources.ray_embedding import RayCluster, embed_on_ray

        @asset
        def sentence_embeddings(context: dg.AssetExecutionContext, config: EmbeddingConfig,
                                warehouse: DuckDBWarehouse, embedder: SentenceEmbedder,
                                ray_cluster: RayCluster) -> dg.MaterializeResult:
            source = context.partition_key if context.has_partition_key else None
            pending, cached = warehouse.pending_texts(embedder.model_key, source)
            started = time.perf_counter()
            chunk = config.chunk_size or embedder.chunk_rows
            files, workers = embed_on_ray(pending, embedder, ray_cluster, source or "", chunk)
            encoded = time.perf_counter()
            warehouse.commit_staged_embeddings(embedder.model_key, files)
            seconds = time.perf_counter() - started
            return dg.MaterializeResult(metadata={
                **counts_metadata(embedder, cached, len(pending), seconds), "engine": "ray",
                "ray_workers": ray_cluster.workers, "gpus_per_worker": ray_cluster.gpus_per_worker,
                "staged_files": len(files), "ray_seconds": round(encoded - started, 3),
                "commit_seconds": round(seconds - (encoded - started), 3),
                "worker_encode_seconds": round(float(workers["encode_seconds"].sum()), 3),
                "worker_peak_rss_mb": [round(float(mb), 1) for mb in workers["peak_rss_mb"]],
            })
    else:
        @asset
        def sentence_embeddings(context: dg.AssetExecutionContext, config: EmbeddingConfig,
                                warehouse: DuckDBWarehouse, embedder: SentenceEmbedder) -> dg.MaterializeResult:
            source = context.partition_key if context.has_partition_key else None
            chunk = config.chunk_size or embedder.chunk_rows
            return dg.MaterializeResult(metadata=embed_missing(context, warehouse, embedder, chunk, source))

    checks = [dg.asset_check(asset=sentence_embeddings, blocking=True, partitions_def=partitions)(check)
              for check in (every_sentence_embedded_once, vectors_are_finite_unit_and_model_sized)]
    return [sentence_embeddings, *checks]


def counts_metadata(embedder: SentenceEmbedder, cached: int, new: int, seconds: float) -> dict:
    """The metadata every embedding run reports: model, texts already cached and newly encoded, speed."""
    return {
        "model_key": embedder.model_key,
        "model": embedder.model_name_or_path,
        "cached_texts": cached,
        "new_texts": new,
        "dagster/row_count": cached + new,
        "seconds": round(seconds, 3),
        "sentences_per_second": round(new / seconds, 1) if new and seconds else 0.0,
    }


def embed_missing(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, embedder: SentenceEmbedder,
                  chunk_size: int, source: str | None = None) -> dict:
    """Encode every sentence text without a vector for the embedder's model_key, chunk by chunk, each chunk
    committed on its own; returns the asset metadata (model, speed, cached and new texts). `source`: only the
    texts of that partition (a file or folder)."""
    model_key = embedder.model_key
    pending, cached = warehouse.pending_texts(model_key, source)
    loading = time.perf_counter()
    if len(pending):
        embedder.prepare(context.log.info)  # model load (and a backend's one-time export): reported apart
    load_seconds = time.perf_counter() - loading
    started = time.perf_counter()
    encoding_seconds = 0.0
    for start in range(0, len(pending), chunk_size):
        chunk = pending.iloc[start : start + chunk_size]
        t0 = time.perf_counter()
        vectors = embedder.encode(chunk["text"].tolist())
        encoding_seconds += time.perf_counter() - t0
        warehouse.insert_embeddings(model_key, chunk["text_hash"].tolist(), vectors)
        context.log.info(f"embedded {min(start + chunk_size, len(pending))}/{len(pending)} new texts")
    seconds = time.perf_counter() - started
    new = len(pending)
    return {
        **counts_metadata(embedder, cached, new, seconds),
        "device": embedder.resolved_device(),
        "backend": embedder.backend,
        "precision": embedder.precision,
        "batch_size": embedder.effective_batch_size,
        "overlapped_tokenization": bool(new) and embedder.pipelined() is not None,
        "model_load_seconds": round(load_seconds, 3),
        "encode_sentences_per_second": round(new / encoding_seconds, 1) if new and encoding_seconds else 0.0,
        **({"static_distillation_seconds": round(embedder.distill_seconds, 1)}
           if embedder.distill_seconds is not None else {}),
    }


def every_sentence_embedded_once(
    context: dg.AssetCheckExecutionContext, warehouse: DuckDBWarehouse, embedder: SentenceEmbedder
) -> dg.AssetCheckResult:
    """Each distinct sentence text (of the partition's file or folder, when partitioned) has exactly one cached
    vector for the configured model."""
    scope, params = source_scope(context.partition_key if context.has_partition_key else None)
    row = warehouse.query(
        f"""SELECT count(*) FILTER (WHERE n = 0) AS missing, count(*) FILTER (WHERE n > 1) AS duplicated FROM (
                SELECT s.text_hash, count(c.text_hash) AS n FROM (SELECT DISTINCT text_hash FROM sentences
                WHERE {scope}) s LEFT JOIN embedding_cache c ON c.text_hash = s.text_hash AND c.model_key = ?
                GROUP BY s.text_hash)""",
        [*params, embedder.model_key],
    ).iloc[0]
    return dg.AssetCheckResult(
        passed=bool(row["missing"] == 0 and row["duplicated"] == 0),
        metadata={"missing": int(row["missing"]), "duplicated": int(row["duplicated"])},
    )


def vectors_are_finite_unit_and_model_sized(
    warehouse: DuckDBWarehouse, embedder: SentenceEmbedder
) -> dg.AssetCheckResult:
    """Every vector of the model has the model's dimension, no NaN or infinity, and unit length."""
    dimension = embedder.dimension
    with warehouse.vector_reads() as conn:  # a bounded buffer pool: the scan does not keep the cache in memory
        row = conn.execute(
            """SELECT count(*) FILTER (WHERE len(embedding) <> ?) AS wrong_dimension,
                      count(*) FILTER (WHERE NOT isfinite(list_sum(embedding))) AS not_finite,
                      count(*) FILTER (WHERE abs(sqrt(list_dot_product(embedding, embedding)) - 1) > 1e-3) AS not_unit
               FROM embedding_cache WHERE model_key = ?""",
            [dimension, embedder.model_key],
        ).df().iloc[0]
    counts = {k: int(v) for k, v in row.items()}
    return dg.AssetCheckResult(passed=not any(counts.values()), metadata={"dimension": dimension, **counts})
