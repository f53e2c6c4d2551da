"""Clustering quality and speed on the labelled datasets, against scikit-learn KMeans told the true k.

    python benchmarks/clustering.py [--datasets stackoverflow banking77 ...] [--algorithms kmeans hdbscan ...]

Prints, per dataset and algorithm: clusters found, noise share, NMI / ARI (noise counted as one group),
NMI as a ratio of the reference's (same run, same embeddings), and seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import dataset_names, embed, load_dataset  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, ClusteringError, run_clustering  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

DEFAULT_DATASETS = ["stackoverflow", "searchsnippets", "biomedical", "banking77", "atis", "agnews8000"]


def score(name: str, truth: np.ndarray, labels: np.ndarray, seconds: float) -> dict:
    return {
        "algorithm": name, "clusters": len(set(labels.tolist()) - {-1}), "noise": float((labels < 0).mean()),
        "nmi": normalized_mutual_info_score(truth, labels), "ari": adjusted_rand_score(truth, labels),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=DEFAULT_DATASETS)
    parser.add_argument("--algorithms", nargs="*", default=list(ALGORITHMS))
    args = parser.parse_args()
    available = dataset_names()
    embedder = SentenceEmbedder(device="cpu")
    rows = []
    for dataset in args.datasets:
        if dataset not in available:
            print(f"skip {dataset}: not in {available}")
            continue
        frame = load_dataset(dataset)
        print(f"{dataset}: {len(frame)} sentences, {frame['label'].nunique()} labels", flush=True)
        x = embed(frame["text"].tolist(), embedder)
        truth = frame["label"].to_numpy()
        started = time.perf_counter()
        reference = KMeans(n_clusters=frame["label"].nunique(), n_init=3, random_state=0).fit(x).labels_
        results = [score("reference: KMeans, true k", truth, reference, time.perf_counter() - started)]
        for name in args.algorithms:
            started = time.perf_counter()
            try:
                labels = run_clustering(name, x).labels
            except ClusteringError as err:
                print(f"  {name}: refused ({str(err)[:80]}...)")
                continue
            results.append(score(name, truth, labels, time.perf_counter() - started))
        for r in results:
            r.update(dataset=dataset, true_k=frame["label"].nunique(), nmi_vs_reference=r["nmi"] / results[0]["nmi"])
            print(f"  {r['algorithm']:<26} k={r['clusters']:<5} noise={r['noise']:.2f} nmi={r['nmi']:.3f} "
                  f"({r['nmi_vs_reference']:.2f}x ref) ari={r['ari']:.3f} {r['seconds']:.1f}s", flush=True)
        rows += results
    table = pd.DataFrame(rows)
    if not table.empty:
        print("\nMedian NMI ratio to the reference, per algorithm:")
        print(table.groupby("algorithm")["nmi_vs_reference"].median().round(3).to_string())


if __name__ == "__main__":
    main()
