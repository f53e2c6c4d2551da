import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from dagster_project.core.algorithms.granularity import choose_count, steady_count
from dagster_project.core.algorithms import agglomerative as agglomerative_module
from dagster_project.core.algorithms import louvain as louvain_module
from dagster_project.core.assign import assign_to_fit, closest_centres
from dagster_project.core.algorithms.agglomerative import tree_memory_gb, weighted_ward
from dagster_project.core.algorithms.louvain import knn_graph
from dagster_project.core.algorithms.threshold import noise_to_nearest_cluster
from dagster_project.core.clustering import (
    ALGORITHMS,
    AgglomerativeParams,
    ClusteringError,
    CommunityParams,
    DBSCANParams,
    HDBSCANParams,
    KMeansParams,
    LouvainParams,
    MiniBatchKMeansParams,
    PreviousFit,
    relabel_by_size,
    run_clustering,
)
from dagster_project.core.metrics import cosine_silhouette


def three_groups(sizes=(12, 10, 8), dim=8, spread=0.05, seed=0):
    """Unit vectors around three orthogonal directions: an answer everyone knows."""
    rng = np.random.default_rng(seed)
    points, truth = [], []
    for group, size in enumerate(sizes):
        centre = np.eye(dim)[group]
        points.append(centre + spread * rng.standard_normal((size, dim)))
        truth += [group] * size
    x = np.vstack(points).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.array(truth)


def test_relabel_by_size_orders_largest_first_and_keeps_noise():
    assert relabel_by_size(np.array([5, 5, -1, 2, 2, 2, 9])).tolist() == [1, 1, -1, 0, 0, 0, 2]


@pytest.mark.parametrize(
    "name, params",
    [
        ("kmeans", KMeansParams(n_clusters=3)),
        ("kmeans", KMeansParams()),  # k chosen by silhouette
        ("minibatch_kmeans", MiniBatchKMeansParams(n_clusters=3, batch_size=16)),
        ("minibatch_kmeans", MiniBatchKMeansParams()),
        ("agglomerative", AgglomerativeParams(distance_threshold=0.5)),
        ("agglomerative", AgglomerativeParams(distance_threshold=0.5, linkage="average")),
        ("agglomerative", AgglomerativeParams()),  # cut chosen by silhouette below the Louvain count
        ("community_detection", CommunityParams(threshold=0.8, min_community_size=5)),
        ("louvain", LouvainParams()),
        ("louvain", LouvainParams(n_neighbors=5)),
        ("hdbscan", HDBSCANParams(min_cluster_size=5, reduce_dimensions=0)),
        ("hdbscan", HDBSCANParams(min_cluster_size=5, reduce_dimensions=4)),
        ("dbscan", DBSCANParams(eps=0.2, min_samples=5)),
        ("dbscan", DBSCANParams(min_samples=5, target_coverage=1.0)),  # automatic eps
        ("dbscan", DBSCANParams(eps=0.2, min_samples=5, reduction="pca", reduce_dimensions=4)),
    ],
)
def test_algorithms_recover_three_obvious_groups(name, params):
    x, truth = three_groups()
    result = run_clustering(name, x, params)
    assert result.labels.shape == truth.shape
    assert adjusted_rand_score(truth, result.labels) == 1.0
    assert result.labels.tolist() == run_clustering(name, x, params).labels.tolist()  # deterministic
    assert result.n_clusters == 3
    assert result.labels[:12].tolist() == [0] * 12  # largest cluster is 0


def test_kmeans_choice_starts_at_the_graph_communities_and_records_silhouette_and_inertia_per_k():
    x, _ = three_groups(sizes=(40, 35, 30))
    details = run_clustering("kmeans", x, KMeansParams()).details
    assert details["communities"] == 3 and details["n_clusters"] == 3
    assert (min(details["silhouette_by_k"]), max(details["silhouette_by_k"])) == (3, 9)  # to three times them
    assert details["inertia_by_k"][3] > details["inertia_by_k"][4]
    assert details["k_selection_seconds"] > 0 and "k_ceiling" not in details
    given = run_clustering("kmeans", x, KMeansParams(k_min=2, k_max=6)).details
    assert set(given["silhouette_by_k"]) == {2, 3, 4, 5, 6} and given["n_clusters"] == 3


def test_choose_count_widens_past_a_best_at_its_largest_count_and_says_where_it_must_stop():
    peak_at_40 = lambda k: -abs(k - 40)  # noqa: E731
    chosen, found = choose_count(peak_at_40, 5, 25, limit=1000, limit_reason="k_max")
    assert 35 <= chosen <= 45 and found["searched"] == [5, 50] and "ceiling" not in found
    rising = lambda k: float(k)  # noqa: E731
    chosen, found = choose_count(rising, 5, 15, limit=20, limit_reason="k_max")
    assert chosen == 20 == found["searched"][1] and found["ceiling"] == "the largest count searched (20): k_max"
    chosen, found = choose_count(rising, 5, 15, limit=1000, limit_reason="k_max")
    assert chosen == 30 == found["searched"][1] and "after widening the search once" in found["ceiling"]
    flat_then_falling = lambda k: 1.0 if k <= 12 else 0.5  # noqa: E731
    assert choose_count(flat_then_falling, 5, 15, limit=100, limit_reason="")[0] == 5  # the plateau's start
    chosen, found = choose_count(flat_then_falling, 5, 15, limit=100, limit_reason="", previous=9)
    assert chosen == 9 and found["previous"] == "9: kept (5 found; its silhouette within 5% of the best)"
    chosen, found = choose_count(flat_then_falling, 5, 15, limit=100, limit_reason="", previous=15)
    assert chosen == 5 and found["previous"] == "15: moved to 5 (its silhouette more than 5% below the best)"
    chosen, found = choose_count(lambda k: -abs(k - 40), 30, 50, limit=100, limit_reason="", previous=46)
    assert chosen == 46 and found["previous"] == "46: kept (40 found, within 20%)"  # 6 below the best: steady
    # a re-fit's last count is scored with the grid: a rising score widens the search only past it
    best_at_9 = lambda k: 2.0 if k == 9 else k / 100  # noqa: E731
    chosen, found = choose_count(best_at_9, 5, 15, limit=1000, limit_reason="", previous=9)
    assert chosen == 9 and found["searched"] == [5, 15] and found["previous"] == "9: found again"


def test_a_count_within_a_fifth_of_the_last_fit_keeps_the_last_fits():
    assert steady_count(45, None) == (45, None)
    assert steady_count(40, 40) == (40, "40: found again")
    assert steady_count(45, 40) == (40, "40: kept (45 found, within 20%)")
    assert steady_count(49, 40) == (49, "40: moved to 49 (more than 20%)")


def earlier(centres: np.ndarray, labels: np.ndarray | None = None, exemplars=(), **details) -> PreviousFit:
    return PreviousFit(labels=np.zeros(0, np.int64) if labels is None else labels, centres=centres,
                       exemplars=np.asarray(exemplars, dtype=np.int64), details=details)


def test_a_refit_keeps_the_previous_k_when_steady_and_starts_from_the_previous_centres():
    x, truth = three_groups(sizes=(40, 35, 30))
    params = KMeansParams(k_max=6, silhouette_tolerance=1.0)  # every k with a positive silhouette is on it
    previous = np.eye(8, dtype=np.float32)[[0, 1, 2, 3]]
    result = ALGORITHMS["kmeans"].fit(x, params, "cpu", previous=earlier(previous))
    assert result.details["n_clusters"] == 4
    assert result.details["k_previous"].startswith(("4: kept", "4: found again"))
    strict = ALGORITHMS["kmeans"].fit(x, KMeansParams(k_max=6), "cpu", previous=earlier(previous[:2]))
    assert strict.details["n_clusters"] == 3 and "moved to 3" in strict.details["k_previous"]
    assert normalized_mutual_info_score(truth, strict.labels) == 1.0


def test_a_warm_start_is_kept_when_it_fits_as_well_and_dropped_when_it_is_stuck():
    x, truth = three_groups(sizes=(40, 35, 30))
    params = KMeansParams(n_clusters=3)
    good = ALGORITHMS["kmeans"].fit(x, params, "cpu", previous=earlier(np.eye(8, dtype=np.float32)[[0, 1, 2]]))
    assert good.details["warm_start"].startswith("kept") and adjusted_rand_score(truth, good.labels) == 1.0
    # two centres inside the first group and one between the others: Lloyd's steps stay in that local optimum
    split = np.eye(8, dtype=np.float32)[0] + np.array([[0, 0, 0, 0.1, 0, 0, 0, 0], [0, 0, 0, -0.1, 0, 0, 0, 0]])
    between = (np.eye(8, dtype=np.float32)[1] + np.eye(8, dtype=np.float32)[2])[None, :] / np.sqrt(2)
    stuck = ALGORITHMS["kmeans"].fit(x, params, "cpu", previous=earlier(np.vstack([split, between]).astype(np.float32)))
    assert stuck.details["warm_start"].startswith("dropped") and adjusted_rand_score(truth, stuck.labels) == 1.0


def test_community_detection_refit_keeps_its_threshold_and_rebuilds_around_the_previous_centres():
    x, truth = three_groups(sizes=(40, 35, 30))
    params = CommunityParams(min_community_size=5)
    fresh = run_clustering("community_detection", x, params)
    assert fresh.exemplars is not None and fresh.labels[fresh.exemplars].tolist() == list(range(fresh.n_clusters))
    # a centre the fresh fit would not pick: a member of group 1 less central than most
    group = np.flatnonzero(truth == 1)
    outer = int(group[np.argsort((x[group] @ x[group].T).mean(axis=1))[len(group) // 4]])
    assert outer not in fresh.exemplars
    threshold = fresh.details["threshold"]
    refit = ALGORITHMS["community_detection"].fit(
        x, params, "cpu", previous=earlier(np.zeros((0, 8)), exemplars=[outer], threshold=threshold))
    assert refit.details["threshold"] == threshold and refit.details["threshold_selection"].startswith("kept")
    assert outer in refit.exemplars and (refit.labels >= 0).mean() >= 0.75
    far = ALGORITHMS["community_detection"].fit(x, params, "cpu", previous=earlier(np.zeros((0, 8)), threshold=0.9999))
    assert "chosen again" in far.details["previous_threshold"] and (far.labels >= 0).mean() >= 0.8


def test_louvain_refit_starts_from_the_previous_communities():
    x, truth = three_groups(sizes=(40, 35, 30))
    fresh = run_clustering("louvain", x, LouvainParams())
    start = np.where(np.arange(len(x)) % 7 == 0, -1, truth)  # some sentences arrived since and fit none
    refit = ALGORITHMS["louvain"].fit(x, LouvainParams(), "cpu", previous=earlier(np.zeros((0, 8)), start))
    assert refit.details["started_from"].startswith("the previous communities")
    assert normalized_mutual_info_score(truth, refit.labels) == normalized_mutual_info_score(truth, fresh.labels) == 1.0


def test_weighted_ward_on_single_points_is_scipys_ward_and_from_a_cut_continues_its_tree():
    from scipy.cluster.hierarchy import fcluster, linkage

    x = np.random.default_rng(0).standard_normal((300, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tree = linkage(x, method="ward")
    assert np.allclose(weighted_ward(x, np.ones(len(x))), tree)
    start = fcluster(tree, 40, criterion="maxclust") - 1
    means = np.stack([x[start == g].mean(axis=0) for g in range(40)])
    continued = weighted_ward(means, np.bincount(start).astype(float))
    assert np.allclose(continued[:, 2], tree[-39:, 2])
    for clusters in (2, 7, 25):
        assert adjusted_rand_score(fcluster(tree, clusters, criterion="maxclust"),
                                   fcluster(continued, clusters, criterion="maxclust")[start]) == 1.0


def test_agglomerative_refit_keeps_the_previous_topics_and_grows_a_new_one_from_sentences_in_none(monkeypatch):
    x, truth = three_groups(sizes=(40, 35, 30, 25), dim=8)
    before = np.where(truth == 3, -1, truth)  # the fourth group arrived since and fits no topic
    before[truth == 0] = np.where(np.arange((truth == 0).sum()) % 2, 0, 4)  # the last fit split the first group
    params = AgglomerativeParams(distance_threshold=1.0)
    refit = ALGORITHMS["agglomerative"].fit(x, params, "cpu", previous=earlier(np.zeros((0, 8)), before))
    assert refit.details["started_from"].startswith("the previous topics: 29 leaves, 4 of them topics")
    for group in (0, 1, 2, 4):  # a previous topic is never split
        assert len(set(refit.labels[before == group])) == 1
    assert adjusted_rand_score(truth, refit.labels) == 1.0  # the split is merged back, the new group is a topic
    automatic = ALGORITHMS["agglomerative"].fit(x, AgglomerativeParams(), "cpu",
                                                previous=earlier(np.zeros((0, 8)), before))
    assert automatic.details["clusters_previous"].startswith(("4: kept", "4: found again"))
    assert adjusted_rand_score(truth, automatic.labels) == 1.0
    monkeypatch.setattr(agglomerative_module, "WARD_LEAVES_UP_TO", 28)  # 29 leaves: too many sentences without a topic
    fresh = ALGORITHMS["agglomerative"].fit(x, params, "cpu", previous=earlier(np.zeros((0, 8)), before))
    assert fresh.details["started_from"].startswith("a new tree") and adjusted_rand_score(truth, fresh.labels) == 1.0


def test_community_detection_automatic_threshold_covers_most_and_never_mixes_groups():
    x, truth = three_groups()
    result = run_clustering("community_detection", x, CommunityParams(min_community_size=5))
    labels = result.labels
    assert (labels >= 0).mean() >= 0.8
    assert result.n_clusters == 3
    for cluster in range(3):
        assert len(set(truth[labels == cluster])) == 1
    assert "neighbours" in result.details["threshold_selection"]


@pytest.mark.parametrize("min_size", [3, 5, 8])
def test_community_detection_automatic_threshold_assigns_the_target_share_of_real_sentences(
    sample_embeddings, min_size
):
    result = run_clustering("community_detection", sample_embeddings,
                            CommunityParams(min_community_size=min_size, target_coverage=0.8))
    attempts = result.details["threshold_attempts"]
    assert (result.labels >= 0).mean() >= 0.8 and attempts[-1]["assigned"] >= 0.8
    assert 1 <= len(attempts) <= 4 and result.details["threshold"] == attempts[-1]["threshold"]
    thresholds = [a["threshold"] for a in attempts]
    assert thresholds == sorted(thresholds, reverse=True)  # each retry lowers the threshold


def test_community_detection_marks_outliers_as_noise():
    x, truth = three_groups()
    outlier = np.zeros((1, x.shape[1]), dtype=np.float32)
    outlier[0, -1] = 1.0
    labels = run_clustering("community_detection", np.vstack([x, outlier]),
                            CommunityParams(threshold=0.8, min_community_size=5)).labels
    assert labels[-1] == -1
    assert adjusted_rand_score(truth, labels[:-1]) == 1.0


def test_small_groups_below_min_size_are_noise():
    x, _ = three_groups(sizes=(12, 10, 3))
    labels = run_clustering("community_detection", x, CommunityParams(threshold=0.8, min_community_size=5)).labels
    assert labels[-3:].tolist() == [-1, -1, -1]
    assert set(labels[:22].tolist()) == {0, 1}


def test_agglomerative_beyond_its_memory_fits_a_sample_and_assigns_the_rest(sample_embeddings, sample_corpus):
    """A limit that holds a tree of 60 of the 160 sentences: the tree is built on a seeded sample of 60, every
    other sentence goes to its nearest cluster centre, and the subjects are found about as well as by the tree
    of all 160 at the same threshold."""
    limit = tree_memory_gb(60) * 1.001
    params = AgglomerativeParams(distance_threshold=1.2, max_memory_gb=limit)
    result = run_clustering("agglomerative", sample_embeddings, params)
    assert result.details["fitted_on_sample"] == 60 and result.details["assigned_to_nearest_centre"] == 100
    assert "max_memory_gb" in result.details["sample_note"]
    assert (result.labels >= 0).all() and len(result.labels) == 160
    whole = run_clustering("agglomerative", sample_embeddings, AgglomerativeParams(distance_threshold=1.2))
    truth = sample_corpus["label"]
    assert normalized_mutual_info_score(truth, result.labels) >= normalized_mutual_info_score(truth, whole.labels) - 0.1
    assert np.array_equal(result.labels, run_clustering("agglomerative", sample_embeddings, params).labels)


def test_agglomerative_with_no_room_for_a_tree_says_what_to_do():
    x, _ = three_groups()
    with pytest.raises(ClusteringError, match="raise it"):
        run_clustering("agglomerative", x, AgglomerativeParams(max_memory_gb=1e-12))


def test_assign_to_fit_keeps_the_fitted_labels_and_sends_the_rest_to_the_nearest_centre():
    x, truth = three_groups()
    fitted = np.array([0, 1, 12, 13, 22, 23])
    labels = assign_to_fit(x, fitted, truth[fitted])
    assert labels.tolist() == truth.tolist()
    assert (assign_to_fit(x, fitted, np.full(6, -1)) == -1).all()  # a fit without clusters assigns nothing
    assert closest_centres(x, np.eye(8, dtype=np.float32)[:3], chunk=7)[0].tolist() == truth.tolist()  # any chunking


def test_hdbscan_noise_reassignment_leaves_no_noise():
    x, truth = three_groups(dim=10)
    strays = np.eye(10, dtype=np.float32)[3:8]  # five lone directions, far from every group and each other
    strays[0] += 0.1 * np.eye(10, dtype=np.float32)[0]  # this one leans towards group 0
    strays /= np.linalg.norm(strays, axis=1, keepdims=True)
    data = np.vstack([x, strays])
    plain = run_clustering("hdbscan", data, HDBSCANParams(min_cluster_size=5, reduce_dimensions=0)).labels
    assert plain[-5:].tolist() == [-1] * 5
    reassigned = run_clustering("hdbscan", data, HDBSCANParams(min_cluster_size=5, reduce_dimensions=0,
                                                               reassign_noise=True)).labels
    assert (reassigned >= 0).all() and reassigned[-5] == reassigned[0]
    assert adjusted_rand_score(truth, reassigned[:-5]) == 1.0


def test_noise_to_nearest_cluster_assigns_noise_to_most_similar_cluster():
    x = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0.9, 0.2]], dtype=np.float32)
    assert noise_to_nearest_cluster(x, np.array([0, 0, 1, 1, -1])).tolist() == [0, 0, 1, 1, 0]


@pytest.mark.parametrize("name", list(ALGORITHMS))
@pytest.mark.parametrize("n", [1, 2])
def test_tiny_corpora_give_one_valid_label_per_sentence(name, n):
    x, _ = three_groups(sizes=(n,))
    labels = run_clustering(name, x).labels
    assert len(labels) == n and ((labels >= -1) & (labels < max(n, 1))).all()


def test_k_larger_than_corpus_is_capped():
    x, _ = three_groups(sizes=(2, 2))
    result = run_clustering("kmeans", x, KMeansParams(n_clusters=10))
    assert result.n_clusters == 4 and "k_capped" in result.details


def test_identical_sentences_form_one_cluster():
    x = np.tile(np.eye(4, dtype=np.float32)[0], (20, 1))
    for name in ("kmeans", "community_detection", "louvain"):
        labels = run_clustering(name, x).labels
        assert set(labels.tolist()) == {0}, name


def test_knn_graph_links_each_sentence_to_scikit_learns_nearest_neighbours(sample_embeddings):
    from sklearn.neighbors import NearestNeighbors

    graph = knn_graph(sample_embeddings, 10)
    distances, indices = NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(
        sample_embeddings).kneighbors(sample_embeddings)
    for row in range(len(sample_embeddings)):
        expected = [int(i) for i in indices[row] if i != row][:10]
        linked = graph[row].indices.tolist()
        assert set(expected) <= set(linked)  # its own neighbours, plus those that chose it
        assert np.allclose(graph[row, expected].toarray().ravel(), 1.0 - distances[row][indices[row] != row][:10],
                           atol=1e-5)
    assert (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0


def test_knn_graph_of_many_rows_comes_from_an_index_and_equals_the_exact_one(sample_embeddings, monkeypatch):
    exact = knn_graph(sample_embeddings, 10)
    monkeypatch.setattr(louvain_module, "INDEX_ABOVE", 100)  # the 160 sample sentences count as many
    indexed = knn_graph(sample_embeddings, 10)
    assert ((indexed > 0) != (exact > 0)).nnz == 0  # the same edges: HNSW finds every neighbour at this size
    assert abs(indexed - exact).max() < 1e-3 and not np.array_equal(indexed.data, exact.data)  # half-precision


def test_louvain_finds_the_sample_corpus_subjects_without_being_told_how_many(sample_embeddings, sample_corpus):
    from sklearn.metrics import normalized_mutual_info_score

    result = run_clustering("louvain", sample_embeddings)
    labels = sample_corpus["label"]
    assert labels.nunique() / 2 <= result.n_clusters <= labels.nunique() * 2
    assert normalized_mutual_info_score(labels, result.labels) > 0.85
    assert (result.labels >= 0).all()
    import igraph  # the reported modularity is the graph's, at the resolution, as igraph computes it

    graph = knn_graph(sample_embeddings, result.details["n_neighbors"]).tocoo()
    upper = graph.row < graph.col
    network = igraph.Graph(n=len(sample_embeddings), edges=np.column_stack([graph.row[upper], graph.col[upper]]))
    expected = network.modularity(result.labels.tolist(), weights=graph.data[upper].tolist(),
                                  resolution=result.details["resolution"])
    assert 0.3 < result.details["modularity"] == pytest.approx(expected, abs=1e-4)


def test_louvain_and_the_automatic_cut_keep_sentences_with_nothing_similar_apart():
    x = np.eye(6, dtype=np.float32)  # no two sentences alike: no edge in the graph
    for name in ("louvain", "agglomerative"):
        assert run_clustering(name, x).n_clusters == 6, name


@pytest.mark.parametrize("params", [LouvainParams(n_neighbors=0), LouvainParams(resolution=0.0)])
def test_louvain_rejects_parameters_it_cannot_use(params):
    x, _ = three_groups()
    with pytest.raises(ClusteringError, match="n_neighbors .* at least 1 and resolution"):
        run_clustering("louvain", x, params)


@pytest.mark.parametrize("linkage", ["ward", "average"])
def test_agglomerative_automatic_cut_holds_the_louvain_count_and_its_threshold_reproduces_it(
        sample_embeddings, sample_corpus, linkage):
    automatic = run_clustering("agglomerative", sample_embeddings, AgglomerativeParams(linkage=linkage))
    communities = run_clustering("louvain", sample_embeddings).n_clusters
    assert automatic.details["communities"] == communities == automatic.n_clusters
    assert normalized_mutual_info_score(sample_corpus["label"], automatic.labels) > 0.8
    given = run_clustering("agglomerative", sample_embeddings, AgglomerativeParams(
        linkage=linkage, distance_threshold=automatic.details["distance_threshold"]))
    assert given.labels.tolist() == automatic.labels.tolist()


def test_agglomerative_matches_scikit_learn_at_a_given_threshold(sample_embeddings):
    for linkage, metric in (("ward", "euclidean"), ("average", "cosine")):
        ours = run_clustering("agglomerative", sample_embeddings, AgglomerativeParams(
            linkage=linkage, distance_threshold=0.9 if linkage == "ward" else 0.5))
        theirs = AgglomerativeClustering(n_clusters=None, distance_threshold=0.9 if linkage == "ward" else 0.5,
                                         linkage=linkage, metric=metric).fit(sample_embeddings).labels_
        assert 2 < ours.n_clusters < len(sample_embeddings)
        assert adjusted_rand_score(theirs, ours.labels) == 1.0, linkage


def test_dbscan_marks_lone_points_as_noise():
    x, truth = three_groups(dim=10)
    data = np.vstack([x, np.eye(10, dtype=np.float32)[3:8]])
    labels = run_clustering("dbscan", data, DBSCANParams(eps=0.2, min_samples=5)).labels
    assert labels[-5:].tolist() == [-1] * 5
    assert adjusted_rand_score(truth, labels[:-5]) == 1.0


@pytest.mark.parametrize("eps, min_samples", [(0.55, 3), (0.6, 5), (0.65, 3)])  # 3 to 8 clusters, 28-64% noise
def test_dbscan_matches_scikit_learn_brute_force_on_real_embeddings(sample_embeddings, eps, min_samples):
    from sklearn.cluster import DBSCAN

    expected = DBSCAN(eps=eps, min_samples=min_samples, metric="cosine", algorithm="brute").fit(sample_embeddings)
    expected = expected.labels_
    assert len(set(expected)) > 3
    result = run_clustering("dbscan", sample_embeddings, DBSCANParams(eps=eps, min_samples=min_samples))
    assert adjusted_rand_score(expected, result.labels) == 1.0
    assert np.array_equal(expected == -1, result.labels == -1)
    assert result.details["neighbour_pairs"] < len(sample_embeddings) ** 2


def test_unknown_or_missing_reduction_is_a_clear_error():
    x, _ = three_groups()
    with pytest.raises(ClusteringError, match="not one of none, pca, umap"):
        run_clustering("hdbscan", x, HDBSCANParams(reduction="tsne"))
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ClusteringError, match="pip install"):
            run_clustering("hdbscan", x, HDBSCANParams(reduction="umap", reduce_dimensions=2))
