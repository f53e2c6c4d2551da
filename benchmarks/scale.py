"""Time and peak memory of every algorithm at 100,000 sentences, and of the scalable ones at 1,000,000.

    python benchmarks/scale.py [--sizes 100000 1000000] [--algorithms ...]

100k: the real all-MiniLM-L6-v2 embeddings of the labelled datasets (102,994 sentences, sampled to the size).
1M: numbered variants of those sentences, simulated in embedding space: each real vector plus small Gaussian
noise (cosine to its original ~0.97), renormalized. Each clustering runs in a forked child; peak memory is that
child's RSS above its start (the embedding matrix itself is shared, not counted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import embed_in_child, measured, scale_corpus  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, run_clustering  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

PER_SIZE = {
    100_000: [name for name in ALGORITHMS if name != "agglomerative"],
    1_000_000: ["minibatch_kmeans", "community_detection"],
}


def corpus_of(x: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if size <= len(x):
        return x[np.sort(rng.choice(len(x), size, replace=False))]
    out = np.empty((size, x.shape[1]), dtype=np.float32)
    for start in range(0, size, len(x)):
        block = x[: min(len(x), size - start)]
        noisy = block + rng.standard_normal(block.shape, dtype=np.float32) * (0.25 / np.sqrt(x.shape[1]))
        out[start : start + len(block)] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def summary(labels: np.ndarray) -> str:
    return f"{len(set(labels.tolist()) - {-1})} clusters, {(labels < 0).mean():.1%} noise"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=sorted(PER_SIZE))
    parser.add_argument("--algorithms", nargs="*", default=None)
    args = parser.parse_args()
    real = embed_in_child(scale_corpus()["text"].tolist(), SentenceEmbedder(device="cpu"))
    print("| sentences | algorithm | seconds | peak MB | result |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        x = corpus_of(real, size)
        for name in args.algorithms or PER_SIZE.get(size, list(ALGORITHMS)):
            labels, seconds, peak = measured(lambda: run_clustering(name, x).labels)
            result = f"failed: {labels}" if isinstance(labels, Exception) else summary(labels)
            print(f"| {size:,} | {name} | {seconds:.1f} | {peak:.0f} | {result} |", flush=True)


if __name__ == "__main__":
    main()
