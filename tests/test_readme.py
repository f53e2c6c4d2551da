"""The README as a newcomer follows it: its plain-dagster commands, its SQL and its Python run as written (the
input path and the virtual environment put in place of their placeholders), on a real warehouse."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.automation import sentence_files_changed
from dagster_project.core.clustering import SCHEDULED
from dagster_project.resources import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DEMO_WAREHOUSE = "data/sentence_topics.duckdb"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    """The README's "without make" block, run in bash from an empty folder on a copy of the sample corpus."""
    work = tmp_path_factory.mktemp("own_data")
    corpus = shutil.copytree(SAMPLE_CORPUS, work / "texts")
    [script] = [block for block in blocks("bash") if "dagster asset materialize" in block]
    script = script.replace("/path/to/texts", str(corpus)).replace(
        "source .venv/bin/activate", f"source {sys.prefix}/bin/activate")
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "DUCKDB_PATH", "SENTENCES_PATH")}
    run = subprocess.run(["bash", "-e", "-c", script], cwd=work, env={**env, "EMBEDDING_DEVICE": "cpu"},
                         capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    return work, corpus, log


def test_own_data_without_make_runs_everything_in_parallel_processes(own_data):
    """Parallel steps share one DuckDB file without a lock error; the Dagster home sits beside the warehouse."""
    work, _, log = own_data
    assert "RUN_SUCCESS" in log and "STEP_FAILURE" not in log and "Could not set lock" not in log
    with duckdb.connect(str(work / "data/mine.duckdb"), read_only=True) as conn:
        counts = dict(conn.execute("SELECT algorithm, count(*) FROM cluster_assignments GROUP BY ALL").fetchall())
        assert counts == {name: 160 for name in SCHEDULED}  # what the daily schedule runs
        assert conn.execute("SELECT count(DISTINCT algorithm) FROM topic_summaries").fetchall()[0][0] == len(SCHEDULED)
    runs = dg.DagsterInstance.from_config(str(work / "data/mine.dagster")).get_runs()
    assert [run.status.value for run in runs] == ["SUCCESS"]
    assert "Warehouse data/mine.duckdb:" in log  # python -m dagster_project.show
    assert "Most similar to 'how long do I let the dough rise'" in log  # python -m dagster_project.search


def test_file_sensor_on_an_up_to_date_warehouse_launches_nothing(own_data, monkeypatch):
    """What `make ui` does on the warehouse just written: the sensor's first tick (no cursor) requests no run."""
    work, corpus, _ = own_data
    monkeypatch.setenv("SENTENCES_PATH", str(corpus))
    resources = {"warehouse": DuckDBWarehouse(database=str(work / "data/mine.duckdb"))}
    tick = sentence_files_changed(dg.build_sensor_context(resources=resources))
    assert not tick.run_requests and "no change" in tick.skip_reason.skip_message
    (corpus / "more.txt").write_text("A brand new sentence about gardening tomatoes.\n")
    tick = sentence_files_changed(dg.build_sensor_context(cursor=tick.cursor, resources=resources))
    assert len(tick.run_requests) == 1


def test_every_sql_query_of_the_readme_returns_rows(own_data):
    work, _, _ = own_data
    [sql] = blocks("sql")
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    assert len(statements) == 11
    with duckdb.connect(str(work / "data/mine.duckdb")) as conn:  # one of them names a topic, one seeds two
        for statement in statements:
            assert conn.execute(statement).fetchall(), statement
        assert conn.execute("SELECT algorithm, topic_id, label FROM topic_curation").fetchall() == [
            ("kmeans", 0, "bread and baking")]
        assert conn.execute("SELECT name, example IS NULL FROM topic_seeds ORDER BY name").fetchall() == [
            ("baking", False), ("football", True)]


def test_python_snippet_of_the_readme_runs(own_data):
    work, _, _ = own_data
    [snippet] = blocks("python")
    assert DEMO_WAREHOUSE in snippet
    run = subprocess.run([sys.executable, "-c", snippet.replace(DEMO_WAREHOUSE, "data/mine.duckdb")], cwd=work,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("160 sentences; largest topics:")


def test_readme_links_and_pictures_exist():
    targets = re.findall(r"\]\(((?:docs/)[^)#]+)", README)
    assert targets and all((ROOT / target).is_file() for target in targets), targets
    assert len(README.splitlines()) <= 300
