"""Time and peak memory of every algorithm at 100,000 sentences, and of the scalable ones at 1,000,000; and the
whole partitioned pipeline on a local Ray cluster, projected to 100,000,000 sentences.

    python benchmarks/scale.py [--sizes 100000 1000000] [--algorithms ...]
    python benchmarks/scale.py --ray [--sentences 1000000] [--partitions 20] [--workers 2] [--gpu-rate 5000]
        [--keep data/bench_ray]

--ray: the sentences (the datasets' sentences and numbered variants) written as `--partitions` files; a Ray
head started on 127.0.0.1 (or RAY_ADDRESS); every file partition materialized (`sentences`, then
`sentence_embeddings` on the Ray actors, Parquet staged and committed), then `minibatch_kmeans_clusters` over all
partitions. Prints seconds and sentences/s per stage, each worker's peak RSS, and the projected hours for
100,000,000 sentences on N workers from the measured rates (the embedding divides by N; ingestion, commit and
clustering go through the one DuckDB writer and do not). `--keep DIR`: corpus, warehouse and Dagster home stay
in DIR, and a stopped run resumes (the figures are summed from every partition's latest materialization).
`--gpu-rate`: sentences/s of one GPU worker measured
elsewhere (benchmarks/gpu.py), for GPU rows in the projection.

100k: the real all-MiniLM-L6-v2 embeddings of the labelled datasets (102,994 sentences, sampled to the size).
1M: the real vectors of 1,000,000 sentences (the datasets' sentences and numbered variants of them) that
`benchmarks/embeddings.py --million` leaves in data/bench_million.duckdb; without that file, the variants are
simulated in embedding space (each real vector plus Gaussian noise, cosine to its original ~0.97). Each
clustering runs in a forked child; peak memory is that child's RSS above its start (the embedding matrix
itself is shared, not counted).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, embed_in_child, measured, scale_corpus  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS, CommunityParams, run_clustering  # noqa: E402
from dagster_project.core.community import (  # noqa: E402
    as_tensor,
    block_pairs,
    block_rows,
    communities_from_neighbours,
    csr_from_pairs,
)
from dagster_project.resources import SentenceEmbedder  # noqa: E402

PER_SIZE = {
    100_000: [name for name in ALGORITHMS if name != "agglomerative"],
    1_000_000: ["minibatch_kmeans", "community_detection"],
}


def corpus_of(x: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if size <= len(x):
        return x[np.sort(rng.choice(len(x), size, replace=False))]
    out = np.empty((size, x.shape[1]), dtype=np.float32)
    for start in range(0, size, len(x)):
        block = x[: min(len(x), size - start)]
        noisy = block + rng.standard_normal(block.shape, dtype=np.float32) * (0.25 / np.sqrt(x.shape[1]))
        out[start : start + len(block)] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def million_vectors(path: Path) -> np.ndarray | None:
    """The embedding cache of the million-sentence warehouse as one matrix, if that file exists."""
    if not path.exists():
        return None
    import duckdb

    with duckdb.connect(str(path), read_only=True) as conn:
        table = conn.sql("SELECT embedding FROM embedding_cache ORDER BY text_hash").to_arrow_table()
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(flat.reshape(len(table), -1), dtype=np.float32)


def resumable_communities(x: np.ndarray, threshold: float, min_size: int, folder: Path) -> tuple[np.ndarray, float]:
    """`community_labels` block by block with each block's pairs saved under `folder`, so that a run that is
    stopped resumes where it was: (labels, seconds), the seconds summed over every block's recorded time and the
    final selection."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(x)
    tensor = as_tensor(x)
    step = block_rows(n)
    pairs, seconds = [], 0.0
    for start in range(0, n, step):
        path = folder / f"{threshold}-{step}-{start:09d}.npz"
        if path.exists():
            saved = np.load(path)
            pairs.append((saved["rows"], saved["cols"]))
            seconds += float(saved["seconds"])
            continue
        began = time.perf_counter()
        rows, cols = block_pairs(tensor, start, min(n, start + step), threshold)
        took = time.perf_counter() - began
        with open(folder / "partial.npz", "wb") as handle:
            np.savez(handle, rows=rows, cols=cols, seconds=took)
        os.replace(folder / "partial.npz", path)
        pairs.append((rows, cols))
        seconds += took
        if start // step % 500 == 0:
            print(f"  rows {start + step:,} of {n:,} scored", file=sys.stderr, flush=True)
    began = time.perf_counter()
    labels, _ = communities_from_neighbours(*csr_from_pairs(pairs, n), min_size)
    return labels, seconds + time.perf_counter() - began


def summary(labels: np.ndarray) -> str:
    return f"{len(set(labels.tolist()) - {-1})} clusters, {(labels < 0).mean():.1%} noise"


def ray_head(temp: Path, cpus: int) -> tuple[str, list[str]]:
    """A Ray head on 127.0.0.1; its address and the command that stops it."""
    import shutil
    import socket
    import subprocess

    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={cpus}",
                    "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"],
                   check=True, capture_output=True, timeout=180)
    return f"127.0.0.1:{port}", [ray, "stop", "--force"]


def run_partitions(args, work: Path) -> dict:
    """Materializes every file partition not yet embedded, then one clustering over all; per-stage seconds and
    worker memory read back from the Dagster instance (so a run resumed with --keep sums every sitting's runs)."""
    import dagster as dg

    from dagster_project import definitions, settings
    from dagster_project.assets.sentences import sentence_partitions

    instance = dg.DagsterInstance.get()
    names = sorted(p.name for p in (work / "corpus").glob("*.csv"))
    instance.add_dynamic_partitions("sentence_files", names)
    engine = settings.EMBEDDING_ENGINE.value()  # the environment chose partitions and Ray
    resources = definitions.build_resources(engine)
    assets = definitions.build_assets(sentence_partitions(settings.SENTENCE_PARTITIONS.value()), engine)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    done = latest_per_partition(instance, "sentence_embeddings")
    for number, name in enumerate(names):
        if name in done:
            continue
        started = time.perf_counter()
        dg.materialize(assets, selection=["sentences", "sentence_embeddings"], resources=resources,
                       partition_key=name, instance=instance, run_config={
                           **quiet, "ops": {"sentence_embeddings": {"config": {"chunk_size": args.chunk}}}})
        print(f"  partition {number + 1}/{len(names)} {name}: {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    clustered = dg.materialize(assets, selection=["minibatch_kmeans_clusters"], resources=resources,
                               instance=instance, run_config=quiet)
    ingest = latest_per_partition(instance, "sentences")
    embed = latest_per_partition(instance, "sentence_embeddings")
    worker_peaks: dict[str, float] = {}
    for metadata in embed.values():
        for worker, mb in enumerate(metadata["worker_peak_rss_mb"]):
            worker_peaks[f"worker {worker}"] = max(worker_peaks.get(f"worker {worker}", 0.0), mb)
    totals = {
        "sentences": sum(m["new_texts"] for m in embed.values()), "partitions": len(embed),
        "ingest": sum(m["seconds"] for m in ingest.values()),
        "ray": sum(m["ray_seconds"] for m in embed.values()),
        "commit": sum(m["commit_seconds"] for m in embed.values()),
        "worker_encode": sum(m["worker_encode_seconds"] for m in embed.values()),
        "partition_wall": sum(m["run_seconds"] for m in embed.values()),
        "cluster": time.perf_counter() - started,
        "clusters": clustered.asset_materializations_for_node("minibatch_kmeans_clusters")[0].metadata,
    }
    return {"totals": totals, "worker_peaks": worker_peaks}


def latest_per_partition(instance, asset: str) -> dict[str, dict]:
    """The metadata of each partition's latest materialization of `asset`, with its run's wall seconds."""
    import dagster as dg

    latest: dict[str, dict] = {}
    for record in instance.fetch_materializations(dg.AssetKey(asset), limit=10_000).records:  # newest first
        if record.partition_key in latest:
            continue
        stats = instance.get_run_stats(record.run_id)
        latest[record.partition_key] = {
            **{key: value.value for key, value in record.asset_materialization.metadata.items()},
            "run_seconds": (stats.end_time or 0) - (stats.start_time or 0),
        }
    return latest


def main_ray(args) -> None:
    import subprocess
    import tempfile

    import pandas as pd

    from benchmarks.embeddings import million_texts

    with tempfile.TemporaryDirectory(dir=args.work_dir) as temporary:
        work = Path(args.keep or temporary).resolve()  # DAGSTER_HOME must be absolute
        if not (work / "corpus").is_dir():
            texts = million_texts(args.sentences)
            (work / "corpus").mkdir(parents=True)
            for part in range(args.partitions):
                pd.DataFrame({"text": texts[part :: args.partitions]}).to_csv(
                    work / "corpus" / f"part-{part:02d}.csv", index=False)
        (work / "home").mkdir(exist_ok=True)
        address, stop = (os.environ["RAY_ADDRESS"], None) if os.environ.get("RAY_ADDRESS") else \
            ray_head(Path(temporary) / "ray", os.cpu_count() or 2)
        os.environ.update({
            "DAGSTER_HOME": str(work / "home"), "DUCKDB_PATH": str(work / "w.duckdb"),
            "SENTENCES_PATH": str(work / "corpus"), "SENTENCE_PARTITIONS": "files", "EMBEDDING_ENGINE": "ray",
            "RAY_ADDRESS": address, "RAY_EMBEDDING_WORKERS": str(args.workers),
            "EMBEDDING_STAGING_DIR": str(work / "staging"), "EMBEDDING_BACKEND": args.backend,
        })
        try:
            measured_run = run_partitions(args, work)
        finally:
            if stop:
                subprocess.run(stop, capture_output=True, timeout=120)
    print_ray_tables(args, measured_run)


def print_ray_tables(args, measured_run: dict) -> None:
    import resource

    t = measured_run["totals"]
    n = t["sentences"]
    driver_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{n:,} sentences in {t['partitions']} file partitions, {args.workers} Ray workers "
          f"({args.backend}, CPU), chunk {args.chunk}; clustering: {t['clusters']['n_clusters'].value} clusters")
    print("| stage | seconds | sentences/s |\n|---|---|---|")
    worker_rate = n / t["worker_encode"]  # one worker's rate: texts over its own encode seconds
    for stage, seconds in [("ingest (`sentences`, per partition, one writer)", t["ingest"]),
                           ("embed on Ray (wall, all workers)", t["ray"]),
                           ("  of which one worker encoding (summed over workers)", t["worker_encode"]),
                           ("commit staged Parquet (one writer)", t["commit"]),
                           ("partition runs, wall (Dagster included)", t["partition_wall"]),
                           ("minibatch_kmeans over all partitions", t["cluster"])]:
        print(f"| {stage} | {seconds:.1f} | {n / seconds:,.0f} |")
    peaks = ", ".join(f"{name} {mb:,.0f} MB" for name, mb in measured_run["worker_peaks"].items())
    print(f"\npeak RSS: {peaks}; Dagster driver process {driver_mb:,.0f} MB")
    serial = (t["ingest"] + t["commit"] + t["cluster"]) / n  # seconds per sentence through the one writer
    print("\nprojection for 100,000,000 sentences (embedding / N workers + the one writer's serial stages):")
    print("| workers | worker rate (sentences/s) | embedding hours | serial hours | total hours | worker-hours |")
    print("|---|---|---|---|---|---|")
    rows = [("CPU worker (measured)", worker_rate)] + ([("GPU worker (--gpu-rate)", args.gpu_rate)]
                                                       if args.gpu_rate else [])
    for label, rate in rows:
        for workers in (1, 8, 64):
            embed_hours = 1e8 / (rate * workers) / 3600
            serial_hours = 1e8 * serial / 3600
            print(f"| {workers} x {label} | {rate:,.0f} | {embed_hours:,.1f} | {serial_hours:,.1f} | "
                  f"{embed_hours + serial_hours:,.1f} | {embed_hours * workers:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ray", action="store_true", help="the partitioned pipeline on a local Ray cluster")
    parser.add_argument("--sentences", type=int, default=1_000_000, help="--ray: corpus size")
    parser.add_argument("--partitions", type=int, default=20, help="--ray: file partitions")
    parser.add_argument("--workers", type=int, default=2, help="--ray: embedding actors")
    parser.add_argument("--backend", default="torch", help="--ray: EMBEDDING_BACKEND of the actors")
    parser.add_argument("--chunk", type=int, default=4096, help="--ray: texts per actor call")
    parser.add_argument("--gpu-rate", type=float, default=None, help="--ray: one GPU worker's sentences/s")
    parser.add_argument("--work-dir", default=None, help="--ray: where the temporary corpus and warehouse go")
    parser.add_argument("--keep", default=None, help="--ray: a folder kept between runs; a stopped run resumes "
                                                       "(partitions already embedded are not run again)")
    parser.add_argument("--sizes", nargs="*", type=int, default=sorted(PER_SIZE))
    parser.add_argument("--algorithms", nargs="*", default=None)
    parser.add_argument("--million-db", type=Path, default=ROOT / "data" / "bench_million.duckdb")
    parser.add_argument("--community-threshold", type=float, default=None,
                        help="fixed threshold for community detection (default: automatic, two or three fits)")
    parser.add_argument("--resume-dir", type=Path, default=None,
                        help="with --community-threshold: keep community detection's scored blocks here, so that "
                             "a stopped run resumes (seconds are the sum of the blocks' recorded times)")
    args = parser.parse_args()
    if args.ray:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        main_ray(args)
        return
    real = embed_in_child(scale_corpus()["text"].tolist(), SentenceEmbedder(device="cpu"))
    million = million_vectors(args.million_db) if max(args.sizes) > len(real) else None
    print("| sentences | vectors | algorithm | seconds | peak MB | result |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        measured_vectors = million is not None and size <= len(million)
        x = corpus_of(million if measured_vectors else real, size)
        source = "real" if size <= len(real) or measured_vectors else "simulated"
        for name in args.algorithms or PER_SIZE.get(size, list(ALGORITHMS)):
            params = CommunityParams(threshold=args.community_threshold) if name == "community_detection" else None
            if params is not None and params.threshold is not None and args.resume_dir:
                outcome, seconds, peak = measured(resumable_communities, x, params.threshold,
                                                  params.min_community_size, args.resume_dir / f"{size}")
                labels, seconds = (outcome, seconds) if isinstance(outcome, Exception) else outcome
            else:
                labels, seconds, peak = measured(lambda: run_clustering(name, x, params).labels)
            result = f"failed: {labels}" if isinstance(labels, Exception) else summary(labels)
            print(f"| {size:,} | {source} | {name} | {seconds:.1f} | {peak:.0f} | {result} |", flush=True)


if __name__ == "__main__":
    main()
