import numpy as np

from dagster_project.core.plots import hierarchy_png
from dagster_project.core.labels import NOISE_LABEL, diverse_keywords, representative_indices, summarize_topics
from dagster_project.core.topics import coherence_npmi, ctfidf_keywords, topic_diversity, topic_hierarchy

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


def test_a_phrase_of_the_same_words_as_a_better_one_is_left_out():
    texts = ["boston denver flight", "denver boston flight", "boston denver fare", "rain today", "rain tonight"]
    keywords = ctfidf_keywords(texts, np.array([0, 0, 0, 1, 1]), n_keywords=10, ngram_range=(1, 2))[0]
    assert ("boston denver" in keywords) != ("denver boston" in keywords)


def test_only_stop_words_gives_empty_keywords():
    assert ctfidf_keywords(["the a an", "and or"], np.array([0, 1])) == {0: [], 1: []}


def test_representatives_are_central_and_distinct():
    vectors = np.array([[1, 0], [0.7, 0.3], [0.7, 0.3], [0.75, 0.25], [0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = ["edge", "centre", "centre", "near-duplicate of centre", "other edge"]
    chosen = representative_indices(vectors, texts, 2)
    assert [texts[i] for i in chosen] == ["centre", "edge"]


def test_summary_rows_largest_first_with_noise_marked():
    vectors = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    summary = summarize_topics(TEXTS, vectors, LABELS, n_keywords=3, n_representatives=2, ngram_range=(1, 1))
    assert summary["cluster_id"].tolist() == [0, 1, -1]
    assert summary["size"].tolist() == [3, 3, 1]
    assert summary["share"].sum() == 1.0
    assert summary.loc[2, "label"] == NOISE_LABEL
    assert summary.loc[0, "label"] == "banana, apple, bread"
    assert all(len(r) <= 2 for r in summary["representative_sentences"])


def test_mmr_drops_near_duplicate_keywords():
    space = {"engine": [1, 0, 0], "engines": [0.99, 0.14, 0], "car engine": [0.95, 0.3, 0], "oil": [0.6, 0, 0.8]}
    embed = lambda words: np.array([np.array(space[w]) / np.linalg.norm(space[w]) for w in words])  # noqa: E731
    picked = diverse_keywords(["oil", "engines", "car engine", "engine"], np.array([1.0, 0.0, 0.3]), embed, 2)
    assert picked == ["engine", "oil"]  # the most central candidate first, whatever its c-TF-IDF rank


def test_hierarchy_merges_the_closest_topics_first():
    vectors = np.array([[1, 0, 0], [1, 0, 0], [0.9, 0.43, 0], [0.9, 0.43, 0], [0, 0, 1], [0, 0, 1]],
                       dtype=np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2])
    tree = topic_hierarchy(vectors, labels)
    assert tree[["merge_id", "left", "right", "size"]].values.tolist() == [[3, 0, 1, 4], [4, 2, 3, 6]]
    assert tree["distance"].is_monotonic_increasing
    assert topic_hierarchy(vectors[:2], labels[:2]).empty


def test_hierarchy_of_more_topics_than_its_limit_joins_the_largest():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), [5, 9, 2, 7, 1, 4])
    vectors = rng.standard_normal((len(labels), 4)).astype(np.float32)
    tree = topic_hierarchy(vectors, labels, limit=3)
    assert set(tree["left"]) | set(tree["right"]) == {1, 3, 0, 6}  # topics 1, 3, 0, then the first merge
    assert tree["merge_id"].tolist() == [6, 7] and tree["size"].iloc[-1] == 21  # merge ids after every topic
    assert hierarchy_png(tree, {i: f"t{i}" for i in range(6)}, "capped") is not None


def test_markup_left_in_scraped_text_never_becomes_a_keyword():
    texts = ["stocks rally &quot;strongly&quot; lt href http investor reuters fullquote aspx gt today",
             "stocks <b>rally</b> again, see https://example.com/markets", "stocks rally on earnings",
             "rain and wind tonight", "wind and rain tomorrow", "rain again"]
    keywords = ctfidf_keywords(texts, np.array([0, 0, 0, 1, 1, 1]), n_keywords=20)
    assert {"stocks", "rally", "rain", "wind"} <= set(keywords[0] + keywords[1])
    assert not {"quot", "href", "http", "fullquote", "aspx", "gt", "lt", "example", "com", "markets"} & set(
        keywords[0] + keywords[1])


def test_a_word_every_topic_uses_ranks_below_the_words_of_each_topic():
    texts = ["reuters stocks rally", "reuters stocks fall", "reuters stocks rally",
             "reuters rain tonight", "reuters rain tomorrow", "reuters rain again"]
    keywords = ctfidf_keywords(texts, np.array([0, 0, 0, 1, 1, 1]), n_keywords=3)
    assert keywords[0][0] == "stocks" and keywords[1][0] == "rain"
    assert keywords[0].index("reuters") > keywords[0].index("rally")


def test_coherence_is_high_for_words_that_occur_together_and_diversity_counts_repeats():
    texts = ["cat dog", "cat dog bird", "car engine", "car engine oil", "bird", "oil"]
    together = coherence_npmi(texts, [["cat", "dog"], ["car", "engine"]])
    assert together > 0.5 and coherence_npmi(texts, [["cat", "car"]]) < -0.5
    assert coherence_npmi(texts, [["cat"]]) is None
    assert topic_diversity([["a", "b"], ["b", "c"]]) == 0.75 and topic_diversity([["a"], ["b"]]) == 1.0
