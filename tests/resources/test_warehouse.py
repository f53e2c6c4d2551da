"""Sentence ids in the real DuckDB file across re-ingestion."""

import pandas as pd

from dagster_project.core.text import text_hash


def rows(*texts: str) -> pd.DataFrame:
    return pd.DataFrame({"text": list(texts), "text_hash": [text_hash(t) for t in texts], "source": "a.txt",
                         "row": range(1, len(texts) + 1), "label": None})


def ids(warehouse) -> dict[str, int]:
    return dict(warehouse.query("SELECT text, sentence_id FROM sentences").itertuples(index=False))


def test_kept_rows_keep_their_ids_and_removed_ids_are_never_reused(warehouse):
    warehouse.replace_sentences(rows("one", "two", "three"))
    assert ids(warehouse) == {"one": 1, "two": 2, "three": 3}
    counts = warehouse.replace_sentences(rows("one", "four"))  # "two" and "three" removed, "four" new at row 2
    assert counts == {"rows": 2, "kept": 1, "new": 1, "removed": 2}
    assert ids(warehouse) == {"one": 1, "four": 4}


def test_a_removed_sentence_id_is_never_given_to_another_text(warehouse):
    warehouse.replace_sentences(rows("one", "two", "three"))
    warehouse.replace_sentences(rows("one", "two"))  # "three" (the highest id) removed
    warehouse.replace_sentences(rows("one", "two", "five"))
    assert ids(warehouse) == {"one": 1, "two": 2, "five": 4}
    warehouse.delete_source("a.txt")  # the sensor's way of removing a file
    warehouse.replace_sentences(rows("six"))
    assert ids(warehouse) == {"six": 5}
