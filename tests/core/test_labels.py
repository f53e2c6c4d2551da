"""The labels stage: a label never says a word twice, and a label method is chosen by name."""

import numpy as np
import pytest

from dagster_project.core.labels import LABEL_METHODS, keyword_label, sentence_label, summarize_topics


@pytest.mark.parametrize(("keywords", "label"), [
    (["superbowl", "commercial", "superbowl commercial", "ad"], "superbowl, commercial, ad"),
    (["speech", "king speech", "king", "royal"], "king speech, royal"),
    (["king", "speech", "royal", "king speech"], "king, speech, royal"),
    (["new", "fare", "york new", "new york city"], "new york city, fare"),
    (["flights", "flight", "fare", "fares"], "flights, flight, fare"),
])
def test_a_word_inside_a_chosen_phrase_is_not_listed_again(keywords, label):
    assert keyword_label(keywords, []) == label
    words = label.replace(",", "").split()
    assert len(words) == len(set(words))


def test_without_keywords_the_label_is_the_central_sentence():
    assert keyword_label([], ["the sentence nearest the centre"]) == "the sentence nearest the centre"
    assert sentence_label(["a"], ["x" * 100]) == "x" * 60
    assert sentence_label([], []) == "(empty)"


def test_the_label_method_is_chosen_by_name():
    texts = ["cheap flights to boston", "flights to boston today", "boston flights cheap", "my card was declined",
             "card declined again", "why was my card declined"]
    labels = np.array([0, 0, 0, 1, 1, 1])
    vectors = np.eye(6, dtype=np.float32)[[0, 0, 0, 1, 1, 1]] + 0.01
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    by_keywords = summarize_topics(texts, vectors, labels, n_keywords=5, label_method="keywords")
    by_sentence = summarize_topics(texts, vectors, labels, n_keywords=5, label_method="sentence")
    assert set(LABEL_METHODS) == {"keywords", "sentence"}
    assert "boston" in by_keywords.loc[by_keywords["cluster_id"] == 0, "label"].iloc[0]
    assert by_sentence["label"].tolist() == [reps[0] for reps in by_sentence["representative_sentences"]]
    assert by_keywords["keywords"].tolist() == by_sentence["keywords"].tolist()
