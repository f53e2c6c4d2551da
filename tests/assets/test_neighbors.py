"""`sentence_neighbors` on real banking77 questions: against exact search, grown and shrunk without a rebuild,
near-duplicates, outliers, Louvain's graph from it, and the "more like this" command."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from support import dataset
from sklearn.metrics import adjusted_rand_score

from dagster_project.core.clustering import LouvainParams, louvain
from dagster_project.resources import DuckDBWarehouse

SELECTION = ["sentences", "sentence_embeddings", "sentence_neighbors"]
DUPLICATES = ["I still have not received my new card, what should I do?",
              "I still haven't received my new card, what should I do?"]


def write_corpus(folder, files: dict[str, list[str]]) -> None:
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    for name, texts in files.items():
        pd.DataFrame({"text": texts}).to_csv(folder / name, index=False)


def stored(db) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    warehouse = DuckDBWarehouse(database=str(db))
    frame, vectors = warehouse.load_embeddings(warehouse.query("SELECT model_key FROM embedding_cache LIMIT 1")
                                               ["model_key"].iloc[0])
    return frame, vectors, warehouse.query("SELECT * FROM sentence_neighbors")


def recall_against_exact(frame: pd.DataFrame, vectors: np.ndarray, rows: pd.DataFrame, k: int = 10) -> float:
    scores = vectors @ vectors.T
    np.fill_diagonal(scores, -np.inf)
    exact = np.argsort(-scores, axis=1)[:, :k]
    ids = frame["sentence_id"].to_numpy()
    found = rows.groupby("sentence_id")["neighbor_id"].apply(set)
    return float(np.mean([len(found[ids[i]] & set(ids[exact[i]])) / k for i in range(len(ids))]))


def replay_days(work, embedder, run_config: dict | None = None):
    """Day 1: 600 questions (two near-duplicates among them); day 2: 100 arrive, 20 leave."""
    import dagster as dg

    from dagster_project.definitions import build_assets

    texts = dataset("banking77")["text"].drop_duplicates().tolist()
    db, corpus = work / "w.duckdb", work / "texts"
    resources = {"warehouse": DuckDBWarehouse(database=str(db)), "embedder": embedder}
    results, states = [], []
    first = {"leaving.csv": texts[:20], "staying.csv": texts[20:598] + DUPLICATES}
    for day in (first, {"staying.csv": first["staying.csv"], "arriving.csv": texts[598:698]}):
        write_corpus(corpus, day)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SENTENCES_PATH", str(corpus))
            results.append(dg.materialize(build_assets(), resources=resources, run_config=run_config,
                                          selection=[*SELECTION, "louvain_clusters"]))
        states.append(stored(db))
    return db, results, states, texts


@pytest.fixture(scope="module")
def days(tmp_path_factory, embedder):
    return replay_days(tmp_path_factory.mktemp("neighbors"), embedder)


def test_every_sentence_gets_its_ten_most_similar_others_as_exact_search_would(days):
    _, _, [(frame, vectors, rows), _], _ = days
    assert (rows.groupby("sentence_id").size() == 10).all() and len(rows) == 10 * len(frame)
    assert not (rows["sentence_id"] == rows["neighbor_id"]).any()
    assert recall_against_exact(frame, vectors, rows) >= 0.95
    row_of = pd.Series(np.arange(len(frame)), index=frame["sentence_id"])
    exact = np.einsum("ij,ij->i", vectors[row_of[rows["sentence_id"]]], vectors[row_of[rows["neighbor_id"]]])
    assert np.allclose(rows["similarity"], exact, atol=2e-3)  # half-precision vectors in the index


def test_arrivals_are_added_to_the_index_without_rebuilding_it(days):
    db, results, [_, (frame, vectors, rows)], texts = days
    first, second = (r.asset_materializations_for_node("sentence_neighbors")[0].metadata for r in results)
    assert first["index"].value.startswith("built") and second["index"].value == "index kept, new sentences added"
    assert second["added_to_index"].value == 100 and second["removed_from_index"].value == 20
    assert second["index_sentences"].value == len(frame) == 680
    assert second["lists_searched"].value < len(frame)  # the cost follows what arrived, not the corpus
    assert recall_against_exact(frame, vectors, rows) >= 0.95
    assert set(rows["sentence_id"]) == set(frame["sentence_id"])
    assert set(rows["neighbor_id"]) <= set(frame["sentence_id"])  # no list names a sentence that left


def test_near_duplicates_are_grouped_and_outliers_scored(days):
    db, _, [_, (frame, _, rows)], _ = days
    warehouse = DuckDBWarehouse(database=str(db))
    groups = warehouse.query("SELECT d.group_id, d.similarity, d.size, s.text FROM near_duplicates d "
                             "JOIN sentences s USING (sentence_id)")
    pair = groups[groups["text"].isin(DUPLICATES)]
    assert len(pair) == 2 and pair["group_id"].nunique() == 1 and (pair["similarity"] >= 0.95).all()
    assert (groups["similarity"] >= 0.95).all()
    outliers = warehouse.query("SELECT sentence_id, kth_similarity FROM sentence_outliers").set_index("sentence_id")
    assert len(outliers) == len(frame)
    assert np.allclose(outliers["kth_similarity"].sort_index(), rows.groupby("sentence_id")["similarity"].min())


def test_louvain_builds_its_graph_from_the_table_and_agrees_with_exact_neighbours(days):
    db, results, [(frame, vectors, _), _], _ = days
    [fit] = results[0].asset_materializations_for_node("louvain_clusters")  # day 1 fits; day 2 assigns
    assert fit.metadata["details"].value["neighbours"] == "sentence_neighbors (approximate index)"
    exact = pd.Series(louvain(vectors, LouvainParams()).labels, index=frame["sentence_id"])
    stored = DuckDBWarehouse(database=str(db)).assignments("louvain").set_index("sentence_id")["cluster_id"]
    kept = exact.index.intersection(stored.index)  # day 1's sentences that stayed keep their day-1 cluster
    assert len(kept) == 580 and adjusted_rand_score(exact[kept], stored[kept]) >= 0.9



def test_more_like_this_finds_the_closest_stored_sentences_by_free_text(days):
    db, _, _, _ = days
    env = {**os.environ, "DUCKDB_PATH": str(db), "EMBEDDING_DEVICE": "cpu"}
    run = subprocess.run([sys.executable, "-m", "dagster_project.search", "my new card has still not arrived",
                          "--top", "3", "--algorithm", "louvain"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert "topics: louvain" in lines[0] and len(lines) == 5  # title, header, three sentences
    assert any(text in run.stdout for text in DUPLICATES)


def test_an_index_in_several_files_gives_the_same_lists(days, tmp_path, embedder):
    """The same two days with at most 250 sentences per index file (one file in memory at a time)."""
    _, _, [_, (_, _, one_file)], _ = days
    db, results, [_, (frame, _, rows)], _ = replay_days(
        tmp_path, embedder, {"ops": {"sentence_neighbors": {"config": {"index_file_size": 250}}}})
    first, second = (r.asset_materializations_for_node("sentence_neighbors")[0].metadata for r in results)
    assert first["index_files"].value == 3 and second["index"].value == "index kept, new sentences added"
    assert second["index_sentences"].value == len(frame) and second["index_files"].value == 3  # 20 left, 100 came
    assert len(list(tmp_path.glob("w.duckdb.neighbors-*.usearch"))) == 3
    key = ["sentence_id", "neighbor_id"]
    merged = rows.merge(one_file, on=key, how="outer", indicator=True)
    assert (merged["_merge"] == "both").mean() >= 0.99  # ties within half precision may differ
    both = merged[merged["_merge"] == "both"]
    assert np.allclose(both["similarity_x"], both["similarity_y"], atol=1e-3)
