"""What keyword coherence (NPMI) costs in description: for each clustering of the scheduled refresh, the NPMI of
the keywords the topic assets write with their defaults, against the most coherent keywords to be had among each
topic's best c-TF-IDF terms, and what both say about the largest topic.

    python benchmarks/keywords.py [--datasets agnews8000 searchsnippets] [--candidates 30 100]

The most coherent keywords are picked greedily: the topic's best c-TF-IDF term first, then each next the
candidate of the highest mean NPMI with those picked (a term sharing a word with one picked is left out, so
"oil" and "oil prices" never score each other). `coherence_npmi` is the measure of `clustering_metrics` and
`benchmarks/quality.py` (each topic's top 10 keywords, sentences as documents).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import embed, load_dataset  # noqa: E402
from benchmarks.quality import cluster  # noqa: E402
from dagster_project.assets.config import TopicConfig  # noqa: E402
from dagster_project.core.clustering import SCHEDULED  # noqa: E402
from dagster_project.core.topics import (  # noqa: E402
    coherence_npmi,
    ctfidf_keywords,
    keyword_presence,
    pairwise_npmi,
)
from dagster_project.core.labels import summarize_topics  # noqa: E402
from dagster_project.resources import SentenceEmbedder  # noqa: E402

TOP = 10  # the keywords coherence_npmi scores


def most_coherent(texts: list[str], candidates: list[str]) -> list[str]:
    """TOP of `candidates` (best c-TF-IDF first), picked greedily for the highest mean NPMI with those picked."""
    if len(candidates) <= 2:
        return candidates[:TOP]
    presence, column = keyword_presence(texts, candidates)
    npmi = pairwise_npmi(presence[:, [column[w] for w in candidates]])
    words = [set(c.split()) for c in candidates]
    picked = [0]
    while len(picked) < min(TOP, len(candidates)):
        rest = [i for i in range(len(candidates)) if i not in picked and not any(words[i] & words[p] for p in picked)]
        if not rest:
            break
        picked.append(max(rest, key=lambda i: npmi[i, picked].mean()))
    return [candidates[i] for i in picked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=["agnews8000", "searchsnippets"])
    parser.add_argument("--candidates", nargs="*", type=int, default=[30, 100],
                        help="c-TF-IDF terms per topic to pick the most coherent from")
    args = parser.parse_args()
    config, embedder = TopicConfig(), SentenceEmbedder(device="cpu")
    print("| dataset | algorithm | topics | keywords | NPMI | largest topic's keywords |")
    print("|---|---|---|---|---|---|")
    for dataset in args.datasets:
        texts = load_dataset(dataset)["text"].tolist()
        x = embed(texts, embedder)
        for name in SCHEDULED:
            labels = cluster(x, name, None)[0]
            summary = summarize_topics(texts, x, labels, n_keywords=config.n_keywords,
                                       ngram_range=(1, config.max_ngram))
            largest = int(summary["cluster_id"].iloc[0])
            ways = {"the topic assets' (defaults)": dict(zip(summary["cluster_id"], summary["keywords"].map(list)))}
            for count in args.candidates:
                candidates = ctfidf_keywords(texts, labels, count, (1, config.max_ngram))
                ways[f"most coherent of {count}"] = {c: most_coherent(texts, words) for c, words in candidates.items()}
            for way, keywords in ways.items():
                topics = [keywords[c] for c in sorted(keywords) if c >= 0]
                print(f"| {dataset} | {name} | {len(topics)} | {way} | {coherence_npmi(texts, topics):.3f} | "
                      f"{', '.join(keywords[largest])} |", flush=True)


if __name__ == "__main__":
    main()
