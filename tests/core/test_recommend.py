import numpy as np
import pytest

from dagster_project.core.recommend import NEAR_BEST, recommend

FINE, COARSE, OTHER = np.repeat(np.arange(8), 25), np.repeat(np.arange(4), 50), np.repeat(np.arange(3), 67)[:200]


def scored_by(table: dict[frozenset, float]):
    """An agreement measure read from a table of pairs: the rule is tested on chosen agreements."""
    names = {id(FINE): "fine", id(COARSE): "coarse", id(OTHER): "other"}
    return lambda a, b: table[frozenset((names[id(a)], names[id(b)]))]


@pytest.mark.parametrize("coarse_with_other, expected", [(0.80, "coarse"), (0.50, "fine")])
def test_of_the_clusterings_agreeing_near_the_best_the_one_with_fewest_clusters_is_recommended(
        coarse_with_other, expected):
    table = {frozenset(("fine", "coarse")): 0.9, frozenset(("fine", "other")): 0.82,
             frozenset(("coarse", "other")): coarse_with_other}
    best, reason, evidence = recommend({"fine": FINE, "coarse": COARSE, "other": OTHER}, scored_by(table))
    agreement = evidence.set_index("algorithm")["agreement"]
    assert agreement["fine"] > agreement["coarse"]  # the finest split agrees best (0.86; coarse 0.85 or 0.70)...
    assert (agreement["coarse"] >= agreement["fine"] * (1 - NEAR_BEST)) == (expected == "coarse")
    assert best == expected  # ...and the coarser one is recommended when it is within NEAR_BEST
    assert ("fewest clusters of those (4)" in reason) == (expected == "coarse")


def test_noisy_and_single_cluster_answers_are_never_recommended():
    noisy = np.where(np.arange(200) % 4 == 0, -1, COARSE)  # 25% noise
    best, reason, _ = recommend({"noisy": noisy, "one": np.zeros(200, int)})
    assert best is None and "20% noise" in reason


def test_clusterings_that_agree_worse_than_chance_still_get_a_recommendation():
    table = {frozenset(("fine", "coarse")): -0.02, frozenset(("fine", "other")): -0.01,
             frozenset(("coarse", "other")): -0.05}
    best, reason, _ = recommend({"fine": FINE, "coarse": COARSE, "other": OTHER}, scored_by(table))
    assert best == "fine" and "agrees best" in reason  # -0.015; coarse (-0.035) is not within 5% of it


def test_two_answers_of_one_family_sharing_a_failure_do_not_outvote_the_others():
    two = np.repeat(np.arange(2), 100)  # k-means and mini-batch k-means stopped at the corpus's two domains
    near_fine = FINE.copy()
    near_fine[::10] = (near_fine[::10] + 1) % 8  # another kind of clustering, close to the topics
    partitions = {"kmeans": two, "minibatch_kmeans": two.copy(), "louvain": FINE, "agglomerative": near_fine}
    best, reason, evidence = recommend(partitions)
    assert best in ("louvain", "agglomerative") and "kmeans" not in reason.split("with ")[1].split(";")[0]
    blind = recommend(partitions, family={})[0]  # every clustering its own family: the pair outvotes the rest
    assert blind in ("kmeans", "minibatch_kmeans")


def test_the_previous_recommendation_is_kept_while_it_agrees_within_the_margin():
    table = {frozenset(("fine", "coarse")): 0.9, frozenset(("fine", "other")): 0.82,
             frozenset(("coarse", "other")): 0.80}
    partitions = {"fine": FINE, "coarse": COARSE, "other": OTHER}
    assert recommend(partitions, scored_by(table))[0] == "coarse"
    best, reason, _ = recommend(partitions, scored_by(table), previous="fine")
    assert best == "fine" and "agrees best" in reason
    table[frozenset(("fine", "coarse"))] = 0.5  # fine (0.66) now far below other (0.81): the lead moves
    best, reason, _ = recommend(partitions, scored_by(table), previous="fine")
    assert best == "other" and "kept" not in reason
