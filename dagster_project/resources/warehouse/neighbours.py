"""The neighbour lists (`sentence_neighbors`) and the 2-D map (`sentence_map`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .adapter import parquet_files
from .vectors import VECTOR_READ_MEMORY


class NeighbourStore:
    """Reads and writes of `sentence_neighbors` and `sentence_map` (a part of `DuckDBWarehouse`)."""

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
