"""One clustering asset per registered algorithm (an asset factory over the registry): read, fit or assign with the
fitted topic model (`core/topic_model.py`), write, report."""

import dataclasses
import functools
import time

import dagster as dg
import numpy as np
import pandas as pd

from ..core.clock import utc_now
from ..core.clustering import ALGORITHMS, Algorithm
from ..core.neighbors import complete_neighbours
from ..core.plots import selection_figures
from ..core.report import cluster_sizes_markdown
from ..core.seeds import Seeds, seed_examples, seed_names, seed_report, seeds_from
from ..core.topic_memory import RefitPolicy, refit_reason
from ..core.topic_model import TopicModel, active_topics, assign_new, exemplar_balls, failed_run, plain, run_row
from ..resources import DuckDBWarehouse, SentenceEmbedder
from .config import ClusteringRunConfig, RefitConfig, config_class
from .neighbors import sentence_neighbors

ON_DEMAND_GROUP = "on_demand"  # clusterings left out of the scheduled refresh


def fit_succeeded(passed: bool, **metadata) -> list[dg.AssetCheckResult]:
    return [dg.AssetCheckResult(check_name="fit_succeeded", passed=passed, metadata=metadata)]


def read_seeds(name: str, threshold: float, warehouse: DuckDBWarehouse, embedder: SentenceEmbedder) -> Seeds | None:
    """The seeds of `topic_seeds` that apply to the algorithm `name`, their examples embedded (None: no seeds)."""
    try:
        pairs = seed_examples(warehouse.topic_seeds(), name)
    except LookupError as err:
        raise dg.Failure(description=str(err), allow_retries=False) from None
    return seeds_from(pairs, embedder.encode(pairs["example"].tolist()), threshold) if len(pairs) else None


def seeds_metadata(seeds: Seeds | None, model: TopicModel, topics: pd.DataFrame) -> dict:
    """What the UI shows of a fit's seeds: each seed's topic and sentences, names no sentence is close to, seeds
    too alike to tell apart."""
    if seeds is None:
        return {}
    sizes, names = pd.Series(model.labels_).value_counts(), seed_names(seeds, model.seed_cluster)
    report = seed_report(seeds, {name: sizes.get(c, 0) for c, name in names.items()},
                         topics.dropna(subset=["seed"]).set_index("seed")["topic_id"].to_dict(), model.claims)
    return {"seeds": dg.MetadataValue.md(report["table"].to_markdown(index=False)),
            "seeds_matching_no_sentence": dg.MetadataValue.json(report["unmatched"]),
            "seeds_near_identical": dg.MetadataValue.json(report["near_identical"])}


def fit(context: dg.AssetExecutionContext, algorithm: Algorithm, params, reason: str, config: ClusteringRunConfig,
        warehouse: DuckDBWarehouse, embedder: SentenceEmbedder, last: dict | None,
        seeds: Seeds | None) -> dg.MaterializeResult:
    """Fit on the sentences of the window (those close to a seed go to its topic), then name the clusters by the
    previous topics' ids."""
    name, model_key = algorithm.name, embedder.model_key
    ids = warehouse.window_ids()
    earlier = warehouse.assignments(name)[["sentence_id", "topic_id"]]  # where the fit starts from
    before = pd.Series(ids).map(earlier.set_index("sentence_id")["topic_id"]).fillna(-1).to_numpy(np.int64)
    model = TopicModel(algorithm, params, embedder.compute_device, config.fit_sample, config.whole_graph_up_to)
    sample, wants_graph = model.plan(len(ids))
    neighbours = (complete_neighbours(ids, lambda k: warehouse.neighbour_rows(model_key, k), params.n_neighbors)
                  if wants_graph else None)
    _, vectors = warehouse.sampled_embeddings(model_key, ids, sample)
    try:
        model.fit(ids, sample, vectors, neighbours, before, last, model_key, seeds)
    except Exception as err:  # one algorithm that cannot run must not stop the others' refresh
        failure = f"{type(err).__name__}: {err}"
        context.log.error(f"{name} could not run; its last topics are kept, the other algorithms go on. {failure}")
        warehouse.replace_algorithm_rows(name, {"clustering_runs": failed_run(model_key, params, failure, len(ids),
                                                                              last)})
        return dg.MaterializeResult(
            metadata={"status": "failed", "reason": failure,
                      "params": dg.MetadataValue.json(dataclasses.asdict(params))},
            check_results=fit_succeeded(False, reason=failure))
    chunks = lambda: ((np.searchsorted(ids, part), x) for part, x in warehouse.embedding_chunks(model_key))  # noqa: E731
    model.extend(chunks, lambda rows: warehouse.embeddings_of(model_key, ids[rows])[1])
    with warehouse.registry_lock():  # read again: another run may have written its topics since
        previous = warehouse.assignments(name)[["sentence_id", "topic_id"]]
        fitted = model.match(previous, warehouse.topic_registry(name), warehouse.topic_lineage(name),
                             warehouse.next_topic_id(name), model_key, reason, utc_now())
        warehouse.replace_algorithm_rows(name, fitted.tables(), fitted.events)
    summary, seed_notes = model.summary(), seeds_metadata(seeds, model, fitted.topics)
    if seed_notes and seed_notes["seeds_matching_no_sentence"].value:
        context.log.warning(f"{name}: no sentence is close to the seeds "
                            f"{seed_notes['seeds_matching_no_sentence'].value}; their topics stay empty")
    context.log.info(f"{name}: fitted ({reason}): {summary['n_clusters']} clusters, {summary['noise_sentences']} "
                     f"noise, {summary['seconds']}s")
    return dg.MaterializeResult(metadata={
        **{key: dg.MetadataValue.json(v) if isinstance(v, dict) else v for key, v in summary.items()},
        "cluster_sizes": dg.MetadataValue.md(cluster_sizes_markdown(fitted.topic_ids)),
        "model_key": model_key, "device": embedder.compute_device,
        **{key: dg.MetadataValue.md(md) for key, md in selection_figures(model.details_).items()},
        **seed_notes,
    }, check_results=fit_succeeded(True))


def assign(context: dg.AssetExecutionContext, name: str, policy: RefitPolicy, last: dict,
           warehouse: DuckDBWarehouse, model_key: str, seeds: Seeds | None) -> dg.MaterializeResult | str:
    """Assign the sentences that arrived since the last run to the known topics without fitting; or the reason to
    fit again. Reads only the new sentences' embeddings."""
    started = time.perf_counter()
    with warehouse.registry_lock():  # the topics assigned to are those a concurrent fit may be replacing
        last = warehouse.last_run(name) or last
        if "failed" in last["details"]:
            return "the last run failed"
        frame, embeddings, removed = warehouse.new_sentences(name, model_key)
        active, centres = active_topics(warehouse.topic_registry(name), embeddings.shape[1])
        radii = active["radius"].to_numpy(dtype=np.float64)
        if len(frame):  # a fit built around exemplars assigns by them
            centres, radii = exemplar_balls(last["details"], active, centres, radii,
                                            functools.partial(warehouse.vectors_by_id, model_key))
        outcome = assign_new(policy, last["details"]["memory"], active, centres, radii,
                             frame["sentence_id"].to_numpy(np.int64), embeddings, removed,
                             seeds and seeds.with_calibration(last["details"]["seed_calibration"]))
        if outcome.drift:
            return outcome.drift
        if outcome.status == "assigned":
            details = {**last["details"], "mode": "assigned", "refit_reason": None, "assigned_because": outcome.why,
                       "memory": outcome.memory, "this_run": outcome.this_run}
            warehouse.add_assignments(name, outcome.rows, run_row(
                model_key, last["params"], details, outcome.total, len(active), time.perf_counter() - started,
                utc_now()))
    context.log.info(f"{name}: {outcome.status}, no fit: {outcome.why}; {outcome.this_run['unassigned']} fit no topic")
    return dg.MaterializeResult(
        metadata={**outcome.summary(len(active)), "since_last_fit": dg.MetadataValue.json(outcome.memory),
                  "seconds": round(time.perf_counter() - started, 3), "model_key": model_key},
        check_results=fit_succeeded(True, fit=f"kept from {outcome.memory['fitted_at']}"))


def on_demand_note(algorithm: Algorithm) -> str:
    return (f" Not in the scheduled refresh ({algorithm.on_demand}; docs/benchmarks.md): materialize it from the "
            "UI or with the cluster_on_demand job." if algorithm.on_demand else "")


def build_clustering_asset(algorithm: Algorithm) -> tuple[dg.AssetsDefinition, dg.AssetChecksDefinition]:
    name = algorithm.name
    ClusterConfig = config_class(algorithm.params, algorithm.name, ClusteringRunConfig)

    @dg.asset(
        name=f"{name}_clusters",
        deps=["sentence_embeddings", *([sentence_neighbors] if algorithm.uses_neighbours else [])],
        group_name=ON_DEMAND_GROUP if algorithm.on_demand else "clusterings",
        kinds={"scikitlearn", "duckdb"},
        check_specs=[dg.AssetCheckSpec("fit_succeeded", asset=f"{name}_clusters",
                                       description="The algorithm ran on the current sentences; if not, why.")],
        description=f"{algorithm.description} One row per sentence in `cluster_assignments` (algorithm = '{name}'), "
                    "with a `topic_id` that stays the same across runs. New sentences are assigned to the nearest "
                    "known topic without fitting again, until the share of sentences changed or left unassigned "
                    "since the last fit passes its threshold (or the parameters or the model change, or `refit` is "
                    "set); a fit's clusters are then matched to the previous topics, and `topics` and "
                    "`topic_events` record what was born, continued, split, merged or retired. If the algorithm "
                    "cannot run, its last topics and assignments stay as they were, its check `fit_succeeded` fails "
                    "with the reason and the rest of the refresh goes on; the next run fits again."
                    + on_demand_note(algorithm),
    )
    def clusters(context: dg.AssetExecutionContext, config: ClusterConfig, warehouse: DuckDBWarehouse,
                 embedder: SentenceEmbedder) -> dg.MaterializeResult:
        policy = RefitPolicy(**{field: getattr(config, field) for field in RefitConfig.model_fields})
        params = algorithm.params(**config.model_dump(exclude=set(ClusteringRunConfig.model_fields)))
        last = warehouse.last_run(name)
        seeds = read_seeds(name, config.seed_threshold, warehouse, embedder)
        reason = refit_reason(policy, last, plain(dataclasses.asdict(params)), embedder.model_key,
                              seeds.key if seeds is not None else None)
        if reason is None:
            outcome = assign(context, name, policy, last, warehouse, embedder.model_key, seeds)
            if isinstance(outcome, dg.MaterializeResult):
                return outcome
            reason = outcome
        return fit(context, algorithm, params, reason, config, warehouse, embedder, last, seeds)

    @dg.asset_check(asset=clusters, name="every_sentence_assigned_once")
    def every_sentence_assigned_once(warehouse: DuckDBWarehouse) -> dg.AssetCheckResult:
        """Each sentence of the cluster window has exactly one cluster_id for this algorithm, and no assignment
        names a sentence outside it."""
        counts = warehouse.assignment_faults(name)
        return dg.AssetCheckResult(passed=not any(counts.values()), metadata=counts)

    return clusters, every_sentence_assigned_once


CLUSTERINGS = {name: build_clustering_asset(algorithm) for name, algorithm in ALGORITHMS.items()}
cluster_assets = [asset for asset, _ in CLUSTERINGS.values()]
clustering_checks = [check for _, check in CLUSTERINGS.values()]
