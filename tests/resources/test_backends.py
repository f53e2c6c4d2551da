"""The exported CPU engines (ONNX Runtime fp32 and int8, OpenVINO) against the torch model they come from."""

import dagster as dg
import numpy as np
import pytest
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer
from sentence_transformers.models import Dense

from dagster_project.assets.embeddings import build_embedding_assets
from dagster_project.assets.sentences import build_sentences
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder
from dagster_project.resources.backends import BackendError, ExportedEncoder, model_file

from support import require


@pytest.fixture(autouse=True)
def onnx_installed():
    require("onnxruntime", "cpu-backends")



@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def engine(backend: str, export_dir) -> SentenceEmbedder:
    return SentenceEmbedder(device="cpu", backend=backend, export_dir=str(export_dir))


def pairwise_cosines(vectors: np.ndarray) -> np.ndarray:
    upper = np.triu_indices(len(vectors), k=1)
    return (vectors @ vectors.T)[upper]


@pytest.mark.parametrize("backend", ["onnx", pytest.param("openvino", marks=pytest.mark.extras)])
def test_fp32_engines_give_the_torch_vectors(backend, export_dir, sample_corpus, sample_embeddings):
    if backend == "openvino":
        require("openvino", "cpu-backends")
    vectors = engine(backend, export_dir).encode(sample_corpus["text"].tolist())
    assert vectors.dtype == np.float32 and vectors.shape == sample_embeddings.shape
    assert np.min(np.sum(vectors * sample_embeddings, axis=1)) > 0.9999


def test_int8_engine_keeps_the_similarity_ranking(export_dir, sample_corpus, sample_embeddings):
    vectors = engine("onnx-int8", export_dir).encode(sample_corpus["text"].tolist())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    cosines = np.sum(vectors * sample_embeddings, axis=1)
    assert cosines.mean() > 0.98 and not np.allclose(vectors, sample_embeddings, atol=1e-4)  # quantized, close
    rho = spearmanr(pairwise_cosines(vectors), pairwise_cosines(sample_embeddings)).statistic
    assert rho > 0.985  # benchmarks/embeddings.py measures 2,000 pairs of a labeled dataset


def test_each_backend_has_its_own_cache_key_and_exports_once(export_dir):
    keys = {b: engine(b, export_dir).model_key for b in ["torch", "onnx", "onnx-int8", "openvino"]}
    assert len(set(keys.values())) == 4
    assert keys["torch"].endswith("|torch-fp32") and keys["onnx"].endswith("|onnx-fp32")
    assert "|onnx-qint8_" in keys["onnx-int8"]
    first = engine("onnx", export_dir)
    first.encode(["warm up"])
    path = next(export_dir.rglob(model_file("onnx")))
    stamp = path.stat().st_mtime_ns
    engine("onnx", export_dir).encode(["a second process would load the same file"])
    assert path.stat().st_mtime_ns == stamp


def test_models_the_engines_cannot_run_are_refused_with_the_way_out(embedder, tmp_path):
    base = embedder.load()
    with_dense = SentenceTransformer(modules=[base[0], base[1], Dense(384, 64)], device="cpu")
    with pytest.raises(BackendError, match=r"Transformer \+ Pooling \+ Dense.*EMBEDDING_BACKEND=torch"):
        ExportedEncoder(with_dense, tmp_path, "onnx")
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="runs on the CPU"):
        SentenceEmbedder(device="cuda", backend="onnx").resolved_device()
    with pytest.raises(ValueError, match="EMBEDDING_BACKEND 'tensorrt' is not one of"):
        SentenceEmbedder(backend="tensorrt").model_key


def test_backends_share_one_cache_side_by_side(tmp_path, export_dir, embedder, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("Rain is expected tomorrow.\nThe match ended in a draw.\nRain again.\n")
    monkeypatch.setenv("SENTENCES_PATH", str(corpus))
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    metadata = {}
    for model in (embedder, engine("onnx-int8", export_dir)):
        result = dg.materialize([build_sentences(None), *build_embedding_assets(None, "local")],
                                resources={"warehouse": warehouse, "embedder": model})
        metadata[model.backend] = result.asset_materializations_for_node("sentence_embeddings")[0].metadata
    assert metadata["onnx-int8"]["backend"].value == "onnx-int8"
    assert metadata["onnx-int8"]["new_texts"].value == 3 and metadata["torch"]["new_texts"].value == 3
    counts = warehouse.query("SELECT model_key, count(*) AS n FROM embedding_cache GROUP BY ALL")
    assert sorted(counts["n"]) == [3, 3] and len(counts) == 2
