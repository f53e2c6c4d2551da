"""The embedding step: raw SentenceTransformer.encode vs the `sentence_embeddings` asset, warm re-runs, CPU backends.

    python benchmarks/embeddings.py [--sentences 4000] [--repeats 3] [--quality-dataset stackoverflow]
    python benchmarks/embeddings.py --million [--backend onnx-int8] [--keep data/bench_million.duckdb]

One run, the same sentences (a seeded sample of every dataset in ../shared/datasets), the bundled
all-MiniLM-L6-v2 on the CPU; medians of `repeats`, measured in turn so that load noise hits all alike:
- raw `SentenceTransformer.encode` throughput; the asset's cold throughput (its own encode + commit
  loop, and the whole Dagster run) and its ratio to raw;
- a warm re-run after adding 1% new sentences, as a fraction of cold, and the fixed cost of a re-run
  with nothing new;
- each CPU backend's speed-up over torch fp32, and its quality: Spearman correlation of the cosine
  similarities of 2,000 random pairs, and NMI of k-means (k = number of labels) on a labeled dataset.
`--million`: 1,000,000 distinct sentences (the datasets, each with numbered variants) through
`sentences` and `sentence_embeddings` in a child process: time and its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import load_dataset, scale_corpus  # noqa: E402
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder  # noqa: E402

BACKENDS = ["onnx", "onnx-int8", "openvino"]


def materialize(folder: Path, db: Path, embedder: SentenceEmbedder) -> tuple[float, dict]:
    """Wall seconds of a real run of `sentences` and `sentence_embeddings`, and the embedding asset's metadata."""
    import dagster as dg

    from dagster_project.assets.embeddings import build_embedding_assets
    from dagster_project.assets.sentences import build_sentences

    os.environ["SENTENCES_PATH"] = str(folder)
    started = time.perf_counter()
    result = dg.materialize([build_sentences(None), *build_embedding_assets(None, "local")],
                            resources={"warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder},
                            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    seconds = time.perf_counter() - started
    metadata = result.asset_materializations_for_node("sentence_embeddings")[0].metadata
    return seconds, {key: value.value for key, value in metadata.items()}


def write_corpus(folder: Path, texts: list[str], name: str = "corpus.csv") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts}).to_csv(folder / name, index=False)


def asset_runs(texts: list[str], extra: list[str], embedder: SentenceEmbedder, work: Path) -> dict:
    """One cold run, a re-run with nothing new, and a re-run after adding `extra`."""
    folder, db = work / "corpus", work / "warehouse.duckdb"
    write_corpus(folder, texts)
    cold_wall, cold = materialize(folder, db, embedder)
    unchanged_wall, _ = materialize(folder, db, embedder)
    write_corpus(folder, extra, "added.csv")
    warm_wall, warm = materialize(folder, db, embedder)
    assert cold["new_texts"] == len(set(texts)) and warm["new_texts"] == len(set(extra) - set(texts)), (cold, warm)
    return {"cold_wall": cold_wall, "cold_asset": cold["seconds"], "load": cold["model_load_seconds"],
            "unchanged_wall": unchanged_wall,
            "warm_wall": warm_wall, "warm_asset": warm["seconds"]}


def pair_spearman(vectors: np.ndarray, reference: np.ndarray, pairs: int = 2000) -> float:
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(vectors), pairs), rng.integers(0, len(vectors), pairs)
    return float(spearmanr(np.sum(vectors[i] * vectors[j], 1), np.sum(reference[i] * reference[j], 1)).statistic)


def kmeans_nmi(vectors: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    k = len(np.unique(labels))
    return float(normalized_mutual_info_score(labels, KMeans(k, n_init=3, random_state=0).fit_predict(vectors)))


def main_comparison(args) -> None:
    rng = np.random.default_rng(0)
    corpus = scale_corpus().drop_duplicates("text")
    chosen = corpus.iloc[rng.permutation(len(corpus))[: args.sentences + args.sentences // 100]]
    texts, extra = chosen["text"].iloc[: args.sentences].tolist(), chosen["text"].iloc[args.sentences :].tolist()
    labeled = load_dataset(args.quality_dataset)
    labeled = labeled.iloc[rng.permutation(len(labeled))[: args.quality_sentences]]
    quality_texts, labels = labeled["text"].tolist(), labeled["label"].to_numpy()

    torch_embedder = SentenceEmbedder(device="cpu")
    model = torch_embedder.load()
    batch = torch_embedder.effective_batch_size
    engines = {name: SentenceEmbedder(device="cpu", backend=name, export_dir=args.export_dir) for name in BACKENDS}
    for engine in engines.values():
        engine.encode(["warm up: export once, load, first call"])
    print(f"{len(texts)} sentences (mean {np.mean([len(t.split()) for t in texts]):.1f} words), batch {batch}, "
          f"{os.cpu_count()} cpus; medians of {args.repeats}", flush=True)

    times: dict[str, list[float]] = {}
    runs = []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        times.setdefault("raw", []).append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as work:
            runs.append(asset_runs(texts, extra, torch_embedder, Path(work)))
        for name, engine in engines.items():
            started = time.perf_counter()
            engine.encode(texts)
            times.setdefault(name, []).append(time.perf_counter() - started)
        print(f"  repeat {repeat + 1}: raw {times['raw'][-1]:.1f}s, asset cold {runs[-1]['cold_asset']:.1f}s", flush=True)

    median = {name: float(np.median(values)) for name, values in times.items()}
    run = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
    n = len(texts)
    print("\n| measure | value |\n|---|---|")
    print(f"| raw `SentenceTransformer.encode` | {n / median['raw']:.0f} sentences/s |")
    print(f"| asset cold, encode + commit loop | {n / run['cold_asset']:.0f} sentences/s, "
          f"**{median['raw'] / run['cold_asset']:.2f}x raw** |")
    print(f"| model load before the first chunk (fixed, apart) | {run['load']:.1f} s |")
    print(f"| asset cold, whole Dagster run (sentences + embeddings) | {run['cold_wall']:.1f} s, "
          f"{n / run['cold_wall']:.0f} sentences/s, {median['raw'] / run['cold_wall']:.2f}x raw |")
    print(f"| re-run, nothing new (fixed cost) | {run['unchanged_wall']:.1f} s |")
    print(f"| warm re-run, +1% ({len(extra)}) new | {run['warm_wall']:.1f} s = "
          f"**{run['warm_wall'] / run['cold_wall']:.1%} of cold**; above the fixed cost "
          f"{max(run['warm_wall'] - run['unchanged_wall'], 0) / run['cold_wall']:.1%} |")

    reference = torch_embedder.encode(quality_texts)
    print(f"\nBackends on the same {n} sentences; quality on {len(quality_texts)} sentences of "
          f"{args.quality_dataset} ({len(np.unique(labels))} labels)\n")
    print("| backend | sentences/s | speed-up vs torch fp32 | Spearman (2,000 pairs) | k-means NMI |")
    print("|---|---|---|---|---|")
    print(f"| torch fp32 | {n / median['raw']:.0f} | 1.00 | 1.0000 | {kmeans_nmi(reference, labels):.4f} |")
    for name, engine in engines.items():
        vectors = engine.encode(quality_texts)
        print(f"| {name} ({engine.precision}) | {n / median[name]:.0f} | {median['raw'] / median[name]:.2f} | "
              f"{pair_spearman(vectors, reference):.4f} | {kmeans_nmi(vectors, labels):.4f} |", flush=True)


def million_texts(total: int) -> list[str]:
    """`total` distinct sentences: every dataset sentence, then numbered variants of them."""
    base = scale_corpus().drop_duplicates("text")["text"].tolist()
    texts, round_ = list(base), 1
    while len(texts) < total:
        texts.extend(f"{text} (variant {round_})" for text in base[: total - len(texts)])
        round_ += 1
    return texts[:total]


def main_million(args) -> None:
    """The warehouse stays in data/ (--keep): its vectors feed `benchmarks/scale.py --million`."""
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "corpus"
        db = Path(args.keep) if args.keep else Path(work) / "warehouse.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        write_corpus(folder, million_texts(args.total))
        print(f"{args.total} sentences, backend {args.backend}, chunk 4096, batch default", flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", str(folder), str(db), "--backend", args.backend,
                        "--export-dir", args.export_dir], check=True)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = db.stat().st_size / 2**30
    print("| sentences | backend | seconds | sentences/s | peak RSS | DuckDB file |\n|---|---|---|---|---|---|")
    print(f"| {args.total:,} | {args.backend} | {seconds:.0f} | {args.total / seconds:.0f} | "
          f"{peak / 1024:.2f} GB | {size:.2f} GB |")


def main_child(args) -> None:
    embedder = SentenceEmbedder(device="cpu", backend=args.backend, export_dir=args.export_dir)
    seconds, metadata = materialize(Path(args.child[0]), Path(args.child[1]), embedder)
    print(f"  run {seconds:.0f}s, embedded {metadata['new_texts']} at {metadata['sentences_per_second']}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality-dataset", default="stackoverflow")
    parser.add_argument("--quality-sentences", type=int, default=5000)
    parser.add_argument("--export-dir", default="data/models")
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--keep", default="data/bench_million.duckdb", help="--million: where the warehouse stays")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child:
        main_child(args)
    elif args.million:
        main_million(args)
    else:
        main_comparison(args)


if __name__ == "__main__":
    main()
