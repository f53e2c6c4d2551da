"""k-means in torch (the GPU path), run on CPU tensors: known answers, determinism, scikit-learn parity."""

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from dagster_project.core.clustering import KMeansParams, kmeans
from dagster_project.core.torch_kmeans import TorchKMeans, lloyd


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 10], [-10, -10, 0]], dtype=np.float32)
    truth = np.repeat(np.arange(4), 25)
    return centres[truth] + rng.standard_normal((100, 3)).astype(np.float32) * 0.3, truth


def test_finds_separated_blobs_exactly():
    x, truth = blobs()
    labels, inertia, centres = lloyd(x, 4, seed=0)
    assert normalized_mutual_info_score(truth, labels) == 1.0
    assert centres.shape == (4, 3) and inertia == pytest.approx(
        sum(((x[labels == c] - centres[c]) ** 2).sum() for c in range(4)), rel=1e-4)  # expanded-form rounding


def test_same_seed_same_labels_and_tensor_input():
    x, _ = blobs(1)
    first = lloyd(x, 3, seed=7)[0]
    assert np.array_equal(first, lloyd(x, 3, seed=7)[0])
    assert np.array_equal(first, lloyd(torch.from_numpy(x), 3, seed=7)[0])


def test_k_bounds_are_checked():
    x, _ = blobs()
    with pytest.raises(ValueError, match="1 <= k <= 100"):
        lloyd(x, 101)
    assert (lloyd(x, 1)[0] == 0).all()


def test_matches_scikit_learn_on_real_embeddings(sample_embeddings, sample_corpus):
    truth = sample_corpus["label"].to_numpy()
    k = len(set(truth))
    ours = TorchKMeans(k, n_init=3, random_state=0).fit(sample_embeddings)
    reference = KMeans(k, n_init=3, random_state=0).fit(sample_embeddings)
    assert ours.inertia_ <= reference.inertia_ * 1.02  # same objective, as good a minimum
    ours_nmi = normalized_mutual_info_score(truth, ours.labels_)
    assert ours_nmi >= normalized_mutual_info_score(truth, reference.labels_) - 0.05


def test_registry_kmeans_is_scikit_learns_on_the_cpu_and_its_gpu_path_agrees_on_cpu_tensors(sample_embeddings):
    """On the CPU the registry runs scikit-learn; what it runs on a GPU (TorchKMeans) is run here on CPU tensors
    with the same k (the corpus's eight subjects), starts and seed, and finds nearly the same partition."""
    params = KMeansParams(n_clusters=8)
    cpu = kmeans(sample_embeddings, params, device="cpu").labels
    assert np.array_equal(cpu, kmeans(sample_embeddings, params, device="cpu").labels)
    torch_path = TorchKMeans(8, n_init=3, random_state=params.seed, device="cpu").fit(sample_embeddings).labels_
    assert normalized_mutual_info_score(cpu, torch_path) > 0.75  # 0.79-0.81 over seeds 0-3
    if torch.cuda.is_available():
        gpu = kmeans(sample_embeddings, params, device="cuda").labels
        assert normalized_mutual_info_score(cpu, gpu) > 0.8
