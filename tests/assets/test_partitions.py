"""SENTENCE_PARTITIONS=files: one dynamic partition per file, added and removed by the file sensor, ingested
and embedded per partition with the real model into a real DuckDB file; clusterings read every partition."""

import dagster as dg
import duckdb
import pandas as pd
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.core.readers import open_corpus
from dagster_project.definitions import build_definitions
from dagster_project.resources import DuckDBWarehouse



@pytest.fixture
def partitioned(monkeypatch, request) -> tuple[list, dg.SensorDefinition]:
    """The assets and the file sensor of the Definitions built with SENTENCE_PARTITIONS=files (or the parameter)."""
    monkeypatch.setenv("SENTENCE_PARTITIONS", getattr(request, "param", "files"))
    defs = build_definitions()
    return list(defs.assets), defs.resolve_sensor_def("sentence_file_partitions")


def split_sample(folder) -> pd.DataFrame:
    frame = pd.read_csv(f"{SAMPLE_CORPUS}/sample_corpus.csv")
    frame.iloc[:100].to_csv(folder / "first.csv", index=False)
    (folder / "nested").mkdir()
    frame.iloc[100:].to_csv(folder / "nested" / "second.csv", index=False)
    return frame


def sense_and_run(sensor, instance, warehouse, assets, resources, cursor):
    """One sensor tick applied as the daemon would: partitions added and deleted, each requested run done."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": warehouse})
    result = sensor(context)
    for request in result.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    for run in result.run_requests:
        done = dg.materialize(assets, selection=["sentences", "sentence_embeddings"], resources=resources,
                              partition_key=run.partition_key, instance=instance)
        assert done.success
    return result


def test_file_partitions_from_sensor_to_clustering(partitioned, tmp_path, monkeypatch, embedder):
    assets, sensor = partitioned
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    sample = split_sample(corpus)
    monkeypatch.setenv("SENTENCES_PATH", str(corpus))
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": warehouse, "embedder": embedder}

    def sense(cursor):
        return sense_and_run(sensor, instance, warehouse, assets, resources, cursor)

    first = sense(None)
    assert sorted(r.partition_key for r in first.run_requests) == ["first.csv", "nested/second.csv"]
    assert sorted(instance.get_dynamic_partitions("sentence_files")) == ["first.csv", "nested/second.csv"]
    with duckdb.connect(warehouse.database, read_only=True) as conn:
        stored = conn.execute("SELECT source, source_row, text FROM sentences ORDER BY source, source_row").df()
        vectors = conn.execute("SELECT count(*) FROM embedding_cache").fetchall()[0][0]
    expected = pd.concat(list(open_corpus(str(corpus)))).sort_values(["source", "row"])
    assert stored["text"].tolist() == expected["text"].tolist() and len(stored) == len(sample)
    assert stored["source"].value_counts().to_dict() == {"first.csv": 100, "nested/second.csv": len(sample) - 100}
    assert vectors == expected["text_hash"].nunique()

    # Clustering reads every partition's sentences, as without partitions.
    clustered = dg.materialize(assets, selection=["kmeans_clusters"], resources=resources, instance=instance)
    assert clustered.success
    assert warehouse.query("SELECT count(*) AS n FROM cluster_assignments")["n"][0] == len(sample)

    # A window of partitions (CLUSTER_WINDOW): only the matching files' sentences are clustered, and the
    # check holds for the window (it counts the other file's 100 sentences as unassigned without it).
    windowed = DuckDBWarehouse(database=warehouse.database, cluster_window="nested/*")
    done = dg.materialize(assets, selection=["kmeans_clusters"],
                          resources={**resources, "warehouse": windowed}, instance=instance)
    assert done.success and {e.check_name: e.passed for e in done.get_asset_check_evaluations()} == {
        "every_sentence_assigned_once": True, "fit_succeeded": True}
    per_file = """SELECT s.source, count(*) AS n FROM cluster_assignments JOIN sentences s USING (sentence_id)
                  GROUP BY ALL"""
    assert warehouse.query(per_file).set_index("source")["n"].to_dict() == {"nested/second.csv": len(sample) - 100}
    nowhere = DuckDBWarehouse(database=warehouse.database, cluster_window="2025-*")
    with pytest.raises(Exception, match=r"CLUSTER_WINDOW '2025-\*' matches no file .*'first.csv'"):
        dg.materialize(assets, selection=["kmeans_clusters"],
                       resources={**resources, "warehouse": nowhere}, instance=instance)
    assert warehouse.query(per_file).set_index("source")["n"].to_dict() == {"nested/second.csv": len(sample) - 100}

    # Nothing changed: no run, and none either from a sensor started afresh (no cursor: it starts from the files
    # the warehouse read). One file modified, one removed: one run, one partition and its rows gone.
    for cursor in (first.cursor, None):
        tick = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": warehouse}))
        assert not tick.run_requests and "no change" in tick.skip_reason.skip_message
    (corpus / "first.csv").unlink()
    sample.iloc[100:110].to_csv(corpus / "nested" / "second.csv", index=False)
    second = sense(first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["nested/second.csv"]
    assert instance.get_dynamic_partitions("sentence_files") == ["nested/second.csv"]
    counts = warehouse.query("SELECT source, count(*) AS n FROM sentences GROUP BY ALL")
    assert counts.set_index("source")["n"].to_dict() == {"nested/second.csv": 10}


def test_partition_of_a_missing_file_names_it_and_changes_nothing(partitioned, tmp_path, monkeypatch, embedder):
    assets, _ = partitioned
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    split_sample(corpus)
    monkeypatch.setenv("SENTENCES_PATH", str(corpus))
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("sentence_files", ["first.csv", "gone.csv"])
    resources = {"warehouse": warehouse, "embedder": embedder}
    assert dg.materialize(assets, selection=["sentences"], resources=resources, partition_key="first.csv",
                          instance=instance).success
    with pytest.raises(Exception, match="Partition 'gone.csv' names no file under SENTENCES_PATH"):
        dg.materialize(assets, selection=["sentences"], resources=resources, partition_key="gone.csv",
                       instance=instance)
    assert warehouse.query("SELECT count(*) AS n FROM sentences")["n"][0] == 100


@pytest.mark.parametrize("partitioned", ["folders"], indirect=True)
def test_folder_partitions_one_per_arrival_date(partitioned, tmp_path, monkeypatch, embedder):
    assets, sensor = partitioned
    landing = tmp_path / "landing"
    sample = pd.read_csv(f"{SAMPLE_CORPUS}/sample_corpus.csv")
    for day, name, rows in [("2026-11-23", "morning.csv", slice(0, 60)), ("2026-11-23", "evening.csv", slice(60, 100)),
                            ("2026-11-24", "a.csv", slice(100, None))]:
        (landing / day).mkdir(parents=True, exist_ok=True)
        sample.iloc[rows].to_csv(landing / day / name, index=False)
    monkeypatch.setenv("SENTENCES_PATH", str(landing))
    warehouse = DuckDBWarehouse(database=str(tmp_path / "w.duckdb"))
    instance = dg.DagsterInstance.ephemeral()
    resources = {"warehouse": warehouse, "embedder": embedder}
    per_file = "SELECT source, count(*) AS n FROM sentences GROUP BY ALL ORDER BY source"

    first = sense_and_run(sensor, instance, warehouse, assets, resources, None)
    assert [r.partition_key for r in first.run_requests] == ["2026-11-23", "2026-11-24"]
    assert sorted(instance.get_dynamic_partitions("sentence_folders")) == ["2026-11-23", "2026-11-24"]
    assert warehouse.query(per_file).set_index("source")["n"].to_dict() == {
        "2026-11-23/evening.csv": 40, "2026-11-23/morning.csv": 60, "2026-11-24/a.csv": len(sample) - 100}
    day_one = warehouse.query("SELECT sentence_id FROM sentences WHERE source LIKE '2026-11-23/%' ORDER BY 1")

    # A late file lands in the newest folder: that date's partition alone runs, the other date is untouched.
    pd.DataFrame({"text": [f"A late arrival number {i} about tides." for i in range(5)]}).to_csv(
        landing / "2026-11-24" / "late.csv", index=False)
    second = sense_and_run(sensor, instance, warehouse, assets, resources, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-11-24"]
    assert warehouse.query(per_file)["n"].tolist() == [40, 60, len(sample) - 100, 5]
    assert warehouse.query("SELECT sentence_id FROM sentences WHERE source LIKE '2026-11-23/%' ORDER BY 1").equals(
        day_one)
    missing = warehouse.query("""SELECT count(*) AS n FROM sentences s ANTI JOIN embedding_cache c
                                 ON c.text_hash = s.text_hash""")["n"][0]
    assert missing == 0

    # One file of a date removed: its rows go, the date stays; the whole date removed: partition and rows go.
    (landing / "2026-11-23" / "evening.csv").unlink()
    third = sense_and_run(sensor, instance, warehouse, assets, resources, second.cursor)
    assert not third.run_requests and "2026-11-23" in instance.get_dynamic_partitions("sentence_folders")
    for path in (landing / "2026-11-23").iterdir():
        path.unlink()
    (landing / "2026-11-23").rmdir()
    fourth = sense_and_run(sensor, instance, warehouse, assets, resources, third.cursor)
    assert not fourth.run_requests and instance.get_dynamic_partitions("sentence_folders") == ["2026-11-24"]
    assert warehouse.query(per_file)["source"].tolist() == ["2026-11-24/a.csv", "2026-11-24/late.csv"]
