"""A self-contained HTML report: no script, no stylesheet or font from the network; opens offline."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .assign import stratified_rows

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f4f4f4}
svg circle:hover{stroke:#000;stroke-width:1.5}.muted{color:#777}details{margin:8px 0}
.map{display:flex;gap:16px;align-items:flex-start}.legend{list-style:none;padding:0;font-size:12px;margin:0}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:5px}
svg path{stroke-width:5px;stroke-linecap:round;stroke-opacity:.6;fill:none}
svg .label{font-size:11px;text-anchor:middle;paint-order:stroke;stroke:#fff;stroke-width:3px;fill:#222}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


MAP_POINTS = 20_000  # drawn per algorithm, whatever the corpus's size
HOVER_POINTS = 600  # of those, a random sample that shows its sentences on hover
HOVER_CHARS = 160
LABELLED_TOPICS = 12  # the largest topics get their label on the map; the legend lists LEGEND_TOPICS
LEGEND_TOPICS = 30


def stratified_sample(frame: pd.DataFrame, limit: int, seed: int = 0) -> pd.DataFrame:
    """At most about `limit` rows, each cluster in proportion to its size and every cluster with one row at least."""
    return frame.iloc[stratified_rows(frame["topic_id"].to_numpy(), limit, seed)]


def _colour(cluster: int) -> str:
    return "#bbbbbb" if cluster < 0 else PALETTE[cluster % len(PALETTE)]


def _place_labels(centres: list[tuple[float, float, str]], size: int) -> list[tuple[float, float, str]]:
    """Move each label down (or up) from its centre until its box clears the labels placed before it, and
    inside the map."""
    placed: list[tuple[float, float, float, str]] = []
    for x, y, text in centres:
        half = 3.3 * len(text) + 4
        x = min(max(x, half), size - half)  # inside the map
        for step in [0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6]:
            ty = min(max(y + 16 * step, 12), size - 6)
            if all(abs(ty - py) >= 16 or abs(x - px) >= half + ph for px, py, ph, _ in placed):
                break
        placed.append((x, ty, half, text))
    return [(x, y, text) for x, y, _, text in placed]


def svg_map(points: pd.DataFrame, topics: pd.DataFrame, size: int = 640) -> str:
    """Inline SVG of `points` (x, y, topic_id, text: None except on the hover sample), drawn as one path per
    topic; points with a text show it and their topic on hover; the largest `topics` (topic_id, label, size)
    labelled at their centres. Its size is bounded by the points given, not by the corpus."""
    if points.empty:
        return "<p class='muted'>no sentences</p>"
    x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
    span = max(np.ptp(x), np.ptp(y), 1e-9)
    frame = points.assign(px=10 + (x - x.min()) / span * (size - 20), py=size - 10 - (y - y.min()) / span * (size - 20))
    labels = {int(r.topic_id): r.label for r in topics.itertuples()}
    parts = []
    for cluster, group in frame.groupby("topic_id"):
        moves = "".join(f"M{px:.0f} {py:.0f}h0" for px, py in zip(group["px"], group["py"]))
        parts.append(f'<path stroke="{_colour(int(cluster))}" d="{moves}"/>')
    for r in frame[frame["text"].notna()].itertuples():
        cluster = int(r.topic_id)
        topic = "noise" if cluster < 0 else f"{cluster}: {labels.get(cluster, '')}"
        parts.append(f'<circle cx="{r.px:.0f}" cy="{r.py:.0f}" r="3" fill="{_colour(cluster)}">'
                     f"<title>{_e(_clip(r.text, HOVER_CHARS))}\n[{_e(topic)}]</title></circle>")
    largest = topics[topics["topic_id"] >= 0].nlargest(LABELLED_TOPICS, "size")["topic_id"].astype(int)
    medians = frame.groupby("topic_id")[["px", "py"]].median()
    centres = [(float(medians.at[c, "px"]), float(medians.at[c, "py"]), f"{c}: {labels[c][:30]}")
               for c in largest if c in medians.index]
    for lx, ly, text in _place_labels(centres, size):
        parts.append(f'<text x="{lx:.0f}" y="{ly:.0f}" class="label">{_e(text)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'style="border:1px solid #ddd">{"".join(parts)}</svg>')


def legend(topics: pd.DataFrame) -> str:
    """The largest topics with their colour, label and size; the rest counted."""
    shown = topics.nlargest(LEGEND_TOPICS, "size")
    items = "".join(f'<li><span class="swatch" style="background:{_colour(int(r.topic_id))}"></span>'
                    f"{'noise' if r.topic_id < 0 else r.topic_id}: {_e(r.label)} ({r.size})</li>"
                    for r in shown.itertuples())
    rest = len(topics) - len(shown)
    more = f"<li class='muted'>{rest} smaller topics: see the table</li>" if rest > 0 else ""
    return f"<ul class='legend'>{items}{more}</ul>"


TABLE_TOPICS = 200  # the largest topics in the report's table; all of them are in topic_summaries


def topics_table(summary: pd.DataFrame) -> str:
    shown = summary.nlargest(TABLE_TOPICS, "size")
    rest = len(summary) - len(shown)
    more = f"<p class='muted'>{rest} smaller topics: table topic_summaries</p>" if rest > 0 else ""
    rows = ["<tr><th>topic_id</th><th>size</th><th>share</th><th>label</th><th>keywords</th>"
            "<th>representative sentences</th></tr>"]
    for r in shown.itertuples():
        sentences = "".join(f"<li>{_e(_clip(s, 300))}</li>" for s in r.representative_sentences)
        rows.append(f"<tr><td>{r.topic_id}</td><td>{r.size}</td><td>{r.share:.1%}</td><td>{_e(r.label)}</td>"
                    f"<td>{_e(', '.join(r.keywords))}</td><td><ul>{sentences}</ul></td></tr>")
    return f"<table>{''.join(rows)}</table>{more}"


def frame_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e('' if pd.isna(v) else (round(v, 3) if isinstance(v, float) else v))}</td>"
                                    for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def render_report(title: str, metrics: pd.DataFrame, algorithms: dict[str, dict],
                  failed: dict[str, str] | None = None, recommended: tuple[str, str] | None = None) -> str:
    """`algorithms`: name -> {"summary": topic rows, "points": x, y, topic_id, text (None but on the hover
    sample; `stratified_sample` bounds the points), "hierarchy_png" and "trends_png": bytes|None, "rising": the topics
    rising fastest|None}, in the order shown; `recommended`: (algorithm, reason) said first."""
    import base64

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>"]
    if recommended:
        parts.append(f"<p><b>Recommended: <a href='#{_e(recommended[0])}'>{_e(recommended[0])}</a></b> "
                     f"({_e(recommended[1])}). The other clusterings follow it.</p>")
    parts += ["<h2>Metrics, side by side</h2>", frame_table(metrics)]
    if failed:
        parts.append("<p>Could not run in the latest refresh (the others are up to date):</p><ul>" + "".join(
            f"<li><b>{_e(name)}</b>: {_e(reason)}</li>" for name, reason in failed.items()) + "</ul>")
    for name, data in algorithms.items():
        summary = data["summary"]
        drawn = len(data["points"])
        parts += [f"<h2 id='{_e(name)}'>{_e(name)}</h2>",
                  f"<p class='muted'>{drawn:,} sentences drawn (every topic among them); hover a dot for its "
                  "sentence and topic.</p>",
                  f"<div class='map'>{svg_map(data['points'], summary)}{legend(summary)}</div>",
                  "<details open><summary>Topics</summary>",
                  topics_table(summary), "</details>"]
        if data.get("trends_png"):
            encoded = base64.b64encode(data["trends_png"]).decode()
            parts += ["<details open><summary>Largest topics over time</summary>",
                      f"<img alt='topics over time of {_e(name)}' src='data:image/png;base64,{encoded}'></details>"]
        if data.get("rising") is not None and len(data["rising"]):
            parts += ["<details open><summary>Rising fastest in the latest period (change in share, points)"
                      "</summary>", frame_table(data["rising"]), "</details>"]
        if data.get("hierarchy_png"):
            encoded = base64.b64encode(data["hierarchy_png"]).decode()
            parts += ["<details><summary>Topic hierarchy (which topics merge first)</summary>",
                      f"<img alt='topic hierarchy of {_e(name)}' src='data:image/png;base64,{encoded}'></details>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def cluster_sizes_markdown(topic_ids: np.ndarray, limit: int = 15) -> str:
    """The largest topics' sizes as a markdown table (noise named)."""
    ids, counts = np.unique(topic_ids, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:limit]
    rows = [f"| {'noise' if ids[i] < 0 else int(ids[i])} | {int(counts[i])} |" for i in order]
    return "\n".join(["| topic_id | sentences |", "|---|---|", *rows])


def topics_markdown(topics: pd.DataFrame, limit: int = 10) -> str:
    """The first topic summaries as a markdown table: id, size, label, keywords, one example."""
    head = topics.head(limit)
    rows = [
        f"| {r.topic_id} | {r.size} | {r.label} | {', '.join(r.keywords)} | {example} |"
        for r in head.itertuples()
        for example in [r.representative_sentences[0] if len(r.representative_sentences) else ""]
    ]
    return "\n".join(["| topic_id | size | label | keywords | example |", "|---|---|---|---|---|", *rows])
