"""Faults injected into real runs: SIGKILL at several points, concurrent runs, readers during writes."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.core.clustering import ALGORITHMS
from dagster_project.resources import DuckDBWarehouse

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "dagster_project.definitions",
       "--select", "not group:adaptation"]
# Keywords in plain c-TF-IDF order: the topic steps then need no model of their own (what these tests check is
# the warehouse after kills and concurrent runs, not keyword diversity, which tests/assets/test_pipeline.py runs).
PLAIN_TOPICS = {f"{name}_topics": {"config": {"diversity": 0.0}} for name in ALGORITHMS}
FAST = json.dumps({"ops": PLAIN_TOPICS})
# Whatever DuckDB or the warehouse say when a step meets the file locked: none of it may happen.
LOCK_ERRORS = re.compile(r"Could not set lock|Conflicting lock|WarehouseBusyError|IO Error[^\n]*lock", re.IGNORECASE)
REFIT = json.dumps({"ops": {**PLAIN_TOPICS,
                            **{f"{name}_clusters": {"config": {"refit": True}} for name in ALGORITHMS}}})
SMALL_CHUNKS = json.dumps({"ops": {**PLAIN_TOPICS, "sentence_embeddings": {"config": {"chunk_size": 8}}}})


def cli_env(tmp_path: Path, corpus: Path, db: Path) -> dict:
    env = {**os.environ, "DUCKDB_PATH": str(db), "DAGSTER_HOME": str(tmp_path), "SENTENCES_PATH": str(corpus),
           "EMBEDDING_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env


def run_cli(env: dict, *extra: str, command: list[str] = CLI) -> str:
    run = subprocess.run([*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "RUN_SUCCESS" in log, log[-4000:]
    return log


def kill_when(env: dict, marker: str, delay: float, *extra: str, command: list[str] = CLI) -> str:
    """Start a run, SIGKILL its whole process group `delay` seconds after `marker` appears in its log."""
    process = subprocess.Popen([*command, *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    deadline = time.time() + 60  # the group's other processes (the steps) die too, and release the DuckDB file
    while time.time() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    assert any(marker in line for line in seen), "".join(seen)[-3000:]
    return "".join(seen)


def sentence_ids(conn) -> frozenset:
    return frozenset(i for (i,) in conn.execute("SELECT sentence_id FROM sentences").fetchall())


def assert_consistent(db: Path, old_ids: frozenset, new_count: int) -> None:
    """Every table holds one whole materialization, the previous or the new one, never a mix or a part."""
    with duckdb.connect(str(db), read_only=True) as conn:
        ids = sentence_ids(conn)
        assert ids == old_ids or (len(ids) == new_count and old_ids <= ids)
        bad_vectors = conn.execute(
            "SELECT count(*) FROM embedding_cache WHERE NOT isfinite(list_sum(embedding)) "
            "OR abs(sqrt(list_dot_product(embedding, embedding)) - 1) > 1e-3").fetchall()[0][0]
        assert bad_vectors == 0
        assert conn.execute("SELECT count(*) - count(DISTINCT (model_key, text_hash)) FROM embedding_cache"
                            ).fetchall()[0][0] == 0
        for name in ALGORITHMS:
            assigned = [i for (i,) in conn.execute(
                "SELECT sentence_id FROM cluster_assignments WHERE algorithm = ?", [name]).fetchall()]
            assert len(assigned) == len(set(assigned)), name
            assert set(assigned) in (set(old_ids), set(ids)), name
            total = conn.execute("SELECT sum(size) FROM topic_summaries WHERE algorithm = ?", [name]).fetchall()[0][0]
            assert total in (len(old_ids), len(ids)), name
            assert conn.execute("SELECT count(*) FROM clustering_runs WHERE algorithm = ?", [name]
                                ).fetchall()[0][0] == 1


@pytest.fixture(scope="module")
def materialized(tmp_path_factory) -> Path:
    """A folder holding the sample corpus, its warehouse after one whole run, and that run's Dagster home."""
    home = tmp_path_factory.mktemp("materialized")
    corpus = home / "corpus"
    corpus.mkdir()
    shutil.copy(Path(SAMPLE_CORPUS) / "sample_corpus.csv", corpus)
    run_cli(cli_env(home, corpus, home / "warehouse.duckdb"), "--config-json", FAST)
    return home


@pytest.fixture
def pipeline(tmp_path, materialized):
    """A copy of `materialized` for one test to change: (env, corpus, warehouse, sentence ids)."""
    shutil.copytree(materialized, tmp_path, dirs_exist_ok=True)
    corpus, db = tmp_path / "corpus", tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db), read_only=True) as conn:
        old_ids = sentence_ids(conn)
    return cli_env(tmp_path, corpus, db), corpus, db, old_ids


def add_sentences(corpus: Path, count: int) -> None:
    lines = [f"Field note {i}: the river level rose {i} centimetres after the storm." for i in range(count)]
    (corpus / "notes.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sigkill_at_points_then_finish(pipeline, points: list[tuple[str, float]]) -> None:
    """SIGKILL a run at each (log marker, delay) in turn: the warehouse is whole after each kill, and a final
    run completes every asset for every sentence."""
    env, corpus, db, old_ids = pipeline
    add_sentences(corpus, 64)
    new_count = len(old_ids) + 64
    for marker, delay in points:
        kill_when(env, marker, delay, "--config-json", SMALL_CHUNKS)
        assert_consistent(db, old_ids, new_count)
    log = run_cli(env, "--config-json", SMALL_CHUNKS)
    assert "STEP_FAILURE" not in log
    assert_consistent(db, old_ids, new_count)
    with duckdb.connect(str(db), read_only=True) as conn:
        assert len(sentence_ids(conn)) == new_count
        counts = dict(conn.execute("SELECT algorithm, count(*) FROM cluster_assignments GROUP BY ALL").fetchall())
        assert counts == {name: new_count for name in ALGORITHMS}


def test_sigkill_mid_encoding_and_after_a_clustering_leaves_whole_materializations(pipeline):
    sigkill_at_points_then_finish(pipeline, [
        ("sentence_embeddings - STEP_START", 4.0),  # in the middle of encoding, chunk by chunk
        ("kmeans_clusters - ASSET_MATERIALIZATION", 0.0),
    ])


@pytest.mark.slow
def test_sigkill_at_more_points_leaves_whole_materializations(pipeline):
    sigkill_at_points_then_finish(pipeline, [
        ("kmeans_clusters - STEP_START", 1.0),
        ("_topics - STEP_START", 1.5),
        ("clustering_metrics - STEP_START", 1.0),
    ])


def test_concurrent_runs_and_readers_lose_nothing(pipeline):
    """Two runs that both fit every clustering again, started together, and a reader beside them."""
    env, corpus, db, old_ids = pipeline
    add_sentences(corpus, 10)
    reader = DuckDBWarehouse(database=str(db))
    errors, reads = [], []
    stop = threading.Event()

    def keep_reading():
        while not stop.is_set():
            try:
                reads.append(reader.query("SELECT count(*) AS n FROM sentences")["n"][0])
            except Exception as err:  # any lock error here is a failure
                errors.append(err)
            time.sleep(0.2)

    thread = threading.Thread(target=keep_reading)
    thread.start()
    try:
        runs = [subprocess.Popen([*CLI, "--config-json", REFIT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        logs = [run.communicate(timeout=900)[0] for run in runs]
    finally:
        stop.set()
        thread.join()
    for run, log in zip(runs, logs):
        assert run.returncode == 0 and "RUN_SUCCESS" in log, log[-4000:]
        assert "STEP_FAILURE" not in log and not LOCK_ERRORS.search(log), LOCK_ERRORS.search(log) or log[-4000:]
    assert not errors and reads and set(reads) <= {len(old_ids), len(old_ids) + 10}
    assert_consistent(db, old_ids, len(old_ids) + 10)
    with duckdb.connect(str(db), read_only=True) as conn:
        assert len(sentence_ids(conn)) == len(old_ids) + 10
        assert conn.execute("SELECT count(DISTINCT materialized_at) FROM clustering_metrics").fetchall()[0][0] == 3
        # one topic registry: no id given twice, every assigned topic known and active, each run's fit recorded
        given_twice = conn.execute("""SELECT count(*) FROM (SELECT algorithm, topic_id FROM topic_events
                                      WHERE event IN ('born', 'split_from') GROUP BY ALL HAVING count(*) > 1)""")
        assert given_twice.fetchall()[0][0] == 0
        assert conn.execute("SELECT count(*) - count(DISTINCT (algorithm, topic_id)) FROM topics").fetchall()[0][0] == 0
        assert conn.execute("""SELECT count(*) FROM cluster_assignments a LEFT JOIN topics t USING (algorithm, topic_id)
                               WHERE a.topic_id >= 0 AND t.status IS DISTINCT FROM 'active'""").fetchall()[0][0] == 0
        reasons = conn.execute("SELECT DISTINCT details->>'refit_reason' FROM clustering_runs").fetchall()
        assert reasons == [("asked for (refit = true)",)]


def test_sigkill_mid_encoding_loses_at_most_the_chunk_in_flight(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    new, chunk = 3000, 50
    add_sentences(corpus, new)
    db = tmp_path / "warehouse.duckdb"
    env = cli_env(tmp_path, corpus, db)
    command = [*CLI[:-1], "sentences,sentence_embeddings"]
    config = json.dumps({"ops": {"sentence_embeddings": {"config": {"chunk_size": chunk}}}})

    log = kill_when(env, f"embedded {3 * chunk}/{new} new texts", 0.0, "--config-json", config, command=command)
    reported = max(int(n) for n in re.findall(rf"embedded (\d+)/{new} new texts", log))
    committed = cached_vectors(db)
    # Killed mid-encoding; every chunk it reported is stored, and only whole chunks are: what the kill
    # lost is the chunk that was being encoded, no more.
    assert reported <= committed < new and committed % chunk == 0

    log = run_cli(env, "--config-json", config, command=command)
    pending = {int(n) for n in re.findall(r"embedded \d+/(\d+) new texts", log)}
    assert pending == {new - committed}  # the restart encodes only what was not committed
    assert cached_vectors(db) == new


def cached_vectors(db: Path) -> int:
    """Vectors in the cache, after checking that none is duplicated, partial or not unit length."""
    with duckdb.connect(str(db), read_only=True) as conn:
        total, distinct, bad = conn.execute(
            "SELECT count(*), count(DISTINCT (model_key, text_hash)), count(*) FILTER (WHERE len(embedding) <> 384 "
            "OR NOT isfinite(list_sum(embedding)) OR abs(sqrt(list_dot_product(embedding, embedding)) - 1) > 1e-3) "
            "FROM embedding_cache").fetchall()[0]
    assert total == distinct and bad == 0
    return total
