"""How far NMI moves with the seed alone: Louvain (its Leiden optimisation's seed, its graph read from a fresh
nearest-neighbour index each time, as the refresh builds one) and BERTopic with its defaults (UMAP's seed), on
the same embeddings of each labelled dataset. A one-run comparison of the two is only as sharp as these spreads.

    python benchmarks/seeds.py [--datasets atis ...] [--seeds 8] [--bertopic-seeds 3]

BERTopic runs when installed (`make bench` installs it into .venv-bench). Prints per dataset and method the NMI
of every seed, their minimum, median, mean and maximum.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import dataset_names, embed, load_dataset  # noqa: E402
from benchmarks.quality import bertopic_topics, cluster, installed  # noqa: E402
from dagster_project.core.clustering import LouvainParams  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every dataset")
    parser.add_argument("--seeds", type=int, default=8, help="Louvain seeds (0, 1, ...)")
    parser.add_argument("--bertopic-seeds", type=int, default=3, help="BERTopic seeds (0: leave it out)")
    args = parser.parse_args()
    bertopic_seeds = args.bertopic_seeds if installed("bertopic") else 0
    if args.bertopic_seeds and not bertopic_seeds:
        print("bertopic is not installed: left out (make bench installs it)", file=sys.stderr)
    embedder = SentenceEmbedder(device="cpu")
    print("| dataset | method | seeds | NMI per seed | min | median | mean | max |")
    print("|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets or dataset_names():
        frame = load_dataset(dataset)
        texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
        x = embed(texts, embedder)
        runs = {"louvain (Leiden seed)": [cluster(x, "louvain", LouvainParams(seed=s))[0] for s in range(args.seeds)],
                "BERTopic (UMAP seed)": [bertopic_topics(x, texts, s)[0] for s in range(bertopic_seeds)]}
        for method, labelings in runs.items():
            if not labelings:
                continue
            scores = np.array([normalized_mutual_info_score(truth, labels) for labels in labelings])
            print(f"| {dataset} | {method} | {len(scores)} | {', '.join(f'{s:.3f}' for s in scores)} | "
                  f"{scores.min():.3f} | {np.median(scores):.3f} | {scores.mean():.3f} | {scores.max():.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
