"""EMBEDDING_BACKEND=static: a Model2Vec model distilled once per machine from the bundled model, with its own cache
key beside the transformer's, in real Dagster runs."""

import dagster as dg
import numpy as np
import pytest

from dagster_project.assets.embeddings import build_embedding_assets
from dagster_project.assets.sentences import build_sentences
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder


@pytest.fixture(scope="session")
def static_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("static-models")


def static(cache, **settings) -> SentenceEmbedder:
    return SentenceEmbedder(backend="static", static_cache_dir=str(cache), **settings)


def nearest(vectors: np.ndarray, k: int = 10) -> np.ndarray:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1)[:, :k]


def test_switching_backends_reembeds_nothing_and_the_distillation_is_reported(tmp_path, static_cache, embedder,
                                                                             monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("Rain is expected tomorrow.\nThe match ended in a draw.\nRain again.\n")
    monkeypatch.setenv("SENTENCES_PATH", str(corpus))
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    distilled_before = any(static_cache.iterdir())
    runs = []
    for model in (static(static_cache), embedder, static(static_cache), embedder):
        result = dg.materialize([build_sentences(None), *build_embedding_assets(None, "local")],
                                resources={"warehouse": warehouse, "embedder": model})
        runs.append(result.asset_materializations_for_node("sentence_embeddings")[0].metadata)
    assert [run["new_texts"].value for run in runs] == [3, 3, 0, 0]
    assert runs[0]["backend"].value == "static" and runs[0]["model_key"].value.endswith("|static-pca256")
    assert ("static_distillation_seconds" in runs[0]) is not distilled_before
    assert all("static_distillation_seconds" not in run for run in runs[1:])
    keys = warehouse.query("SELECT model_key, count(*) AS n, max(len(embedding)) AS dim FROM embedding_cache "
                           "GROUP BY ALL ORDER BY dim")
    assert keys["n"].tolist() == [3, 3] and keys["dim"].tolist() == [256, 384]


def test_distilled_once_per_machine_and_near_the_transformer(static_cache, sample_corpus, sample_embeddings):
    first = static(static_cache)
    first.prepare()
    [folder] = [path for path in static_cache.iterdir() if path.is_dir()]
    weights = next(folder.glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns
    second = static(static_cache)
    second.prepare()
    assert second.distill_seconds is None and weights.stat().st_mtime_ns == stamp
    vectors = second.encode(sample_corpus["text"].tolist())
    assert vectors.dtype == np.float32 and vectors.shape == (len(sample_corpus), 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    shared = [len(set(a) & set(b)) / 10 for a, b in zip(nearest(vectors), nearest(sample_embeddings))]
    assert np.mean(shared) > 0.45  # 0.57 measured; a random table shares 10/159 = 0.06
    card, missing, match = second.encode(["I lost my card", "My card has gone missing", "The match ended in a draw"])
    assert card @ missing > card @ match + 0.2


def test_each_static_model_has_its_own_key_and_a_wrong_folder_is_named(static_cache, tmp_path):
    torch_key = SentenceEmbedder(device="cpu").model_key
    distilled, narrower = static(static_cache).model_key, static(static_cache, static_dims=128).model_key
    assert distilled == torch_key.replace("|torch-fp32", "|static-pca256") and narrower.endswith("|static-pca128")
    assert static(static_cache).precision == "fp16" and static(static_cache).compute_device == "cpu"
    static(static_cache).prepare()
    [folder] = [path for path in static_cache.iterdir() if path.is_dir()]
    given = static(static_cache, static_model=str(folder))
    assert given.model_key.startswith(f"{folder.name}@") and given.model_key.endswith("|static")
    assert np.allclose(given.encode(["same table"]), static(static_cache).encode(["same table"]))
    with pytest.raises(ValueError, match=r"STATIC_MODEL '.*/nowhere' is not a Model2Vec model folder"):
        static(static_cache, static_model=str(tmp_path / "nowhere")).prepare()


def test_the_scheduled_pipeline_runs_on_static_vectors(tmp_path, static_cache):
    from dagster_project.definitions import build_assets

    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    result = dg.materialize(build_assets(), resources={"warehouse": warehouse, "embedder": static(static_cache)},
                            raise_on_error=False)
    assert result.success, [event.message for event in result.all_events if event.is_failure]
    runs = warehouse.query("SELECT DISTINCT model_key FROM clustering_runs")
    assert runs["model_key"].tolist() == [static(static_cache).model_key]
    topics = warehouse.query("SELECT count(*) AS n FROM topic_summaries JOIN recommended USING (algorithm) "
                             "WHERE topic_id >= 0")
    assert topics["n"][0] >= 3
