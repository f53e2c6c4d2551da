"""The recommended clustering per labelled dataset, from the labels `benchmarks/quality.py --labels-out DIR` wrote.

    python benchmarks/quality.py --labels-out data/labels && python benchmarks/recommended.py data/labels

For each dataset: which clustering `dagster_project.core.recommend` picks without labels (of those with at most 20%
noise, the one agreeing best with the others by mean ARI), its NMI against the labels, as a share of the
reference's (KMeans told the labels' k), against BERTopic's and EVoC's when they ran; and, for comparison, the
pick the same rule makes with NMI as the agreement between clusterings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dagster_project.core import recommend as rule  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS  # noqa: E402


def by_nmi(partitions: dict[str, np.ndarray]) -> pd.Series:
    names = list(partitions)
    return pd.Series({a: np.mean([normalized_mutual_info_score(partitions[a], partitions[b])
                                  for b in names if b != a]) for a in names}).sort_values(ascending=False)


def main() -> None:
    rows = []
    for path in sorted(Path(sys.argv[1]).glob("*.npz")):
        found = np.load(path, allow_pickle=True)
        truth = found["truth"]
        nmi = {name: normalized_mutual_info_score(truth, found[name]) for name in found.files if name != "truth"}
        ours = {name: found[name] for name in ALGORITHMS if name in found.files}
        pick, _, _ = rule.recommend(ours)
        agreement = rule.agreement
        rule.agreement = by_nmi  # the same rule with NMI as the agreement
        nmi_pick, _, _ = rule.recommend(ours)
        rule.agreement = agreement
        reference = nmi["reference"]
        rows.append({"dataset": path.stem, "recommended": pick, "NMI": nmi[pick],
                     "NMI / reference": nmi[pick] / reference,
                     "BERTopic NMI": nmi.get("bertopic"), "EVoC NMI": nmi.get("evoc"),
                     "by NMI agreement": nmi_pick, "its NMI / reference": nmi[nmi_pick] / reference})
    table = pd.DataFrame(rows)
    print(table.round(3).to_markdown(index=False))
    print(f"\nmedian NMI / reference: {table['NMI / reference'].median():.3f} (ARI agreement), "
          f"{table['its NMI / reference'].median():.3f} (NMI agreement)")


if __name__ == "__main__":
    main()
