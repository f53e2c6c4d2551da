import json

import pandas as pd
import pytest

from dagster_project.core.readers import InputError, resolve_files
from support import read_corpus


def write(path, content: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_every_format_in_a_folder(tmp_path):
    write(tmp_path / "a.txt", "first line\n\n  second   line \n")
    write(tmp_path / "b.csv", "text,label\nfrom csv,x\n")
    write(tmp_path / "c.tsv", "label\ttext\ny\tfrom tsv\n")
    write(tmp_path / "d.jsonl", json.dumps({"text": "from jsonl", "label": 3}) + "\n\n")
    pd.DataFrame({"text": ["from parquet"]}).to_parquet(tmp_path / "e.parquet")
    write(tmp_path / "notes.md", "ignored in folders")
    corpus = read_corpus(str(tmp_path))
    frame = corpus.frame
    assert frame["text"].tolist() == ["first line", "second line", "from csv", "from tsv", "from jsonl", "from parquet"]
    assert frame["label"].tolist() == [None, None, "x", "y", "3", None]
    assert frame["source"].tolist() == ["a.txt", "a.txt", "b.csv", "c.tsv", "d.jsonl", "e.parquet"]
    assert frame["row"].tolist()[:2] == [1, 3]
    assert corpus.empty_rows_dropped == 1
    assert frame["text_hash"].nunique() == 6


def test_glob_and_single_file(tmp_path):
    write(tmp_path / "x" / "one.txt", "alpha\n")
    write(tmp_path / "y" / "two.txt", "beta\n")
    assert [p.name for p in resolve_files(str(tmp_path / "*" / "*.txt"))] == ["one.txt", "two.txt"]
    assert read_corpus(str(tmp_path / "y" / "two.txt")).frame["text"].tolist() == ["beta"]


def test_csv_with_quoted_newlines_is_one_sentence(tmp_path):
    write(tmp_path / "q.csv", 'text,label\n"multi\nline",a\n')
    assert read_corpus(str(tmp_path / "q.csv")).frame["text"].tolist() == ["multi line"]


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.txt", None, "matches no readable file"),
        ("data.xlsx", "x", "unsupported extension '.xlsx'"),
        ("bad.csv", "sentence,label\nhello,a\n", "no 'text' column (columns found: sentence, label)"),
        ("bad.txt", b"good line\nbad \xff byte\n", "line 2 is not valid UTF-8"),
        ("bad.jsonl", '{"text": "ok"}\n{"label": "no text"}\n', "line 2 has no 'text' field"),
        ("num.jsonl", '{"text": 42}\n', "row 1 field 'text' is int"),
        ("broken.jsonl", '{"text": \n', "line 1 is not valid JSON"),
        ("blank.txt", "\n   \n\t\n", "all rows empty"),
        ("empty.csv", "", "all rows empty"),
    ],
)
def test_bad_input_names_file_row_and_fix(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        write(path, content)
    with pytest.raises(InputError) as err:
        read_corpus(str(path))
    assert expected in str(err.value)
    assert name in str(err.value)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match="holds no"):
        read_corpus(str(tmp_path))


def test_reading_in_parts_gives_the_whole_corpus(tmp_path):
    texts = [f"sentence {i}" if i % 4 else "" for i in range(11)]
    stamps = [f"2026-11-{i + 1:02d}" for i in range(11)]
    write(tmp_path / "a.txt", "\r\n".join(texts) + "\u2028tail\n")
    pd.DataFrame({"text": texts, "label": "l", "timestamp": stamps}).to_csv(tmp_path / "b.csv", index=False)
    pd.DataFrame({"label": "l", "text": texts}).to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    write(tmp_path / "d.jsonl", "\n".join(json.dumps({"text": t, "timestamp": s}) for t, s in zip(texts, stamps)))
    pd.DataFrame({"text": texts}).to_parquet(tmp_path / "e.parquet")
    whole = read_corpus(str(tmp_path))
    for chunk_rows in (1, 2, 5):
        parts = read_corpus(str(tmp_path), chunk_rows=chunk_rows)
        pd.testing.assert_frame_equal(parts.frame, whole.frame)
        assert parts.empty_rows_dropped == whole.empty_rows_dropped == 5 * 3
    assert whole.frame.loc[whole.frame["source"] == "a.txt", "text"].tolist()[-2:] == ["sentence 10", "tail"]


def test_a_bad_value_in_a_later_part_is_named_by_its_row(tmp_path):
    write(tmp_path / "t.csv", "text,timestamp\n" + "ok,2026-11-30\n" * 5 + "bad,yesterday\n")
    with pytest.raises(InputError, match="row 6 field 'timestamp' is 'yesterday'"):
        read_corpus(str(tmp_path / "t.csv"), chunk_rows=2)
    write(tmp_path / "u.csv", b"text\n" + b"ok\n" * 5 + b"bad \xff\n")
    with pytest.raises(InputError, match="line 7 is not valid UTF-8"):
        read_corpus(str(tmp_path / "u.csv"), chunk_rows=2)
