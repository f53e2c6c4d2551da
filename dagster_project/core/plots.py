"""Figures as PNG bytes (matplotlib, headless)."""

from __future__ import annotations

import base64
import io

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Inline PNG as markdown (how Dagster metadata shows pictures)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def k_selection_png(silhouette_by_k: dict, inertia_by_k: dict | None, chosen: int, communities: int | None = None,
                    silhouette_label: str = "cosine silhouette (sample)") -> bytes:
    """Silhouette and, when given, inertia (elbow) per number of clusters, the chosen one and the graph's
    community count (the least k searched) marked."""
    figure, left = plt.subplots(figsize=(7, 3.6))
    scored = sorted(int(k) for k in silhouette_by_k)
    left.plot(scored, [silhouette_by_k[k] for k in scored], "o-", color="#1f77b4", label="silhouette")
    left.axvline(chosen, color="#d62728", linestyle="--", label=f"chosen k = {chosen}")
    if communities:
        left.axvline(communities, color="#2ca02c", linestyle=":", label=f"graph communities = {communities}")
    left.set_xlabel("k (clusters)")
    left.set_ylabel(silhouette_label, color="#1f77b4")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = left.get_legend_handles_labels()[0]
    if inertia_by_k:
        right = left.twinx()
        ks = sorted(int(k) for k in inertia_by_k)
        right.plot(ks, [inertia_by_k[k] for k in ks], "o-", color="#999999", label="inertia (elbow)")
        right.set_ylabel("inertia", color="#777777")
        handles += right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="upper right", fontsize=9)
    left.set_title("Choosing k")
    return figure_png(figure)


def selection_figures(details: dict) -> dict[str, str]:
    """The automatic choice of k of a fit, as a markdown picture: silhouette and inertia per k."""
    if "silhouette_by_k" in details:
        png = k_selection_png(details["silhouette_by_k"], details["inertia_by_k"], details["n_clusters"],
                              details.get("communities"))
        return {"k_selection": markdown_image(png, "silhouette and inertia per k")}
    return {}


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def topic_map_figure(xy, labels, topic_labels: dict[int, str], title: str, max_points: int = 20_000,
                     max_labels: int = 12):
    """Sentences in 2-D coloured by cluster (noise grey), the largest topics labelled near their centres, the
    labels moved apart by adjustText so none hides another."""
    import numpy as np
    from adjustText import adjust_text

    xy, labels = np.asarray(xy), np.asarray(labels)
    if len(xy) > max_points:
        keep = np.random.default_rng(0).choice(len(xy), max_points, replace=False)
        xy, labels = xy[keep], labels[keep]
    figure, axes = plt.subplots(figsize=(9, 6.5))
    noise = labels < 0
    axes.scatter(xy[noise, 0], xy[noise, 1], s=6, c="#cccccc", label="noise", linewidths=0)
    palette = plt.get_cmap("tab20")
    clusters, counts = np.unique(labels[~noise], return_counts=True)
    for cluster in clusters:
        points = xy[labels == cluster]
        axes.scatter(points[:, 0], points[:, 1], s=8, color=palette(int(cluster) % 20), linewidths=0, alpha=0.8)
    texts = []
    for cluster in clusters[np.argsort(-counts)][:max_labels]:
        cx, cy = np.median(xy[labels == cluster], axis=0)
        texts.append(axes.text(cx, cy, _shorten(topic_labels.get(int(cluster), str(cluster)), 34), fontsize=9,
                               ha="center", va="center",
                               bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": palette(int(cluster) % 20),
                                     "alpha": 0.85}))
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    if texts:
        adjust_text(texts, ax=axes, expand=(1.2, 1.8), arrowprops={"arrowstyle": "-", "color": "#555", "lw": 0.6})
    return figure


def topic_map_png(xy, labels, topic_labels: dict[int, str], title: str, max_points: int = 20_000,
                  max_labels: int = 12) -> bytes:
    """The topic map (`topic_map_figure`) as PNG."""
    return figure_png(topic_map_figure(xy, labels, topic_labels, title, max_points, max_labels))


def top_topics_png(summary, title: str, limit: int = 12) -> bytes:
    """Horizontal bars of the biggest topics' sizes, each with its top keywords."""
    topics = summary[summary["cluster_id"] >= 0].head(limit).iloc[::-1]
    figure, axes = plt.subplots(figsize=(9, 0.45 * max(len(topics), 2) + 1.2))
    names = [_shorten(f"{r.topic_id}: {r.label}", 60) for r in topics.itertuples()]
    axes.barh(names, topics["size"], color="#1f77b4")
    for y, size in enumerate(topics["size"]):
        axes.text(size, y, f" {size}", va="center", fontsize=9)
    axes.set_xlabel("sentences")
    axes.set_title(title)
    axes.tick_params(axis="y", labelsize=10)
    return figure_png(figure)


def hierarchy_png(hierarchy, topic_labels: dict[int, str], title: str, max_leaves: int = 60) -> bytes | None:
    """Dendrogram of the topic merges (rows of `topic_hierarchy`); above `max_leaves` topics, its top
    `max_leaves` branches (each with its topic count), so the picture stays readable and small."""
    import numpy as np
    from scipy.cluster.hierarchy import dendrogram

    if hierarchy.empty:
        return None
    joined = set(hierarchy["left"].astype(int)) | set(hierarchy["right"].astype(int))
    leaves = sorted(joined - set(hierarchy["merge_id"].astype(int)))  # the topics it joins (the largest, if capped)
    position = {cluster: i for i, cluster in enumerate(leaves)}
    n = len(leaves)
    leaf_count = {cluster: 1 for cluster in leaves}
    rows = []
    for i, r in enumerate(hierarchy.itertuples()):
        position[int(r.merge_id)] = n + i
        leaf_count[int(r.merge_id)] = leaf_count[int(r.left)] + leaf_count[int(r.right)]
        rows.append([position[int(r.left)], position[int(r.right)], r.distance, leaf_count[int(r.merge_id)]])
    matrix = np.array(rows, dtype=float)
    matrix[:, 2] = np.maximum.accumulate(matrix[:, 2])  # guard against float non-monotonicity
    truncated = n > max_leaves
    figure, axes = plt.subplots(figsize=(9, 0.3 * min(n, max_leaves) + 1.5))
    dendrogram(matrix, orientation="right", ax=axes, truncate_mode="lastp" if truncated else None, p=max_leaves,
               labels=[_shorten(topic_labels[c], 40) for c in leaves], leaf_font_size=9)
    axes.set_xlabel("cosine distance between topic centroids (average linkage)")
    axes.set_title(f"{title} (top {max_leaves} branches of {n} topics; (n): topics in a branch)" if truncated
                   else title)
    return figure_png(figure)


def topic_names(summary) -> dict[int, str]:
    """What the pictures call each cluster of a summary: its topic id and label (the curated one when there is
    one), as the tables do."""
    return {int(r.cluster_id): f"{r.topic_id}: {r.label}" for r in summary.itertuples() if r.cluster_id >= 0}


def summary_figures(name: str, summary, labels: np.ndarray, hierarchy, points: np.ndarray | None) -> dict[str, bytes]:
    """The map of the sentences by topic (when `points` hold every sentence's x, y) and the topic hierarchy of one
    clustering's summary (cluster_id, topic_id, label)."""
    names = topic_names(summary)
    figures = {}
    if points is not None:
        figures["topic_map"] = topic_map_png(points, labels, names, f"{name}: sentences by topic")
    tree = hierarchy_png(hierarchy, names, f"{name}: topic hierarchy")
    if tree:
        figures["topic_hierarchy"] = tree
    return figures


def trends_png(trends, names: dict[int, str], title: str, limit: int = 8) -> bytes | None:
    """Sentences per period of the `limit` largest topics (trends: topic_id, period, sentences); None with fewer
    than two periods."""
    periods = sorted(trends["period"].unique())
    if len(periods) < 2:
        return None
    table = trends[trends["topic_id"] >= 0].pivot_table(index="period", columns="topic_id", values="sentences",
                                                       aggfunc="sum", fill_value=0).reindex(periods, fill_value=0)
    largest = table.sum().sort_values(ascending=False).index[:limit]
    figure, axis = plt.subplots(figsize=(8, 3.8))
    for topic in largest:
        axis.plot(table.index, table[topic], "o-", markersize=3, label=_shorten(f"{topic}: {names.get(topic, '')}", 40))
    axis.set_ylabel("sentences")
    axis.set_title(title)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.autofmt_xdate()
    return figure_png(figure)
