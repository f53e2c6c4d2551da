"""Bad input fails the run with a clear message and leaves every stored table exactly as it was."""

import shutil
from pathlib import Path

import duckdb
import pytest

from dagster_project.settings import SAMPLE_CORPUS

TABLES = ["sentences", "embedding_cache", "cluster_assignments", "topic_summaries", "clustering_runs",
          "clustering_metrics", "sentence_map", "topics", "topic_events", "topic_trends"]

BAD_FILES = {
    "no_text_column.csv": "sentence,label\nhello,a\n",
    "invalid_utf8.txt": b"fine\n\xff\xfe broken\n",
    "not_json.jsonl": "{oops\n",
    "number.jsonl": '{"text": 3.5}\n',
    "bad_timestamp.csv": "text,timestamp\nhello,2026-11-30\nworld,30/11/2026\n",
}
SAYS = {"bad_timestamp.csv": "row 2 field 'timestamp' is '30/11/2026', not an ISO 8601 date"}


def snapshot(db: Path) -> dict:
    with duckdb.connect(str(db), read_only=True) as conn:
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall())) for t in TABLES}


@pytest.fixture(scope="module")
def stored(tmp_path_factory, embedder):
    import dagster as dg

    from dagster_project.definitions import build_assets
    from dagster_project.resources import DuckDBWarehouse

    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(Path(SAMPLE_CORPUS) / "sample_corpus.csv", folder)
    db = tmp_path_factory.mktemp("w") / "w.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENTENCES_PATH", str(folder))
        result = dg.materialize(build_assets(), resources={
            "warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder})
    assert result.success
    return folder, db, snapshot(db)


@pytest.mark.parametrize("name", BAD_FILES)
def test_one_bad_file_among_good_fails_the_run_and_changes_nothing(stored, materialize_all, monkeypatch, name):
    folder, db, before = stored
    bad = folder / name
    content = BAD_FILES[name]
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        monkeypatch.setenv("SENTENCES_PATH", str(folder))
        result = materialize_all(db)
    finally:
        bad.unlink()
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    assert error.cls_name == "Failure"  # its description is the message, shown first, without a traceback to read
    assert error.message.startswith(f"dagster._core.definitions.events.Failure: {folder / name}")
    assert SAYS.get(name, "") in error.message
    assert failure.event_specific_data.user_failure_data.metadata["error"].value == "InputError"
    assert snapshot(db) == before
