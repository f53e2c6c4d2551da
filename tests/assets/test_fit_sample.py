"""A corpus over `fit_sample`, through the job the schedule runs: each clustering fits a sample (Louvain: the whole
neighbour graph), every other sentence is assigned to the nearest centre in chunks, and topics, metrics and the
report cover every sentence; past `whole_graph_up_to`, Louvain fits a sample too."""

import dagster as dg
import numpy as np
import pytest

from dagster_project.automation import refresh_job
from dagster_project.core.assign import centroids
from dagster_project.core.clustering import sample_rows
from dagster_project.definitions import build_assets
from dagster_project.resources import DuckDBWarehouse

FIT_SAMPLE = 60  # of the sample corpus's 160 sentences


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, embedder):
    warehouse = DuckDBWarehouse(database=str(tmp_path_factory.mktemp("fit_sample") / "w.duckdb"))
    defs = dg.Definitions(assets=build_assets(), jobs=[refresh_job(partitioned=False)],
                          resources={"warehouse": warehouse, "embedder": embedder})
    config = {"ops": {**{f"{name}_clusters": {"config": {"fit_sample": FIT_SAMPLE}}
                         for name in ("kmeans", "minibatch_kmeans", "louvain")},
                      "kmeans_topics": {"config": {"sample_size": FIT_SAMPLE}},
                      "sentence_map": {"config": {"fit_sample": FIT_SAMPLE, "method": "pca"}}}}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SENTENCES_PATH", raising=False)  # the sample corpus
        result = defs.resolve_job_def("refresh_everything").execute_in_process(run_config=config)
    return warehouse, result, embedder.model_key


@pytest.mark.parametrize("name", ["kmeans", "minibatch_kmeans"])
def test_a_fit_over_fit_sample_reads_a_sample_and_assigns_the_rest_to_the_nearest_centre(sampled, name):
    warehouse, result, model_key = sampled
    [materialization] = result.asset_materializations_for_node(f"{name}_clusters")
    assert materialization.metadata["status"].value == "fitted on a sample, the rest assigned"
    assert materialization.metadata["details"].value["fit_sample"]["fitted"] == FIT_SAMPLE
    frame, vectors = warehouse.load_embeddings(model_key)
    labels = warehouse.assignments(name)["cluster_id"].to_numpy()
    assert len(labels) == len(frame) == 160 and (labels >= 0).all()
    sample = sample_rows(len(frame), FIT_SAMPLE, 0)
    rest = np.setdiff1d(np.arange(len(frame)), sample)
    ids, centres = centroids(vectors[sample], labels[sample])
    assert np.array_equal(labels[rest], ids[np.argmax(vectors[rest] @ centres.T, axis=1)])
    sizes = warehouse.query("SELECT sum(size) AS n FROM topics WHERE algorithm = ? AND status = 'active'", [name])
    assert int(sizes["n"].iloc[0]) == 160


def test_louvain_over_fit_sample_fits_every_sentence_from_the_neighbour_graph(sampled):
    warehouse, result, _ = sampled
    [materialization] = result.asset_materializations_for_node("louvain_clusters")
    details = materialization.metadata["details"].value
    assert materialization.metadata["status"].value == "fitted"
    assert details["fit_sample"]["fitted"] == 160 and details["neighbours"].startswith("sentence_neighbors")


def test_topics_and_metrics_cover_every_sentence_after_a_sampled_fit(sampled):
    warehouse, _, _ = sampled
    topics = warehouse.query("SELECT algorithm, sum(size) AS n FROM topic_summaries GROUP BY 1 ORDER BY 1")
    assert topics["n"].tolist() == [160] * len(topics) and len(topics) == 4
    summarized = warehouse.query("SELECT keywords, representative_sentences FROM topic_summaries "
                                 "WHERE algorithm = 'kmeans'")  # keywords from a sample of 60 sentences
    assert summarized["keywords"].map(len).gt(0).all() and summarized["representative_sentences"].map(len).gt(0).all()
    root = warehouse.query("SELECT max(size) AS n FROM topic_hierarchy WHERE algorithm = 'kmeans'")
    assert int(root["n"].iloc[0]) == 160
    metrics = warehouse.query("SELECT algorithm, silhouette, nmi FROM clustering_metrics")
    assert len(metrics) == 4 and metrics["silhouette"].notna().all()


def test_embedding_chunks_stream_every_sentence_of_the_window_once(sampled):
    warehouse, _, model_key = sampled
    frame, vectors = warehouse.load_embeddings(model_key)
    chunks = list(warehouse.embedding_chunks(model_key, rows=50))
    ids = np.concatenate([chunk_ids for chunk_ids, _ in chunks])
    assert len(chunks) >= 4 and sorted(ids.tolist()) == frame["sentence_id"].tolist()
    positions = np.searchsorted(frame["sentence_id"].to_numpy(), ids)
    assert np.array_equal(np.concatenate([v for _, v in chunks]), vectors[positions])


def test_the_map_is_fitted_on_a_sample_and_applied_a_chunk_at_a_time(sampled):
    from sklearn.decomposition import PCA

    warehouse, _, model_key = sampled
    frame, vectors = warehouse.load_embeddings(model_key)
    points = warehouse.query("SELECT x, y FROM sentence_map ORDER BY sentence_id")[["x", "y"]].to_numpy()
    expected = PCA(n_components=2, random_state=0).fit(vectors[sample_rows(160, FIT_SAMPLE, 0)]).transform(vectors)
    assert len(points) == 160 and np.allclose(points, expected, atol=1e-4)


def test_louvain_over_whole_graph_up_to_fits_a_sample_on_its_own_neighbours(sampled, embedder):
    warehouse, _, model_key = sampled  # last in this file: it fits Louvain again on the shared warehouse
    config = {"ops": {"louvain_clusters": {"config": {"fit_sample": FIT_SAMPLE, "whole_graph_up_to": 100,
                                                      "refit": True}}}}
    result = dg.materialize(build_assets(), selection="louvain_clusters", run_config=config,
                            resources={"warehouse": warehouse, "embedder": embedder})
    [materialization] = result.asset_materializations_for_node("louvain_clusters")
    details = materialization.metadata["details"].value
    assert materialization.metadata["status"].value == "fitted on a sample, the rest assigned"
    assert details["fit_sample"] == {**details["fit_sample"], "fitted": FIT_SAMPLE, "assigned": 100}
    assert details["neighbours"] == "exact"  # found among the 60 sampled sentences, not read from the table
    frame, vectors = warehouse.load_embeddings(model_key)
    labels = warehouse.assignments("louvain")["cluster_id"].to_numpy()
    sample = sample_rows(len(frame), FIT_SAMPLE, 0)
    rest = np.setdiff1d(np.arange(len(frame)), sample)
    ids, centres = centroids(vectors[sample], labels[sample])
    assert (labels >= 0).all() and np.array_equal(labels[rest], ids[np.argmax(vectors[rest] @ centres.T, axis=1)])
