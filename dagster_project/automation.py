"""Jobs, schedules and sensors."""

import hashlib
import json
import os

import dagster as dg

from .assets.clusterings import ON_DEMAND_GROUP
from .core.clustering import SCHEDULED
from .core.readers import InputError, file_fingerprint, partition_key, source_files
from .resources import DuckDBWarehouse
from .settings import SENTENCES_PATH

INGEST = dg.AssetSelection.assets("sentences", "sentence_embeddings")
# Jobs that fit clusterings carry this tag; the Dagster home `make home` writes runs one of them at a time
# (run_queue.tag_concurrency_limits). Runs outside the queue are kept apart by the warehouse's registry lock.
FITS = {"sentence_topics/fits": "topics"}

ingest_sentence_file = dg.define_asset_job(
    "ingest_sentence_file",
    selection=INGEST,
    description="Read one file (or folder) of SENTENCES_PATH and embed its new sentences "
                "(SENTENCE_PARTITIONS=files or folders).",
)



def refresh_job(partitioned: bool):
    return dg.define_asset_job(
        "refresh_everything",
        tags=FITS,
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups("adaptation", ON_DEMAND_GROUP)
        - (INGEST if partitioned else dg.AssetSelection.assets()),
        description="Ingest, embed new sentences, run the scheduled clusterings, summarize topics, evaluate, project "
                    "(domain adaptation apart: the adapt_and_compare job; the on_demand clusterings: the "
                    "cluster_on_demand job; with SENTENCE_PARTITIONS=files, everything after ingestion, over every "
                    "file's sentences).",
    )

EVALUATION = dg.AssetSelection.assets("clustering_metrics", "recommended", "topic_report")

cluster_on_demand = dg.define_asset_job(
    "cluster_on_demand",
    tags=FITS,
    selection=dg.AssetSelection.groups(ON_DEMAND_GROUP) | EVALUATION,
    description="The clusterings left out of the scheduled refresh (their descriptions say why: their defaults "
                "measured below BERTopic's on the labelled datasets), their topics, then the evaluation again, "
                "on the sentences already embedded.",
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job_name="refresh_everything",
    cron_schedule="0 6 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh everything every day at 06:00: new sentences are assigned to the known topics, and a "
                "clustering is fitted again only when its refit conditions are met.",
)

weekly_refit = dg.ScheduleDefinition(
    name="weekly_refit",
    job_name="refresh_everything",
    cron_schedule="0 5 * * 0",
    run_config={"ops": {f"{name}_clusters": {"config": {"refit": True}} for name in SCHEDULED}},
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Sunday at 05:00, refresh with every clustering fitted again (refit = true); topic ids are "
                "matched to the previous topics, so they carry over.",
)


def current_files(spec: str) -> dict[str, str]:
    """The fingerprint of every input file under `spec`, by its source name."""
    return {source: file_fingerprint(path) for source, path in source_files(spec).items()}


def digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def no_change(spec: str, now: dict[str, str]) -> dg.SensorResult:
    """A tick that launches nothing and remembers the files as they are."""
    return dg.SensorResult(skip_reason=f"no change under {os.path.basename(spec) or spec} since it was read",
                           cursor=json.dumps(now, sort_keys=True))


def files_before(cursor: str | None, warehouse: DuckDBWarehouse) -> dict[str, str]:
    """The files as of the last tick; on the first tick (no cursor), as the warehouse last ingested them, so that
    starting the UI on an up-to-date warehouse launches nothing."""
    if cursor and cursor.startswith("{"):
        return json.loads(cursor)
    return warehouse.ingested_files()


@dg.sensor(
    job_name="refresh_everything",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sentence_files_changed(
    context: dg.SensorEvaluationContext, warehouse: DuckDBWarehouse
) -> dg.SensorResult | dg.SkipReason:
    """Launches a refresh when a file under SENTENCES_PATH is added, removed or modified since the warehouse last
    read it."""
    spec = SENTENCES_PATH.value()
    try:
        now = current_files(spec)
    except (InputError, OSError) as err:
        return dg.SkipReason(f"cannot read SENTENCES_PATH: {err}")
    if now == files_before(context.cursor, warehouse):
        return no_change(spec, now)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=digest(now))], cursor=json.dumps(now, sort_keys=True))


def partition_sensor(partitions: dg.DynamicPartitionsDefinition) -> dg.SensorDefinition:
    """The file sensor of SENTENCE_PARTITIONS=files (or folders), over `partitions`."""
    by_folder = partitions.name == "sentence_folders"

    @dg.sensor(job=ingest_sentence_file, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
    def sentence_file_partitions(context: dg.SensorEvaluationContext,
                                 warehouse: DuckDBWarehouse) -> dg.SensorResult | dg.SkipReason:
        """One partition per file (or top-level folder) under SENTENCES_PATH. A new file adds its partition and a
        run that ingests it; a modified file, a run of its partition; a removed file loses its sentences, and its
        partition when nothing else is left in it."""
        return partition_tick(context, warehouse, partitions, by_folder)

    return sentence_file_partitions


def partition_tick(context: dg.SensorEvaluationContext, warehouse: DuckDBWarehouse,
                   partitions: dg.DynamicPartitionsDefinition, by_folder: bool) -> dg.SensorResult | dg.SkipReason:
    """One tick of the partition sensor: partitions added and removed, a run per changed partition."""
    spec = SENTENCES_PATH.value()
    try:
        now = current_files(spec)
    except (InputError, OSError) as err:
        return dg.SkipReason(f"cannot read SENTENCES_PATH: {err}")
    before = files_before(context.cursor, warehouse)
    changed, gone = [s for s, f in now.items() if before.get(s) != f], [s for s in before if s not in now]
    if not changed and not gone:
        return no_change(spec, now)
    members: dict[str, list[str]] = {}
    for source in sorted(now):
        members.setdefault(partition_key(source, by_folder), []).append(source)
    touched = sorted({partition_key(s, by_folder) for s in changed})
    emptied = sorted({partition_key(s, by_folder) for s in gone} - set(members))
    known = set(context.instance.get_dynamic_partitions(partitions.name))
    for source in gone:
        warehouse.delete_source(source)

    def run_key(partition: str) -> str:  # changes whenever any file of the partition does
        state = "|".join(f"{source}={now[source]}" for source in members[partition])
        return f"{partition}|{hashlib.sha256(state.encode()).hexdigest()[:16]}"

    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key(p), partition_key=p) for p in touched],
        dynamic_partitions_requests=[
            partitions.build_add_request([p for p in touched if p not in known]),
            partitions.build_delete_request([p for p in emptied if p in known]),
        ],
        cursor=json.dumps(now, sort_keys=True),
    )


def build_automation(partitions: dg.DynamicPartitionsDefinition | None) -> dict[str, list]:
    """The jobs, schedules and sensors, for the sentences partitioned by `partitions` (None: not partitioned)."""
    return {"jobs": [refresh_job(partitions is not None), cluster_on_demand,
                     *([ingest_sentence_file] if partitions else [])],
            "schedules": [daily_refresh, weekly_refit],
            "sensors": [partition_sensor(partitions) if partitions else sentence_files_changed]}
