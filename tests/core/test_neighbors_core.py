import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from dagster_project.core import neighbors
from dagster_project.core.clustering import CommunityParams, DBSCANParams, community_detection, dbscan
from dagster_project.core.community import neighbour_lists
from dagster_project.core.neighbors import as_neighbours, indexed, near_duplicate_groups, outdated_by, search


@pytest.mark.parametrize("first_k", [2, 32])
def test_neighbours_above_a_threshold_from_the_index_are_the_exact_lists(sample_embeddings, monkeypatch, first_k):
    """Rows whose first search is all above the threshold search again with more (first_k 2 forces it)."""
    monkeypatch.setattr(neighbors, "FIRST_RADIUS_K", first_k)
    for threshold in (0.3, 0.6):
        indptr, indices = neighbors.neighbours_above(sample_embeddings, threshold)
        exact_indptr, exact_indices = neighbour_lists(sample_embeddings, threshold)
        assert np.array_equal(indptr, exact_indptr) and np.array_equal(indices, exact_indices)


def test_community_detection_and_dbscan_through_the_index_agree_with_exact(sample_embeddings, monkeypatch):
    monkeypatch.setattr(neighbors, "EXACT_SEARCH_UP_TO", 0)  # the graph search, as on a large corpus
    for fit, params in ((community_detection, CommunityParams), (dbscan, DBSCANParams)):
        exact, approximate = fit(sample_embeddings, params(search="exact")), fit(sample_embeddings,
                                                                                 params(search="index"))
        assert approximate.details["neighbours"].startswith("approximate index")
        assert adjusted_rand_score(exact.labels, approximate.labels) >= 0.95


def test_search_leaves_each_row_out_of_its_own_list(sample_embeddings):
    ids = np.arange(len(sample_embeddings)) + 1000
    index = neighbors.new_index(sample_embeddings.shape[1])
    neighbors.add_vectors(index, ids, sample_embeddings)
    found, similarity = search(index, ids, sample_embeddings, 5)
    exact = sample_embeddings @ sample_embeddings.T
    np.fill_diagonal(exact, -np.inf)
    assert not (found == ids[:, None]).any()
    # the five most similar (a small index is searched exactly), up to ties within half precision (float16 vectors)
    found_exact = np.take_along_axis(exact, found - 1000, axis=1)
    assert np.allclose(np.sort(found_exact, axis=1), np.sort(exact, axis=1)[:, -5:], atol=2e-3)
    assert (np.diff(similarity, axis=1) <= 1e-6).all()  # most similar first
    one, _ = search(index, ids[:1], sample_embeddings[:1], 5)  # USearch answers one query in another shape
    assert np.array_equal(one, found[:1])
    assert np.array_equal(search(indexed(sample_embeddings), np.arange(3), sample_embeddings[:3], 200)[0][:, -1],
                          [-1, -1, -1])  # fewer than asked: padded with -1


def test_near_duplicates_group_chains_and_keep_each_members_best_similarity():
    pairs = pd.DataFrame({"sentence_id": [5, 6, 20], "neighbor_id": [6, 7, 21], "similarity": [0.99, 0.96, 0.97]})
    groups = near_duplicate_groups(pairs)
    assert groups.to_dict("list") == {"group_id": [5, 5, 5, 20, 20], "sentence_id": [5, 6, 7, 20, 21],
                                      "similarity": pytest.approx([0.99, 0.99, 0.96, 0.97, 0.97]),
                                      "size": [3, 3, 3, 2, 2]}
    assert near_duplicate_groups(pairs.iloc[:0]).empty


def test_a_new_sentence_outdates_the_lists_it_enters():
    new = pd.DataFrame({"sentence_id": [9, 9, 9], "neighbor_id": [1, 2, 8], "similarity": [0.9, 0.5, 0.7]})
    kth = pd.Series({1: 0.8, 2: 0.6})  # 1's 10th neighbour is at 0.8: 9 enters; 2's at 0.6: 9 (0.5) does not
    assert outdated_by(new, kth).tolist() == [1, 8]  # 8 has no stored list


def test_table_rows_become_row_positions_within_the_window():
    rows = pd.DataFrame({"sentence_id": [10, 10, 20, 30, 30, 40], "neighbor_id": [99, 20, 10, 20, 10, 10],
                         "similarity": [0.95, 0.9, 0.9, 0.6, 0.5, 0.8]})  # as read: by sentence, most similar first
    found = as_neighbours(np.array([10, 20, 30]), rows, 1)
    assert found.indices.tolist() == [[1], [0], [1]]  # 99 and 40 are outside the window; 30's best kept
    found = as_neighbours(np.array([10, 20, 30]), rows, 2)
    assert found.indices.tolist() == [[1, -1], [0, -1], [1, 0]]
    assert found.similarities[0, 0] == pytest.approx(0.9)


def test_an_index_kept_in_files_finds_what_one_index_finds(sample_embeddings, tmp_path):
    """Files of at most 70 vectors, one in memory at a time, searched in turn: the same lists as one index (both
    searched exactly at this size); vectors removed and added across files; saved, reopened, shrunk."""
    ids = np.arange(len(sample_embeddings), dtype=np.int64) + 7
    whole = neighbors.new_index(sample_embeddings.shape[1])
    neighbors.add_vectors(whole, ids, sample_embeddings)
    path = tmp_path / "w.duckdb.neighbors-x.usearch"
    files = neighbors.ShardedIndex(path, sample_embeddings.shape[1], shard_size=70)
    files.add(ids[:100], sample_embeddings[:100])
    files.save()
    reopened = neighbors.ShardedIndex(path, sample_embeddings.shape[1], shard_size=70)
    assert not reopened.created and reopened.sizes == [70, 30] and len(reopened) == 100
    reopened.add(ids[100:], sample_embeddings[100:])  # fills the last file, then opens new ones
    assert len(ids) > 140 and reopened.sizes[:2] == [70, 70] and len(reopened) == len(ids)
    found, similarity = reopened.search(ids, sample_embeddings, 5)
    expected, expected_similarity = search(whole, ids, sample_embeddings, 5)
    same = (found == expected).mean()
    assert same >= 0.99 and np.allclose(similarity, expected_similarity, atol=1e-3)  # ties in half precision differ
    gone = ids[60:80]  # in the first and second file
    reopened.remove(gone)
    assert not reopened.contains(gone).any() and reopened.contains(np.setdiff1d(ids, gone)).all()
    assert not np.isin(reopened.search(ids[:10], sample_embeddings[:10], 20)[0], gone).any()
    reopened.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(reopened.file(n).name for n in
                                                                  range(len(reopened.sizes)))
    reopened.remove(ids)
    reopened.save()
    assert not list(tmp_path.iterdir())  # an empty index leaves no file
    assert neighbors.ShardedIndex(path, sample_embeddings.shape[1]).created
