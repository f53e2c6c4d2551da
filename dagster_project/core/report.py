"""A self-contained HTML report: no script, no stylesheet or font from the network; opens offline."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f4f4f4}
svg circle:hover{stroke:#000;stroke-width:1.5}.muted{color:#777}details{margin:8px 0}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def svg_map(points: pd.DataFrame, topic_labels: dict[int, str], size: int = 640, max_points: int = 5000) -> str:
    """Scatter of `points` (x, y, cluster_id, text) as inline SVG; hovering a point shows sentence and topic."""
    if len(points) > max_points:
        points = points.sample(max_points, random_state=0)
    if points.empty:
        return "<p class='muted'>no sentences</p>"
    x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
    span = max(np.ptp(x), np.ptp(y), 1e-9)
    px = 10 + (x - x.min()) / span * (size - 20)
    py = size - 10 - (y - y.min()) / span * (size - 20)
    circles = []
    for cx, cy, cluster, text in zip(px, py, points["cluster_id"], points["text"]):
        colour = "#bbbbbb" if cluster < 0 else PALETTE[int(cluster) % len(PALETTE)]
        topic = "noise" if cluster < 0 else f"{cluster}: {topic_labels.get(int(cluster), '')}"
        circles.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}" fill-opacity="0.75">'
                       f"<title>{_e(text)}\n[{_e(topic)}]</title></circle>")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'style="border:1px solid #ddd">{"".join(circles)}</svg>')


def topics_table(summary: pd.DataFrame) -> str:
    rows = ["<tr><th>cluster</th><th>size</th><th>share</th><th>label</th><th>keywords</th>"
            "<th>representative sentences</th></tr>"]
    for r in summary.itertuples():
        sentences = "".join(f"<li>{_e(s)}</li>" for s in r.representative_sentences)
        rows.append(f"<tr><td>{r.cluster_id}</td><td>{r.size}</td><td>{r.share:.1%}</td><td>{_e(r.label)}</td>"
                    f"<td>{_e(', '.join(r.keywords))}</td><td><ul>{sentences}</ul></td></tr>")
    return f"<table>{''.join(rows)}</table>"


def frame_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e('' if pd.isna(v) else (round(v, 3) if isinstance(v, float) else v))}</td>"
                                    for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def render_report(title: str, metrics: pd.DataFrame, algorithms: dict[str, dict]) -> str:
    """`algorithms`: name -> {"summary": topic rows, "points": x, y, cluster_id, text, "hierarchy_png": bytes|None}."""
    import base64

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>",
             "<h2>Metrics, side by side</h2>", frame_table(metrics)]
    for name, data in algorithms.items():
        summary = data["summary"]
        labels = {int(r.cluster_id): r.label for r in summary.itertuples()}
        parts += [f"<h2 id='{_e(name)}'>{_e(name)}</h2>",
                  "<p class='muted'>Hover a point for its sentence and topic.</p>",
                  svg_map(data["points"], labels), "<details open><summary>Topics</summary>",
                  topics_table(summary), "</details>"]
        if data.get("hierarchy_png"):
            encoded = base64.b64encode(data["hierarchy_png"]).decode()
            parts += ["<details><summary>Topic hierarchy (which topics merge first)</summary>",
                      f"<img alt='topic hierarchy of {_e(name)}' src='data:image/png;base64,{encoded}'></details>"]
    parts.append("</body></html>")
    return "\n".join(parts)
