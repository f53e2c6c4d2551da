"""The job the daily schedule runs (`refresh_everything`), on the sample corpus, with one algorithm that cannot
run and agglomerative clustering over its memory limit: the refresh as a whole goes on."""

import json

import dagster as dg
import duckdb
import pytest

from dagster_project.automation import refresh_job
from dagster_project.core.algorithms.agglomerative import tree_memory_gb
from dagster_project.core.clustering import SCHEDULED
from dagster_project.definitions import build_assets
from dagster_project.resources import DuckDBWarehouse


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory, embedder):
    db = tmp_path_factory.mktemp("refresh") / "w.duckdb"
    defs = dg.Definitions(assets=build_assets(), jobs=[refresh_job(partitioned=False)],
                          resources={"warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder})
    config = {"ops": {"louvain_clusters": {"config": {"resolution": -1.0}},  # out of range: it cannot run
                      "agglomerative_clusters": {"config": {"max_memory_gb": tree_memory_gb(100) * 1.001}}}}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SENTENCES_PATH", raising=False)  # the sample corpus
        result = defs.resolve_job_def("refresh_everything").execute_in_process(run_config=config,
                                                                               raise_on_error=False)
    return db, result


def test_one_algorithm_that_cannot_run_leaves_the_others_updated(refreshed):
    db, result = refreshed
    assert result.success
    fits = {e.asset_key.path[0]: e for e in result.get_asset_check_evaluations() if e.check_name == "fit_succeeded"}
    assert set(fits) == {f"{name}_clusters" for name in SCHEDULED}  # the on-demand ones are not in the job
    assert {key for key, e in fits.items() if not e.passed} == {"louvain_clusters"}
    assert "resolution (-1.0)" in fits["louvain_clusters"].metadata["reason"].value
    working = set(SCHEDULED) - {"louvain"}
    with duckdb.connect(str(db), read_only=True) as conn:
        def per_algorithm(table: str) -> set[str]:
            return {row[0] for row in conn.execute(f"SELECT DISTINCT algorithm FROM {table}").fetchall()}

        assert per_algorithm("cluster_assignments") == per_algorithm("topic_summaries") == working
        assert per_algorithm("clustering_metrics") == working
        [reason] = conn.execute("SELECT details->>'failed' FROM clustering_runs WHERE algorithm = 'louvain'").fetchall()
    assert "above 0" in reason[0]
    report = (db.parent / f"{db.stem}.report.html").read_text(encoding="utf-8")
    assert report.count("<ul class='legend'>") == len(working) and "resolution (-1.0)" in report
    topics = result.asset_materializations_for_node("louvain_topics")[0].metadata
    assert topics["status"].value == "skipped" and "above 0" in topics["reason"].value


def test_a_fit_that_fails_keeps_the_last_topics_and_the_next_fit_continues_them(tmp_path, embedder):
    resources = {"warehouse": DuckDBWarehouse(database=str(tmp_path / "w.duckdb")), "embedder": embedder}
    selection = ["sentences", "sentence_embeddings", "sentence_neighbors", "louvain_clusters", "louvain_topics"]

    def run(**louvain) -> tuple[dg.ExecuteInProcessResult, dict]:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("SENTENCES_PATH", raising=False)
            result = dg.materialize(build_assets(), resources=resources, selection=selection, raise_on_error=False,
                                    run_config={"ops": {"louvain_clusters": {"config": louvain}}})
        with duckdb.connect(resources["warehouse"].database, read_only=True) as conn:
            tables = {table: conn.execute(f"SELECT * EXCLUDE (algorithm) FROM {table} WHERE algorithm = 'louvain' "
                                          "ORDER BY ALL").fetchall()
                      for table in ("cluster_assignments", "topic_summaries", "topics")}
            [details] = conn.execute("SELECT details FROM clustering_runs WHERE algorithm = 'louvain'").fetchone()
        return result, {**tables, "details": json.loads(details)}

    _, good = run()
    result, failed = run(resolution=-1.0)
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "fit_succeeded"]
    assert not check.passed and "resolution (-1.0)" in check.metadata["reason"].value
    for table in ("cluster_assignments", "topic_summaries", "topics"):
        assert failed[table] == good[table] and len(good[table]) > 0, table
    assert "resolution (-1.0)" in failed["details"]["failed"] and failed["details"]["memory"] == good["details"][
        "memory"]  # the last fit's details are kept beside the reason
    result, again = run()
    assert result.success and again["details"]["refit_reason"] == "the last run failed"
    topic_of = lambda rows: {sentence: topic for sentence, _, topic in rows}  # noqa: E731  (cluster ids are per fit)
    assert "failed" not in again["details"]
    assert topic_of(again["cluster_assignments"]) == topic_of(good["cluster_assignments"])


def test_agglomerative_over_its_memory_fits_a_sample_and_assigns_the_rest(refreshed):
    db, result = refreshed
    [materialization] = result.asset_materializations_for_node("agglomerative_clusters")
    details = materialization.metadata["details"].value
    assert details["fitted_on_sample"] == 100 and details["assigned_to_nearest_centre"] == 60
    assert materialization.metadata["status"].value == "fitted on a sample, the rest assigned"
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*), min(cluster_id) FROM cluster_assignments "
                            "WHERE algorithm = 'agglomerative'").fetchall() == [(160, 0)]
