"""Property-based tests: ingestion over arbitrary Unicode, every algorithm over random small matrices."""

import csv
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dagster_project.core.clustering import ALGORITHMS, run_clustering
from dagster_project.core.readers import InputError
from support import read_corpus
from dagster_project.core.text import normalize_text

NOISE_ALLOWED = {"community_detection", "hdbscan", "dbscan"}
lines = st.lists(st.text(max_size=40), min_size=1, max_size=12)


def expected(texts):
    return [normalize_text(t) for t in texts if normalize_text(t)]


def check(path, texts):
    try:
        got = read_corpus(str(path)).frame["text"].tolist()
    except InputError as err:
        assert not expected(texts) and "all rows empty" in str(err)
        return
    assert got == expected(texts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=lines)
def test_jsonl_and_csv_round_trip_any_unicode(tmp_path, texts):
    jsonl = tmp_path / "fuzz.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n", encoding="utf-8")
    check(jsonl, texts)
    table = tmp_path / "fuzz.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        writer.writerow(["text"])
        writer.writerows([t] for t in texts)
    check(table, texts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=lines)
def test_txt_lines_any_unicode(tmp_path, texts):
    path = tmp_path / "fuzz.txt"
    content = "\n".join(texts)
    path.write_text(content, encoding="utf-8", newline="")
    check(path, content.splitlines())


matrices = st.integers(1, 24).flatmap(
    lambda n: arrays(np.float32, (n, 4), elements=st.floats(-1, 1, width=32, allow_nan=False))
)


@settings(max_examples=25, deadline=None)
@given(x=matrices, name=st.sampled_from(sorted(ALGORITHMS)))
def test_every_algorithm_gives_valid_deterministic_labels(x, name):
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.where(norms > 1e-6, x / np.maximum(norms, 1e-6), np.float32([1, 0, 0, 0])).astype(np.float32)
    labels = run_clustering(name, x).labels
    assert labels.shape == (len(x),)
    assert labels.min() >= -1 and labels.max() < len(x)
    if name not in NOISE_ALLOWED:
        assert (labels >= 0).all()
    clusters = sorted(set(labels.tolist()) - {-1})
    assert clusters == list(range(len(clusters)))  # numbered 0..k-1
    assert run_clustering(name, x).labels.tolist() == labels.tolist()
