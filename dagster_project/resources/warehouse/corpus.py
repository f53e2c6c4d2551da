"""The corpus: `sentences` (ids that are never reused, ingestion in one transaction), `ingested_files`, the window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .adapter import parquet_files


INGEST_MEMORY = "300MB"  # ... while it stores sentences: its join and sort spill (2.7 GB at 3M rows without)


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


class CorpusStore:
    """Reads and writes of `sentences` and `ingested_files` (a part of `DuckDBWarehouse`)."""

    def window_ids(self) -> np.ndarray:
        """The sentence ids of the cluster window, sorted."""
        window, params = self.window_scope()
        return self.query(f"SELECT s.sentence_id FROM sentences s WHERE {window} ORDER BY 1",
                          params)["sentence_id"].to_numpy(np.int64)

    def window_sentences(self, column: str, ids: np.ndarray | None = None) -> pd.DataFrame:
        """sentence_id and one `column` of the window's sentences (those of `ids` only, when given), in id order."""
        window, params = self.window_scope()
        only = "" if ids is None else " AND s.sentence_id IN (SELECT sentence_id FROM wanted)"
        with self.vector_reads(ids) as conn:
            return conn.execute(f"SELECT s.sentence_id, s.{column} FROM sentences s WHERE {window}{only} ORDER BY 1",
                                params).df()

    def ingested_files(self) -> dict[str, str]:
        """The fingerprint of every input file as it was when its sentences were stored (source -> fingerprint)."""
        with self.get_connection() as conn:
            return dict(conn.execute("SELECT source, fingerprint FROM ingested_files").fetchall())

    def replace_sentences(self, frames: pd.DataFrame | Iterable[pd.DataFrame], source: str | None = None,
                          fingerprints: dict[str, str] | None = None) -> dict[str, int]:
        """Replace `sentences` (or only the rows of one `source` file) with `frames` (one frame, or parts of one read
        in turn: text, text_hash, source, row, label, optional timestamp: else the ingestion time), and
        `ingested_files` with `fingerprints` (source -> fingerprint of the files read). A row already stored with
        the same source and text (the n-th time the text occurs in its file, for a text said more than once) keeps
        its sentence_id and ingested_at, wherever lines were inserted or deleted around it; new rows get ids above
        every id stored before, so a removed sentence's id never comes back. The parts are read and staged beside
        the warehouse before the file is held (reading three million sentences held it 80 s), then stored in one
        transaction: an error while reading them writes nothing."""
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
        conn.execute(  # a sentence is its file and text; the same text twice in a file, told apart by its order
            """CREATE TEMP TABLE matched AS
               WITH i AS (SELECT *, row_number() OVER (PARTITION BY source, text_hash ORDER BY ordinal) AS occurrence
                          FROM incoming),
                    s AS (SELECT sentence_id, ingested_at, source, text_hash,
                                 row_number() OVER (PARTITION BY source, text_hash ORDER BY source_row, sentence_id)
                                     AS occurrence
                          FROM sentences WHERE source IN (SELECT DISTINCT source FROM incoming))
               SELECT i.* EXCLUDE (occurrence), s.sentence_id AS old_id, s.ingested_at AS old_ingested_at
               FROM i LEFT JOIN s USING (source, text_hash, occurrence)"""
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

    @staticmethod
    def _raise_id_watermark(conn: duckdb.DuckDBPyConnection) -> int:
        """The highest sentence_id ever given, kept in `id_watermarks` so that deleting the newest rows never
        lets their ids be given again; call it before deleting sentences and after adding them."""
        return conn.execute(
            """INSERT OR REPLACE INTO id_watermarks
               SELECT 'sentence_id', greatest(coalesce(max(sentence_id), 0), coalesce(
                   (SELECT last_id FROM id_watermarks WHERE name = 'sentence_id'), 0))
               FROM sentences RETURNING last_id""").fetchall()[0][0]
