"""The clustering the product leads with, chosen without labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from .clustering import FAMILY

MAX_NOISE = 0.2  # a clustering that leaves more of the corpus in no topic is not recommended
NEAR_BEST = 0.05  # clusterings whose agreement is within this share of the best count as agreeing as well


Score = Callable[[np.ndarray, np.ndarray], float]


def agreement(partitions: dict[str, np.ndarray], score: Score = adjusted_rand_score,
              family: dict[str, str] | None = None) -> pd.Series:
    """For each clustering, its agreement with the clusterings of every other family (mean over the families of
    its mean adjusted Rand index with their members; noise as one group). Clusterings of one family (`family`:
    name -> family, default each its own; k-means and mini-batch k-means are one) share their objective and their
    failures, so their agreement with each other is no evidence. ARI rather than NMI: NMI between two partitions
    rises with their cluster counts, so the finest split would agree best with everything (measured: see
    docs/benchmarks.md)."""
    family = family or {}
    kin = {a: family.get(a, a) for a in partitions}
    scores = {}
    for a in partitions:
        others = {}
        for b in partitions:
            if kin[b] != kin[a]:
                others.setdefault(kin[b], []).append(score(partitions[a], partitions[b]))
        scores[a] = float(np.mean([np.mean(v) for v in others.values()])) if others else 1.0
    return pd.Series(scores, dtype=float).sort_values(ascending=False)


def recommend(partitions: dict[str, np.ndarray], score: Score = adjusted_rand_score, previous: str | None = None,
              family: dict[str, str] | None = None) -> tuple[str | None, str, pd.DataFrame]:
    """(algorithm, reason, the evidence per algorithm) among the clusterings of the current sentences: of those
    with at most MAX_NOISE noise and two clusters or more, the one that agrees best with the other families'
    (`agreement`), the answer independent methods share. Of those within NEAR_BEST of the best, the `previous`
    pick when it is one of them (the lead changes only on a real margin), else the one with the fewest clusters
    (as readable, and the finest split agrees by a hair more with everything). None when no clustering
    qualifies."""
    family = FAMILY if family is None else family
    evidence = pd.DataFrame({
        "algorithm": list(partitions),
        "clusters": [len(np.unique(p[p >= 0])) for p in partitions.values()],
        "noise": [float(np.mean(p < 0)) for p in partitions.values()],
    })
    eligible = evidence[(evidence["noise"] <= MAX_NOISE) & (evidence["clusters"] >= 2)]["algorithm"].tolist()
    if not eligible:
        return None, "no clustering has two clusters or more with at most 20% noise", evidence
    agree = agreement({a: partitions[a] for a in eligible}, score, family)
    evidence["agreement"] = evidence["algorithm"].map(agree)
    clusters = evidence.set_index("algorithm")["clusters"]
    near = [a for a in agree.index if agree[a] >= agree.iloc[0] - NEAR_BEST * abs(agree.iloc[0])]  # ARI can be < 0
    kept = previous in near
    best = previous if kept else str(min(near, key=lambda a: clusters[a]))  # stable: ties keep agreement's order
    measure = "ARI" if score is adjusted_rand_score else score.__name__
    compared = ", ".join(a for a in eligible if family.get(a, a) != family.get(best, best)) or "none"
    if best == agree.index[0]:
        runner_up = f"; next {agree.index[1]} ({agree.iloc[1]:.3f})" if len(agree) > 1 else ""
        reason = (f"agrees best with the other kinds of clustering of the corpus with at most {MAX_NOISE:.0%} noise "
                  f"(mean {measure} {agree[best]:.3f} with {compared}{runner_up})")
    else:
        reason = (f"agrees with the other kinds of clustering of the corpus with at most {MAX_NOISE:.0%} noise "
                  f"within {NEAR_BEST:.0%} of the best (mean {measure} {agree[best]:.3f} with {compared}; "
                  f"{agree.index[0]} {agree.iloc[0]:.3f})" +
                  ("" if kept else f" and has the fewest clusters of those ({clusters[best]})"))
    if kept:
        reason += "; recommended before and kept: the lead changes only on a margin over NEAR_BEST".replace(
            "NEAR_BEST", f"{NEAR_BEST:.0%}")
    return best, reason, evidence.sort_values("agreement", ascending=False, na_position="last", ignore_index=True)
