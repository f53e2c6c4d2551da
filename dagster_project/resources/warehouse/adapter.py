"""The DuckDB file itself: short connections under an inter-process lock, retries, the schema created once per
process, transactions, staging folders beside the file, and the generic table writes every store uses."""

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
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_dataset
from dagster_duckdb import DuckDBResource
from filelock import FileLock
from pydantic import Field

from .schema import SCHEMA

SCHEMA_READY: set[str] = set()  # warehouse files whose schema this process has created (or found) already


def sql_string(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


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


class WarehouseAdapter(DuckDBResource):
    """The DuckDB file: one short connection at a time under `<database>.lock`.

    DuckDB allows one writing process. Every connection here is short and taken under an inter-process file
    lock, so parallel Dagster steps compute in parallel and touch the file one at a time; a lock held by an
    outside process (a DuckDB shell, say) is retried with backoff. The schema is created on the first connection
    of a process to a file (and whenever the file is new), not on every one."""

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
            key = str(path.resolve())
            known = key in SCHEMA_READY and path.exists()
            conn = self._connect(str(path))
            try:
                conn.execute("SET TimeZone = 'UTC'")  # current_timestamp stored as UTC, as the input's times are
                if not known:
                    conn.execute(SCHEMA)
                    SCHEMA_READY.add(key)
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

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self.get_connection() as conn:
            return conn.execute(sql, params or []).df()

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

    def append_rows(self, table: str, frame: pd.DataFrame) -> None:
        if table not in ("clustering_metrics", "adapted_models"):
            raise ValueError(f"'{table}' is not an append-only table")
        with self.transaction() as conn:
            self._append(conn, table, frame)

    def replace_table(self, table: str, frame: pd.DataFrame) -> None:
        if table not in ("sentence_map", "recommended", "near_duplicates"):
            raise ValueError(f"'{table}' is not a whole-table replacement target")
        with self.transaction() as conn:
            conn.execute(f"DELETE FROM {table}")
            self._append(conn, table, frame)

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
