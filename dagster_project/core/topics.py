"""Topic summaries per cluster: class-based TF-IDF keywords, central sentences, a short label."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

NOISE_LABEL = "noise: sentences in no cluster"


def ctfidf_keywords(
    texts: Sequence[str], labels: np.ndarray, n_keywords: int = 8, ngram_range: tuple[int, int] = (1, 1)
) -> dict[int, list[str]]:
    """Top terms per cluster by class-based TF-IDF (BERTopic): term frequency within the cluster's
    concatenated text, L1-normalized, times log(1 + mean words per cluster / frequency over all clusters).
    English stop words are removed."""
    clusters = np.unique(labels)
    documents = [" ".join(np.asarray(texts, dtype=object)[labels == c]) for c in clusters]
    vectorizer = CountVectorizer(stop_words="english", ngram_range=ngram_range, token_pattern=r"(?u)\b\w\w+\b")
    try:
        counts = vectorizer.fit_transform(documents)
    except ValueError:  # every word is a stop word
        return {int(c): [] for c in clusters}
    terms = vectorizer.get_feature_names_out()
    frequency = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1.0 + counts.sum() / len(clusters) / frequency)
    scores = normalize(counts, norm="l1", axis=1).multiply(idf).tocsr()
    keywords = {}
    for row, cluster in enumerate(clusters):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        values, columns = scores.data[start:end], scores.indices[start:end]
        best = np.lexsort((terms[columns], -values))[:n_keywords]
        keywords[int(cluster)] = [str(terms[columns[i]]) for i in best]
    return keywords


def representative_indices(embeddings: np.ndarray, texts: Sequence[str], count: int) -> list[int]:
    """Indices of the `count` sentences closest to the cluster's mean direction, distinct texts only."""
    centre = embeddings.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    chosen, seen = [], set()
    for index in np.argsort(-(embeddings @ centre), kind="stable"):
        if texts[index] not in seen:
            seen.add(texts[index])
            chosen.append(int(index))
            if len(chosen) == count:
                break
    return chosen


def short_label(keywords: list[str], representatives: list[str], words: int = 3) -> str:
    if keywords:
        return ", ".join(keywords[:words])
    return representatives[0][:60] if representatives else "(empty)"


def summarize_topics(
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    n_keywords: int = 8,
    n_representatives: int = 3,
    ngram_range: tuple[int, int] = (1, 1),
) -> pd.DataFrame:
    """One row per cluster (noise -1 included, marked), largest first:
    cluster_id, size, share, label, keywords, representative_sentences."""
    texts = list(texts)
    labels = np.asarray(labels)
    keywords = ctfidf_keywords(texts, labels, n_keywords, ngram_range)
    rows = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        member_texts = [texts[i] for i in members]
        reps = [member_texts[i] for i in representative_indices(embeddings[members], member_texts, n_representatives)]
        label = NOISE_LABEL if cluster < 0 else short_label(keywords[int(cluster)], reps)
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
