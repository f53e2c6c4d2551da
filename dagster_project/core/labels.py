"""The labels stage: what a person reads of a topic. Keywords (c-TF-IDF, optionally diversified), the
representative sentences nearest its centre, and a short label made by one of LABEL_METHODS (a new method is one
function and one entry there, chosen with TopicConfig.label_method). A curated label (`topic_curation`, written by
people) replaces the made one while the topic lives: the topics store applies it after every summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .topics import ctfidf_keywords

NOISE_LABEL = "noise: sentences in no cluster"


def representative_indices(
    embeddings: np.ndarray, texts: Sequence[str], count: int, max_similarity: float = 0.95
) -> list[int]:
    """Indices of the `count` sentences closest to the cluster's mean direction, skipping repeated texts and
    near-duplicates (cosine above `max_similarity` to one already chosen)."""
    centre = embeddings.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    chosen, seen = [], set()
    for index in np.argsort(-(embeddings @ centre), kind="stable"):
        if texts[index] in seen or any(float(embeddings[index] @ embeddings[c]) > max_similarity for c in chosen):
            continue
        seen.add(texts[index])
        chosen.append(int(index))
        if len(chosen) == count:
            break
    return chosen


def diverse_keywords(
    candidates: list[str], centre: np.ndarray, embed: Callable[[list[str]], np.ndarray], count: int,
    diversity: float = 0.5,
) -> list[str]:
    """The c-TF-IDF candidates re-ranked by the similarity of their embedding to the cluster centre (as BERTopic's
    KeyBERTInspired), then picked by maximal marginal relevance: each next keyword is similar to the centre and
    unlike those already picked, so near-duplicates ("engine", "engines", "car engine") do not crowd out other
    words. The most central candidate comes first."""
    if len(candidates) <= 1:
        return candidates[:count]
    vectors = embed(candidates)
    centre = centre / (np.linalg.norm(centre) or 1.0)
    relevance = vectors @ centre
    similarity = vectors @ vectors.T
    picked = [int(np.argmax(relevance))]
    while len(picked) < min(count, len(candidates)):
        rest = [i for i in range(len(candidates)) if i not in picked]
        scores = [(1 - diversity) * relevance[i] - diversity * similarity[i, picked].max() for i in rest]
        picked.append(rest[int(np.argmax(scores))])
    return [candidates[i] for i in picked]


def keyword_label(keywords: list[str], representatives: list[str], phrases: int = 3) -> str:
    """The first keywords, no word said twice.

    Up to `phrases` keywords in their order, a word inside a chosen phrase never listed again: a phrase holding
    words already chosen takes their place ("king, speech, king speech" reads "king speech"), and a keyword whose
    words are all chosen, or that shares only some of them, is passed over. Without keywords: the first
    representative sentence."""
    chosen: list[str] = []
    for keyword in keywords:
        words = set(keyword.split())
        inside = [c for c in chosen if set(c.split()) <= words]  # chosen phrases this one holds whole
        kept = [c for c in chosen if c not in inside]
        if inside and words == set(" ".join(inside).split()):
            continue  # the same words again
        if words & set(" ".join(kept).split()):
            continue  # would say a kept phrase's word again
        at = chosen.index(inside[0]) if inside else len(chosen)
        chosen = kept[:at] + [keyword] + kept[at:] if inside else [*kept, keyword]
        if len(chosen) == phrases:
            break
    return ", ".join(chosen) if chosen else sentence_label(keywords, representatives)


def sentence_label(keywords: list[str], representatives: list[str], width: int = 60) -> str:
    """The sentence nearest the topic's centre, cut at 60 characters."""
    return representatives[0][:width] if representatives else "(empty)"


LABEL_METHODS = {"keywords": keyword_label, "sentence": sentence_label}  # TopicConfig.label_method


def summarize_topics(
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    n_keywords: int = 8,
    n_representatives: int = 3,
    ngram_range: tuple[int, int] = (1, 2),
    embed: Callable[[list[str]], np.ndarray] | None = None,
    diversity: float = 0.5,
    label_method: str = "keywords",
) -> pd.DataFrame:
    """One row per cluster (noise -1 included, marked), largest first:
    cluster_id, size, share, label, keywords, representative_sentences.
    With `embed` (texts -> normalized vectors), keywords are diversified by MMR among 3x as many candidates;
    `label_method`: a name of LABEL_METHODS."""
    texts = list(texts)
    labels = np.asarray(labels)
    make_label = LABEL_METHODS[label_method]
    candidates = ctfidf_keywords(texts, labels, n_keywords * (3 if embed else 1), ngram_range)
    rows = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        member_texts = [texts[i] for i in members]
        reps = [member_texts[i] for i in representative_indices(embeddings[members], member_texts, n_representatives)]
        keywords = {int(cluster): candidates[int(cluster)][:n_keywords]}
        if embed is not None:
            centre = embeddings[members].mean(axis=0)
            keywords[int(cluster)] = diverse_keywords(candidates[int(cluster)], centre, embed, n_keywords, diversity)
        label = NOISE_LABEL if cluster < 0 else make_label(keywords[int(cluster)], reps)
        rows.append(
            {
                "cluster_id": int(cluster),
                "size": int(len(members)),
                "share": len(members) / len(labels),
                "label": label,
                "keywords": keywords[int(cluster)],
                "representative_sentences": reps,
            }
        )
    frame = pd.DataFrame(rows, columns=["cluster_id", "size", "share", "label", "keywords", "representative_sentences"])
    return frame.sort_values(["size", "cluster_id"], ascending=[False, True], ignore_index=True)


def describe_topics(texts: Sequence[str], embeddings: np.ndarray, labels: np.ndarray, rows: np.ndarray,
                    topic_of: pd.Series, n_keywords: int = 10, n_representatives: int = 3, max_ngram: int = 2,
                    diversity: float = 0.0, label_method: str = "keywords",
                    embed: Callable[[list[str]], np.ndarray] | None = None) -> pd.DataFrame:
    """The `topic_summaries` rows of one clustering: `labels` of every sentence, `rows` the positions of those read
    (`texts`, `embeddings`: a sample holding every topic, or all); sizes and shares count every sentence, topic ids
    from `topic_of` (cluster_id -> topic_id); `keyword_label` keeps the made label beside a curated one."""
    summary = summarize_topics(texts, embeddings, labels[rows], n_keywords=n_keywords,
                               n_representatives=n_representatives, ngram_range=(1, max(1, max_ngram)),
                               embed=embed if diversity > 0 else None, diversity=diversity, label_method=label_method)
    sizes = pd.Series(labels).value_counts()
    summary = summary.assign(size=summary["cluster_id"].map(sizes).astype("int64"),
                             share=lambda t: t["size"] / max(len(labels), 1))
    summary = summary.sort_values(["size", "cluster_id"], ascending=[False, True], ignore_index=True)
    return summary.assign(topic_id=summary["cluster_id"].map(topic_of).fillna(-1).astype("int64"),
                          keyword_label=summary["label"])
