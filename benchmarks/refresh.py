"""The scheduled refresh at scale: what `refresh_everything` (the daily schedule's job) does, as `make run` runs it
(every step in its own process, in parallel), on N sentences whose embeddings are cached, or (`--embed BACKEND`)
from raw text, the embedding step included.

    python benchmarks/refresh.py [--sentences 1000000] [--then 10000] [--keep data/bench_refresh] [--select ...]
                                 [--embed static]

Sentences: the labelled datasets' sentences, then numbered variants of them (as `benchmarks/embeddings.py
--million` writes them), in one CSV file. Their vectors are put in the warehouse's embedding cache beforehand, so
the run embeds nothing and measures everything after embedding: the datasets' sentences get their real
all-MiniLM-L6-v2 vectors, each variant its sentence's vector plus Gaussian noise (cosine ~0.97 to it, as
`benchmarks/scale.py` simulates them). Then `--then` more sentences arrive (a second file, vectors cached as well)
and the refresh runs again, as the next day's would. Prints, per run, seconds per step (from the run's own step
events) with each step's peak RSS, the run's wall seconds, and the peak RSS of its largest process and of all
its processes together, sampled every half second. `--select`: other assets than the schedule's (a Dagster
selection, with their upstream: `+key:louvain_clusters`); `--then 0`: no second run; `--resume`: on the
warehouse the last run left rather than a fresh copy of the prepared one. `--embed BACKEND`: nothing is cached
beforehand; the job embeds every sentence (each variant is embedded as the text it is) with EMBEDDING_BACKEND set
to BACKEND (`torch`, `onnx-int8`, `static`, ...), and the second run embeds the new sentences.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, embed_in_child, scale_corpus  # noqa: E402
from benchmarks.embeddings import million_texts  # noqa: E402
from dagster_project.core.text import normalize_text, text_hash  # noqa: E402
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder  # noqa: E402

SELECTION = "not group:adaptation and not group:on_demand"  # what `make run` and the schedule's job run


def vectors_for(texts: list[str], base_texts: list[str], base: np.ndarray, seed: int = 0) -> np.ndarray:
    """The real vector of each dataset sentence; for its numbered variants, that vector plus noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(texts), base.shape[1]), dtype=np.float32)
    out[:len(base_texts)] = base[:len(texts)]
    for start in range(len(base_texts), len(texts), len(base_texts)):
        block = base[:min(len(base_texts), len(texts) - start)]
        noisy = block + rng.standard_normal(block.shape, dtype=np.float32) * (0.25 / np.sqrt(base.shape[1]))
        out[start:start + len(block)] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def base_vectors(path: Path, base_texts: list[str], embedder: SentenceEmbedder) -> np.ndarray:
    """The datasets' real vectors, embedded once for every size prepared in the same --keep folder."""
    if path.exists() and len(vectors := np.load(path)) == len(base_texts):
        return vectors
    vectors = embed_in_child(base_texts, embedder)
    np.save(path, vectors)
    return vectors


def prepare(work: Path, total: int, then: int, embedder: SentenceEmbedder | None) -> tuple[Path, Path, list[str]]:
    """The corpus folder (the first `total` sentences), a warehouse whose embedding cache already holds every
    sentence's vector (`embedder`'s), or nothing when `embedder` is None, and the `then` sentences that arrive
    next."""
    corpus, db = work / "corpus", work / "warehouse.duckdb"
    base_texts = scale_corpus().drop_duplicates("text")["text"].tolist()
    texts = million_texts(total + then)
    if db.exists():
        return corpus, db, texts[total:]
    if embedder is None:
        corpus.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"text": texts[:total]}).to_csv(corpus / "sentences.csv", index=False)
        DuckDBWarehouse(database=str(db)).query("SELECT 1")  # the schema, nothing cached
        return corpus, db, texts[total:]
    base = base_vectors(work.parent / "base_vectors.npy", base_texts, embedder)
    vectors = vectors_for(texts, base_texts, base)
    corpus.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts[:total]}).to_csv(corpus / "sentences.csv", index=False)
    DuckDBWarehouse(database=str(db)).query("SELECT 1")  # the schema
    hashes = [text_hash(normalize_text(t)) for t in texts]
    with duckdb.connect(str(db)) as conn:
        for start in range(0, len(texts), 100_000):
            conn.register("batch", pa.table({
                "text_hash": hashes[start:start + 100_000],
                "embedding": pa.array(list(vectors[start:start + 100_000]), pa.list_(pa.float32()))}))
            conn.execute("INSERT INTO embedding_cache (model_key, text_hash, embedding) SELECT ?, text_hash, "
                         "embedding FROM batch ON CONFLICT DO NOTHING", [embedder.model_key])
    return corpus, db, texts[total:]


def step_seconds(home: Path) -> pd.DataFrame:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    run = instance.get_runs(limit=1)[0]
    stats = instance.get_run_step_stats(run.run_id)
    return pd.DataFrame([{"step": s.step_key, "seconds": s.end_time - s.start_time, "status": s.status.value,
                          "start": s.start_time, "end": s.end_time}
                         for s in stats if s.end_time]).sort_values("seconds", ascending=False)


def watch_memory(run: subprocess.Popen, every: float = 0.5) -> tuple[pd.DataFrame, float]:
    """Until `run` ends, sample the RSS of every process under it: each process's start time and peak RSS in GB,
    and the peak of their sum."""
    import psutil

    peaks: dict[int, tuple[float, float, float, int]] = {}
    total = 0.0
    root = psutil.Process(run.pid)
    while run.poll() is None:
        now = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                rss = process.memory_info().rss / 2**30
                peaks[process.pid] = (process.create_time(), time.time(),
                                      max(rss, peaks.get(process.pid, (0, 0, 0))[2]), process.ppid())
                now += rss
            except psutil.Error:  # ended between the listing and the reading
                pass
        total = max(total, now)
        time.sleep(every)
    return pd.DataFrame([(pid, *value) for pid, value in peaks.items()],
                        columns=["pid", "created", "last_seen", "peak_gb", "parent"]), total


def step_memory(steps: pd.DataFrame, processes: pd.DataFrame, every: float = 0.5) -> pd.Series:
    """Each step's peak RSS: of the step processes (forked by the executor's fork server, the parent of most of
    them) alive through the whole step, the one started last before it; unknown for a step shorter than a
    sample."""
    processes = processes[processes["parent"] == processes["parent"].mode().iloc[0]].sort_values("created")
    peaks = {}
    for step in steps.itertuples():
        alive = processes[(processes["created"] <= step.start) & (processes["last_seen"] >= step.end - every)]
        peaks[step.step] = alive["peak_gb"].iloc[-1] if len(alive) and step.seconds > every else float("nan")
    return steps["step"].map(peaks)


def refresh(corpus: Path, db: Path, home: Path, selection: str = SELECTION,
            backend: str = "torch") -> tuple[float, tuple[pd.DataFrame, float], pd.DataFrame]:
    """One run of the schedule's assets (or `selection`), in a child process: (wall seconds, its memory as
    `watch_memory` saw it, seconds per step)."""
    home.mkdir()
    env = {**os.environ, "SENTENCES_PATH": str(corpus), "DUCKDB_PATH": str(db), "DAGSTER_HOME": str(home),
           "EMBEDDING_DEVICE": "cpu", "EMBEDDING_BACKEND": backend}
    started = time.perf_counter()
    with subprocess.Popen([sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
                           "--select", selection], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as run:
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(run.stdout), daemon=True)
        reader.start()
        memory = watch_memory(run)
        reader.join()
    seconds = time.perf_counter() - started
    if run.returncode:
        print("".join(output)[-6000:])
        raise SystemExit(f"the run failed after {seconds:.0f} s")
    return seconds, memory, step_seconds(home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--then", type=int, default=10_000, help="sentences that arrive before the second run")
    parser.add_argument("--keep", default=str(ROOT / "data" / "bench_refresh"),
                        help="folder of the corpus, warehouse and Dagster home (kept, reused if there)")
    parser.add_argument("--select", default=SELECTION, help="the assets to run (a Dagster asset selection)")
    parser.add_argument("--resume", action="store_true", help="run on the warehouse the last run left")
    parser.add_argument("--embed", default=None, metavar="BACKEND",
                        help="embed every sentence in the run with this EMBEDDING_BACKEND (nothing cached before)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.keep) / (f"{args.sentences}-raw" if args.embed else str(args.sentences))
    work.mkdir(parents=True, exist_ok=True)
    corpus, prepared, arriving = prepare(work, args.sentences, args.then,
                                         None if args.embed else SentenceEmbedder(device="cpu"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    db = work / f"run-{stamp}.duckdb"  # every run of the benchmark starts from the prepared warehouse
    if args.resume:  # or from where its last run left it
        db = sorted(work.glob("run-*.duckdb"))[-1]
    else:
        shutil.copy(prepared, db)
    (corpus / "arriving.csv").unlink(missing_ok=True)
    what = f"from raw text, EMBEDDING_BACKEND={args.embed}" if args.embed else "after embedding"
    print(f"# refresh {what}: {args.sentences:,} sentences, then {args.then:,} more; "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; {args.select}\n", flush=True)
    days = [f"{args.sentences:,} sentences", *([f"{args.then:,} arrive"] if args.then else [])]
    for day, label in enumerate(days):
        if day:
            pd.DataFrame({"text": arriving}).to_csv(corpus / "arriving.csv", index=False)
        seconds, (processes, total), steps = refresh(corpus, db, work / f"dagster-{stamp}-{day}", args.select,
                                                     args.embed or "torch")
        steps["peak RSS GB"] = step_memory(steps, processes)
        print(f"## run {day + 1}: {label}\n")
        print(steps.drop(columns=["start", "end"]).round(2).to_markdown(index=False))
        print(f"\nwhole run: {seconds:.0f} s wall; largest process's peak RSS {processes['peak_gb'].max():.2f} GB; "
              f"all its processes together {total:.2f} GB at most\n", flush=True)


if __name__ == "__main__":
    main()
