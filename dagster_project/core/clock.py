"""One clock: every time the product stores is UTC, without a zone (DuckDB TIMESTAMP)."""

from __future__ import annotations

import pandas as pd


def utc_now() -> pd.Timestamp:
    """Now, in UTC, zone dropped: comparable with the input's timestamps, which are stored converted to UTC."""
    return pd.Timestamp.now(tz="UTC").tz_localize(None)
