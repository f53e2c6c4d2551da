"""Granularity under growth: each labelled dataset and mixture fitted on a seeded 90% of its sentences, then
fitted again on all of them starting from that fit, as the scheduled refresh's re-fit does (the previous topics'
centres, communities or tree, its count kept while the data allow). A fresh fit of all of them is what
`benchmarks/quality.py` measures.

    python benchmarks/growth.py [--datasets atis banking77 ...] [--algorithms kmeans louvain ...]

Prints, per dataset and scheduled algorithm, the topic count before and after the growth, its change, the NMI
after against the labels, and the recommended clustering before and after (chosen without
labels, the refresh's rule, the one before as the previous pick). The target: counts within 20% across the growth.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402, F401  (imported before the forks, as in quality.py)

from benchmarks.common import MIXTURES, dataset_names, embed_in_child, load_dataset, measured_or_raise  # noqa: E402
from benchmarks.quality import BENCH_MODEL_KEY, cluster  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, SCHEDULED, sample_rows  # noqa: E402
from dagster_project.core.recommend import recommend  # noqa: E402
from dagster_project.core.topic_model import plain  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

SHARE_BEFORE = 0.9


def grown(x: np.ndarray, name: str, first: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """(labels of the first fit on the rows `first`, labels of the re-fit of every row from it, its details)."""
    params = ALGORITHMS[name].params()
    labels, details = cluster(x[first], name, None)
    before = np.full(len(x), -1, dtype=np.int64)
    before[first] = labels
    last = {"details": plain(details), "params": plain(dataclasses.asdict(params)), "model_key": BENCH_MODEL_KEY}
    after, after_details = cluster(x, name, None, before, last)
    return labels, after, after_details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every dataset and the mixtures")
    parser.add_argument("--algorithms", nargs="*", default=SCHEDULED)
    args = parser.parse_args()
    embedder = SentenceEmbedder(device="cpu")
    rows, picks = [], []
    for dataset in args.datasets or [*dataset_names(), *MIXTURES]:
        frame = load_dataset(dataset)
        truth = frame["label"].to_numpy()
        x = embed_in_child(frame["text"].tolist(), embedder)
        first = sample_rows(len(x), int(SHARE_BEFORE * len(x)), seed=1)
        print(f"{dataset}: {len(first)} then {len(x)} sentences", file=sys.stderr, flush=True)
        partitions_before, partitions_after = {}, {}
        for name in args.algorithms:
            labels, after, details = measured_or_raise(grown, x, name, first)[0]
            partitions_before[name], partitions_after[name] = labels, after
            count = {key: len(set(v.tolist()) - {-1}) for key, v in (("before", labels), ("after", after))}
            rows.append({"dataset": dataset, "algorithm": name, **count,
                         "change": count["after"] / count["before"] - 1,
                         "NMI after": normalized_mutual_info_score(truth, after),
                         "kept": details.get("k_previous") or details.get("clusters_previous") or
                         details.get("started_from", "")})
            print(f"  {name:<18} {count['before']} -> {count['after']}", file=sys.stderr, flush=True)
        pick_before = recommend(partitions_before)[0]
        pick_after = recommend(partitions_after, previous=pick_before)[0]
        picks.append({"dataset": dataset, "recommended before": pick_before, "recommended after": pick_after})
    table = pd.DataFrame(rows)
    print(table.round(3).to_markdown(index=False))
    print()
    print(pd.DataFrame(picks).to_markdown(index=False))
    within = (table["change"].abs() <= 0.2).mean()
    print(f"\ncounts within 20% across the growth: {within:.0%} of {len(table)} "
          f"(largest change {table['change'].abs().max():.0%}); recommended the same: "
          f"{np.mean([p['recommended before'] == p['recommended after'] for p in picks]):.0%} of {len(picks)}")


if __name__ == "__main__":
    main()
