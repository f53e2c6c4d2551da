"""The recommended clustering per labelled dataset, from the labels `benchmarks/quality.py --labels-out DIR` wrote.

    python benchmarks/quality.py --labels-out data/labels && python benchmarks/recommended.py data/labels

For each dataset: which clustering `dagster_project.core.recommend` picks without labels among those the scheduled
refresh runs (of those with at most 20% noise, the one agreeing best with the other kinds of clustering by mean
ARI), its NMI against the labels, as a share of the reference's (KMeans told the labels' k), against BERTopic's
and EVoC's when they ran; and, for comparison, the pick of the same rule with every clustering its own kind (so
that k-means and mini-batch k-means count as two independent votes, as the rule did before), and with NMI as the
agreement between clusterings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dagster_project.core.clustering import SCHEDULED  # noqa: E402
from dagster_project.core.recommend import recommend  # noqa: E402


def main() -> None:
    rows = []
    for path in sorted(Path(sys.argv[1]).glob("*.npz")):
        found = np.load(path, allow_pickle=True)
        truth = found["truth"]
        nmi = {name: normalized_mutual_info_score(truth, found[name]) for name in found.files if name != "truth"}
        ours = {name: found[name] for name in SCHEDULED if name in found.files}
        pick, _, _ = recommend(ours)
        own_kind, _, _ = recommend(ours, family={})  # every clustering its own kind
        nmi_pick, _, _ = recommend(ours, normalized_mutual_info_score)  # the same rule, NMI as the agreement
        reference = nmi["reference"]
        rows.append({"dataset": path.stem, "recommended": pick, "NMI": nmi[pick],
                     "NMI / reference": nmi[pick] / reference,
                     "BERTopic NMI": nmi.get("bertopic"), "EVoC NMI": nmi.get("evoc"),
                     "each its own kind": own_kind, "its NMI / ref.": nmi[own_kind] / reference,
                     "by NMI agreement": nmi_pick, "its NMI / reference": nmi[nmi_pick] / reference})
    table = pd.DataFrame(rows)
    print(table.round(3).to_markdown(index=False))
    print(f"\nmedian NMI / reference: {table['NMI / reference'].median():.3f} (the rule), "
          f"{table['its NMI / ref.'].median():.3f} (each its own kind), "
          f"{table['its NMI / reference'].median():.3f} (NMI agreement); lowest {table['NMI / reference'].min():.3f} "
          f"(the rule)")


if __name__ == "__main__":
    main()
