import numpy as np
import pytest

from dagster_project.core.plots import topic_map_figure


@pytest.mark.parametrize("seed", range(4))
def test_topic_map_labels_do_not_overlap(seed):
    """Twelve crowded topics: every label drawn, no label's box over another's."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(12), 100)
    xy = (rng.normal(size=(12, 2)) * 0.3)[labels] + rng.normal(size=(len(labels), 2)) * 0.2
    figure = topic_map_figure(xy, labels, {i: f"{100 + i}: topic with a long label" for i in range(12)}, "map")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    texts = figure.axes[0].texts
    assert sorted(t.get_text().split(":")[0] for t in texts) == sorted(str(100 + i) for i in range(12))
    boxes = [t.get_bbox_patch().get_window_extent(renderer) for t in texts]
    overlapping = [(a, b) for a in range(len(boxes)) for b in range(a) if boxes[a].overlaps(boxes[b])]
    assert not overlapping, overlapping
