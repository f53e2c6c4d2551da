"""Static embeddings against the transformer they are distilled from: what EMBEDDING_BACKEND=static costs in
quality and gives in speed, on every labelled dataset and the mixtures.

    python benchmarks/static.py [--datasets atis ...] [--speed-sentences 2000]

In one run:
- the distillation from the bundled all-MiniLM-L6-v2 into a fresh folder (seconds);
- encode throughput of torch fp32, ONNX fp32, ONNX int8 and static on the same sentences (a mixture of every
  dataset, `--speed-sentences` of them; static also on 50 times as many, for a steadier figure), each as a ratio
  to torch;
- per dataset: the clusterings the scheduled refresh runs, with their defaults, on both kinds of vectors; the NMI
  against the labels of the recommended one (`core.recommend`, chosen without labels as the `recommended` asset
  does) and of k-means choosing its own k, static over transformer; and recall@10 of the nearest-neighbour table
  (the share of each sentence's 10 exact nearest neighbours under the transformer that static also finds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import MIXTURES, dataset_names, embed, load_dataset  # noqa: E402
from benchmarks.quality import cluster  # noqa: E402
from dagster_project.core.clustering import SCHEDULED  # noqa: E402
from dagster_project.core.recommend import recommend  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

SPEED_BACKENDS = ("torch", "onnx", "onnx-int8", "static")


def nearest(x: np.ndarray, k: int, block: int = 2048) -> np.ndarray:
    """Each row's k exact nearest other rows by cosine (unit vectors), in blocks."""
    out = np.empty((len(x), k), dtype=np.int64)
    for start in range(0, len(x), block):
        similarity = x[start:start + block] @ x.T
        similarity[np.arange(len(similarity)), np.arange(start, start + len(similarity))] = -np.inf
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        out[start:start + block] = top
    return out


def recall_at(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    ref, cand = nearest(reference, k), nearest(candidate, k)
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(ref, cand)]))


def throughput(texts: list[str], static_cache: str) -> pd.DataFrame:
    """Sentences per second of each backend on `texts` (median of three after a warm-up), and of static on 50x."""
    rows = []
    for backend in SPEED_BACKENDS:
        embedder = SentenceEmbedder(device="cpu", backend=backend, static_cache_dir=static_cache)
        embedder.prepare()
        embedder.encode(texts[:64])
        repeats = 3 if backend != "torch" else 1
        seconds = np.median([timed(embedder.encode, texts) for _ in range(repeats)])
        rows.append({"backend": backend, "sentences": len(texts), "sentences/s": len(texts) / seconds})
        if backend == "static":
            many = texts * 50
            seconds = np.median([timed(embedder.encode, many) for _ in range(3)])
            rows.append({"backend": "static", "sentences": len(many), "sentences/s": len(many) / seconds})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table["x torch"] = table["sentences/s"] / table.loc[table["backend"] == "torch", "sentences/s"].iloc[0]
    return table


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def quality(dataset: str, transformer: SentenceEmbedder, static: SentenceEmbedder) -> dict:
    frame = load_dataset(dataset)
    texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
    row: dict = {"dataset": dataset, "sentences": len(texts)}
    picks = {}
    for kind, embedder in (("transformer", transformer), ("static", static)):
        x = embed(texts, embedder)
        partitions = {name: cluster(x, name, None)[0] for name in SCHEDULED}
        pick, _, _ = recommend(partitions)
        picks[kind] = x
        row[f"{kind} pick"] = pick
        row[f"{kind} NMI"] = normalized_mutual_info_score(truth, partitions[pick])
        row[f"{kind} k-means NMI"] = normalized_mutual_info_score(truth, partitions["kmeans"])
    row["recommended ratio"] = row["static NMI"] / row["transformer NMI"]
    row["k-means ratio"] = row["static k-means NMI"] / row["transformer k-means NMI"]
    row["recall@10"] = recall_at(picks["transformer"], picks["static"])
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every dataset and the mixtures")
    parser.add_argument("--speed-sentences", type=int, default=2000)
    args = parser.parse_args()
    datasets = args.datasets or [*dataset_names(), *MIXTURES]

    with tempfile.TemporaryDirectory() as fresh:
        started = time.perf_counter()
        SentenceEmbedder(backend="static", static_cache_dir=fresh).prepare()
        print(f"distilled from the bundled all-MiniLM-L6-v2 in {time.perf_counter() - started:.1f} s", flush=True)

    mixed = pd.concat([load_dataset(name) for name in dataset_names()]).sample(
        args.speed_sentences, random_state=0)["text"].tolist()
    speed = throughput(mixed, SentenceEmbedder().static_cache_dir)

    transformer, static = SentenceEmbedder(device="cpu"), SentenceEmbedder(backend="static")
    table = pd.DataFrame([quality(name, transformer, static) for name in datasets])
    print(speed.to_markdown(index=False, floatfmt=".1f"))
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print(f"\nrecommended NMI static / transformer: median {table['recommended ratio'].median():.3f}, worst "
          f"{table['recommended ratio'].min():.3f} ({table.loc[table['recommended ratio'].idxmin(), 'dataset']}); "
          f"k-means median {table['k-means ratio'].median():.3f}; recall@10 median {table['recall@10'].median():.3f}")


if __name__ == "__main__":
    main()
