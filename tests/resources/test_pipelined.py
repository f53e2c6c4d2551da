"""The overlapped encoder (worker-thread tokenization, one copy back) against SentenceTransformer.encode."""

import numpy as np
import pytest

from dagster_project.resources import SentenceEmbedder
from dagster_project.resources.pipelined import PipelinedEncoder


@pytest.fixture(scope="module")
def pipelined(embedder) -> SentenceEmbedder:
    model = SentenceEmbedder(device="cpu", pipeline="on", batch_size=16)
    model._model = embedder.load()  # the session's loaded model: same weights, no second load
    return model


def test_pipelined_vectors_equal_encode_in_input_order(pipelined, sample_corpus, sample_embeddings):
    texts = sample_corpus["text"].tolist()
    assert len(texts) > 3 * pipelined.effective_batch_size  # several batches in flight at once
    vectors = pipelined.encode(texts)
    assert pipelined.pipelined() is not None
    assert vectors.dtype == np.float32 and vectors.shape == sample_embeddings.shape
    assert np.min(np.sum(vectors * sample_embeddings, axis=1)) > 0.9999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_pipelined_handles_truncation_duplicates_and_empty_input(embedder):
    encoder = PipelinedEncoder(embedder.load(), workers=3, prefetch=2)
    long_text = " ".join(["embedding"] * 2000)  # past max_seq_length: truncated like encode
    texts = ["short", long_text, "short", "a somewhat longer sentence about databases"]
    vectors = encoder.encode(texts, batch_size=1)
    expected = embedder.encode(texts)
    assert np.min(np.sum(vectors * expected, axis=1)) > 0.9999
    assert np.array_equal(vectors[0], vectors[2])
    assert encoder.encode([], batch_size=4).shape[0] == 0


def test_pipeline_setting_is_validated_and_off_by_default_on_cpu():
    assert SentenceEmbedder(device="cpu").pipelined() is None
    with pytest.raises(ValueError, match="EMBEDDING_PIPELINE 'sometimes'"):
        SentenceEmbedder(device="cpu", pipeline="sometimes").pipelined()
