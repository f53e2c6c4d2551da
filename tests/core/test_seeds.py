"""Seeded topics in the fitted topic model: the rows close to a seed form its topic, the algorithm clusters the rest,
the seed's topic keeps its id across re-fits, a removed seed's topic retires, new sentences join seeds too."""

import numpy as np
import pandas as pd
import pytest

from dagster_project.core.algorithms.kmeans import KMeansParams
from dagster_project.core.clock import utc_now
from dagster_project.core.clustering import ALGORITHMS
from dagster_project.core.seeds import seed_examples, seeds_from
from dagster_project.core.topic_memory import RefitPolicy, refit_reason
from dagster_project.core.topic_model import TopicModel, active_topics, assign_new

REGISTRY = pd.DataFrame(columns=["topic_id", "cluster_id", "label", "status", "first_seen", "last_seen", "size",
                                 "centroid", "radius", "model_key", "seed"])
LINEAGE = pd.DataFrame(columns=["topic_id", "ancestor_topic_id", "generations"])


def blobs(sizes: list[int], dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors near the first len(sizes) axes, `sizes` of each; their axis."""
    rng = np.random.default_rng(seed)
    axis = np.repeat(np.arange(len(sizes)), sizes)
    points = np.eye(dim)[axis] + rng.normal(0, 0.05, (len(axis), dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), axis


def unit(*axes: int, dim: int = 8) -> np.ndarray:
    v = np.eye(dim)[list(axes)].sum(axis=0)
    return (v / np.linalg.norm(v)).astype(np.float32)


def seeds_at(named: dict[str, list[int]], threshold: float = 1.5):
    """Seeds whose one example lies on an axis (or between axes); a sentence joins one `threshold` standard
    deviations above the corpus's mean similarity to its example."""
    pairs = pd.DataFrame({"name": list(named), "example": [f"an example of {n}" for n in named]})
    return seeds_from(pairs, np.stack([unit(*axes) for axes in named.values()]), threshold)


def refit(x, ids, seeds, registry, lineage, before=None, fit_sample=200_000, k=3):
    model = TopicModel(ALGORITHMS["kmeans"], KMeansParams(n_clusters=k), fit_sample=fit_sample)
    sample, _ = model.plan(len(x))
    model.fit(ids, sample, x[sample], before=before, seeds=seeds)
    model.extend(lambda: [(ids, x)], lambda rows: x[rows])
    previous = pd.DataFrame({"sentence_id": ids, "topic_id": before if before is not None else -1})
    next_id = int(max(registry["topic_id"].max() if len(registry) else -1, 99)) + 1
    return model, model.match(previous, registry, lineage, next_id, "m", "test", utc_now())


def test_seed_rows_name_alone_for_every_algorithm_or_one():
    rows = pd.DataFrame({"algorithm": [None, "kmeans", "louvain", None, None, None],
                         "name": ["refunds", " card arrival ", "login", "", None, "refunds"],
                         "example": [None, "my card has not come", None, "x", "y", "  "]})
    assert seed_examples(rows, "kmeans").values.tolist() == [["card arrival", "my card has not come"],
                                                             ["refunds", "refunds"]]
    assert seed_examples(rows, "louvain")["name"].tolist() == ["login", "refunds"]


def test_a_sentence_joins_the_seed_it_stands_out_for_in_its_corpus():
    x, axis = blobs([30, 30, 30, 30])
    seeds = seeds_at({"a": [0], "b": [1]}).calibrated(x)
    assert (seeds.nearest(x) == np.where(axis < 2, axis, -1)).all()
    faint = np.r_[0.25, 0.25, np.sqrt(1 - 2 * 0.25**2), np.zeros(5)].astype(np.float32)
    assert seeds.nearest(faint[None]).tolist() == [-1]  # cosine 0.25 to both: under MIN_COSINE, however rare
    # in a corpus where most sentences lean towards the first axis (cosine 0.71), leaning so sets none apart
    alike = np.vstack([x, np.tile(unit(0, 2), (200, 1)), np.tile(unit(0, 3), (200, 1))])
    assert (seeds_at({"a": [0]}).calibrated(alike).nearest(alike) == np.r_[np.where(axis == 0, 0, -1),
                                                                            [-1] * 400]).all()
    with pytest.raises(ValueError, match="calibrated"):
        seeds_at({"a": [0]}).nearest(x)
    twins = seeds_at({"a": [0], "also a": [0], "b": [1]})
    assert [(p["seed"], p["other_seed"]) for p in twins.near_identical()] == [("a", "also a")]


@pytest.mark.parametrize("fit_sample", [200_000, 150])
def test_seeded_topics_hold_their_sentences_and_ids_across_refits_and_retire_with_their_seed(fit_sample):
    x, axis = blobs([60, 60, 60, 60, 60])
    ids = np.arange(len(x))
    seeds = seeds_at({"first axis": [0], "nobody": [6]})
    model, first = refit(x, ids, seeds, REGISTRY, LINEAGE, fit_sample=fit_sample, k=5)
    topics = first.topics.set_index("topic_id")
    seeded = topics[topics["seed"].notna()]
    assert sorted(seeded["seed"]) == ["first axis", "nobody"]
    first_axis = int(seeded.index[seeded["seed"] == "first axis"][0])
    assert (first.topic_ids[axis == 0] == first_axis).all() and (first.topic_ids[axis != 0] != first_axis).all()
    assert int(seeded.loc[seeded["seed"] == "nobody", "size"].iloc[0]) == 0  # its topic exists, empty
    assert set(first.events.loc[first.events["event"] == "seeded", "topic_id"]) == set(seeded.index)
    assert len(set(first.topic_ids[axis != 0])) == 4  # the algorithm's other clusters keep their own topics
    assert list(model.claims.values()) == [0]  # the cluster of the first axis joined the seed's topic
    assert model.details_["seed_key"] == seeds.key

    _, second = refit(x, ids, seeds, first.topics, first.lineage, first.topic_ids, fit_sample, k=5)
    assert (second.topic_ids == first.topic_ids).all()  # every id kept, the seeds' and the others'

    _, third = refit(x, ids, None, second.topics, second.lineage, second.topic_ids, fit_sample, k=5)
    retired = third.events.set_index("topic_id").loc[seeded.index, "event"]
    assert set(retired) <= {"retired", "merged_into"} and first_axis not in set(third.topic_ids)
    assert (third.topics.set_index("topic_id").loc[seeded.index, "status"] == "retired").all()


def test_new_sentences_join_a_seeds_topic_or_the_nearest_found_topic():
    x, axis = blobs([50, 50, 50])
    ids = np.arange(len(x))
    seeds = seeds_at({"second axis": [1]})
    model, fitted = refit(x, ids, seeds, REGISTRY, LINEAGE, k=3)
    active, centres = active_topics(fitted.topics, x.shape[1])
    new = np.stack([unit(1), unit(0), unit(6)])
    seeds = seeds.with_calibration(model.details_["seed_calibration"])  # the fit's, as an incremental run reads it
    outcome = assign_new(RefitPolicy(), {"fitted_sentences": 150, "added": 0, "removed": 0, "unassigned": 0},
                         active, centres, active["radius"].to_numpy(), np.array([1000, 1001, 1002]), new, 0, seeds)
    by_axis = pd.Series(fitted.topic_ids).groupby(axis).first()
    assert outcome.rows["topic_id"].tolist() == [by_axis[1], by_axis[0], -1]


def test_a_change_of_seeds_fits_again():
    last = {"model_key": "m", "params": {}, "details": {"memory": {}, "seed_key": "abc"}}
    assert refit_reason(RefitPolicy(), last, {}, "m", "abc") is None
    assert "seeds changed" in refit_reason(RefitPolicy(), last, {}, "m", None)
    assert "seeds changed" in refit_reason(RefitPolicy(), {**last, "details": {"memory": {}}}, {}, "m", "abc")
