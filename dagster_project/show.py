"""Print the top topics per algorithm and the metrics from the warehouse: python -m dagster_project.show"""

import argparse

import duckdb
from filelock import FileLock

from .settings import DUCKDB_PATH
from .resources.warehouse import FAILED_FITS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default=DUCKDB_PATH.value())
    parser.add_argument("--topics", type=int, default=5, help="topics shown per algorithm")
    args = parser.parse_args()
    # The pipeline's own lock: wait for a running write instead of failing on DuckDB's file lock.
    with FileLock(f"{args.database}.lock", timeout=900), duckdb.connect(args.database, read_only=True) as conn:
        lead = conn.execute("SELECT algorithm, reason FROM recommended").fetchall() if conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'recommended'").fetchall()[0][0] else []
        first = lead[0][0] if lead else None
        if lead:
            print(f"Recommended: {first} ({lead[0][1]})\n")
        print(f"Warehouse {args.database}:")
        for (table,) in conn.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall():
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0]  # names from the catalog
            print(f"  {table:<22}{count:>8} rows")
        metrics = conn.execute(
            """SELECT algorithm, n_clusters, round(noise_fraction, 3) AS noise, round(silhouette, 3) AS silhouette,
                      round(coherence_npmi, 3) AS coherence, round(topic_diversity, 3) AS diversity,
                      round(nmi, 3) AS nmi, round(seconds, 2) AS seconds
               FROM clustering_metrics QUALIFY row_number() OVER (PARTITION BY algorithm
                                                                  ORDER BY materialized_at DESC) = 1
               ORDER BY algorithm IS DISTINCT FROM ?, nmi DESC NULLS LAST, silhouette DESC""", [first]
        ).df()
        print("\nLatest metrics per algorithm:\n" + metrics.to_string(index=False))
        for algorithm, reason in conn.execute(FAILED_FITS).fetchall():
            print(f"{algorithm} could not run in the latest refresh (metrics above are older): {reason}")
        topics = conn.execute(
            """SELECT algorithm, topic_id, size, label, keywords FROM topic_summaries
               WHERE topic_id >= 0
               QUALIFY row_number() OVER (PARTITION BY algorithm ORDER BY size DESC, topic_id) <= ?
               ORDER BY algorithm IS DISTINCT FROM ?, algorithm, size DESC, topic_id""",
            [args.topics, first],
        ).fetchall()
    current = None
    for algorithm, topic_id, size, label, keywords in topics:
        if algorithm != current:
            current = algorithm
            print(f"\nTop topics, {algorithm}{' (recommended)' if algorithm == first else ''}:")
        print(f"  #{topic_id:<3} {size:>6}  {label:<40} {', '.join(keywords[3:8])}")


if __name__ == "__main__":
    main()
