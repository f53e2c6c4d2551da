"""Clustering quality on the vectors of each CPU embedding backend against torch fp32's: whether a faster engine
for the same transformer may be the CPU default (it may when every dataset keeps 99% of its NMI).

    python benchmarks/backend_quality.py [--backends onnx-int8] [--datasets atis ...] [--algorithms louvain ...]

For every labelled dataset and backend: the dataset embedded by that backend (the benchmark cache keeps each
backend's vectors under its own model_key), then each clustering with its defaults (Louvain, the agglomerative
cut, k-means choosing its k) on both, and the ratio of NMI against the labels. Prints one table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import dataset_names, embed, load_dataset  # noqa: E402
from benchmarks.quality import cluster  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every dataset")
    parser.add_argument("--backends", nargs="*", default=["onnx-int8"])
    parser.add_argument("--algorithms", nargs="*", default=["louvain", "agglomerative", "kmeans"])
    args = parser.parse_args()
    reference = SentenceEmbedder(device="cpu")
    rows = []
    for dataset in args.datasets or dataset_names():
        frame = load_dataset(dataset)
        texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
        vectors = {"torch": embed(texts, reference)}
        for backend in args.backends:
            started = time.perf_counter()
            vectors[backend] = embed(texts, SentenceEmbedder(device="cpu", backend=backend))
            print(f"{dataset}: {backend} vectors in {time.perf_counter() - started:.0f} s", flush=True)
        for algorithm in args.algorithms:
            nmi = {name: normalized_mutual_info_score(truth, cluster(x, algorithm, None)[0])
                   for name, x in vectors.items()}
            for backend in args.backends:
                rows.append({"dataset": dataset, "algorithm": algorithm, "torch NMI": nmi["torch"],
                             "backend": backend, "backend NMI": nmi[backend], "ratio": nmi[backend] / nmi["torch"]})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print(table.groupby(["backend", "algorithm"])["ratio"].agg(["min", "median"]).to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
