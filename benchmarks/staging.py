"""What it costs to keep long work outside the warehouse's file lock, against holding the file throughout.

    python benchmarks/staging.py [--sentences 1000000] [--repeats 3]

A warehouse of N sentences with 384-dimensional vectors (random: the contents do not matter to I/O) and their
10-neighbour lists. Each measurement runs in a forked child (seconds, peak RSS above its start), `--repeats` times,
the median printed:

- vectors, baseline: one query streamed a chunk at a time while the file is held (the read before staging);
  staged: `embedding_chunks` (one read copied into an Arrow file beside the warehouse, then chunks read from it).
  The file is held for the whole pass in the baseline and until the first chunk arrives when staged.
- neighbour lists, baseline: 100,000-sentence chunks appended inside the one transaction (the file held while
  the chunks are made); staged: `replace_neighbours` (chunks written as Parquet first, then one transaction).
  Here the chunks come ready-made, so the held time is the write alone; in the asset each chunk is a search.
- sentences: the corpus ingested again (100,000 rows a part, staged, then one transaction), DuckDB's buffer pool
  at its default (80% of RAM, the baseline) and bounded (`INGEST_MEMORY`); held: the transaction.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, measured_or_raise  # noqa: E402
from dagster_project.core.text import text_hash  # noqa: E402
from dagster_project.resources import DuckDBWarehouse  # noqa: E402
from dagster_project.resources import warehouse as warehouse_module  # noqa: E402
from dagster_project.resources.warehouse import EMBEDDING_CHUNK, VECTOR_READ_MEMORY, vectors_sql  # noqa: E402

MODEL = "bench-model"
DIMENSIONS = 384
K = 10


def sentence_parts(n: int):
    """The corpus as ingestion reads it: parts of 100,000 rows."""
    for start in range(0, n, 100_000):
        texts = [f"sentence number {i}" for i in range(start, min(n, start + 100_000))]
        yield pd.DataFrame({"text": texts, "text_hash": [text_hash(t) for t in texts], "source": "bench.txt",
                            "row": np.arange(start + 1, start + len(texts) + 1), "label": None})


def build(warehouse: DuckDBWarehouse, n: int) -> None:
    rng = np.random.default_rng(0)
    hashes = [text_hash(f"sentence number {i}") for i in range(n)]
    warehouse.replace_sentences(sentence_parts(n))
    for start in range(0, n, EMBEDDING_CHUNK):
        vectors = rng.normal(size=(min(EMBEDDING_CHUNK, n - start), DIMENSIONS)).astype(np.float32)
        warehouse.insert_embeddings(MODEL, hashes[start:start + EMBEDDING_CHUNK], vectors)


def streamed_in_lock(warehouse: DuckDBWarehouse) -> tuple[int, float]:
    started, rows = time.perf_counter(), 0
    with warehouse.vector_reads() as conn:
        for batch in conn.execute(vectors_sql(MODEL, "true", "s.sentence_id, c.embedding")).to_arrow_reader(
                EMBEDDING_CHUNK):
            rows += len(batch.column("embedding").flatten().to_numpy(zero_copy_only=False)) // DIMENSIONS
    return rows, time.perf_counter() - started


def staged_read(warehouse: DuckDBWarehouse) -> tuple[int, float]:
    started, rows, held = time.perf_counter(), 0, None
    for ids, _ in warehouse.embedding_chunks(MODEL):
        held = held if held is not None else time.perf_counter() - started
        rows += len(ids)
    return rows, held


def neighbour_chunks(n: int):
    rng = np.random.default_rng(1)
    for start in range(0, n, EMBEDDING_CHUNK):
        ids = np.arange(start + 1, min(start + EMBEDDING_CHUNK, n) + 1, dtype=np.int64)
        yield pd.DataFrame({"sentence_id": np.repeat(ids, K), "neighbor_id": rng.integers(1, n + 1, len(ids) * K),
                            "similarity": rng.random(len(ids) * K).astype(np.float32)})


def lists_in_lock(warehouse: DuckDBWarehouse, n: int) -> tuple[int, float]:
    started = time.perf_counter()
    with warehouse.transaction() as conn:
        conn.execute(f"SET memory_limit = '{VECTOR_READ_MEMORY}'")
        conn.execute("DELETE FROM sentence_neighbors")
        for rows in neighbour_chunks(n):
            warehouse._append(conn, "sentence_neighbors", rows.assign(model_key=MODEL))
    return n, time.perf_counter() - started


class TimedWarehouse(DuckDBWarehouse):
    """The warehouse, noting how long each transaction holds the file."""

    @contextmanager
    def transaction(self):
        started = time.perf_counter()
        with super().transaction() as conn:
            yield conn
        HELD.append(time.perf_counter() - started)


HELD: list[float] = []


def lists_staged(warehouse: DuckDBWarehouse, n: int) -> tuple[int, float]:
    timed = TimedWarehouse(database=warehouse.database)
    timed.replace_neighbours(MODEL, ((np.zeros(0, np.int64) if i else np.arange(1, n + 1), rows)
                                     for i, rows in enumerate(neighbour_chunks(n))))
    return n, HELD[-1]


def sentences_stored(warehouse: DuckDBWarehouse, n: int, memory: str | None) -> tuple[int, float]:
    """The corpus ingested again (every row kept), DuckDB's buffer pool at `memory` (None: its default)."""
    warehouse_module.INGEST_MEMORY = memory  # this child's only
    TimedWarehouse(database=warehouse.database).replace_sentences(sentence_parts(n))
    return n, HELD[-1]


def median_of(repeats: int, function, *args) -> tuple[float, float, float]:
    """Median (seconds, seconds the file was held, peak MB) of `repeats` runs, each in a forked child."""
    runs = [measured_or_raise(function, *args) for _ in range(repeats)]
    return (float(np.median([r[1] for r in runs])), float(np.median([r[0][1] for r in runs])),
            float(np.median([r[2] for r in runs])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    (ROOT / "data").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOT / "data") as folder:
        warehouse = DuckDBWarehouse(database=str(Path(folder) / "staging.duckdb"))
        started = time.perf_counter()
        build(warehouse, args.sentences)
        lists_in_lock(warehouse, args.sentences)
        print(f"{args.sentences:,} sentences, {DIMENSIONS} dimensions, built in {time.perf_counter() - started:.0f} s;"
              f" median of {args.repeats}")
        print(f"{'step':<16}{'way':<22}{'seconds':>9}{'file held s':>13}{'peak MB':>9}{'x baseline s':>14}"
              f"{'x held':>8}{'x peak':>8}")
        for step, baseline, staged in (
                ("sentences", (sentences_stored, warehouse, args.sentences, None),
                 (sentences_stored, warehouse, args.sentences, warehouse_module.INGEST_MEMORY)),
                ("vectors", (streamed_in_lock, warehouse), (staged_read, warehouse)),
                ("neighbour lists", (lists_in_lock, warehouse, args.sentences),
                 (lists_staged, warehouse, args.sentences))):
            base = median_of(args.repeats, *baseline)
            new = median_of(args.repeats, *staged)
            ways = ("default pool", "bounded pool") if step == "sentences" else ("file held (baseline)", "staged")
            for way, (seconds, held, peak) in zip(ways, (base, new)):
                print(f"{step:<16}{way:<22}{seconds:>9.1f}{held:>13.1f}{peak:>9.0f}{seconds / base[0]:>14.2f}"
                      f"{held / base[1]:>8.2f}{peak / max(base[2], 1):>8.2f}")


if __name__ == "__main__":
    main()
