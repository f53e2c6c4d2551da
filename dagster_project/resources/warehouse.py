"""The DuckDB warehouse: schema of the data contract, serialized short connections, table I/O."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from filelock import FileLock
from pydantic import Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS sentences (
    sentence_id BIGINT NOT NULL, text VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, source VARCHAR NOT NULL,
    source_row INTEGER, label VARCHAR, ingested_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS id_watermarks (name VARCHAR PRIMARY KEY, last_id BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS ingested_files (
    source VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS embedding_cache (
    model_key VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, embedding FLOAT[] NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp, PRIMARY KEY (model_key, text_hash));
CREATE TABLE IF NOT EXISTS cluster_assignments (
    algorithm VARCHAR NOT NULL, sentence_id BIGINT NOT NULL, cluster_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS clustering_runs (
    algorithm VARCHAR NOT NULL, model_key VARCHAR NOT NULL, params JSON, details JSON,
    n_sentences INTEGER, n_clusters INTEGER, seconds DOUBLE, materialized_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS topic_summaries (
    algorithm VARCHAR NOT NULL, cluster_id INTEGER NOT NULL, size INTEGER NOT NULL, share DOUBLE,
    label VARCHAR, keywords VARCHAR[], representative_sentences VARCHAR[]);
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
"""

# (algorithm, reason) of every algorithm whose latest clustering could not run.
FAILED_FITS = ("SELECT algorithm, details->>'failed' FROM clustering_runs WHERE details->>'failed' IS NOT NULL "
               "ORDER BY algorithm")

# Tables holding one set of rows per algorithm; replaced per algorithm.
PER_ALGORITHM_TABLES = ("cluster_assignments", "topic_summaries", "clustering_runs", "topic_hierarchy")


def source_scope(partition: str | None, column: str = "source") -> tuple[str, list[Any]]:
    """A SQL condition and its parameters: the rows of one partition (a `source` file, or every file under a
    folder), or every row when None."""
    if partition is None:
        return "true", []
    return f"({column} = ? OR starts_with({column}, ? || '/'))", [partition, partition]


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

    def load_embeddings(self, model_key: str) -> tuple[pd.DataFrame, np.ndarray]:
        """Every sentence (sentence_id, text, label) of the cluster window in id order, and its embedding matrix
        for model_key."""
        window, params = self.window_scope()
        with self.get_connection() as conn:
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
            table = conn.sql(
                f"""SELECT s.sentence_id, s.text, s.label, c.embedding FROM sentences s JOIN embedding_cache c
                   ON c.text_hash = s.text_hash AND c.model_key = ? WHERE {window} ORDER BY s.sentence_id""",
                params=[model_key, *params],
            ).to_arrow_table()
            if self.cluster_window and not len(table):
                sources = [r[0] for r in conn.execute(
                    "SELECT DISTINCT source FROM sentences ORDER BY source LIMIT 5").fetchall()]
                raise LookupError(
                    f"CLUSTER_WINDOW '{self.cluster_window}' matches no file of the stored sentences (sources such "
                    f"as {sources}). Give a GLOB over sentences.source, or leave it empty for every sentence."
                )
        vectors = table.column("embedding").combine_chunks()
        matrix = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        matrix = matrix.reshape(len(table), -1) if len(table) else np.zeros((0, 0), dtype=np.float32)
        frame = table.drop_columns(["embedding"]).to_pandas()
        return frame, matrix

    def failed_fits(self) -> dict[str, str]:
        """Algorithm -> why its latest clustering could not run, for those whose latest run failed."""
        with self.get_connection() as conn:
            return dict(conn.execute(FAILED_FITS).fetchall())

    def failed_fit(self, algorithm: str) -> str | None:
        return self.failed_fits().get(algorithm)

    def assignments(self, algorithm: str) -> pd.DataFrame:
        return self.query(
            "SELECT sentence_id, cluster_id FROM cluster_assignments WHERE algorithm = ? ORDER BY sentence_id",
            [algorithm],
        )

    # --- writes --------------------------------------------------------------------------------------------

    def ingested_files(self) -> dict[str, str]:
        """The fingerprint of every input file as it was when its sentences were stored (source -> fingerprint)."""
        with self.get_connection() as conn:
            return dict(conn.execute("SELECT source, fingerprint FROM ingested_files").fetchall())

    def replace_sentences(self, frame: pd.DataFrame, source: str | None = None,
                          fingerprints: dict[str, str] | None = None) -> dict[str, int]:
        """Replace `sentences` (or only the rows of one `source` file) with `frame` (text, text_hash, source, row,
        label), and `ingested_files` with `fingerprints` (source -> fingerprint of the files read). A row already
        stored with the same source, row and text keeps its sentence_id and ingested_at; new rows get ids above
        every id stored before, so a removed sentence's id never comes back."""
        scope, scope_params = source_scope(source)
        incoming = pa.Table.from_pandas(
            frame[["text", "text_hash", "source", "row", "label"]].rename(columns={"row": "source_row"}),
            preserve_index=False,
        ).append_column("ordinal", pa.array(np.arange(len(frame), dtype=np.int64)))
        with self.transaction() as conn:
            conn.register("incoming", incoming)
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
                """INSERT INTO sentences
                   SELECT coalesce(old_id, ? + row_number() OVER (PARTITION BY old_id IS NULL ORDER BY ordinal)),
                          text, text_hash, source, source_row, label, coalesce(old_ingested_at, current_timestamp)
                   FROM matched ORDER BY ordinal""",
                [last_id],
            )
            conn.execute(f"DELETE FROM ingested_files WHERE {scope}", scope_params)
            if fingerprints:
                conn.executemany("INSERT INTO ingested_files VALUES (?, ?, current_timestamp)",
                                 sorted(fingerprints.items()))
            self._raise_id_watermark(conn)
            kept = conn.execute("SELECT count(old_id) FROM matched").fetchall()[0][0]
            conn.execute("DROP TABLE matched")
            conn.unregister("incoming")
        return {"rows": len(frame), "kept": int(kept), "new": len(frame) - int(kept), "removed": int(before - kept)}

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
            added = conn.execute(
                """INSERT INTO embedding_cache (model_key, text_hash, embedding)
                   SELECT ?, text_hash, embedding FROM read_parquet(?) ON CONFLICT DO NOTHING""",
                [model_key, [str(f) for f in files]],
            ).fetchall()[0][0]
        for path in files:
            path.unlink(missing_ok=True)
        return int(added)

    def replace_algorithm_rows(self, algorithm: str, tables: dict[str, pd.DataFrame]) -> None:
        """Replace `algorithm`'s rows in each named per-algorithm table, all in one transaction."""
        for name in tables:
            if name not in PER_ALGORITHM_TABLES:
                raise ValueError(f"'{name}' is not a per-algorithm table ({', '.join(PER_ALGORITHM_TABLES)})")
        with self.transaction() as conn:
            for name, frame in tables.items():
                conn.execute(f"DELETE FROM {name} WHERE algorithm = ?", [algorithm])  # name from the fixed list
                self._append(conn, name, frame.assign(algorithm=algorithm))

    def append_rows(self, table: str, frame: pd.DataFrame) -> None:
        if table not in ("clustering_metrics", "adapted_models"):
            raise ValueError(f"'{table}' is not an append-only table")
        with self.transaction() as conn:
            self._append(conn, table, frame)

    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        if table != "sentence_map":
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
            if frame[column].map(lambda v: isinstance(v, dict)).any():
                frame[column] = frame[column].map(lambda v: json.dumps(v, default=str))
        conn.register("frame_rows", frame)
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM frame_rows")
        conn.unregister("frame_rows")
