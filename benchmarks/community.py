"""Our community detection against sentence_transformers.util.community_detection on the CPU, same embeddings.

    python benchmarks/community.py [--sizes 20000 100000] [--repeats 3]

Real embeddings of the labelled datasets (all-MiniLM-L6-v2). Prints both times (median of repeats), the ratio,
whether the communities are identical, and the share of sentences the reference drops (ours labels them -1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sentence_transformers.util import community_detection as reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import community_labels, embed, median_seconds, scale_corpus  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402


def as_sets(communities) -> list[tuple[int, ...]]:
    return sorted(tuple(sorted(c)) for c in communities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", type=int, default=[20_000, 100_000])
    parser.add_argument("--settings", nargs="*", default=["0.75:10", "0.6:10"], help="threshold:min_size pairs")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    corpus = scale_corpus()
    x_all = embed(corpus["text"].tolist(), SentenceEmbedder(device="cpu"))
    print(f"torch threads {torch.get_num_threads()}; corpus {len(x_all)} sentences")
    print("| sentences | threshold | min size | reference s | ours s | speed-up | identical | communities | unassigned |")
    print("|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for size in args.sizes:
        x = x_all[np.sort(rng.choice(len(x_all), size=min(size, len(x_all)), replace=False))]
        tensor = torch.from_numpy(x)
        for setting in args.settings:
            threshold, min_size = float(setting.split(":")[0]), int(setting.split(":")[1])
            ref_s, ref = median_seconds(lambda: reference(tensor, threshold=threshold, min_community_size=min_size),
                                        args.repeats)
            our_s, labels = median_seconds(lambda: community_labels(x, threshold, min_size), args.repeats)
            ours = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)]
            same = as_sets(ref) == as_sets(ours)
            print(f"| {len(x):,} | {threshold} | {min_size} | {ref_s:.2f} | {our_s:.2f} | {ref_s / our_s:.2f}x "
                  f"| {same} | {len(ours)} | {(labels < 0).mean():.1%} |", flush=True)


if __name__ == "__main__":
    main()
