"""Shared helpers of the benchmarks: labelled datasets and their cached embeddings."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from dagster_project.core.community import DEFAULT_BLOCK_BYTES, communities_from_neighbours, neighbour_lists
from dagster_project.core.text import normalize_text, text_hash
from dagster_project.resources import SentenceEmbedder

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("DATASETS_PATH", ROOT.parent / "shared" / "datasets"))
CACHE = Path(os.environ.get("BENCH_CACHE", ROOT / "data" / "bench_embeddings.duckdb"))


def dataset_names() -> list[str]:
    if not DATASETS.is_dir():
        raise SystemExit(f"{DATASETS} not found: the labelled datasets sit in ../shared/datasets beside the project")
    return sorted(p.name for p in DATASETS.iterdir() if (p / "data.csv").exists())


# Mixed corpora, as one folder of several sources would hold them: each sentence keeps its own label, prefixed by
# its dataset so that the labels of different datasets stay distinct.
MIXTURES = ("agnews8000+banking77+stackoverflow", "atis+clinc150+searchsnippets")


def load_dataset(name: str) -> pd.DataFrame:
    """Columns text (normalized), label; empty texts dropped. `name`: a dataset's folder, or folders joined by
    '+' (a mixture, see MIXTURES)."""
    if "+" in name:
        parts = [load_dataset(part) for part in name.split("+")]
        return pd.concat([frame.assign(label=part + "/" + frame["label"])
                          for part, frame in zip(name.split("+"), parts)], ignore_index=True)
    frame = pd.read_csv(DATASETS / name / "data.csv", keep_default_na=False, dtype=str)
    frame["text"] = frame["text"].map(normalize_text)
    return frame[frame["text"] != ""].reset_index(drop=True)


def embed(texts: list[str], embedder: SentenceEmbedder) -> np.ndarray:
    """Embeddings of `texts` in order, encoding only those not yet in the benchmark cache."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    key = embedder.model_key
    hashes = [text_hash(t) for t in texts]
    with duckdb.connect(str(CACHE)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS cache (model_key VARCHAR, text_hash VARCHAR, embedding FLOAT[], "
                     "PRIMARY KEY (model_key, text_hash))")
        wanted = pa.table({"i": pa.array(np.arange(len(hashes))), "text_hash": pa.array(hashes)})
        known = {h for (h,) in conn.execute(
            "SELECT c.text_hash FROM cache c JOIN wanted w USING (text_hash) WHERE c.model_key = ?", [key]).fetchall()}
        todo = list(dict.fromkeys(h for h in hashes if h not in known))
        if todo:
            text_of = dict(zip(hashes, texts))
            started = time.perf_counter()
            vectors = embedder.encode([text_of[h] for h in todo])
            print(f"  encoded {len(todo)} texts in {time.perf_counter() - started:.1f}s", flush=True)
            batch = pa.table({"text_hash": pa.array(todo), "embedding": pa.array(list(vectors))})
            conn.execute("INSERT INTO cache SELECT ?, text_hash, embedding FROM batch ON CONFLICT DO NOTHING", [key])
        table = conn.sql("SELECT w.i, c.embedding FROM wanted w JOIN cache c USING (text_hash) "
                         "WHERE c.model_key = ? ORDER BY w.i", params=[key]).to_arrow_table()
    distinct = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(table), -1)
    return np.ascontiguousarray(distinct, dtype=np.float32)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_corpus() -> pd.DataFrame:
    """Every dataset but clinc150 (contained in clinc150_with_oos), labels prefixed by the folder: 102,994 rows."""
    frames = []
    for name in dataset_names():
        if name == "clinc150":
            continue
        frame = load_dataset(name)
        frames.append(frame.assign(label=name + "/" + frame["label"]))
    return pd.concat(frames, ignore_index=True)


def median_seconds(function, repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return float(np.median(times)), result


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measured(function, *args):
    """Run function(*args) in a forked child: (result or the exception, seconds, peak MB above the child's start).
    The child sees the parent's memory (no copy of the data), and its peak is its own."""
    import os
    import pickle

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        start = _rss_mb()
        started = time.perf_counter()
        try:
            result = function(*args)
        except Exception as err:  # reported to the parent
            result = err
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - start
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump((result, seconds, max(peak, 0.0)), pipe)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError("benchmark child died (out of memory?)")
    return pickle.loads(payload)


def measured_or_raise(function, *args):
    """`measured`, raising the child's exception instead of returning it."""
    result, seconds, peak = measured(function, *args)
    if isinstance(result, Exception):
        raise result
    return result, seconds, peak


def embed_in_child(texts: list[str], embedder: SentenceEmbedder, tries: int = 30) -> np.ndarray:
    """`embed` in a forked child, so that this process never starts torch's OpenMP threads (a process that has
    cannot safely fork the children that measure each clustering); while another benchmark holds the cache's
    file, tried again every two seconds."""
    for attempt in range(tries):
        try:
            return measured_or_raise(embed, texts, embedder)[0]
        except duckdb.IOException as err:
            if "lock" not in str(err) or attempt == tries - 1:
                raise
            time.sleep(2)


def community_labels(embeddings: np.ndarray, threshold: float = 0.75, min_size: int = 10,
                     block_bytes: int = DEFAULT_BLOCK_BYTES, device: str = "cpu") -> np.ndarray:
    """Fast community detection as sentence-transformers' `util.community_detection` defines it, with its
    parameters, from the product's own parts: a label per row, communities numbered largest first, -1 for rows in
    none (`embeddings`: L2-normalized float32)."""
    if len(embeddings) == 0 or len(embeddings) < min_size:
        return np.full(len(embeddings), -1, dtype=np.int64)
    return communities_from_neighbours(*neighbour_lists(embeddings, threshold, block_bytes, device), min_size)[0]
