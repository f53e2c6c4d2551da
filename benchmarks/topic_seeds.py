"""Topics people expect (`topic_seeds`) on the labelled datasets whose labels are names: the clusterings with
(a) every label's name as a seed, (b) half of the names, (c) three example sentences for half of the labels,
against the same clustering without seeds, the oracle-k KMeans reference and BERTopic's zero-shot topic modelling
(`zeroshot_topic_list` with the same names, same embeddings, its default `zeroshot_min_similarity`), in one run.

    python benchmarks/topic_seeds.py [--datasets atis ...] [--algorithms louvain agglomerative] [--threshold 8]
    python benchmarks/topic_seeds.py --sweep 3 4 5 6 8   # the seeds alone, no clustering

Prints per dataset, algorithm and seeding: NMI, NMI / unseeded, the share of sentences in seeded topics (those
close to a seed and the clusters a seed took in) and their precision (the share whose label is their seed's).
BERTopic runs when installed (`make bench` installs it into .venv-bench: run this there). `--sweep` prints, per
threshold, the share and precision of the sentences close to a seed (no clustering) for each seeding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import embed, load_dataset  # noqa: E402
from benchmarks.quality import cluster, installed  # noqa: E402
from dagster_project.core.seeds import SEED_THRESHOLD, seeds_from  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402
from dagster_project.resources.embedder import bundled_model_path  # noqa: E402

NAMED = ("agnews8000", "atis", "banking77", "clinc150", "searchsnippets", "stackoverflow")
AG_NEWS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}  # the four sections, by their numbers


def readable(dataset: str, label: str) -> str:
    """A label as a person would name the topic: 'card_arrival' -> 'card arrival', 'atis_flight' -> 'flight'."""
    name = AG_NEWS.get(label, label) if dataset == "agnews8000" else label
    return name.removeprefix("atis_").replace("_", " ").replace("-", " ").replace("+", " ").strip()


def seedings(dataset: str, frame: pd.DataFrame, seed: int = 0) -> dict[str, pd.DataFrame]:
    """(label, name, example) rows of each seeding: (a) every name, (b) every other name, (c) three sentences (or
    as many as it has) of every other label."""
    labels = sorted(frame["label"].unique())
    names = pd.DataFrame({"label": labels, "name": [readable(dataset, label) for label in labels]})
    half = names.iloc[::2]
    examples = (frame[frame["label"].isin(half["label"])].sample(frac=1.0, random_state=seed).groupby("label").head(3)
                .merge(half, on="label")[["label", "name", "text"]].rename(columns={"text": "example"}))
    return {"a: every name": names.assign(example=names["name"]), "b: half the names": half.assign(
        example=half["name"]), "c: 3 examples, half the labels": examples}


def seeded_share(seed_of: np.ndarray, truth: np.ndarray, seed_labels: np.ndarray) -> tuple[float, float]:
    """Share of the sentences in a seed's topic, and the share of those whose label is the seed's."""
    inside = seed_of >= 0
    precision = float((seed_labels[seed_of[inside]] == truth[inside]).mean()) if inside.any() else float("nan")
    return float(inside.mean()), precision


def bertopic_zeroshot(x: np.ndarray, texts: list[str], names: list[str], seed: int = 0) -> np.ndarray:
    """BERTopic's zero-shot topic modelling with its defaults (UMAP seeded), the names embedded by the same
    model."""
    from bertopic import BERTopic
    from sentence_transformers import SentenceTransformer
    from umap import UMAP

    umap_model = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed)
    model = BERTopic(umap_model=umap_model, embedding_model=SentenceTransformer(bundled_model_path()),
                     zeroshot_topic_list=names)
    topics, _ = model.fit_transform(texts, x)
    return np.asarray(topics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=list(NAMED))
    parser.add_argument("--algorithms", nargs="*", default=["louvain", "agglomerative"])
    parser.add_argument("--threshold", type=float, default=SEED_THRESHOLD)
    parser.add_argument("--sweep", nargs="*", type=float, default=None)
    parser.add_argument("--no-bertopic", action="store_true")
    args = parser.parse_args()
    embedder = SentenceEmbedder(device="cpu")
    rows = []
    for dataset in args.datasets:
        frame = load_dataset(dataset)
        texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
        x = embed(texts, embedder)
        for seeding, pairs in seedings(dataset, frame).items():
            vectors = embedder.encode(pairs["example"].tolist())
            for threshold in args.sweep or []:
                seeds = seeds_from(pairs[["name", "example"]], vectors, threshold).calibrated(x)
                labels = pairs.drop_duplicates("name").set_index("name").loc[list(seeds.names), "label"].to_numpy()
                share, precision = seeded_share(seeds.nearest(x), truth, labels)
                print(f"{dataset:15} {seeding:32} threshold {threshold:.2f}: {share:6.1%} seeded, "
                      f"precision {precision:.3f}", flush=True)
        if args.sweep:
            continue
        reference = normalized_mutual_info_score(truth, cluster(x, "reference", len(set(truth)))[0])
        zeroshot = None
        if installed("bertopic") and not args.no_bertopic:
            names = [readable(dataset, label) for label in sorted(set(truth))]
            zeroshot = normalized_mutual_info_score(truth, bertopic_zeroshot(x, texts, names))
        for algorithm in args.algorithms:
            plain = normalized_mutual_info_score(truth, cluster(x, algorithm, None)[0])
            row = {"dataset": dataset, "algorithm": algorithm, "unseeded NMI": plain, "reference NMI": reference,
                   "BERTopic zero-shot NMI": zeroshot}
            for seeding, pairs in seedings(dataset, frame).items():
                seeds = seeds_from(pairs[["name", "example"]], embedder.encode(pairs["example"].tolist()),
                                   args.threshold).calibrated(x)
                labels = pairs.drop_duplicates("name").set_index("name").loc[list(seeds.names), "label"].to_numpy()
                found, details = cluster(x, algorithm, None, seeds=seeds)
                nmi = normalized_mutual_info_score(truth, found)
                seed_of = np.where(found >= details["seed_cluster"], found - details["seed_cluster"], -1)
                share, precision = seeded_share(seed_of, truth, labels)
                key = seeding.split(":")[0]
                row.update({f"{key} NMI": nmi, f"{key} / unseeded": nmi / plain, f"{key} seeded": share,
                            f"{key} precision": precision})
                print(f"{dataset:15} {algorithm:14} {seeding:32} NMI {nmi:.3f} ({nmi / plain:.3f}x unseeded "
                      f"{plain:.3f}), {share:.1%} seeded, precision {precision:.3f}", flush=True)
            rows.append(row)
    if rows:
        table = pd.DataFrame(rows)
        print(table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
