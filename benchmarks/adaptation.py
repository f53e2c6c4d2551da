"""What unsupervised domain adaptation buys: k-means (k = number of labels) on the base model's embeddings vs
on each adapted model's, every model trained on the dataset's own sentences without their labels.

    python benchmarks/adaptation.py [--datasets stackoverflow ...] [--methods simcse tsdae ct] [--sample 3000]

Per dataset: a seeded sample of `--sample` sentences (all of them with --sample 0) is both the training corpus and
the evaluation set (the labels are only used to score). Adapted models are kept under data/adapted_bench/ and
reused by later runs (their training time is read back from the folder); vectors are cached like the other
benchmarks'. Prints NMI / ARI / V-measure per model, the change against the base, and the training time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, dataset_names, embed, load_dataset  # noqa: E402
from dagster_project.resources.adaptation import METHODS, AdaptationParams, adapted_folder, train  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402
from dagster_project.resources.embedder import bundled_model_path  # noqa: E402


def scores(truth, vectors, k: int, seed: int = 0) -> dict:
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(vectors).labels_
    return {"nmi": normalized_mutual_info_score(truth, labels), "ari": adjusted_rand_score(truth, labels),
            "v_measure": v_measure_score(truth, labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None, help="default: every dataset")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--sample", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    args = parser.parse_args()
    base = SentenceEmbedder(device="cpu")
    rows = []
    for dataset in args.datasets or dataset_names():
        frame = load_dataset(dataset)
        if args.sample and len(frame) > args.sample:
            frame = frame.sample(args.sample, random_state=0).reset_index(drop=True)
        texts, truth = frame["text"].tolist(), frame["label"].to_numpy()
        k = len(set(truth))
        rows.append({"dataset": dataset, "sentences": len(texts), "labels": k, "model": "base",
                     "train_seconds": 0.0, **scores(truth, embed(texts, base), k)})
        print(f"{dataset}: base NMI {rows[-1]['nmi']:.3f}", file=sys.stderr, flush=True)
        for method in args.methods:
            params = AdaptationParams(method=method, epochs=args.epochs, batch_size=args.batch_size,
                                      learning_rate=args.learning_rate, max_sentences=len(texts), min_sentences=100)
            folder = adapted_folder(ROOT / "data" / "adapted_bench", f"{dataset}@{base.model_identity}", texts, params)
            if not (folder / "adaptation.json").exists():
                train(bundled_model_path(), texts, params, folder)
            info = json.loads((folder / "adaptation.json").read_text())
            vectors = embed(texts, SentenceEmbedder(model=str(folder), device="cpu"))
            rows.append({"dataset": dataset, "sentences": len(texts), "labels": k, "model": method,
                         "train_seconds": info["train_seconds"], **scores(truth, vectors, k)})
            print(f"  {method}: NMI {rows[-1]['nmi']:.3f}, trained in {info['train_seconds']:.0f}s",
                  file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    base_nmi = table[table["model"] == "base"].set_index("dataset")["nmi"]
    table["nmi_change"] = table["nmi"] - table["dataset"].map(base_nmi)
    print(f"k-means with k = number of labels; {args.epochs} epoch(s), batch {args.batch_size}, "
          f"learning rate {args.learning_rate}\n")
    print("| dataset | sentences | labels | model | NMI | ARI | V-measure | NMI change | training s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        print(f"| {r.dataset} | {r.sentences} | {r.labels} | {r.model} | {r.nmi:.3f} | {r.ari:.3f} | "
              f"{r.v_measure:.3f} | {r.nmi_change:+.3f} | {r.train_seconds:.0f} |")
    print("\nMedian NMI change per method:")
    print(table[table["model"] != "base"].groupby("model")["nmi_change"].median().round(3).to_string())


if __name__ == "__main__":
    main()
