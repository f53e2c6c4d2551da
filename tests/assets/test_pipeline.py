"""Real materializations of the whole graph with the real model into a temporary DuckDB file."""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from sklearn.metrics import normalized_mutual_info_score

from dagster_project.assets.evaluation import report_path
from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.core.clustering import ALGORITHMS
from dagster_project.definitions import build_assets
from dagster_project.resources import DuckDBWarehouse

CONTRACT = {
    "sentences": {"sentence_id": "BIGINT", "text": "VARCHAR", "text_hash": "VARCHAR", "source": "VARCHAR",
                  "label": "VARCHAR", "ingested_at": "TIMESTAMP", "timestamp": "TIMESTAMP"},
    "embedding_cache": {"model_key": "VARCHAR", "text_hash": "VARCHAR", "embedding": "FLOAT[]"},
    "cluster_assignments": {"algorithm": "VARCHAR", "sentence_id": "BIGINT", "cluster_id": "INTEGER",
                            "topic_id": "BIGINT"},
    "topic_summaries": {"algorithm": "VARCHAR", "cluster_id": "INTEGER", "topic_id": "BIGINT", "size": "INTEGER",
                        "label": "VARCHAR", "curated_from": "BIGINT", "keywords": "VARCHAR[]",
                        "representative_sentences": "VARCHAR[]"},
    "topics": {"algorithm": "VARCHAR", "topic_id": "BIGINT", "label": "VARCHAR", "status": "VARCHAR",
               "first_seen": "TIMESTAMP", "last_seen": "TIMESTAMP", "size": "INTEGER", "centroid": "FLOAT[]"},
    "topic_events": {"algorithm": "VARCHAR", "topic_id": "BIGINT", "materialized_at": "TIMESTAMP", "event": "VARCHAR"},
    "topic_lineage": {"algorithm": "VARCHAR", "topic_id": "BIGINT", "ancestor_topic_id": "BIGINT",
                      "generations": "INTEGER"},
    "topic_trends": {"algorithm": "VARCHAR", "topic_id": "BIGINT", "period": "TIMESTAMP", "sentences": "INTEGER"},
    "topic_curation": {"algorithm": "VARCHAR", "topic_id": "BIGINT", "label": "VARCHAR", "revision": "BIGINT"},
    "clustering_metrics": {"algorithm": "VARCHAR", "params": "JSON", "n_sentences": "INTEGER",
                           "n_clusters": "INTEGER", "noise_fraction": "DOUBLE", "silhouette": "DOUBLE",
                           "davies_bouldin": "DOUBLE", "calinski_harabasz": "DOUBLE", "coherence_npmi": "DOUBLE",
                           "topic_diversity": "DOUBLE", "nmi": "DOUBLE",
                           "ari": "DOUBLE", "v_measure": "DOUBLE", "seconds": "DOUBLE",
                           "materialized_at": "TIMESTAMP"},
    "recommended": {"algorithm": "VARCHAR", "reason": "VARCHAR", "chosen_at": "TIMESTAMP"},
    "sentence_neighbors": {"model_key": "VARCHAR", "sentence_id": "BIGINT", "neighbor_id": "BIGINT",
                           "similarity": "FLOAT"},
    "near_duplicates": {"model_key": "VARCHAR", "group_id": "BIGINT", "sentence_id": "BIGINT", "similarity": "FLOAT",
                        "size": "INTEGER"},
    "sentence_outliers": {"model_key": "VARCHAR", "sentence_id": "BIGINT", "kth_similarity": "FLOAT"},
    "sentence_map": {"sentence_id": "BIGINT", "x": "FLOAT", "y": "FLOAT"},
    "topic_hierarchy": {"algorithm": "VARCHAR", "merge_id": "INTEGER", "left": "INTEGER", "right": "INTEGER",
                        "distance": "DOUBLE", "size": "INTEGER"},
}


def materialize(db: Path, embedder, selection=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_assets(),
        resources={"warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder},
        selection=selection,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copy(Path(SAMPLE_CORPUS) / "sample_corpus.csv", folder / "sample_corpus.csv")
    return folder


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, corpus_dir, embedder):
    db = tmp_path_factory.mktemp("warehouse") / "topics.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENTENCES_PATH", str(corpus_dir))
        result = materialize(db, embedder)
    return db, result


def test_whole_graph_materializes_and_every_check_passes(first_run):
    _, result = first_run
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2 + 2 * len(ALGORITHMS)  # every_sentence_assigned_once and fit_succeeded
    assert all(e.passed for e in evaluations), [(e.check_name, e.metadata) for e in evaluations if not e.passed]


def test_tables_follow_the_data_contract(first_run):
    db, _ = first_run
    with duckdb.connect(str(db), read_only=True) as conn:
        for table, columns in CONTRACT.items():
            actual = dict(conn.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                                       f"WHERE table_name = '{table}'").fetchall())
            for column, data_type in columns.items():
                assert actual.get(column) == data_type, (table, column, actual.get(column))
        assert conn.execute("SELECT count(*) FROM sentences").fetchone()[0] == 160
        assert conn.execute("SELECT count(*), count(DISTINCT text_hash) FROM embedding_cache").fetchone() == (160, 160)
        assert conn.execute("SELECT DISTINCT len(embedding) FROM embedding_cache").fetchall() == [(384,)]
        per_algorithm = dict(conn.execute(
            "SELECT algorithm, count(*) FROM cluster_assignments GROUP BY ALL").fetchall())
        assert per_algorithm == {name: 160 for name in ALGORITHMS}
        topics = dict(conn.execute("SELECT algorithm, sum(size) FROM topic_summaries GROUP BY ALL").fetchall())
        assert topics == {name: 160 for name in ALGORITHMS}
        metrics = conn.execute("SELECT algorithm, nmi, silhouette FROM clustering_metrics").fetchall()
        assert sorted(m[0] for m in metrics) == sorted(ALGORITHMS)
        assert all(m[1] is not None for m in metrics)  # the sample corpus is labelled
        assert conn.execute("SELECT count(*) FROM sentence_map WHERE isfinite(x) AND isfinite(y)").fetchone()[0] == 160
        assert conn.execute("SELECT count(*), count(DISTINCT sentence_id) FROM sentence_neighbors").fetchone() == (
            1600, 160)


def test_kmeans_recovers_the_groups_without_being_told_k(first_run):
    db, _ = first_run
    with duckdb.connect(str(db), read_only=True) as conn:
        truth, found = zip(*conn.execute(
            """SELECT s.label, a.cluster_id FROM sentences s JOIN cluster_assignments a USING (sentence_id)
               WHERE a.algorithm = 'kmeans' ORDER BY sentence_id""").fetchall())
    assert normalized_mutual_info_score(truth, found) >= 0.8


def test_metadata_reports_counts_timings_and_topics(first_run):
    _, result = first_run
    ingest = metadata(result, "sentences")
    assert ingest["dagster/row_count"] == 160 and ingest["labelled_rows"] == 160
    embedded = metadata(result, "sentence_embeddings")
    assert embedded["new_texts"] == 160 and embedded["cached_texts"] == 0 and embedded["sentences_per_second"] > 0
    assert embedded["device"] == "cpu" and "all-MiniLM-L6-v2" in embedded["model_key"]
    topics = metadata(result, "kmeans_topics")
    assert "| topic_id | size | label |" in topics["top_topics"]
    for picture in ("topic_map", "top_topics_chart", "topic_hierarchy"):
        assert topics[picture].startswith("![") and "data:image/png;base64," in topics[picture]
    clusters = metadata(result, "kmeans_clusters")
    assert clusters["n_clusters"] >= 2 and "n_clusters" in clusters["params"]
    assert clusters["k_selection"].startswith("![silhouette and inertia per k](data:image/png;base64,")
    tree = metadata(result, "agglomerative_clusters")
    assert tree["details"]["communities"] == tree["n_clusters"]  # the cut holds the graph's communities
    assert clusters["details"]["communities"] <= clusters["n_clusters"]  # k-means' least k


def test_second_run_encodes_only_new_sentences_and_keeps_ids(first_run, corpus_dir, embedder):
    db, _ = first_run
    with duckdb.connect(str(db), read_only=True) as conn:
        before = dict(conn.execute("SELECT text, sentence_id FROM sentences").fetchall())
    (corpus_dir / "more.txt").write_text(
        "The pizza dough rises overnight in the fridge.\n"
        "The goalkeeper punched the cross away.\n"
        "A comet's tail always points away from the Sun.\n"
        "Whisk the eggs and sugar until the mixture doubles in volume.\n",  # already in the corpus
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENTENCES_PATH", str(corpus_dir))
        result = materialize(db, embedder, selection=["sentences", "sentence_embeddings"])
    assert result.success
    embedded = metadata(result, "sentence_embeddings")
    assert (embedded["new_texts"], embedded["cached_texts"]) == (3, 160)
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM sentences").fetchone()[0] == 164
        assert conn.execute("SELECT count(*) FROM embedding_cache").fetchone()[0] == 163
        after = dict(conn.execute("SELECT text, sentence_id FROM sentences WHERE source = 'sample_corpus.csv'").fetchall())
    assert after == before


def test_two_warehouses_in_one_folder_keep_their_own_reports(tmp_path):
    assert report_path(str(tmp_path / "a.duckdb")) == tmp_path / "a.report.html"
    assert report_path(str(tmp_path / "mine.duckdb")) == tmp_path / "mine.report.html"
    assert report_path(str(tmp_path / "a.duckdb"), "shared.html") == tmp_path / "shared.html"


def test_report_is_one_offline_html_file_with_map_topics_and_metrics(first_run):
    db, result = first_run
    path = Path(metadata(result, "topic_report")["path"])
    assert path.parent == db.parent and path.name == f"{db.stem}.report.html"  # each warehouse its own report
    page = path.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "<script" not in page and page.count("<svg") == len(ALGORITHMS)
    assert page.count("<circle") == 160 * len(ALGORITHMS)
    assert "Knead the bread dough until it feels smooth and elastic." in page  # hover text
    assert "Metrics, side by side" in page and "representative sentences" in page


def test_one_recommended_clustering_leads_the_report_and_show(first_run):
    db, result = first_run
    with duckdb.connect(str(db), read_only=True) as conn:
        [(lead, reason)] = conn.execute("SELECT algorithm, reason FROM recommended").fetchall()
        noise, coherence, diversity = conn.execute(
            "SELECT noise_fraction, coherence_npmi, topic_diversity FROM clustering_metrics WHERE algorithm = ?",
            [lead]).fetchone()
        scored = conn.execute("SELECT count(*) FROM clustering_metrics WHERE coherence_npmi BETWEEN -1 AND 1 "
                              "AND topic_diversity > 0 AND topic_diversity <= 1").fetchone()[0]
    assert lead in ALGORITHMS and noise <= 0.2 and "agrees best" in reason
    assert scored == len(ALGORITHMS) and coherence is not None and diversity is not None
    assert metadata(result, "recommended")["algorithm"] == lead
    page = Path(metadata(result, "topic_report")["path"]).read_text(encoding="utf-8")
    assert f"Recommended: <a href='#{lead}'>{lead}</a>" in page
    assert page.index("<h2 id=") == page.index(f"<h2 id='{lead}'>")  # its topics come first
    shown = subprocess.run([sys.executable, "-m", "dagster_project.show", "--database", str(db)],
                           capture_output=True, text=True, check=True).stdout
    assert shown.startswith(f"Recommended: {lead}") and shown.index("Top topics,") == shown.index(
        f"Top topics, {lead} (recommended)")


def test_hierarchy_merges_every_topic_into_one(first_run):
    db, _ = first_run
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("""SELECT h.algorithm, count(*), max(h.size), any_value(r.n_clusters)
                               FROM topic_hierarchy h JOIN clustering_runs r USING (algorithm)
                               GROUP BY ALL""").fetchall()
    for algorithm, merges, top_size, n_clusters in rows:
        assert merges == n_clusters - 1, algorithm
        assert top_size <= 160
