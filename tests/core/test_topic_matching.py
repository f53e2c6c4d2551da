import numpy as np
import pandas as pd
import pytest

from dagster_project.core.algorithms.kmeans import KMeansParams
from dagster_project.core.assign import UNFITTED, assign_to_topics
from dagster_project.core.clustering import ALGORITHMS
from dagster_project.core.topic_memory import (
    Hysteresis,
    RefitPolicy,
    drift_reason,
    lineage_after_fit,
    match_topics,
    refit_reason,
    topic_shapes,
)
from dagster_project.core.topic_model import TopicModel
from dagster_project.core.trends import rising_topics


def blobs(centres: list[int], sizes: list[int], dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors near the axes `centres`, `sizes` of each; their labels."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for label, (axis, size) in enumerate(zip(centres, sizes)):
        points = np.eye(dim)[axis] + rng.normal(0, 0.05, (size, dim))
        rows.append(points / np.linalg.norm(points, axis=1, keepdims=True))
        labels += [label] * size
    return np.vstack(rows).astype(np.float32), np.array(labels)


def fit(ids: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"sentence_id": ids, "cluster_id": labels})


def previous(ids: np.ndarray, topics: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"sentence_id": ids, "topic_id": topics})


def test_a_refit_that_finds_the_same_clusters_keeps_every_topic_id_whatever_their_numbers():
    x, labels = blobs([0, 1, 2], [30, 20, 10])
    ids = np.arange(len(x))
    shapes = topic_shapes(x, labels)
    # the previous run called these topics 7, 3 and 9; the new fit numbers them 0, 1, 2
    old = previous(ids, np.array([7, 3, 9])[labels])
    matching = match_topics(fit(ids, labels), old, shapes, np.array([7, 3, 9]), shapes.centres, shapes.sizes, 10)
    assert matching.topic_of_cluster == {0: 7, 1: 3, 2: 9}
    assert matching.retired == [] and matching.events == []


def test_a_new_group_is_born_with_an_id_never_used_and_a_vanished_topic_is_retired():
    x, labels = blobs([0, 1, 2, 3], [30, 20, 10, 15])
    ids = np.arange(len(x))
    before = labels < 3  # topics 0..2 existed; the fourth group arrived since
    old_shapes = topic_shapes(x[before], labels[before])
    old = previous(ids[before], labels[before] + 100)
    now = labels != 2  # the third group's sentences were removed
    shapes = topic_shapes(x[now], labels[now])
    matching = match_topics(fit(ids[now], labels[now]), old, shapes, np.array([100, 101, 102]),
                            old_shapes.centres, old_shapes.sizes, 103)
    assert matching.topic_of_cluster == {0: 100, 1: 101, 3: 103}
    assert matching.retired == [102]
    assert {(e["topic_id"], e["event"]) for e in matching.events} == {(103, "born"), (102, "retired")}


def test_a_split_and_a_merge_are_told_apart_from_births_and_retirements():
    x, labels = blobs([0, 1, 2], [40, 20, 20])
    ids = np.arange(len(x))
    # before: groups 1 and 2 were one topic (11); group 0 was topic 10
    old_labels = np.where(labels == 0, 10, 11)
    old_shapes = topic_shapes(x, np.where(labels == 0, 0, 1))
    split = match_topics(fit(ids, labels), previous(ids, old_labels), topic_shapes(x, labels), np.array([10, 11]),
                         old_shapes.centres, old_shapes.sizes, 12)
    assert split.topic_of_cluster[0] == 10 and split.retired == []
    [event] = split.events
    assert event["event"] == "split_from" and event["other_topic_id"] == 11 and event["topic_id"] == 12
    # and back: the new fit merges groups 1 and 2 again
    merged_labels = np.where(labels == 0, 0, 1)
    after_split = np.array([split.topic_of_cluster[c] for c in labels])
    merge = match_topics(fit(ids, merged_labels), previous(ids, after_split), topic_shapes(x, merged_labels),
                         np.array([10, 11, 12]), topic_shapes(x, labels).centres, np.array([40, 20, 20]), 13)
    assert merge.topic_of_cluster[0] == 10 and len(merge.retired) == 1
    [event] = merge.events
    assert event["event"] == "merged_into" and event["other_topic_id"] == merge.topic_of_cluster[1]


def test_an_even_split_keeps_its_lineage_in_every_part_and_a_merge_in_the_topic_that_absorbed():
    x, labels = blobs([0, 1, 2, 3, 4], [40, 30, 30, 30, 30])
    ids = np.arange(len(x))
    whole = np.where(labels == 0, 0, 1)  # before: group 0 was topic 5, groups 1-4 one topic, 6
    old_shapes = topic_shapes(x, whole)
    lineage = lineage_after_fit(pd.DataFrame(columns=["topic_id", "ancestor_topic_id", "generations"]), [5, 6], [])
    split = match_topics(fit(ids, labels), previous(ids, np.array([5, 6])[whole]), topic_shapes(x, labels),
                         np.array([5, 6]), old_shapes.centres, old_shapes.sizes, 7)
    # four equal parts: none continues topic 6 (a quarter each), every one descends from it
    assert split.topic_of_cluster[0] == 5 and split.retired == [6]
    parts = [split.topic_of_cluster[c] for c in (1, 2, 3, 4)]
    assert sorted((e["event"], e["topic_id"], e["other_topic_id"]) for e in split.events if e["topic_id"] != 6) == [
        ("split_from", part, 6) for part in sorted(parts)]
    lineage = lineage_after_fit(lineage, [5, 6, *parts], split.links)
    descends = lineage[lineage["ancestor_topic_id"] == 6]
    assert dict(zip(descends["topic_id"], descends["generations"])) == {6: 0, **{part: 1 for part in parts}}
    # then two of the parts merge: the topic that absorbed the other descends from both, and so from 6 as well
    after = np.array([split.topic_of_cluster[c] for c in labels])
    merged = np.where(labels == 2, 1, labels)
    shapes = topic_shapes(x, merged)
    merge = match_topics(fit(ids, merged), previous(ids, after), shapes, np.array([5, *parts]),
                         topic_shapes(x, labels).centres, np.array([40, 30, 30, 30, 30]), 11)
    absorber = merge.topic_of_cluster[1]
    [gone] = merge.retired
    assert {absorber, gone} == {parts[0], parts[1]}
    lineage = lineage_after_fit(lineage, [5, 6, *parts], merge.links)
    ancestors = lineage[lineage["topic_id"] == absorber].set_index("ancestor_topic_id")["generations"].to_dict()
    assert ancestors == {absorber: 0, gone: 1, 6: 1}


def test_noise_is_never_a_topic_and_clusters_without_history_are_born():
    x, labels = blobs([0, 1], [10, 10])
    labels[:3] = -1
    shapes = topic_shapes(x, labels)
    assert shapes.cluster_ids.tolist() == [0, 1] and shapes.sizes.tolist() == [7, 10]
    empty = previous(np.array([], int), np.array([], int))
    matching = match_topics(fit(np.arange(20), labels), empty, shapes, np.array([], int), np.zeros((0, 8)),
                            np.array([], int), 0)
    assert matching.topic_of_cluster == {0: 0, 1: 1}
    assert [e["event"] for e in matching.events] == ["born", "born"]


def test_new_sentences_go_to_the_nearest_topic_or_nowhere_beyond_its_spread():
    x, labels = blobs([0, 1], [50, 50])
    shapes = topic_shapes(x, labels)
    near = np.eye(8, dtype=np.float32)[[1, 0, 0]]  # at the centres
    far = np.eye(8, dtype=np.float32)[[5, 6]]
    assert assign_to_topics(np.vstack([near, far]), shapes.centres, shapes.radii).tolist() == [1, 0, 0, -1, -1]
    assert assign_to_topics(near, np.zeros((0, 8)), np.zeros(0)).tolist() == [-1] * 3


def test_refit_rules():
    policy = RefitPolicy()
    last = {"model_key": "m", "params": {"k": 3}, "details": {"memory": {}}}
    assert refit_reason(policy, last, {"k": 3}, "m") is None
    assert refit_reason(RefitPolicy(refit=True), last, {"k": 3}, "m").startswith("asked")
    assert refit_reason(policy, None, {"k": 3}, "m") == "first fit"
    assert "parameters" in refit_reason(policy, last, {"k": 4}, "m")
    assert "model changed" in refit_reason(policy, last, {"k": 3}, "other")
    assert "failed" in refit_reason(policy, {**last, "details": {"failed": "x"}}, {"k": 3}, "m")
    memory = {"fitted_sentences": 100, "added": 10, "removed": 0, "unassigned": 1}
    assert drift_reason(policy, memory) is None
    assert "30%" in drift_reason(policy, {**memory, "added": 20, "removed": 10})
    assert "fit no topic" in drift_reason(policy, {**memory, "unassigned": 5})


def test_rising_topics_compare_shares_of_the_last_two_periods():
    days = pd.to_datetime(["2026-11-01", "2026-11-02"])
    trends = pd.DataFrame({"topic_id": [0, 1, -1, 0, 1, 2, -1], "period": days[[0, 0, 0, 1, 1, 1, 1]],
                           "sentences": [50, 40, 10, 20, 20, 50, 10]})
    rising = rising_topics(trends)
    assert rising["topic_id"].tolist()[0] == 2 and -1 not in rising["topic_id"].tolist()
    assert round(rising.iloc[0]["change"], 1) == 50.0
    assert rising_topics(trends[trends["period"] == days[0]]).empty


def test_a_new_sentence_lands_among_its_most_similar_sentences_on_the_map():
    from dagster_project.core.projection import place_near_neighbours

    x, labels = blobs([0, 1], [20, 20])
    xy = np.where(labels[:, None] == 0, [0.0, 0.0], [10.0, 10.0]).astype(np.float32)
    new = np.eye(8, dtype=np.float32)[[1, 0]]
    placed = place_near_neighbours(new, x, xy, neighbours=5)
    assert np.allclose(placed, [[10, 10], [0, 0]]) and place_near_neighbours(new[:0], x, xy).shape == (0, 2)


def test_a_refit_keeps_border_sentences_on_their_topics_line_unless_another_cluster_is_clearly_closer():
    x, labels = blobs([0, 1, 2], [40, 30, 20])
    e = np.eye(8, dtype=np.float32)
    between = np.array([1.03 * e[0] + e[1], 1.03 * e[0] + e[1], 0.5 * e[0] + e[1], 0.97 * e[0] + e[2]])
    x = np.vstack([x, between / np.linalg.norm(between, axis=1, keepdims=True)])
    ids = np.arange(len(x))
    # before: topic 10 held groups 0 and 2 and every sentence in between, topic 11 group 1
    before = np.r_[np.where(labels == 1, 11, 10), [10, 10, 10, 10]]
    # the re-fit splits topic 10 and puts each sentence in between with its nearest group
    now = np.r_[labels, [1, 1, 1, 2]]
    shapes = topic_shapes(x, now)
    old = topic_shapes(x, before)
    matching = match_topics(fit(ids, now), previous(ids, before), shapes, old.cluster_ids, old.centres, old.sizes, 12)
    assert matching.topic_of_cluster[0] == 10 and matching.topic_of_cluster[1] == 11
    kept = Hysteresis.of(matching, [10, 11], shapes).apply(now, before, x)
    # within KEEP_MARGIN of topic 10's continuation: back on its line; clearly closer to group 1: moved;
    # in a part split from topic 10: on its line already
    assert kept[-4:].tolist() == [0, 0, 1, 2]
    assert (kept[:-4] == labels).all()


@pytest.mark.parametrize("fit_sample", [1000, 200])
def test_a_refit_of_the_topic_model_keeps_border_sentences_where_they_were_also_past_its_sample(fit_sample):
    x, labels = blobs([0, 1], [200, 200])
    e = np.eye(8, dtype=np.float32)
    between = np.array([0.98 * e[0] + e[1]] * 2 + [0.5 * e[0] + e[1]])
    x = np.vstack([x, between / np.linalg.norm(between, axis=1, keepdims=True)]).astype(np.float32)
    before = np.r_[np.where(labels == 0, 5, 6), [5] * 3]  # every sentence in between was in topic 5
    model = TopicModel(ALGORITHMS["kmeans"], KMeansParams(n_clusters=2), fit_sample=fit_sample)
    sample, _ = model.plan(len(x))
    # the sentences in between at rows the fit does not read (when it reads a sample)
    order = np.arange(len(x))
    outside = np.setdiff1d(order, sample)[:3] if len(sample) < len(x) else order[-3:]
    order[outside], order[-3:] = order[-3:], order[outside]
    x, before, group = x[order], before[order], np.r_[labels, [-1] * 3][order]
    ids = np.arange(len(x))
    model.fit(ids, sample, x[sample], before=before)
    model.extend(lambda: [(ids, x)], lambda rows: x[rows])
    a, b = model.labels_[group == 0][0], model.labels_[group == 1][0]
    assert a != b and (model.labels_[group >= 0] == np.where(group[group >= 0] == 0, a, b)).all()
    # nearer group 1's centre, but within KEEP_MARGIN of topic 5's: kept there; the last one is clearly nearer
    assert model.labels_[outside].tolist() == [a, a, b]


def test_a_new_topic_made_of_parts_of_two_topics_descends_from_both():
    x, labels = blobs([0, 1, 2], [88, 85, 32])
    ids = np.arange(len(x))
    # before: topic 10 held 88 + 12 sentences, topic 11 85 + 15; the last 5 arrived since
    before = np.r_[[10] * 88, [11] * 85, [10] * 12, [11] * 15, [-1] * 5]
    shapes = topic_shapes(x, labels)
    old = topic_shapes(x[before >= 0], before[before >= 0])
    matching = match_topics(fit(ids, labels), previous(ids, before), shapes, old.cluster_ids, old.centres,
                            old.sizes, 12)
    # the new topic took 12% and 15% of the two topics, 38% and 47% of its own sentences came from them
    assert {(link["topic_id"], link["parent_topic_id"]) for link in matching.links} == {(12, 10), (12, 11)}
