import numpy as np
import pytest
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from dagster_project.core.metrics import (
    calinski_harabasz,
    clustering_metrics,
    cosine_silhouette,
    davies_bouldin,
)
from dagster_project.core.projection import project_2d


def points():
    x = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99]], dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_perfect_clustering_scores_one_against_labels():
    m = clustering_metrics(points(), np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "b"], dtype=object))
    assert m["nmi"] == pytest.approx(1) and m["ari"] == pytest.approx(1) and m["v_measure"] == pytest.approx(1)
    assert m["silhouette"] > 0.9 and m["n_clusters"] == 2 and m["noise_fraction"] == 0


def test_noise_counted_and_internal_metrics_skip_it():
    m = clustering_metrics(points(), np.array([0, 0, 1, -1]))
    assert m["noise_fraction"] == 0.25 and m["nmi"] is None
    assert m["n_clusters"] == 2 and m["silhouette"] is not None  # computed over the three clustered rows


def test_single_cluster_leaves_internal_metrics_undefined():
    m = clustering_metrics(points(), np.zeros(4, dtype=int), np.array(["a", "a", "b", "b"], dtype=object))
    assert m["silhouette"] is None and m["davies_bouldin"] is None and m["nmi"] == pytest.approx(0)


@pytest.mark.parametrize("n, k, dim", [(200, 2, 3), (1500, 40, 32), (60, 59, 4)])
def test_exact_cosine_silhouette_equals_scikit_learn(n, k, dim):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, dim)).astype(np.float32) + 0.5
    labels = rng.integers(0, k, n)
    labels[0] = k + 3  # a singleton cluster scores 0, as in scikit-learn
    expected = silhouette_score(x, labels, metric="cosine")
    assert cosine_silhouette(x, labels) == pytest.approx(expected, abs=1e-6)
    m = clustering_metrics(x, labels)
    assert m["silhouette"] == pytest.approx(expected, abs=1e-6) and m["silhouette_sample_size"] == n


def test_exact_silhouette_on_real_embeddings(sample_embeddings):
    labels = np.arange(len(sample_embeddings)) % 7
    expected = silhouette_score(sample_embeddings, labels, metric="cosine")
    assert cosine_silhouette(sample_embeddings, labels) == pytest.approx(expected, abs=1e-6)


def test_projection_is_two_dimensional_and_deterministic():
    x = np.random.default_rng(0).standard_normal((30, 5)).astype(np.float32)
    a, method = project_2d(x, "pca")
    b, _ = project_2d(x, "pca")
    assert a.shape == (30, 2) and method == "pca" and np.array_equal(a, b)


@pytest.mark.parametrize("n,k,dim", [(60, 3, 5), (300, 12, 16), (500, 40, 8)])
def test_davies_bouldin_and_calinski_harabasz_equal_scikit_learn(n, k, dim):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    labels = rng.integers(0, k, n)
    assert davies_bouldin(x, labels) == pytest.approx(davies_bouldin_score(x, labels), rel=1e-6)
    assert calinski_harabasz(x, labels) == pytest.approx(calinski_harabasz_score(x, labels), rel=1e-6)


def test_davies_bouldin_scores_centroid_pairs_in_blocks(monkeypatch):
    import dagster_project.core.metrics as metrics

    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 6)).astype(np.float32)
    labels = rng.integers(0, 30, 400)
    monkeypatch.setattr(metrics, "PAIR_BLOCK", 70)  # blocks of 2 centroids against all 30, the last one shorter
    assert davies_bouldin(x, labels) == pytest.approx(davies_bouldin_score(x, labels), rel=1e-6)


def test_metrics_on_real_embeddings_equal_scikit_learn(sample_embeddings):
    labels = np.arange(len(sample_embeddings)) % 7
    m = clustering_metrics(sample_embeddings, labels)
    assert m["davies_bouldin"] == pytest.approx(davies_bouldin_score(sample_embeddings, labels), rel=1e-5)
    assert m["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(sample_embeddings, labels), rel=1e-5)


def test_geometric_metrics_of_a_sample_and_label_agreement_of_every_row():
    x = np.random.default_rng(3).standard_normal((300, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.argmax(x[:, :3], axis=1)
    truth = np.where(np.arange(300) < 150, "a", "b").astype(object)
    rows = np.arange(0, 300, 4)
    sampled = clustering_metrics(x[rows], labels, truth, rows=rows)
    of_sample = clustering_metrics(x[rows], labels[rows])
    everything = clustering_metrics(x, labels, truth)
    assert sampled["silhouette"] == of_sample["silhouette"] and sampled["silhouette_sample_size"] == 75
    assert sampled["davies_bouldin"] == of_sample["davies_bouldin"]
    assert sampled["nmi"] == everything["nmi"] and sampled["n_sentences"] == 300
