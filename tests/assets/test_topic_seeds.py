"""Topics people expect, through real runs: `topic_seeds` rows written with SQL become topics with the seed's name
and a stable id, new sentences join them, a curated label wins, a seed matching nothing is reported, a removed seed
retires its topic, a damaged table is refused with a clear error and loses nothing."""

from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from dagster_project.definitions import build_assets
from dagster_project.resources import DuckDBWarehouse
from dagster_project.settings import SAMPLE_CORPUS

ALGORITHMS = ["kmeans", "louvain"]
SELECTION = ["sentences", "sentence_embeddings", "sentence_map",
             *(f"{a}_{s}" for a in ALGORITHMS for s in ("clusters", "topics"))]
# 160 sentences of eight unrelated topics: a topic's sentences are far less alike than in a real corpus, so its
# cluster's centre stands out 5.7 spreads for the seed's examples, under the default 8
CONFIG = {"ops": {"kmeans_clusters": {"config": {"n_clusters": 8, "seed_threshold": 4.0}},
                  "louvain_clusters": {"config": {"seed_threshold": 4.0}}}}


def run(folder: Path, resources: dict) -> dg.ExecuteInProcessResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENTENCES_PATH", str(folder))
        return dg.materialize(build_assets(), resources=resources, selection=SELECTION, run_config=CONFIG,
                              raise_on_error=False)


def sql(db: Path, query: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(db)) as conn:
        return conn.execute(query, params or []).df()


def metadata(result: dg.ExecuteInProcessResult, algorithm: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(f"{algorithm}_clusters")[0].metadata.items()}


def test_seeded_topics_through_runs(tmp_path, embedder):
    corpus = pd.read_csv(Path(SAMPLE_CORPUS) / "sample_corpus.csv").sample(frac=1.0, random_state=5)
    folder, db = tmp_path / "in", tmp_path / "w.duckdb"
    folder.mkdir()
    resources = {"warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder}
    corpus.iloc[:140][["text", "label"]].to_csv(folder / "day1.csv", index=False)
    examples = corpus[corpus["label"] == "cooking"]["text"].iloc[:3].tolist()
    DuckDBWarehouse(database=str(db)).query("SELECT 1")  # the warehouse and its tables, before any run
    with duckdb.connect(str(db)) as conn:
        conn.executemany("INSERT INTO topic_seeds VALUES (NULL, 'Kitchen', ?)", [[e] for e in examples])
        conn.execute("INSERT INTO topic_seeds VALUES (NULL, 'Maritime insurance law', NULL), "
                     "('louvain', 'Louvain only', 'The telescope photographed a distant spiral galaxy.')")
    first = run(folder, resources)
    assert first.success

    topics = sql(db, "SELECT algorithm, topic_id, label, seeded, size FROM topic_summaries WHERE seeded AND size > 0 "
                     "ORDER BY algorithm, label")
    assert topics[["algorithm", "label"]].values.tolist() == [["kmeans", "Kitchen"], ["louvain", "Kitchen"],
                                                              ["louvain", "Louvain only"]]
    kitchen = sql(db, """SELECT a.algorithm, s.label FROM cluster_assignments a JOIN sentences s USING (sentence_id)
                         JOIN topics t ON t.algorithm = a.algorithm AND t.topic_id = a.topic_id
                         WHERE t.seed = 'Kitchen'""")
    by_kmeans = kitchen[kitchen["algorithm"] == "kmeans"]["label"]  # its cooking cluster joined the seed's topic
    assert (by_kmeans == "cooking").sum() >= 12 and (by_kmeans == "cooking").mean() >= 0.8
    by_louvain = kitchen[kitchen["algorithm"] == "louvain"]["label"]  # its cluster of cooking and gardening did
    assert (by_louvain == "cooking").sum() >= 12
    for algorithm in ALGORITHMS:
        notes = metadata(first, algorithm)
        assert notes["seeds_matching_no_sentence"] == ["Maritime insurance law"]
        assert "Kitchen" in notes["seeds"]
    empty = sql(db, "SELECT algorithm, size, status FROM topics WHERE seed = 'Maritime insurance law' ORDER BY 1")
    assert empty.values.tolist() == [["kmeans", 0, "active"], ["louvain", 0, "active"]]  # its topic, empty
    assert sql(db, "SELECT size, seeded FROM topic_summaries WHERE label = 'Maritime insurance law'").values.tolist() \
        == [[0, True], [0, True]]
    seeded_events = sql(db, "SELECT algorithm, count(*) AS n FROM topic_events WHERE event = 'seeded' GROUP BY 1 "
                            "ORDER BY 1")
    assert seeded_events["n"].tolist() == [2, 3]
    kitchen_id = int(topics.loc[(topics["algorithm"] == "kmeans") & (topics["label"] == "Kitchen"), "topic_id"].iloc[0])
    with duckdb.connect(str(db)) as conn:  # a curated label wins over the seed's name
        conn.execute("INSERT INTO topic_curation (algorithm, topic_id, label) VALUES ('kmeans', ?, 'Recipes')",
                     [kitchen_id])

    corpus.iloc[140:][["text", "label"]].to_csv(folder / "day2.csv", index=False)
    second = run(folder, resources)
    assert second.success and metadata(second, "kmeans")["status"] == "assigned"
    new_cooking = sql(db, """SELECT a.topic_id FROM cluster_assignments a JOIN sentences s USING (sentence_id)
                             WHERE a.algorithm = 'kmeans' AND s.source LIKE '%day2.csv' AND s.label = 'cooking'""")
    assert (new_cooking["topic_id"] == kitchen_id).mean() >= 0.5
    label = sql(db, "SELECT label, seeded FROM topic_summaries WHERE algorithm = 'kmeans' AND topic_id = ?",
                [kitchen_id])
    assert label.values.tolist() == [["Recipes", True]]

    with duckdb.connect(str(db)) as conn:
        conn.execute("DELETE FROM topic_seeds WHERE name = 'Kitchen'")
    third = run(folder, resources)
    assert third.success and metadata(third, "kmeans")["why"] == "the topic seeds changed (topic_seeds)"
    gone = sql(db, "SELECT status FROM topics WHERE algorithm = 'kmeans' AND topic_id = ?", [kitchen_id])
    assert gone["status"].tolist() == ["retired"]
    event = sql(db, "SELECT event FROM topic_events WHERE algorithm = 'kmeans' AND topic_id = ? "
                    "ORDER BY materialized_at DESC LIMIT 1", [kitchen_id])
    assert event["event"].iloc[0] in ("retired", "merged_into")

    assignments = sql(db, "SELECT count(*) AS n FROM cluster_assignments")["n"].iloc[0]
    with duckdb.connect(str(db)) as conn:
        conn.execute("ALTER TABLE topic_seeds DROP COLUMN example")
    damaged = run(folder, resources)
    assert not damaged.success
    failure = next(e for e in damaged.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "topic_seeds" in message and "example VARCHAR" in message and "DROP it" in message
    assert sql(db, "SELECT count(*) AS n FROM cluster_assignments")["n"].iloc[0] == assignments  # nothing lost
