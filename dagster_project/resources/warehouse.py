"""The DuckDB warehouse: schema of the data contract, serialized short connections, table I/O."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
from dagster_duckdb import DuckDBResource
from filelock import FileLock
from pydantic import Field

from ..core.topics import NOISE_LABEL

SCHEMA = """
CREATE TABLE IF NOT EXISTS sentences (
    sentence_id BIGINT NOT NULL, text VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, source VARCHAR NOT NULL,
    source_row INTEGER, label VARCHAR, ingested_at TIMESTAMP NOT NULL, timestamp TIMESTAMP);
CREATE TABLE IF NOT EXISTS id_watermarks (name VARCHAR PRIMARY KEY, last_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS ingested_files (
    source VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS embedding_cache (
    model_key VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, embedding FLOAT[] NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp, PRIMARY KEY (model_key, text_hash));
CREATE TABLE IF NOT EXISTS cluster_assignments (
    algorithm VARCHAR NOT NULL, sentence_id BIGINT NOT NULL, cluster_id INTEGER NOT NULL, topic_id BIGINT);
CREATE TABLE IF NOT EXISTS clustering_runs (
    algorithm VARCHAR NOT NULL, model_key VARCHAR NOT NULL, params JSON, details JSON,
    n_sentences INTEGER, n_clusters INTEGER, seconds DOUBLE, materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topic_summaries (
    algorithm VARCHAR NOT NULL, cluster_id INTEGER NOT NULL, size INTEGER NOT NULL, share DOUBLE,
    label VARCHAR, keywords VARCHAR[], representative_sentences VARCHAR[], topic_id BIGINT, keyword_label VARCHAR);
CREATE TABLE IF NOT EXISTS clustering_metrics (
    algorithm VARCHAR NOT NULL, model_key VARCHAR, params JSON, n_sentences INTEGER, n_clusters INTEGER,
    noise_fraction DOUBLE, silhouette DOUBLE, silhouette_sample_size INTEGER, davies_bouldin DOUBLE,
    calinski_harabasz DOUBLE, nmi DOUBLE, ari DOUBLE, v_measure DOUBLE, seconds DOUBLE,
    materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topic_hierarchy (
    algorithm VARCHAR NOT NULL, merge_id INTEGER NOT NULL, "left" INTEGER NOT NULL, "right" INTEGER NOT NULL,
    distance DOUBLE, size INTEGER);
CREATE TABLE IF NOT EXISTS sentence_map (
    sentence_id BIGINT NOT NULL, x FLOAT NOT NULL, y FLOAT NOT NULL, method VARCHAR);
CREATE TABLE IF NOT EXISTS adapted_models (
    method VARCHAR NOT NULL, model_path VARCHAR NOT NULL, model_key VARCHAR NOT NULL, base_model_key VARCHAR NOT NULL,
    corpus_fingerprint VARCHAR NOT NULL, params JSON, sentences INTEGER, steps INTEGER, train_seconds DOUBLE,
    materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topics (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, cluster_id INTEGER, label VARCHAR, status VARCHAR NOT NULL,
    first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL, size INTEGER NOT NULL, centroid FLOAT[],
    radius DOUBLE, model_key VARCHAR);
CREATE TABLE IF NOT EXISTS topic_events (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, materialized_at TIMESTAMP NOT NULL, event VARCHAR NOT NULL,
    other_topic_id BIGINT, size INTEGER);
CREATE TABLE IF NOT EXISTS topic_trends (
    algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, period TIMESTAMP NOT NULL, period_unit VARCHAR NOT NULL,
    sentences INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topic_curation (algorithm VARCHAR NOT NULL, topic_id BIGINT NOT NULL, label VARCHAR);
CREATE TABLE IF NOT EXISTS recommended (algorithm VARCHAR NOT NULL, reason VARCHAR, chosen_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS sentence_neighbors (
    model_key VARCHAR NOT NULL, sentence_id BIGINT NOT NULL, neighbor_id BIGINT NOT NULL, similarity FLOAT NOT NULL);
CREATE TABLE IF NOT EXISTS near_duplicates (
    model_key VARCHAR NOT NULL, group_id BIGINT NOT NULL, sentence_id BIGINT NOT NULL, similarity FLOAT,
    size INTEGER NOT NULL);
CREATE VIEW IF NOT EXISTS sentence_outliers AS
    SELECT model_key, sentence_id, min(similarity) AS kth_similarity, count(*) AS neighbors
    FROM sentence_neighbors GROUP BY ALL;
-- columns added after the first release: warehouses written before gain them on first open
ALTER TABLE sentences ADD COLUMN IF NOT EXISTS timestamp TIMESTAMP;
ALTER TABLE cluster_assignments ADD COLUMN IF NOT EXISTS topic_id BIGINT;
ALTER TABLE topic_summaries ADD COLUMN IF NOT EXISTS topic_id BIGINT;
ALTER TABLE topic_summaries ADD COLUMN IF NOT EXISTS keyword_label VARCHAR;
ALTER TABLE sentence_map ADD COLUMN IF NOT EXISTS model_key VARCHAR;
ALTER TABLE sentence_map ADD COLUMN IF NOT EXISTS placed BOOLEAN;
ALTER TABLE clustering_metrics ADD COLUMN IF NOT EXISTS coherence_npmi DOUBLE;
ALTER TABLE clustering_metrics ADD COLUMN IF NOT EXISTS topic_diversity DOUBLE;
"""

EMBEDDING_CHUNK = 100_000  # embeddings read at a time by the passes over a whole corpus
VECTOR_READ_MEMORY = "1GB"  # DuckDB's buffer pool while it reads vectors (it scans the whole cache)
INGEST_MEMORY = "300MB"  # ... while it stores sentences: its join and sort spill (2.7 GB at 3M rows without)
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


CURATION_COLUMNS = {"algorithm": "VARCHAR", "topic_id": "BIGINT", "label": "VARCHAR"}

# (algorithm, reason) of every algorithm whose latest clustering could not run.
FAILED_FITS = ("SELECT algorithm, details->>'failed' FROM clustering_runs WHERE details->>'failed' IS NOT NULL "
               "ORDER BY algorithm")

# Tables holding one set of rows per algorithm; replaced per algorithm.
PER_ALGORITHM_TABLES = ("cluster_assignments", "topic_summaries", "clustering_runs", "topic_hierarchy", "topics",
                        "topic_trends")


def sql_string(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


INCOMING = pa.schema([("text", pa.string()), ("text_hash", pa.string()), ("source", pa.string()),
                      ("source_row", pa.int64()), ("label", pa.string()), ("timestamp", pa.timestamp("us")),
                      ("ordinal", pa.int64())])


def incoming_part(frame: pd.DataFrame, first_ordinal: int) -> pa.Table:
    """One part of the sentences being stored, as the `incoming` table's columns (ordinal: place in the whole)."""
    stamps = frame["timestamp"] if "timestamp" in frame else pd.Series(pd.NaT, index=frame.index)
    return pa.table({
        "text": pa.array(frame["text"].tolist(), pa.string()),
        "text_hash": pa.array(frame["text_hash"].tolist(), pa.string()),
        "source": pa.array(frame["source"].tolist(), pa.string()),
        "source_row": pa.array(frame["row"].to_numpy(dtype=np.int64)),
        "label": pa.array(frame["label"].tolist(), pa.string()),
        "timestamp": pa.array(pd.to_datetime(stamps).astype("datetime64[us]").to_numpy(), pa.timestamp("us")),
        "ordinal": pa.array(np.arange(first_ordinal, first_ordinal + len(frame), dtype=np.int64)),
    }, schema=INCOMING)


def source_scope(partition: str | None, column: str = "source") -> tuple[str, list[Any]]:
    """A SQL condition and its parameters: the rows of one partition (a `source` file, or every file under a
    folder), or every row when None."""
    if partition is None:
        return "true", []
    return f"({column} = ? OR starts_with({column}, ? || '/'))", [partition, partition]


def parquet_files(paths: Iterable[Path | str], schema: pa.Schema | None = None) -> pa_dataset.Dataset:
    """The listed Parquet files as one table to register with DuckDB: each path taken as it is, never as a glob
    (DuckDB's `read_parquet` would read `[` or `*` in a folder's name as one)."""
    return pa_dataset.dataset([str(p) for p in paths], format="parquet", schema=schema)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class WarehouseBusyError(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than the configured wait."""


class DuckDBWarehouse(DuckDBResource):
    """DuckDB file holding every table of the data contract.

    DuckDB allows one writing process. Every connection here is short and taken under an inter-process file
    lock (`<database>.lock`), so parallel Dagster steps compute in parallel and touch the file one at a time;
    a lock held by an outside process (a DuckDB shell, say) is retried with backoff."""

    lock_timeout_seconds: float = Field(default=900.0, description="How long to wait for the database file.")
    cluster_window: str = Field(default="", description=(
        "A GLOB over sentences.source (e.g. '2026-11-*' or 'news/*'): clusterings, topics, metrics and the map "
        "read only the sentences of the matching files. Empty: every sentence."))

    def window_scope(self, column: str = "s.source") -> tuple[str, list[Any]]:
        """The SQL condition of `cluster_window` and its parameters (every row when unset)."""
        return (f"{column} GLOB ?", [self.cluster_window]) if self.cluster_window else ("true", [])

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock", timeout=self.lock_timeout_seconds):
            conn = self._connect(str(path))
            try:
                conn.execute(SCHEMA)
                yield conn
            finally:
                conn.close()

    def _connect(self, path: str) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.05
        while True:
            try:
                return duckdb.connect(path, config={"custom_user_agent": "sentence-topics", **self.connection_config})
            except duckdb.IOException as err:  # held by a process outside this pipeline
                if "lock" not in str(err).lower() or time.monotonic() + delay > deadline:
                    raise WarehouseBusyError(
                        f"DuckDB file '{path}' is locked by another process ({err}). Close other connections "
                        "that write to it (DuckDB allows one writing process), then run again."
                    ) from err
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection, one transaction: all of it lands, or none of it."""
        with self.get_connection() as conn:
            conn.begin()
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    # --- reads ---------------------------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self.get_connection() as conn:
            return conn.execute(sql, params or []).df()

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

    def window_sentences(self, column: str, ids: np.ndarray | None = None) -> pd.DataFrame:
        """sentence_id and one `column` of the window's sentences (those of `ids` only, when given), in id order."""
        window, params = self.window_scope()
        only = "" if ids is None else " AND s.sentence_id IN (SELECT sentence_id FROM wanted)"
        with self.vector_reads(ids) as conn:
            return conn.execute(f"SELECT s.sentence_id, s.{column} FROM sentences s WHERE {window}{only} ORDER BY 1",
                                params).df()

    def embeddings_of(self, model_key: str, ids: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """`load_embeddings` of the window's sentences `ids` only."""
        return self.load_embeddings(model_key, ids=ids)

    def sampled_embeddings(self, model_key: str, ids: np.ndarray, rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
        """`load_embeddings` of the sentences at positions `rows` of the window's ids `ids` (a sample of it, or
        every position: then read without registering the ids)."""
        return self.load_embeddings(model_key) if len(rows) == len(ids) else self.embeddings_of(model_key, ids[rows])

    @contextmanager
    def scratch_folder(self) -> Iterator[Path]:
        """A private folder beside the DuckDB file (on its disk, not in memory) for data staged while the file is
        not held; removed with its contents however the block ends, or by the next one opened once the process
        that made it is gone."""
        database = Path(self.database).expanduser()
        database.parent.mkdir(parents=True, exist_ok=True)
        for left in database.parent.glob(f"{glob.escape(database.name)}.staging-*-*"):
            pid = left.name.rsplit(".staging-", 1)[1].split("-")[0]
            if pid.isdigit() and not process_alive(int(pid)):
                shutil.rmtree(left, ignore_errors=True)  # left by a process killed mid-step: gigabytes at scale
        with tempfile.TemporaryDirectory(prefix=f"{database.name}.staging-{os.getpid()}-",
                                         dir=database.parent) as folder:
            yield Path(folder)

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

    def new_sentences(self, algorithm: str, model_key: str) -> tuple[pd.DataFrame, np.ndarray, int]:
        """The sentences of the cluster window that `algorithm` has not assigned yet (sentence_id, text, label)
        with their embeddings, and the count of its assignments whose sentence left the window."""
        window, params = self.window_scope()
        with self.get_connection() as conn:
            new = conn.execute(
                f"""SELECT s.sentence_id FROM sentences s WHERE {window} AND s.sentence_id NOT IN
                    (SELECT sentence_id FROM cluster_assignments WHERE algorithm = ?) ORDER BY 1""",
                [*params, algorithm]).fetchnumpy()["sentence_id"]
            removed = conn.execute(
                f"""SELECT count(*) FROM cluster_assignments a WHERE a.algorithm = ? AND a.sentence_id NOT IN
                    (SELECT s.sentence_id FROM sentences s WHERE {window})""", [algorithm, *params]).fetchall()[0][0]
        frame, matrix = self.embeddings_of(model_key, np.asarray(new, dtype=np.int64))
        return frame, matrix, int(removed)

    def last_run(self, algorithm: str) -> dict | None:
        """The latest clustering run of `algorithm` (model_key, params, details as dicts), None if it never ran."""
        runs = self.query("SELECT model_key, params, details FROM clustering_runs WHERE algorithm = ? "
                          "ORDER BY materialized_at DESC LIMIT 1", [algorithm])
        if runs.empty:
            return None
        row = runs.iloc[0]
        return {"model_key": row["model_key"], "params": json.loads(row["params"] or "null"),
                "details": json.loads(row["details"] or "null")}

    def topic_registry(self, algorithm: str) -> pd.DataFrame:
        """Every topic id `algorithm` ever had (`topics`), active first."""
        return self.query("SELECT * EXCLUDE (algorithm) FROM topics WHERE algorithm = ? ORDER BY status, topic_id",
                          [algorithm])

    def next_topic_id(self, algorithm: str) -> int:
        """One above every topic id `algorithm` ever gave: ids are never reused."""
        return int(self.query(
            """SELECT greatest(coalesce((SELECT max(topic_id) FROM topics WHERE algorithm = ?), -1),
                               coalesce((SELECT max(topic_id) FROM topic_events WHERE algorithm = ?), -1)) + 1 AS n""",
            [algorithm, algorithm])["n"].iloc[0])

    def failed_fits(self) -> dict[str, str]:
        """Algorithm -> why its latest clustering could not run, for those whose latest run failed."""
        with self.get_connection() as conn:
            return dict(conn.execute(FAILED_FITS).fetchall())

    def failed_fit(self, algorithm: str) -> str | None:
        return self.failed_fits().get(algorithm)

    def assignments(self, algorithm: str) -> pd.DataFrame:
        return self.query(
            "SELECT sentence_id, cluster_id, topic_id FROM cluster_assignments WHERE algorithm = ? ORDER BY sentence_id",
            [algorithm],
        )

    # --- writes --------------------------------------------------------------------------------------------

    def ingested_files(self) -> dict[str, str]:
        """The fingerprint of every input file as it was when its sentences were stored (source -> fingerprint)."""
        with self.get_connection() as conn:
            return dict(conn.execute("SELECT source, fingerprint FROM ingested_files").fetchall())

    def replace_sentences(self, frames: pd.DataFrame | Iterable[pd.DataFrame], source: str | None = None,
                          fingerprints: dict[str, str] | None = None) -> dict[str, int]:
        """Replace `sentences` (or only the rows of one `source` file) with `frames` (one frame, or parts of one read
        in turn: text, text_hash, source, row, label, optional timestamp: else the ingestion time), and
        `ingested_files` with `fingerprints` (source -> fingerprint of the files read). A row already stored with
        the same source, row and text keeps its sentence_id and ingested_at; new rows get ids above every id stored
        before, so a removed sentence's id never comes back. The parts are read and staged beside the warehouse
        before the file is held (reading three million sentences held it 80 s), then stored in one transaction:
        an error while reading them writes nothing."""
        scope, scope_params = source_scope(source)
        parts = [frames] if isinstance(frames, pd.DataFrame) else frames
        with self.scratch_folder() as folder:
            rows, staged = 0, []
            for frame in parts:
                staged.append(str(folder / f"part-{len(staged)}.parquet"))
                pq.write_table(incoming_part(frame, rows), staged[-1])
                rows += len(frame)
            with self.transaction() as conn:
                if INGEST_MEMORY:
                    conn.execute(f"SET memory_limit = '{INGEST_MEMORY}'")
                conn.register("incoming", parquet_files(staged, INCOMING))
                counts = self._store_incoming(conn, scope, scope_params, fingerprints)
        return {"rows": rows, "new": rows - counts["kept"], **counts}

    def _store_incoming(self, conn: duckdb.DuckDBPyConnection, scope: str, scope_params: list[Any],
                        fingerprints: dict[str, str] | None) -> dict[str, int]:
        """`replace_sentences`' writes from the registered `incoming` rows; counts of kept, removed, distinct and
        labelled."""
        conn.execute(
            """CREATE TEMP TABLE matched AS
               SELECT i.*, s.sentence_id AS old_id, s.ingested_at AS old_ingested_at
               FROM incoming i LEFT JOIN sentences s
               ON s.source = i.source AND s.source_row = i.source_row AND s.text_hash = i.text_hash"""
        )
        before = conn.execute(f"SELECT count(*) FROM sentences WHERE {scope}", scope_params).fetchall()[0][0]
        last_id = self._raise_id_watermark(conn)
        conn.execute(f"DELETE FROM sentences WHERE {scope}", scope_params)
        conn.execute(
            """INSERT INTO sentences (sentence_id, text, text_hash, source, source_row, label, ingested_at,
                                     timestamp)
               SELECT coalesce(old_id, ? + row_number() OVER (PARTITION BY old_id IS NULL ORDER BY ordinal)),
                      text, text_hash, source, source_row, label, coalesce(old_ingested_at, current_timestamp),
                      coalesce(timestamp, old_ingested_at, current_timestamp)
               FROM matched ORDER BY ordinal""",
            [last_id],
        )
        conn.execute(f"DELETE FROM ingested_files WHERE {scope}", scope_params)
        if fingerprints:
            conn.executemany("INSERT INTO ingested_files VALUES (?, ?, current_timestamp)",
                             sorted(fingerprints.items()))
        self._raise_id_watermark(conn)
        kept = conn.execute("SELECT count(old_id) FROM matched").fetchall()[0][0]
        distinct, labelled = conn.execute("SELECT count(DISTINCT text_hash), count(label) FROM incoming").fetchone()
        conn.execute("DROP TABLE matched")
        return {"kept": int(kept), "removed": int(before - kept), "distinct_texts": int(distinct),
                "labelled": int(labelled)}

    def delete_source(self, source: str) -> int:
        """Remove the sentences of one `source` file (their cached vectors stay: keyed by text, reusable)."""
        with self.transaction() as conn:
            self._raise_id_watermark(conn)
            conn.execute("DELETE FROM ingested_files WHERE source = ?", [source])
            return conn.execute("DELETE FROM sentences WHERE source = ?", [source]).fetchall()[0][0]

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

    def replace_algorithm_rows(self, algorithm: str, tables: dict[str, pd.DataFrame],
                               events: pd.DataFrame | None = None) -> None:
        """Replace `algorithm`'s rows in each named per-algorithm table, and append its `topic_events`, all in one
        transaction."""
        for name in tables:
            if name not in PER_ALGORITHM_TABLES:
                raise ValueError(f"'{name}' is not a per-algorithm table ({', '.join(PER_ALGORITHM_TABLES)})")
        with self.transaction() as conn:
            for name, frame in tables.items():
                conn.execute(f"DELETE FROM {name} WHERE algorithm = ?", [algorithm])  # name from the fixed list
                self._append(conn, name, frame.assign(algorithm=algorithm))
            if events is not None and len(events):
                self._append(conn, "topic_events", events.assign(algorithm=algorithm))

    def check_curation(self) -> None:
        """Raise a clear error when `topic_curation` lacks a column the runs read (it is written by hand)."""
        found = dict(self.query("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = 'topic_curation'").itertuples(index=False))
        missing = [f"{c} {t}" for c, t in CURATION_COLUMNS.items() if c not in found]
        if missing:
            expected = ", ".join(f"{c} {t}" for c, t in CURATION_COLUMNS.items())
            raise LookupError(
                f"table topic_curation in {self.database} lacks {', '.join(missing)} (found: "
                f"{', '.join(found) or 'no columns'}). It must have the columns ({expected}); DROP it and the next "
                "run creates it empty, or ALTER it to add them.")

    def summaries_cover_topics(self, algorithm: str) -> bool:
        """Whether `topic_summaries` has a row for every active topic of `algorithm` and none for another."""
        return bool(self.query(
            """SELECT (SELECT list_sort(list(topic_id)) FROM topics WHERE algorithm = ? AND status = 'active')
                   IS NOT DISTINCT FROM (SELECT list_sort(list(topic_id)) FROM topic_summaries
                                         WHERE algorithm = ? AND topic_id >= 0) AS same""",
            [algorithm, algorithm])["same"].iloc[0])

    def refresh_topic_sizes(self, algorithm: str) -> None:
        """Sizes and shares of `algorithm`'s topic summaries from its current assignments (keywords kept), with a
        noise row when some sentences are in no topic."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO topic_summaries (algorithm, cluster_id, topic_id, size, label, keyword_label,
                                                keywords, representative_sentences)
                   SELECT ?, -1, -1, 0, ?, ?, [], [] WHERE NOT EXISTS (SELECT 1 FROM topic_summaries
                       WHERE algorithm = ? AND topic_id = -1)
                   AND EXISTS (SELECT 1 FROM cluster_assignments WHERE algorithm = ? AND topic_id = -1)""",
                [algorithm, NOISE_LABEL, NOISE_LABEL, algorithm, algorithm])
            conn.execute(
                """UPDATE topic_summaries t SET size = coalesce(c.n, 0), share = coalesce(c.n, 0) / c.total
                   FROM (SELECT s.topic_id, n, sum(n) OVER () AS total FROM topic_summaries s LEFT JOIN
                         (SELECT topic_id, count(*) AS n FROM cluster_assignments WHERE algorithm = ?
                          GROUP BY topic_id) USING (topic_id) WHERE s.algorithm = ?) c
                   WHERE t.algorithm = ? AND t.topic_id = c.topic_id""", [algorithm, algorithm, algorithm])

    def apply_curation(self, algorithm: str) -> pd.DataFrame:
        """Curated labels (`topic_curation`) over the keyword labels of `algorithm`'s topic summaries and active
        topics; returns the curation rows naming a topic that is retired or unknown (topic_id, label, status)."""
        with self.transaction() as conn:
            conn.execute(
                """UPDATE topic_summaries t SET label = coalesce(
                       (SELECT any_value(c.label) FROM topic_curation c
                        WHERE c.algorithm = t.algorithm AND c.topic_id = t.topic_id AND c.label IS NOT NULL),
                       t.keyword_label)
                   WHERE t.algorithm = ?""", [algorithm])
            conn.execute(
                """UPDATE topics p SET label = s.label FROM topic_summaries s
                   WHERE p.algorithm = ? AND s.algorithm = p.algorithm AND s.topic_id = p.topic_id""", [algorithm])
            return conn.execute(
                """SELECT c.topic_id, c.label, coalesce(p.status, 'unknown') AS status FROM topic_curation c
                   LEFT JOIN topics p ON p.algorithm = c.algorithm AND p.topic_id = c.topic_id
                   WHERE c.algorithm = ? AND (p.status IS NULL OR p.status <> 'active') ORDER BY c.topic_id""",
                [algorithm]).df()

    def replace_trends(self, algorithm: str, unit: str) -> pd.DataFrame:
        """Sentences per topic per period (`unit`: day, week or month; by `sentences.timestamp`) of `algorithm`
        into `topic_trends`, noise (-1) included, so a period's counts add up to its sentences."""
        if unit not in ("day", "week", "month"):
            raise ValueError(f"trend period '{unit}' must be day, week or month")
        with self.transaction() as conn:
            conn.execute("DELETE FROM topic_trends WHERE algorithm = ?", [algorithm])
            conn.execute(
                """INSERT INTO topic_trends (algorithm, topic_id, period, period_unit, sentences)
                   SELECT a.algorithm, a.topic_id, date_trunc(?, s.timestamp), ?, count(*)
                   FROM cluster_assignments a JOIN sentences s USING (sentence_id)
                   WHERE a.algorithm = ? GROUP BY ALL""", [unit, unit, algorithm])
            return conn.execute("SELECT topic_id, period, sentences FROM topic_trends WHERE algorithm = ? "
                                "ORDER BY period, topic_id", [algorithm]).df()

    def add_assignments(self, algorithm: str, rows: pd.DataFrame, run: pd.DataFrame) -> None:
        """An incremental run, in one transaction: drop the assignments of sentences that left the cluster window,
        add `rows` (sentence_id, cluster_id, topic_id) for the new ones (replacing those a concurrent run added),
        replace the `clustering_runs` row, and bring the active topics' sizes and last_seen up to date."""
        window, params = self.window_scope()
        with self.transaction() as conn:
            conn.execute(f"""DELETE FROM cluster_assignments a WHERE a.algorithm = ? AND a.sentence_id NOT IN
                             (SELECT s.sentence_id FROM sentences s WHERE {window})""", [algorithm, *params])
            conn.execute("DELETE FROM cluster_assignments WHERE algorithm = ? AND sentence_id IN (SELECT unnest(?))",
                         [algorithm, rows["sentence_id"].astype("int64").tolist()])  # a concurrent run's, same fit
            self._append(conn, "cluster_assignments", rows.assign(algorithm=algorithm))
            conn.execute("DELETE FROM clustering_runs WHERE algorithm = ?", [algorithm])
            self._append(conn, "clustering_runs", run.assign(algorithm=algorithm))
            conn.execute(
                """UPDATE topics t SET size = coalesce((SELECT count(*) FROM cluster_assignments a
                       WHERE a.algorithm = t.algorithm AND a.topic_id = t.topic_id), 0), last_seen = ?
                   WHERE t.algorithm = ? AND t.status = 'active'""", [run["materialized_at"].iloc[0], algorithm])

    def append_rows(self, table: str, frame: pd.DataFrame) -> None:
        if table not in ("clustering_metrics", "adapted_models"):
            raise ValueError(f"'{table}' is not an append-only table")
        with self.transaction() as conn:
            self._append(conn, table, frame)

    def map_state(self) -> dict[str, Any]:
        """How `sentence_map` stands against the cluster window: sentences on it, sentences not yet on it (new),
        points of sentences gone (stale), points placed beside neighbours rather than projected, and the methods and
        model keys of its points."""
        window, params = self.window_scope()
        row = self.query(
            f"""SELECT
                 (SELECT count(*) FROM sentences s WHERE {window}
                  AND s.sentence_id IN (SELECT sentence_id FROM sentence_map)) AS mapped,
                 (SELECT count(*) FROM sentences s WHERE {window}
                  AND s.sentence_id NOT IN (SELECT sentence_id FROM sentence_map)) AS new,
                 (SELECT count(*) FROM sentence_map WHERE sentence_id NOT IN
                  (SELECT s.sentence_id FROM sentences s WHERE {window})) AS stale,
                 (SELECT count(*) FROM sentence_map WHERE placed) AS placed,
                 (SELECT list(DISTINCT method) FROM sentence_map) AS methods,
                 (SELECT list(DISTINCT model_key) FROM sentence_map) AS models""", [*params, *params, *params]).iloc[0]
        lists = {key: [] if row[key] is None or row[key] is pd.NA else list(row[key]) for key in ("methods", "models")}
        return {**{key: int(row[key]) for key in ("mapped", "new", "stale", "placed")}, **lists}

    def update_map(self, points: pd.DataFrame) -> None:
        """Add `points` (sentence_id, x, y, method, model_key, placed) to `sentence_map` and drop the points of
        sentences no longer in the cluster window, in one transaction."""
        window, params = self.window_scope()
        with self.transaction() as conn:
            conn.execute(f"""DELETE FROM sentence_map WHERE sentence_id NOT IN
                             (SELECT s.sentence_id FROM sentences s WHERE {window})
                             OR sentence_id IN (SELECT unnest(?))""", [*params, points["sentence_id"].astype("int64").tolist()])
            self._append(conn, "sentence_map", points)

    def window_ids(self) -> np.ndarray:
        """The sentence ids of the cluster window, sorted."""
        window, params = self.window_scope()
        return self.query(f"SELECT s.sentence_id FROM sentences s WHERE {window} ORDER BY 1",
                          params)["sentence_id"].to_numpy(np.int64)

    def neighbour_rows(self, model_key: str, k: int, only: str = "true",
                       only_params: list[Any] | None = None) -> pd.DataFrame:
        """`sentence_neighbors` rows of model_key (those meeting the SQL condition `only`), at most k per sentence,
        most similar first."""
        with self.vector_reads() as conn:  # DuckDB's sort spills beyond its bounded memory
            return conn.execute(
                f"""SELECT sentence_id, neighbor_id, similarity FROM sentence_neighbors WHERE model_key = ? AND {only}
                    QUALIFY row_number() OVER (PARTITION BY sentence_id ORDER BY similarity DESC, neighbor_id) <= ?
                    ORDER BY sentence_id, similarity DESC, neighbor_id""", [model_key, *(only_params or []), k]).df()

    def replace_neighbours(self, model_key: str, changes: Iterable[tuple[np.ndarray, pd.DataFrame | None]]) -> None:
        """Apply each (sentence ids whose `sentence_neighbors` lists go, rows to add) of `changes` in turn, and drop
        every list of another model, in one transaction. `changes` is consumed first, each chunk of rows staged as
        Parquet beside the warehouse, so the search that makes them holds neither memory nor the file (held for its
        whole length, it kept the other steps waiting for 16 minutes at 3,000,000 sentences); then one short
        transaction drops the lists and loads the staged rows (give the ids to drop together: a DELETE per chunk
        held 2.5 times the memory and took 6 times as long)."""
        with self.scratch_folder() as folder:
            steps: list[tuple[np.ndarray, list[Path]]] = []  # ids to drop, then the files of rows to add after it
            for number, (ids, rows) in enumerate(changes):
                if len(ids) or not steps:
                    steps.append((np.asarray(ids, np.int64), []))
                if rows is not None and len(rows):
                    staged = folder / f"rows-{number}.parquet"
                    pq.write_table(pa.Table.from_pandas(rows.assign(model_key=model_key), preserve_index=False),
                                   staged)
                    steps[-1][1].append(staged)
            with self.transaction() as conn:
                conn.execute(f"SET memory_limit = '{VECTOR_READ_MEMORY}'")  # written blocks are not kept cached
                conn.execute("DELETE FROM sentence_neighbors WHERE model_key <> ?", [model_key])
                for ids, files in steps:
                    if len(ids):
                        conn.register("replaced_ids", pa.table({"sentence_id": ids}))
                        conn.execute("DELETE FROM sentence_neighbors WHERE sentence_id IN "
                                     "(SELECT sentence_id FROM replaced_ids)")
                        conn.unregister("replaced_ids")
                    if files:
                        conn.register("staged_rows", parquet_files(files))
                        conn.execute("INSERT INTO sentence_neighbors (model_key, sentence_id, neighbor_id, similarity) "
                                     "SELECT model_key, sentence_id, neighbor_id, similarity FROM staged_rows")
                        conn.unregister("staged_rows")

    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        if table not in ("sentence_map", "recommended", "near_duplicates"):
            raise ValueError(f"'{table}' is not a whole-table replacement target")
        with self.transaction() as conn:
            conn.execute(f"DELETE FROM {table}")
            self._append(conn, table, frame)

    @staticmethod
    def _raise_id_watermark(conn: duckdb.DuckDBPyConnection) -> int:
        """The highest sentence_id ever given, kept in `id_watermarks` so that deleting the newest rows never
        lets their ids be given again; call it before deleting sentences and after adding them."""
        return conn.execute(
            """INSERT OR REPLACE INTO id_watermarks
               SELECT 'sentence_id', greatest(coalesce(max(sentence_id), 0), coalesce(
                   (SELECT last_id FROM id_watermarks WHERE name = 'sentence_id'), 0))
               FROM sentences RETURNING last_id""").fetchall()[0][0]

    @staticmethod
    def _append(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
        frame = frame.copy()
        for column in frame.columns:
            if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, dict)).any():
                frame[column] = frame[column].map(lambda v: json.dumps(v, default=str))
        conn.register("frame_rows", frame)
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM frame_rows")
        conn.unregister("frame_rows")
