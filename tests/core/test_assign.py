"""Labelling a corpus a chunk at a time after a fit of part of it."""

import numpy as np
import pytest

from dagster_project.core.assign import UNFITTED, assign_to_topics, centroids, label_streamed, stratified_rows
from dagster_project.core.topic_memory import shapes_from_sums, topic_shapes


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_streamed_labels_and_shapes_match_those_of_the_whole_matrix():
    x = unit_rows(500)
    fitted = np.arange(0, 500, 3)
    fit_labels = np.argmax(x[fitted][:, :4], axis=1)
    ids, centres = centroids(x[fitted], fit_labels)
    labels = np.full(500, UNFITTED)
    labels[fitted] = fit_labels
    order = np.random.default_rng(2).permutation(500)  # chunks come in any order
    chunks = ((order[start:start + 37], x[order[start:start + 37]]) for start in range(0, 500, 37))
    streamed, sums = label_streamed(chunks, labels, centres, ids)
    expected = ids[np.argmax(x @ centres.T, axis=1)]
    expected[fitted] = fit_labels
    assert np.array_equal(streamed, expected)
    exact = topic_shapes(x, streamed)
    shapes = shapes_from_sums(sums, streamed, x, streamed)
    assert np.array_equal(shapes.sizes, exact.sizes) and np.allclose(shapes.centres, exact.centres, atol=1e-6)
    assert np.allclose(shapes.radii, exact.radii, atol=1e-6)


def test_streamed_rows_of_a_noisy_fit_are_assigned_as_new_sentences_are():
    """With radii, the pass labels as `assign_to_topics` does (its spread rule is tested with topic matching)."""
    x = unit_rows(200, seed=1)
    centres = x[:2]
    labels = np.full(200, UNFITTED)
    labels[:2] = [7, 9]
    streamed, _ = label_streamed([(np.arange(100), x[:100]), (np.arange(100, 200), x[100:])], labels, centres,
                                 np.array([7, 9]), radii=np.array([0.5, 0.5]))
    index = assign_to_topics(x[2:], centres, np.array([0.5, 0.5]))
    assert (index == -1).any() and (index >= 0).any()
    assert np.array_equal(streamed[2:], np.where(index < 0, -1, np.array([7, 9])[index]))


def test_stratified_rows_keep_every_label():
    labels = np.r_[np.zeros(10_000, int), np.ones(3, int), [7]]
    rows = stratified_rows(labels, 100)
    assert set(labels[rows]) == {0, 1, 7} and 95 <= len(rows) <= 105 and np.all(np.diff(rows) > 0)


def test_a_row_missing_from_the_chunks_is_an_error():
    x = unit_rows(10)
    labels = np.full(10, UNFITTED)
    labels[0] = 0
    with pytest.raises(ValueError, match="no vector for 1 of 10"):
        label_streamed([(np.arange(9), x[:9])], labels, x[:1], np.array([0]))
