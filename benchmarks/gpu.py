"""The GPU path in one run: encoding, k-means, community detection, and the whole lineage.

    python benchmarks/gpu.py [--device auto] [--size N] [--pipeline-size N] [--algorithms ...]

Prints, measured in this process on the sentences of ../shared/datasets (all folders but clinc150):
1. SentenceTransformer.encode vs the embedding resource (sentences/s, ratio, smallest cosine to fp32 vectors);
2. scikit-learn KMeans vs k-means in torch on the device (seconds, NMI against the labels, same k and n_init);
3. sentence_transformers.util.community_detection vs ours on the device (seconds, identical communities);
4. the whole lineage on --pipeline-size sentences through a real Dagster run (seconds per asset).
Defaults: every sentence on a GPU; 2,000 on a CPU (a smoke run: the CPU figures are in the other benchmarks).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import community_labels, median_seconds, scale_corpus  # noqa: E402
from dagster_project.core.clustering import ALGORITHMS  # noqa: E402
from dagster_project.core.torch_kmeans import lloyd  # noqa: E402
from dagster_project.resources import DuckDBWarehouse, SentenceEmbedder  # noqa: E402


def synchronized(function, device: str):
    """`function` followed by a device synchronization, so that timings include the queued GPU work."""
    import torch

    def run():
        result = function()
        if device == "cuda":
            torch.cuda.synchronize()
        return result

    return run


def encoding(texts: list[str], device: str, repeats: int) -> np.ndarray:
    ours = SentenceEmbedder(device=device)
    model = ours.load()  # fp16 on CUDA
    reference_fp32 = SentenceEmbedder(device=device, batch_size=1024)
    if device == "cuda":
        import torch

        reference_fp32._model = copy.deepcopy(model).to(torch.float32)
    else:
        reference_fp32._model = model
    def st_encode(batch_size: int):
        return lambda: model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)

    st_encode(1024)(), ours.encode(texts[:2048])  # warm-up: kernels, tokenizer copies
    baselines = {}
    for batch_size in sorted({1024, ours.effective_batch_size}):
        baselines[batch_size] = median_seconds(synchronized(st_encode(batch_size), device), repeats)
    st_seconds, st_vectors = min(baselines.values(), key=lambda timed: timed[0])
    our_seconds, vectors = median_seconds(synchronized(lambda: ours.encode(texts), device), repeats)
    fp32 = reference_fp32.encode(texts) if device == "cuda" else np.asarray(st_vectors, dtype=np.float32)
    cosine_fp32 = float(np.min(np.sum(vectors * fp32, axis=1)))
    cosine_encode = float(np.min(np.sum(vectors * np.asarray(st_vectors, dtype=np.float32), axis=1)))
    print(f"\n## Encoding: {len(texts):,} sentences on {device} ({ours.precision}, "
          f"{'overlapped tokenization' if ours.pipelined() else 'SentenceTransformer.encode'})\n")
    print("| encoder | sentences/s | ratio to the faster encode | min cosine to encode | min cosine to fp32 |")
    print("|---|---|---|---|---|")
    for batch_size, (seconds, _) in baselines.items():
        print(f"| SentenceTransformer.encode (batch {batch_size}) | {len(texts) / seconds:,.0f} | "
              f"{st_seconds / seconds:.2f}x | | |")
    print(f"| embedding resource (batch {ours.effective_batch_size}) | {len(texts) / our_seconds:,.0f} | "
          f"{st_seconds / our_seconds:.2f}x | {cosine_encode:.5f} | {cosine_fp32:.5f} |", flush=True)
    return vectors


def kmeans_comparison(x: np.ndarray, labels: np.ndarray, device: str, k: int) -> None:
    from sklearn.cluster import KMeans

    k = min(k, len(x) // 10)
    sk_seconds, sk = median_seconds(lambda: KMeans(k, n_init=1, random_state=0).fit(x), 1)
    run = synchronized(lambda: lloyd(x, k, seed=0, n_init=1, device=device), device)
    run()  # warm-up
    torch_seconds, (torch_labels, inertia, _) = median_seconds(run, 3)
    print(f"\n## k-means: {len(x):,} points, k = {k}, n_init = 1\n")
    print("| implementation | seconds | inertia | NMI |")
    print("|---|---|---|---|")
    print(f"| scikit-learn KMeans (CPU, {os.cpu_count()} cores) | {sk_seconds:.2f} | {sk.inertia_:,.1f} | "
          f"{normalized_mutual_info_score(labels, sk.labels_):.4f} |")
    print(f"| torch Lloyd + k-means++ ({device}) | {torch_seconds:.2f} | {inertia:,.1f} | "
          f"{normalized_mutual_info_score(labels, torch_labels):.4f} |", flush=True)


def community_comparison(x: np.ndarray, device: str, size: int, threshold: float = 0.75, min_size: int = 10) -> None:
    import torch
    from sentence_transformers.util import community_detection

    x = x[:size]
    tensor = torch.from_numpy(x).to(device)
    reference = synchronized(lambda: community_detection(tensor, threshold=threshold, min_community_size=min_size),
                             device)
    ours = synchronized(lambda: community_labels(x, threshold, min_size, device=device), device)
    reference(), ours()  # warm-up
    ref_seconds, communities = median_seconds(reference, 3)
    our_seconds, labels = median_seconds(ours, 3)
    ours_as_sets = sorted(sorted(np.flatnonzero(labels == c).tolist()) for c in range(labels.max() + 1))
    identical = ours_as_sets == sorted(sorted(c) for c in communities)
    print(f"\n## Community detection: {len(x):,} sentences, threshold {threshold}, min size {min_size}, {device}\n")
    print("| implementation | seconds | communities | identical |")
    print("|---|---|---|---|")
    print(f"| sentence_transformers.util.community_detection | {ref_seconds:.3f} | {len(communities)} | |")
    print(f"| ours (bounded memory, -1 kept) | {our_seconds:.3f} | {labels.max() + 1} | {identical} |", flush=True)


def whole_lineage(texts: list[str], device: str, algorithms: list[str]) -> None:
    """One real Dagster run of every asset (algorithms limited to `algorithms`) on a fresh warehouse."""
    import dagster as dg
    import pandas as pd

    from dagster_project.definitions import build_assets

    skipped = set(ALGORITHMS) - set(algorithms)
    everything = build_assets()
    chosen = [a for a in everything if not isinstance(a, dg.AssetChecksDefinition)
              and not any(a.key.path[-1].startswith(name + "_") for name in skipped)]
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "corpus"
        folder.mkdir()
        pd.DataFrame({"text": texts}).to_csv(folder / "corpus.csv", index=False)
        os.environ["SENTENCES_PATH"] = str(folder)
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        result = dg.materialize(
            everything, selection=dg.AssetSelection.assets(*chosen), instance=instance,
            resources={"warehouse": DuckDBWarehouse(database=str(Path(work) / "w.duckdb")),
                       "embedder": SentenceEmbedder(device=device)},
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        total = time.perf_counter() - started
    starts, durations = {}, {}
    for entry in instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is not None and event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event is not None and event.event_type_value == "STEP_SUCCESS":
            durations[event.step_key] = entry.timestamp - starts[event.step_key]
    print(f"\n## Whole lineage: {len(texts):,} sentences on {device}, one Dagster run "
          f"({', '.join(algorithms)})\n")
    print("| asset | seconds |")
    print("|---|---|")
    for step, seconds in sorted(durations.items(), key=lambda item: -item[1]):
        print(f"| {step} | {seconds:.2f} |")
    print(f"| **whole run** (model load and Dagster included) | **{total:.1f}** |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=0, help="sentences to encode and cluster (0: all on a GPU)")
    parser.add_argument("--pipeline-size", type=int, default=0, help="sentences for the whole lineage")
    parser.add_argument("--community-size", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--algorithms", nargs="*", default=[a for a in ALGORITHMS if a != "agglomerative"])
    args = parser.parse_args()
    device = SentenceEmbedder(device=args.device).resolved_device()
    corpus = scale_corpus().sample(frac=1.0, random_state=0).reset_index(drop=True)
    default_size = len(corpus) if device == "cuda" else 2000
    texts = corpus["text"].tolist()[: args.size or default_size]
    import torch

    name = f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""
    print(f"# benchmarks/gpu.py on {device}{name}, {time.strftime('%Y-%m-%d')}", flush=True)
    vectors = encoding(texts, device, args.repeats)
    kmeans_comparison(vectors, corpus["label"].to_numpy()[: len(texts)], device, args.k)
    community_comparison(vectors, device, args.community_size)
    whole_lineage(corpus["text"].tolist()[: args.pipeline_size or default_size], device, args.algorithms)


if __name__ == "__main__":
    main()
