"""Clusterings and the topics they name: assignments, runs, the topic registry and its events, curation, trends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock


CURATION_COLUMNS = {"algorithm": "VARCHAR", "topic_id": "BIGINT", "label": "VARCHAR", "revision": "BIGINT"}
SEED_COLUMNS = {"algorithm": "VARCHAR", "name": "VARCHAR", "example": "VARCHAR"}


# (algorithm, reason) of every algorithm whose latest clustering could not run.
FAILED_FITS = ("SELECT algorithm, details->>'failed' FROM clustering_runs WHERE details->>'failed' IS NOT NULL "
               "ORDER BY algorithm")


# Tables holding one set of rows per algorithm; replaced per algorithm.
PER_ALGORITHM_TABLES = ("cluster_assignments", "topic_summaries", "clustering_runs", "topic_hierarchy", "topics",
                        "topic_trends", "topic_lineage")


class TopicStore:
    """Reads and writes of the per-algorithm tables and the topic registry (a part of `DuckDBWarehouse`)."""

    @contextmanager
    def registry_lock(self) -> Iterator[None]:
        """Held by a run from reading a topic registry (and the assignments it names) to writing what it made of
        them, in `<database>.topics.lock`: two runs (a schedule, the file sensor, a person, a `dagster` command in
        its own process) never give one topic id twice nor write over each other's topics. Taken before the
        file's own lock, never inside it."""
        with FileLock(f"{Path(self.database).expanduser()}.topics.lock", timeout=self.lock_timeout_seconds):
            yield

    def assignments(self, algorithm: str) -> pd.DataFrame:
        return self.query(
            "SELECT sentence_id, cluster_id, topic_id FROM cluster_assignments WHERE algorithm = ? ORDER BY sentence_id",
            [algorithm],
        )

    def assignment_faults(self, algorithm: str) -> dict[str, int]:
        """Sentences of the window without exactly one assignment of `algorithm` (not_once), its assignments of
        sentences outside the window (unknown), and its cluster ids below -1 (bad_label)."""
        window, params = self.window_scope()
        row = self.query(
            f"""SELECT
                 (SELECT count(*) FROM sentences s WHERE {window} AND (SELECT count(*) FROM cluster_assignments a
                    WHERE a.algorithm = ? AND a.sentence_id = s.sentence_id) <> 1) AS not_once,
                 (SELECT count(*) FROM cluster_assignments a ANTI JOIN (SELECT * FROM sentences s WHERE {window})
                    USING (sentence_id) WHERE a.algorithm = ?) AS unknown,
                 (SELECT count(*) FROM cluster_assignments WHERE algorithm = ? AND cluster_id < -1) AS bad_label""",
            [*params, algorithm, *params, algorithm, algorithm],
        ).iloc[0]
        return {k: int(v) for k, v in row.items()}

    def new_sentences(self, algorithm: str, model_key: str) -> tuple[pd.DataFrame, np.ndarray, int]:
        """The sentences of the cluster window that `algorithm` has not assigned yet (sentence_id, text, label)
        with their embeddings, and the count of its assignments whose sentence left the window."""
        window, params = self.window_scope()
        with self.get_connection() as conn:
            new = conn.execute(
                f"""SELECT s.sentence_id FROM sentences s WHERE {window} AND s.sentence_id NOT IN
                    (SELECT sentence_id FROM cluster_assignments WHERE algorithm = ?) ORDER BY 1""",
                [*params, algorithm]).fetchnumpy()["sentence_id"]
            removed = conn.execute(
                f"""SELECT count(*) FROM cluster_assignments a WHERE a.algorithm = ? AND a.sentence_id NOT IN
                    (SELECT s.sentence_id FROM sentences s WHERE {window})""", [algorithm, *params]).fetchall()[0][0]
        frame, matrix = self.embeddings_of(model_key, np.asarray(new, dtype=np.int64))
        return frame, matrix, int(removed)

    def last_run(self, algorithm: str) -> dict | None:
        """The latest clustering run of `algorithm` (model_key, params and details as dicts, n_sentences,
        n_clusters, seconds), None if it never ran."""
        runs = self.query("SELECT model_key, params, details, n_sentences, n_clusters, seconds FROM clustering_runs "
                          "WHERE algorithm = ? ORDER BY materialized_at DESC LIMIT 1", [algorithm])
        if runs.empty:
            return None
        row = runs.iloc[0]
        return {"model_key": row["model_key"], "params": json.loads(row["params"] or "null"),
                "details": json.loads(row["details"] or "null"), **{
                    key: None if pd.isna(row[key]) else row[key].item() for key in ("n_sentences", "n_clusters",
                                                                                   "seconds")}}

    def failed_fits(self) -> dict[str, str]:
        """Algorithm -> why its latest clustering could not run, for those whose latest run failed."""
        with self.get_connection() as conn:
            return dict(conn.execute(FAILED_FITS).fetchall())

    def failed_fit(self, algorithm: str) -> str | None:
        return self.failed_fits().get(algorithm)

    def topic_registry(self, algorithm: str) -> pd.DataFrame:
        """Every topic id `algorithm` ever had (`topics`), active first."""
        return self.query("SELECT * EXCLUDE (algorithm) FROM topics WHERE algorithm = ? ORDER BY status, topic_id",
                          [algorithm])

    def topic_lineage(self, algorithm: str) -> pd.DataFrame:
        """`algorithm`'s `topic_lineage` rows: topic_id, ancestor_topic_id, generations."""
        return self.query("SELECT topic_id, ancestor_topic_id, generations FROM topic_lineage WHERE algorithm = ? "
                          "ORDER BY ALL", [algorithm])

    def next_topic_id(self, algorithm: str) -> int:
        """One above every topic id `algorithm` ever gave: ids are never reused."""
        return int(self.query(
            """SELECT greatest(coalesce((SELECT max(topic_id) FROM topics WHERE algorithm = ?), -1),
                               coalesce((SELECT max(topic_id) FROM topic_events WHERE algorithm = ?), -1)) + 1 AS n""",
            [algorithm, algorithm])["n"].iloc[0])

    def replace_algorithm_rows(self, algorithm: str, tables: dict[str, pd.DataFrame],
                               events: pd.DataFrame | None = None) -> None:
        """Replace `algorithm`'s rows in each named per-algorithm table, and append its `topic_events`, all in one
        transaction."""
        for name in tables:
            if name not in PER_ALGORITHM_TABLES:
                raise ValueError(f"'{name}' is not a per-algorithm table ({', '.join(PER_ALGORITHM_TABLES)})")
        with self.transaction() as conn:
            for name, frame in tables.items():
                conn.execute(f"DELETE FROM {name} WHERE algorithm = ?", [algorithm])  # name from the fixed list
                self._append(conn, name, frame.assign(algorithm=algorithm))
            if events is not None and len(events):
                self._append(conn, "topic_events", events.assign(algorithm=algorithm))

    def add_assignments(self, algorithm: str, rows: pd.DataFrame, run: pd.DataFrame) -> None:
        """An incremental run, in one transaction: drop the assignments of sentences that left the cluster window,
        add `rows` (sentence_id, cluster_id, topic_id) for the new ones (replacing those a concurrent run added),
        replace the `clustering_runs` row, and bring the active topics' sizes and last_seen up to date."""
        window, params = self.window_scope()
        with self.transaction() as conn:
            conn.execute(f"""DELETE FROM cluster_assignments a WHERE a.algorithm = ? AND a.sentence_id NOT IN
                             (SELECT s.sentence_id FROM sentences s WHERE {window})""", [algorithm, *params])
            conn.execute("DELETE FROM cluster_assignments WHERE algorithm = ? AND sentence_id IN (SELECT unnest(?))",
                         [algorithm, rows["sentence_id"].astype("int64").tolist()])  # a concurrent run's, same fit
            self._append(conn, "cluster_assignments", rows.assign(algorithm=algorithm))
            conn.execute("DELETE FROM clustering_runs WHERE algorithm = ?", [algorithm])
            self._append(conn, "clustering_runs", run.assign(algorithm=algorithm))
            conn.execute(
                """UPDATE topics t SET size = coalesce((SELECT count(*) FROM cluster_assignments a
                       WHERE a.algorithm = t.algorithm AND a.topic_id = t.topic_id), 0), last_seen = ?
                   WHERE t.algorithm = ? AND t.status = 'active'""", [run["materialized_at"].iloc[0], algorithm])

    def check_curation(self) -> None:
        """Raise a clear error when `topic_curation` lacks a column the runs read (it is written by hand)."""
        self.check_hand_written("topic_curation", CURATION_COLUMNS)

    def check_hand_written(self, table: str, columns: dict[str, str]) -> None:
        """Raise a clear error naming the table and what to do when `table` (written by people with SQL) lacks
        one of `columns` (name -> type)."""
        found = dict(self.query("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = ?", [table]).itertuples(index=False))
        missing = [f"{c} {t}" for c, t in columns.items() if c not in found]
        if missing:
            expected = ", ".join(f"{c} {t}" for c, t in columns.items())
            raise LookupError(
                f"table {table} in {self.database} lacks {', '.join(missing)} (found: "
                f"{', '.join(found) or 'no columns'}). It must have the columns ({expected}); DROP it and the next "
                "run creates it empty, or ALTER it to add them.")

    def topic_seeds(self) -> pd.DataFrame:
        """Every `topic_seeds` row (algorithm, name, example), as people wrote them."""
        self.check_hand_written("topic_seeds", SEED_COLUMNS)
        return self.query("SELECT algorithm, name, example FROM topic_seeds")

    def summaries_cover_topics(self, algorithm: str) -> bool:
        """Whether `topic_summaries` has a row for every active topic of `algorithm` and none for another."""
        return bool(self.query(
            """SELECT (SELECT list_sort(list(topic_id)) FROM topics WHERE algorithm = ? AND status = 'active')
                   IS NOT DISTINCT FROM (SELECT list_sort(list(topic_id)) FROM topic_summaries
                                         WHERE algorithm = ? AND topic_id >= 0) AS same""",
            [algorithm, algorithm])["same"].iloc[0])

    def add_empty_topics(self, algorithm: str) -> None:
        """A `topic_summaries` row (size 0, the seed's name as its keyword label) for each active topic of
        `algorithm` that holds no sentence: a seed's topic that no sentence is close to yet."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO topic_summaries (algorithm, cluster_id, topic_id, size, share, label, keyword_label,
                                                keywords, representative_sentences)
                   SELECT algorithm, cluster_id, topic_id, 0, 0.0, coalesce(seed, ''), coalesce(seed, ''), [], []
                   FROM topics WHERE algorithm = ? AND status = 'active' AND topic_id NOT IN
                       (SELECT topic_id FROM topic_summaries WHERE algorithm = ?)""", [algorithm, algorithm])

    def refresh_topic_sizes(self, algorithm: str, noise_label: str) -> None:
        """Sizes and shares of `algorithm`'s topic summaries from its current assignments (keywords kept), with a
        noise row (labelled `noise_label`) when some sentences are in no topic."""
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO topic_summaries (algorithm, cluster_id, topic_id, size, label, keyword_label,
                                                keywords, representative_sentences)
                   SELECT ?, -1, -1, 0, ?, ?, [], [] WHERE NOT EXISTS (SELECT 1 FROM topic_summaries
                       WHERE algorithm = ? AND topic_id = -1)
                   AND EXISTS (SELECT 1 FROM cluster_assignments WHERE algorithm = ? AND topic_id = -1)""",
                [algorithm, noise_label, noise_label, algorithm, algorithm])
            conn.execute(
                """UPDATE topic_summaries t SET size = coalesce(c.n, 0), share = coalesce(c.n, 0) / c.total
                   FROM (SELECT s.topic_id, n, sum(n) OVER () AS total FROM topic_summaries s LEFT JOIN
                         (SELECT topic_id, count(*) AS n FROM cluster_assignments WHERE algorithm = ?
                          GROUP BY topic_id) USING (topic_id) WHERE s.algorithm = ?) c
                   WHERE t.algorithm = ? AND t.topic_id = c.topic_id""", [algorithm, algorithm, algorithm])

    def apply_curation(self, algorithm: str) -> pd.DataFrame:
        """Curated labels (`topic_curation`, the latest row of a topic: its largest `revision`) over the keyword
        labels of `algorithm`'s topic summaries and active topics; a topic without one that descends from a curated
        topic (`topic_lineage`, the nearest, the latest on a tie) is labelled with that name and its own keywords,
        `curated_from` saying which. Returns the curation rows naming a topic that is retired or unknown
        (topic_id, label, status)."""
        with self.transaction() as conn:
            conn.execute(
                """CREATE TEMP TABLE named AS
                   WITH latest AS (SELECT topic_id, arg_max(label, revision) AS label FROM topic_curation
                                   WHERE algorithm = ? AND label IS NOT NULL GROUP BY ALL)
                   SELECT l.topic_id, l.ancestor_topic_id, l.generations, c.label
                   FROM topic_lineage l JOIN latest c ON c.topic_id = l.ancestor_topic_id
                   WHERE l.algorithm = ? AND l.generations > 0
                   QUALIFY row_number() OVER (PARTITION BY l.topic_id
                                              ORDER BY l.generations, l.ancestor_topic_id DESC) = 1
                   UNION ALL SELECT topic_id, topic_id, 0, label FROM latest""", [algorithm, algorithm])
            conn.execute(
                """UPDATE topic_summaries t SET
                       label = coalesce((SELECT n.label FROM named n
                                         WHERE n.topic_id = t.topic_id AND n.generations = 0),
                                        (SELECT p.seed FROM topics p
                                         WHERE p.algorithm = t.algorithm AND p.topic_id = t.topic_id),
                                        (SELECT n.label || ' / ' || t.keyword_label FROM named n
                                         WHERE n.topic_id = t.topic_id AND n.generations > 0),
                                        t.keyword_label),
                       seeded = EXISTS (SELECT 1 FROM topics p WHERE p.algorithm = t.algorithm
                                        AND p.topic_id = t.topic_id AND p.seed IS NOT NULL),
                       curated_from = CASE WHEN NOT EXISTS (SELECT 1 FROM named n WHERE n.topic_id = t.topic_id
                                                                                    AND n.generations = 0)
                                                AND NOT EXISTS (SELECT 1 FROM topics p WHERE p.algorithm = t.algorithm
                                                                AND p.topic_id = t.topic_id AND p.seed IS NOT NULL)
                                           THEN (SELECT n.ancestor_topic_id FROM named n
                                                 WHERE n.topic_id = t.topic_id AND n.generations > 0) END
                   WHERE t.algorithm = ?""", [algorithm])
            conn.execute("DROP TABLE named")
            conn.execute(
                """UPDATE topics p SET label = s.label FROM topic_summaries s
                   WHERE p.algorithm = ? AND s.algorithm = p.algorithm AND s.topic_id = p.topic_id""", [algorithm])
            return conn.execute(
                """SELECT c.topic_id, c.label, coalesce(p.status, 'unknown') AS status FROM topic_curation c
                   LEFT JOIN topics p ON p.algorithm = c.algorithm AND p.topic_id = c.topic_id
                   WHERE c.algorithm = ? AND (p.status IS NULL OR p.status <> 'active') ORDER BY c.topic_id""",
                [algorithm]).df()

    def replace_trends(self, algorithm: str, unit: str) -> pd.DataFrame:
        """Sentences per topic per period (`unit`: day, week or month; by `sentences.timestamp`) of `algorithm`
        into `topic_trends`, noise (-1) included, so a period's counts add up to its sentences."""
        if unit not in ("day", "week", "month"):
            raise ValueError(f"trend period '{unit}' must be day, week or month")
        with self.transaction() as conn:
            conn.execute("DELETE FROM topic_trends WHERE algorithm = ?", [algorithm])
            conn.execute(
                """INSERT INTO topic_trends (algorithm, topic_id, period, period_unit, sentences)
                   SELECT a.algorithm, a.topic_id, date_trunc(?, s.timestamp), ?, count(*)
                   FROM cluster_assignments a JOIN sentences s USING (sentence_id)
                   WHERE a.algorithm = ? GROUP BY ALL""", [unit, unit, algorithm])
            return conn.execute("SELECT topic_id, period, sentences FROM topic_trends WHERE algorithm = ? "
                                "ORDER BY period, topic_id", [algorithm]).df()
