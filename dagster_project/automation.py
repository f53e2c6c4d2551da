"""Jobs, schedules and sensors."""

import hashlib
import os

import dagster as dg

from .assets.settings import sentences_path
from .core.readers import InputError, resolve_files

refresh_everything = dg.define_asset_job(
    "refresh_everything",
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("adaptation"),
    description="Ingest, embed new sentences, run every clustering, summarize topics, evaluate, project "
                "(domain adaptation apart: the adapt_and_compare job).",
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_everything,
    cron_schedule="0 6 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh everything every day at 06:00.",
)


def files_fingerprint(spec: str) -> str:
    """Digest of the path, size and modification time of every input file under `spec`."""
    digest = hashlib.sha256()
    for path in resolve_files(spec):
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dg.sensor(
    job=refresh_everything,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sentence_files_changed(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Launches a refresh when a file under SENTENCES_PATH is added, removed or modified."""
    spec = sentences_path()
    try:
        fingerprint = files_fingerprint(spec)
    except (InputError, OSError) as err:
        return dg.SkipReason(f"cannot read SENTENCES_PATH: {err}")
    if fingerprint == context.cursor:
        return dg.SkipReason(f"no change under {os.path.basename(spec) or spec}")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=fingerprint)], cursor=fingerprint)
