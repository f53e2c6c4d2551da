"""Clustering quality on every labelled dataset, every algorithm with its default (automatic) parameters,
against the reference measured in the same run: scikit-learn KMeans told the true k, on the same
all-MiniLM-L6-v2 embeddings (normalized, as sentence-transformers encodes them).

    python benchmarks/quality.py [--datasets atis banking77 ...] [--algorithms kmeans hdbscan ...] [--no-bertopic]

BERTopic's default pipeline (UMAP to 5 dimensions, HDBSCAN with min_cluster_size 10; UMAP seeded for a
repeatable table) runs on the same embeddings when `bertopic` is installed: it is a benchmark-only dependency
(`make bench` installs it into its own environment, .venv-bench, so that its umap-learn never changes the
product's defaults).

Each clustering runs in a forked child process so that its peak memory (RSS above the child's start) and time
are its own. Prints a markdown table (NMI, ARI, V-measure with noise counted as one group; clusters found; noise
share; seconds; peak memory) and, per algorithm, the median NMI as a share of the reference's. For the k-means
family with k chosen automatically it also times one fit at the chosen k in the same run (median of three):
the `choice / fit` column is the time the choice of k took (`k_selection_seconds`, the search alone, torch
already imported as in the asset) over that. Each row says whether its dataset is one the automatic defaults
were tuned on (`TUNING`) or one they are checked on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import dataset_names, embed_in_child, load_dataset, measured  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, run_clustering  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

# The clustering asset resolves its device through torch before it clusters, so the search for k never pays
# torch's import (about 1.5 s); the children forked here inherit it too. Importing starts no OpenMP threads.
import torch  # noqa: E402, F401


def bertopic_topics(x: np.ndarray, texts: list[str], seed: int = 0) -> np.ndarray:
    """Topic per sentence (-1: outlier) of BERTopic with its default models, fed the same embeddings."""
    from bertopic import BERTopic
    from umap import UMAP

    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)  # its default
    topics, _ = BERTopic(umap_model=umap_model).fit_transform(texts, x)
    return np.asarray(topics)


# The automatic defaults are chosen on these datasets and checked on the others.
TUNING = ("banking77", "clinc150", "searchsnippets", "stackoverflow")
K_CHOSEN = ("kmeans", "minibatch_kmeans")  # algorithms whose automatic k is compared with one fit at that k


def cluster(x: np.ndarray, name: str, params: object) -> tuple[np.ndarray, dict]:
    """(labels, details) of one clustering."""
    if name == "reference":
        return KMeans(n_clusters=params, n_init=3, random_state=0).fit(x).labels_, {}
    if name == "bertopic":
        return bertopic_topics(x, params), {}
    result = run_clustering(name, x, params)
    return result.labels, result.details


def has_bertopic() -> bool:
    try:
        import bertopic  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every dataset")
    parser.add_argument("--algorithms", nargs="*", default=list(ALGORITHMS))
    parser.add_argument("--no-bertopic", action="store_true", help="leave BERTopic out even when installed")
    args = parser.parse_args()
    with_bertopic = not args.no_bertopic and has_bertopic()
    if not args.no_bertopic and not with_bertopic:
        print("bertopic is not installed: BERTopic left out (make bench installs it)", file=sys.stderr)
    embedder = SentenceEmbedder(device="cpu")
    rows = []
    for dataset in args.datasets or dataset_names():
        frame = load_dataset(dataset)
        truth = frame["label"].to_numpy()
        true_k = len(set(truth))
        x = embed_in_child(frame["text"].tolist(), embedder)
        print(f"{dataset}: {len(frame)} sentences, {true_k} labels", file=sys.stderr, flush=True)
        jobs = [("reference", "reference", true_k)]
        if with_bertopic:
            jobs.append(("BERTopic (defaults)", "bertopic", frame["text"].tolist()))
        jobs += [(name, name, None) for name in args.algorithms]
        for shown, name, params in jobs:
            result, seconds, peak = measured(cluster, x, name, params)
            row = {"dataset": dataset, "set": "tuning" if dataset in TUNING else "checking", "labels": true_k,
                   "algorithm": shown, "seconds": seconds, "peak_mb": peak}
            if isinstance(result, Exception):
                note = str(result).split(".")[0]
                rows.append({**row, "note": note})
                print(f"  {shown}: {note}", file=sys.stderr, flush=True)
                continue
            labels, details = result
            row.update(clusters=len(set(labels.tolist()) - {-1}), noise=float((labels < 0).mean()),
                       nmi=normalized_mutual_info_score(truth, labels), ari=adjusted_rand_score(truth, labels),
                       v_measure=v_measure_score(truth, labels), note="")
            if params is None and name in K_CHOSEN:
                fixed = ALGORITHMS[name].params(n_clusters=row["clusters"])
                single = float(np.median([measured(cluster, x, name, fixed)[1] for _ in range(3)]))
                row["cost"] = details["k_selection_seconds"] / single
            rows.append(row)
            print(f"  {shown:<22} k={row['clusters']:<5} noise={row['noise']:.2f} nmi={row['nmi']:.3f} "
                  f"{seconds:.1f}s {peak:.0f}MB", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    reference = table[table["algorithm"] == "reference"].set_index("dataset")["nmi"]
    table["nmi_share"] = table["nmi"] / table["dataset"].map(reference)
    if "cost" not in table:
        table["cost"] = np.nan
    print("| dataset | set | labels | algorithm | clusters | noise | NMI | ARI | V-measure | NMI / reference | seconds "
          "| choice / fit | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        if r.note:
            print(f"| {r.dataset} | {r.set} | {r.labels} | {r.algorithm} | refused: {r.note} | | | | | "
                  f"| {r.seconds:.1f} | | |")
            continue
        cost = "" if np.isnan(r.cost) else f"{r.cost:.1f}"
        print(f"| {r.dataset} | {r.set} | {r.labels} | {r.algorithm} | {int(r.clusters)} | {r.noise:.1%} "
              f"| {r.nmi:.3f} | {r.ari:.3f} | {r.v_measure:.3f} | {r.nmi_share:.2f} | {r.seconds:.1f} | {cost} "
              f"| {r.peak_mb:.0f} |")
    print("\nMedian NMI / reference per algorithm, on the tuning and on the checking datasets:")
    print(table.pivot_table(index="algorithm", columns="set", values="nmi_share", aggfunc="median").round(3)
          .to_string())


if __name__ == "__main__":
    main()
