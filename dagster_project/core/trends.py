"""Topics over time: which grew fastest in the latest period."""

from __future__ import annotations

import pandas as pd


def rising_topics(trends: pd.DataFrame, limit: int = 5) -> pd.DataFrame:
    """The topics (noise left out) whose share of the sentences grew most from the previous period to the latest
    one (trends: topic_id, period, sentences): topic_id, previous and latest sentences and shares, change in
    share (percentage points). Empty with fewer than two periods."""
    periods = sorted(trends["period"].unique())
    if len(periods) < 2:
        return pd.DataFrame(columns=["topic_id", "previous", "latest", "previous_share", "latest_share", "change"])
    table = trends.pivot_table(index="topic_id", columns="period", values="sentences", aggfunc="sum", fill_value=0)
    before, now = table.get(periods[-2], 0), table[periods[-1]]
    out = pd.DataFrame({"previous": before, "latest": now,
                        "previous_share": before / max(before.sum(), 1), "latest_share": now / max(now.sum(), 1)})
    out["change"] = (out["latest_share"] - out["previous_share"]) * 100
    out = out[out.index >= 0].sort_values(["change", "latest"], ascending=False).head(limit)
    return out.reset_index().rename(columns={"index": "topic_id"})


def rising_markdown(trends: pd.DataFrame, names: dict[int, str], period: str) -> str:
    """`rising_topics` as a markdown table, labelled by `names` (topic_id -> label)."""
    rising = rising_topics(trends).assign(label=lambda t: t["topic_id"].map(names))
    if not len(rising):
        return f"one {period} of sentences so far"
    return rising[["topic_id", "label", "previous", "latest", "change"]].round(2).to_markdown(index=False)
