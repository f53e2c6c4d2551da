import re

import numpy as np
import pandas as pd

from dagster_project.core.plots import hierarchy_png
from dagster_project.core.report import HOVER_POINTS, MAP_POINTS, render_report, stratified_sample
from dagster_project.core.topics import topic_hierarchy


def test_stratified_sample_is_bounded_and_keeps_every_cluster():
    clusters = np.r_[np.zeros(100_000, int), np.arange(1, 51), np.full(5_000, -1)]
    frame = pd.DataFrame({"topic_id": clusters, "x": 0.0})
    sample = stratified_sample(frame, 2_000)
    assert len(sample) <= 2_000 + 51 and set(sample["topic_id"]) == set(clusters)
    assert abs((sample["topic_id"] == 0).mean() - 100_000 / len(frame)) < 0.03
    assert stratified_sample(frame.head(10), 2_000).equals(frame.head(10))


def test_report_of_a_million_sentences_stays_small_and_labels_its_maps():
    """Seven algorithms of 1,000 topics over 1,000,000 sentences: under 5 MB, every topic drawn on each map."""
    rng = np.random.default_rng(0)
    n, k = 1_000_000, 1_000
    clusters = np.minimum(rng.zipf(1.3, n) - 2, k - 1)  # a few large topics, a long tail, some noise (-1)
    points = pd.DataFrame({"sentence_id": np.arange(n), "x": rng.normal(size=n), "y": rng.normal(size=n),
                           "topic_id": clusters})
    ids = np.arange(-1, k)
    summary = pd.DataFrame({"topic_id": ids, "size": np.bincount(clusters + 1, minlength=k + 1),
                            "share": 0.001, "label": [f"keyword{i}, other, third" for i in ids],
                            "keywords": [["keyword"] * 8] * len(ids),
                            "representative_sentences": [["a representative sentence " * 6] * 3] * len(ids)})
    vectors = rng.normal(size=(20_000, 16))
    tree = topic_hierarchy(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), rng.integers(0, k, 20_000))
    picture = hierarchy_png(tree, {i: f"keyword{i}" for i in range(k)}, "hierarchy")
    drawn = stratified_sample(points, MAP_POINTS)
    hover = drawn.sample(HOVER_POINTS, random_state=0).index
    drawn = drawn.assign(text=pd.Series("a sentence " * 30, index=hover))
    algorithms = {f"algorithm{i}": {"summary": summary, "points": drawn, "hierarchy_png": picture} for i in range(7)}
    page = render_report("report", pd.DataFrame({"algorithm": ["algorithm0"], "nmi": [0.5]}), algorithms)
    assert len(page.encode()) < 5_000_000
    assert set(drawn["topic_id"]) == set(clusters)
    assert page.count("</title></circle>") == 7 * len(hover)
    largest = summary[summary["topic_id"] >= 0].nlargest(3, "size")["topic_id"]
    for cluster in largest:  # labelled on the map and in the legend
        assert re.search(rf'class="label">{cluster}: keyword{cluster}', page)
        assert f"{cluster}: keyword{cluster}, other, third (" in page


def test_map_labels_stay_apart_and_inside_the_map():
    from dagster_project.core.report import _place_labels

    crowded = [(5.0 + 7 * i, 300.0 + 3 * i, f"{i}: a fairly long topic label") for i in range(8)]
    placed = _place_labels(crowded, 640)
    halves = [3.3 * len(text) + 4 for _, _, text in placed]
    assert all(half <= x <= 640 - half and 0 < y <= 640 for (x, y, _), half in zip(placed, halves))
    for a in range(len(placed)):
        for b in range(a):
            (xa, ya, _), (xb, yb, _) = placed[a], placed[b]
            assert abs(ya - yb) >= 16 or abs(xa - xb) >= halves[a] + halves[b]
