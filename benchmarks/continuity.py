"""Topic continuity across scheduled refreshes of a growing corpus.

    python benchmarks/continuity.py [--datasets atis searchsnippets ...] [--speed 100000]

Each labelled dataset is replayed as daily arrivals: 60% on day one, then nine equal daily parts, each a file with
its day's `timestamp`; the job the daily schedule runs (`refresh_everything`, in process) refreshes the warehouse
after each day. Per algorithm of that job it prints: how each day's run ended (fitted again or new sentences
assigned), the share of the previous day's sentences that kept their topic_id on assignment days and across
re-fits, births and retirements per re-fit, and the NMI after the last day as a share of one fresh run of the whole
corpus in the same process. The embeddings are computed once (benchmark cache) and placed in each warehouse's
cache, so the runs time clustering and topics, not the model.

`--speed N` then builds N sentences (every dataset, sampled), refreshes with 99% of them, adds the last 1% and
times, per algorithm, the run that assigns them against a forced re-fit (refit = true, which starts from the last
fit) of the same corpus and against a fit from scratch (the warehouse without its record of the last fits): the
clustering and topic steps, and the whole job (whose map and metrics are computed over the whole corpus).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import dataset_names, embed_in_child, load_dataset, scale_corpus  # noqa: E402
from dagster_project.automation import refresh_job  # noqa: E402
from dagster_project.core.clock import utc_now  # noqa: E402
from dagster_project.core.clustering import SCHEDULED  # noqa: E402
from dagster_project.core.text import text_hash  # noqa: E402
from dagster_project.definitions import build_assets  # noqa: E402
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder  # noqa: E402

FIRST_DAY = pd.Timestamp("2026-11-01")


def daily_parts(frame: pd.DataFrame, first: float = 0.6, days: int = 9, seed: int = 0) -> list[pd.DataFrame]:
    """60% on day one, then `days` equal parts, in a seeded random order, each with its day's timestamp."""
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    head = int(len(shuffled) * first)
    parts = [shuffled.iloc[:head], *(shuffled.iloc[head:].iloc[rows] for rows in np.array_split(
        np.arange(len(shuffled) - head), days))]
    return [part.assign(timestamp=(FIRST_DAY + pd.Timedelta(days=i)).date().isoformat())
            for i, part in enumerate(parts)]


class Warehouse:
    """A warehouse fed from a folder of daily files, refreshed by the scheduled job in process."""

    def __init__(self, folder: Path, embedder: SentenceEmbedder, frame: pd.DataFrame, vectors: np.ndarray):
        self.folder, self.embedder = folder, embedder
        (folder / "in").mkdir(parents=True)
        self.db = folder / "w.duckdb"
        self.resource = DuckDBWarehouse(database=str(self.db))
        self.vectors = dict(zip(frame["text"], vectors))
        self.defs = dg.Definitions(assets=build_assets(), jobs=[refresh_job(partitioned=False)],
                                   resources={"warehouse": self.resource, "embedder": embedder})
        self.instance = dg.DagsterInstance.ephemeral()

    def arrive(self, day: int, part: pd.DataFrame) -> None:
        """A day's file, its vectors placed in the cache as its embedding run would add them (after the others)."""
        texts = part["text"].drop_duplicates().tolist()
        self.resource.insert_embeddings(self.embedder.model_key, [text_hash(t) for t in texts],
                                        np.stack([self.vectors[t] for t in texts]))
        part[["text", "label", "timestamp"]].to_csv(self.folder / "in" / f"day{day:02d}.csv", index=False)

    def refresh(self, refit: bool = False) -> tuple[dg.ExecuteInProcessResult, dict[str, float], float]:
        """The scheduled job; its result, seconds per step and the whole run's seconds."""
        os.environ["SENTENCES_PATH"] = str(self.folder / "in")
        config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        if refit:
            config["ops"] = {f"{name}_clusters": {"config": {"refit": True}} for name in SCHEDULED}
        started = time.perf_counter()
        result = self.defs.resolve_job_def("refresh_everything").execute_in_process(
            run_config=config, instance=self.instance, raise_on_error=False)
        total = time.perf_counter() - started
        steps = {s.step_key: s.end_time - s.start_time
                 for s in self.instance.get_run_step_stats(result.run_id) if s.end_time}
        return result, steps, total

    def lineage(self) -> pd.DataFrame:
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute("SELECT algorithm, topic_id, ancestor_topic_id FROM topic_lineage").df()

    def assignments(self) -> pd.DataFrame:
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute("SELECT a.algorithm, a.sentence_id, a.topic_id, s.label FROM cluster_assignments a "
                                "JOIN sentences s USING (sentence_id)").df()


def followed(both: pd.DataFrame, lineage: pd.DataFrame) -> float:
    """Of the sentences in a topic before (`topic_id_x`) and present after (`topic_id_y`), the share in the same
    topic or in one that descends from it (`topic_lineage`)."""
    before = both[both["topic_id_x"] >= 0]
    pairs = set(zip(lineage["topic_id"], lineage["ancestor_topic_id"]))
    kept = [x == y or (y, x) in pairs for x, y in zip(before["topic_id_x"], before["topic_id_y"])]
    return float(np.mean(kept)) if kept else np.nan


def slowest(steps: dict[str, float], count: int = 4) -> str:
    return ", ".join(f"{key} {seconds:.1f}s" for key, seconds in sorted(steps.items(), key=lambda kv: -kv[1])[:count])


def status(result: dg.ExecuteInProcessResult, name: str) -> str:
    events = result.asset_materializations_for_node(f"{name}_clusters")
    return events[0].metadata["status"].value if events else "not run"


def nmi(frame: pd.DataFrame) -> float:
    return float(normalized_mutual_info_score(frame["label"], frame["topic_id"]))


def replay(name: str, embedder: SentenceEmbedder, workdir: Path) -> pd.DataFrame:
    frame = load_dataset(name)
    vectors = embed_in_child(frame["text"].tolist(), embedder)
    fresh = Warehouse(workdir / f"{name}-fresh", embedder, frame, vectors)
    fresh.arrive(0, frame.assign(timestamp=FIRST_DAY.date().isoformat()))
    _, steps, seconds = fresh.refresh()
    print(f"  {name} fresh run of {len(frame)} sentences: {seconds:.0f}s; slowest steps: {slowest(steps)}", flush=True)
    fresh_nmi = fresh.assignments().groupby("algorithm").apply(nmi, include_groups=False)
    fresh_noise = fresh.assignments().assign(noise=lambda f: f["topic_id"] < 0).groupby("algorithm")["noise"].mean()
    daily = Warehouse(workdir / f"{name}-daily", embedder, frame, vectors)
    rows, before = [], None
    for day, part in enumerate(daily_parts(frame)):
        daily.arrive(day, part)
        since = utc_now()
        result, steps, seconds = daily.refresh()
        after = daily.assignments()
        lineage = daily.lineage()
        events = events_since(daily.db, since)
        for algorithm in SCHEDULED:
            row = {"dataset": name, "day": day, "algorithm": algorithm, "status": status(result, algorithm),
                   "seconds": seconds}
            mine = after[after["algorithm"] == algorithm]
            row["topics"] = mine.loc[mine["topic_id"] >= 0, "topic_id"].nunique()
            if before is not None:
                both = before[before["algorithm"] == algorithm].merge(mine, on="sentence_id")
                row["kept"] = float((both["topic_id_x"] == both["topic_id_y"]).mean()) if len(both) else np.nan
                row["lineage kept"] = followed(both, lineage[lineage["algorithm"] == algorithm])
                new = mine[~mine["sentence_id"].isin(both["sentence_id"])]
                row["new in no topic"] = float((new["topic_id"] < 0).mean()) if len(new) else np.nan
            row.update(events.get(algorithm, {}))
            rows.append(row)
        before = after
        print(f"  {name} day {day}: {len(part)} sentences, refresh {seconds:.0f}s; slowest steps: {slowest(steps)}",
              flush=True)
    table = pd.DataFrame(rows)
    last = before.groupby("algorithm").apply(nmi, include_groups=False)
    table["nmi_ratio"] = table["algorithm"].map(last / fresh_nmi)
    table["nmi_last"] = table["algorithm"].map(last)
    table["fresh_noise"] = table["algorithm"].map(fresh_noise)
    return table


def events_since(db: Path, since: pd.Timestamp) -> dict[str, dict[str, int]]:
    """Per algorithm, the count of each topic event recorded at or after `since`."""
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute("SELECT algorithm, event, count(*) FROM topic_events WHERE materialized_at >= ? "
                            "GROUP BY ALL", [since]).fetchall()
    out: dict[str, dict[str, int]] = {}
    for algorithm, event, count in rows:
        out.setdefault(algorithm, {})[event] = int(count)
    return out


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and algorithm: re-fits, the topic count on the first and last day, kept on assignment days,
    kept and lineage kept across re-fits, topics born, split, merged and retired per re-fit, the share of the new
    sentences left in no topic on assignment days beside the share a fresh fit leaves in none, NMI after the last
    day against a fresh run."""
    rows = []
    for (dataset, algorithm), group in table.groupby(["dataset", "algorithm"], sort=False):
        later = group[group["day"] > 0]
        refits = later[later["status"].str.startswith("fitted")]
        assigned = later[~later["status"].str.startswith("fitted")]
        changes = refits.reindex(columns=["born", "split_from", "merged_into", "retired"]).fillna(0)
        per_refit = changes.mean() if len(refits) else pd.Series(np.nan, index=changes.columns)
        rows.append({"dataset": dataset, "algorithm": algorithm, "refits": len(refits),
                     "topics, first and last day": f"{group['topics'].iloc[0]} -> {group['topics'].iloc[-1]}",
                     "kept, assignment days": assigned["kept"].min() if len(assigned) else np.nan,
                     "kept across re-fits (min)": refits["kept"].min() if len(refits) else np.nan,
                     "kept across re-fits (mean)": refits["kept"].mean() if len(refits) else np.nan,
                     "lineage kept across re-fits (min)": refits["lineage kept"].min() if len(refits) else np.nan,
                     "born / split / merged / retired per re-fit": " / ".join(f"{v:.1f}" for v in per_refit),
                     "new in no topic, assignment days": assigned["new in no topic"].mean() if len(assigned)
                     else np.nan,
                     "fresh fit's noise": group["fresh_noise"].iloc[0],
                     "NMI last day": group["nmi_last"].iloc[0], "NMI / fresh run": group["nmi_ratio"].iloc[0]})
    return pd.DataFrame(rows)


def speed(size: int, embedder: SentenceEmbedder, workdir: Path) -> pd.DataFrame:
    corpus = scale_corpus().drop_duplicates("text").sample(n=size, random_state=0).reset_index(drop=True)
    vectors = embed_in_child(corpus["text"].tolist(), embedder)
    store = Warehouse(workdir / "speed", embedder, corpus, vectors)
    head = int(size * 0.99)
    store.arrive(0, corpus.iloc[:head].assign(timestamp="2026-11-01"))
    store.refresh()
    print(f"  speed: day one of {head} sentences refreshed", flush=True)
    store.arrive(1, corpus.iloc[head:].assign(timestamp="2026-11-02"))
    shutil.copy(store.db, workdir / "speed-copy.duckdb")
    incremental, inc_steps, inc_total = store.refresh()
    print(f"  speed: the incremental run's slowest steps: {slowest(inc_steps, 8)}", flush=True)
    shutil.copy(workdir / "speed-copy.duckdb", store.db)  # the same corpus and memory, fitted again
    _, fit_steps, fit_total = store.refresh(refit=True)
    shutil.copy(workdir / "speed-copy.duckdb", store.db)
    with duckdb.connect(str(store.db)) as conn:  # no last fit to start from: every clustering fits from scratch
        conn.execute("DELETE FROM clustering_runs")
    _, scratch_steps, scratch_total = store.refresh()
    rows = []
    for name in SCHEDULED:
        steps = [f"{name}_clusters", f"{name}_topics"]
        inc, fit, scratch = (sum(seconds.get(s, 0) for s in steps) for seconds in (inc_steps, fit_steps, scratch_steps))
        rows.append({"algorithm": name, "incremental run": status(incremental, name), "incremental s": inc,
                     "re-fit s": fit, "ratio": inc / fit if fit else np.nan, "fit from scratch s": scratch,
                     "ratio to scratch": inc / scratch if scratch else np.nan})
    rows.append({"algorithm": "whole job", "incremental run": "", "incremental s": inc_total, "re-fit s": fit_total,
                 "ratio": inc_total / fit_total, "fit from scratch s": scratch_total,
                 "ratio to scratch": inc_total / scratch_total})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--speed", type=int, default=0, help="sentences of the incremental-against-refit timing")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = SentenceEmbedder(device="cpu")
    workdir = Path(tempfile.mkdtemp(prefix="continuity-"))
    print(f"date {pd.Timestamp.now():%Y-%m-%d}, command: python benchmarks/continuity.py {' '.join(sys.argv[1:])}")
    try:
        names = args.datasets if args.datasets is not None else dataset_names()
        if names:
            table = pd.concat([replay(name, embedder, workdir) for name in names], ignore_index=True)
            print("\nPer day:\n" + table.round(3).to_markdown(index=False))
            print("\nSummary:\n" + summarize(table).round(3).to_markdown(index=False))
        if args.speed:
            print(f"\nIncremental run against a re-fit, {args.speed} sentences, 1% new:\n"
                  + speed(args.speed, embedder, workdir).round(3).to_markdown(index=False))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
