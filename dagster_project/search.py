"""More like this: the stored sentences most similar to a text, with their topics.

    python -m dagster_project.search "refund not received" [--top 10] [--algorithm kmeans]

Embeds the text with the pipeline's own model (EMBEDDING_MODEL, as the assets do) and searches the index that
`sentence_neighbors` keeps beside the warehouse (DUCKDB_PATH). Topics are the recommended clustering's unless
--algorithm names another.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg
import numpy as np
import pandas as pd

from .assets.neighbors import index_path
from .core.neighbors import ShardedIndex
from .definitions import build_resources


def more_like(text: str, top: int, algorithm: str | None) -> tuple[pd.DataFrame, str | None]:
    """The `top` sentences most similar to `text` (similarity, sentence_id, topic_id, topic, text) and the
    clustering their topics come from."""
    with dg.build_resources(build_resources()) as resources:  # EnvVar settings resolved as in a run
        warehouse, embedder = resources.warehouse, resources.embedder
        path = index_path(warehouse.database, embedder.model_key)
        vector = embedder.encode([text])
    index = ShardedIndex(path, vector.shape[1])
    if index.created:
        raise SystemExit(f"No neighbour index for model '{embedder.model_key}' at {path}: materialize "
                         "sentence_neighbors first (make run, or the refresh_everything job).")
    found, similarity = index.search(np.array([-1]), vector[:1], top)  # key -1: no stored sentence is left out
    found = pd.DataFrame({"sentence_id": found[0], "similarity": similarity[0]})
    found = found[found["sentence_id"] >= 0]
    if algorithm is None:
        lead = warehouse.query("SELECT algorithm FROM recommended")["algorithm"]
        algorithm = lead.iloc[0] if len(lead) else None
    rows = warehouse.query(
        """SELECT s.sentence_id, a.topic_id, t.label AS topic, s.text FROM sentences s
           LEFT JOIN cluster_assignments a ON a.sentence_id = s.sentence_id AND a.algorithm = ?
           LEFT JOIN topic_summaries t ON t.algorithm = a.algorithm AND t.topic_id = a.topic_id
           WHERE list_contains(?, s.sentence_id)""", [algorithm, found["sentence_id"].tolist()])
    return found.merge(rows, on="sentence_id").sort_values("similarity", ascending=False), algorithm


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.search", description=__doc__.split("\n")[0])
    parser.add_argument("text")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--algorithm", default=None, help="the clustering whose topics to show")
    args = parser.parse_args(argv)
    found, algorithm = more_like(args.text, args.top, args.algorithm)
    print(f"Most similar to {args.text!r} (topics: {algorithm or 'no clustering yet'}):")
    print(found.round(3).to_string(index=False) if len(found) else "no sentences stored")


if __name__ == "__main__":
    main(sys.argv[1:])
