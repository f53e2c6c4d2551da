import numpy as np
import pytest
import torch
from sentence_transformers.util import community_detection as reference

from benchmarks.common import community_labels
from dagster_project.core.community import kth_neighbor_similarity


def as_communities(labels):
    return sorted(sorted(np.flatnonzero(labels == c).tolist()) for c in set(labels.tolist()) - {-1})


def reference_communities(x, threshold, min_size):
    return sorted(sorted(c) for c in reference(torch.from_numpy(x), threshold=threshold, min_community_size=min_size))


@pytest.mark.parametrize("threshold, min_size", [(0.75, 10), (0.5, 5), (0.4, 3), (0.3, 10), (0.6, 2)])
def test_same_communities_as_sentence_transformers_on_real_embeddings(sample_embeddings, threshold, min_size):
    labels = community_labels(sample_embeddings, threshold, min_size)
    assert as_communities(labels) == reference_communities(sample_embeddings, threshold, min_size)
    assert len(labels) == len(sample_embeddings)  # nobody dropped: unassigned are -1


def test_small_memory_blocks_give_the_same_answer(sample_embeddings):
    full = community_labels(sample_embeddings, 0.4, 3)
    tiny_blocks = community_labels(sample_embeddings, 0.4, 3, block_bytes=4 * len(sample_embeddings) * 7)
    assert full.tolist() == tiny_blocks.tolist()


def test_communities_numbered_largest_first(sample_embeddings):
    labels = community_labels(sample_embeddings, 0.4, 3)
    sizes = [int((labels == c).sum()) for c in range(labels.max() + 1)]
    assert sizes == sorted(sizes, reverse=True)


def test_kth_neighbor_similarity_counts_itself_first():
    x = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    assert kth_neighbor_similarity(x, 1).tolist() == pytest.approx([1, 1, 1])
    assert kth_neighbor_similarity(x, 2).tolist() == pytest.approx([0.8, 0.8, 0.6])


def test_kth_neighbor_similarity_of_queries_against_a_corpus():
    corpus = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    queries = np.array([[0.6, 0.8]], dtype=np.float32)
    assert kth_neighbor_similarity(queries, 2, corpus).tolist() == pytest.approx([0.8])
