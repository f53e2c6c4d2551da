import subprocess
from pathlib import Path

import dagster as dg

from dagster_project.automation import sentence_files_changed
from dagster_project.core.clustering import ALGORITHMS, SCHEDULED
from dagster_project.definitions import defs
from dagster_project.resources import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_the_full_lineage():
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    expected = {"sentences", "sentence_embeddings", "sentence_neighbors", "clustering_metrics", "recommended",
                "sentence_map", "topic_report"}
    expected |= {f"{name}_{kind}" for name in ALGORITHMS for kind in ("clusters", "topics")}
    adaptation = {"adapted_model", "adapted_clusterings"}
    assert keys == expected | adaptation

    def job_keys(name: str) -> set[str]:
        return {key.to_user_string() for key in defs.resolve_job_def(name).asset_layer.selected_asset_keys}

    on_demand = {f"{name}_{kind}" for name in set(ALGORITHMS) - set(SCHEDULED) for kind in ("clusters", "topics")}
    assert on_demand == {f"{name}_{kind}" for name in ("community_detection", "hdbscan", "dbscan")
                         for kind in ("clusters", "topics")}
    # the schedule and the sensor never train a model, nor run the clusterings whose defaults measured poorly
    assert job_keys("refresh_everything") == expected - on_demand
    assert job_keys("cluster_on_demand") == on_demand | {"clustering_metrics", "recommended", "topic_report"}
    weekly = defs.resolve_schedule_def("weekly_refit").evaluate_tick(dg.build_schedule_context())
    assert set(weekly.run_requests[0].run_config["ops"]) == {f"{name}_clusters" for name in SCHEDULED}
    assert job_keys("adapt_and_compare") == adaptation
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("kmeans_topics")).parent_keys == {dg.AssetKey("kmeans_clusters"),
                                                                   dg.AssetKey("sentence_map")}
    assert dg.AssetKey("sentences") in graph.get(dg.AssetKey("sentence_embeddings")).parent_keys
    assert dg.AssetKey("sentence_neighbors") in graph.get(dg.AssetKey("louvain_clusters")).parent_keys
    assert defs.resolve_schedule_def("daily_refresh").cron_schedule == "0 6 * * *"
    assert defs.resolve_sensor_def("sentence_files_changed") is not None


def test_sensor_requests_a_run_only_when_files_change(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCES_PATH", str(tmp_path))
    (tmp_path / "a.txt").write_text("one sentence\n")
    resources = {"warehouse": DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))}
    first = sentence_files_changed(dg.build_sensor_context(resources=resources))
    assert len(first.run_requests) == 1  # an empty warehouse has not read a.txt yet
    unchanged = sentence_files_changed(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert not unchanged.run_requests and "no change" in unchanged.skip_reason.skip_message
    (tmp_path / "b.txt").write_text("another sentence\n")
    changed = sentence_files_changed(dg.build_sensor_context(cursor=first.cursor, resources=resources))
    assert len(changed.run_requests) == 1 and changed.cursor != first.cursor


def test_sensor_skips_with_reason_when_path_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTENCES_PATH", str(tmp_path / "nowhere"))
    resources = {"warehouse": DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))}
    tick = sentence_files_changed(dg.build_sensor_context(resources=resources))
    assert "cannot read SENTENCES_PATH" in tick.skip_message


def test_the_dagster_home_runs_one_fitting_job_at_a_time(tmp_path):
    """`make home` (before `make run`, `make ui`) writes a run queue that holds the jobs that fit to one run."""
    home = tmp_path / "home"
    for _ in range(2):  # a second time adds nothing
        subprocess.run(["make", "-s", "home", f"DAGSTER_HOME={home}"], cwd=ROOT, check=True, timeout=60)
    assert (home / "dagster.yaml").read_text().count("run_queue:") == 1
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    fitting = [defs.resolve_job_def(name).tags for name in ("refresh_everything", "cluster_on_demand")]
    [limit] = limits
    assert limit["limit"] == 1 and all(tags.get(limit["key"]) for tags in fitting)
