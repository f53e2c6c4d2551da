"""Figures as PNG bytes (matplotlib, headless)."""

from __future__ import annotations

import base64
import io

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


def k_selection_png(silhouette_by_k: dict, inertia_by_k: dict, chosen: int) -> bytes:
    """Silhouette and inertia (elbow) per k, the chosen k marked."""
    figure, left = plt.subplots(figsize=(7, 3.6))
    ks = sorted(int(k) for k in inertia_by_k)
    right = left.twinx()
    right.plot(ks, [inertia_by_k[k] for k in ks], "o-", color="#999999", label="inertia (elbow)")
    scored = sorted(int(k) for k in silhouette_by_k)
    left.plot(scored, [silhouette_by_k[k] for k in scored], "o-", color="#1f77b4", label="silhouette")
    left.axvline(chosen, color="#d62728", linestyle="--", label=f"chosen k = {chosen}")
    left.set_xlabel("k (clusters)")
    left.set_ylabel("cosine silhouette (sample)", color="#1f77b4")
    right.set_ylabel("inertia", color="#777777")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = left.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    left.legend(handles=handles, loc="upper right", fontsize=9)
    left.set_title("Choosing k")
    return figure_png(figure)
