"""The real DuckDB file: sentence ids across re-ingestion, vector reads, neighbour lists written without holding it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dagster_project.core.readers import open_corpus
from dagster_project.core.text import text_hash
from dagster_project.resources import DuckDBWarehouse


def rows(*texts: str) -> pd.DataFrame:
    return pd.DataFrame({"text": list(texts), "text_hash": [text_hash(t) for t in texts], "source": "a.txt",
                         "row": range(1, len(texts) + 1), "label": None})


def ids(warehouse) -> dict[str, int]:
    return dict(warehouse.query("SELECT text, sentence_id FROM sentences").itertuples(index=False))


def test_kept_rows_keep_their_ids_and_removed_ids_are_never_reused(warehouse):
    warehouse.replace_sentences(rows("one", "two", "three"))
    assert ids(warehouse) == {"one": 1, "two": 2, "three": 3}
    counts = warehouse.replace_sentences(rows("one", "four"))  # "two" and "three" removed, "four" new at row 2
    assert counts == {"rows": 2, "kept": 1, "new": 1, "removed": 2, "distinct_texts": 2, "labelled": 0}
    assert ids(warehouse) == {"one": 1, "four": 4}


STORE_ONE_SENTENCE = """
import sys
import pandas as pd
from dagster_project.core.clock import utc_now
from dagster_project.resources import DuckDBWarehouse
warehouse = DuckDBWarehouse(database=sys.argv[1])
warehouse.replace_sentences(pd.DataFrame({"text": ["one"], "text_hash": ["h"], "source": "a.txt", "row": [1],
                                          "label": [None]}))
stored = warehouse.query("SELECT ingested_at, timestamp FROM sentences").iloc[0]
print(stored["ingested_at"].isoformat(), stored["timestamp"].isoformat(), utc_now().isoformat())
"""


def test_every_stored_time_is_utc_on_a_host_that_is_not(tmp_path):
    """A process in a zone 5:30 ahead of UTC stores the ingestion time (DuckDB's clock) and the run times
    (Python's) in UTC."""
    env = {**os.environ, "TZ": "Asia/Kolkata"}
    done = subprocess.run([sys.executable, "-c", STORE_ONE_SENTENCE, str(tmp_path / "w.duckdb")], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    for stamp in done.stdout.split():
        assert abs(now - pd.Timestamp(stamp)) < pd.Timedelta(minutes=5), (stamp, now)


def test_sentences_stored_in_parts_are_stored_as_one_frame(warehouse):
    whole = rows("one", "two", "two", "three", "four")
    warehouse.replace_sentences(rows("one", "zero"))
    counts = warehouse.replace_sentences(whole.iloc[i:i + 2] for i in range(0, len(whole), 2))
    assert counts == {"rows": 5, "kept": 1, "new": 4, "removed": 1, "distinct_texts": 4, "labelled": 0}
    stored = warehouse.query("SELECT text, source_row, sentence_id FROM sentences ORDER BY source_row")
    assert stored.values.tolist() == [["one", 1, 1], ["two", 2, 3], ["two", 3, 4], ["three", 4, 5], ["four", 5, 6]]


def test_a_part_that_fails_to_read_writes_nothing(warehouse):
    warehouse.replace_sentences(rows("one", "two"))

    def parts():
        yield rows("one", "new")
        raise ValueError("row 3 is bad")

    with pytest.raises(ValueError, match="row 3"):
        warehouse.replace_sentences(parts())
    assert ids(warehouse) == {"one": 1, "two": 2}
    warehouse.replace_sentences(rows("one", "new"))  # the temporary table went with the transaction
    assert ids(warehouse) == {"one": 1, "new": 3}


def test_a_removed_sentence_id_is_never_given_to_another_text(warehouse):
    warehouse.replace_sentences(rows("one", "two", "three"))
    warehouse.replace_sentences(rows("one", "two"))  # "three" (the highest id) removed
    warehouse.replace_sentences(rows("one", "two", "five"))
    assert ids(warehouse) == {"one": 1, "two": 2, "five": 4}
    warehouse.delete_source("a.txt")  # the sensor's way of removing a file
    warehouse.replace_sentences(rows("six"))
    assert ids(warehouse) == {"six": 5}


def test_two_runs_adding_the_same_new_sentences_leave_one_assignment_and_one_point_each(warehouse):
    """Two refreshes started together both find the same new sentences; the later write replaces the earlier."""
    warehouse.replace_sentences(rows("one", "two", "three"))
    new = pd.DataFrame({"sentence_id": [1, 2, 3], "cluster_id": [0, 0, 1], "topic_id": [7, 7, 8]})
    run = pd.DataFrame({"model_key": ["m"], "n_sentences": [3], "n_clusters": [2], "seconds": [0.1],
                        "materialized_at": [pd.Timestamp("2026-11-30")]})
    points = pd.DataFrame({"sentence_id": [1, 2, 3], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0], "method": "pca",
                           "model_key": "m", "placed": True})
    for _ in range(2):
        warehouse.add_assignments("kmeans", new, run)
        warehouse.update_map(points)
    assert warehouse.query("SELECT sentence_id, topic_id FROM cluster_assignments ORDER BY 1").values.tolist() == [
        [1, 7], [2, 7], [3, 8]]
    assert warehouse.query("SELECT count(*) AS n FROM clustering_runs")["n"][0] == 1
    assert warehouse.query("SELECT sentence_id FROM sentence_map ORDER BY 1")["sentence_id"].tolist() == [1, 2, 3]


def test_a_few_sentences_vectors_read_by_cache_row_are_those_of_the_whole_read(warehouse):
    """Up to READ_BY_ROW_UP_TO sentences are read by the rowid of their cache rows, in id order, a text held by
    two sentences (one cache row) given to both."""
    texts = [f"sentence {i}" for i in range(50)] + ["sentence 7"]
    warehouse.replace_sentences(rows(*texts))
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    warehouse.insert_embeddings("m", [text_hash(t) for t in texts[:25]], vectors[:25])
    warehouse.insert_embeddings("other", [text_hash(t) for t in texts[:50]], -vectors)  # another model's rows
    warehouse.insert_embeddings("m", [text_hash(t) for t in texts[25:50]], vectors[25:])
    frame, every = warehouse.load_embeddings("m")
    wanted = np.array([51, 3, 40, 8, 26])  # sentence 51 repeats sentence 7's text
    few, read = warehouse.embeddings_of("m", wanted)
    assert few["sentence_id"].tolist() == sorted(wanted.tolist())
    at = np.searchsorted(frame["sentence_id"].to_numpy(), few["sentence_id"].to_numpy())
    assert np.array_equal(read, every[at]) and np.array_equal(read[-1], vectors[7])
    assert few["text"].tolist() == frame["text"].to_numpy()[at].tolist()


def busy_folder(tmp_path) -> DuckDBWarehouse:
    """A warehouse in a folder whose name holds glob characters, as a user's may."""
    return DuckDBWarehouse(database=str(tmp_path / "corpus [v1]*" / "warehouse.duckdb"))


def staging_left(warehouse) -> list[str]:
    return [p.name for p in Path(warehouse.database).parent.iterdir() if ".staging-" in p.name]


def other_step(warehouse) -> DuckDBWarehouse:
    """Another step of the same run: it gives up after one second of waiting for the file."""
    return DuckDBWarehouse(database=warehouse.database, lock_timeout_seconds=1.0)


def test_vectors_are_streamed_from_a_staged_copy_while_the_file_is_free(tmp_path):
    warehouse = busy_folder(tmp_path)
    texts = [f"sentence {i}" for i in range(45)]
    warehouse.replace_sentences(rows(*texts))
    vectors = np.random.default_rng(1).normal(size=(45, 8)).astype(np.float32)
    warehouse.insert_embeddings("m", [text_hash(t) for t in texts], vectors)
    frame, every = warehouse.load_embeddings("m")
    chunks = []
    for chunk in warehouse.embedding_chunks("m", rows=10):
        other_step(warehouse).append_rows("clustering_metrics", pd.DataFrame(  # waits while the read holds the file
            {"algorithm": ["kmeans"], "materialized_at": [pd.Timestamp("2026-12-06")]}))
        chunks.append(chunk)
    ids = np.concatenate([chunk_ids for chunk_ids, _ in chunks])
    assert len(chunks) == 5 and sorted(ids.tolist()) == frame["sentence_id"].tolist()
    assert np.array_equal(np.concatenate([v for _, v in chunks]), every[np.searchsorted(frame["sentence_id"], ids)])
    assert warehouse.query("SELECT count(*) AS n FROM clustering_metrics")["n"][0] == 5 and not staging_left(warehouse)


def test_sentences_are_read_while_the_file_is_free_and_stored_in_one_transaction(tmp_path):
    warehouse = busy_folder(tmp_path)
    warehouse.replace_sentences(rows("one", "two"))

    def parts():  # a corpus read file by file: another step reads the warehouse meanwhile
        for part in (rows("one", "three").iloc[:1], rows("one", "three").iloc[1:]):
            assert other_step(warehouse).query("SELECT count(*) AS n FROM sentences")["n"][0] == 2
            yield part

    counts = warehouse.replace_sentences(parts())
    assert counts == {"rows": 2, "kept": 1, "new": 1, "removed": 1, "distinct_texts": 2, "labelled": 0}
    assert ids(warehouse) == {"one": 1, "three": 3} and not staging_left(warehouse)


def neighbour_frame(pairs: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["sentence_id", "neighbor_id", "similarity"]).astype(
        {"similarity": np.float32})


def stored_lists(warehouse) -> list[list]:
    return warehouse.query("SELECT model_key, sentence_id, neighbor_id FROM sentence_neighbors "
                           "ORDER BY ALL").values.tolist()


def test_neighbour_lists_are_made_before_the_file_is_held_and_applied_in_order(tmp_path):
    warehouse = busy_folder(tmp_path)
    warehouse.replace_neighbours("old", [(np.zeros(0), neighbour_frame([(1, 2, 0.9), (2, 1, 0.9)]))])
    warehouse.replace_neighbours("m", [(np.zeros(0), neighbour_frame([(1, 2, 0.9), (2, 1, 0.9), (3, 1, 0.5)]))])
    assert [row[0] for row in stored_lists(warehouse)] == ["m"] * 3  # another model's lists went

    def changes():
        yield np.array([1, 3]), None
        for first in (1, 3):  # the search, a chunk at a time: another step reads meanwhile
            assert len(other_step(warehouse).query("SELECT * FROM sentence_neighbors")) == 3
            yield np.zeros(0), neighbour_frame([(first, 4, 0.8), (4, first, 0.8)])
        yield np.array([4]), None  # a later drop removes what an earlier chunk added
        yield np.zeros(0), neighbour_frame([(4, 1, 0.7)])

    warehouse.replace_neighbours("m", changes())
    assert stored_lists(warehouse) == [["m", 1, 4], ["m", 2, 1], ["m", 3, 4], ["m", 4, 1]]
    assert not staging_left(warehouse)


def test_a_search_that_fails_writes_no_neighbour_list_and_leaves_nothing_staged(tmp_path):
    warehouse = busy_folder(tmp_path)
    warehouse.replace_neighbours("m", [(np.zeros(0), neighbour_frame([(1, 2, 0.9), (2, 1, 0.9)]))])

    def changes():
        yield np.array([1, 2]), None
        yield np.zeros(0), neighbour_frame([(1, 3, 0.8)])
        raise MemoryError("the search ran out of memory")

    with pytest.raises(MemoryError):
        warehouse.replace_neighbours("m", changes())
    assert stored_lists(warehouse) == [["m", 1, 2], ["m", 2, 1]] and not staging_left(warehouse)


def test_what_a_killed_process_staged_is_removed_by_the_next_step(tmp_path):
    import os
    import subprocess

    warehouse = busy_folder(tmp_path)
    ended = subprocess.Popen(["true"])
    ended.wait()
    folder = Path(warehouse.database).parent
    folder.mkdir(parents=True)
    left = folder / f"warehouse.duckdb.staging-{ended.pid}-abc"  # a step killed while its vectors were staged
    running = folder / f"warehouse.duckdb.staging-{os.getpid()}-def"  # a step still running
    for staged in (left, running):
        staged.mkdir()
        (staged / "vectors.arrow").write_bytes(b"0" * 100)
    warehouse.replace_sentences(rows("one"))
    assert not left.exists() and (running / "vectors.arrow").exists() and ids(warehouse) == {"one": 1}



@pytest.mark.parametrize("suffix", ["txt", "csv", "jsonl"])
def test_lines_inserted_or_deleted_keep_the_ids_of_the_sentences_that_did_not_change(tmp_path, warehouse, suffix):
    path = tmp_path / f"notes.{suffix}"

    def store(*texts: str) -> list[tuple[str, int]]:
        if suffix == "txt":
            path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        elif suffix == "csv":
            pd.DataFrame({"text": texts}).to_csv(path, index=False)
        else:
            pd.DataFrame({"text": texts}).to_json(path, orient="records", lines=True)
        corpus = open_corpus(str(path))
        warehouse.replace_sentences(corpus, None, corpus.fingerprints)
        return [tuple(row) for row in warehouse.query(
            "SELECT text, sentence_id FROM sentences ORDER BY source_row").itertuples(index=False)]

    assert store("the river rose", "a dry summer", "the river rose", "the dam held") == [
        ("the river rose", 1), ("a dry summer", 2), ("the river rose", 3), ("the dam held", 4)]
    # a line inserted at the top, one deleted: the others keep their ids, a repeated text by its order
    assert store("a new first line", "the river rose", "the river rose", "the dam held") == [
        ("a new first line", 5), ("the river rose", 1), ("the river rose", 3), ("the dam held", 4)]
    # a text changed in place is a removal and an addition
    assert store("a new first line", "the river rose", "the river rose", "the dam broke") == [
        ("a new first line", 5), ("the river rose", 1), ("the river rose", 3), ("the dam broke", 6)]


def test_a_curated_name_follows_its_topic_into_the_parts_and_the_latest_row_wins(warehouse):
    """Topic 1 was named, then renamed; it split into 4 and 5, and 5 absorbed 2 (named too): each part shows the
    nearest curated ancestor's name with its own keywords; deleting a topic's rows brings its keywords back."""
    summaries = pd.DataFrame({"cluster_id": [0, 1, 2], "topic_id": [4, 5, 6], "size": 1,
                              "keyword_label": ["refund card", "refund late", "login"]})
    lineage = pd.DataFrame({"topic_id": [1, 2, 4, 4, 5, 5, 5, 6], "ancestor_topic_id": [1, 2, 4, 1, 5, 1, 2, 6],
                            "generations": [0, 0, 0, 1, 0, 1, 1, 0]})
    warehouse.replace_algorithm_rows("kmeans", {"topic_summaries": summaries.assign(label=summaries["keyword_label"]),
                                                "topic_lineage": lineage})
    with warehouse.transaction() as conn:
        conn.execute("INSERT INTO topic_curation (algorithm, topic_id, label) VALUES ('kmeans', 1, 'refunds'), "
                     "('kmeans', 1, 'refund requests'), ('kmeans', 2, 'late payments'), ('kmeans', 6, 'sign-in')")

    def labels() -> list[tuple]:
        warehouse.apply_curation("kmeans")
        return [tuple(None if pd.isna(v) else v for v in row) for row in warehouse.query(
            "SELECT topic_id, label, curated_from FROM topic_summaries ORDER BY topic_id").itertuples(index=False)]

    assert labels() == [(4, "refund requests / refund card", 1), (5, "late payments / refund late", 2),
                        (6, "sign-in", None)]
    with warehouse.transaction() as conn:
        conn.execute("DELETE FROM topic_curation WHERE topic_id IN (2, 6)")
    assert labels() == [(4, "refund requests / refund card", 1), (5, "refund requests / refund late", 1),
                        (6, "login", None)]
