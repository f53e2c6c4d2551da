"""Clustering quality on every labelled dataset, every algorithm with its default (automatic) parameters,
against the reference measured in the same run: scikit-learn KMeans told the true k, on the same
all-MiniLM-L6-v2 embeddings (normalized, as sentence-transformers encodes them); and on mixtures of them
(`MIXTURES`: several datasets in one corpus, each sentence keeping its own label).

    python benchmarks/quality.py [--datasets atis banking77 ...] [--algorithms kmeans hdbscan ...] [--no-bertopic]
                                 [--no-evoc]

BERTopic's default pipeline (UMAP to 5 dimensions, HDBSCAN with min_cluster_size 10; UMAP seeded for a
repeatable table) runs on the same embeddings when `bertopic` is installed: it is a benchmark-only dependency
(`make bench` installs it into its own environment, .venv-bench, so that its umap-learn never changes the
product's defaults). EVoC (`evoc`, clustering made for embedding vectors) runs with its defaults when installed
(`make bench` installs it too).

Topic keywords are scored without labels: `coherence_npmi` (NPMI of every pair of each topic's top 10 keywords,
sentences as documents) and `topic_diversity` (distinct words among all topics' keywords), both from
`dagster_project.core.topics`, over the keywords the product's topic assets write with their defaults; for
BERTopic over its own topic words (its default representation, top 10). Louvain reads its graph from the
nearest-neighbour index the `sentence_neighbors` asset keeps, built here the same way (its seconds include the
index).

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
# The clustering asset resolves its device through torch before it clusters, so the search for k never pays
# torch's import (about 1.5 s); the children forked here inherit it too. Importing starts no OpenMP threads.
import torch  # noqa: E402, F401

from benchmarks.common import (  # noqa: E402
    MIXTURES,
    dataset_names,
    embed_in_child,
    load_dataset,
    measured,
    measured_or_raise,
)
from dagster_project.core.clustering import ALGORITHMS  # noqa: E402
from dagster_project.core.neighbors import Neighbours, add_vectors, new_index, search  # noqa: E402
from dagster_project.core.labels import summarize_topics  # noqa: E402
from dagster_project.core.topic_model import TopicModel  # noqa: E402
from dagster_project.core.topics import coherence_npmi, topic_diversity  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402


def bertopic_topics(x: np.ndarray, texts: list[str], seed: int = 0) -> tuple[np.ndarray, list[list[str]]]:
    """Topic per sentence (-1: outlier) of BERTopic with its default models, fed the same embeddings, and each
    topic's words (outliers left out)."""
    from bertopic import BERTopic
    from umap import UMAP

    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)  # its default
    model = BERTopic(umap_model=umap_model)
    topics, _ = model.fit_transform(texts, x)
    words = [[w for w, _ in model.get_topic(t)] for t in sorted(set(topics) - {-1})]
    return np.asarray(topics), words


def evoc_clusters(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Cluster per sentence (-1: noise) of EVoC with its defaults (seeded)."""
    import evoc

    return np.asarray(evoc.EVoC(random_state=seed).fit_predict(x))


def keyword_scores(texts: list[str], keywords: list[list[str]] | None, x: np.ndarray, labels: np.ndarray,
                   diversity: float | None = None) -> tuple[float | None, float | None]:
    """(coherence_npmi, topic_diversity) of `keywords`, or, when None, of the keywords the topic assets write for
    these clusters with their defaults (noise left out; `diversity` instead of the default when given). Run in a
    child: the parent forks the next clusterings."""
    if keywords is None:
        from dagster_project.assets.config import TopicConfig

        config = TopicConfig() if diversity is None else TopicConfig(diversity=diversity)
        summary = summarize_topics(texts, x, labels, n_keywords=config.n_keywords,
                                   ngram_range=(1, config.max_ngram), diversity=config.diversity,
                                   embed=SentenceEmbedder(device="cpu").encode if config.diversity > 0 else None)
        keywords = summary[summary["cluster_id"] >= 0]["keywords"].map(list).tolist()
    return coherence_npmi(texts, keywords), topic_diversity(keywords)


# The automatic defaults are chosen on these datasets and checked on the others.
TUNING = ("banking77", "clinc150", "searchsnippets", "stackoverflow")
BENCH_MODEL_KEY = "benchmark"
K_CHOSEN = ("kmeans", "minibatch_kmeans")  # algorithms whose automatic k is compared with one fit at that k


def cluster(x: np.ndarray, name: str, params: object, before: np.ndarray | None = None,
            last: dict | None = None, seeds: object = None) -> tuple[np.ndarray, dict]:
    """(labels, details) of one clustering; `before` (each row's topic in the last fit, -1: none) and `last` (that
    run: details, params, model_key) make it a re-fit, as the scheduled refresh runs it; `seeds`: topics people
    expect (`core.seeds.Seeds`)."""
    if name == "reference":
        return KMeans(n_clusters=params, n_init=3, random_state=0).fit(x).labels_, {}
    if name == "bertopic":
        labels, words = bertopic_topics(x, params)
        return labels, {"keywords": words}
    if name == "evoc":
        return evoc_clusters(x), {}
    algorithm, rows = ALGORITHMS[name], np.arange(len(x))
    model = TopicModel(algorithm, params or algorithm.params())  # the fitted topic model the clustering assets run
    sample, wants_graph = model.plan(len(x))
    neighbours = None
    if wants_graph:  # as in the refresh: the graph from the sentence_neighbors index, built here
        index = new_index(x.shape[1])
        add_vectors(index, rows, x)
        neighbours = Neighbours(*search(index, rows, x, model.params.n_neighbors))
    model.fit(rows, sample, x[sample], neighbours, before, last, BENCH_MODEL_KEY, seeds)
    model.extend(lambda: [(rows, x)], lambda wanted: x[wanted])
    return model.labels_, {**model.result_.details, **({"seed_cluster": model.seed_cluster} if seeds else {})}


def installed(module: str) -> bool:
    """Whether `module` can be imported, without importing it here (EVoC's import starts OpenMP threads, and the
    parent must stay free of them to fork the clusterings)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None,
                        help="default: every dataset and the mixtures (names joined by '+': " + ", ".join(MIXTURES) + ")")
    parser.add_argument("--algorithms", nargs="*", default=list(ALGORITHMS))
    parser.add_argument("--no-bertopic", action="store_true", help="leave BERTopic out even when installed")
    parser.add_argument("--no-evoc", action="store_true", help="leave EVoC out even when installed")
    parser.add_argument("--keyword-diversity", type=float, default=None,
                        help="the topic assets' `diversity` for the product's keywords (default: theirs)")
    parser.add_argument("--labels-out", type=Path, default=None,
                        help="also write every clustering's labels to DIR/<dataset>.npz (one array per algorithm)")
    args = parser.parse_args()
    with_bertopic = not args.no_bertopic and installed("bertopic")
    with_evoc = not args.no_evoc and installed("evoc")
    for peer, wanted, present in (("bertopic", not args.no_bertopic, with_bertopic),
                                  ("evoc", not args.no_evoc, with_evoc)):
        if wanted and not present:
            print(f"{peer} is not installed: left out (make bench installs it)", file=sys.stderr)
    embedder = SentenceEmbedder(device="cpu")
    rows = []
    for dataset in args.datasets or [*dataset_names(), *MIXTURES]:
        frame = load_dataset(dataset)
        truth = frame["label"].to_numpy()
        true_k = len(set(truth))
        x = embed_in_child(frame["text"].tolist(), embedder)
        print(f"{dataset}: {len(frame)} sentences, {true_k} labels", file=sys.stderr, flush=True)
        jobs = [("reference", "reference", true_k)]
        if with_bertopic:
            jobs.append(("BERTopic (defaults)", "bertopic", frame["text"].tolist()))
        if with_evoc:
            jobs.append(("EVoC (defaults)", "evoc", None))
        jobs += [(name, name, None) for name in args.algorithms]
        found = {"truth": truth.astype(str)}
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
            found[name] = labels
            row.update(clusters=len(set(labels.tolist()) - {-1}), noise=float((labels < 0).mean()),
                       nmi=normalized_mutual_info_score(truth, labels), ari=adjusted_rand_score(truth, labels),
                       v_measure=v_measure_score(truth, labels), note="")
            scores = measured_or_raise(keyword_scores, frame["text"].tolist(), details.get("keywords"), x, labels,
                                       args.keyword_diversity)[0]
            row.update(npmi=scores[0], diversity=scores[1])
            if params is None and name in K_CHOSEN:
                fixed = ALGORITHMS[name].params(n_clusters=row["clusters"])
                single = float(np.median([measured(cluster, x, name, fixed)[1] for _ in range(3)]))
                row["cost"] = details["k_selection_seconds"] / single
            rows.append(row)
            print(f"  {shown:<22} k={row['clusters']:<5} noise={row['noise']:.2f} nmi={row['nmi']:.3f} "
                  f"npmi={row['npmi'] or float('nan'):.3f} diversity={row['diversity'] or float('nan'):.3f} "
                  f"{seconds:.1f}s {peak:.0f}MB", file=sys.stderr, flush=True)
        if args.labels_out:
            args.labels_out.mkdir(parents=True, exist_ok=True)
            np.savez(args.labels_out / f"{dataset}.npz", **found)
    table = pd.DataFrame(rows)
    reference = table[table["algorithm"] == "reference"].set_index("dataset")["nmi"]
    table["nmi_share"] = table["nmi"] / table["dataset"].map(reference)
    if "cost" not in table:
        table["cost"] = np.nan
    print("| dataset | set | labels | algorithm | clusters | noise | NMI | ARI | V-measure | NMI / reference | "
          "coherence (NPMI) | diversity | seconds | choice / fit | peak MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        if r.note:
            print(f"| {r.dataset} | {r.set} | {r.labels} | {r.algorithm} | refused: {r.note} | | | | | | | "
                  f"| {r.seconds:.1f} | | |")
            continue
        cost = "" if np.isnan(r.cost) else f"{r.cost:.1f}"
        print(f"| {r.dataset} | {r.set} | {r.labels} | {r.algorithm} | {int(r.clusters)} | {r.noise:.1%} "
              f"| {r.nmi:.3f} | {r.ari:.3f} | {r.v_measure:.3f} | {r.nmi_share:.2f} | {plain(r.npmi)} "
              f"| {plain(r.diversity)} | {r.seconds:.1f} | {cost} | {r.peak_mb:.0f} |")
    peers = table[table["algorithm"] == "BERTopic (defaults)"].set_index("dataset")
    if len(peers):
        ours = table[~table["algorithm"].isin(["reference", "BERTopic (defaults)"]) & (table["note"] == "")]
        versus = ours.assign(**{f"{m} >= BERTopic": ours[m] >= ours["dataset"].map(peers[m]) - 1e-9
                                for m in ("nmi", "npmi", "diversity")})
        print("\nDatasets (of each algorithm's) where it reaches BERTopic's NMI, coherence and diversity:")
        print(versus.groupby("algorithm")[[c for c in versus if c.endswith(">= BERTopic")]].sum().to_string())
    print("\nMedian NMI / reference per algorithm, on the tuning and on the checking datasets:")
    print(table.pivot_table(index="algorithm", columns="set", values="nmi_share", aggfunc="median").round(3)
          .to_string())


def plain(value: float | None) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.3f}"


if __name__ == "__main__":
    main()
