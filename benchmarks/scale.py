"""Time and peak memory of every algorithm at 100,000 sentences, and of the scalable ones at 1,000,000.

    python benchmarks/scale.py [--sizes 100000 1000000] [--algorithms ...]

100k: the real all-MiniLM-L6-v2 embeddings of the labelled datasets (102,994 sentences, sampled to the size).
1M: the real vectors of 1,000,000 sentences (the datasets' sentences and numbered variants of them) that
`benchmarks/embeddings.py --million` leaves in data/bench_million.duckdb; without that file, the variants are
simulated in embedding space (each real vector plus Gaussian noise, cosine to its original ~0.97). Each
clustering runs in a forked child; peak memory is that child's RSS above its start (the embedding matrix
itself is shared, not counted).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, embed_in_child, measured, scale_corpus  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, CommunityParams, run_clustering  # noqa: E402
from dagster_project.core.community import (  # noqa: E402
    as_tensor,
    block_pairs,
    block_rows,
    communities_from_neighbours,
    csr_from_pairs,
)
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


def million_vectors(path: Path) -> np.ndarray | None:
    """The embedding cache of the million-sentence warehouse as one matrix, if that file exists."""
    if not path.exists():
        return None
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        table = conn.sql("SELECT embedding FROM embedding_cache ORDER BY text_hash").to_arrow_table()
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(flat.reshape(len(table), -1), dtype=np.float32)


def resumable_communities(x: np.ndarray, threshold: float, min_size: int, folder: Path) -> tuple[np.ndarray, float]:
    """`community_labels` block by block with each block's pairs saved under `folder`, so that a run that is
    stopped resumes where it was: (labels, seconds), the seconds summed over every block's recorded time and the
    final selection."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(x)
    tensor = as_tensor(x)
    step = block_rows(n)
    pairs, seconds = [], 0.0
    for start in range(0, n, step):
        path = folder / f"{threshold}-{step}-{start:09d}.npz"
        if path.exists():
            saved = np.load(path)
            pairs.append((saved["rows"], saved["cols"]))
            seconds += float(saved["seconds"])
            continue
        began = time.perf_counter()
        rows, cols = block_pairs(tensor, start, min(n, start + step), threshold)
        took = time.perf_counter() - began
        with open(folder / "partial.npz", "wb") as handle:
            np.savez(handle, rows=rows, cols=cols, seconds=took)
        os.replace(folder / "partial.npz", path)
        pairs.append((rows, cols))
        seconds += took
        if start // step % 500 == 0:
            print(f"  rows {start + step:,} of {n:,} scored", file=sys.stderr, flush=True)
    began = time.perf_counter()
    labels = communities_from_neighbours(*csr_from_pairs(pairs, n), min_size)
    return labels, seconds + time.perf_counter() - began


def summary(labels: np.ndarray) -> str:
    return f"{len(set(labels.tolist()) - {-1})} clusters, {(labels < 0).mean():.1%} noise"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=sorted(PER_SIZE))
    parser.add_argument("--algorithms", nargs="*", default=None)
    parser.add_argument("--million-db", type=Path, default=ROOT / "data" / "bench_million.duckdb")
    parser.add_argument("--community-threshold", type=float, default=None,
                        help="fixed threshold for community detection (default: automatic, two or three fits)")
    parser.add_argument("--resume-dir", type=Path, default=None,
                        help="with --community-threshold: keep community detection's scored blocks here, so that "
                             "a stopped run resumes (seconds are the sum of the blocks' recorded times)")
    args = parser.parse_args()
    real = embed_in_child(scale_corpus()["text"].tolist(), SentenceEmbedder(device="cpu"))
    million = million_vectors(args.million_db) if max(args.sizes) > len(real) else None
    print("| sentences | vectors | algorithm | seconds | peak MB | result |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        measured_vectors = million is not None and size <= len(million)
        x = corpus_of(million if measured_vectors else real, size)
        source = "real" if size <= len(real) or measured_vectors else "simulated"
        for name in args.algorithms or PER_SIZE.get(size, list(ALGORITHMS)):
            params = CommunityParams(threshold=args.community_threshold) if name == "community_detection" else None
            if params is not None and params.threshold is not None and args.resume_dir:
                outcome, seconds, peak = measured(resumable_communities, x, params.threshold,
                                                  params.min_community_size, args.resume_dir / f"{size}")
                labels, seconds = (outcome, seconds) if isinstance(outcome, Exception) else outcome
            else:
                labels, seconds, peak = measured(lambda: run_clustering(name, x, params).labels)
            result = f"failed: {labels}" if isinstance(labels, Exception) else summary(labels)
            print(f"| {size:,} | {source} | {name} | {seconds:.1f} | {peak:.0f} | {result} |", flush=True)


if __name__ == "__main__":
    main()
