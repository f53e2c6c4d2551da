"""Tiny and degenerate corpora give a defined result through the whole graph, not a traceback."""

import duckdb
import numpy as np
import pytest

from dagster_project.core.clustering import ALGORITHMS
from dagster_project.core.labels import NOISE_LABEL

CORPORA = {
    "one_sentence": ["The only sentence in the corpus."],
    "two_sentences": ["Cats purr when they are happy.", "Interest rates rose again this quarter."],
    "all_identical": ["The same sentence, over and over."] * 25,
}


@pytest.mark.parametrize("name", CORPORA)
def test_degenerate_corpus_materializes_with_defined_results(tmp_path, monkeypatch, materialize_all, name):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPORA[name]) + "\n", encoding="utf-8")
    monkeypatch.setenv("SENTENCES_PATH", str(corpus))
    db = tmp_path / "w.duckdb"
    result = materialize_all(db)
    assert result.success, [e.event_specific_data for e in result.all_events if e.is_failure]
    n = len(CORPORA[name])
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("SELECT algorithm, count(*), max(cluster_id) FROM cluster_assignments GROUP BY ALL").fetchall()
        assert {r[0]: r[1] for r in rows} == {a: n for a in ALGORITHMS}
        assert all(r[2] < max(n, 1) for r in rows)
        topics = conn.execute("SELECT algorithm, sum(size) FROM topic_summaries GROUP BY ALL").fetchall()
        assert dict(topics) == {a: n for a in ALGORITHMS}
        labels = [r[0] for r in conn.execute("SELECT label FROM topic_summaries WHERE cluster_id = -1").fetchall()]
        assert all(label == NOISE_LABEL for label in labels)
        metrics = conn.execute("SELECT algorithm, silhouette FROM clustering_metrics").fetchall()
        assert len(metrics) == len(ALGORITHMS)
        assert all(m[1] is None for m in metrics)  # undefined for a single cluster or fewer than 3 points
        assert conn.execute("SELECT count(*) FROM sentence_map").fetchall()[0][0] == n


def test_megabyte_sentence_is_kept_whole_and_embedded_from_its_first_tokens(tmp_path, monkeypatch, materialize_all,
                                                                            embedder):
    words = " ".join(f"word{i % 5000}" for i in range(120_000))[: 2**20]
    (tmp_path / "c.txt").write_text(f"{words}\nA short normal sentence.\n", encoding="utf-8")
    monkeypatch.setenv("SENTENCES_PATH", str(tmp_path / "c.txt"))
    db = tmp_path / "w.duckdb"
    result = materialize_all(db, selection=["sentences", "sentence_embeddings"])
    assert result.success
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT max(length(text)) FROM sentences").fetchall()[0][0] == len(words.strip())
        stored = conn.execute("""SELECT c.embedding FROM embedding_cache c JOIN sentences s USING (text_hash)
                                 ORDER BY length(s.text) DESC LIMIT 1""").fetchall()[0][0]
    # The model sees only its first max_seq_length tokens: the stored vector is that of a long enough prefix.
    stored = np.asarray(stored, dtype=np.float32)
    prefix = embedder.encode([words[:20_000]])[0]
    assert stored.shape == prefix.shape and float(stored @ prefix) > 0.9999
