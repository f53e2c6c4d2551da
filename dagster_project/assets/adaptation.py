"""Optional domain adaptation: fine-tune the embedding model on the corpus (no labels), then cluster with it
side by side with the base model. Not part of the default refresh (training takes minutes); run the
`adapt_and_compare` job or materialize the `adaptation` group from the UI."""

import dataclasses
import json
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pydantic

from ..core.clock import utc_now
from ..resources.adaptation import AdaptationParams, adapted_folder, train
from ..core.clustering import ALGORITHMS, run_clustering
from ..core.metrics import clustering_metrics as compute_metrics
from ..core.labels import summarize_topics
from ..core.topic_model import run_row
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .config import config_class
from .embeddings import embed_missing
from .evaluation import clustering_metrics

AdaptationConfig = config_class(AdaptationParams, "adaptation")


@dg.asset(deps=["sentences"], group_name="adaptation", kinds={"pytorch", "duckdb"})
def adapted_model(context: dg.AssetExecutionContext, config: AdaptationConfig, warehouse: DuckDBWarehouse,
                  embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """The embedding model fine-tuned on the corpus's own sentences (SimCSE, TSDAE or CT), saved to a folder
    named by the base model, the corpus and the parameters (reused when all three match); one row in
    `adapted_models`."""
    params = AdaptationParams(**config.model_dump())
    texts = warehouse.query("SELECT DISTINCT text FROM sentences ORDER BY text")["text"].tolist()
    folder = adapted_folder(Path(embedder.export_dir) / "adapted", embedder.model_identity, texts, params)
    reused = (folder / "adaptation.json").exists()
    if reused:
        info = json.loads((folder / "adaptation.json").read_text())
    else:
        device = "cpu" if embedder.backend != "torch" else embedder.resolved_device()
        context.log.info(f"training {params.method} on up to {params.max_sentences} sentences on {device}")
        info = train(embedder.model_name_or_path, texts, params, folder, device)
    adapted = SentenceEmbedder(model=str(folder), device=embedder.device, batch_size=embedder.batch_size)
    warehouse.append_rows("adapted_models", pd.DataFrame([{
        "method": params.method, "model_path": str(folder), "model_key": adapted.model_key,
        "base_model_key": embedder.model_key, "corpus_fingerprint": info["corpus_fingerprint"], "params": info["params"],
        "sentences": info["sentences"], "steps": info["steps"], "train_seconds": info["train_seconds"],
        "materialized_at": utc_now(),
    }]))
    return dg.MaterializeResult(metadata={
        "model_path": str(folder), "model_key": adapted.model_key, "base_model_key": embedder.model_key,
        "method": params.method, "params": dg.MetadataValue.json(info["params"]),
        "corpus_fingerprint": info["corpus_fingerprint"], "training_sentences": info["sentences"],
        "steps": info["steps"], "train_seconds": info["train_seconds"], "reused": reused,
    })


class AdaptedClusteringConfig(dg.Config):
    algorithms: list[str] = pydantic.Field(
        default=["kmeans"], description="Algorithms to run on the adapted embeddings, with their default parameters.")
    chunk_size: int = pydantic.Field(default=4096, description="Texts encoded and committed per transaction.")


@dg.asset(deps=[adapted_model, "sentence_embeddings", clustering_metrics], group_name="adaptation",
          kinds={"pytorch", "duckdb"})
def adapted_clusterings(context: dg.AssetExecutionContext, config: AdaptedClusteringConfig,
                        warehouse: DuckDBWarehouse, embedder: SentenceEmbedder) -> dg.MaterializeResult:
    """Every sentence embedded with the latest adapted model (its own model_key in `embedding_cache`), each
    chosen algorithm run on those vectors and written as the variant `<algorithm>@<method>` to
    `cluster_assignments`, `clustering_runs`, `topic_summaries`, and to `clustering_metrics`, where it sits
    beside the base model's row of the same algorithm."""
    unknown = [name for name in config.algorithms if name not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithms {unknown}; choose from {', '.join(ALGORITHMS)}")
    latest = warehouse.query("SELECT method, model_path FROM adapted_models ORDER BY materialized_at DESC LIMIT 1")
    if latest.empty:
        raise RuntimeError("no adapted model yet: materialize adapted_model first.")
    method, path = latest.iloc[0]["method"], latest.iloc[0]["model_path"]
    adapted = SentenceEmbedder(model=path, device=embedder.device, batch_size=embedder.batch_size)
    embedding = embed_missing(context, warehouse, adapted, config.chunk_size)
    frame, vectors = warehouse.load_embeddings(adapted.model_key)
    truth = frame["label"].to_numpy(dtype=object) if frame["label"].notna().any() else None
    rows, summary = [], []
    for name in config.algorithms:
        variant = f"{name}@{method}"
        params = ALGORITHMS[name].params()
        started = time.perf_counter()
        result = run_clustering(name, vectors, params, adapted.compute_device)
        seconds = time.perf_counter() - started
        topics = summarize_topics(frame["text"].tolist(), vectors, result.labels)
        warehouse.replace_algorithm_rows(variant, {
            "cluster_assignments": pd.DataFrame({"sentence_id": frame["sentence_id"], "cluster_id": result.labels,
                                                 "topic_id": result.labels}),
            "clustering_runs": run_row(adapted.model_key, dataclasses.asdict(params), result.details, len(frame),
                                       result.n_clusters, seconds, utc_now()),
            "topic_summaries": topics})
        values = compute_metrics(vectors, result.labels, truth, adapted.compute_device)
        rows.append({"algorithm": variant, "model_key": adapted.model_key, "params": dataclasses.asdict(params),
                     **values, "seconds": seconds, "materialized_at": utc_now()})
        summary.append({"algorithm": variant, "clusters": result.n_clusters, "nmi": values["nmi"],
                        "silhouette": values["silhouette"]})
    warehouse.append_rows("clustering_metrics", pd.DataFrame(rows))
    return dg.MaterializeResult(metadata={
        "model_key": adapted.model_key, "method": method, "new_texts": embedding["new_texts"],
        "comparison": dg.MetadataValue.md(pd.DataFrame(summary).round(3).to_markdown(index=False)),
    })


adaptation_assets = [adapted_model, adapted_clusterings]
adapt_and_compare = dg.define_asset_job(
    "adapt_and_compare", selection=dg.AssetSelection.groups("adaptation"),
    description="Fine-tune the embedding model on the corpus, then cluster with it beside the base model.")
