"""The clustering the product leads with, chosen without labels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

MAX_NOISE = 0.2  # a clustering that leaves more of the corpus in no topic is not recommended
NEAR_BEST = 0.05  # clusterings whose agreement is within this share of the best count as agreeing as well


Score = Callable[[np.ndarray, np.ndarray], float]


def agreement(partitions: dict[str, np.ndarray], score: Score = adjusted_rand_score) -> pd.Series:
    """For each clustering, its mean adjusted Rand index with every other one of the same sentences (noise as one
    group). ARI rather than NMI: NMI between two partitions rises with their cluster counts, so the k-means
    variants, which split finest, would agree best with everything (measured: see docs/benchmarks.md)."""
    names = list(partitions)
    scores = {a: np.mean([score(partitions[a], partitions[b]) for b in names if b != a])
              for a in names} if len(names) > 1 else {a: 1.0 for a in names}
    return pd.Series(scores, dtype=float).sort_values(ascending=False)


def recommend(partitions: dict[str, np.ndarray],
              score: Score = adjusted_rand_score) -> tuple[str | None, str, pd.DataFrame]:
    """(algorithm, reason, the evidence per algorithm) among the clusterings of the current sentences: of those
    with at most MAX_NOISE noise and two clusters or more, the one that agrees best with the others (mean
    adjusted Rand index, or `score`), the answer the methods share; of those within NEAR_BEST of the best, the
    one with the fewest clusters (as readable, and the finest split agrees by a hair more with everything). None
    when no clustering qualifies."""
    evidence = pd.DataFrame({
        "algorithm": list(partitions),
        "clusters": [len(np.unique(p[p >= 0])) for p in partitions.values()],
        "noise": [float(np.mean(p < 0)) for p in partitions.values()],
    })
    eligible = evidence[(evidence["noise"] <= MAX_NOISE) & (evidence["clusters"] >= 2)]["algorithm"].tolist()
    if not eligible:
        return None, "no clustering has two clusters or more with at most 20% noise", evidence
    agree = agreement({a: partitions[a] for a in eligible}, score)
    evidence["agreement"] = evidence["algorithm"].map(agree)
    clusters = evidence.set_index("algorithm")["clusters"]
    near = [a for a in agree.index if agree[a] >= agree.iloc[0] - NEAR_BEST * abs(agree.iloc[0])]  # ARI can be < 0
    best = str(min(near, key=lambda a: clusters[a]))  # stable: ties keep the order of agreement
    measure = "ARI" if score is adjusted_rand_score else score.__name__
    compared = ", ".join(a for a in eligible if a != best) or "none"
    if best == agree.index[0]:
        runner_up = f"; next {agree.index[1]} ({agree.iloc[1]:.3f})" if len(agree) > 1 else ""
        reason = (f"agrees best with the other clusterings of the corpus with at most {MAX_NOISE:.0%} noise "
                  f"(mean {measure} {agree[best]:.3f} with {compared}{runner_up})")
    else:
        reason = (f"agrees with the other clusterings of the corpus with at most {MAX_NOISE:.0%} noise within "
                  f"{NEAR_BEST:.0%} of the best (mean {measure} {agree[best]:.3f} with {compared}; "
                  f"{agree.index[0]} {agree.iloc[0]:.3f}) and has the fewest clusters of those ({clusters[best]})")
    return best, reason, evidence.sort_values("agreement", ascending=False, na_position="last", ignore_index=True)
