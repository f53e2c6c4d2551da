"""Topics that remember, through real runs on a growing corpus: ids kept by incremental runs and re-fits, curated
labels that outlive runs, trends that add up, a damaged curation table refused."""

import json
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project.settings import SAMPLE_CORPUS
from dagster_project.definitions import build_assets
from dagster_project.resources import DuckDBWarehouse

ALGORITHMS = ["kmeans", "louvain", "agglomerative", "community_detection", "hdbscan"]
FIXED = {"kmeans": {"n_clusters": 8}}  # k fixed: a re-fit after growth tests the warm start and the id matching
SELECTION = ["sentences", "sentence_embeddings", "sentence_map",
             *(f"{a}_{s}" for a in ALGORITHMS for s in ("clusters", "topics"))]


class Corpus:
    """A folder of daily files and its warehouse, refreshed by real in-process runs."""

    def __init__(self, folder: Path, embedder):
        self.folder, self.db = folder, folder / "w.duckdb"
        (folder / "in").mkdir()
        self.resources = {"warehouse": DuckDBWarehouse(database=str(self.db)), "embedder": embedder}

    def arrive(self, name: str, frame: pd.DataFrame, day: str) -> None:
        frame.assign(timestamp=day)[["text", "label", "timestamp"]].to_csv(self.folder / "in" / name, index=False)

    def run(self, refit: bool = False) -> dg.ExecuteInProcessResult:
        config = {"ops": {f"{a}_clusters": {"config": {"refit": refit, **FIXED.get(a, {})}} for a in ALGORITHMS}}
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SENTENCES_PATH", str(self.folder / "in"))
            result = dg.materialize(build_assets(), resources=self.resources, selection=SELECTION,
                                    run_config=config, raise_on_error=False)
        assert result.success
        return result

    def sql(self, query: str) -> pd.DataFrame:
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute(query).df()

    def topic_ids(self) -> pd.DataFrame:
        return self.sql("SELECT algorithm, sentence_id, topic_id FROM cluster_assignments "
                        "ORDER BY algorithm, sentence_id")


def status(result: dg.ExecuteInProcessResult, algorithm: str) -> str:
    return result.asset_materializations_for_node(f"{algorithm}_clusters")[0].metadata["status"].value


@pytest.fixture(scope="module")
def days(tmp_path_factory, embedder):
    """Day one: 145 sentences of the sample corpus; day two: the other 15 (10% growth); then two forced re-fits
    of the whole corpus. A person names the largest k-means topic between day one and day two."""
    corpus = pd.read_csv(Path(SAMPLE_CORPUS) / "sample_corpus.csv").sample(frac=1.0, random_state=3)
    store = Corpus(tmp_path_factory.mktemp("memory"), embedder)
    store.arrive("day1.csv", corpus.iloc[:145], "2026-11-01")
    runs = {"first": store.run()}
    ids = {"first": store.topic_ids()}
    largest = int(store.sql("SELECT topic_id FROM topic_summaries WHERE algorithm = 'kmeans' AND topic_id >= 0 "
                            "ORDER BY size DESC LIMIT 1").iloc[0, 0])
    with duckdb.connect(str(store.db)) as conn:
        conn.execute("INSERT INTO topic_curation (algorithm, topic_id, label) VALUES ('kmeans', ?, 'a first name'), "
                     "('kmeans', 999, 'a topic that never was')", [largest])
    store.arrive("day2.csv", corpus.iloc[145:], "2026-11-02T09:30:00+01:00")
    runs["incremental"] = store.run()
    ids["incremental"] = store.topic_ids()
    assigned = json.loads(store.sql("SELECT details FROM clustering_runs WHERE algorithm = 'kmeans'")["details"][0])
    assert assigned["mode"] == "assigned" and assigned["refit_reason"] is None  # not the last fit's reason
    assert assigned["assigned_because"].endswith("(no refit condition met)")
    first_name = store.sql(f"SELECT label FROM topic_summaries WHERE algorithm = 'kmeans' AND topic_id = {largest}")
    assert first_name["label"].tolist() == ["a first name"]
    with duckdb.connect(str(store.db)) as conn:  # a second row for the same topic renames it
        conn.execute("INSERT INTO topic_curation (algorithm, topic_id, label) VALUES ('kmeans', ?, "
                     "'what people call it')", [largest])
    store.community_fit = (  # the fit the incremental run assigned by, before the re-fits replace it
        json.loads(store.sql("SELECT details FROM clustering_runs WHERE algorithm = 'community_detection'")
                   ["details"].iloc[0]),
        store.sql("SELECT topic_id, cluster_id FROM topics WHERE algorithm = 'community_detection' "
                  "AND status = 'active'"))
    for run in ("refit", "refit_again"):
        runs[run] = store.run(refit=True)
        ids[run] = store.topic_ids()
    return store, runs, ids, largest


def test_an_incremental_run_assigns_the_new_sentences_and_changes_no_topic_id(days):
    store, runs, ids, _ = days
    for algorithm in ALGORITHMS:
        assert status(runs["first"], algorithm).startswith("fitted")
        assert status(runs["incremental"], algorithm) == "assigned"
    kept = ids["first"].merge(ids["incremental"], on=["algorithm", "sentence_id"])
    assert len(kept) == 145 * len(ALGORITHMS)
    assert (kept["topic_id_x"] == kept["topic_id_y"]).all()
    new = ids["incremental"][~ids["incremental"]["sentence_id"].isin(ids["first"]["sentence_id"])]
    assert len(new) == 15 * len(ALGORITHMS)
    known = ids["first"][["algorithm", "topic_id"]].drop_duplicates()
    placed = new[new["topic_id"] >= 0].merge(known, on=["algorithm", "topic_id"])
    assert len(placed) == (new["topic_id"] >= 0).sum() > 0  # every assigned one went to a topic of day one
    metadata = runs["incremental"].asset_materializations_for_node("kmeans_clusters")[0].metadata
    assert metadata["new_sentences"].value == 15 and "no refit condition met" in metadata["why"].value
    # the map places the new sentences beside their neighbours instead of projecting all again
    drawn = runs["incremental"].asset_materializations_for_node("sentence_map")[0].metadata
    assert drawn["status"].value.startswith("new sentences placed") and drawn["placed"].value == 15
    placed = store.sql("SELECT count(*) AS n, count(*) FILTER (placed) AS placed FROM sentence_map").iloc[0]
    assert (placed["n"], placed["placed"]) == (160, 15)
    # the topic summaries' sizes follow the assignments
    sizes = store.sql("""SELECT t.algorithm, t.topic_id, t.size, count(a.sentence_id) AS assigned
                         FROM topic_summaries t LEFT JOIN cluster_assignments a USING (algorithm, topic_id)
                         GROUP BY ALL""")
    assert (sizes["size"] == sizes["assigned"]).all() and sizes.groupby("algorithm")["size"].sum().eq(160).all()


def test_community_detection_assigns_new_sentences_by_its_own_rule_around_each_exemplar(days):
    """A new sentence joins a community when it is within the fit's threshold of the community's centre sentence,
    as the fit itself decides membership; so the next re-fit, which starts from those centres, keeps it there."""
    store, runs, ids, _ = days
    fit, registry = store.community_fit
    vectors = store.sql("""SELECT s.sentence_id, c.embedding FROM sentences s JOIN embedding_cache c USING (text_hash)
                           ORDER BY s.sentence_id""").set_index("sentence_id")["embedding"]
    new = ids["incremental"][(ids["incremental"]["algorithm"] == "community_detection")
                             & ~ids["incremental"]["sentence_id"].isin(ids["first"]["sentence_id"])]
    centre = {t: np.array(vectors[fit["exemplars"][c]]) for t, c in registry.itertuples(index=False)}
    for sentence_id, topic_id in new[["sentence_id", "topic_id"]].itertuples(index=False):
        similarity = {t: float(np.array(vectors[sentence_id]) @ v) for t, v in centre.items()}
        if topic_id >= 0:
            assert similarity[topic_id] >= fit["threshold"] - 1e-5 and similarity[topic_id] == max(similarity.values())
        else:
            assert max(similarity.values()) < fit["threshold"]


def test_a_refit_after_growth_keeps_most_topic_ids_and_a_refit_of_an_unchanged_corpus_keeps_them_all(days):
    store, runs, ids, _ = days
    for run in ("refit", "refit_again"):
        for algorithm in ALGORITHMS:
            assert status(runs[run], algorithm) == "fitted"
            why = runs[run].asset_materializations_for_node(f"{algorithm}_clusters")[0].metadata["why"].value
            assert why == "asked for (refit = true)"
    grown = ids["incremental"].merge(ids["refit"], on=["algorithm", "sentence_id"])
    kept = (grown["topic_id_x"] == grown["topic_id_y"]).groupby(grown["algorithm"]).mean()
    print(f"kept across the re-fit after 15 new sentences: {kept.round(3).to_dict()}")
    # k-means (same k, from the previous centres), Louvain (from the previous communities), agglomerative (its tree
    # built on from the previous topics) and community detection (same threshold, the previous centres first) start
    # from the last fit: their topics carry over
    assert kept[["kmeans", "louvain", "agglomerative", "community_detection"]].min() >= 0.9
    details = store.sql("SELECT details FROM clustering_runs WHERE algorithm = 'agglomerative'")["details"].iloc[0]
    assert "the previous topics" in details
    assert kept.min() >= 0.7  # hdbscan cannot start from a fit and re-partitions more (see benchmarks/continuity)
    pd.testing.assert_frame_equal(ids["refit"], ids["refit_again"])
    last = runs["refit_again"].asset_materializations_for_node("kmeans_clusters")[0].metadata
    assert last["topic_changes"].value == {"continued": last["n_clusters"].value}  # nothing born or retired


def test_a_curated_label_outlives_every_run_and_a_stray_one_is_reported(days):
    store, runs, _, largest = days
    labels = store.sql(f"SELECT label, keyword_label FROM topic_summaries WHERE algorithm = 'kmeans' "
                       f"AND topic_id = {largest}")
    assert labels["label"].tolist() == ["what people call it"] and labels["keyword_label"].iloc[0] != labels[
        "label"].iloc[0]
    assert store.sql(f"SELECT label FROM topics WHERE algorithm = 'kmeans' AND topic_id = {largest}")[
        "label"].tolist() == ["what people call it"]
    for run in ("incremental", "refit", "refit_again"):
        metadata = runs[run].asset_materializations_for_node("kmeans_topics")[0].metadata
        assert metadata["curated_labels"].value == 1
        assert "999" in metadata["curation_not_applied"].value and "unknown" in metadata[
            "curation_not_applied"].value
    assert store.sql("SELECT count(*) AS n FROM topic_curation")["n"].iloc[0] == 3  # never written by a run


def test_trends_count_each_day_and_add_up_to_its_sentences(days):
    store, runs, _, _ = days
    trends = store.sql("SELECT algorithm, period, sum(sentences) AS n FROM topic_trends GROUP BY ALL")
    per_day = store.sql("SELECT date_trunc('day', timestamp) AS period, count(*) AS n FROM sentences GROUP BY ALL")
    assert sorted(per_day["n"]) == [15, 145]
    for algorithm in ALGORITHMS:
        mine = trends[trends["algorithm"] == algorithm].merge(per_day, on="period")
        assert len(mine) == 2 and (mine["n_x"] == mine["n_y"]).all()
    # the day-two file's 09:30+01:00 is 08:30 UTC on 2026-11-02
    assert store.sql("SELECT DISTINCT timestamp FROM sentences WHERE source = 'day2.csv'")["timestamp"].tolist() == [
        pd.Timestamp("2026-11-02 08:30")]
    metadata = runs["refit"].asset_materializations_for_node("kmeans_topics")[0].metadata
    assert "topics_over_time" in metadata and "topic_id" in metadata["rising_topics"].value


def test_a_damaged_curation_table_is_refused_by_name(tmp_path, embedder):
    store = Corpus(tmp_path, embedder)
    store.arrive("day1.csv", pd.read_csv(Path(SAMPLE_CORPUS) / "sample_corpus.csv").head(60), "2026-11-01")
    with duckdb.connect(str(store.db)) as conn:
        conn.execute("CREATE TABLE topic_curation (algorithm VARCHAR, topic INTEGER, name VARCHAR)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SENTENCES_PATH", str(store.folder / "in"))
        result = dg.materialize(build_assets(), resources=store.resources, raise_on_error=False,
                                selection=["sentences", "sentence_embeddings", "kmeans_clusters", "kmeans_topics"])
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "kmeans_topics"
    message = failure.event_specific_data.error.message
    assert "topic_curation" in message and "topic_id BIGINT, label VARCHAR" in message
    assert "algorithm VARCHAR, topic_id BIGINT, label VARCHAR" in message


def test_sentences_of_a_new_subject_fit_no_topic_and_are_born_as_one_at_the_refit_they_cause(tmp_path, embedder):
    corpus = pd.read_csv(Path(SAMPLE_CORPUS) / "sample_corpus.csv")
    store = Corpus(tmp_path, embedder)
    store.arrive("day1.csv", corpus[corpus["label"] != "astronomy"], "2026-11-01")
    store.run()
    store.arrive("day2.csv", corpus[corpus["label"] == "astronomy"], "2026-11-02")
    second = store.run()
    for algorithm in ("kmeans", "louvain"):
        metadata = second.asset_materializations_for_node(f"{algorithm}_clusters")[0].metadata
        assert metadata["status"].value == "fitted" and "fit no topic" in metadata["why"].value
    born = store.sql("""SELECT e.algorithm, e.topic_id, avg((s.label = 'astronomy')::INT) AS astronomy, count(*) AS n
                        FROM topic_events e JOIN cluster_assignments a USING (algorithm, topic_id)
                        JOIN sentences s USING (sentence_id)
                        WHERE e.event IN ('born', 'split_from') AND e.materialized_at > (
                            SELECT min(materialized_at) FROM topic_events x WHERE x.algorithm = e.algorithm)
                        GROUP BY ALL""")
    # Louvain's communities follow the graph: the new subject is born as a topic of its own (k-means here has k
    # fixed at 8, so its re-fit spreads the new subject over the clusters it has)
    assert ((born["algorithm"] == "louvain") & (born["astronomy"] >= 0.8) & (born["n"] >= 15)).any(), born


def test_every_topic_is_its_own_ancestor_and_every_split_and_merge_is_in_the_lineage(days):
    store, _, ids, _ = days
    assert store.sql("""SELECT count(*) AS n FROM topics t WHERE NOT EXISTS (SELECT 1 FROM topic_lineage l
                        WHERE l.algorithm = t.algorithm AND l.topic_id = t.topic_id
                        AND l.ancestor_topic_id = t.topic_id AND l.generations = 0)""")["n"].iloc[0] == 0
    unlinked = store.sql("""SELECT e.* FROM topic_events e WHERE e.event IN ('split_from', 'merged_into')
                            AND NOT EXISTS (SELECT 1 FROM topic_lineage l WHERE l.algorithm = e.algorithm
                                AND (e.event = 'split_from' AND l.topic_id = e.topic_id
                                     AND l.ancestor_topic_id = e.other_topic_id
                                  OR e.event = 'merged_into' AND l.topic_id = e.other_topic_id
                                     AND l.ancestor_topic_id = e.topic_id))""")
    assert unlinked.empty, unlinked
    # across the re-fit after growth, a sentence stays in its topic or in one that grew out of it
    lineage = store.sql("SELECT algorithm, topic_id, ancestor_topic_id FROM topic_lineage")
    both = ids["incremental"].merge(ids["refit"], on=["algorithm", "sentence_id"])
    both = both[both["topic_id_x"] >= 0].merge(lineage, how="left", left_on=["algorithm", "topic_id_y",
                                                                             "topic_id_x"],
                                               right_on=["algorithm", "topic_id", "ancestor_topic_id"])
    followed = both.assign(kept=both["ancestor_topic_id"].notna()).groupby("algorithm")["kept"].mean()
    print(f"sentences in their topic or a descendant across the re-fit: {followed.round(3).to_dict()}")
    assert followed[["kmeans", "louvain", "agglomerative", "community_detection"]].min() >= 0.9
