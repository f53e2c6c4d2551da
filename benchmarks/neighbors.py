"""The nearest-neighbour index behind `sentence_neighbors` against exact search, and Louvain on its graph.

    python benchmarks/neighbors.py [--sizes 100000 1000000] [--compare]
    python benchmarks/neighbors.py --agreement

For each size: the exact 10 most similar other vectors of 1,000 probe rows (the baseline, scored in blocks), then,
in a forked child, the index the asset builds (USearch HNSW, half precision; `dagster_project/core/neighbors.py`):
build seconds, the seconds to search every row's 10 neighbours (what `sentence_neighbors` stores), recall@10 on
the probes, peak RSS above the child's start; then Louvain (Leiden) on the graph of those neighbours, end to end.
At 100,000 also Louvain on exact neighbours (the fit without the table), its seconds as the baseline, the
agreement (ARI) of the two partitions, and, for scale, the agreement of Leiden with another seed on the same
exact graph. `--compare`: at the first size, the other candidate libraries and
precisions measured the same way (faiss-cpu when installed).

`--threshold`: only the last table of the default run: community detection and DBSCAN (defaults, neighbourhoods
through the index, as `search` auto does from 50,000 sentences) end to end at each size: seconds, peak RSS,
clusters, noise, the threshold chosen; at sizes where all pairs are affordable (100,000) also the exact answer and
the agreement (ARI) of the two.

`--files SIZE`: only the index as `sentence_neighbors` keeps it, at each size as one file and as files of at most
SIZE vectors (one in memory at a time, each searched in turn): build seconds (added 100,000 at a time and saved),
the seconds to search every row's 10 neighbours block by block, recall@10 on the probes and peak RSS above the
child's start (the vectors themselves are the parent's, not counted).

`--agreement`: on every labelled dataset, community detection and DBSCAN (defaults) with their neighbourhoods
above the threshold found exactly and through the index (`search` exact / index): the ARI of the two answers and
the seconds of each.

Vectors: 100,000 real all-MiniLM-L6-v2 embeddings of the labelled datasets' sentences; 1,000,000 the million-
sentence warehouse's (`benchmarks/embeddings.py --million`) when it exists, else the real vectors with simulated
variants (`benchmarks/scale.corpus_of`: each real vector plus Gaussian noise, cosine ~0.97 to its original).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    ROOT,
    dataset_names,
    embed_in_child,
    load_dataset,
    measured,
    measured_or_raise,
    scale_corpus,
)
from benchmarks.scale import corpus_of, million_vectors  # noqa: E402
from dagster_project.core import neighbors  # noqa: E402
from dagster_project.core.algorithms.louvain import LouvainParams, knn_graph, leiden, louvain  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, run_clustering  # noqa: E402
from dagster_project.core.community import top_neighbours  # noqa: E402
from dagster_project.core.neighbors import Neighbours, add_vectors, new_index, search  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

K = 10
PROBES = 1000


def exact_probe_neighbours(x: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, float]:
    """The exact K most similar other rows of each probe row, by the product's exact path (`top_neighbours`:
    torch, scored in memory-bounded blocks, as a fit without the table does), and its seconds (torch warmed up
    first)."""
    top_neighbours(x[:10], K + 1, corpus=x[:1000])
    started = time.perf_counter()
    _, found = top_neighbours(x[probes], K + 1, corpus=x)
    seconds = time.perf_counter() - started
    return np.array([row[row != probe][:K] for row, probe in zip(found, probes)]), seconds


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def usearch_index(x: np.ndarray, probes: np.ndarray, dtype: str = "f16", louvain_too: bool = True) -> dict:
    """The asset's index: build, every row's neighbours, then Louvain (Leiden) on that graph."""
    started = time.perf_counter()
    index = new_index(x.shape[1]) if dtype == "f16" else _usearch(x.shape[1], dtype)
    add_vectors(index, np.arange(len(x)), x)
    build = time.perf_counter() - started
    started = time.perf_counter()
    found, similarity = search(index, np.arange(len(x)), x, K)
    query = time.perf_counter() - started
    out = {"build_s": build, "query_s": query, "probe_neighbours": found[probes]}
    if louvain_too:
        started = time.perf_counter()
        graph = knn_graph(x, K, found=Neighbours(found, similarity))
        out["labels"] = leiden(graph, LouvainParams().resolution)[0]
        out["louvain_s"] = time.perf_counter() - started
    return out


def files_index(x: np.ndarray, probes: np.ndarray, file_size: int) -> dict:
    """The index of `sentence_neighbors` in files of at most `file_size` vectors: built, saved, and every row's
    neighbours searched as the asset searches them (only the probes' lists kept)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        index = neighbors.ShardedIndex(Path(folder) / "bench.usearch", x.shape[1], file_size)
        started = time.perf_counter()
        for start in range(0, len(x), 100_000):
            index.add(np.arange(start, min(start + 100_000, len(x))), x[start:start + 100_000])
        index.save()
        build = time.perf_counter() - started
        started = time.perf_counter()
        found = np.full((len(probes), K), -1, dtype=np.int64)
        for rows in neighbors.neighbour_chunks(index, np.arange(len(x)), K):
            rows = rows[rows["sentence_id"].isin(probes)]
            for sentence, group in rows.groupby("sentence_id"):
                found[np.searchsorted(probes, sentence), :len(group)] = group["neighbor_id"].to_numpy()
        return {"build_s": build, "query_s": time.perf_counter() - started, "probe_neighbours": found,
                "files": len(index.sizes)}


def _usearch(dimensions: int, dtype: str):
    from usearch.index import Index

    from dagster_project.core import neighbors

    return Index(ndim=dimensions, metric="cos", dtype=dtype, connectivity=neighbors.CONNECTIVITY,
                 expansion_add=neighbors.EXPANSION_ADD, expansion_search=neighbors.EXPANSION_SEARCH)


def faiss_index(x: np.ndarray, probes: np.ndarray, kind: str) -> dict:
    import faiss

    started = time.perf_counter()
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(x.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 128
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], int(4 * np.sqrt(len(x))),
                                   faiss.METRIC_INNER_PRODUCT)
        index.train(x)
    index.add(x)
    build = time.perf_counter() - started
    if kind == "hnsw":
        index.hnsw.efSearch = 64
    else:
        index.nprobe = 16
    started = time.perf_counter()
    _, found = index.search(x, K + 1)
    query = time.perf_counter() - started
    rows = found[probes]
    own = rows == probes[:, None]
    rows = np.array([r[~o][:K] for r, o in zip(rows, own)])
    return {"build_s": build, "query_s": query, "probe_neighbours": rows}


def row(label: str, n: int, result: dict, seconds: float, peak: float, exact: np.ndarray) -> str:
    return (f"| {n:,} | {label} | {recall(result['probe_neighbours'], exact):.4f} | {result['build_s']:.1f} | "
            f"{result['query_s']:.1f} | {peak:.0f} |")


def vectors_for(size: int, base: np.ndarray) -> tuple[np.ndarray, str]:
    if size <= len(base):
        return corpus_of(base, size), "real"
    real = million_vectors(ROOT / "data" / "bench_million.duckdb")
    if real is not None and len(real) >= size:
        return real[:size], "real"
    return corpus_of(base, size), "real + simulated variants"


def agreement() -> None:
    """Threshold neighbourhoods through the index against exact ones, per dataset."""
    neighbors.EXACT_SEARCH_UP_TO = 0  # the graph search, as on a corpus past the size searched exactly
    embedder = SentenceEmbedder(device="cpu")
    print(f"# threshold neighbourhoods, index against exact: {time.strftime('%Y-%m-%d')}\n")
    print("| dataset | sentences | algorithm | ARI index vs exact | exact s | index s | clusters (exact) | "
          "noise (exact) |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for name in dataset_names():
        x = embed_in_child(load_dataset(name)["text"].tolist(), embedder)
        for algorithm in ("community_detection", "dbscan"):
            params = ALGORITHMS[algorithm].params
            runs = [measured_or_raise(run_clustering, algorithm, x, params(search=search))
                    for search in ("exact", "index")]
            (exact, exact_s, _), (approximate, index_s, _) = runs
            print(f"| {name} | {len(x):,} | {algorithm} | {adjusted_rand_score(exact.labels, approximate.labels):.4f} "
                  f"| {exact_s:.1f} | {index_s:.1f} | {exact.n_clusters} | {np.mean(exact.labels < 0):.1%} |",
                  flush=True)


EXACT_UP_TO = 100_000  # sizes at which the threshold algorithms also run on every pair, for their agreement


def threshold_algorithms(sizes: list[int], base: np.ndarray) -> None:
    """Community detection and DBSCAN through the index, end to end, at each size (and exactly where affordable)."""
    print("\n| sentences | vectors | algorithm | index s | peak MB | clusters | noise | threshold | exact s | "
          "ARI index vs exact |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for size in sizes:
        x, kind = vectors_for(size, base)
        for algorithm in ("community_detection", "dbscan"):
            params = ALGORITHMS[algorithm].params
            result, seconds, peak = measured_or_raise(run_clustering, algorithm, x, params(search="index"))
            threshold = result.details.get("threshold", result.details.get("eps"))
            exact = "not run (every pair: hours) | "
            if size <= EXACT_UP_TO:
                reference, exact_s, _ = measured_or_raise(run_clustering, algorithm, x, params(search="exact"))
                exact = f"{exact_s:.1f} | {adjusted_rand_score(reference.labels, result.labels):.4f}"
            print(f"| {size:,} | {kind} | {algorithm} | {seconds:.1f} | {peak:.0f} | {result.n_clusters:,} | "
                  f"{np.mean(result.labels < 0):.1%} | {'eps ' if algorithm == 'dbscan' else ''}{threshold} | "
                  f"{exact} |", flush=True)


def index_files(sizes: list[int], base: np.ndarray, file_size: int) -> None:
    """The index as one file and as files of at most `file_size` vectors, at each size."""
    print(f"# index files: {time.strftime('%Y-%m-%d')}, k = {K}, {PROBES} probes, files of {file_size:,}\n")
    print("| sentences | vectors | index files | recall@10 | build s | all rows' neighbours s | peak MB |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for size in sizes:
        x, kind = vectors_for(size, base)
        probes = np.sort(np.random.default_rng(0).choice(len(x), PROBES, replace=False))
        (exact, _), _, _ = measured(exact_probe_neighbours, x, probes)
        for limit in (max(size, file_size), file_size):
            result, _, peak = measured_or_raise(files_index, x, probes, limit)
            print(f"| {size:,} | {kind} | {result['files']} | {recall(result['probe_neighbours'], exact):.4f} | "
                  f"{result['build_s']:.1f} | {result['query_s']:.1f} | {peak:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--compare", action="store_true", help="other libraries and precisions at the first size")
    parser.add_argument("--agreement", action="store_true", help="community detection and DBSCAN, index vs exact")
    parser.add_argument("--threshold", action="store_true", help="only community detection and DBSCAN at each size")
    parser.add_argument("--files", type=int, default=0, help="only the index as one file and as files of this size")
    args = parser.parse_args()
    if args.agreement:
        return agreement()
    base = embed_in_child(scale_corpus()["text"].tolist(), SentenceEmbedder(device="cpu"))
    if args.threshold:
        return threshold_algorithms(args.sizes, base)
    if args.files:
        return index_files(args.sizes, base, args.files)
    print(f"# neighbours: {time.strftime('%Y-%m-%d')}, k = {K}, {PROBES} probes\n", flush=True)
    print("| sentences | index | recall@10 | build s | all rows' neighbours s | peak MB |")
    print("|---|---|---|---|---|---|", flush=True)
    louvain_rows = []
    for position, size in enumerate(args.sizes):
        x, kind = vectors_for(size, base)
        probes = np.sort(np.random.default_rng(0).choice(len(x), PROBES, replace=False))
        (exact, exact_probe_s), _, _ = measured(exact_probe_neighbours, x, probes)  # torch stays in a child
        result, seconds, peak = measured_or_raise(usearch_index, x, probes)
        print(row(f"usearch HNSW f16 (the asset's), {kind}", size, result, seconds, peak, exact), flush=True)
        projected = exact_probe_s * size / PROBES
        louvain_rows.append((size, kind, result, projected))
        if args.compare and position == 0:
            candidates = [("usearch HNSW f32", usearch_index, ("f32", False)),
                          ("usearch HNSW i8", usearch_index, ("i8", False))]
            try:
                import faiss  # noqa: F401

                candidates += [("faiss HNSW flat", faiss_index, ("hnsw",)), ("faiss IVF flat", faiss_index, ("ivf",))]
            except ImportError:
                print("(faiss-cpu not installed: pip install faiss-cpu to compare it)")
            for label, function, extra in candidates:
                other, seconds, peak = measured_or_raise(function, x, probes, *extra)
                print(row(label, size, other, seconds, peak, exact), flush=True)
        if size <= 100_000:
            reference, seconds, peak = measured(lambda: louvain(x, LouvainParams()).labels)
            reseeded, _, _ = measured(lambda: leiden(knn_graph(x, K), LouvainParams().resolution, seed=1)[0])
            louvain_rows[-1] += (reference, seconds, reseeded)
    print("\n| sentences | vectors | exact neighbours of every row, s (projected from the probes) | index build + "
          "search s | ratio | Louvain on the index graph s | Louvain on exact neighbours s | ARI of the two | "
          "ARI of two seeds on the exact graph |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, kind, result, projected, *exact_fit in louvain_rows:
        indexed = result["build_s"] + result["query_s"]
        if exact_fit:
            reference, seconds, reseeded = exact_fit
            compared = (f"{seconds:.1f} | {adjusted_rand_score(reference, result['labels']):.3f} | "
                        f"{adjusted_rand_score(reference, reseeded):.3f}")
        else:
            compared = "not run | | "
        print(f"| {size:,} | {kind} | {projected:.0f} | {indexed:.1f} | {projected / indexed:.1f}x | "
              f"{indexed + result['louvain_s']:.1f} ({result['louvain_s']:.1f} Leiden) | {compared} |", flush=True)
    threshold_algorithms(args.sizes, base)


if __name__ == "__main__":
    main()
