"""The embedding cache: vectors keyed by (model_key, text_hash), read by sentence, by sample or in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .adapter import parquet_files, sql_string
from .corpus import source_scope


EMBEDDING_CHUNK = 100_000  # embeddings read at a time by the passes over a whole corpus


VECTOR_READ_MEMORY = "1GB"  # DuckDB's buffer pool while it reads vectors (it scans the whole cache)


READ_BY_ROW_UP_TO = 10_000  # sentences whose vectors are read by cache row rather than in a scan of the cache


def vectors_sql(model_key: str, where: str, columns: str = "s.sentence_id, s.text, s.label, c.embedding") -> str:
    """`columns` of the sentences meeting `where` joined with their cache rows for model_key (read through
    `vector_reads`). The key is written into the query, not passed as a parameter, so that DuckDB pushes it into
    the cache's scan."""
    return (f"SELECT {columns} FROM embedding_cache c JOIN sentences s ON c.text_hash = s.text_hash "
            f"WHERE c.model_key = {sql_string(model_key)} AND {where}")


def vectors_by_row(conn: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    """The rows of `table` (with `cache_row`, the rowid of each one's vector in the cache) and their vectors, read
    by rowid: DuckDB then skips the stretches of the cache that hold none of them. New sentences' vectors are the
    last rows written: 1,000 of them are read in 0.03 s rather than 0.35 s for decoding every vector of a
    100,000-row cache. (A large scattered sample reads faster in one scan.)"""
    conn.register("cache_rows", table.select(["cache_row"]))
    vectors = conn.execute("SELECT rowid AS cache_row, embedding FROM embedding_cache "
                           "WHERE rowid IN (SELECT cache_row FROM cache_rows)").to_arrow_table()
    got = vectors.column("cache_row").to_numpy()
    order = np.argsort(got)
    at = order[np.searchsorted(got, table.column("cache_row").to_numpy(), sorter=order)]
    return table.drop_columns(["cache_row"]).append_column("embedding", vectors.column("embedding").take(at))


class EmbeddingStore:
    """Reads and writes of `embedding_cache` (a part of `DuckDBWarehouse`)."""

    def pending_texts(self, model_key: str, source: str | None = None) -> tuple[pd.DataFrame, int]:
        """Distinct (text_hash, text) of `sentences` (or of one partition's rows: a file or folder) not yet in the
        cache for model_key, and the count of those already cached."""
        scope, params = source_scope(source, "s.source")
        with self.get_connection() as conn:
            pending = conn.execute(
                f"""SELECT text_hash, any_value(text) AS text FROM sentences s WHERE {scope}
                    AND text_hash NOT IN (SELECT text_hash FROM embedding_cache WHERE model_key = ?)
                    GROUP BY text_hash ORDER BY min(sentence_id)""",
                [*params, model_key],
            ).df()
            cached = conn.execute(
                f"""SELECT count(DISTINCT s.text_hash) FROM sentences s JOIN embedding_cache c
                    ON c.text_hash = s.text_hash AND c.model_key = ? WHERE {scope}""",
                [model_key, *params],
            ).fetchall()[0][0]
        return pending, int(cached)

    @contextmanager
    def vector_reads(self, ids: np.ndarray | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for `vectors_sql`: DuckDB keeps its join as written, the hash table built on the sentences.
        Left to itself it estimates that a fifth of the cache matches the model and builds on the cache, vectors
        and all (18 GB and 2.5 minutes to load a million sentences' vectors); its buffer pool is bounded, so that
        scanning the cache does not keep it in memory. `ids`: registered as `wanted`."""
        with self.get_connection() as conn:
            conn.execute("SET disabled_optimizers = 'join_order,build_side_probe_side'")
            conn.execute(f"SET memory_limit = '{VECTOR_READ_MEMORY}'")
            if ids is not None:
                conn.register("wanted", pa.table({"sentence_id": np.asarray(ids, np.int64)}))
            yield conn

    def load_embeddings(self, model_key: str, only: str = "true", only_params: list[Any] | None = None,
                        ids: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Every sentence (sentence_id, text, label) of the cluster window in id order (or those of it that meet
        the SQL condition `only`, or whose id is in `ids`), and its embedding matrix for model_key."""
        if ids is not None:
            only = "s.sentence_id IN (SELECT sentence_id FROM wanted)"
        window, params = self.window_scope()
        window, params = f"{window} AND {only}", [*params, *(only_params or [])]
        with self.vector_reads(ids) as conn:
            missing = conn.execute(
                f"""SELECT count(*) FROM sentences s ANTI JOIN embedding_cache c
                   ON c.text_hash = s.text_hash AND c.model_key = ? WHERE {window}""",
                [model_key, *params],
            ).fetchall()[0][0]
            if missing:
                raise LookupError(
                    f"{missing} sentence(s) have no embedding for model '{model_key}'. "
                    "Materialize sentence_embeddings first (with the same EMBEDDING_MODEL and EMBEDDING_DEVICE)."
                )
            # Rows are put in id order here rather than by an ORDER BY that would sort the vectors too.
            rows = None if only == "true" else conn.sql(vectors_sql(
                model_key, window, "s.sentence_id, s.text, s.label, c.rowid AS cache_row"), params=params
            ).to_arrow_table()
            if rows is not None and len(rows) <= READ_BY_ROW_UP_TO:
                table = vectors_by_row(conn, rows)
            else:
                table = conn.sql(vectors_sql(model_key, window), params=params).to_arrow_table()
            if self.cluster_window and only == "true" and not len(table):
                sources = [r[0] for r in conn.execute(
                    "SELECT DISTINCT source FROM sentences ORDER BY source LIMIT 5").fetchall()]
                raise LookupError(
                    f"CLUSTER_WINDOW '{self.cluster_window}' matches no file of the stored sentences (sources such "
                    f"as {sources}). Give a GLOB over sentences.source, or leave it empty for every sentence."
                )
        order = np.argsort(table.column("sentence_id").to_numpy(), kind="stable")
        vectors = table.column("embedding").combine_chunks()
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        matrix = matrix.reshape(len(table), -1)[order] if len(table) else np.zeros((0, 0), dtype=np.float32)
        frame = table.drop_columns(["embedding"]).take(order).to_pandas()
        return frame, matrix

    def embeddings_of(self, model_key: str, ids: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """`load_embeddings` of the window's sentences `ids` only."""
        return self.load_embeddings(model_key, ids=ids)

    def vectors_by_id(self, model_key: str, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ids of the window's sentences among `ids` and their vectors for model_key."""
        found, vectors = self.embeddings_of(model_key, ids)
        return found["sentence_id"].to_numpy(np.int64), vectors

    def sampled_embeddings(self, model_key: str, ids: np.ndarray, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """`load_embeddings` of the sentences at positions `rows` of the window's ids `ids` (a sample of it, or
        every position: then read without registering the ids)."""
        return self.load_embeddings(model_key) if len(rows) == len(ids) else self.embeddings_of(model_key, ids[rows])

    def embedding_chunks(self, model_key: str, rows: int = EMBEDDING_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(sentence ids, embedding matrix) of the window's sentences, about `rows` at a time, in no set order.
        The vectors are copied in one short read into a file beside the warehouse, then streamed from it:
        memory is a chunk whatever the corpus, and the file is free for other steps while the chunks are used
        (growing an index from them took minutes at a million sentences)."""
        window, params = self.window_scope()
        with self.scratch_folder() as folder:
            staged = folder / "vectors.arrow"  # Arrow's own format: written and read back as the bytes they are
            with self.vector_reads() as conn:
                batches = conn.execute(vectors_sql(model_key, window, "s.sentence_id, c.embedding"),
                                       params).to_arrow_reader(rows)
                with pa.ipc.new_file(staged, batches.schema) as writer:
                    for batch in batches:
                        writer.write_batch(batch)
            with pa.OSFile(str(staged)) as source:
                reader = pa.ipc.open_file(source)
                for number in range(reader.num_record_batches):
                    batch = reader.get_batch(number)
                    if batch.num_rows:
                        vectors = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
                        yield (batch.column("sentence_id").to_numpy(zero_copy_only=False).astype(np.int64),
                               vectors.astype(np.float32, copy=False).reshape(batch.num_rows, -1))

    def insert_embeddings(self, model_key: str, hashes: list[str], vectors: np.ndarray) -> None:
        """Add vectors to the cache in one transaction (rows already there are left alone)."""
        dim = vectors.shape[1]
        batch = pa.table({
            "model_key": pa.array([model_key] * len(hashes), pa.string()),
            "text_hash": pa.array(hashes, pa.string()),
            "embedding": pa.ListArray.from_arrays(
                pa.array(np.arange(0, (len(hashes) + 1) * dim, dim, dtype=np.int32)),
                pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel()),
            ),
        })
        with self.transaction() as conn:
            conn.register("batch", batch)
            conn.execute(
                """INSERT INTO embedding_cache (model_key, text_hash, embedding)
                   SELECT model_key, text_hash, embedding FROM batch ON CONFLICT DO NOTHING"""
            )
            conn.unregister("batch")

    def commit_staged_embeddings(self, model_key: str, files: list[Path]) -> int:
        """Load Parquet files of (text_hash, embedding) written by other processes into the cache, in one
        transaction (vectors already there are left alone), then delete the files; returns the rows added."""
        if not files:
            return 0
        with self.transaction() as conn:
            conn.register("staged_vectors", parquet_files(files))
            added = conn.execute(
                """INSERT INTO embedding_cache (model_key, text_hash, embedding)
                   SELECT ?, text_hash, embedding FROM staged_vectors ON CONFLICT DO NOTHING""",
                [model_key],
            ).fetchall()[0][0]
            conn.unregister("staged_vectors")
        for path in files:
            path.unlink(missing_ok=True)
        return int(added)
