"""The adaptation group through real Dagster materializations: train, reuse, cluster beside the base model."""

import dagster as dg
import pytest

from dagster_project.assets.adaptation import adapted_clusterings, adapted_model
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder

from support import require

pytestmark = pytest.mark.extras


@pytest.fixture(autouse=True)
def adapt_installed():
    require("datasets", "adapt")


TINY = {"method": "simcse", "batch_size": 8, "max_sentences": 24, "min_sentences": 16}


def test_adapted_model_clusters_beside_the_base_model(materialize_all, embedder, tmp_path):
    db = tmp_path / "w.duckdb"
    assert materialize_all(db).success
    resources = {"warehouse": DuckDBWarehouse(database=str(db)),
                 "embedder": SentenceEmbedder(device="cpu", export_dir=str(tmp_path / "models"))}
    config = {"ops": {"adapted_model": {"config": TINY}, "adapted_clusterings": {"config": {"algorithms": ["kmeans"]}}}}
    first = dg.materialize([adapted_model, adapted_clusterings], resources=resources, run_config=config)
    trained = first.asset_materializations_for_node("adapted_model")[0].metadata
    assert trained["reused"].value is False and trained["steps"].value == 3

    warehouse = resources["warehouse"]
    metrics = warehouse.query("SELECT algorithm, model_key, nmi FROM clustering_metrics WHERE algorithm LIKE 'kmeans%'")
    adapted_key = trained["model_key"].value
    assert set(metrics["algorithm"]) == {"kmeans", "kmeans@simcse"}
    assert set(metrics["model_key"]) == {embedder.model_key, adapted_key} and adapted_key != embedder.model_key
    assert metrics["nmi"].notna().all()  # the sample corpus is labelled: both compared against its labels
    counts = warehouse.query("SELECT count(*) AS n FROM cluster_assignments WHERE algorithm = 'kmeans@simcse'")
    assert counts["n"][0] == 160
    cached = warehouse.query("SELECT count(*) AS n FROM embedding_cache WHERE model_key = ?", [adapted_key])
    assert cached["n"][0] == warehouse.query("SELECT count(DISTINCT text_hash) AS n FROM sentences")["n"][0]
    assert warehouse.query("SELECT count(*) AS n FROM topic_summaries WHERE algorithm = 'kmeans@simcse'")["n"][0] > 0

    again = dg.materialize([adapted_model], resources=resources, run_config={"ops": {"adapted_model": {"config": TINY}}})
    assert again.asset_materializations_for_node("adapted_model")[0].metadata["reused"].value is True


def test_too_small_corpus_fails_the_step_and_changes_nothing(materialize_all, tmp_path):
    db = tmp_path / "w.duckdb"
    assert materialize_all(db).success
    resources = {"warehouse": DuckDBWarehouse(database=str(db)),
                 "embedder": SentenceEmbedder(device="cpu", export_dir=str(tmp_path / "models"))}
    result = dg.materialize([adapted_model], resources=resources, raise_on_error=False)  # default min 200 > 160
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    failure = error.message + (error.cause.message if error.cause else "")
    assert "160 distinct sentences" in failure and "min_sentences" in failure
    assert resources["warehouse"].query("SELECT count(*) AS n FROM adapted_models")["n"][0] == 0
    assert not (tmp_path / "models" / "adapted").exists() or not any((tmp_path / "models" / "adapted").iterdir())
