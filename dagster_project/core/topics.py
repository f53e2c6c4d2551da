"""Words of topics: class-based TF-IDF keywords, the topic hierarchy, and label-free topic quality (NPMI
coherence, diversity). Labels and representatives are the labels stage (`labels.py`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.preprocessing import normalize

from .assign import centroids

# Markup left in scraped text: tags, entities, links, and what is left of them once the punctuation was stripped
# ("lt href http ... gt", "quot"). Removed before counting words, never from the stored sentences.
MARKUP = re.compile(r"<[^<>]{0,300}>|&#?\w{1,10};|(?:https?://|www\.)\S+|\blt\b(?:\s+\S+){0,20}?\s+gt\b",
                    re.IGNORECASE)
MARKUP_WORDS = frozenset({"quot", "amp", "lt", "gt", "nbsp", "apos", "href", "http", "https", "www", "html", "htm",
                          "aspx", "php", "com"})
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | MARKUP_WORDS)


def keyword_text(text: str) -> str:
    """The text that keywords are counted in: lower case, markup removed."""
    return MARKUP.sub(" ", text.lower())


def ctfidf_keywords(
    texts: Sequence[str], labels: np.ndarray, n_keywords: int = 8, ngram_range: tuple[int, int] = (1, 1),
    min_count: int = 2,
) -> dict[int, list[str]]:
    """Top terms per cluster by class-based TF-IDF (BERTopic): term frequency within the cluster, L1-normalized,
    times log(1 + mean words per cluster / frequency over all clusters), times log(1 + clusters / clusters using
    the term) / log(1 + clusters), which sinks words that every topic uses (news agencies, greetings) where
    BERTopic's `reduce_frequent_words` only dampens each term's frequency. English stop words and markup are
    removed; n-grams never span two sentences; terms seen at least `min_count` times in the cluster rank before
    rarer ones; a phrase of the same words as one ranked higher ("denver boston" after "boston denver") is left
    out."""
    from scipy import sparse

    labels = np.asarray(labels)
    clusters, rows = np.unique(labels, return_inverse=True)
    vectorizer = CountVectorizer(stop_words=STOP_WORDS, ngram_range=ngram_range, token_pattern=r"(?u)\b\w\w+\b",
                                 preprocessor=keyword_text)
    try:
        per_sentence = vectorizer.fit_transform(texts)
    except ValueError:  # every word is a stop word
        return {int(c): [] for c in clusters}
    membership = sparse.csr_matrix((np.ones(len(labels)), (rows, np.arange(len(labels)))),
                                   shape=(len(clusters), len(labels)))
    counts = (membership @ per_sentence).tocsr()
    terms = vectorizer.get_feature_names_out()
    frequency = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log(1.0 + counts.sum() / len(clusters) / frequency)
    spread = np.log(1.0 + len(clusters) / np.bincount(counts.indices, minlength=len(terms))) / np.log(
        1.0 + len(clusters))
    scores = normalize(counts, norm="l1", axis=1).multiply(idf * spread).tocsr()
    keywords = {}
    for row, cluster in enumerate(clusters):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        values, columns = scores.data[start:end], scores.indices[start:end]
        rare = counts[row, columns].toarray().ravel() < min_count
        ranked = [str(terms[columns[i]]) for i in np.lexsort((terms[columns], -values, rare))]
        keywords[int(cluster)] = distinct_phrases(ranked, n_keywords)
    return keywords


def distinct_phrases(ranked: list[str], count: int) -> list[str]:
    """The first `count` of `ranked`, leaving out each phrase whose words are those of one kept before."""
    kept, seen = [], set()
    for phrase in ranked:
        words = frozenset(phrase.split())
        if words not in seen:
            seen.add(words)
            kept.append(phrase)
            if len(kept) == count:
                break
    return kept


HIERARCHY_TOPICS = 5_000  # topics the hierarchy joins at most: its linkage holds every pair of them


def topic_hierarchy(embeddings: np.ndarray, labels: np.ndarray, sizes: dict[int, int] | None = None,
                    limit: int = HIERARCHY_TOPICS) -> pd.DataFrame:
    """Which topics merge first when fewer are wanted: average-linkage (cosine) merges of the cluster centroids.
    One row per merge: merge_id (clusters are 0..k-1, merge i creates node k+i), left, right, distance, size
    (from `sizes`, cluster id -> sentences, when the rows are a sample of them). Above `limit` topics, it joins
    the `limit` largest (memory and time grow with the square of the topics)."""
    from scipy.cluster.hierarchy import linkage

    ids, means = centroids(embeddings, labels)
    columns = ["merge_id", "left", "right", "distance", "size"]
    if len(ids) < 2:
        return pd.DataFrame(columns=columns)
    sizes = {int(c): int(sizes[int(c)]) if sizes else int((labels == c).sum()) for c in ids}
    next_node = int(ids.max()) + 1
    if len(ids) > limit:
        largest = np.sort(np.argsort([-sizes[int(c)] for c in ids], kind="stable")[:limit])
        ids, means = ids[largest], means[largest]
    tree = linkage(means.astype(np.float64), method="average", metric="cosine")
    node_ids = [int(c) for c in ids]  # leaves keep their cluster ids
    rows = []
    for i, (a, b, distance, _) in enumerate(tree):
        left, right = node_ids[int(a)], node_ids[int(b)]
        size = sizes[left] + sizes[right]
        node = next_node + i
        node_ids.append(node)
        sizes[node] = size
        rows.append({"merge_id": node, "left": left, "right": right, "distance": float(distance), "size": size})
    return pd.DataFrame(rows, columns=columns)


def keyword_presence(texts: Sequence[str], words: Sequence[str]) -> tuple[object, dict[str, int]]:
    """Which sentences contain which keywords (a sparse sentences x words 0/1 matrix, counted as the keywords were)
    and each word's column."""
    words = sorted(set(words))
    longest = max((len(w.split()) for w in words), default=1)
    vectorizer = CountVectorizer(vocabulary=words, ngram_range=(1, longest), binary=True, stop_words=STOP_WORDS,
                                 token_pattern=r"(?u)\b\w\w+\b", preprocessor=keyword_text)
    return vectorizer.transform(texts).tocsc(), {w: i for i, w in enumerate(words)}


def coherence_npmi(texts: Sequence[str], topics: Sequence[Sequence[str]], top: int = 10) -> float | None:
    """Mean normalized pointwise mutual information of every pair of each topic's `top` keywords, with the
    sentences as the documents words co-occur in (the coherence of the BERTopic paper and OCTIS, whose gensim
    `c_npmi` slides a 10-word window: for short texts, about a sentence), averaged over topics: 1 when a topic's
    words always occur together, 0 when independently, -1 never together. None without a topic of 2 keywords."""
    topics = [list(t)[:top] for t in topics if len(t) >= 2]
    if not topics or not len(texts):
        return None
    presence, column = keyword_presence(texts, [w for t in topics for w in t])
    scores = []
    for words in topics:
        i, j = np.triu_indices(len(words), k=1)
        scores.append(float(np.mean(pairwise_npmi(presence[:, [column[w] for w in words]])[i, j])))
    return float(np.mean(scores))


def pairwise_npmi(presence: object) -> np.ndarray:
    """NPMI of every pair of columns of a sentences x words 0/1 sparse matrix (the diagonal is meaningless)."""
    epsilon = 1e-12
    together = (presence.T @ presence).toarray() / presence.shape[0]
    alone = np.diag(together)
    joint = together + epsilon
    return np.log(joint / (np.outer(alone, alone) + epsilon)) / -np.log(joint)


def topic_diversity(topics: Sequence[Sequence[str]], top: int = 25) -> float | None:
    """The share of distinct keywords among all topics' `top` keywords (1: no topic repeats another's words)."""
    words = [w for t in topics for w in list(t)[:top]]
    return len(set(words)) / len(words) if words else None
