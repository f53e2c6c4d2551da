"""Domain adaptation: a tiny real training run of each method, reproducibility, refusal of small corpora."""

import random
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from dagster_project.resources.adaptation import (
    AdaptationError,
    AdaptationParams,
    adapted_folder,
    damaged,
    train,
    training_sentences,
)
from dagster_project.resources.embedder import bundled_model_path

from support import require

pytestmark = pytest.mark.extras


@pytest.fixture(autouse=True)
def adapt_installed():
    require("datasets", "adapt")
    require("accelerate", "adapt")


TINY = dict(batch_size=8, max_sentences=24, min_sentences=16, epochs=1)


def encode(folder, texts):
    return SentenceTransformer(str(folder), device="cpu").encode(texts, normalize_embeddings=True)


def test_too_small_a_corpus_is_refused_with_the_way_out():
    with pytest.raises(AdaptationError, match="has 3 distinct sentences; tsdae needs at least 200"):
        training_sentences(["a b", "c d", "e f", "a b"], AdaptationParams())
    with pytest.raises(AdaptationError, match="not one of simcse, tsdae, ct"):
        training_sentences(["a"] * 500, AdaptationParams(method="gpl"))


def test_sample_noise_and_folder_are_seeded_and_versioned():
    texts = [f"sentence number {i} about topic {i % 7}" for i in range(100)]
    params = AdaptationParams(max_sentences=30, min_sentences=10)
    assert training_sentences(texts, params) == training_sentences(list(reversed(texts)), params)
    assert len(training_sentences(texts, params)) == 30
    assert damaged("one two three four five", random.Random(0)) == damaged("one two three four five", random.Random(0))
    assert damaged("word", random.Random(1)) == "word"  # at least one word is kept
    root = adapted_folder(Path("/m"), "base@1", texts, params)
    assert root != adapted_folder(root.parent, "base@1", texts[:-1], params)  # another corpus, another folder
    assert root != adapted_folder(root.parent, "base@1", texts, AdaptationParams(method="tsdae"))


@pytest.mark.parametrize("method", ["simcse", "tsdae", "ct"])
def test_tiny_training_gives_a_loadable_model_that_differs_from_the_base(method, tmp_path, sample_corpus):
    texts = sample_corpus["text"].tolist()
    info = train(bundled_model_path(), texts, AdaptationParams(method=method, **TINY), tmp_path / method)
    assert info["steps"] == 3 and info["sentences"] == 24 and (tmp_path / method / "adaptation.json").exists()
    adapted, base = encode(tmp_path / method, texts[:20]), encode(bundled_model_path(), texts[:20])
    cosines = np.sum(adapted * base, axis=1)
    assert np.abs(adapted - base).max() > 1e-4  # trained
    assert cosines.min() > 0.5  # and still the same kind of embedding after three small steps


def test_same_seed_same_model_on_cpu(tmp_path, sample_corpus):
    texts = sample_corpus["text"].tolist()
    params = AdaptationParams(method="simcse", **TINY)
    train(bundled_model_path(), texts, params, tmp_path / "first")
    train(bundled_model_path(), texts, params, tmp_path / "second")
    np.testing.assert_allclose(encode(tmp_path / "first", texts), encode(tmp_path / "second", texts), atol=1e-6)
