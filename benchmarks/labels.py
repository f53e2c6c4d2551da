"""Topic labels that never say a word twice, against the previous rule (the first three keywords joined), in one run.

    python benchmarks/labels.py

For each labelled dataset in ../shared/datasets, and for their mixture (every dataset in one corpus, each label
prefixed by its dataset), the topics are the dataset's own labels, so that only the labels stage is measured:
c-TF-IDF keywords as the topics asset makes them (10 keywords, up to 2-word phrases), then a label by each rule.
Prints per corpus: topics, words per label and the share of labels that repeat a word, for each rule, and the
ratio of words per label (new / previous). Clustering is untouched by the labels stage (it runs after the
clustering has been written), so every clustering's NMI is the same by construction.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import dataset_names, load_dataset  # noqa: E402
from dagster_project.assets.config import TopicConfig  # noqa: E402
from dagster_project.core.labels import keyword_label  # noqa: E402
from dagster_project.core.topics import ctfidf_keywords  # noqa: E402

PHRASES = 3  # keywords a label holds at most, by either rule


def previous_label(keywords: list[str]) -> str:
    """The rule before: the first three keywords, joined."""
    return ", ".join(keywords[:PHRASES])


def label_words(labels: list[str]) -> tuple[float, float]:
    """Mean words per label and the share of labels in which a word appears twice."""
    words = [label.replace(",", " ").split() for label in labels]
    return float(np.mean([len(w) for w in words])), float(np.mean([len(w) != len(set(w)) for w in words]))


def measure(name: str, frame: pd.DataFrame) -> dict:
    config = TopicConfig()
    labels = pd.factorize(frame["label"])[0]
    keywords = ctfidf_keywords(frame["text"].tolist(), labels, config.n_keywords, (1, config.max_ngram))
    before = [previous_label(k) for k in keywords.values() if k]
    after = [keyword_label(k, []) for k in keywords.values() if k]
    (words_before, repeats_before), (words_after, repeats_after) = label_words(before), label_words(after)
    example = next((f"{b} -> {a}" for b, a in zip(before, after) if b != a), "")
    return {"corpus": name, "topics": len(before), "words_before": words_before, "repeating_before": repeats_before,
            "words_after": words_after, "repeating_after": repeats_after,
            "words_ratio": words_after / words_before, "example": example}


def main() -> None:
    rows, mixture = [], []
    for name in dataset_names():
        frame = load_dataset(name)
        rows.append(measure(name, frame))
        mixture.append(frame.assign(label=name + ":" + frame["label"].astype(str)))
    rows.append(measure("mixture of all", pd.concat(mixture, ignore_index=True)))
    table = pd.DataFrame(rows)
    print(table.drop(columns="example").round(3).to_markdown(index=False))
    print()
    for row in rows:
        if row["example"]:
            print(f"- {row['corpus']}: {row['example']}")


if __name__ == "__main__":
    main()
