import numpy as np

from dagster_project.core.topics import NOISE_LABEL, ctfidf_keywords, representative_indices, summarize_topics

TEXTS = [
    "the apple and the banana are fruit",
    "banana bread with apple",
    "a ripe banana",
    "the car engine is loud",
    "engine oil for the car",
    "a car with a new engine",
    "random words about nothing",
]
LABELS = np.array([0, 0, 0, 1, 1, 1, -1])


def test_ctfidf_ranks_cluster_specific_words_and_drops_stop_words():
    keywords = ctfidf_keywords(TEXTS, LABELS, n_keywords=2)
    assert keywords[0] == ["banana", "apple"]
    assert keywords[1] == ["car", "engine"]
    assert not {"the", "a", "and", "with"} & set(sum(keywords.values(), []))


def test_ctfidf_bigrams_when_asked():
    keywords = ctfidf_keywords(["machine learning rocks", "machine learning rules", "cats"], np.array([0, 0, 1]),
                               n_keywords=3, ngram_range=(1, 2))
    assert "machine learning" in keywords[0] and "learning rocks" not in keywords[0]


def test_only_stop_words_gives_empty_keywords():
    assert ctfidf_keywords(["the a an", "and or"], np.array([0, 1])) == {0: [], 1: []}


def test_representatives_are_central_and_distinct():
    vectors = np.array([[1, 0], [0.9, 0.1], [0.9, 0.1], [0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = ["edge", "centre", "centre", "other edge"]
    chosen = representative_indices(vectors, texts, 2)
    assert [texts[i] for i in chosen] == ["centre", "edge"]


def test_summary_rows_largest_first_with_noise_marked():
    vectors = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    summary = summarize_topics(TEXTS, vectors, LABELS, n_keywords=3, n_representatives=2)
    assert summary["cluster_id"].tolist() == [0, 1, -1]
    assert summary["size"].tolist() == [3, 3, 1]
    assert summary["share"].sum() == 1.0
    assert summary.loc[2, "label"] == NOISE_LABEL
    assert summary.loc[0, "label"] == "banana, apple, bread"
    assert all(len(r) <= 2 for r in summary["representative_sentences"])
